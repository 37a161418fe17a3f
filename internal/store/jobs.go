package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// JobState is the state of an ingest job.
type JobState string

// The states of an ingest job. A job is queued, then running (claimed by
// one instance, under a lease), then done, failed or cancelled.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobDone      JobState = "done"      // finished; per-file errors are listed
	JobFailed    JobState = "failed"    // stopped by an error; what it committed is kept
	JobCancelled JobState = "cancelled" // cancelled by a user or by shutdown, at a safe point
)

// Final reports whether a job in state s has ended.
func (s JobState) Final() bool { return s == JobDone || s == JobFailed || s == JobCancelled }

// Errors of ingest jobs, tested with errors.Is.
var (
	// ErrJobEnded: the job has already ended (done, failed or cancelled).
	ErrJobEnded = errors.New("job has already ended")
	// ErrLeaseLost: the job is no longer running under this owner (its
	// lease expired and another instance took it over, or it was ended).
	ErrLeaseLost = errors.New("job lease lost")
)

// MaxJobErrorsBytes bounds the JSON list of a job's file errors.
const MaxJobErrorsBytes = 256 << 10

// JobProgress is what a job, or a part of it, has done so far.
type JobProgress struct {
	Total      int // files of the source (of a part: its files); 0 while unknown
	Seen       int
	Images     int
	Faces      int
	Skipped    int
	Suppressed int
	Failed     int
	ImagesPerS float64
	FacesPerS  float64
}

// MaxJobParts bounds the parts of one job.
const MaxJobParts = 64

// IngestJob is one ingest run of a source. It is split into parts, run
// by any instance, one part per instance at a time (see JobPart); its
// progress is the sum of its parts'.
type IngestJob struct {
	ID          int64
	SourceID    int64
	State       JobState
	StartedBy   string
	Queued      time.Time
	Started     time.Time // zero while queued
	Finished    time.Time // zero until it ends
	Progress    JobProgress
	Errors      json.RawMessage // the files that failed, of every part: a JSON list
	Error       string          // why it failed, for users (no internal detail)
	CancelledBy string          // who cancelled it; while running: a cancel requested
	PartCount   int             // the parts it is split into
	// AuditStart is the id of the audit entry of its start (written by the
	// instance that claimed its first part); 0 until then.
	AuditStart int64
	Parts      []JobPart // by part number (left empty by ClaimIngestPart's ended jobs)
}

// JobPart is one part of an ingest job: the files of the source whose
// locator hashes to Part modulo the job's PartCount. A part is queued, then
// running (claimed by one instance, under a lease), then done, failed or
// cancelled; a running part whose lease expired (its instance died) is
// claimed again by another instance and run again from its start.
type JobPart struct {
	JobID       int64
	Part        int
	State       JobState
	Owner       string    // the instance that runs (or last ran) it
	LeaseUntil  time.Time // the owner's claim ends then unless renewed
	Claims      int       // times claimed: more than 1 when taken over
	Started     time.Time
	Finished    time.Time
	Progress    JobProgress // of its last run
	Errors      json.RawMessage
	Error       string
	CancelledBy string
}

// PartClaim is a part claimed by an instance, with what it needs to run it.
type PartClaim struct {
	JobPart
	SourceID  int64
	StartedBy string
	Of        int // the job's PartCount
	// Journal is true when the job's start is not yet in the audit log:
	// the claimer writes it and records it with SetIngestJobJournal before
	// it runs the part (no other part of the job is claimed meanwhile).
	Journal bool
}

const jobColumns = `id, source_id, state, started_by, queued_at, started_at, finished_at,
	total_files, files_seen, images, faces, skipped, suppressed, failed_files, images_per_s, faces_per_s,
	errors, error, cancelled_by, parts, audit_start`

const partColumns = `job_id, part, state, owner, lease_until, claims, started_at, finished_at,
	total_files, files_seen, images, faces, skipped, suppressed, failed_files, images_per_s, faces_per_s,
	errors, error, cancelled_by`

