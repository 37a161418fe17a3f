package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"gabarit/internal/fsutil"
)

// AuditHead is the last entry of the audit log: its id and hash.
type AuditHead struct {
	ID   int64
	Hash [32]byte
}

// WithAuditWitness keeps the head of the audit log (last id and hash) in the
// file at path, outside the database. Given more than once, every file is a
// witness: keep one outside the data directory (GABARIT_AUDIT_WITNESS), on
// storage whoever can write the database cannot.
//
// The hash chain alone cannot show that the last entries were deleted; the
// witness can, and normal use never erases that evidence: before an audit
// entry is committed, every witness must name the log's last entry (the one
// it last saw); otherwise the transaction fails with ErrAuditTampered and
// the witness is left as it is, so audited actions stop until an
// administrator looks (ResetAuditWitness records that they did). A witness
// never moves backwards, never adopts a shorter or different chain, and is
// never created while the log has entries.
//
// How a commit stays exact across a crash: before committing, the file
// names the last entry (committed) and the entry about to be committed
// (pending); after the commit, pending becomes committed. The log's last
// entry must be one of the two. A file lock (path + ".lock") orders the
// processes that share the store.
func WithAuditWitness(path string) Option {
	return func(o *options) { o.witnesses = append(o.witnesses, path) }
}

// WithAuditWitnessKey signs the heads a witness holds with mac (an HMAC
// under a key derived from the master key): whoever can write the
// database and the witness but has no master key cannot forge a head for
// a rewritten chain, only roll back to an older one, which a copy kept off
// the machine shows (AuditHeadLine, CheckAuditHead).
func WithAuditWitnessKey(mac func(msg []byte) ([]byte, error)) Option {
	return func(o *options) { o.witnessMAC = mac }
}

// witness keeps the audit head in its files.
type witness struct {
	files []string
	mac   func([]byte) ([]byte, error) // nil: heads are not signed
	mu    sync.Mutex
	last  int64 // the highest head this process saw committed
	err   error // the last failed write after a commit; the file may lag
	// shared: the log is shared by instances on other hosts (PostgreSQL),
	// each with witnesses of its own (see "Witnesses of a shared log").
	shared bool
}

// Witnesses of a shared log: how witnesses work when the log is a PostgreSQL
// database shared by instances on several hosts. Each instance keeps its
// own witness files (on its own host, plus GABARIT_AUDIT_WITNESS), and the
// others append entries it never sees being written. So a shared witness
// accepts a log that grew past its head, as long as the entry it names is
// still there with the same hash; it still detects, at its next audited
// action or audit verify, every removal of entries up to the last one it
// saw, a changed entry it saw, and a witness rolled back or unsigned. What
// one host's witness cannot see is the removal of entries written after its
// head by other instances: their own witnesses see that. A witness missing
// on a host (a new instance) starts witnessing from the log's head; its
// deletion is therefore not evidence in itself on PostgreSQL, but the other
// hosts' witnesses and the heads kept off the machines (AuditHeadLine,
// CheckAuditHead) are.

// witnessHeader starts a witness file of the current format. Files of one
// line "ID HASH" (before heads were signed) are read as a committed head.
const witnessHeader = "gabarit audit witness v2"

// witnessState is what one witness file says.
type witnessState struct {
	missing   bool
	committed AuditHead
	pending   *AuditHead
	legacy    bool // the unsigned one-line format
}

// headMessage is what a head's MAC covers.
func headMessage(h AuditHead) []byte {
	return fmt.Appendf(nil, "gabarit audit head\x00%d\x00%x", h.ID, h.Hash)
}

// sign returns h's MAC in hex ("-" without a key).
func (w *witness) sign(h AuditHead) (string, error) {
	if w.mac == nil {
		return "-", nil
	}
	m, err := w.mac(headMessage(h))
	if err != nil {
		return "", fmt.Errorf("sign the audit head: %w", err)
	}
	return hex.EncodeToString(m), nil
}

// checkSig reports whether sig is h's MAC (always true without a key).
func (w *witness) checkSig(h AuditHead, sig string) (bool, error) {
	if w.mac == nil {
		return true, nil
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) == 0 {
		return false, nil
	}
	want, err := w.mac(headMessage(h))
	if err != nil {
		return false, fmt.Errorf("check the audit head's signature: %w", err)
	}
	return hmac.Equal(got, want), nil
}

