package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// AuditHead is the last entry of the audit log: its id and hash.
type AuditHead struct {
	ID   int64
	Hash [32]byte
}

// WithAuditWitness keeps the head of the audit log (last id and hash) in the
// file at path, outside the database, rewritten after every transaction that
// appends to the log. The hash chain alone cannot show that the last
// entries were deleted; CheckAuditWitness compares the log with the file and
// can. The file is only as safe as where it is kept: keep it, or copies of
// its line, where whoever can write the database cannot.
func WithAuditWitness(path string) Option {
	return func(o *options) { o.witness = path }
}

// witness writes the audit head to its file, never going backwards.
type witness struct {
	path string
	mu   sync.Mutex
	last int64
	err  error // the last write error; the file may be behind
}

// record writes h if it is newer than what was written. A failure leaves
// the file behind the log (which CheckAuditWitness accepts) and is kept for
// WitnessErr: the commit it follows has happened and stands.
func (w *witness) record(h AuditHead) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if h.ID <= w.last {
		return
	}
	// Another process writing the same store may have written a newer head.
	if b, err := os.ReadFile(w.path); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if id, err := strconv.ParseInt(f[0], 10, 64); err == nil && id >= h.ID {
				w.last = id
				return
			}
		}
	}
	line := fmt.Sprintf("%d %x\n", h.ID, h.Hash)
	tmp := w.path + ".tmp"
	err := os.WriteFile(tmp, []byte(line), 0o600)
	if err == nil {
		err = syncFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, w.path)
	}
	w.err = err
	if err == nil {
		w.last = h.ID
	}
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WitnessErr returns the error of the last failed write of the audit
// witness file, or nil.
func (db *DB) WitnessErr() error {
	if db.witness == nil {
		return nil
	}
	db.witness.mu.Lock()
	defer db.witness.mu.Unlock()
	return db.witness.err
}

// ErrAuditTampered reports an audit log that does not match its chain or
// its witness.
var ErrAuditTampered = errors.New("audit log tampered with")

// CheckAudit verifies the hash chain (VerifyAudit) and, with a witness
// file, that the log still holds the entry the witness names, with the same
// hash: entries deleted from the end, or a log replaced by another valid
// chain, are detected. A witness behind the log (a crash between a commit
// and the witness write) is fine. Errors wrap ErrAuditTampered and name the
// first bad entry.
func (db *DB) CheckAudit(ctx context.Context) (head AuditHead, err error) {
	ok, bad, err := db.VerifyAudit(ctx)
	if err != nil {
		return head, err
	}
	if !ok {
		return head, fmt.Errorf("entry %d does not follow the chain (changed, removed or reordered entries at or before it): %w", bad, ErrAuditTampered)
	}
	var hash []byte
	err = db.r.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&head.ID, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return head, fmt.Errorf("check audit: %w", err)
	}
	copy(head.Hash[:], hash)
	if db.witness == nil {
		return head, nil
	}
	b, err := os.ReadFile(db.witness.path)
	if errors.Is(err, fs.ErrNotExist) {
		if head.ID == 0 {
			return head, nil
		}
		return head, fmt.Errorf("audit witness %s is missing while the log has %d entries: %w", filepath.Base(db.witness.path), head.ID, ErrAuditTampered)
	}
	if err != nil {
		return head, fmt.Errorf("check audit: %w", err)
	}
	f := strings.Fields(string(b))
	var wid int64
	var whash []byte
	if len(f) == 2 {
		wid, err = strconv.ParseInt(f[0], 10, 64)
		if err == nil {
			whash, err = hex.DecodeString(f[1])
		}
	}
	if len(f) != 2 || err != nil || len(whash) != 32 {
		return head, fmt.Errorf("audit witness %s is unreadable: %w", filepath.Base(db.witness.path), ErrAuditTampered)
	}
	if wid > head.ID {
		return head, fmt.Errorf("entries %d to %d were removed from the end of the log (the witness saw entry %d): %w", head.ID+1, wid, wid, ErrAuditTampered)
	}
	var got []byte
	err = db.r.QueryRowContext(ctx, `SELECT hash FROM audit WHERE id = ?`, wid).Scan(&got)
	if err != nil || !bytes.Equal(got, whash) {
		return head, fmt.Errorf("entry %d differs from the one the witness saw: %w", wid, ErrAuditTampered)
	}
	return head, nil
}