func scanJob(sc scanner) (IngestJob, error) {
	var (
		j                 IngestJob
		queued            int64
		started, finished sql.NullInt64
		audit             sql.NullInt64
		errs              string
	)
	p := &j.Progress
	err := sc.Scan(&j.ID, &j.SourceID, &j.State, &j.StartedBy, &queued, &started, &finished,
		&p.Total, &p.Seen, &p.Images, &p.Faces, &p.Skipped, &p.Suppressed, &p.Failed, &p.ImagesPerS, &p.FacesPerS,
		&errs, &j.Error, &j.CancelledBy, &j.PartCount, &audit)
	if err != nil {
		return IngestJob{}, err
	}
	j.Queued, j.Started, j.Finished = fromMS(queued), fromNullMS(started), fromNullMS(finished)
	j.Errors, j.AuditStart = json.RawMessage(errs), audit.Int64
	return j, nil
}

func scanPart(sc scanner) (JobPart, error) {
	var (
		x                       JobPart
		ends, started, finished sql.NullInt64
		errs                    string
	)
	p := &x.Progress
	err := sc.Scan(&x.JobID, &x.Part, &x.State, &x.Owner, &ends, &x.Claims, &started, &finished,
		&p.Total, &p.Seen, &p.Images, &p.Faces, &p.Skipped, &p.Suppressed, &p.Failed, &p.ImagesPerS, &p.FacesPerS,
		&errs, &x.Error, &x.CancelledBy)
	if err != nil {
		return JobPart{}, err
	}
	x.LeaseUntil, x.Started, x.Finished = fromNullMS(ends), fromNullMS(started), fromNullMS(finished)
	x.Errors = json.RawMessage(errs)
	return x, nil
}

// MaxQueuedJobs bounds the queue: beyond it EnqueueIngestJob refuses.
const MaxQueuedJobs = 64

// ErrQueueFull: MaxQueuedJobs ingest jobs are already queued.
var ErrQueueFull = errors.New("the ingest queue is full")

// ActiveJobError is returned by EnqueueIngestJob when the source already
// has a queued or running job; it wraps ErrExists.
type ActiveJobError struct {
	SourceID, JobID int64
}

func (e *ActiveJobError) Error() string {
	return fmt.Sprintf("source %d is already being ingested (job %d)", e.SourceID, e.JobID)
}

// Unwrap makes errors.Is(err, ErrExists) true.
func (e *ActiveJobError) Unwrap() error { return ErrExists }

// EnqueueIngestJob queues an ingest of source sourceID started by actor,
// in one part (EnqueueIngestParts).
func (db *DB) EnqueueIngestJob(ctx context.Context, sourceID int64, actor string) (IngestJob, error) {
	return db.EnqueueIngestParts(ctx, sourceID, actor, 1)
}

