package server

import (
	"context"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gabarit/internal/dsr"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
// Labels are route patterns, outcomes and states: never ids, names or
// anything a person could be found by.
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	searches         *prometheus.HistogramVec
	errors           *prometheus.CounterVec
	logins           *prometheus.CounterVec
	queued           prometheus.Gauge
	ingestImages     prometheus.Counter
	ingestFaces      prometheus.Counter
	ingestImagesRate prometheus.Gauge
	ingestFacesRate  prometheus.Gauge
	jobsQueued       prometheus.Gauge
	jobsRunning      prometheus.Gauge
	jobsFinished     *prometheus.CounterVec
	rightsReceived   *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gabarit_http_requests_total",
			Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gabarit_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern.", Buckets: buckets}, []string{"route"}),
		searches: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gabarit_search_duration_seconds",
			Help: "Search latency (queue, analysis of the probe, index, re-scoring, audit) by outcome.", Buckets: buckets}, []string{"outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gabarit_http_errors_total",
			Help: "Failed requests by error code."}, []string{"code"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gabarit_logins_total",
			Help: "Console sign-ins by outcome (ok, failed, rate_limited)."}, []string{"outcome"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gabarit_analysis_queue_depth",
			Help: "Photos (searches, detections, rights requests) waiting for an analysis slot."}),
		ingestImages: prometheus.NewCounter(prometheus.CounterOpts{Name: "gabarit_ingest_images_total",
			Help: "Images ingested (rate() gives images/s)."}),
		ingestFaces: prometheus.NewCounter(prometheus.CounterOpts{Name: "gabarit_ingest_faces_total",
			Help: "Faces ingested (rate() gives faces/s)."}),
		ingestImagesRate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gabarit_ingest_images_per_second",
			Help: "Images per second of the running ingest job (0 when none runs)."}),
		ingestFacesRate: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gabarit_ingest_faces_per_second",
			Help: "Faces per second of the running ingest job (0 when none runs)."}),
		jobsQueued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gabarit_ingest_jobs_queue_depth",
			Help: "Ingest jobs waiting to run."}),
		jobsRunning: prometheus.NewGauge(prometheus.GaugeOpts{Name: "gabarit_ingest_jobs_running",
			Help: "Ingest jobs running (0 or 1)."}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gabarit_ingest_jobs_finished_total",
			Help: "Ingest jobs ended, by final state."}, []string{"state"}),
		rightsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gabarit_rights_requests_received_total",
			Help: "Rights requests registered by this process, by kind."}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.searches, m.errors, m.logins, m.queued,
		m.ingestImages, m.ingestFaces, m.ingestImagesRate, m.ingestFacesRate, m.jobsQueued, m.jobsRunning,
		m.jobsFinished, m.rightsReceived, &rightsCollector{s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gabarit_faces_indexed",
		Help: "Faces in the vector index."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := s.cfg.Index.Index.Len(ctx)
		if err != nil {
			return math.NaN() // unknown: the index cannot be reached
		}
		return float64(n)
	}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gabarit_analysis_slots",
		Help: "Photos analysed at once at most."}, func() float64 { return float64(cap(s.slots)) }))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// metricsPage serves /metrics to a signed-in admin or auditor (Prometheus
// scrapes it with the bearer token of such an account): the counts it
// gives (faces indexed, rights requests by state…) are not for anyone.
func (s *Server) metricsPage(w http.ResponseWriter, r *http.Request, _ *principal) error {
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

// observe records a finished request.
func (m *metrics) observe(route string, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// rightsCollector reads the rights register at scrape time: requests by
// state, and how many are overdue now.
type rightsCollector struct{ s *Server }

var (
	rightsByState = prometheus.NewDesc("gabarit_rights_requests", "Rights requests in the register, by state.", []string{"state"}, nil)
	rightsOverdue = prometheus.NewDesc("gabarit_rights_requests_overdue", "Open rights requests past their deadline.", nil, nil)
)

func (c *rightsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rightsByState
	ch <- rightsOverdue
}

func (c *rightsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reqs, err := c.s.cfg.Data.DB.RightsRequests(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(rightsByState, err)
		return
	}
	by := map[dsr.State]int{}
	for _, st := range dsr.States() {
		by[st] = 0
	}
	overdue := 0
	now := c.s.cfg.Now()
	for _, r := range reqs {
		by[r.State]++
		if r.Overdue(now) {
			overdue++
		}
	}
	for st, n := range by {
		ch <- prometheus.MustNewConstMetric(rightsByState, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(rightsOverdue, prometheus.GaugeValue, float64(overdue))
}

func runtimeCPUs() int { return runtime.GOMAXPROCS(0) }
