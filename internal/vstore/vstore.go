// Package vstore keeps a data directory's vector index on disk and in step
// with the store.
//
// The index is derived data: the store holds every face and its encrypted
// template, and the index can always be rebuilt from them (Rebuild, `gabarit
// reindex`). It is saved atomically (a temporary file, fsync, rename, fsync
// of the directory) as one file holding a header (format, model, dimension,
// the last index outbox seq it applied, its size) and the index's own
// encoding.
//
// Every change of faces writes its index operations to the store's index
// outbox in the same transaction (see store.IndexOp): "add" for a face
// committed by an ingest or released from quarantine, "del" for a face
// erased, purged, retired, quarantined or crypto-shredded. A Handle applies
// the operations of its model after the last seq it applied, in seq order
// (CatchUp): an add loads the face's template from the store and opens it
// (a face no longer stored is skipped), a del removes the face (removing
// an absent face is not an error). Applying is idempotent, so a file saved
// in the middle of a catch-up, or an operation applied twice, is harmless;
// the applied seq only moves once a batch is in the index, so a failed
// catch-up is retried from the same place and never skips an operation.
// The store guarantees that seq values commit in seq order (one writer on
// SQLite, one advisory lock on PostgreSQL), which is what lets the applier
// take every operation up to the head it read as final.
//
// Open loads the saved index and catches it up; Handle.Index catches up
// after every Add (an ingest batch it adds has just been committed), Save
// before it saves, and `gabarit serve` every few seconds, so that an
// instance sees the changes made by the others. Direct deletes through
// Handle.Index still make an erasure immediate in the process that made
// it; the outbox makes it durable and reach every other index.
//
// Old operations are pruned from the store (store.PruneIndexOutbox). An
// index that had not applied all of them, or whose applied seq is above
// the store's head (a store restored from an older copy), is rebuilt from
// the store (Handle.Behind, Applied.Rebuilt). A file saved before the
// outbox existed has no applied seq: it is rebuilt once and saved in its
// place (on SQLite its old face-id watermark could have been trusted, but
// a rebuild is always right and happens once).
//
// Searches also check every hit against the store (package search), so a
// stale index never shows a deleted face.
//
// A face whose sealed template cannot be opened (altered or swapped bytes)
// never stops a rebuild or a catch-up: it is put in quarantine and left out
// (Quarantine); Release puts it back once its template opens again, Erase
// deletes it.
//
// The file holds templates in a form the index can compare (for the
// approximate index, int8 codes), not encrypted: it is kept with mode 0600 in
// the data directory and excluded from backups, which can rebuild it.
package vstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/vindex"
)

// magic starts every index file.
const magic = "GBVSTORE1\n"

// maxHeader bounds the JSON header of a file.
const maxHeader = 1 << 16

// opsBatch is how many outbox operations a catch-up reads at a time.
const opsBatch = 4096

// TemplateFunc receives one stored face's sealed template; template is
// valid only until it returns.
type TemplateFunc = func(faceID, sourceID int64, modelID string, template []byte) error

// Store is what vstore reads from the relational store; *store.DB implements it.
type Store interface {
	// TemplatesAfter streams every template of a face whose id is above
	// after, in id order (a rebuild reads them all).
	TemplatesAfter(ctx context.Context, after int64, fn TemplateFunc) error
	// FaceTemplates streams the templates of the faces among ids that are
	// stored.
	FaceTemplates(ctx context.Context, ids []int64, fn TemplateFunc) error
	// IndexOutboxHead and IndexOpsAfter read the index outbox; see
	// store.DB.
	IndexOutboxHead(ctx context.Context) (int64, error)
	IndexOpsAfter(ctx context.Context, modelID string, after int64, limit int) (ops []store.IndexOp, head, pruned int64, err error)
	// StoreID is the store's identity, recorded in the index file.
	StoreID(ctx context.Context) (string, error)
}

var _ Store = (*store.DB)(nil)

// Quarantine records faces whose sealed template cannot be opened; a Store
// that also implements it (as *store.DB does) has such faces skipped:
// they are put in quarantine (audited once) and left out of the index, and
// faces already in quarantine are left out without being opened. With a
// Store that does not, such a face fails Open and Rebuild.
type Quarantine interface {
	QuarantineFace(ctx context.Context, id int64, found, reason, actor string) (bool, error)
	// QuarantinedIDs returns the faces of a model in quarantine (for a
	// rebuild), QuarantinedAmong those among ids (for a catch-up).
	QuarantinedIDs(ctx context.Context, modelID string) (map[int64]bool, error)
	QuarantinedAmong(ctx context.Context, ids []int64) (map[int64]bool, error)
}

