package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	jobQueued    = string(store.JobQueued)
	jobRunning   = string(store.JobRunning)
	jobDone      = string(store.JobDone)      // finished; per-file errors are listed
	jobFailed    = string(store.JobFailed)    // stopped by an error; what it committed is kept
	jobCancelled = string(store.JobCancelled) // cancelled by a user or by shutdown, at a safe point
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
	Parts       []jobPart          `json:"parts,omitempty"`
}

// jobPart is one part of a job, as the API shows it: the files of the
// source whose locator hashes to it, run by one instance at a time.
type jobPart struct {
	Part       int    `json:"part"`
	State      string `json:"state"`
	Instance   string `json:"instance,omitempty"` // the instance that runs (or last ran) it
	Claims     int    `json:"claims"`             // more than 1: taken over from an instance that stopped
	Total      int    `json:"total_files"`
	Seen       int    `json:"files_seen"`
	Images     int    `json:"images"`
	Faces      int    `json:"faces"`
	Skipped    int    `json:"skipped"`
	Suppressed int    `json:"suppressed"`
	Failed     int    `json:"failed_files"`
	Error      string `json:"error,omitempty"`
}

// jobView is the API's view of a stored job.
func jobView(x store.IngestJob) job {
	v := job{ID: x.ID, SourceID: x.SourceID, State: string(x.State), StartedBy: x.StartedBy, Queued: x.Queued,
		Total: x.Progress.Total, Seen: x.Progress.Seen, Images: x.Progress.Images, Faces: x.Progress.Faces,
		Skipped: x.Progress.Skipped, Suppressed: x.Progress.Suppressed, Failed: x.Progress.Failed,
		ImagesPerS: x.Progress.ImagesPerS, FacesPerS: x.Progress.FacesPerS, Error: x.Error, CancelledBy: x.CancelledBy}
	if !x.Started.IsZero() {
		t := x.Started
		v.Started = &t
	}
	if !x.Finished.IsZero() {
		t := x.Finished
		v.Finished = &t
	}
	if len(x.Errors) > 0 {
		_ = json.Unmarshal(x.Errors, &v.Errors) // written by jobs.run from []ingest.FileError
	}
	for _, p := range x.Parts {
		v.Parts = append(v.Parts, jobPart{Part: p.Part, State: string(p.State), Instance: p.Owner, Claims: p.Claims,
			Total: p.Progress.Total, Seen: p.Progress.Seen, Images: p.Progress.Images, Faces: p.Progress.Faces,
			Skipped: p.Progress.Skipped, Suppressed: p.Progress.Suppressed, Failed: p.Progress.Failed, Error: p.Error})
	}
	return v
}

// jobs runs ingest jobs, which are rows of the store shared by every
// instance over it: any instance queues a job, split into Config.JobParts
// parts (the files whose locator hashes to the part); an instance's worker
// claims the first part waiting, of the oldest job, under a lease it
// renews, so that one part runs on one instance at a time, and runs parts
// one at a time (ingestion uses every core, so two at once would only
// share them): several instances share one job's files. A part whose
// instance died (its lease expired) is claimed by another instance and run
// again from its start: ingestion is idempotent (ingest_progress and the
// images' SHA-256), so it ends with no duplicate and no loss. The job is
// one run in the audit log: the claimer of its first part writes its
// start, the instance where its last part ends writes its end. A cancel is
// a column of the job's row, which the owners read at each heartbeat and
// apply at their next safe point.
type jobs struct {
	s        *Server
	db       *store.DB
	instance string // the Server's id among the instances
	ctx      context.Context
	stopFn   context.CancelFunc
	wg       sync.WaitGroup
	wake     chan struct{} // a job was queued by this instance

	mu      sync.Mutex
	running map[int64]context.CancelCauseFunc // the job whose part this instance runs
	changed chan struct{}                     // closed (and replaced) when a job run here changes state
}

const (
	maxJobs         = 200              // jobs listed, the newest
	maxJobErrors    = 100              // per-file errors kept with a job part, the first
	defaultJobParts = 4                // parts of a job (Config.JobParts)
	defaultJobLease = 30 * time.Second // how long a claim holds without a heartbeat (Config.JobLease)
	jobProgress     = time.Second      // how often progress is written, while it changes
	jobPoll         = 2 * time.Second  // how often an idle worker looks for jobs queued elsewhere or left by a dead instance
	jobWaitPoll     = 250 * time.Millisecond
	jobsStopWrite   = 10 * time.Second // bounds the last write of a job on shutdown
)

