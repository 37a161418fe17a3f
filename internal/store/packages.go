package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// RightsPackage is the access package of a rights request, kept in the
// store so that every instance can serve it: sealed by the keyring (the
// caller seals and opens it; the store sees only ciphertext), with the
// SHA-256 of the plain package.
type RightsPackage struct {
	RequestID int64
	Sealed    []byte
	SHA256    string // hex, of the plain package
	Size      int64  // bytes of the plain package
	Created   time.Time
}

// PutRightsPackage keeps (or replaces: a run resumed after a crash makes
// it again) the sealed access package of request id. An unknown request
// fails with ErrNotFound, a malformed SHA-256 or an empty package with
// ErrInvalid.
func (db *DB) PutRightsPackage(ctx context.Context, p RightsPackage) error {
	what := fmt.Sprintf("keep the access package of rights request %d", p.RequestID)
	if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 || len(p.Sealed) == 0 || p.Size < 0 {
		return fmt.Errorf("%s: a sealed package and its SHA-256 required: %w", what, ErrInvalid)
	}
	return db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.rightsRequest(ctx, p.RequestID); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO rights_packages (request_id, sealed, sha256, size_bytes, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (request_id) DO UPDATE SET
	sealed = excluded.sealed, sha256 = excluded.sha256, size_bytes = excluded.size_bytes, created_at = excluded.created_at`,
			p.RequestID, p.Sealed, p.SHA256, p.Size, ms(tx.now())); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// RightsPackageOf returns the sealed access package of request id, or
// ErrNotFound.
func (db *DB) RightsPackageOf(ctx context.Context, id int64) (RightsPackage, error) {
	p := RightsPackage{RequestID: id}
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT sealed, sha256, size_bytes, created_at FROM rights_packages WHERE request_id = ?`, id).
		Scan(&p.Sealed, &p.SHA256, &p.Size, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return RightsPackage{}, fmt.Errorf("access package of rights request %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return RightsPackage{}, fmt.Errorf("access package of rights request %d: %w", id, err)
	}
	p.Created = fromMS(at)
	return p, nil
}

// DeleteRightsPackage deletes the access package of request id; it
// reports whether there was one.
func (db *DB) DeleteRightsPackage(ctx context.Context, id int64) (bool, error) {
	var n int64
	err := db.Tx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM rights_packages WHERE request_id = ?`, id)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("delete the access package of rights request %d: %w", id, err)
	}
	return n > 0, nil
}
