package vstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"gabarit/internal/store"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/rotate"
)

// A remote index (a Weaviate collection) is shared by every instance and
// outlives them: there is no file. Its place in the index outbox is its
// cursor in the store (store.IndexCursor), which every instance reads
// before it catches up and moves forward after; the same operations
// applied twice by two instances are harmless (add replaces, deleting an
// absent face is not an error).
//
// Two instances applying at once could still reorder an add and a delete
// of the same face: one loads a template, the other applies the face's
// erasure, then the first one's add lands. So every add to a remote index
// is checked afterwards against the store: a face no longer stored, or in
// quarantine, is deleted again. An erasure that commits after that check
// writes a delete that is applied after it, so no face erased stays in the
// engine (and searches check every hit against the store anyway).
//
// Vectors are sent through a secret random rotation (package rotate): the
// engine compares them as well (cosines are unchanged) but holds no
// template in clear. The secret is drawn with the cursor, sealed by the
// master key, and the same for every instance.
//
// A delete must reach every replica (a replica that missed it would bring
// the face back when it returns: the engine's repair copies it). When one
// cannot be reached, the delete is made on the replicas that answer (so no
// search shows the face meanwhile), the face is recorded as a pending
// delete in the store, and every catch-up deletes the pending faces again
// until every replica acknowledged.

// Engine is a remote index as vstore drives it.
type Engine interface {
	vindex.Index
	// DeleteSome deletes ids from the replicas that answer, when Delete
	// could not reach them all (a node is down); it fails when fewer than
	// a quorum acknowledged.
	DeleteSome(ctx context.Context, ids []int64) error
	// Reset empties the index (drops and re-creates its collection).
	Reset(ctx context.Context) error
	// Drop deletes the index's collection.
	Drop(ctx context.Context) error
}

// RemoteStore is what a remote index needs of the store besides Store;
// *store.DB implements it.
type RemoteStore interface {
	Store
	IndexCursor(ctx context.Context, name string) (store.IndexCursor, error)
	CreateIndexCursor(ctx context.Context, c store.IndexCursor) (store.IndexCursor, error)
	SetIndexApplied(ctx context.Context, name string, applied int64, back bool) error
	AddPendingDeletes(ctx context.Context, name string, ids []int64, seq int64) error
	PendingDeletes(ctx context.Context, name string, limit int) ([]int64, error)
	ClearPendingDeletes(ctx context.Context, name string, ids []int64) error
	DeleteIndexCursor(ctx context.Context, name string) error
}

var _ RemoteStore = (*store.DB)(nil)

// Sealer seals the rotation secret; *keyring.Keyring implements it.
type Sealer interface {
	SealBytes(purpose string, binding, plain []byte) ([]byte, error)
	OpenBytes(purpose string, binding, blob []byte) ([]byte, error)
}

// rotationPurpose is the keyring purpose of rotation secrets.
const rotationPurpose = "vector-rotation"

// Remote describes a remote index to OpenRemote.
type Remote struct {
	// Name identifies the index in the store ("weaviate/<collection>").
	Name string
	// Connect opens the engine, which sends every vector it stores or
	// searches for through transform first. transformID is a public
	// fingerprint of the transform (a hash of its secret), which the
	// engine may record to refuse data made with another one.
	Connect func(ctx context.Context, transform func(dst, src []float32), transformID string) (Engine, error)
	// Seal seals and opens the rotation secret.
	Seal Sealer
	// Drop, when set, deletes the index whatever made it (another store's
	// rotation, say), without opening it: NewRotation uses it.
	Drop func(ctx context.Context) error
}

// remote is a Handle's remote state.
type remote struct {
	name   string
	engine Engine
	st     RemoteStore
	// count is the engine's number of faces as last counted (-1: never),
	// what Len answers: a count over the cluster fails while a node is
	// down, and searches ask for it every time (the gallery's size).
	count atomic.Int64
}

