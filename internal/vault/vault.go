// Package vault keeps the face templates that serve data subjects' rights
// apart from the collection, in their own encrypted SQLite file:
//
//   - objection ("never collect me again") and restriction entries, whose
//     templates are used only to drop matching faces at ingestion and to hide
//     matching faces from searches (see Match);
//   - the selfies of rights requests, kept only until the request closes
//     (RemoveRequest deletes them).
//
// # What leaves the vault
//
// Objection and restriction templates never leave it: Match answers only
// yes or no, no function lists or searches these entries, and Entries and
// Count give ids, kinds, request ids, dates and counts only. Templates
// returns the selfie templates of one request, and nothing else.
//
// # Encryption
//
// The vault has its own data key: 32 random bytes, wrapped by the master key
// (keyring.Master.Wrap, purpose "vault") and stored in the file. Each
// template is sealed with AES-256-GCM under that key and a random 12-byte
// nonce, as 0x01 (version) || nonce || ciphertext + tag; the additional data
// binds it to its row: version, entry id (8 bytes big-endian; ids are never
// reused), the kind, the request id (8 bytes), the dimension (4 bytes) and
// the model id (length-prefixed). A blob copied to another row, kind, request
// or model fails to open with keyring.ErrTampered.
//
// # Matching
//
// The decrypted objection and restriction templates are loaded once, when
// the vault is opened, and kept in memory (updated by Add and RemoveRequest),
// so that Match costs only dot products: it compares the template with every
// entry, which suits the expected size of these lists (hundreds to a few
// thousand entries; ten thousand 512-dimensional entries are about 20 MB of
// memory and 5 million multiply-adds per Match). Changes made by another
// process are seen once the vault is reopened.
//
// # Deletion
//
// The file is opened with secure_delete, so deleted templates are
// overwritten, and RemoveRequest checkpoints and truncates the write-ahead
// log, so that no copy of them lingers there either.
package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go)
)

// Kind is what an entry is kept for.
type Kind string

// The kinds of entries.
const (
	// Objection entries are never collected again: matching faces are
	// dropped at ingestion and hidden from searches.
	Objection Kind = "objection"
	// Restriction entries hide matching faces from searches until lifted.
	Restriction Kind = "restriction"
	// Selfie entries are the templates of the selfies a rights request
	// carries, kept until the request closes.
	Selfie Kind = "selfie"
)

func (k Kind) valid() bool { return k == Objection || k == Restriction || k == Selfie }

// Errors of the vault.
var (
	// ErrClosed is returned by a Vault after Close.
	ErrClosed = errors.New("vault closed")
	// ErrInvalid reports an invalid argument; nothing is written.
	ErrInvalid = errors.New("invalid vault argument")
	// ErrSchemaTooNew is returned by Open when the file was made by a newer
	// gabarit than this one.
	ErrSchemaTooNew = errors.New("vault schema is newer than this binary")
)

// Entry describes one stored template, without it.
type Entry struct {
	ID        int64
	Kind      Kind
	RequestID int64 // the rights request the template came with
	Created   time.Time
}

const (
	keyPurpose    = "vault"
	keySize       = 32
	blobVersion   = 1
	nonceSize     = 12
	tagSize       = 16
	blobOverhead  = 1 + nonceSize + tagSize
	aadLabel      = "gabarit vault template v1"
	schemaVersion = 1
	busyTimeoutMS = 5000
)

const schema = `
CREATE TABLE vault_key (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	wrapped BLOB NOT NULL
);
CREATE TABLE entries (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	kind       TEXT NOT NULL CHECK (kind IN ('objection', 'restriction', 'selfie')),
	request_id INTEGER NOT NULL,
	model_id   TEXT NOT NULL,
	dim        INTEGER NOT NULL CHECK (dim > 0),
	created_at INTEGER NOT NULL,
	template   BLOB NOT NULL
);
CREATE INDEX entries_request ON entries (request_id, kind);
`

// Vault is the encrypted template store. It is safe for concurrent use.
type Vault struct {
	db  *sql.DB // one connection
	now func() time.Time

	wmu sync.Mutex // serialises Add and RemoveRequest: the write and the cache update together

	mu     sync.RWMutex // guards what follows
	key    [keySize]byte
	closed bool
	cache  []cached
	// nreq counts the requests of each kind in cache; covered counts, by
	// model id, those of them that have a template of that model.
	nreq    map[Kind]int
	covered map[Kind]map[string]int
}

// cached is a decrypted objection or restriction template.
type cached struct {
	id      int64
	kind    Kind
	request int64
	model   string
	vec     []float32 // L2-normalised
}

