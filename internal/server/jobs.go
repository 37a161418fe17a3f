package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/ingest"
	"gabarit/internal/store"
)

// Job states.
const (
	jobQueued    = "queued"
	jobRunning   = "running"
	jobDone      = "done"      // finished; per-file errors are listed
	jobFailed    = "failed"    // stopped by an error; what it committed is kept
	jobCancelled = "cancelled" // cancelled by a user or by shutdown, at a safe point
)

// job is one ingest run of a source, as the API shows it.
type job struct {
	ID          int64              `json:"id"`
	SourceID    int64              `json:"source_id"`
	State       string             `json:"state"`
	StartedBy   string             `json:"started_by"`
	Queued      time.Time          `json:"queued"`
	Started     *time.Time         `json:"started,omitempty"`
	Finished    *time.Time         `json:"finished,omitempty"`
	Total       int                `json:"total_files"` // 0 while unknown
	Seen        int                `json:"files_seen"`
	Images      int                `json:"images"`
	Faces       int                `json:"faces"`
	Skipped     int                `json:"skipped"`
	Suppressed  int                `json:"suppressed"`
	Failed      int                `json:"failed_files"`
	ImagesPerS  float64            `json:"images_per_second"`
	FacesPerS   float64            `json:"faces_per_second"`
	Errors      []ingest.FileError `json:"errors,omitempty"`
	Error       string             `json:"error,omitempty"`
	CancelledBy string             `json:"cancelled_by,omitempty"`

	cancel context.CancelFunc
	done   chan struct{} // closed when the job has ended
}

// jobs runs ingest jobs one at a time, in the order they were started:
// ingestion uses every core, so two at once would only share them.
type jobs struct {
	s      *Server
	mu     sync.Mutex
	next   int64
	all    []*job // newest last; the last maxJobs are kept
	queue  chan *job
	ctx    context.Context
	stopFn context.CancelFunc
	wg     sync.WaitGroup
}

const (
	maxJobs     = 200
	maxJobQueue = 64
)

func newJobs(s *Server) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	j := &jobs{s: s, queue: make(chan *job, maxJobQueue), ctx: ctx, stopFn: cancel}
	j.wg.Add(1)
	go j.worker()
	return j
}

// start queues an ingest of source id.
func (j *jobs) start(ctx context.Context, sourceID int64, actor string) (job, error) {
	src, err := j.s.cfg.Data.DB.Source(ctx, sourceID)
	if err != nil {
		return job{}, err
	}
	if src.State != store.StateActive {
		return job{}, newError(http.StatusConflict, "not_active", "source %d is %s: nothing is ingested from it", sourceID, app.StateName(src.State))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ctx.Err() != nil {
		return job{}, errBusy
	}
	for _, x := range j.all {
		if x.SourceID == sourceID && (x.State == jobQueued || x.State == jobRunning) {
			return job{}, newError(http.StatusConflict, "already_running", "source %d is already being ingested (job %d)", sourceID, x.ID)
		}
	}
	j.next++
	x := &job{ID: j.next, SourceID: sourceID, State: jobQueued, StartedBy: actor, Queued: j.s.cfg.Now(), done: make(chan struct{})}
	select {
	case j.queue <- x:
	default:
		return job{}, newError(http.StatusServiceUnavailable, "queue_full", "%d ingest jobs are waiting; try later", maxJobQueue)
	}
	j.all = append(j.all, x)
	if len(j.all) > maxJobs {
		j.all = j.all[len(j.all)-maxJobs:]
	}
	j.s.metrics.jobsQueued.Set(float64(len(j.queue)))
	return x.view(), nil
}

// view copies a job for answering, under j.mu.
func (x *job) view() job {
	v := *x
	v.cancel, v.done = nil, nil
	v.Errors = append([]ingest.FileError(nil), x.Errors...)
	return v
}

// wait waits until job id has ended (done, failed or cancelled) and
// returns it; errNotFound for an unknown job.
func (j *jobs) wait(ctx context.Context, id int64) (job, error) {
	j.mu.Lock()
	var done chan struct{}
	for _, x := range j.all {
		if x.ID == id {
			done = x.done
		}
	}
	j.mu.Unlock()
	if done == nil {
		return job{}, errNotFound
	}
	select {
	case <-done:
	case <-ctx.Done():
		return job{}, ctx.Err()
	}
	x, _ := j.get(id)
	return x, nil
}

func (j *jobs) list() []job {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]job, 0, len(j.all))
	for i := len(j.all) - 1; i >= 0; i-- {
		out = append(out, j.all[i].view())
	}
	return out
}

