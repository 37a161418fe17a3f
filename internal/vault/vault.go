package vault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// Kind is what an entry is kept for.
type Kind string

// The kinds of entries.
const (
	// Objection entries are never collected again: matching faces are
	// dropped at ingestion and hidden from searches.
	Objection Kind = store.VaultObjection
	// Restriction entries hide matching faces from searches until lifted.
	Restriction Kind = store.VaultRestriction
	// Selfie entries are the templates of the selfies a rights request
	// carries, kept until the request closes.
	Selfie Kind = store.VaultSelfie
)

func (k Kind) valid() bool { return k == Objection || k == Restriction || k == Selfie }

// Errors of the vault.
var (
	// ErrClosed is returned by a Vault after Close.
	ErrClosed = errors.New("vault closed")
	// ErrInvalid reports an invalid argument; nothing is written.
	ErrInvalid = errors.New("invalid vault argument")
	// ErrSchemaTooNew is returned by Open when the vault file to import
	// was made by a newer gabarit than this one.
	ErrSchemaTooNew = errors.New("vault schema is newer than this binary")
)

// Entry describes one stored template, without it.
type Entry struct {
	ID        int64
	Kind      Kind
	RequestID int64 // the rights request the template came with
	Created   time.Time
}

// PurposeVault names the keyring's data key that seals the vault's
// templates (keyring.Keyring.SealBytes).
const PurposeVault = "vault"

const (
	blobVersion  = 1 // first byte of a sealed template (keyring.SealBytes)
	nonceSize    = 12
	tagSize      = 16
	blobOverhead = 1 + nonceSize + tagSize
	bindingLabel = "gabarit vault template v2"
)

// Keys seals and opens the vault's templates; *keyring.Keyring implements it.
type Keys interface {
	SealBytes(purpose string, binding, plain []byte) ([]byte, error)
	OpenBytes(purpose string, binding, blob []byte) ([]byte, error)
}

var _ Keys = (*keyring.Keyring)(nil)

// Vault is the sealed template store, over the store's vault tables. It is
// safe for concurrent use, and several Vaults (in one process or many) may
// share one store.
type Vault struct {
	db   *store.DB
	keys Keys

	lmu sync.Mutex // serialises reloads of the cache

	mu      sync.RWMutex // guards what follows
	closed  bool
	version int64 // the change counter the cache reflects (at least)
	cache   []cached
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
type Option func(*options)

type options struct {
	legacy       string
	master       *keyring.Master
	importFault  func(i int) error // tests: fails the import at entry i
	removeLegacy func(path string) error
}

// ImportFile makes Open import the vault file of an older gabarit at path
// (vault.db in the data directory), whose data key master wraps, if it
// exists: see "Older versions" in the package documentation.
func ImportFile(path string, master *keyring.Master) Option {
	return func(o *options) { o.legacy, o.master = path, master }
}

// Open opens the vault kept in db, sealed by keys, and loads the objection
// and restriction templates into memory. A template that does not
// authenticate fails with an error matching keyring.ErrTampered: a vault
// that cannot be read entirely is not used. The caller keeps ownership of
// db and keys, which must outlive the vault.
func Open(ctx context.Context, db *store.DB, keys Keys, opts ...Option) (*Vault, error) {
	if db == nil || keys == nil {
		return nil, fmt.Errorf("open vault: store and keys required: %w", ErrInvalid)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	v := &Vault{db: db, keys: keys, version: -1}
	if o.legacy != "" {
		if err := v.importFile(ctx, o); err != nil {
			return nil, fmt.Errorf("open vault: import %s: %w", o.legacy, err)
		}
	}
	if err := v.refresh(ctx); err != nil {
		return nil, fmt.Errorf("open vault: %w", err)
	}
	return v, nil
}

// refresh reloads the cache when the store's change counter moved since it
// was loaded.
func (v *Vault) refresh(ctx context.Context) error {
	ver, err := v.db.VaultVersion(ctx)
	if err != nil {
		return err
	}
	if v.current(ver) {
		return nil
	}
	v.lmu.Lock()
	defer v.lmu.Unlock()
	if v.current(ver) { // another goroutine reloaded meanwhile
		return nil
	}
	// Read after the counter: the entries hold every write up to ver, and
	// maybe later ones, which the next refresh loads again.
	rows, err := v.db.VaultSealedOf(ctx, 0, store.VaultObjection, store.VaultRestriction)
	if err != nil {
		return err
	}
	cache := make([]cached, 0, len(rows))
	fail := func(err error) error {
		for i := range cache {
			clear(cache[i].vec)
		}
		return err
	}
	for _, r := range rows {
		t, err := v.open(r)
		if err != nil {
			return fail(err)
		}
		cache = append(cache, cached{id: r.ID, kind: Kind(r.Kind), request: r.RequestID, model: r.ModelID, vec: normalized(t)})
	}
	nreq, covered := count(cache)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return fail(ErrClosed)
	}
	for i := range v.cache {
		clear(v.cache[i].vec)
	}
	v.cache, v.nreq, v.covered, v.version = cache, nreq, covered, ver
	return nil
}

// current reports whether the cache reflects change counter ver.
func (v *Vault) current(ver int64) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.version >= ver && v.version >= 0
}