// Opener decrypts templates; *keyring.Keyring implements it.
type Opener interface {
	Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error)
}

// Kind is an index implementation: its name (recorded in the file), how to
// make an empty one and how to load a saved one.
type Kind struct {
	Name string
	New  func(dim int) vindex.Index
	Load func(r io.Reader) (vindex.Index, error)
}

// header describes a saved index.
type header struct {
	Kind    string `json:"kind"`
	ModelID string `json:"model_id"`
	Dim     int    `json:"dim"`
	// OutboxSeq is the last index outbox seq applied: every operation up
	// to it is in the index. Files saved before the outbox have none
	// (they held max_face_id, a watermark of face ids) and are rebuilt.
	OutboxSeq *int64 `json:"outbox_seq,omitempty"`
	// StoreID is the identity of the store whose outbox OutboxSeq counts
	// (store.DB.StoreID): a file of another store is rebuilt.
	StoreID string `json:"store_id,omitempty"`
	Len     int    `json:"len"`
}

// Handle is an open index, kept in step with the store's index outbox.
type Handle struct {
	// Index is the index to search and to change: its Add (an ingest's
	// batch, just committed) and Delete (an erasure, to make it
	// immediate) go to the index under the handle's lock, and Add then
	// catches up with the outbox. It stays valid when a catch-up rebuilds
	// the index underneath.
	Index vindex.Index

	path    string
	kind    Kind
	modelID string
	dim     int
	st      Store
	keys    Opener
	storeID string               // the store's identity, recorded in the file
	cur     atomic.Pointer[slot] // the index in use; replaced by a rebuild

	remote *remote // set for a remote index (OpenRemote)

	mu      sync.Mutex     // serialises catch-ups, changes through Index and saves
	applied int64          // the last outbox seq applied
	fresh   map[int64]bool // ids just added through Index, whose add need not be loaded again
	// deferred is the last failure of a remote engine to take changes the
	// store had committed (nil once a catch-up reached the outbox's head):
	// see Deferred.
	deferred error

	// Rebuilt and CaughtUp say what Open had to do: rebuild the index from
	// the store, and how many faces it added (rebuilding or catching up).
	Rebuilt  bool
	CaughtUp int
	// Behind is set when Open rebuilt the index because operations it had
	// not applied were pruned from the outbox (or the store is older than
	// the file): worth a warning.
	Behind bool
	// OtherStore is set when Open rebuilt the index because the file was
	// saved over another store (the data directory was pointed at another
	// database): worth a warning.
	OtherStore bool
	// Damaged is why the saved file could not be loaded (nil when it was
	// loaded, or when there was none). Open then rebuilt the index and saved
	// it in the file's place, so that the next Open loads it instead of
	// rebuilding again; if that save failed, Damaged says so too.
	Damaged error
}

// slot holds the index in use.
type slot struct{ idx vindex.Index }

// Applied says what a catch-up did.
type Applied struct {
	Added   int // faces added to the index
	Deleted int // faces deleted from it (some may have been absent)
	// Rebuilt is set when the index was rebuilt from the store: it had not
	// applied operations since pruned from the outbox, or its applied seq
	// was above the store's head.
	Rebuilt bool
}

func newHandle(path string, kind Kind, modelID string, dim int, st Store, keys Opener) *Handle {
	h := &Handle{path: path, kind: kind, modelID: modelID, dim: dim, st: st, keys: keys}
	h.Index = live{h}
	return h
}

// index returns the index in use.
func (h *Handle) index() vindex.Index { return h.cur.Load().idx }