// Option configures Open.
type Option func(*Vault)

// WithClock makes the vault read the time from now instead of time.Now (it
// stamps Entry.Created).
func WithClock(now func() time.Time) Option {
	return func(v *Vault) { v.now = now }
}

// Open opens the vault file at path, creating it (mode 0600) with a new data
// key wrapped by master if needed, and loads the objection and restriction
// templates into memory. A data key wrapped by another master key, or a
// template that does not authenticate, fails with an error matching
// keyring.ErrTampered: a vault that cannot be read entirely is not used.
func Open(ctx context.Context, path string, master *keyring.Master, opts ...Option) (*Vault, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open vault: path must be a plain file name: %w", ErrInvalid)
	}
	if master == nil {
		return nil, fmt.Errorf("open vault: master key required: %w", ErrInvalid)
	}
	// Created readable by its owner only; SQLite gives its WAL and
	// shared-memory files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "secure_delete(1)") // overwrite deleted templates in the file
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	v := &Vault{db: db, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	if err := v.init(ctx, master); err != nil {
		v.zero()
		return nil, errors.Join(fmt.Errorf("open vault: %w", err), db.Close())
	}
	return v, nil
}

// init migrates the file, loads (or creates) the data key and fills the cache.
func (v *Vault) init(ctx context.Context, master *keyring.Master) error {
	var version int
	if err := v.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	switch {
	case version > schemaVersion:
		return fmt.Errorf("version %d, this binary knows %d: %w", version, schemaVersion, ErrSchemaTooNew)
	case version == 0:
		if err := v.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, schema); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion))
			return err
		}); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	var wrapped []byte
	err := v.db.QueryRowContext(ctx, "SELECT wrapped FROM vault_key WHERE id = 1").Scan(&wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		wrapped, err = v.createKey(ctx, master)
	}
	if err != nil {
		return fmt.Errorf("data key: %w", err)
	}
	key, err := master.Unwrap(keyPurpose, wrapped)
	if err != nil {
		return fmt.Errorf("data key: %w", err)
	}
	copy(v.key[:], key)
	clear(key)
	return v.load(ctx)
}

// createKey makes, wraps and stores the vault's data key, unless another
// process stored one first, and returns the stored wrapped key.
func (v *Vault) createKey(ctx context.Context, master *keyring.Master) ([]byte, error) {
	var key [keySize]byte
	defer clear(key[:])
	_, _ = rand.Read(key[:]) // never fails since Go 1.24 (it crashes instead)
	w, err := master.Wrap(keyPurpose, key[:])
	if err != nil {
		return nil, err
	}
	var stored []byte
	err = v.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO vault_key (id, wrapped) VALUES (1, ?)", w); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT wrapped FROM vault_key WHERE id = 1").Scan(&stored)
	})
	return stored, err
}

