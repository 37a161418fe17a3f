package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gabarit/internal/keyring"
)

// PutSourceKey stores the wrapped data key of a source; see Tx.PutSourceKey.
func (db *DB) PutSourceKey(ctx context.Context, sourceID int64, wrapped []byte) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.PutSourceKey(ctx, sourceID, wrapped) })
}

// PutSourceKey stores wrapped, the source's data key wrapped by the master
// key. The store never sees the key in clear. A source has at most one key:
// replacing it would orphan the templates it protects, so a second put fails
// with ErrExists (after DeleteSourceKey a new key may be put). An empty key
// fails with ErrInvalid, an unknown source with ErrNotFound.
func (tx *Tx) PutSourceKey(ctx context.Context, sourceID int64, wrapped []byte) error {
	if len(wrapped) == 0 {
		return fmt.Errorf("put source %d key: empty key: %w", sourceID, ErrInvalid)
	}
	var sourceExists, keyExists bool
	if err := tx.tx.QueryRowContext(ctx, `
SELECT EXISTS (SELECT 1 FROM sources WHERE id = ?), EXISTS (SELECT 1 FROM source_keys WHERE source_id = ?)`,
		sourceID, sourceID).Scan(&sourceExists, &keyExists); err != nil {
		return fmt.Errorf("put source %d key: %w", sourceID, err)
	}
	switch {
	case !sourceExists:
		return fmt.Errorf("put source %d key: source: %w", sourceID, ErrNotFound)
	case keyExists:
		return fmt.Errorf("put source %d key: %w", sourceID, ErrExists)
	}
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO source_keys (source_id, wrapped_key, created_at) VALUES (?, ?, ?)`,
		sourceID, wrapped, ms(tx.now())); err != nil {
		return fmt.Errorf("put source %d key: %w", sourceID, err)
	}
	return nil
}

// SourceKey returns the wrapped data key of a source, or ErrNotFound when it
// has none (never put, or shredded by DeleteSourceKey).
func (db *DB) SourceKey(ctx context.Context, sourceID int64) ([]byte, error) {
	var wrapped []byte
	err := db.r.QueryRowContext(ctx, `SELECT wrapped_key FROM source_keys WHERE source_id = ?`, sourceID).Scan(&wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("source %d key: %w", sourceID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("source %d key: %w", sourceID, err)
	}
	return wrapped, nil
}

// DeleteSourceKey crypto-shreds a source (see Tx.DeleteSourceKey), then
// checkpoints the WAL so the key's bytes leave it too.
func (db *DB) DeleteSourceKey(ctx context.Context, sourceID int64) error {
	if err := db.Tx(ctx, func(tx *Tx) error { return tx.DeleteSourceKey(ctx, sourceID) }); err != nil {
		return err
	}
	return db.Checkpoint(ctx)
}

// DeleteSourceKey deletes the wrapped data key of a source, which makes
// every template encrypted under it unreadable (crypto-shredding). A copy of
// the database file taken earlier still holds the wrapped key; shredding
// reaches such backups only if they are keyed apart (or the master key is
// rotated). secure_delete overwrites the row in the database file; call
// DB.Checkpoint after the transaction commits to clear the WAL as well. A
// source without a key fails with ErrNotFound.
func (tx *Tx) DeleteSourceKey(ctx context.Context, sourceID int64) error {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM source_keys WHERE source_id = ?`, sourceID)
	if err != nil {
		return fmt.Errorf("delete source %d key: %w", sourceID, err)
	}
	if err := affectedOne(res, fmt.Sprintf("delete source %d key", sourceID)); err != nil {
		return err
	}
	// Its templates are unreadable from now on: every index drops them.
	return tx.outboxFaces(ctx, OpDel, "f.image_id IN (SELECT id FROM images WHERE source_id = ?)", sourceID)
}

// KeyStore returns db as a keyring.KeyStore: the wrapped data keys live in
// the source_keys table, and a missing key is keyring.ErrNoKey.
func (db *DB) KeyStore() keyring.KeyStore { return keyStore{db} }

type keyStore struct{ db *DB }

var _ keyring.KeyStore = keyStore{}

func (k keyStore) SourceKey(ctx context.Context, id int64) ([]byte, error) {
	b, err := k.db.SourceKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errors.Join(keyring.ErrNoKey, err)
	}
	return b, err
}

func (k keyStore) PutSourceKey(ctx context.Context, id int64, wrapped []byte) error {
	return k.db.PutSourceKey(ctx, id, wrapped)
}

func (k keyStore) DeleteSourceKey(ctx context.Context, id int64) error {
	err := k.db.DeleteSourceKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// HoldsSealedData reports whether the store holds anything sealed with a
// master key: a source's wrapped data key or a search's sealed record. A
// missing master key must then be restored, never replaced.
func (db *DB) HoldsSealedData(ctx context.Context) (bool, error) {
	var held bool
	err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM source_keys) OR EXISTS (SELECT 1 FROM searches)`).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("look for sealed data: %w", err)
	}
	return held, nil
}