// ParseAuditHead reads "ID HASH" or "ID HASH MAC" (the line AuditHeadLine
// prints), returning the MAC's hex ("" when absent).
func ParseAuditHead(line string) (AuditHead, string, error) {
	f := strings.Fields(line)
	var h AuditHead
	if len(f) != 2 && len(f) != 3 {
		return h, "", fmt.Errorf("an audit head is \"ID HASH [MAC]\": %w", ErrInvalid)
	}
	id, err := strconv.ParseInt(f[0], 10, 64)
	hash, herr := hex.DecodeString(f[1])
	if err != nil || id < 1 || herr != nil || len(hash) != 32 {
		return h, "", fmt.Errorf("an audit head is an entry id and a 64-digit hash: %w", ErrInvalid)
	}
	h.ID = id
	copy(h.Hash[:], hash)
	if len(f) == 3 {
		return h, f[2], nil
	}
	return h, "", nil
}

// read reads witness file path; unreadable, badly formed or badly signed
// files fail with ErrAuditTampered.
func (w *witness) read(path string) (witnessState, error) {
	var st witnessState
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		st.missing = true
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read audit witness %s: %w", path, err)
	}
	bad := fmt.Errorf("audit witness %s is unreadable: %w", path, ErrAuditTampered)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 {
		h, sig, err := ParseAuditHead(lines[0])
		if err != nil || sig != "" {
			return st, bad
		}
		st.committed, st.legacy = h, true
		return st, nil
	}
	if lines[0] != witnessHeader || len(lines) > 3 {
		return st, bad
	}
	for _, l := range lines[1:] {
		kind, rest, _ := strings.Cut(l, " ")
		h, sig, err := ParseAuditHead(rest)
		if err != nil || sig == "" {
			return st, bad
		}
		ok, err := w.checkSig(h, sig)
		if err != nil {
			return st, err
		}
		if !ok {
			return st, fmt.Errorf("audit witness %s names entry %d with a signature this deployment's master key did not make: %w", path, h.ID, ErrAuditTampered)
		}
		switch {
		case kind == "committed" && st.committed.ID == 0:
			st.committed = h
		case kind == "pending" && st.pending == nil:
			st.pending = &h
		default:
			return st, bad
		}
	}
	return st, nil
}

// write replaces witness file path atomically; with durable, the file and
// its directory are synced before it returns (before a commit: a witness
// that lost its pending entry to a power cut would accuse an intact log).
// After the commit a lost write only leaves the entry pending, which is
// still exact, so that write is not synced.
func (w *witness) write(path string, committed AuditHead, pending *AuditHead, durable bool) error {
	var b strings.Builder
	b.WriteString(witnessHeader + "\n")
	for _, l := range []struct {
		kind string
		h    *AuditHead
	}{{"committed", &committed}, {"pending", pending}} {
		if l.h == nil || l.h.ID == 0 {
			continue
		}
		sig, err := w.sign(*l.h)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %x %s\n", l.kind, l.h.ID, l.h.Hash, sig)
	}
	if err := fsutil.WriteFile(path, []byte(b.String()), 0o600, durable); err != nil {
		return fmt.Errorf("write audit witness %s: %w", path, err)
	}
	return nil
}