// load decrypts every objection and restriction template into the cache.
func (v *Vault) load(ctx context.Context) error {
	rows, err := v.db.QueryContext(ctx, `SELECT id, kind, request_id, model_id, dim, template FROM entries
WHERE kind IN ('objection', 'restriction') ORDER BY id`)
	if err != nil {
		return fmt.Errorf("load entries: %w", err)
	}
	defer rows.Close()
	var cache []cached
	for rows.Next() {
		var c cached
		var dim int
		var blob []byte
		if err := rows.Scan(&c.id, &c.kind, &c.request, &c.model, &dim, &blob); err != nil {
			return fmt.Errorf("load entries: %w", err)
		}
		t, err := v.open(c.id, c.kind, c.request, c.model, dim, blob)
		if err != nil {
			return err
		}
		c.vec = normalized(t)
		cache = append(cache, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load entries: %w", err)
	}
	v.cache = cache
	v.recount()
	return nil
}

// Add seals and stores templates computed by model modelID for rights
// request requestID, as entries of kind, in one transaction, and returns
// their ids. Objection and restriction templates take effect in Match when
// Add returns. Templates must share one positive dimension, be finite and
// not zero; they are compared by cosine, so need not be normalised.
func (v *Vault) Add(ctx context.Context, kind Kind, requestID int64, modelID string, templates [][]float32) ([]int64, error) {
	if err := checkAdd(kind, requestID, modelID, templates); err != nil {
		return nil, fmt.Errorf("add %s templates of request %d: %w", kind, requestID, err)
	}
	v.wmu.Lock()
	defer v.wmu.Unlock()
	var key [keySize]byte
	defer clear(key[:])
	if err := v.copyKey(&key); err != nil {
		return nil, err
	}
	dim := len(templates[0])
	ids := make([]int64, len(templates))
	created := v.now().UnixMilli()
	err := v.tx(ctx, func(tx *sql.Tx) error {
		for i, t := range templates {
			res, err := tx.ExecContext(ctx, `INSERT INTO entries (kind, request_id, model_id, dim, created_at, template)
VALUES (?, ?, ?, ?, ?, x'')`, kind, requestID, modelID, dim, created)
			if err != nil {
				return err
			}
			if ids[i], err = res.LastInsertId(); err != nil {
				return err
			}
			blob, err := seal(&key, ids[i], kind, requestID, modelID, t)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE entries SET template = ? WHERE id = ?", blob, ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add %s templates of request %d: %w", kind, requestID, err)
	}
	if kind != Selfie {
		v.mu.Lock()
		for i, t := range templates {
			v.cache = append(v.cache, cached{id: ids[i], kind: kind, request: requestID, model: modelID,
				vec: normalized(append([]float32(nil), t...))})
		}
		v.recount()
		v.mu.Unlock()
	}
	return ids, nil
}

func checkAdd(kind Kind, requestID int64, modelID string, templates [][]float32) error {
	switch {
	case !kind.valid():
		return fmt.Errorf("unknown kind %q: %w", kind, ErrInvalid)
	case requestID <= 0:
		return fmt.Errorf("request id must be positive: %w", ErrInvalid)
	case modelID == "" || len(modelID) > math.MaxUint16:
		return fmt.Errorf("model id must have 1 to %d bytes: %w", math.MaxUint16, ErrInvalid)
	case len(templates) == 0:
		return fmt.Errorf("no template: %w", ErrInvalid)
	}
	dim := len(templates[0])
	if dim == 0 || dim > (math.MaxInt32-blobOverhead)/4 {
		return fmt.Errorf("dimension %d: %w", dim, ErrInvalid)
	}
	for i, t := range templates {
		if len(t) != dim {
			return fmt.Errorf("template %d has dimension %d, template 0 %d: %w", i, len(t), dim, ErrInvalid)
		}
		if n := norm(t); n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
			return fmt.Errorf("template %d is zero or not finite: %w", i, ErrInvalid)
		}
	}
	return nil
}

// Match reports whether template, computed by model modelID, has a cosine
// similarity of at least threshold with any entry of the given kinds
// (Objection, Restriction or both). It reveals nothing else about the
// entries. Every request holding entries of those kinds must have at least
// one template of modelID: otherwise Match cannot answer and fails with an
// error matching face.ErrModelMismatch (after a model change, the people who
// objected must be enrolled again with the new model), as it does when a
// template's dimension differs from the entries'. Selfies are not matched.
func (v *Vault) Match(ctx context.Context, modelID string, template []float32, kinds []Kind, threshold float64) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if math.IsNaN(threshold) || threshold < -1 || threshold > 1 {
		return false, fmt.Errorf("match: threshold %v, want a cosine in [-1, 1]: %w", threshold, ErrInvalid)
	}
	var want [2]bool // objection, restriction
	for _, k := range kinds {
		switch k {
		case Objection:
			want[0] = true
		case Restriction:
			want[1] = true
		default:
			return false, fmt.Errorf("match: kind %q is not matched: %w", k, ErrInvalid)
		}
	}
	qn := norm(template)
	if qn == 0 || math.IsNaN(qn) || math.IsInf(qn, 0) {
		return false, fmt.Errorf("match: template is zero or not finite: %w", ErrInvalid)
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return false, ErrClosed
	}
	for i, k := range []Kind{Objection, Restriction} {
		if want[i] && v.covered[k][modelID] != v.nreq[k] {
			return false, fmt.Errorf("match: %d %s requests have no template of model %q: %w",
				v.nreq[k]-v.covered[k][modelID], k, modelID, face.ErrModelMismatch)
		}
	}
	limit := float32(threshold * qn) // dot(template, unit vector) ≥ threshold·|template|
	for i := range v.cache {
		c := &v.cache[i]
		if c.model != modelID || !(c.kind == Objection && want[0] || c.kind == Restriction && want[1]) {
			continue
		}
		if len(c.vec) != len(template) {
			return false, fmt.Errorf("match: template of dimension %d, entries of model %q have %d: %w",
				len(template), modelID, len(c.vec), face.ErrModelMismatch)
		}
		if dot(template, c.vec) >= limit {
			return true, nil
		}
	}
	return false, nil
}