// Open loads the index of model modelID saved at path, or makes it from the
// store when there is none or it cannot be used (another kind, model or
// dimension, a corrupt file, a file saved before the outbox), then applies
// the outbox operations written since it was saved.
func Open(ctx context.Context, path string, kind Kind, modelID string, dim int, st Store, keys Opener) (*Handle, error) {
	h := newHandle(path, kind, modelID, dim, st, keys)
	storeID, err := st.StoreID(ctx)
	if err != nil {
		return nil, err
	}
	h.storeID = storeID
	hd, idx, err := load(path, kind)
	replace := false // save the rebuilt index in the file's place
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.Rebuilt = true
	case err != nil:
		h.Rebuilt = true // derived data: rebuild rather than fail
		h.Damaged = err
		replace = true
	case hd.Kind != kind.Name || hd.ModelID != modelID || hd.Dim != dim:
		_ = idx.Close() // not used; a Close error changes nothing
		h.Rebuilt = true
	case hd.OutboxSeq == nil:
		_ = idx.Close() // saved before the outbox: rebuilt once
		h.Rebuilt = true
		replace = true
	case hd.StoreID != storeID:
		_ = idx.Close() // another store's index: its outbox seq means nothing here
		h.Rebuilt, h.OtherStore = true, true
		replace = true
	default:
		h.cur.Store(&slot{idx})
		h.applied = *hd.OutboxSeq
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Rebuilt {
		n, err := h.rebuild(ctx)
		if err != nil {
			return nil, err
		}
		h.CaughtUp = n
	}
	a, err := h.catchUp(ctx)
	if err != nil {
		_ = h.index().Close() // the catch-up error is the one to report
		return nil, err
	}
	h.CaughtUp += a.Added
	if a.Rebuilt {
		h.Rebuilt, h.Behind = true, true
		replace = true
	}
	if replace {
		// Rebuild once, not at every open: the rebuilt index replaces the
		// file. A failed save leaves the index usable in memory.
		if err := h.save(ctx); err != nil {
			err = fmt.Errorf("the rebuilt index could not be saved: %w", err)
			if h.Damaged == nil {
				h.Damaged = err
			} else {
				h.Damaged = fmt.Errorf("%w (%w)", h.Damaged, err)
			}
		}
	}
	return h, nil
}

// Rebuild makes a new index from every template of the store and saves it.
func Rebuild(ctx context.Context, path string, kind Kind, modelID string, dim int, st Store, keys Opener) (*Handle, error) {
	h := newHandle(path, kind, modelID, dim, st, keys)
	storeID, err := st.StoreID(ctx)
	if err != nil {
		return nil, err
	}
	h.storeID = storeID
	h.Rebuilt = true
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.rebuild(ctx); err != nil {
		return nil, err
	}
	if _, err := h.catchUp(ctx); err != nil {
		_ = h.index().Close() // the catch-up error is the one to report
		return nil, err
	}
	if err := h.save(ctx); err != nil {
		_ = h.index().Close() // the save error is the one to report
		return nil, fmt.Errorf("save vector index: %w", err)
	}
	return h, nil
}

// rebuild makes a new index from every template of the store, puts it in
// use and returns how many faces it holds. The outbox head is read before
// the templates: every operation up to it is in the scan, and the later
// ones are applied by the next catch-up (again, perhaps: harmless). The
// index it replaces is left to the garbage collector, not closed: searches
// may still be using it. h.mu is held.
func (h *Handle) rebuild(ctx context.Context) (int, error) {
	if h.remote != nil {
		return h.rebuildRemote(ctx)
	}
	head, err := h.st.IndexOutboxHead(ctx)
	if err != nil {
		return 0, fmt.Errorf("vector index: %w", err)
	}
	idx := h.kind.New(h.dim)
	held := func(q Quarantine) (map[int64]bool, error) { return q.QuarantinedIDs(ctx, h.modelID) }
	n, err := h.addTemplates(ctx, idx, held, func(fn TemplateFunc) error { return h.st.TemplatesAfter(ctx, 0, fn) })
	if err != nil {
		_ = idx.Close() // the rebuild error is the one to report
		return 0, err
	}
	h.cur.Store(&slot{idx})
	h.applied = head
	return n, nil
}

// CatchUp applies the index outbox operations of h's model written since
// the last it applied, in order; see the package documentation. It is safe
// for concurrent use; an error leaves the operations not yet applied for
// the next call.
func (h *Handle) CatchUp(ctx context.Context) (Applied, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, err := h.catchUp(ctx)
	if h.remote != nil && onlyEngine(err) {
		h.deferred = err
	}
	return a, err
}

// catchUp is CatchUp with h.mu held.
func (h *Handle) catchUp(ctx context.Context) (Applied, error) {
	var a Applied
	if h.remote != nil {
		if err := h.remoteCatchUpStart(ctx); err != nil {
			return a, err
		}
	}
	for {
		ops, head, pruned, err := h.st.IndexOpsAfter(ctx, h.modelID, h.applied, opsBatch)
		if err != nil {
			return a, fmt.Errorf("vector index: catch up: %w", err)
		}
		if pruned > h.applied || head < h.applied {
			if a.Rebuilt {
				// Pruned again while rebuilding: the next call goes on.
				return a, nil
			}
			n, err := h.rebuild(ctx)
			if err != nil {
				return a, err
			}
			a.Rebuilt, a.Added = true, a.Added+n
			continue
		}
		if err := h.apply(ctx, ops, &a); err != nil {
			return a, err
		}
		done := len(ops) < opsBatch
		if done {
			h.applied = max(h.applied, head)
			h.deferred = nil
		} else {
			h.applied = ops[len(ops)-1].Seq
		}
		if h.remote != nil && (len(ops) > 0 || done) {
			if err := h.saveRemote(ctx); err != nil {
				return a, err
			}
		}
		if done {
			if h.remote != nil {
				h.recount(ctx)
			}
			return a, nil
		}
	}
}

