// Package loadgen is a closed-loop HTTP load generator: it measures a server
// under a fixed number of concurrent clients, each sending its next request
// only when the previous one has been answered and its body read.
//
// Run reports the number of requests and errors, the throughput of
// successful requests, and exact latency percentiles (nearest rank over all
// successful requests). Requests sent during the warmup are not counted;
// requests still in flight when the duration ends finish and are counted.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// maxErrorSamples is how many distinct error messages a Result keeps.
const maxErrorSamples = 5

// maxBodySnippet is how many bytes of a failing response body the default
// check quotes in its error message.
const maxBodySnippet = 80

// defaultTimeout bounds each request sent by the default client, so that a
// hung server turns into errors instead of a Run that never returns.
const defaultTimeout = 30 * time.Second

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("loadgen: invalid config")

// Config describes one load run.
type Config struct {
	// Clients is the number of concurrent clients (goroutines), at least 1.
	Clients int
	// Duration is how long requests are counted, after the warmup; > 0.
	Duration time.Duration
	// Warmup is how long the clients send requests before counting starts;
	// requests sent during the warmup are not counted. Zero means none.
	Warmup time.Duration
	// Request builds the next request of the given client (0 to Clients-1).
	// It is called concurrently by all clients and should build the request
	// with ctx (http.NewRequestWithContext) so that cancelling Run's ctx
	// aborts requests in flight. An error is counted as a failed request.
	Request func(ctx context.Context, client int) (*http.Request, error)
	// Client sends the requests. Nil means a client with its own pooled
	// transport (MaxIdleConnsPerHost = Clients) and a 30 s timeout per request.
	Client *http.Client
	// Check judges a response whose body has been read whole; a non-nil error
	// counts the request as failed. Nil means CheckStatus (status must be
	// 2xx); a custom Check replaces it, so it should call CheckStatus itself
	// if the status matters.
	Check func(resp *http.Response, body []byte) error
}

// Validate reports whether c can be run; its errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("%w: clients must be at least 1, got %d", ErrInvalidConfig, c.Clients)
	case c.Duration <= 0:
		return fmt.Errorf("%w: duration must be positive, got %v", ErrInvalidConfig, c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("%w: warmup must not be negative, got %v", ErrInvalidConfig, c.Warmup)
	case c.Request == nil:
		return fmt.Errorf("%w: request function is nil", ErrInvalidConfig)
	}
	return nil
}

// Result is what one Run measured. Latencies are those of successful
// requests only, from just before the request is sent to the end of reading
// its body. Durations are written to JSON as integer nanoseconds.
type Result struct {
	// Clients is the number of concurrent clients.
	Clients int `json:"clients"`
	// Requests is the number of counted requests, failed ones included.
	Requests int64 `json:"requests"`
	// Errors is the number of counted requests that failed.
	Errors int64 `json:"errors"`
	// Elapsed is the measured time, from the end of the warmup until the last
	// client stopped.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Throughput is successful requests per second of Elapsed.
	Throughput float64 `json:"throughput"`
	// P50 is the median latency (nearest rank).
	P50 time.Duration `json:"p50_ns"`
	// P90 is the 90th percentile latency (nearest rank).
	P90 time.Duration `json:"p90_ns"`
	// P99 is the 99th percentile latency (nearest rank).
	P99 time.Duration `json:"p99_ns"`
	// Max is the largest latency.
	Max time.Duration `json:"max_ns"`
	// Mean is the arithmetic mean latency.
	Mean time.Duration `json:"mean_ns"`
	// ErrorSamples holds the first distinct error messages, at most five.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// String returns r on one line, e.g. "clients=32 requests=9000 errors=0
// elapsed=1m0s throughput=150.0/s p50=… p90=… p99=… max=… mean=…", followed
// by the first error sample if there is one.
func (r Result) String() string {
	s := fmt.Sprintf("clients=%d requests=%d errors=%d elapsed=%v throughput=%.1f/s p50=%v p90=%v p99=%v max=%v mean=%v",
		r.Clients, r.Requests, r.Errors, r.Elapsed.Round(time.Millisecond), r.Throughput,
		r.P50, r.P90, r.P99, r.Max, r.Mean)
	if len(r.ErrorSamples) > 0 {
		s += fmt.Sprintf(" first_error=%q", r.ErrorSamples[0])
	}
	return s
}

// CheckStatus is the default Config.Check: it fails unless the status is
// 2xx, quoting the start of the body.
func CheckStatus(resp *http.Response, body []byte) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if len(body) > maxBodySnippet {
		body = body[:maxBodySnippet]
	}
	return fmt.Errorf("status %s: %q", resp.Status, body)
}