// Causes of a running job's cancellation.
var (
	errJobCancelled = errors.New("job cancelled")
	errJobLeaseLost = errors.New("job taken over by another instance")
)

// newInstanceID returns a random id for a server instance, which owns the
// jobs it claims and the leases it holds.
func newInstanceID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b[:])
}

// newJobs returns s's jobs with their worker started.
func newJobs(s *Server) *jobs {
	j := idleJobs(s)
	j.wg.Add(1)
	go j.worker()
	return j
}

// idleJobs returns s's jobs without a worker: it queues, lists and
// cancels jobs, and runs none.
func idleJobs(s *Server) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobs{s: s, db: s.cfg.Data.DB, instance: s.instance, ctx: ctx, stopFn: cancel,
		wake: make(chan struct{}, 1), running: map[int64]context.CancelCauseFunc{}, changed: make(chan struct{})}
}

// poke wakes the worker to look for a job now.
func (j *jobs) poke() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// notify wakes those waiting for a job run here to change state.
func (j *jobs) notify() {
	j.mu.Lock()
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// start queues an ingest of source id.
func (j *jobs) start(ctx context.Context, sourceID int64, actor string) (job, error) {
	src, err := j.db.Source(ctx, sourceID)
	if err != nil {
		return job{}, err
	}
	if src.State != store.StateActive {
		return job{}, newError(http.StatusConflict, "not_active", "source %d is %s: nothing is ingested from it", sourceID, app.StateName(src.State))
	}
	if j.ctx.Err() != nil {
		return job{}, errBusy
	}
	x, err := j.db.EnqueueIngestParts(ctx, sourceID, actor, j.s.cfg.JobParts)
	var ae *store.ActiveJobError
	switch {
	case errors.As(err, &ae):
		return job{}, newError(http.StatusConflict, "already_running", "source %d is already being ingested (job %d)", sourceID, ae.JobID)
	case errors.Is(err, store.ErrQueueFull):
		return job{}, newError(http.StatusServiceUnavailable, "queue_full", "%d ingest jobs are waiting; try later", store.MaxQueuedJobs)
	case err != nil:
		return job{}, err
	}
	j.setQueued(ctx)
	j.poke()
	return jobView(x), nil
}

// setQueued updates the queue depth metric.
func (j *jobs) setQueued(ctx context.Context) {
	if n, err := j.db.QueuedIngestJobs(ctx); err == nil {
		j.s.metrics.jobsQueued.Set(float64(n))
	}
}

// list returns the newest jobs of every instance, newest first.
func (j *jobs) list(ctx context.Context) ([]job, error) {
	xs, err := j.db.IngestJobs(ctx, maxJobs)
	if err != nil {
		return nil, err
	}
	out := make([]job, 0, len(xs))
	for _, x := range xs {
		out = append(out, jobView(x))
	}
	return out, nil
}

// get returns job id; errNotFound for an unknown job.
func (j *jobs) get(ctx context.Context, id int64) (job, error) {
	x, err := j.db.IngestJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return job{}, errNotFound
	}
	if err != nil {
		return job{}, err
	}
	return jobView(x), nil
}

// wait waits until job id has ended (done, failed or cancelled), whichever
// instance runs it, and returns it; errNotFound for an unknown job.
func (j *jobs) wait(ctx context.Context, id int64) (job, error) {
	t := time.NewTicker(jobWaitPoll)
	defer t.Stop()
	for {
		j.mu.Lock()
		changed := j.changed
		j.mu.Unlock()
		x, err := j.get(ctx, id)
		if err != nil || store.JobState(x.State).Final() {
			return x, err
		}
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			return job{}, ctx.Err()
		}
	}
}

// cancel stops a queued job at once, or a running one at its next safe
// point, whichever instance runs it (what it committed is kept, and a new
// job resumes after it).
func (j *jobs) cancel(ctx context.Context, id int64, actor string) (job, error) {
	x, err := j.db.CancelIngestJob(ctx, id, actor, j.s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return job{}, errNotFound
	case errors.Is(err, store.ErrJobEnded):
		return job{}, newError(http.StatusConflict, "finished", "job %d has already ended (%s)", id, x.State)
	case err != nil:
		return job{}, err
	}
	if x.State == store.JobRunning {
		// A part runs here: stop it now rather than at the next heartbeat.
		j.mu.Lock()
		if stop := j.running[id]; stop != nil {
			stop(errJobCancelled)
		}
		j.mu.Unlock()
	} else {
		if x.State.Final() {
			j.ended(ctx, x)
		}
		j.setQueued(ctx)
		j.notify()
	}
	return jobView(x), nil
}