// apply applies ops: for each face, its last operation is the one that
// counts (an add loads the template the store holds now). h.mu is held.
func (h *Handle) apply(ctx context.Context, ops []store.IndexOp, a *Applied) error {
	if len(ops) == 0 {
		return nil
	}
	last := make(map[int64]string, len(ops))
	for _, o := range ops {
		last[o.FaceID] = o.Op
	}
	var dels, adds []int64
	for id, op := range last {
		switch {
		case op == store.OpDel:
			dels = append(dels, id)
			delete(h.fresh, id)
		case h.fresh[id]:
			delete(h.fresh, id) // added through Index with this very template
		default:
			adds = append(adds, id)
		}
	}
	slices.Sort(dels)
	slices.Sort(adds)
	idx := h.index()
	if len(dels) > 0 {
		var err error
		if h.remote != nil {
			err = h.remoteDelete(ctx, dels, ops[len(ops)-1].Seq)
		} else {
			err = idx.Delete(ctx, dels)
		}
		if err != nil {
			return fmt.Errorf("vector index: delete %d faces: %w", len(dels), err)
		}
		a.Deleted += len(dels)
	}
	if len(adds) > 0 {
		held := func(q Quarantine) (map[int64]bool, error) { return q.QuarantinedAmong(ctx, adds) }
		n, err := h.addTemplates(ctx, idx, held, func(fn TemplateFunc) error { return h.st.FaceTemplates(ctx, adds, fn) })
		a.Added += n
		if err != nil {
			return err
		}
		if h.remote != nil {
			return h.recheckAdded(ctx, adds)
		}
	}
	return nil
}

// addTemplates adds to idx the templates of model h.modelID that scan
// streams, and returns how many it added. Templates of a shredded source
// are skipped: they are unreadable by design. So are faces in quarantine
// (quarantined lists those the scan may meet), and faces whose template
// cannot be opened, which are put in quarantine (see Quarantine).
func (h *Handle) addTemplates(ctx context.Context, idx vindex.Index, quarantined func(Quarantine) (map[int64]bool, error),
	scan func(TemplateFunc) error) (int, error) {
	const batch = 1024
	q, _ := h.st.(Quarantine)
	var held map[int64]bool
	if q != nil {
		var err error
		if held, err = quarantined(q); err != nil {
			return 0, fmt.Errorf("vector index: %w", err)
		}
	}
	var ids []int64
	var vecs [][]float32
	added := 0
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		if err := idx.Add(ctx, ids, vecs); err != nil {
			if h.remote != nil {
				err = engineError{err}
			}
			return fmt.Errorf("index %d faces: %w", len(ids), err)
		}
		added += len(ids)
		ids, vecs = ids[:0], vecs[:0]
		return nil
	}
	err := scan(func(faceID, sourceID int64, modelID string, blob []byte) error {
		if modelID != h.modelID || held[faceID] {
			return nil
		}
		v, err := h.keys.Open(ctx, sourceID, faceID, modelID, blob)
		if errors.Is(err, keyring.ErrShredded) {
			return nil
		}
		if q != nil && errors.Is(err, keyring.ErrBadTemplate) {
			// One damaged record never stops the index: it is left out.
			_, qerr := q.QuarantineFace(ctx, faceID, store.FoundByIndex, keyring.TemplateFault(err), store.SystemActor)
			return qerr
		}
		if err != nil {
			return fmt.Errorf("face %d: %w", faceID, err)
		}
		ids, vecs = append(ids, faceID), append(vecs, v)
		if len(ids) == batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return added, fmt.Errorf("vector index: %w", err)
	}
	return added, nil
}

// live is Handle.Index: the index in use, changed under the handle's lock.
type live struct{ h *Handle }

var _ vindex.Index = live{}

func (l live) Dim() int { return l.h.dim }
func (l live) Len(ctx context.Context) (int, error) {
	if l.h.remote != nil {
		return l.h.remoteLen(ctx)
	}
	return l.h.index().Len(ctx)
}

func (l live) Search(ctx context.Context, q []float32, k int, minScore float32) ([]vindex.Hit, error) {
	return l.h.index().Search(ctx, q, k, minScore)
}

