package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// AuditEntry is one event of the append-only audit log. It never holds
// biometric data (templates, image bytes), names or e-mails: Object and
// Detail refer to rows by id.
type AuditEntry struct {
	ID       int64     // assigned by AppendAudit: 1, 2, 3, … without gaps
	At       time.Time // zero means now, by the store clock; milliseconds stored
	Actor    string    // required
	Action   string    // required, e.g. "image.delete"
	Object   string    // what was acted on, e.g. "image/42"; may be empty
	Detail   json.RawMessage
	PrevHash [32]byte // the Hash of the previous entry; zero for the first
	Hash     [32]byte // AuditHash(PrevHash, entry)
}

// AuditHash returns the chain hash of e after prev:
//
//	SHA-256(prev || be64(ID) || be64(At in Unix ms) ||
//	        be32(len(Actor)) || Actor || be32(len(Action)) || Action ||
//	        be32(len(Object)) || Object || be32(len(Detail)) || Detail)
//
// where be64 and be32 are big-endian two's-complement integers and the
// strings are the stored UTF-8 bytes (Detail compact JSON). The first
// entry's prev is 32 zero bytes. It ignores e.PrevHash and e.Hash, so a
// copy of the log can be verified offline.
func AuditHash(prev [32]byte, e AuditEntry) [32]byte {
	h := sha256.New()
	h.Write(prev[:])
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(e.ID))
	h.Write(buf[:])
	binary.BigEndian.PutUint64(buf[:], uint64(e.At.UnixMilli()))
	h.Write(buf[:])
	for _, s := range [][]byte{[]byte(e.Actor), []byte(e.Action), []byte(e.Object), e.Detail} {
		binary.BigEndian.PutUint32(buf[:4], uint32(len(s)))
		h.Write(buf[:4])
		h.Write(s)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// AppendAudit appends e to the audit log in tx, the transaction of the change
// it records, or in a transaction of its own when tx is nil. See
// Tx.AppendAudit.
func (db *DB) AppendAudit(ctx context.Context, tx *Tx, e AuditEntry) (id int64, err error) {
	if tx != nil {
		return tx.AppendAudit(ctx, e)
	}
	err = db.Tx(ctx, func(tx *Tx) error {
		id, err = tx.AppendAudit(ctx, e)
		return err
	})
	return id, err
}

// AppendAudit appends e to the audit log and returns its id. It links e to
// the last entry by hash (AuditHash); write transactions are serialised, so
// the chain has no forks. Actor and Action are required and Detail, when
// not empty, must be JSON (stored compacted; empty means {}); otherwise it
// fails with ErrInvalid.
func (tx *Tx) AppendAudit(ctx context.Context, e AuditEntry) (int64, error) {
	switch {
	case strings.TrimSpace(e.Actor) == "":
		return 0, fmt.Errorf("append audit: actor required: %w", ErrInvalid)
	case strings.TrimSpace(e.Action) == "":
		return 0, fmt.Errorf("append audit: action required: %w", ErrInvalid)
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage("{}")
	} else {
		var compact bytes.Buffer
		if err := json.Compact(&compact, e.Detail); err != nil {
			return 0, fmt.Errorf("append audit %s: detail is not JSON: %w", e.Action, ErrInvalid)
		}
		e.Detail = compact.Bytes()
	}
	if e.At.IsZero() {
		e.At = tx.now()
	}

	var lastID int64
	var last []byte
	err := tx.tx.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&lastID, &last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The first entry follows 32 zero bytes.
	case err != nil:
		return 0, fmt.Errorf("append audit %s: %w", e.Action, err)
	case len(last) != len(e.PrevHash):
		return 0, fmt.Errorf("append audit %s: entry %d has a %d-byte hash", e.Action, lastID, len(last))
	default:
		copy(e.PrevHash[:], last)
	}
	if tx.head == nil {
		tx.base = AuditHead{ID: lastID, Hash: e.PrevHash}
	}
	e.ID = lastID + 1
	e.Hash = AuditHash(e.PrevHash, e)
	if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO audit (id, at, actor, action, object, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, ms(e.At), e.Actor, e.Action, e.Object, string(e.Detail), e.PrevHash[:], e.Hash[:]); err != nil {
		return 0, fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	tx.head = &AuditHead{ID: e.ID, Hash: e.Hash}
	return e.ID, nil
}

// VerifyAudit recomputes the audit chain from the first entry. It reports
// ok when every entry's id follows the previous one, its prev_hash is the
// previous entry's hash and its hash matches its contents. Otherwise
// firstBad is the id of the first entry that fails: the changed entry, the
// entry after a deleted one, or the first of two swapped ones. It does not
// rely on the triggers. Deleting the last entries leaves a valid shorter
// chain; detecting that needs the head hash kept elsewhere.
func (db *DB) VerifyAudit(ctx context.Context) (ok bool, firstBad int64, err error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT id, at, actor, action, object, detail, prev_hash, hash FROM audit ORDER BY id`)
	if err != nil {
		return false, 0, fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	var prev [32]byte
	var want int64 = 1
	for rows.Next() {
		var e AuditEntry
		var at int64
		var detail string
		var prevHash, hash []byte
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &detail, &prevHash, &hash); err != nil {
			return false, 0, fmt.Errorf("verify audit: %w", err)
		}
		e.At = fromMS(at)
		e.Detail = json.RawMessage(detail)
		sum := AuditHash(prev, e)
		if e.ID != want || !bytes.Equal(prevHash, prev[:]) || !bytes.Equal(hash, sum[:]) {
			return false, e.ID, nil
		}
		prev = sum
		want++
	}
	if err := rows.Err(); err != nil {
		return false, 0, fmt.Errorf("verify audit: %w", err)
	}
	return true, 0, nil
}

// AuditEntries returns the audit entries with ids in [from, to] in id order
// (to ≤ 0: up to the last).
func (db *DB) AuditEntries(ctx context.Context, from, to int64) ([]AuditEntry, error) {
	if to <= 0 {
		to = math.MaxInt64
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, at, actor, action, object, detail, prev_hash, hash FROM audit
WHERE id BETWEEN ? AND ? ORDER BY id`, from, to)
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	return out, nil
}

// AuditHeadID is the id of the last audit entry (0 when the log is empty).
func (db *DB) AuditHeadID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := db.r.QueryRowContext(ctx, `SELECT max(id) FROM audit`).Scan(&id); err != nil {
		return 0, fmt.Errorf("audit head: %w", err)
	}
	return id.Int64, nil
}