// stopSource cancels the queued and running ingest jobs of source
// sourceID and waits until they have ended.
func (j *jobs) stopSource(ctx context.Context, sourceID int64, actor string) error {
	xs, err := j.db.ActiveIngestJobs(ctx, sourceID)
	if err != nil {
		return err
	}
	for _, x := range xs {
		var ae *apiError
		if _, err := j.cancel(ctx, x.ID, actor); err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusConflict) {
			return err
		}
		if _, err := j.wait(ctx, x.ID); err != nil {
			return err
		}
	}
	return nil
}

// stop cancels the job whose part runs here (it ends cancelled, by
// "shutdown", once its other parts have stopped) and waits for the worker
// to exit. Queued jobs stay queued, for the other instances or the next
// start.
func (j *jobs) stop() {
	j.stopFn()
	j.wg.Wait()
}

func (j *jobs) worker() {
	defer j.wg.Done()
	t := time.NewTicker(jobPoll)
	defer t.Stop()
	for j.ctx.Err() == nil {
		x, ok, ended, err := j.db.ClaimIngestPart(j.ctx, j.instance, j.s.cfg.Now(), j.s.cfg.JobLease)
		for _, e := range ended {
			j.ended(j.ctx, e)
		}
		switch {
		case err != nil && j.ctx.Err() == nil:
			j.s.log.Error("claim an ingest job part", "err", err)
		case ok:
			j.setQueued(j.ctx)
			if x.Claims > 1 {
				j.s.log.Warn("ingest job part taken over from an instance that stopped renewing its lease; it runs again from its start",
					"job", x.JobID, "part", x.Part, "source", x.SourceID, "instance", j.instance)
			}
			j.run(x)
			continue
		}
		select {
		case <-j.ctx.Done():
		case <-j.wake:
		case <-t.C:
		}
	}
}

// ended records in the audit log the end of job x, which has just ended
// (in a transaction of this instance): the job is one ingest run, whose
// start the claimer of its first part wrote. A job that ended before any
// part started (cancelled while queued) read nothing and has no entry.
func (j *jobs) ended(ctx context.Context, x store.IngestJob) {
	j.s.metrics.jobsFinished.WithLabelValues(string(x.State)).Inc()
	if x.AuditStart == 0 {
		return
	}
	p := x.Progress
	sum := ingest.Summary{Stats: ingest.Stats{Seen: p.Seen, Images: p.Images, Faces: p.Faces, Skipped: p.Skipped,
		Failed: p.Failed, Suppressed: p.Suppressed}}
	wctx, done := context.WithTimeout(context.WithoutCancel(ctx), jobsStopWrite)
	defer done()
	err := ingest.ResumeJournal(j.db, x.StartedBy, x.SourceID, x.AuditStart).End(wctx, sum, x.State == store.JobCancelled, x.State == store.JobFailed)
	if err != nil {
		// The source's next run records it as interrupted (ingest.Begin).
		j.s.log.Error("audit the end of an ingest job", "job", x.ID, "err", err)
	}
}