func (l live) Save(ctx context.Context, w io.Writer) error { return l.h.index().Save(ctx, w) }
func (l live) Close() error                                { return l.h.index().Close() }

// Delete deletes ids from the index at once; the outbox operations of the
// erasure that deleted them are applied later, harmlessly.
func (l live) Delete(ctx context.Context, ids []int64) error {
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	if l.h.remote != nil {
		return l.h.remoteDelete(ctx, ids, 0)
	}
	return l.h.index().Delete(ctx, ids)
}

// Add adds vectors of faces the store has just committed (an ingest's
// batch), then catches up: their own add operations are not loaded again,
// and any other change since (another instance's, say) is applied. A face
// whose add operation an earlier catch-up had applied (one that ran between
// the commit and this call) stays only if the store still holds it.
func (l live) Add(ctx context.Context, ids []int64, vecs [][]float32) error {
	h := l.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.remote != nil {
		return h.remoteAdd(ctx, ids, vecs)
	}
	if err := h.index().Add(ctx, ids, vecs); err != nil {
		return err
	}
	h.fresh = make(map[int64]bool, len(ids))
	for _, id := range ids {
		h.fresh[id] = true
	}
	defer func() { h.fresh = nil }()
	if _, err := h.catchUp(ctx); err != nil {
		return err
	}
	if len(h.fresh) == 0 {
		return nil
	}
	left := make(map[int64]bool, len(h.fresh))
	for id := range h.fresh {
		left[id] = true
	}
	err := h.st.FaceTemplates(ctx, slices.Collect(maps.Keys(left)), func(id, _ int64, _ string, _ []byte) error {
		delete(left, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("vector index: %w", err)
	}
	if len(left) == 0 {
		return nil
	}
	gone := slices.Sorted(maps.Keys(left))
	if err := h.index().Delete(ctx, gone); err != nil {
		return fmt.Errorf("vector index: delete %d faces: %w", len(gone), err)
	}
	return nil
}

// Save catches up (what this process or another changed since is in the
// file) and writes the index atomically to its path, with the last outbox
// seq applied. A failed catch-up does not stop the save (the file then
// records the seq applied before it) and is returned. Saves are
// serialised with catch-ups and changes through Index.
func (h *Handle) Save(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, cerr := h.catchUp(ctx)
	cerr = h.deferIfEngine(cerr)
	if err := h.save(ctx); err != nil {
		return errors.Join(cerr, fmt.Errorf("save vector index: %w", err))
	}
	return cerr
}

// save writes the index with h.mu held.
func (h *Handle) save(ctx context.Context) error {
	if h.remote != nil {
		return h.saveRemote(ctx)
	}
	idx := h.index()
	seq := h.applied
	n, err := idx.Len(ctx)
	if err != nil {
		return err
	}
	hd := header{Kind: h.kind.Name, ModelID: h.modelID, Dim: h.dim, OutboxSeq: &seq, StoreID: h.storeID, Len: n}
	return save(ctx, h.path, hd, idx)
}

// Close closes the index without saving it.
func (h *Handle) Close() error { return h.index().Close() }

func load(path string, kind Kind) (header, vindex.Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return header{}, nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(r, m); err != nil || string(m) != magic {
		return header{}, nil, fmt.Errorf("%s: not a vector index file", path)
	}
	var n uint32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > maxHeader {
		return header{}, nil, fmt.Errorf("%s: bad header", path)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return header{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	var hd header
	if err := json.Unmarshal(js, &hd); err != nil {
		return header{}, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	if hd.Kind != kind.Name {
		return hd, nil, fmt.Errorf("%s: index kind %q, want %q", path, hd.Kind, kind.Name)
	}
	idx, err := kind.Load(r)
	if err != nil {
		return header{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if n, err := idx.Len(context.Background()); err != nil || n != hd.Len {
		_ = idx.Close() // corrupt: the mismatch is the error
		return header{}, nil, fmt.Errorf("%s: header says %d vectors, index holds %d", path, hd.Len, n)
	}
	return hd, idx, nil
}

func save(ctx context.Context, path string, hd header, idx vindex.Index) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".index-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()      // already failing
			_ = os.Remove(tmp) // best effort: a leftover temp file is harmless
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	js, err := json.Marshal(hd)
	if err != nil {
		return err
	}
	if _, err := w.WriteString(magic); err != nil {
		return err
	}
	if err := binary.Write(w, binary.LittleEndian, uint32(len(js))); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	if err := idx.Save(ctx, w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