// lock takes the file locks of every witness, in order, and returns their
// release.
func (w *witness) lock() (func(), error) {
	var held []*os.File
	release := func() {
		for _, f := range held {
			f.Close() // closing releases the lock
		}
	}
	for _, p := range w.files {
		f, err := os.OpenFile(p+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			release()
			return nil, fmt.Errorf("lock audit witness: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			release()
			return nil, fmt.Errorf("lock audit witness: %w", err)
		}
		held = append(held, f)
	}
	return release, nil
}

// hashAt returns the hash of entry id as q sees the log (nil when absent).
func hashAt(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) ([]byte, error) {
	var got []byte
	err := q.QueryRowContext(ctx, `SELECT hash FROM audit WHERE id = ?`, id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return got, err
}

// compare checks that head, the log's last entry, is the one st names, and
// explains the difference otherwise (ErrAuditTampered). at reads the log.
func (w *witness) compare(ctx context.Context, path string, st witnessState, head AuditHead,
	at func(context.Context, int64) ([]byte, error)) error {
	name := filepath.Base(path)
	switch {
	case st.missing && (head.ID == 0 || w.shared):
		return nil
	case st.missing:
		return fmt.Errorf("audit witness %s is missing while the log has %d entries: %w", name, head.ID, ErrAuditTampered)
	case st.committed == head || st.pending != nil && *st.pending == head:
		if st.committed.ID < w.last {
			return fmt.Errorf("audit witness %s went back from entry %d to entry %d: %w", name, w.last, st.committed.ID, ErrAuditTampered)
		}
		return nil
	}
	wid := st.committed.ID
	if st.pending != nil && !w.shared {
		// On a shared log, another instance may have committed its own
		// entry under the id of a pending one that never committed.
		wid = st.pending.ID
	}
	if wid > head.ID {
		return fmt.Errorf("entries %d to %d were removed from the end of the log (the witness %s saw entry %d): %w",
			head.ID+1, wid, name, wid, ErrAuditTampered)
	}
	got, err := at(ctx, st.committed.ID)
	if err != nil {
		return fmt.Errorf("check audit: %w", err)
	}
	if !bytes.Equal(got, st.committed.Hash[:]) {
		return fmt.Errorf("entry %d differs from the one the witness %s saw: %w", st.committed.ID, name, ErrAuditTampered)
	}
	if w.shared {
		return nil // other instances appended after it (a shared log)
	}
	if st.legacy {
		// The unsigned format of earlier versions, written after the
		// commit: behind the log after a crash. Accepted once, then
		// replaced by the exact format.
		return nil
	}
	return fmt.Errorf("the log has entries after entry %d that the witness %s never saw (the witness was rolled back, or entries were added without gabarit): %w",
		st.committed.ID, name, ErrAuditTampered)
}

// prepare runs before a transaction that appended audit entries commits:
// base is the log's last entry before them (zero for an empty log), next
// the last one appended. Every witness must name base; each then records
// next as pending. Without force, a witness that does not name base fails
// the transaction with ErrAuditTampered and is left as it is.
func (w *witness) prepare(ctx context.Context, tx *txConn, base, next AuditHead, force bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	release, err := w.lock()
	if err != nil {
		return err
	}
	defer release()
	if force {
		w.last = 0 // the administrator's reset may name an entry it saw replaced
	}
	at := func(ctx context.Context, id int64) ([]byte, error) { return hashAt(ctx, tx, id) }
	for _, p := range w.files {
		if force {
			continue
		}
		st, err := w.read(p)
		if err == nil {
			err = w.compare(ctx, p, st, base, at)
		}
		if err != nil {
			return fmt.Errorf("%w; audited actions are stopped until an administrator checks the log (gabarit audit verify, then gabarit audit witness-reset)", err)
		}
	}
	for _, p := range w.files {
		if err := w.write(p, base, &next, true); err != nil {
			return err
		}
	}
	return nil
}

// commit runs after the transaction committed: next becomes the committed
// head of every witness that still holds it as pending (another process may
// have moved on already). A failure leaves next pending, which is still
// exact; it is kept for WitnessErr.
func (w *witness) commit(next AuditHead) {
	w.mu.Lock()
	defer w.mu.Unlock()
	release, err := w.lock()
	if err != nil {
		w.err = err
		return
	}
	defer release()
	w.err = nil
	for _, p := range w.files {
		st, err := w.read(p)
		if err != nil {
			w.err = err
			continue
		}
		if st.pending == nil || *st.pending != next {
			continue
		}
		if err := w.write(p, next, nil, false); err != nil {
			w.err = err
		}
	}
	w.last = max(w.last, next.ID)
}

// WitnessErr returns the error of the last failed write of the audit
// witness after a commit, or nil.
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

// lastEntry returns the log's last entry (zero when empty).
func (db *DB) lastEntry(ctx context.Context) (AuditHead, error) {
	var head AuditHead
	var hash []byte
	err := db.r.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&head.ID, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return head, fmt.Errorf("check audit: %w", err)
	}
	copy(head.Hash[:], hash)
	return head, nil
}

// CheckAudit verifies the hash chain (VerifyAudit) and that every witness
// file names the log's last entry: entries deleted from the end, a log
// replaced by another valid chain, a witness rolled back to an older entry,
// deleted, or not signed by the master key are all detected. Errors wrap
// ErrAuditTampered and name the first bad entry.
func (db *DB) CheckAudit(ctx context.Context) (head AuditHead, err error) {
	ok, bad, err := db.VerifyAudit(ctx)
	if err != nil {
		return head, err
	}
	if !ok {
		return head, fmt.Errorf("entry %d does not follow the chain (changed, removed or reordered entries at or before it): %w", bad, ErrAuditTampered)
	}
	w := db.witness
	if w == nil {
		return db.lastEntry(ctx)
	}
	// Under the witnesses' locks, no other process is between reading a
	// witness and writing it, so the log's last entry is the committed or
	// the pending one.
	w.mu.Lock()
	defer w.mu.Unlock()
	release, err := w.lock()
	if err != nil {
		return head, err
	}
	defer release()
	if head, err = db.lastEntry(ctx); err != nil {
		return head, err
	}
	at := func(ctx context.Context, id int64) ([]byte, error) { return hashAt(ctx, db.r, id) }
	for _, p := range w.files {
		st, err := w.read(p)
		if err == nil {
			err = w.compare(ctx, p, st, head, at)
		}
		if err != nil {
			return head, err
		}
	}
	return head, nil
}

// AuditHeadLine returns the log's last entry as "ID HASH MAC", the line to
// copy off the machine (print it, mail it, keep it in a ticket): whatever
// happens to this machine later, CheckAuditHead tells whether a log still
// holds that entry unchanged. MAC is "-" without a witness key.
func (db *DB) AuditHeadLine(ctx context.Context) (string, AuditHead, error) {
	head, err := db.lastEntry(ctx)
	if err != nil || head.ID == 0 {
		return "", head, err
	}
	w := db.witness
	if w == nil {
		w = &witness{}
	}
	sig, err := w.sign(head)
	if err != nil {
		return "", head, err
	}
	return fmt.Sprintf("%d %x %s", head.ID, head.Hash, sig), head, nil
}

// CheckAuditHead checks a head copied off the machine earlier (the line of
// AuditHeadLine, or a witness file's content): the log must still hold that
// entry with that hash (the chain, checked by CheckAudit, then vouches for
// everything before it), and a MAC, when given, must be this deployment's.
func (db *DB) CheckAuditHead(ctx context.Context, text string) (AuditHead, error) {
	line := strings.TrimSpace(text)
	if strings.HasPrefix(line, witnessHeader) {
		// A witness file: its committed head.
		for _, l := range strings.Split(line, "\n")[1:] {
			if kind, rest, _ := strings.Cut(l, " "); kind == "committed" {
				line = rest
			}
		}
	}
	h, sig, err := ParseAuditHead(line)
	if err != nil {
		return h, err
	}
	if sig != "" && sig != "-" && db.witness != nil {
		ok, err := db.witness.checkSig(h, sig)
		if err != nil {
			return h, err
		}
		if !ok {
			return h, fmt.Errorf("the head names entry %d with a signature this deployment's master key did not make: %w", h.ID, ErrAuditTampered)
		}
	}
	got, err := hashAt(ctx, db.r, h.ID)
	if err != nil {
		return h, fmt.Errorf("check audit head: %w", err)
	}
	switch {
	case got == nil:
		last, err := db.lastEntry(ctx)
		if err != nil {
			return h, err
		}
		return h, fmt.Errorf("entries %d to %d were removed from the end of the log (the head copied off the machine names entry %d): %w",
			last.ID+1, h.ID, h.ID, ErrAuditTampered)
	case !bytes.Equal(got, h.Hash[:]):
		return h, fmt.Errorf("entry %d differs from the one the head copied off the machine names: %w", h.ID, ErrAuditTampered)
	}
	return h, nil
}

// ResetAuditWitness makes every witness name the log's last entry again,
// after an administrator checked a mismatch (or set up a new witness), and
// records that in the log: an audit.witness-reset entry with reason and
// what each witness said before, so that the reset itself is evidence.
func (db *DB) ResetAuditWitness(ctx context.Context, actor, reason string) (int64, error) {
	if strings.TrimSpace(reason) == "" {
		return 0, fmt.Errorf("reset the audit witness: a reason is required: %w", ErrInvalid)
	}
	if db.witness == nil {
		return 0, fmt.Errorf("reset the audit witness: this store keeps no witness: %w", ErrInvalid)
	}
	type said struct {
		File string `json:"file"`
		Said string `json:"said"`
	}
	head, err := db.lastEntry(ctx)
	if err != nil {
		return 0, err
	}
	at := func(ctx context.Context, id int64) ([]byte, error) { return hashAt(ctx, db.r, id) }
	var before []said
	for _, p := range db.witness.files {
		st, err := db.witness.read(p)
		s := said{File: filepath.Base(p)}
		switch {
		case err != nil:
			s.Said = "unreadable or not signed by this deployment"
		case st.missing:
			s.Said = "missing"
		default:
			s.Said = fmt.Sprintf("entry %d", st.committed.ID)
			if st.pending != nil {
				s.Said += fmt.Sprintf(" (entry %d pending)", st.pending.ID)
			}
			if cerr := db.witness.compare(ctx, p, st, head, at); cerr == nil {
				s.Said += ", matching the log"
			}
		}
		before = append(before, s)
	}
	detail, err := json.Marshal(map[string]any{"reason": reason, "log_head": head.ID, "witnesses": before})
	if err != nil {
		return 0, err
	}
	var id int64
	err = db.tx(ctx, true, func(tx *Tx) error {
		id, err = tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "audit.witness-reset", Object: "audit", Detail: detail})
		return err
	})
	return id, err
}
