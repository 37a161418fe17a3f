package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"gabarit/internal/store"
	"gabarit/internal/vindex"
)

// ErrRetired refuses to change a retired source: it is never suspended,
// resumed or ingested again.
var ErrRetired = errors.New("source is retired")

// RetiredError says that source ID is retired and so cannot be Verb
// ("resumed", "suspended"). It matches ErrRetired.
type RetiredError struct {
	ID   int64
	Verb string
}

func (e *RetiredError) Error() string {
	return fmt.Sprintf("source %d is retired; it cannot be %s", e.ID, e.Verb)
}

// Unwrap returns ErrRetired.
func (e *RetiredError) Unwrap() error { return ErrRetired }

// StateRetired is how a retired source's state (store.StateDeleted) is
// shown (store.SourceState.Name).
var StateRetired = store.StateDeleted.Name()

// StateName is the state of a source as people see it.
func StateName(s store.SourceState) string { return s.Name() }

// refuseRetired fails with a *RetiredError when source id is retired.
func refuseRetired(ctx context.Context, tx *store.Tx, id int64, verb string) error {
	s, err := tx.SourceState(ctx, id)
	if err != nil {
		return err
	}
	if s == store.StateDeleted {
		return &RetiredError{ID: id, Verb: verb}
	}
	return nil
}

// Shredder destroys the data key of a source; *keyring.Keyring implements it.
type Shredder interface {
	Shred(ctx context.Context, sourceID int64) error
}

// MaxRetireReason is the longest reason kept with a retirement, in characters.
const MaxRetireReason = 500

// Retirement says who retires a source, why, and what else to reach.
type Retirement struct {
	Actor  string
	Reason string // optional free text kept in the audit entry; no names or e-mail addresses
	// Index, when set, is the open vector index the source's faces are
	// deleted from. An index not given here is rebuilt when next opened (it
	// holds faces the store no longer has), and searches never show a face
	// the store does not hold.
	Index vindex.Index
	// Quiesce, when set, is called once the source is marked retired and
	// before its key is destroyed: it waits for whatever may still be
	// writing to the source (an ingest already running) to stop.
	Quiesce func(ctx context.Context) error
}

// RetireReport says what a retirement did.
type RetireReport struct {
	SourceID int64 `json:"source_id"`
	// AlreadyRetired is set when the source was retired before this call,
	// which then only finished what an interrupted retirement left.
	AlreadyRetired bool  `json:"already_retired"`
	Images         int64 `json:"images"` // deleted by this call
	Faces          int64 `json:"faces"`  // deleted by this call
}

// retireBatch is how many images are deleted per transaction.
const retireBatch = 500

// RetireSource ends source id for good, in steps that a re-run finishes
// whenever one is interrupted:
//
//  1. in one transaction, the source is marked retired (store.StateDeleted,
//     so nothing more is ingested from it), its ingest progress (locators
//     and hashes) is deleted, and a source.retire audit entry records the
//     actor, the reason and how many images and faces it held;
//  2. its data key is destroyed, which makes its templates unreadable
//     wherever a copy lives, backups included;
//  3. its faces are deleted from o.Index, then its images and faces from
//     the store, a batch at a time.
//
// Retiring a retired source runs steps 2 and 3 again (audited when
// anything was left) and reports AlreadyRetired. An unknown source fails
// with store.ErrNotFound.
func RetireSource(ctx context.Context, db *store.DB, keys Shredder, id int64, o Retirement) (RetireReport, error) {
	rep := RetireReport{SourceID: id}
	reason := strings.TrimSpace(o.Reason)
	if utf8.RuneCountInString(reason) > MaxRetireReason {
		return rep, fmt.Errorf("the reason is longer than %d characters: %w", MaxRetireReason, store.ErrInvalid)
	}
	err := db.Tx(ctx, func(tx *store.Tx) error {
		h, err := tx.SourceHoldings(ctx, id)
		if err != nil {
			return err
		}
		rep.AlreadyRetired = h.State == store.StateDeleted
		if !rep.AlreadyRetired {
			if err := tx.SetSourceState(ctx, id, store.StateDeleted); err != nil {
				return err
			}
		}
		if _, err := tx.DeleteSourceProgress(ctx, id); err != nil {
			return err
		}
		if rep.AlreadyRetired && h.Images == 0 && !h.Key {
			return nil // nothing left to do, nothing to audit
		}
		detail := map[string]any{"images": h.Images, "faces": h.Faces}
		if rep.AlreadyRetired {
			detail["resumed"] = true
		}
		if reason != "" {
			detail["reason"] = reason
		}
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, store.AuditEntry{Actor: o.Actor, Action: "source.retire",
			Object: fmt.Sprintf("source/%d", id), Detail: b})
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("retire source %d: %w", id, err)
	}
	if o.Quiesce != nil {
		if err := o.Quiesce(ctx); err != nil {
			return rep, fmt.Errorf("retire source %d: %w", id, err)
		}
	}
	if err := keys.Shred(ctx, id); err != nil {
		return rep, fmt.Errorf("retire source %d: %w", id, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("retire source %d (run it again to finish): %w", id, err)
		}
		imgs, faces, err := db.SourceImageBatch(ctx, id, retireBatch)
		if err != nil {
			return rep, fmt.Errorf("retire source %d: %w", id, err)
		}
		if len(imgs) == 0 {
			return rep, nil
		}
		slices.Sort(faces)
		// The index first: were the run to stop after it, the rows left
		// still name the faces for the next run.
		if err := deleteFromIndex(ctx, o.Index, faces); err != nil {
			return rep, fmt.Errorf("retire source %d: %w", id, err)
		}
		deleted, err := db.DeleteRetiredImages(ctx, id, imgs)
		if err != nil {
			return rep, fmt.Errorf("retire source %d: %w", id, err)
		}
		rep.Images += int64(len(imgs))
		rep.Faces += int64(len(deleted))
		// A face added between the two reads (none should be: the source
		// is retired) is deleted from the index too.
		var extra []int64
		for _, f := range deleted {
			if _, found := slices.BinarySearch(faces, f); !found {
				extra = append(extra, f)
			}
		}
		if err := deleteFromIndex(ctx, o.Index, extra); err != nil {
			return rep, fmt.Errorf("retire source %d: %w", id, err)
		}
	}
}

// deleteFromIndex deletes ids from idx (if any), even if ctx is being
// cancelled: what follows relies on it.
func deleteFromIndex(ctx context.Context, idx vindex.Index, ids []int64) error {
	if idx == nil || len(ids) == 0 {
		return nil
	}
	if err := idx.Delete(context.WithoutCancel(ctx), ids); err != nil {
		return fmt.Errorf("delete %d faces from the vector index: %w", len(ids), err)
	}
	return nil
}