// EnqueueIngestParts queues an ingest of source sourceID started by actor,
// split into parts parts (1 to MaxJobParts) that instances claim one at a
// time with ClaimIngestPart. A source has at most one queued or running
// job (a unique index, so two instances asked at once cannot both queue
// one): a second fails with an *ActiveJobError naming the first. With
// MaxQueuedJobs queued it fails with ErrQueueFull. An unknown source fails
// with ErrNotFound.
func (db *DB) EnqueueIngestParts(ctx context.Context, sourceID int64, actor string, parts int) (IngestJob, error) {
	what := fmt.Sprintf("queue an ingest of source %d", sourceID)
	if strings.TrimSpace(actor) == "" {
		return IngestJob{}, fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	if parts < 1 || parts > MaxJobParts {
		return IngestJob{}, fmt.Errorf("%s: %d parts, want 1 to %d: %w", what, parts, MaxJobParts, ErrInvalid)
	}
	var out IngestJob
	err := db.Tx(ctx, func(tx *Tx) error {
		var exists int
		if err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM sources WHERE id = ?`, sourceID).Scan(&exists); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: source: %w", what, ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var queued int
		if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM ingest_jobs WHERE state = 'queued'`).Scan(&queued); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if queued >= MaxQueuedJobs {
			return fmt.Errorf("%s: %w", what, ErrQueueFull)
		}
		j, err := one(tx.tx.QueryRowContext(ctx, `
INSERT INTO ingest_jobs (source_id, state, started_by, queued_at, parts) VALUES (?, 'queued', ?, ?, ?)
ON CONFLICT (source_id) WHERE state IN ('queued', 'running') DO NOTHING
RETURNING `+jobColumns, sourceID, actor, ms(tx.now()), parts), scanJob, what)
		if errors.Is(err, ErrNotFound) { // the unique index refused it
			var id int64
			if err := tx.tx.QueryRowContext(ctx, `SELECT id FROM ingest_jobs WHERE source_id = ? AND state IN ('queued', 'running')`,
				sourceID).Scan(&id); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return &ActiveJobError{SourceID: sourceID, JobID: id}
		}
		if err != nil {
			return err
		}
		for p := range parts {
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO ingest_job_parts (job_id, part, state) VALUES (?, ?, 'queued')`, j.ID, p); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		out, err = loadJob(ctx, tx.tx, j.ID)
		return err
	})
	return out, err
}

// querier is what loadJob reads through: the reader pool or a transaction.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadJob reads job id with its parts.
func loadJob(ctx context.Context, q querier, id int64) (IngestJob, error) {
	what := fmt.Sprintf("ingest job %d", id)
	j, err := one(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM ingest_jobs WHERE id = ?`, id), scanJob, what)
	if err != nil {
		return IngestJob{}, err
	}
	rows, err := q.QueryContext(ctx, `SELECT `+partColumns+` FROM ingest_job_parts WHERE job_id = ? ORDER BY part`, id)
	if err != nil {
		return IngestJob{}, fmt.Errorf("%s: %w", what, err)
	}
	if j.Parts, err = collect(rows, scanPart); err != nil {
		return IngestJob{}, fmt.Errorf("%s: %w", what, err)
	}
	return j, nil
}

// ClaimIngestPart gives owner the first part that needs an instance, of
// the oldest job: a queued part, or a running one whose owner's lease
// expired before now (its instance died or lost the database), which is
// run again from its start (ingestion is idempotent). The part is running,
// owned by owner until now+lease (renew it with HeartbeatIngestPart), and
// its job is running. ok is false when no part waits. Parts of a job whose
// cancel was requested are not claimed but cancelled (those queued, and
// those whose owner died); the jobs that thereby ended are returned, for
// their end to be audited. On PostgreSQL the part's row is locked with FOR
// UPDATE SKIP LOCKED.
func (db *DB) ClaimIngestPart(ctx context.Context, owner string, now time.Time, lease time.Duration) (c PartClaim, ok bool, ended []IngestJob, err error) {
	if strings.TrimSpace(owner) == "" || lease <= 0 {
		return PartClaim{}, false, nil, fmt.Errorf("claim an ingest job part: owner and lease required: %w", ErrInvalid)
	}
	err = db.Tx(ctx, func(tx *Tx) error {
		ended = nil
		// Parts of a cancelled job that nobody runs: the cancel is done.
		res, err := tx.tx.ExecContext(ctx, `
UPDATE ingest_job_parts SET state = 'cancelled', finished_at = ?, lease_until = NULL,
	cancelled_by = (SELECT j.cancelled_by FROM ingest_jobs j WHERE j.id = ingest_job_parts.job_id)
WHERE (state = 'queued' OR (state = 'running' AND lease_until < ?))
  AND job_id IN (SELECT id FROM ingest_jobs WHERE state IN ('queued', 'running') AND cancelled_by <> '')`, ms(now), ms(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			if ended, err = settleCancelled(ctx, tx, now); err != nil {
				return err
			}
		}
		lock := ""
		if tx.tx.d == postgresDialect {
			lock = " FOR UPDATE OF p SKIP LOCKED"
		}
		// A job's first part is claimed alone: until its claimer has
		// written the job's start in the audit log, the other parts wait
		// (unless that claimer's lease expired).
		var jobID int64
		var part int
		err = tx.tx.QueryRowContext(ctx, `
SELECT p.job_id, p.part FROM ingest_job_parts p JOIN ingest_jobs j ON j.id = p.job_id
WHERE (p.state = 'queued' OR (p.state = 'running' AND p.lease_until < ?))
  AND j.state IN ('queued', 'running') AND j.cancelled_by = ''
  AND (j.audit_start IS NOT NULL OR NOT EXISTS (
	SELECT 1 FROM ingest_job_parts q WHERE q.job_id = p.job_id AND q.state = 'running' AND q.lease_until >= ?))
ORDER BY p.job_id, p.part LIMIT 1`+lock, ms(now), ms(now)).Scan(&jobID, &part)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.JobPart, err = one(tx.tx.QueryRowContext(ctx, `
UPDATE ingest_job_parts SET state = 'running', owner = ?, lease_until = ?, started_at = COALESCE(started_at, ?),
	claims = claims + 1, finished_at = NULL
WHERE job_id = ? AND part = ?
RETURNING `+partColumns, owner, ms(now.Add(lease)), ms(now), jobID, part), scanPart, "claim"); err != nil {
			return err
		}
		var audit sql.NullInt64
		if err := tx.tx.QueryRowContext(ctx, `
UPDATE ingest_jobs SET state = 'running', started_at = COALESCE(started_at, ?) WHERE id = ?
RETURNING source_id, started_by, parts, audit_start`, ms(now), jobID).Scan(&c.SourceID, &c.StartedBy, &c.Of, &audit); err != nil {
			return err
		}
		c.Journal, ok = !audit.Valid, true
		return nil
	})
	if err != nil {
		return PartClaim{}, false, nil, fmt.Errorf("claim an ingest job part: %w", err)
	}
	return c, ok, ended, nil
}

// SetIngestJobJournal records start, the id of the audit entry of job
// id's start, written by the claimer of its first part (PartClaim.Journal).
func (db *DB) SetIngestJobJournal(ctx context.Context, id, start int64) error {
	err := db.Tx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `UPDATE ingest_jobs SET audit_start = ? WHERE id = ? AND audit_start IS NULL`, start, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the audit start of ingest job %d: %w", id, err)
	}
	return nil
}

// HeartbeatIngestPart renews owner's lease on running part part of job id
// until now+lease and records its progress (the job's is the sum of its
// parts'). It returns who asked for the job to be cancelled ("" when nobody
// did): the owner stops at its next safe point. A part no longer running
// under owner (taken over after its lease expired, or ended) fails with
// ErrLeaseLost: the owner must stop without writing.
func (db *DB) HeartbeatIngestPart(ctx context.Context, id int64, part int, owner string, now time.Time, lease time.Duration, p JobProgress) (cancelledBy string, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
UPDATE ingest_job_parts SET lease_until = ?, total_files = ?, files_seen = ?, images = ?, faces = ?, skipped = ?,
	suppressed = ?, failed_files = ?, images_per_s = ?, faces_per_s = ?
WHERE job_id = ? AND part = ? AND owner = ? AND state = 'running'`, ms(now.Add(lease)), p.Total, p.Seen, p.Images, p.Faces, p.Skipped,
			p.Suppressed, p.Failed, p.ImagesPerS, p.FacesPerS, id, part, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrLeaseLost
		}
		if err := sumJob(ctx, tx, id, now); err != nil {
			return err
		}
		return tx.tx.QueryRowContext(ctx, `SELECT cancelled_by FROM ingest_jobs WHERE id = ?`, id).Scan(&cancelledBy)
	})
	if err != nil {
		return "", fmt.Errorf("renew the lease of part %d of ingest job %d: %w", part, id, err)
	}
	return cancelledBy, nil
}

// sumJob writes job id's progress: the sums of its parts', and its rates
// over the time since it started.
func sumJob(ctx context.Context, tx *Tx, id int64, now time.Time) error {
	var (
		p       JobProgress
		started sql.NullInt64
	)
	err := tx.tx.QueryRowContext(ctx, `
SELECT COALESCE(sum(total_files), 0), COALESCE(sum(files_seen), 0), COALESCE(sum(images), 0), COALESCE(sum(faces), 0),
	COALESCE(sum(skipped), 0), COALESCE(sum(suppressed), 0), COALESCE(sum(failed_files), 0)
FROM ingest_job_parts WHERE job_id = ?`, id).Scan(&p.Total, &p.Seen, &p.Images, &p.Faces, &p.Skipped, &p.Suppressed, &p.Failed)
	if err != nil {
		return err
	}
	if err := tx.tx.QueryRowContext(ctx, `SELECT started_at FROM ingest_jobs WHERE id = ?`, id).Scan(&started); err != nil {
		return err
	}
	if sec := now.Sub(fromNullMS(started)).Seconds(); started.Valid && sec > 0 {
		p.ImagesPerS = math.Round(float64(p.Images+p.Failed)/sec*100) / 100
		p.FacesPerS = math.Round(float64(p.Faces)/sec*100) / 100
	}
	_, err = tx.tx.ExecContext(ctx, `
UPDATE ingest_jobs SET total_files = ?, files_seen = ?, images = ?, faces = ?, skipped = ?, suppressed = ?, failed_files = ?,
	images_per_s = ?, faces_per_s = ?
WHERE id = ?`, p.Total, p.Seen, p.Images, p.Faces, p.Skipped, p.Suppressed, p.Failed, p.ImagesPerS, p.FacesPerS, id)
	return err
}

// settleJob ends job id, still queued or running, if every part of it has
// ended: failed if a part failed (its error names the part), else
// cancelled if a part was cancelled, else done; its errors are those of
// its parts. ok reports whether it ended.
func settleJob(ctx context.Context, tx *Tx, id int64, now time.Time) (j IngestJob, ok bool, err error) {
	j, err = loadJob(ctx, tx.tx, id)
	if err != nil || j.State.Final() {
		return IngestJob{}, false, err
	}
	state, why, by := JobDone, "", ""
	var errs []json.RawMessage
	for _, p := range j.Parts {
		switch p.State {
		case JobQueued, JobRunning:
			return IngestJob{}, false, nil
		case JobFailed:
			if state != JobFailed {
				state, why = JobFailed, fmt.Sprintf("part %d of %d: %s", p.Part, j.PartCount, p.Error)
			}
		case JobCancelled:
			if state == JobDone {
				state = JobCancelled
			}
			if by == "" {
				by = p.CancelledBy
			}
		}
		var pe []json.RawMessage
		if json.Unmarshal(p.Errors, &pe) == nil { // written by FinishIngestPart, valid
			errs = append(errs, pe...)
		}
	}
	list := []byte("[]")
	for ; len(errs) > 0; errs = errs[:len(errs)/2] {
		if b, err := json.Marshal(errs); err == nil && len(b) <= MaxJobErrorsBytes {
			list = b
			break
		}
	}
	if by == "" {
		by = "shutdown"
	}
	if err := sumJob(ctx, tx, id, now); err != nil {
		return IngestJob{}, false, err
	}
	if _, err := tx.tx.ExecContext(ctx, `
UPDATE ingest_jobs SET state = ?, finished_at = ?, errors = ?, error = ?,
	cancelled_by = CASE WHEN cancelled_by = '' AND ? = 'cancelled' THEN ? ELSE cancelled_by END
WHERE id = ?`, string(state), ms(now), string(list), why, string(state), by, id); err != nil {
		return IngestJob{}, false, err
	}
	j, err = loadJob(ctx, tx.tx, id)
	return j, err == nil, err
}

// settleCancelled settles the active jobs whose cancel was requested.
func settleCancelled(ctx context.Context, tx *Tx, now time.Time) ([]IngestJob, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT id FROM ingest_jobs WHERE state IN ('queued', 'running') AND cancelled_by <> '' ORDER BY id`)
	if err != nil {
		return nil, err
	}
	ids, err := collect(rows, func(sc scanner) (id int64, err error) { return id, sc.Scan(&id) })
	if err != nil {
		return nil, err
	}
	var ended []IngestJob
	for _, id := range ids {
		j, ok, err := settleJob(ctx, tx, id, now)
		if err != nil {
			return nil, err
		}
		if ok {
			ended = append(ended, j)
		}
	}
	return ended, nil
}