// OpenRemote opens the remote index r of model modelID and catches it up
// with the outbox from its cursor in the store. The first instance to open
// it draws its rotation secret and fills it from the store (Rebuilt); so
// does an instance that finds it empty while its cursor says otherwise
// (the engine lost its data: Behind).
func OpenRemote(ctx context.Context, r Remote, modelID string, dim int, st RemoteStore, keys Opener) (*Handle, error) {
	if r.Name == "" || r.Connect == nil || r.Seal == nil {
		return nil, errors.New("vector index: remote index without a name, a connection or a sealer")
	}
	h := newHandle("", Kind{Name: r.Name}, modelID, dim, st, keys)
	storeID, err := st.StoreID(ctx)
	if err != nil {
		return nil, err
	}
	h.storeID = storeID
	cur, err := st.IndexCursor(ctx, r.Name)
	fresh := errors.Is(err, store.ErrNotFound)
	switch {
	case fresh:
		secret := rotate.NewSecret()
		sealed, err := r.Seal.SealBytes(rotationPurpose, []byte(r.Name), secret)
		if err != nil {
			return nil, fmt.Errorf("vector index %s: seal the rotation secret: %w", r.Name, err)
		}
		if cur, err = st.CreateIndexCursor(ctx, store.IndexCursor{Name: r.Name, ModelID: modelID, Dim: dim, Rotation: sealed}); err != nil {
			return nil, fmt.Errorf("vector index %s: %w", r.Name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("vector index %s: %w", r.Name, err)
	}
	if cur.ModelID != modelID || cur.Dim != dim {
		return nil, fmt.Errorf("vector index %s holds model %s (dimension %d), not %s (dimension %d): give another index or run gabarit reindex",
			r.Name, cur.ModelID, cur.Dim, modelID, dim)
	}
	eng, err := connectRemote(ctx, r, cur)
	if err != nil {
		return nil, err
	}
	h.remote = &remote{name: r.Name, engine: eng, st: st}
	h.remote.count.Store(-1)
	h.cur.Store(&slot{eng})
	h.applied = cur.Applied

	h.mu.Lock()
	defer h.mu.Unlock()
	rebuild := fresh
	if !rebuild && cur.Applied > 0 {
		// An engine that lost its data (a collection dropped, a cluster
		// re-created) while the store says it was filled.
		n, err := eng.Len(ctx)
		if err != nil {
			_ = eng.Close() // the count's error is the one to report
			return nil, fmt.Errorf("vector index %s: %w", r.Name, err)
		}
		if n == 0 {
			held, err := h.holdsFaces(ctx)
			if err != nil {
				_ = eng.Close() // the store's error is the one to report
				return nil, err
			}
			rebuild, h.Behind = held, held
		}
	}
	if rebuild {
		h.Rebuilt = true
		n, err := h.rebuild(ctx)
		if err != nil {
			_ = eng.Close() // the rebuild error is the one to report
			return nil, err
		}
		h.CaughtUp = n
	}
	a, err := h.catchUp(ctx)
	if err = h.deferIfEngine(err); err != nil {
		_ = eng.Close() // the catch-up error is the one to report
		return nil, err
	}
	h.CaughtUp += a.Added
	if a.Rebuilt {
		h.Rebuilt, h.Behind = true, true
	}
	return h, nil
}

// errFound stops a template scan at the first face it looks for.
var errFound = errors.New("found")

// holdsFaces reports whether the store holds a face of h's model (an
// empty engine is then an engine that lost its data, not an empty
// gallery).
func (h *Handle) holdsFaces(ctx context.Context) (bool, error) {
	err := h.st.TemplatesAfter(ctx, 0, func(_, _ int64, modelID string, _ []byte) error {
		if modelID == h.modelID {
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("vector index: %w", err)
	}
	return false, nil
}

// connectRemote opens the engine of r with the rotation of cursor cur.
func connectRemote(ctx context.Context, r Remote, cur store.IndexCursor) (Engine, error) {
	secret, err := r.Seal.OpenBytes(rotationPurpose, []byte(r.Name), cur.Rotation)
	if err != nil {
		return nil, fmt.Errorf("vector index %s: open the rotation secret (another master key?): %w", r.Name, err)
	}
	rot, err := rotate.New(secret, cur.Dim)
	sum := sha256.Sum256(append([]byte("gabarit vector rotation id\x00"), secret...))
	clear(secret)
	if err != nil {
		return nil, fmt.Errorf("vector index %s: %w", r.Name, err)
	}
	return r.Connect(ctx, rot.Apply, hex.EncodeToString(sum[:8]))
}

// NewRotation drops the remote index r and forgets its rotation secret:
// the next OpenRemote draws a new secret and fills the index again from
// the store (gabarit reindex --new-rotation). Searches find nothing in
// between. Without r.Drop, an index never opened is left alone.
func NewRotation(ctx context.Context, r Remote, st RemoteStore) error {
	if r.Drop != nil {
		if err := r.Drop(ctx); err != nil {
			return fmt.Errorf("vector index %s: drop it: %w", r.Name, err)
		}
		return st.DeleteIndexCursor(ctx, r.Name)
	}
	cur, err := st.IndexCursor(ctx, r.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vector index %s: %w", r.Name, err)
	}
	eng, err := connectRemote(ctx, r, cur)
	if err != nil {
		return err
	}
	defer eng.Close()
	if err := eng.Drop(ctx); err != nil {
		return fmt.Errorf("vector index %s: drop it: %w", r.Name, err)
	}
	return st.DeleteIndexCursor(ctx, r.Name)
}

// Remote reports whether h is a remote index.
func (h *Handle) Remote() bool { return h.remote != nil }

// rebuildRemote empties the remote index and fills it from the store, and
// moves its cursor to the outbox head read before the scan. h.mu is held.
func (h *Handle) rebuildRemote(ctx context.Context) (int, error) {
	rm := h.remote
	head, err := h.st.IndexOutboxHead(ctx)
	if err != nil {
		return 0, fmt.Errorf("vector index: %w", err)
	}
	if err := rm.engine.Reset(ctx); err != nil {
		return 0, fmt.Errorf("vector index %s: empty it: %w", rm.name, err)
	}
	held := func(q Quarantine) (map[int64]bool, error) { return q.QuarantinedIDs(ctx, h.modelID) }
	n, err := h.addTemplates(ctx, rm.engine, held, func(fn TemplateFunc) error { return h.st.TemplatesAfter(ctx, 0, fn) })
	if err != nil {
		return n, err
	}
	if err := rm.st.SetIndexApplied(ctx, rm.name, head, true); err != nil {
		return n, fmt.Errorf("vector index: %w", err)
	}
	h.applied = head
	return n, nil
}

// remoteCatchUpStart is the start of a remote catch-up: the faces whose
// deletion some replica missed are deleted again, and the catch-up starts
// from the furthest of this instance's place and the cursor (another
// instance may have applied more). h.mu is held.
func (h *Handle) remoteCatchUpStart(ctx context.Context) error {
	rm := h.remote
	if err := h.retryPendingDeletes(ctx); err != nil {
		return err
	}
	cur, err := rm.st.IndexCursor(ctx, rm.name)
	if err != nil {
		return fmt.Errorf("vector index: %w", err)
	}
	h.applied = max(h.applied, cur.Applied)
	return nil
}

// retryPendingDeletes deletes again, from every replica, the faces whose
// deletion some replica missed. A replica still down leaves them pending:
// that is not an error (the replicas that answer no longer hold them).
func (h *Handle) retryPendingDeletes(ctx context.Context) error {
	rm := h.remote
	for {
		ids, err := rm.st.PendingDeletes(ctx, rm.name, opsBatch)
		if err != nil || len(ids) == 0 {
			return err
		}
		if err := rm.engine.Delete(ctx, ids); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return nil // still not every replica: the next catch-up tries again
		}
		if err := rm.st.ClearPendingDeletes(ctx, rm.name, ids); err != nil {
			return err
		}
		if len(ids) < opsBatch {
			return nil
		}
	}
}

// remoteDelete deletes ids from every replica. When some replica cannot
// be reached, it deletes them from those that answer (best effort: right
// after a node died the cluster may refuse even that) and records them as
// pending deletes (seq: the outbox operation, 0 for a direct delete), which
// every catch-up deletes again from every replica until all acknowledge.
// So an erasure goes on while a node is down: the store is the truth, and
// searches check every hit against it meanwhile. It fails only when the
// pending deletes cannot be recorded. h.mu is held.
func (h *Handle) remoteDelete(ctx context.Context, ids []int64, seq int64) error {
	rm := h.remote
	err := rm.engine.Delete(ctx, ids)
	if err == nil || ctx.Err() != nil {
		return err
	}
	_ = rm.engine.DeleteSome(ctx, ids) // best effort; the pending deletes are what holds
	if perr := rm.st.AddPendingDeletes(ctx, rm.name, ids, seq); perr != nil {
		return fmt.Errorf("%w (and the faces could not be kept as pending deletes: %w)", err, perr)
	}
	return nil
}

// remoteAdd is Index.Add on a remote index (h.mu is held). The faces are
// committed and their add operations wait in the outbox past the cursor, so
// an engine that refuses them (a replica of their shard down, under write
// consistency QUORUM) does not fail the ingest: the next catch-up that
// reaches every replica adds them from the store, and until then searches
// do not find them (Deferred says why). Only a failure of the store is
// returned.
func (h *Handle) remoteAdd(ctx context.Context, ids []int64, vecs [][]float32) error {
	var cerr error
	if err := h.index().Add(ctx, ids, vecs); err != nil {
		// No catch-up now: it would try the same faces again at once.
		cerr = fmt.Errorf("vector index: index %d faces: %w", len(ids), engineError{err})
	} else {
		h.fresh = make(map[int64]bool, len(ids))
		for _, id := range ids {
			h.fresh[id] = true
		}
		_, cerr = h.catchUp(ctx)
		h.fresh = nil
	}
	// Even a refused batch may have reached some replicas: a face erased
	// meanwhile is deleted again.
	rerr := h.recheckAdded(ctx, ids)
	if ctx.Err() != nil {
		return errors.Join(cerr, rerr)
	}
	return errors.Join(h.deferIfEngine(cerr), rerr)
}

// engineError marks a remote engine's refusal of changes the store has
// committed: they stay in the outbox, and a later catch-up applies them.
type engineError struct{ err error }

func (e engineError) Error() string { return e.err.Error() }
func (e engineError) Unwrap() error { return e.err }

// onlyEngine reports whether every error err is made of is an engineError.
func onlyEngine(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case engineError:
		return true
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			if !onlyEngine(x) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		return onlyEngine(e.Unwrap())
	}
	return false
}

// deferIfEngine returns err, unless it is only an engine's refusal of
// committed changes on a remote index: that is recorded for Deferred, and
// nil is returned. h.mu is held.
func (h *Handle) deferIfEngine(err error) error {
	if h.remote == nil || !onlyEngine(err) {
		return err
	}
	h.deferred = err
	return nil
}

// Deferred returns why the remote index has not taken every change the
// store committed (nil if it has, as of the last catch-up that reached the
// outbox's head): the faces are stored, wait in the outbox, and are indexed
// by the next catch-up that the engine accepts (gabarit serve tries every
// 5 s; every command that opens the index tries once).
func (h *Handle) Deferred() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.deferred
}

// recheckAdded deletes again, among ids just added to a remote index, the
// faces the store no longer holds or holds in quarantine (see the note at
// the top of this file); added again, they leave the pending deletes.
// h.mu is held.
func (h *Handle) recheckAdded(ctx context.Context, ids []int64) error {
	rm := h.remote
	left := make(map[int64]bool, len(ids))
	for _, id := range ids {
		left[id] = true
	}
	err := h.st.FaceTemplates(ctx, ids, func(id, _ int64, _ string, _ []byte) error {
		delete(left, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("vector index: %w", err)
	}
	if q, ok := h.st.(Quarantine); ok {
		held, err := q.QuarantinedAmong(ctx, ids)
		if err != nil {
			return fmt.Errorf("vector index: %w", err)
		}
		for id := range held {
			left[id] = true
		}
	}
	kept := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return left[id] })
	if err := rm.st.ClearPendingDeletes(ctx, rm.name, kept); err != nil {
		return err
	}
	if len(left) == 0 {
		return nil
	}
	gone := slices.Sorted(maps.Keys(left))
	if err := h.remoteDelete(ctx, gone, 0); err != nil {
		return fmt.Errorf("vector index: delete %d faces: %w", len(gone), err)
	}
	return nil
}

// recount counts the remote index's faces again, for Len; a failed count
// keeps the last one.
func (h *Handle) recount(ctx context.Context) {
	if n, err := h.remote.engine.Len(ctx); err == nil {
		h.remote.count.Store(int64(n))
	}
}

// remoteLen is Len of a remote index: the last count, at most one catch-up
// old (every 5 s in gabarit serve), or a count now if there is none yet.
func (h *Handle) remoteLen(ctx context.Context) (int, error) {
	if n := h.remote.count.Load(); n >= 0 {
		return int(n), nil
	}
	n, err := h.remote.engine.Len(ctx)
	if err == nil {
		h.remote.count.Store(int64(n))
	}
	return n, err
}

// saveRemote records how far the remote index is in the store (it never
// moves back). h.mu is held.
func (h *Handle) saveRemote(ctx context.Context) error {
	rm := h.remote
	if err := rm.st.SetIndexApplied(ctx, rm.name, h.applied, false); err != nil {
		return fmt.Errorf("vector index: %w", err)
	}
	return nil
}

// RebuildRemote empties the remote index and fills it again from the store
// (gabarit reindex, a restore), then catches up; it returns how many faces
// it holds.
func (h *Handle) RebuildRemote(ctx context.Context) (int, error) {
	if h.remote == nil {
		return 0, errors.New("vector index: not a remote index")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n, err := h.rebuildRemote(ctx)
	if err != nil {
		return n, err
	}
	a, err := h.catchUp(ctx)
	return n + a.Added, err
}