// Add seals and stores templates computed by model modelID for rights
// request requestID, as entries of kind, in one transaction, and returns
// their ids. Objection and restriction templates take effect in every
// Match that starts after Add returns, in this process or any other over
// the same store. Templates must share one positive dimension, be finite
// and not zero; they are compared by cosine, so need not be normalised.
func (v *Vault) Add(ctx context.Context, kind Kind, requestID int64, modelID string, templates [][]float32) ([]int64, error) {
	if err := checkAdd(kind, requestID, modelID, templates); err != nil {
		return nil, fmt.Errorf("add %s templates of request %d: %w", kind, requestID, err)
	}
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	entries := make([]store.VaultNew, len(templates))
	for i, t := range templates {
		entries[i] = store.VaultNew{Kind: string(kind), RequestID: requestID, ModelID: modelID, Dim: len(t)}
	}
	ids, err := v.db.AddVaultEntries(ctx, entries, func(i int, id int64) ([]byte, error) {
		return v.seal(id, kind, requestID, modelID, templates[i])
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("add %s templates of request %d: %w", kind, requestID, err)
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
// entries. It answers from every entry committed before it started, by any
// process over the same store (it reloads them when the store's change
// counter moved). Every request holding entries of those kinds must have
// at least one template of modelID: otherwise Match cannot answer and
// fails with an error matching face.ErrModelMismatch (after a model
// change, the people who objected must be enrolled again with the new
// model), as it does when a template's dimension differs from the
// entries'. Selfies are not matched.
func (v *Vault) Match(ctx context.Context, modelID string, template []float32, kinds []Kind, threshold float64) (bool, error) {
	m, err := v.Matcher(ctx, modelID, kinds, threshold)
	if err != nil {
		return false, err
	}
	return m(template)
}

// Matcher is Match for many templates (the candidates of one search): it
// checks the store's change counter once, reloading the entries if it
// moved, and returns a function that answers Match for each template from
// every entry committed before Matcher was called (and maybe later ones).
// The function is safe for concurrent use; after Close it fails with
// ErrClosed.
func (v *Vault) Matcher(ctx context.Context, modelID string, kinds []Kind, threshold float64) (func(template []float32) (bool, error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if math.IsNaN(threshold) || threshold < -1 || threshold > 1 {
		return nil, fmt.Errorf("match: threshold %v, want a cosine in [-1, 1]: %w", threshold, ErrInvalid)
	}
	var want [2]bool // objection, restriction
	for _, k := range kinds {
		switch k {
		case Objection:
			want[0] = true
		case Restriction:
			want[1] = true
		default:
			return nil, fmt.Errorf("match: kind %q is not matched: %w", k, ErrInvalid)
		}
	}
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	if err := v.refresh(ctx); err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	// The cache only moves forward: whichever the function reads is at
	// least as recent as the one just checked.
	return func(template []float32) (bool, error) { return v.match(modelID, template, want, threshold) }, nil
}

// match answers Match from the cache.
func (v *Vault) match(modelID string, template []float32, want [2]bool, threshold float64) (bool, error) {
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
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	if requestID <= 0 {
		return nil, nil
	}
	rows, err := v.db.VaultSealedOf(ctx, requestID, store.VaultSelfie)
	if err != nil {
		return nil, fmt.Errorf("templates of request %d: %w", requestID, err)
	}
	var out [][]float32
	for _, r := range rows {
		t, err := v.open(r)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// Entries returns the entries of rights request requestID, without their
// templates, in the order they were added.
func (v *Vault) Entries(ctx context.Context, requestID int64) ([]Entry, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	es, err := v.db.VaultEntries(ctx, requestID)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range es {
		out = append(out, Entry{ID: e.ID, Kind: Kind(e.Kind), RequestID: e.RequestID, Created: e.Created})
	}
	return out, nil
}

// RemoveRequest deletes the entries of kind of rights request requestID
// (when the request closes, or a restriction is lifted) and returns how
// many there were. They stop matching in every Match that starts after
// RemoveRequest returns, in any process; on SQLite the rows are
// overwritten and the write-ahead log checkpointed, so the templates leave
// no copy on disk.
func (v *Vault) RemoveRequest(ctx context.Context, requestID int64, kind Kind) (int, error) {
	return v.RemoveRequestAudited(ctx, requestID, kind, nil)
}

// RemoveRequestAudited is RemoveRequest, and appends the audit entry that
// audit returns for the number of entries removed (nil: none) in the same
// store transaction as the removal.
func (v *Vault) RemoveRequestAudited(ctx context.Context, requestID int64, kind Kind, audit func(n int) *store.AuditEntry) (int, error) {
	if !kind.valid() {
		return 0, fmt.Errorf("remove %s entries of request %d: unknown kind: %w", kind, requestID, ErrInvalid)
	}
	if err := v.checkOpen(); err != nil {
		return 0, err
	}
	return v.db.RemoveVaultEntries(ctx, requestID, string(kind), audit)
}

// Requests returns the ids of the rights requests that hold entries of
// kind, in order.
func (v *Vault) Requests(ctx context.Context, kind Kind) ([]int64, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	return v.db.VaultRequests(ctx, string(kind))
}

// Count returns the number of entries (templates) of each kind.
func (v *Vault) Count(ctx context.Context) (map[Kind]int, error) {
	if err := v.checkOpen(); err != nil {
		return nil, err
	}
	n, err := v.db.VaultCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[Kind]int, len(n))
	for k, c := range n {
		out[Kind(k)] = c
	}
	return out, nil
}

// Close zeroes the templates held in memory. Later calls fail with
// ErrClosed. It closes neither the store nor the keys, and is idempotent.
func (v *Vault) Close() error {
	v.lmu.Lock()
	defer v.lmu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	for i := range v.cache {
		clear(v.cache[i].vec)
	}
	v.cache, v.nreq, v.covered = nil, nil, nil
	v.closed = true
	return nil
}

func (v *Vault) checkOpen() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	return nil
}

// count returns, for the entries of cache, the number of requests of each
// kind and, by model id, how many of them have a template of that model.
func count(cache []cached) (nreq map[Kind]int, covered map[Kind]map[string]int) {
	type req struct {
		kind Kind
		id   int64
	}
	models := map[req]map[string]bool{}
	for _, c := range cache {
		r := req{c.kind, c.request}
		if models[r] == nil {
			models[r] = map[string]bool{}
		}
		models[r][c.model] = true
	}
	nreq = map[Kind]int{}
	covered = map[Kind]map[string]int{}
	for r, ms := range models {
		nreq[r.kind]++
		if covered[r.kind] == nil {
			covered[r.kind] = map[string]int{}
		}
		for m := range ms {
			covered[r.kind][m]++
		}
	}
	return nreq, covered
}

// seal encrypts template for entry id.
func (v *Vault) seal(id int64, kind Kind, requestID int64, modelID string, template []float32) ([]byte, error) {
	plain := make([]byte, 4*len(template))
	defer clear(plain)
	for i, x := range template {
		binary.LittleEndian.PutUint32(plain[4*i:], math.Float32bits(x))
	}
	return v.keys.SealBytes(PurposeVault, binding(id, kind, requestID, modelID, len(template)), plain)
}

// open decrypts the template of a stored entry.
func (v *Vault) open(r store.VaultSealed) ([]float32, error) {
	return openBlob(v.keys, r.ID, Kind(r.Kind), r.RequestID, r.ModelID, r.Dim, r.Sealed)
}

// openBlob decrypts the template of entry id; dim is the row's dimension.
func openBlob(keys Keys, id int64, kind Kind, requestID int64, modelID string, dim int, blob []byte) ([]float32, error) {
	if len(blob) > 0 && blob[0] != blobVersion {
		return nil, fmt.Errorf("open entry %d: version %d: %w", id, blob[0], errors.ErrUnsupported)
	}
	if dim <= 0 || len(modelID) > math.MaxUint16 || len(blob) != blobOverhead+4*dim {
		return nil, fmt.Errorf("open entry %d: %d bytes for dimension %d: %w", id, len(blob), dim, keyring.ErrTampered)
	}
	plain, err := keys.OpenBytes(PurposeVault, binding(id, kind, requestID, modelID, dim), blob)
	if err != nil {
		return nil, fmt.Errorf("open entry %d: %w", id, err)
	}
	defer clear(plain)
	if len(plain) != 4*dim {
		return nil, fmt.Errorf("open entry %d: %d bytes for dimension %d: %w", id, len(plain), dim, keyring.ErrTampered)
	}
	return decode(plain), nil
}

func decode(plain []byte) []float32 {
	t := make([]float32, len(plain)/4)
	for i := range t {
		t[i] = math.Float32frombits(binary.LittleEndian.Uint32(plain[4*i:]))
	}
	return t
}

// binding ties a sealed template to its row.
func binding(id int64, kind Kind, requestID int64, modelID string, dim int) []byte {
	b := make([]byte, 0, len(bindingLabel)+8+1+len(kind)+8+4+2+len(modelID))
	b = append(b, bindingLabel...)
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	b = append(b, byte(len(kind)))
	b = append(b, kind...)
	b = binary.BigEndian.AppendUint64(b, uint64(requestID))
	b = binary.BigEndian.AppendUint32(b, uint32(dim))
	b = binary.BigEndian.AppendUint16(b, uint16(len(modelID)))
	return append(b, modelID...)
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