// JobEnd is how a job part ended, for FinishIngestPart.
type JobEnd struct {
	State    JobState // done, failed or cancelled
	Progress JobProgress
	Errors   json.RawMessage // the files that failed, a JSON list (nil: none)
	Error    string          // why it failed, for users
	// CancelledBy names who cancelled it, when nobody had asked before
	// (e.g. "shutdown"): the whole job is then cancelled.
	CancelledBy string
}

// FinishIngestPart ends running part part of job id, owned by owner, at
// now. A part cancelled by its owner (a shutdown) cancels the job: its
// queued parts at once, its running ones at their next heartbeat. When it
// was the job's last part running or queued, the job ends too and is
// returned with ended true, for its end to be audited. A part no longer
// running under owner fails with ErrLeaseLost and is left as it is.
func (db *DB) FinishIngestPart(ctx context.Context, id int64, part int, owner string, now time.Time, end JobEnd) (job IngestJob, ended bool, err error) {
	what := fmt.Sprintf("finish part %d of ingest job %d", part, id)
	if !end.State.Final() {
		return IngestJob{}, false, fmt.Errorf("%s: state %q: %w", what, end.State, ErrInvalid)
	}
	errs := string(end.Errors)
	if errs == "" || errs == "null" {
		errs = "[]"
	}
	if len(errs) > MaxJobErrorsBytes || !json.Valid([]byte(errs)) || errs[0] != '[' {
		return IngestJob{}, false, fmt.Errorf("%s: errors must be a JSON list of at most %d bytes: %w", what, MaxJobErrorsBytes, ErrInvalid)
	}
	p := end.Progress
	err = db.Tx(ctx, func(tx *Tx) error {
		var jobBy string
		if err := tx.tx.QueryRowContext(ctx, `SELECT cancelled_by FROM ingest_jobs WHERE id = ?`, id).Scan(&jobBy); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w", what, ErrLeaseLost)
		} else if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		by := ""
		if end.State == JobCancelled {
			by = cmp.Or(jobBy, end.CancelledBy, "shutdown")
		}
		res, err := tx.tx.ExecContext(ctx, `
UPDATE ingest_job_parts SET state = ?, finished_at = ?, lease_until = NULL, total_files = ?, files_seen = ?, images = ?,
	faces = ?, skipped = ?, suppressed = ?, failed_files = ?, images_per_s = ?, faces_per_s = ?, errors = ?, error = ?,
	cancelled_by = ?
WHERE job_id = ? AND part = ? AND owner = ? AND state = 'running'`, string(end.State), ms(now), p.Total, p.Seen, p.Images,
			p.Faces, p.Skipped, p.Suppressed, p.Failed, p.ImagesPerS, p.FacesPerS, errs, end.Error, by,
			id, part, owner)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fmt.Errorf("%s: %w", what, ErrLeaseLost)
		}
		if by != "" {
			if err := cancelParts(ctx, tx, id, by, now); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if err := sumJob(ctx, tx, id, now); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		job, ended, err = settleJob(ctx, tx, id, now)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return IngestJob{}, false, err
	}
	return job, ended, nil
}

