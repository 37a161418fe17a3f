package ingest

import (
	"context"
	"encoding/json"
	"fmt"

	"gabarit/internal/store"
)

// Audit actions of an ingest run. A run writes ActionStart before it reads
// anything and ActionEnd when it stops, whatever its outcome; a run that
// was killed (which runs no code) has no ActionEnd, and the next run of the
// source writes it for it, with what it committed.
const (
	ActionStart = "source.ingest-start"
	ActionEnd   = "source.ingest"
)

// Auditor is the audit log and the store's image counts; *store.DB
// implements it.
type Auditor interface {
	// AppendAudit appends an entry to the audit log (tx nil: in its own
	// transaction).
	AppendAudit(ctx context.Context, tx *store.Tx, e store.AuditEntry) (int64, error)
	// QueryAudit returns audit entries, newest first.
	QueryAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
	// LastImageID returns the largest image id ever assigned.
	LastImageID(ctx context.Context) (int64, error)
	// ImagesAfter counts the images of a source with an id above after,
	// and their faces.
	ImagesAfter(ctx context.Context, sourceID, after int64) (images, faces int64, err error)
}

// Journal is the audit trail of one ingest run: Begin writes its start,
// End its outcome.
type Journal struct {
	a        Auditor
	actor    string
	sourceID int64
	start    int64 // the id of the run's ActionStart entry
}

// startDetail is the Detail of an ActionStart entry.
type startDetail struct {
	// AfterImage is the largest image id assigned when the run started:
	// the run's images have larger ids.
	AfterImage int64 `json:"after_image"`
}

// Begin records in the audit log that actor starts an ingest of source
// sourceID, before anything is read or committed, so that no image is ever
// committed by a run the log does not show. If the source's previous run
// started and never recorded its end (it was killed, or the machine
// stopped), Begin first records that end for it: an ActionEnd entry with
// "interrupted" and "killed" true, the id of its start, and the images and
// faces of the source it committed (those the store still holds). Runs of
// one source must not overlap (the server refuses a second one).
func Begin(ctx context.Context, a Auditor, actor string, sourceID int64) (*Journal, error) {
	object := fmt.Sprintf("source/%d", sourceID)
	start, open, err := unfinished(ctx, a, object)
	if err != nil {
		return nil, fmt.Errorf("audit ingest of source %d: %w", sourceID, err)
	}
	if open {
		var d startDetail
		if err := json.Unmarshal(start.Detail, &d); err != nil {
			return nil, fmt.Errorf("audit ingest of source %d: start entry %d: %w", sourceID, start.ID, err)
		}
		images, faces, err := a.ImagesAfter(ctx, sourceID, d.AfterImage)
		if err != nil {
			return nil, fmt.Errorf("audit ingest of source %d: %w", sourceID, err)
		}
		detail, err := json.Marshal(map[string]any{"start": start.ID, "images": images, "faces": faces,
			"interrupted": true, "killed": true, "failed": false})
		if err == nil {
			_, err = a.AppendAudit(ctx, nil, store.AuditEntry{Actor: start.Actor, Action: ActionEnd, Object: object, Detail: detail})
		}
		if err != nil {
			return nil, fmt.Errorf("audit the end of killed ingest %d of source %d: %w", start.ID, sourceID, err)
		}
	}
	last, err := a.LastImageID(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit ingest of source %d: %w", sourceID, err)
	}
	detail, err := json.Marshal(startDetail{AfterImage: last})
	if err != nil {
		return nil, err
	}
	id, err := a.AppendAudit(ctx, nil, store.AuditEntry{Actor: actor, Action: ActionStart, Object: object, Detail: detail})
	if err != nil {
		return nil, fmt.Errorf("audit the start of the ingest of source %d: %w", sourceID, err)
	}
	return &Journal{a: a, actor: actor, sourceID: sourceID, start: id}, nil
}

// StartID returns the id of the run's ActionStart entry.
func (j *Journal) StartID() int64 { return j.start }

// End records the outcome of the run: an ActionEnd entry with its counts,
// whether it was interrupted (cancelled) or failed, and the id of its
// start. Call it with a context that is not cancelled.
func (j *Journal) End(ctx context.Context, sum Summary, interrupted, failed bool) error {
	detail, err := json.Marshal(map[string]any{"start": j.start, "images": sum.Images, "faces": sum.Faces,
		"skipped": sum.Skipped, "suppressed": sum.Suppressed, "errors": sum.Failed,
		"interrupted": interrupted, "failed": failed})
	if err == nil {
		_, err = j.a.AppendAudit(ctx, nil, store.AuditEntry{Actor: j.actor, Action: ActionEnd,
			Object: fmt.Sprintf("source/%d", j.sourceID), Detail: detail})
	}
	if err != nil {
		return fmt.Errorf("audit the ingest of source %d: %w", j.sourceID, err)
	}
	return nil
}

// unfinished returns the newest ingest entry about object when it is a
// start with no end after it.
func unfinished(ctx context.Context, a Auditor, object string) (store.AuditEntry, bool, error) {
	f := store.AuditFilter{Action: "source.ingest*", Limit: store.MaxAuditLimit}
	for {
		page, err := a.QueryAudit(ctx, f)
		if err != nil || len(page) == 0 {
			return store.AuditEntry{}, false, err
		}
		for _, e := range page { // newest first
			if e.Object != object {
				continue
			}
			return e, e.Action == ActionStart, nil
		}
		f.Before = page[len(page)-1].ID
	}
}