// Run sends requests from cfg.Clients concurrent clients for cfg.Warmup plus
// cfg.Duration and returns what was measured. Cancelling ctx stops the run
// early: Run then returns the partial Result together with an error wrapping
// ctx.Err(); requests interrupted by the cancellation are not counted.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	client := cfg.Client
	if client == nil {
		tr := newTransport(cfg.Clients)
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, Timeout: defaultTimeout}
	}
	check := cfg.Check
	if check == nil {
		check = CheckStatus
	}

	start := time.Now()
	r := runner{
		cfg:          cfg,
		client:       client,
		check:        check,
		measureStart: start.Add(cfg.Warmup),
		deadline:     start.Add(cfg.Warmup + cfg.Duration),
	}
	workers := make([]worker, cfg.Clients)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { r.loop(ctx, i, &workers[i]) })
	}
	wg.Wait()
	elapsed := max(time.Since(r.measureStart), 0)

	res := summarize(workers, elapsed)
	res.Clients = cfg.Clients
	res.ErrorSamples = r.samples
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("loadgen: run stopped after %v: %w", elapsed.Round(time.Millisecond), err)
	}
	return res, nil
}

// newTransport returns a transport whose idle pool keeps one connection per
// client, so that a closed loop reuses connections instead of redialling.
func newTransport(clients int) *http.Transport {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	tr.MaxIdleConnsPerHost = clients
	tr.MaxIdleConns = max(tr.MaxIdleConns, clients)
	return tr
}

// runner holds what the clients of one Run share.
type runner struct {
	cfg          Config
	client       *http.Client
	check        func(*http.Response, []byte) error
	measureStart time.Time // requests sent before this are warmup
	deadline     time.Time // no request is sent at or after this

	mu      sync.Mutex
	samples []string // first distinct error messages, guarded by mu
}

// worker is what one client measured; only its own goroutine writes it.
type worker struct {
	latencies []time.Duration // successful counted requests
	requests  int64
	errors    int64
}

// loop is the closed loop of client id: send, wait for the whole answer,
// record, repeat until the deadline or the cancellation of ctx.
func (r *runner) loop(ctx context.Context, id int, w *worker) {
	w.latencies = make([]time.Duration, 0, 1024)
	for ctx.Err() == nil && time.Now().Before(r.deadline) {
		sent, lat, err := r.do(ctx, id)
		if err != nil && ctx.Err() != nil {
			return // interrupted by cancellation: neither a result nor an error
		}
		if sent.Before(r.measureStart) {
			continue // warmup
		}
		w.requests++
		if err != nil {
			w.errors++
			r.sample(err)
			continue
		}
		w.latencies = append(w.latencies, lat)
	}
}

// do builds, sends and checks one request of client id. It returns when the
// request was sent (or built, if building failed) and its latency.
func (r *runner) do(ctx context.Context, id int) (sent time.Time, lat time.Duration, err error) {
	req, err := r.cfg.Request(ctx, id)
	if err != nil {
		return time.Now(), 0, fmt.Errorf("build request: %w", err)
	}
	sent = time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return sent, 0, err // already says "Get url: ..."
	}
	body, err := io.ReadAll(resp.Body)
	lat = time.Since(sent)
	if cerr := resp.Body.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return sent, 0, fmt.Errorf("read response body: %w", err)
	}
	if err := r.check(resp, body); err != nil {
		return sent, 0, fmt.Errorf("check response: %w", err)
	}
	return sent, lat, nil
}

// sample keeps err's message if it is new and fewer than maxErrorSamples are
// kept.
func (r *runner) sample(err error) {
	msg := err.Error()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) < maxErrorSamples && !slices.Contains(r.samples, msg) {
		r.samples = append(r.samples, msg)
	}
}

// summarize merges the workers' counts and latencies into a Result.
func summarize(workers []worker, elapsed time.Duration) Result {
	var res Result
	n := 0
	for _, w := range workers {
		res.Requests += w.requests
		res.Errors += w.errors
		n += len(w.latencies)
	}
	res.Elapsed = elapsed
	if elapsed > 0 {
		res.Throughput = float64(res.Requests-res.Errors) / elapsed.Seconds()
	}
	if n == 0 {
		return res
	}
	all := make([]time.Duration, 0, n)
	var sum time.Duration
	for _, w := range workers {
		all = append(all, w.latencies...)
		for _, l := range w.latencies {
			sum += l
		}
	}
	slices.Sort(all)
	res.P50 = percentile(all, 50)
	res.P90 = percentile(all, 90)
	res.P99 = percentile(all, 99)
	res.Max = all[len(all)-1]
	res.Mean = sum / time.Duration(n)
	return res
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value such that at least p percent of
// the values are less than or equal to it, i.e. sorted[ceil(p/100·n)-1].
// It is exact (no interpolation), returns a value present in sorted, and
// returns 0 for an empty slice; p ≤ 0 gives the minimum.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