// cancelParts records that by cancelled job id and cancels its queued
// parts; its running parts stop at their owners' next heartbeat.
func cancelParts(ctx context.Context, tx *Tx, id int64, by string, now time.Time) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE ingest_jobs SET cancelled_by = ? WHERE id = ? AND cancelled_by = ''`, by, id); err != nil {
		return err
	}
	_, err := tx.tx.ExecContext(ctx, `
UPDATE ingest_job_parts SET state = 'cancelled', finished_at = ?, cancelled_by = ? WHERE job_id = ? AND state = 'queued'`,
		ms(now), by, id)
	return err
}

// CancelIngestJob cancels job id for actor: its queued parts at once
// (a queued job ends cancelled), its running ones are marked, and their
// owners stop at their next safe point (what they committed is kept). It
// returns the job as it is now: ended (State final) when no part of it was
// running. A job that has ended fails with ErrJobEnded, an unknown one with
// ErrNotFound.
func (db *DB) CancelIngestJob(ctx context.Context, id int64, actor string, now time.Time) (IngestJob, error) {
	what := fmt.Sprintf("cancel ingest job %d", id)
	if strings.TrimSpace(actor) == "" {
		return IngestJob{}, fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	var out IngestJob
	err := db.Tx(ctx, func(tx *Tx) error {
		j, err := loadJob(ctx, tx.tx, id)
		if err != nil {
			return err
		}
		if j.State.Final() {
			out = j
			return fmt.Errorf("%s: it is %s: %w", what, j.State, ErrJobEnded)
		}
		if err := cancelParts(ctx, tx, id, actor, now); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, _, err := settleJob(ctx, tx, id, now); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out, err = loadJob(ctx, tx.tx, id)
		return err
	})
	return out, err
}

// IngestJob returns job id with its parts, or ErrNotFound.
func (db *DB) IngestJob(ctx context.Context, id int64) (IngestJob, error) {
	return loadJob(ctx, db.r, id)
}

// IngestJobs returns the newest limit jobs with their parts, newest first.
func (db *DB) IngestJobs(ctx context.Context, limit int) ([]IngestJob, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM ingest_jobs ORDER BY id DESC LIMIT ?`, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("ingest jobs: %w", err)
	}
	js, err := collect(rows, scanJob)
	if err != nil || len(js) == 0 {
		return js, wrapErr("ingest jobs", err)
	}
	rows, err = db.r.QueryContext(ctx, `SELECT `+partColumns+` FROM ingest_job_parts WHERE job_id >= ? AND job_id <= ? ORDER BY job_id, part`,
		js[len(js)-1].ID, js[0].ID)
	if err != nil {
		return nil, fmt.Errorf("ingest jobs: %w", err)
	}
	ps, err := collect(rows, scanPart)
	if err != nil {
		return nil, fmt.Errorf("ingest jobs: %w", err)
	}
	at := make(map[int64]int, len(js))
	for i, j := range js {
		at[j.ID] = i
	}
	for _, p := range ps {
		if i, ok := at[p.JobID]; ok {
			js[i].Parts = append(js[i].Parts, p)
		}
	}
	return js, nil
}

