package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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

// JobProgress is what a job has done so far.
type JobProgress struct {
	Total      int // files of the source; 0 while unknown
	Seen       int
	Images     int
	Faces      int
	Skipped    int
	Suppressed int
	Failed     int
	ImagesPerS float64
	FacesPerS  float64
}

// IngestJob is one ingest run of a source.
type IngestJob struct {
	ID          int64
	SourceID    int64
	State       JobState
	StartedBy   string
	Queued      time.Time
	Started     time.Time // zero while queued
	Finished    time.Time // zero until it ends
	Progress    JobProgress
	Errors      json.RawMessage // the files that failed: a JSON list, as the owner wrote it
	Error       string          // why it failed, for users (no internal detail)
	CancelledBy string          // who cancelled it; while running: a cancel requested
	Owner       string          // the instance that runs (or last ran) it
	LeaseUntil  time.Time       // the owner's claim ends then unless renewed
	Claims      int             // times claimed: more than 1 when taken over
}

const jobColumns = `id, source_id, state, started_by, queued_at, started_at, finished_at,
	total_files, files_seen, images, faces, skipped, suppressed, failed_files, images_per_s, faces_per_s,
	errors, error, cancelled_by, owner, lease_until, claims`

func scanJob(sc scanner) (IngestJob, error) {
	var (
		j                       IngestJob
		queued                  int64
		started, finished, ends sql.NullInt64
		errs                    string
	)
	p := &j.Progress
	err := sc.Scan(&j.ID, &j.SourceID, &j.State, &j.StartedBy, &queued, &started, &finished,
		&p.Total, &p.Seen, &p.Images, &p.Faces, &p.Skipped, &p.Suppressed, &p.Failed, &p.ImagesPerS, &p.FacesPerS,
		&errs, &j.Error, &j.CancelledBy, &j.Owner, &ends, &j.Claims)
	if err != nil {
		return IngestJob{}, err
	}
	j.Queued, j.Started, j.Finished, j.LeaseUntil = fromMS(queued), fromNullMS(started), fromNullMS(finished), fromNullMS(ends)
	j.Errors = json.RawMessage(errs)
	return j, nil
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

// EnqueueIngestJob queues an ingest of source sourceID started by actor.
// A source has at most one queued or running job (a unique index, so two
// instances asked at once cannot both queue one): a second fails with an
// *ActiveJobError naming the first. With MaxQueuedJobs queued it fails with
// ErrQueueFull. An unknown source fails with ErrNotFound.
func (db *DB) EnqueueIngestJob(ctx context.Context, sourceID int64, actor string) (IngestJob, error) {
	what := fmt.Sprintf("queue an ingest of source %d", sourceID)
	if strings.TrimSpace(actor) == "" {
		return IngestJob{}, fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
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
INSERT INTO ingest_jobs (source_id, state, started_by, queued_at) VALUES (?, 'queued', ?, ?)
ON CONFLICT (source_id) WHERE state IN ('queued', 'running') DO NOTHING
RETURNING `+jobColumns, sourceID, actor, ms(tx.now())), scanJob, what)
		if errors.Is(err, ErrNotFound) { // the unique index refused it
			var id int64
			if err := tx.tx.QueryRowContext(ctx, `SELECT id FROM ingest_jobs WHERE source_id = ? AND state IN ('queued', 'running')`,
				sourceID).Scan(&id); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return &ActiveJobError{SourceID: sourceID, JobID: id}
		}
		out = j
		return err
	})
	return out, err
}

// ClaimIngestJob gives the oldest job that needs an instance to owner: a
// queued one, or a running one whose owner's lease expired before now (its
// instance died or lost the database), which is run again from the start
// (ingestion is idempotent). The job is running, owned by owner until
// now+lease (renew it with HeartbeatIngestJob). ok is false when no job
// waits. A job taken over while a cancel was requested is cancelled
// instead. On PostgreSQL the row is locked with FOR UPDATE SKIP LOCKED.
func (db *DB) ClaimIngestJob(ctx context.Context, owner string, now time.Time, lease time.Duration) (j IngestJob, ok bool, err error) {
	if strings.TrimSpace(owner) == "" || lease <= 0 {
		return IngestJob{}, false, fmt.Errorf("claim an ingest job: owner and lease required: %w", ErrInvalid)
	}
	err = db.Tx(ctx, func(tx *Tx) error {
		// A running job whose owner died after a cancel was requested: the
		// cancel is done.
		if _, err := tx.tx.ExecContext(ctx, `
UPDATE ingest_jobs SET state = 'cancelled', finished_at = ?, lease_until = NULL
WHERE state = 'running' AND lease_until < ? AND cancelled_by <> ''`, ms(now), ms(now)); err != nil {
			return err
		}
		lock := ""
		if tx.tx.d == postgresDialect {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var err error
		j, err = one(tx.tx.QueryRowContext(ctx, `
UPDATE ingest_jobs SET state = 'running', owner = ?, lease_until = ?, started_at = COALESCE(started_at, ?), claims = claims + 1
WHERE id = (SELECT id FROM ingest_jobs
            WHERE state = 'queued' OR (state = 'running' AND lease_until < ?)
            ORDER BY id LIMIT 1`+lock+`)
RETURNING `+jobColumns, owner, ms(now.Add(lease)), ms(now), ms(now)), scanJob, "claim")
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		ok = err == nil
		return err
	})
	if err != nil {
		return IngestJob{}, false, fmt.Errorf("claim an ingest job: %w", err)
	}
	return j, ok, nil
}

// HeartbeatIngestJob renews owner's lease on running job id until
// now+lease and records its progress. It returns who asked for the job to
// be cancelled ("" when nobody did): the owner stops at its next safe point.
// A job no longer running under owner (taken over after its lease expired,
// or ended) fails with ErrLeaseLost: the owner must stop without writing.
func (db *DB) HeartbeatIngestJob(ctx context.Context, id int64, owner string, now time.Time, lease time.Duration, p JobProgress) (cancelledBy string, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		err := tx.tx.QueryRowContext(ctx, `
UPDATE ingest_jobs SET lease_until = ?, total_files = ?, files_seen = ?, images = ?, faces = ?, skipped = ?,
	suppressed = ?, failed_files = ?, images_per_s = ?, faces_per_s = ?
WHERE id = ? AND owner = ? AND state = 'running'
RETURNING cancelled_by`, ms(now.Add(lease)), p.Total, p.Seen, p.Images, p.Faces, p.Skipped,
			p.Suppressed, p.Failed, p.ImagesPerS, p.FacesPerS, id, owner).Scan(&cancelledBy)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrLeaseLost
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("renew the lease of ingest job %d: %w", id, err)
	}
	return cancelledBy, nil
}

// JobEnd is how a job ended, for FinishIngestJob.
type JobEnd struct {
	State    JobState // done, failed or cancelled
	Progress JobProgress
	Errors   json.RawMessage // the files that failed, a JSON list (nil: none)
	Error    string          // why it failed, for users
	// CancelledBy names who cancelled it, when nobody had asked before
	// (e.g. "shutdown").
	CancelledBy string
}

// FinishIngestJob ends running job id of owner at now. A job no longer
// running under owner fails with ErrLeaseLost and is left as it is.
func (db *DB) FinishIngestJob(ctx context.Context, id int64, owner string, now time.Time, end JobEnd) error {
	what := fmt.Sprintf("finish ingest job %d", id)
	if !end.State.Final() {
		return fmt.Errorf("%s: state %q: %w", what, end.State, ErrInvalid)
	}
	errs := string(end.Errors)
	if errs == "" || errs == "null" {
		errs = "[]"
	}
	if len(errs) > MaxJobErrorsBytes || !json.Valid([]byte(errs)) {
		return fmt.Errorf("%s: errors must be a JSON list of at most %d bytes: %w", what, MaxJobErrorsBytes, ErrInvalid)
	}
	p := end.Progress
	return db.Tx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `
UPDATE ingest_jobs SET state = ?, finished_at = ?, lease_until = NULL, total_files = ?, files_seen = ?, images = ?,
	faces = ?, skipped = ?, suppressed = ?, failed_files = ?, images_per_s = ?, faces_per_s = ?, errors = ?, error = ?,
	cancelled_by = CASE WHEN cancelled_by = '' AND ? = 'cancelled' THEN ? ELSE cancelled_by END
WHERE id = ? AND owner = ? AND state = 'running'`, string(end.State), ms(now), p.Total, p.Seen, p.Images,
			p.Faces, p.Skipped, p.Suppressed, p.Failed, p.ImagesPerS, p.FacesPerS, errs, end.Error,
			string(end.State), end.CancelledBy, id, owner)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fmt.Errorf("%s: %w", what, ErrLeaseLost)
		}
		return nil
	})
}

// CancelIngestJob cancels job id for actor: a queued job at once; a
// running one is marked, and its owner stops at its next safe point (what
// it committed is kept). It returns the job as it is now. A job that has
// ended fails with ErrJobEnded, an unknown one with ErrNotFound.
func (db *DB) CancelIngestJob(ctx context.Context, id int64, actor string, now time.Time) (IngestJob, error) {
	what := fmt.Sprintf("cancel ingest job %d", id)
	if strings.TrimSpace(actor) == "" {
		return IngestJob{}, fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	var out IngestJob
	err := db.Tx(ctx, func(tx *Tx) error {
		j, err := one(tx.tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM ingest_jobs WHERE id = ?`, id), scanJob, what)
		if err != nil {
			return err
		}
		switch j.State {
		case JobQueued:
			_, err = tx.tx.ExecContext(ctx, `UPDATE ingest_jobs SET state = 'cancelled', cancelled_by = ?, finished_at = ? WHERE id = ?`,
				actor, ms(now), id)
		case JobRunning:
			_, err = tx.tx.ExecContext(ctx, `UPDATE ingest_jobs SET cancelled_by = ? WHERE id = ? AND cancelled_by = ''`, actor, id)
		default:
			out = j
			return fmt.Errorf("%s: it is %s: %w", what, j.State, ErrJobEnded)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out, err = one(tx.tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM ingest_jobs WHERE id = ?`, id), scanJob, what)
		return err
	})
	return out, err
}

// IngestJob returns job id, or ErrNotFound.
func (db *DB) IngestJob(ctx context.Context, id int64) (IngestJob, error) {
	return one(db.r.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM ingest_jobs WHERE id = ?`, id), scanJob,
		fmt.Sprintf("ingest job %d", id))
}

// IngestJobs returns the newest limit jobs, newest first.
func (db *DB) IngestJobs(ctx context.Context, limit int) ([]IngestJob, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+jobColumns+` FROM ingest_jobs ORDER BY id DESC LIMIT ?`, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("ingest jobs: %w", err)
	}
	js, err := collect(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("ingest jobs: %w", err)
	}
	return js, nil
}

// ActiveIngestJobs returns the queued and running jobs of source sourceID
// (at most one), oldest first.
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