// Templates returns the selfie templates of rights request requestID, in
// the order they were added. It is the only function that returns
// templates, and only selfies: any other kind fails with ErrInvalid, since
// objection and restriction templates never leave the vault.
func (v *Vault) Templates(ctx context.Context, requestID int64, kind Kind) ([][]float32, error) {
	if kind != Selfie {
		return nil, fmt.Errorf("templates of request %d: %s templates never leave the vault: %w", requestID, kind, ErrInvalid)
	}
	var key [keySize]byte
	defer clear(key[:])
	if err := v.copyKey(&key); err != nil {
		return nil, err
	}
	rows, err := v.db.QueryContext(ctx, `SELECT id, model_id, dim, template FROM entries
WHERE request_id = ? AND kind = 'selfie' ORDER BY id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("templates of request %d: %w", requestID, err)
	}
	defer rows.Close()
	var out [][]float32
	for rows.Next() {
		var id int64
		var model string
		var dim int
		var blob []byte
		if err := rows.Scan(&id, &model, &dim, &blob); err != nil {
			return nil, fmt.Errorf("templates of request %d: %w", requestID, err)
		}
		t, err := openBlob(&key, id, Selfie, requestID, model, dim, blob)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("templates of request %d: %w", requestID, err)
	}
	return out, nil
}

// Entries returns the entries of rights request requestID, without their
// templates, in the order they were added.
func (v *Vault) Entries(ctx context.Context, requestID int64) ([]Entry, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := v.db.QueryContext(ctx, `SELECT id, kind, request_id, created_at FROM entries
WHERE request_id = ? ORDER BY id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("entries of request %d: %w", requestID, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var created int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.RequestID, &created); err != nil {
			return nil, fmt.Errorf("entries of request %d: %w", requestID, err)
		}
		e.Created = time.UnixMilli(created).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("entries of request %d: %w", requestID, err)
	}
	return out, nil
}

// RemoveRequest deletes the entries of kind of rights request requestID
// (when the request closes, or a restriction is lifted) and returns how
// many there were. The rows are overwritten in the file (secure_delete) and
// the write-ahead log is checkpointed and truncated, so the templates leave
// no copy on disk; they stop matching when RemoveRequest returns.
func (v *Vault) RemoveRequest(ctx context.Context, requestID int64, kind Kind) (int, error) {
	if !kind.valid() {
		return 0, fmt.Errorf("remove %s entries of request %d: unknown kind: %w", kind, requestID, ErrInvalid)
	}
	v.wmu.Lock()
	defer v.wmu.Unlock()
	if err := v.checkOpen(); err != nil {
		return 0, err
	}
	var n int64
	err := v.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM entries WHERE request_id = ? AND kind = ?", requestID, kind)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove %s entries of request %d: %w", kind, requestID, err)
	}
	if kind != Selfie {
		v.mu.Lock()
		kept := v.cache[:0]
		for _, c := range v.cache {
			if c.request == requestID && c.kind == kind {
				clear(c.vec)
				continue
			}
			kept = append(kept, c)
		}
		clear(v.cache[len(kept):])
		v.cache = kept
		v.recount()
		v.mu.Unlock()
	}
	if err := v.checkpoint(ctx); err != nil {
		return int(n), fmt.Errorf("remove %s entries of request %d: deleted, but %w", kind, requestID, err)
	}
	return int(n), nil
}

// Requests returns the ids of the rights requests that hold entries of
// kind, in order.
func (v *Vault) Requests(ctx context.Context, kind Kind) ([]int64, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := v.db.QueryContext(ctx, "SELECT DISTINCT request_id FROM entries WHERE kind = ? ORDER BY request_id", kind)
	if err != nil {
		return nil, fmt.Errorf("requests with %s entries: %w", kind, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("requests with %s entries: %w", kind, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("requests with %s entries: %w", kind, err)
	}
	return ids, nil
}

// Count returns the number of entries (templates) of each kind.
func (v *Vault) Count(ctx context.Context) (map[Kind]int, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := v.db.QueryContext(ctx, "SELECT kind, count(*) FROM entries GROUP BY kind")
	if err != nil {
		return nil, fmt.Errorf("count entries: %w", err)
	}
	defer rows.Close()
	out := map[Kind]int{}
	for rows.Next() {
		var k Kind
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count entries: %w", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count entries: %w", err)
	}
	return out, nil
}

// Close zeroes the data key and the templates held in memory and closes the
// file. Later calls fail with ErrClosed. It is idempotent.
func (v *Vault) Close() error {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.zeroLocked()
	v.closed = true
	v.mu.Unlock()
	if err := v.db.Close(); err != nil {
		return fmt.Errorf("close vault: %w", err)
	}
	return nil
}

func (v *Vault) zero() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.zeroLocked()
}