// wrapErr prefixes a non-nil err with what.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ActiveIngestJobs returns the queued and running jobs of source sourceID
// (at most one), oldest first, without their parts.
func (db *DB) ActiveIngestJobs(ctx context.Context, sourceID int64) ([]IngestJob, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM ingest_jobs
WHERE source_id = ? AND state IN ('queued', 'running') ORDER BY id`, sourceID)
	if err != nil {
		return nil, fmt.Errorf("active ingest jobs of source %d: %w", sourceID, err)
	}
	js, err := collect(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("active ingest jobs of source %d: %w", sourceID, err)
	}
	return js, nil
}

// QueuedIngestJobs counts the jobs waiting for an instance.
func (db *DB) QueuedIngestJobs(ctx context.Context) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM ingest_jobs WHERE state = 'queued'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("queued ingest jobs: %w", err)
	}
	return n, nil
}

// TryLease takes the named lease for owner until now+ttl, or renews it if
// owner holds it: ok is false while another owner holds it unexpired. It is
// the leader lock of work that one instance at a time must do (the
// retention purge); it works alike on SQLite and PostgreSQL.
func (db *DB) TryLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (ok bool, err error) {
	if strings.TrimSpace(name) == "" || strings.TrimSpace(owner) == "" || ttl <= 0 {
		return false, fmt.Errorf("take lease: name, owner and ttl required: %w", ErrInvalid)
	}
	err = db.Tx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE leases.owner = excluded.owner OR leases.expires_at <= ?`, name, owner, ms(now.Add(ttl)), ms(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	return ok, nil
}

// ReleaseLease gives the named lease up if owner holds it.
func (db *DB) ReleaseLease(ctx context.Context, name, owner string) error {
	err := db.Tx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