func (j *jobs) get(id int64) (job, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, x := range j.all {
		if x.ID == id {
			return x.view(), true
		}
	}
	return job{}, false
}

// cancel stops a queued job at once, or a running one at its next safe
// point (what it committed is kept, and a new job resumes after it).
func (j *jobs) cancel(id int64, actor string) (job, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, x := range j.all {
		if x.ID != id {
			continue
		}
		switch x.State {
		case jobQueued:
			x.State, x.CancelledBy = jobCancelled, actor
			now := j.s.cfg.Now()
			x.Finished = &now
			close(x.done)
		case jobRunning:
			x.CancelledBy = actor
			x.cancel()
		default:
			return job{}, newError(http.StatusConflict, "finished", "job %d has already ended (%s)", id, x.State)
		}
		return x.view(), nil
	}
	return job{}, errNotFound
}

// stop cancels the running job and waits for the worker to exit.
func (j *jobs) stop() {
	j.stopFn()
	j.wg.Wait()
}

func (j *jobs) worker() {
	defer j.wg.Done()
	for {
		select {
		case <-j.ctx.Done():
			j.mu.Lock()
			for _, x := range j.all {
				if x.State == jobQueued {
					x.State, x.CancelledBy = jobCancelled, "shutdown"
					close(x.done)
				}
			}
			j.mu.Unlock()
			return
		case x := <-j.queue:
			j.run(x)
		}
	}
}

// run carries out one job.
func (j *jobs) run(x *job) {
	ctx, cancel := context.WithCancel(j.ctx)
	defer cancel()
	j.mu.Lock()
	j.s.metrics.jobsQueued.Set(float64(len(j.queue)))
	if x.State != jobQueued { // cancelled while queued
		j.mu.Unlock()
		return
	}
	now := j.s.cfg.Now()
	x.State, x.Started, x.cancel = jobRunning, &now, cancel
	actor := x.StartedBy
	j.mu.Unlock()
	j.s.metrics.jobsRunning.Set(1)
	defer j.s.metrics.jobsRunning.Set(0)

	var last ingest.Stats
	progress := func(st ingest.Stats) {
		j.s.metrics.ingestImages.Add(float64(st.Images - last.Images))
		j.s.metrics.ingestFaces.Add(float64(st.Faces - last.Faces))
		last = st
		j.mu.Lock()
		defer j.mu.Unlock()
		x.Seen, x.Images, x.Faces, x.Skipped, x.Suppressed, x.Failed = st.Seen, st.Images, st.Faces, st.Skipped, st.Suppressed, st.Failed
		if sec := st.Elapsed.Seconds(); sec > 0 {
			x.ImagesPerS = round2(float64(st.Images+st.Failed) / sec)
			x.FacesPerS = round2(float64(st.Faces) / sec)
		}
		j.s.metrics.ingestImagesRate.Set(x.ImagesPerS)
		j.s.metrics.ingestFacesRate.Set(x.FacesPerS)
	}
	counted := func(n int) {
		j.mu.Lock()
		x.Total = n
		j.mu.Unlock()
	}
	sum, err := app.Ingest(ctx, j.s.cfg.Data, j.s.cfg.Model, j.s.cfg.Vault, j.s.cfg.Index, x.SourceID,
		app.IngestOptions{Actor: actor, Progress: progress, Counted: counted})
	progress(sum.Stats)
	j.s.metrics.ingestImagesRate.Set(0)
	j.s.metrics.ingestFacesRate.Set(0)

	j.mu.Lock()
	defer j.mu.Unlock()
	defer close(x.done)
	end := j.s.cfg.Now()
	x.Finished, x.cancel = &end, nil
	x.Errors = sum.Errors
	switch {
	case err != nil && ctx.Err() != nil:
		x.State = jobCancelled
		if x.CancelledBy == "" {
			x.CancelledBy = "shutdown"
		}
	case err != nil:
		x.State = jobFailed
		x.Error = publicJobError(err)
		j.s.log.Error("ingest job failed", "job", x.ID, "source", x.SourceID, "err", err)
	default:
		x.State = jobDone
	}
	j.s.metrics.jobsFinished.WithLabelValues(x.State).Inc()
}

// publicJobError says why a job failed without internal details (paths,
// SQL): those are in the log.
func publicJobError(err error) string {
	switch {
	case errors.Is(err, app.ErrNotActive):
		return "the source was suspended"
	case errors.Is(err, store.ErrNotFound):
		return "the source no longer exists"
	}
	return fmt.Sprintf("ingestion stopped on an error (see the server log, %s); what was committed is kept", time.Now().UTC().Format(time.RFC3339))
}