// run carries out part x of a job, claimed by this instance.
func (j *jobs) run(x store.PartClaim) {
	ctx, cancel := context.WithCancelCause(j.ctx)
	defer cancel(nil)
	j.mu.Lock()
	j.running[x.JobID] = cancel
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		delete(j.running, x.JobID)
		j.mu.Unlock()
		j.notify()
	}()
	j.notify()
	j.s.metrics.jobsRunning.Set(1)
	defer j.s.metrics.jobsRunning.Set(0)

	var (
		pmu  sync.Mutex
		prog store.JobProgress
		last ingest.Stats
	)
	progress := func(st ingest.Stats) {
		pmu.Lock()
		defer pmu.Unlock()
		j.s.metrics.ingestImages.Add(float64(st.Images - last.Images))
		j.s.metrics.ingestFaces.Add(float64(st.Faces - last.Faces))
		last = st
		prog.Seen, prog.Images, prog.Faces, prog.Skipped, prog.Suppressed, prog.Failed = st.Seen, st.Images, st.Faces, st.Skipped, st.Suppressed, st.Failed
		if sec := st.Elapsed.Seconds(); sec > 0 {
			prog.ImagesPerS = round2(float64(st.Images+st.Failed) / sec)
			prog.FacesPerS = round2(float64(st.Faces) / sec)
		}
		j.s.metrics.ingestImagesRate.Set(prog.ImagesPerS)
		j.s.metrics.ingestFacesRate.Set(prog.FacesPerS)
	}
	counted := func(n int) {
		pmu.Lock()
		prog.Total = n
		pmu.Unlock()
	}
	snapshot := func() store.JobProgress {
		pmu.Lock()
		defer pmu.Unlock()
		return prog
	}
	stopBeat := make(chan struct{})
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		j.heartbeat(ctx, cancel, x, snapshot, stopBeat)
	}()

	var (
		sum ingest.Summary
		err error
	)
	if x.Journal {
		// The job's first part: its start goes in the audit log before
		// anything is read, and before any other part is claimed.
		var jr *ingest.Journal
		if jr, err = ingest.Begin(ctx, j.db, x.StartedBy, x.SourceID); err == nil {
			err = j.db.SetIngestJobJournal(ctx, x.JobID, jr.StartID())
		}
	}
	if err == nil {
		sum, err = app.Ingest(ctx, j.s.cfg.Data, j.s.cfg.Model, j.s.cfg.Vault, j.s.cfg.Index, x.SourceID,
			app.IngestOptions{Actor: x.StartedBy, Progress: progress, Counted: counted, Part: ingest.InPart(x.Part, x.Of), Unjournaled: true})
	}
	progress(sum.Stats)
	close(stopBeat)
	<-beatDone
	j.s.metrics.ingestImagesRate.Set(0)
	j.s.metrics.ingestFacesRate.Set(0)

	end := store.JobEnd{Progress: snapshot(), Errors: jobErrors(sum.Errors)}
	switch {
	case errors.Is(context.Cause(ctx), errJobLeaseLost):
		j.s.log.Warn("ingest job part taken over by another instance: this one stops", "job", x.JobID, "part", x.Part, "source", x.SourceID)
		return
	case err != nil && ctx.Err() != nil:
		end.State, end.CancelledBy = store.JobCancelled, "shutdown"
	case err != nil:
		end.State, end.Error = store.JobFailed, publicJobError(err)
		j.s.log.Error("ingest job part failed", "job", x.JobID, "part", x.Part, "source", x.SourceID, "err", err)
	default:
		end.State = store.JobDone
	}
	if d := j.s.cfg.Index.Deferred(); d != nil {
		j.s.log.Warn("ingest job part: the vector index has not taken every face yet; they are stored, and the index catch-up adds them",
			"job", x.JobID, "part", x.Part, "err", d)
	}
	wctx, done := context.WithTimeout(context.WithoutCancel(ctx), jobsStopWrite)
	defer done()
	job, ended, err := j.db.FinishIngestPart(wctx, x.JobID, x.Part, j.instance, j.s.cfg.Now(), end)
	switch {
	case errors.Is(err, store.ErrLeaseLost):
		j.s.log.Warn("ingest job part taken over by another instance before it ended here", "job", x.JobID, "part", x.Part, "source", x.SourceID)
	case err != nil:
		// Its lease expires and another instance runs it again.
		j.s.log.Error("record the end of an ingest job part", "job", x.JobID, "part", x.Part, "err", err)
	case ended:
		j.ended(wctx, job)
	}
}

// heartbeat renews the lease of running part x every sixth of the lease
// and writes its progress every jobProgress while it changes, until stop
// is closed. A cancel asked through any instance, or the loss of the
// lease, cancels the part's ctx.
func (j *jobs) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, x store.PartClaim, snapshot func() store.JobProgress, stop <-chan struct{}) {
	lease := j.s.cfg.JobLease
	t := time.NewTicker(min(jobProgress, lease/6))
	defer t.Stop()
	var (
		written store.JobProgress
		renewed = time.Now()
	)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p := snapshot()
		if p == written && time.Since(renewed) < lease/6 {
			continue
		}
		by, err := j.db.HeartbeatIngestPart(context.WithoutCancel(ctx), x.JobID, x.Part, j.instance, j.s.cfg.Now(), lease, p)
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			cancel(errJobLeaseLost)
			return
		case err != nil:
			// The next beat tries again; past the lease, another
			// instance takes the job and this one learns it then.
			j.s.log.Error("renew the lease of an ingest job part", "job", x.JobID, "part", x.Part, "err", err)
			continue
		}
		written, renewed = p, time.Now()
		if by != "" && ctx.Err() == nil {
			cancel(errJobCancelled)
		}
	}
}

// jobErrors is the JSON list of a job's first maxJobErrors file errors,
// within the store's bound.
func jobErrors(fe []ingest.FileError) json.RawMessage {
	fe = fe[:min(len(fe), maxJobErrors)]
	for {
		b, err := json.Marshal(fe)
		if err == nil && len(b) <= store.MaxJobErrorsBytes {
			return b
		}
		if len(fe) == 0 {
			return nil
		}
		fe = fe[:len(fe)/2]
	}
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