func (v *Vault) zeroLocked() {
	clear(v.key[:])
	for i := range v.cache {
		clear(v.cache[i].vec)
	}
	v.cache = nil
	v.recount()
}

func (v *Vault) checkOpen() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	return nil
}

func (v *Vault) copyKey(dst *[keySize]byte) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	*dst = v.key
	return nil
}

// recount rebuilds nreq and covered from the cache; v.mu is held for
// writing (or the vault is not yet shared).
func (v *Vault) recount() {
	type req struct {
		kind Kind
		id   int64
	}
	models := map[req]map[string]bool{}
	for _, c := range v.cache {
		r := req{c.kind, c.request}
		if models[r] == nil {
			models[r] = map[string]bool{}
		}
		models[r][c.model] = true
	}
	v.nreq = map[Kind]int{}
	v.covered = map[Kind]map[string]int{}
	for r, ms := range models {
		v.nreq[r.kind]++
		if v.covered[r.kind] == nil {
			v.covered[r.kind] = map[string]int{}
		}
		for m := range ms {
			v.covered[r.kind][m]++
		}
	}
}

// open decrypts the template of an entry with the vault's key.
func (v *Vault) open(id int64, kind Kind, requestID int64, modelID string, dim int, blob []byte) ([]float32, error) {
	var key [keySize]byte
	defer clear(key[:])
	if err := v.copyKey(&key); err != nil {
		return nil, err
	}
	return openBlob(&key, id, kind, requestID, modelID, dim, blob)
}

// checkpoint copies the write-ahead log into the file and truncates it.
func (v *Vault) checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	if err := v.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("checkpoint: the write-ahead log is in use by another process")
	}
	return nil
}

// tx runs fn in one IMMEDIATE transaction and commits it if fn returns nil.
func (v *Vault) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := v.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// seal encrypts template for entry id.
func seal(key *[keySize]byte, id int64, kind Kind, requestID int64, modelID string, template []float32) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	n := 4 * len(template)
	out := make([]byte, 1+nonceSize+n, 1+nonceSize+n+tagSize)
	out[0] = blobVersion
	nonce := out[1 : 1+nonceSize]
	_, _ = rand.Read(nonce) // never fails since Go 1.24 (it crashes instead)
	plain := out[1+nonceSize:]
	for i, x := range template {
		binary.LittleEndian.PutUint32(plain[4*i:], math.Float32bits(x))
	}
	g.Seal(plain[:0], nonce, plain, blobAAD(id, kind, requestID, modelID, len(template)))
	return out[:cap(out)], nil
}

// openBlob decrypts the template of entry id; dim is the row's dimension.
func openBlob(key *[keySize]byte, id int64, kind Kind, requestID int64, modelID string, dim int, blob []byte) ([]float32, error) {
	if len(blob) > 0 && blob[0] != blobVersion {
		return nil, fmt.Errorf("open entry %d: version %d: %w", id, blob[0], errors.ErrUnsupported)
	}
	if dim <= 0 || len(blob) != blobOverhead+4*dim {
		return nil, fmt.Errorf("open entry %d: %d bytes for dimension %d: %w", id, len(blob), dim, keyring.ErrTampered)
	}
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := g.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], blobAAD(id, kind, requestID, modelID, dim))
	if err != nil {
		return nil, fmt.Errorf("open entry %d: %w", id, keyring.ErrTampered)
	}
	defer clear(plain)
	t := make([]float32, dim)
	for i := range t {
		t[i] = math.Float32frombits(binary.LittleEndian.Uint32(plain[4*i:]))
	}
	return t, nil
}

// blobAAD binds a sealed template to its row.
func blobAAD(id int64, kind Kind, requestID int64, modelID string, dim int) []byte {
	b := make([]byte, 0, len(aadLabel)+1+8+1+len(kind)+8+4+2+len(modelID))
	b = append(b, aadLabel...)
	b = append(b, blobVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	b = append(b, byte(len(kind)))
	b = append(b, kind...)
	b = binary.BigEndian.AppendUint64(b, uint64(requestID))
	b = binary.BigEndian.AppendUint32(b, uint32(dim))
	b = binary.BigEndian.AppendUint16(b, uint16(len(modelID)))
	return append(b, modelID...)
}

func newGCM(key *[keySize]byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("new aes cipher: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("new gcm: %w", err)
	}
	return g, nil
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// normalized scales v in place to unit length and returns it.
func normalized(v []float32) []float32 {
	if n := norm(v); n > 0 {
		inv := 1 / n
		for i := range v {
			v[i] = float32(float64(v[i]) * inv)
		}
	}
	return v
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
