package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ProgressState is the outcome of ingesting one entry of a source.
type ProgressState string

// The outcomes recorded for resumable ingestion.
const (
	ProgressDone   ProgressState = "done"
	ProgressFailed ProgressState = "failed"
)

// MarkProgress records the outcome of one source entry; see Tx.MarkProgress.
func (db *DB) MarkProgress(ctx context.Context, sourceID int64, locator string, sha [32]byte, state ProgressState, reason string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.MarkProgress(ctx, sourceID, locator, sha, state, reason) })
}

// MarkProgress records (or replaces) the outcome of ingesting the entry at
// locator of a source, so that an interrupted ingest can resume. sha is the
// content hash, zero when the entry could not be read. reason is a short
// machine-readable cause for a failure (e.g. "decode"), never a name or path.
// An unknown state or empty locator fails with ErrInvalid.
func (tx *Tx) MarkProgress(ctx context.Context, sourceID int64, locator string, sha [32]byte, state ProgressState, reason string) error {
	switch {
	case state != ProgressDone && state != ProgressFailed:
		return fmt.Errorf("mark progress in source %d: unknown state %q: %w", sourceID, state, ErrInvalid)
	case strings.TrimSpace(locator) == "":
		return fmt.Errorf("mark progress in source %d: locator required: %w", sourceID, ErrInvalid)
	}
	var hash any
	if sha != ([32]byte{}) {
		hash = sha[:]
	}
	if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO ingest_progress (source_id, locator, sha256, state, reason, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (source_id, locator) DO UPDATE SET
	sha256 = excluded.sha256, state = excluded.state, reason = excluded.reason, updated_at = excluded.updated_at`,
		sourceID, locator, hash, state, reason, ms(tx.now())); err != nil {
		return fmt.Errorf("mark progress in source %d: %w", sourceID, err)
	}
	return nil
}

// Progress returns the recorded outcome of the entry at locator of a source;
// ok is false when none was recorded.
func (db *DB) Progress(ctx context.Context, sourceID int64, locator string) (state ProgressState, ok bool, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT state FROM ingest_progress WHERE source_id = ? AND locator = ?`,
		sourceID, locator).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("progress in source %d: %w", sourceID, err)
	}
	return state, true, nil
}

// SeenContent reports whether content with hash sha was ingested from a
// source (state done, under any locator), even if its image has since been
// purged or erased: ingestion must not bring it back.
func (db *DB) SeenContent(ctx context.Context, sourceID int64, sha [32]byte) (bool, error) {
	var one int
	err := db.r.QueryRowContext(ctx,
		`SELECT 1 FROM ingest_progress WHERE source_id = ? AND sha256 = ? AND state = 'done' LIMIT 1`,
		sourceID, sha[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("seen content in source %d: %w", sourceID, err)
	}
	return true, nil
}
