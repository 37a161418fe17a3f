package vstore_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"gabarit/internal/keyring"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/flat"
	"gabarit/internal/vstore"
)

// fakeEngine stands for a replicated remote engine: a flat index shared by
// every "instance" that connects to it, the transform applied to what it
// stores and searches, and one replica that can be down (a Delete then
// fails, DeleteSome succeeds and the down replica keeps the vectors).
type fakeEngine struct {
	mu        sync.Mutex
	live      *flat.Index         // what the replicas that answer hold
	stale     map[int64][]float32 // what the down replica still holds
	down      bool
	refuse    bool // even the replicas that answer refuse (a node just died)
	noWrites  bool // adds refused (a replica down under write consistency QUORUM)
	transform func(dst, src []float32)
	stored    map[int64][]float32 // the vectors as the engine received them
	resets    int
	dropped   int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{live: flat.New(dim), stale: map[int64][]float32{}, stored: map[int64][]float32{}}
}

// conn is one instance's connection to the engine.
type conn struct {
	e         *fakeEngine
	transform func(dst, src []float32)
	closed    bool
}

func (e *fakeEngine) connect(ctx context.Context, transform func(dst, src []float32), _ string) (vstore.Engine, error) {
	return &conn{e: e, transform: transform}, nil
}

func (c *conn) Dim() int { return dim }
func (c *conn) rot(v []float32) []float32 {
	out := make([]float32, len(v))
	c.transform(out, v)
	return out
}
func (c *conn) Add(ctx context.Context, ids []int64, vecs [][]float32) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.e.noWrites {
		return errors.New("add: 1 of 1 objects failed (first: broadcast: cannot reach enough replicas)")
	}
	rv := make([][]float32, len(vecs))
	for i, v := range vecs {
		rv[i] = c.rot(v)
		c.e.stored[ids[i]] = rv[i]
	}
	return c.e.live.Add(ctx, ids, rv)
}
func (c *conn) Delete(ctx context.Context, ids []int64) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.e.down {
		return errors.New("consistency level ALL: node 2 is down")
	}
	for _, id := range ids {
		delete(c.e.stale, id)
		delete(c.e.stored, id)
	}
	return c.e.live.Delete(ctx, ids)
}
func (c *conn) DeleteSome(ctx context.Context, ids []int64) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.e.refuse {
		return errors.New("node 1: send http request: connection refused")
	}
	for _, id := range ids {
		if v, ok := c.e.stored[id]; ok {
			c.e.stale[id] = v // the down replica keeps it
		}
	}
	return c.e.live.Delete(ctx, ids)
}
func (c *conn) Reset(ctx context.Context) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	c.e.resets++
	c.e.live, c.e.stale, c.e.stored = flat.New(dim), map[int64][]float32{}, map[int64][]float32{}
	return nil
}
func (c *conn) Drop(ctx context.Context) error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	c.e.dropped++
	c.e.live, c.e.stale, c.e.stored = flat.New(dim), map[int64][]float32{}, map[int64][]float32{}
	return nil
}
func (c *conn) Search(ctx context.Context, q []float32, k int, minScore float32) ([]vindex.Hit, error) {
	return c.e.live.Search(ctx, c.rot(q), k, minScore)
}
func (c *conn) Len(ctx context.Context) (int, error) { return c.e.live.Len(ctx) }
func (c *conn) Save(context.Context, io.Writer) error {
	return errors.ErrUnsupported
}
func (c *conn) Close() error { c.closed = true; return nil }

func (e *fakeEngine) ids() []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.stored))
}

func openRemote(t *testing.T, e *env, eng *fakeEngine, keys *keyring.Keyring, model string) (*vstore.Handle, error) {
	t.Helper()
	r := vstore.Remote{Name: "weaviate/Gabarit_" + model, Connect: eng.connect, Seal: keys}
	h, err := vstore.OpenRemote(context.Background(), r, model, dim, e.db, e.keys)
	if err == nil {
		t.Cleanup(func() { _ = h.Close() })
	}
	return h, err
}

// TestRemoteIndex: the first instance fills the engine from the store
// through the rotation; a second instance over the same store and engine
// shares the cursor and the rotation; each applies what the other changed.
func TestRemoteIndex(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a1, a2 := e.add(t, "m1"), e.add(t, "m1")
	eng := newFakeEngine()
	h1, err := openRemote(t, e, eng, e.keys, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !h1.Rebuilt || h1.CaughtUp != 2 || !slices.Equal(eng.ids(), []int64{a1, a2}) {
		t.Fatalf("first open: rebuilt %v, caught up %d, engine holds %v; want both faces", h1.Rebuilt, h1.CaughtUp, eng.ids())
	}
	cur, err := e.db.IndexCursor(ctx, "weaviate/Gabarit_m1")
	if err != nil {
		t.Fatal(err)
	}
	head, _ := e.db.IndexOutboxHead(ctx)
	if cur.Applied != head || len(cur.Rotation) == 0 {
		t.Fatalf("cursor applied %d (head %d), %d bytes of sealed rotation", cur.Applied, head, len(cur.Rotation))
	}
	// The engine holds rotated vectors, and finds the faces all the same.
	tpl := template(t, e, a1)
	if got := eng.stored[a1]; slices.Equal(got, tpl) || len(got) != dim {
		t.Fatalf("the engine holds the template in clear")
	}
	hits, err := h1.Index.Search(ctx, tpl, 1, 0.999)
	if err != nil || len(hits) != 1 || hits[0].ID != a1 {
		t.Fatalf("search for face %d's template: %v, %v", a1, hits, err)
	}

	// A second instance: no rebuild, the same rotation (its searches find
	// what the first one added).
	h2, err := openRemote(t, e, eng, e.keys, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if h2.Rebuilt || eng.resets != 1 {
		t.Fatalf("second open rebuilt %v, engine reset %d times; want no rebuild", h2.Rebuilt, eng.resets)
	}
	if hits, err := h2.Index.Search(ctx, tpl, 1, 0.999); err != nil || len(hits) != 1 || hits[0].ID != a1 {
		t.Fatalf("second instance's search: %v, %v", hits, err)
	}
	// The first adds, the second erases: each catch-up applies the other's.
	b := e.add(t, "m1")
	e.erase(t, a2)
	if _, err := h2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := eng.ids(); !slices.Equal(got, []int64{a1, b}) {
		t.Fatalf("after the second instance's catch-up the engine holds %v, want [%d %d]", got, a1, b)
	}
	cur2, _ := e.db.IndexCursor(ctx, "weaviate/Gabarit_m1")
	if cur2.Applied <= cur.Applied {
		t.Fatalf("cursor %d after the catch-up, was %d", cur2.Applied, cur.Applied)
	}
	if a, err := h1.CatchUp(ctx); err != nil || a.Added != 0 {
		t.Fatalf("first instance's catch-up after the second's: %+v, %v; want nothing left to add", a, err)
	}

	// Another model on the same name, another dimension: refused.
	if _, err := vstore.OpenRemote(ctx, vstore.Remote{Name: "weaviate/Gabarit_m1", Connect: eng.connect, Seal: e.keys},
		"m2", dim, e.db, e.keys); err == nil {
		t.Fatal("a remote index of model m1 opened for model m2")
	}
}

// TestRemoteIndexNodeDown: an erasure while a replica is down deletes the
// faces from the replicas that answer at once, keeps them pending, and
// deletes them from every replica once it is back; adds go on meanwhile.
func TestRemoteIndexNodeDown(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, b := e.add(t, "m1"), e.add(t, "m1")
	eng := newFakeEngine()
	h, err := openRemote(t, e, eng, e.keys, "m1")
	if err != nil {
		t.Fatal(err)
	}
	eng.down = true
	// A direct delete (the erasing process) and the outbox's.
	e.erase(t, a)
	if err := h.Index.Delete(ctx, []int64{a}); err != nil {
		t.Fatalf("delete with a replica down: %v; want it made on the others and kept pending", err)
	}
	c := e.add(t, "m1")
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatalf("catch-up with a replica down: %v", err)
	}
	if hits, _ := h.Index.Search(ctx, template(t, e, b), 10, -1); slices.ContainsFunc(hits, func(x vindex.Hit) bool { return x.ID == a }) {
		t.Fatalf("erased face %d still found while the replica is down", a)
	}
	pend, _ := e.db.PendingDeletes(ctx, "weaviate/Gabarit_m1", 10)
	if !slices.Equal(pend, []int64{a}) || eng.stale[a] == nil {
		t.Fatalf("pending deletes %v (stale on the down replica: %v); want [%d]", pend, eng.stale[a] != nil, a)
	}
	if !slices.Contains(eng.ids(), c) {
		t.Fatalf("face %d added during the outage is not in the engine", c)
	}
	// Still down: the pending delete stays.
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if pend, _ := e.db.PendingDeletes(ctx, "weaviate/Gabarit_m1", 10); len(pend) != 1 {
		t.Fatalf("pending deletes %v while the replica is still down", pend)
	}
	eng.down = false
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if pend, _ := e.db.PendingDeletes(ctx, "weaviate/Gabarit_m1", 10); len(pend) != 0 || len(eng.stale) != 0 {
		t.Fatalf("after the replica came back: pending %v, stale copies %d; want none", pend, len(eng.stale))
	}

	// Right after a node died the cluster may refuse even the replicas
	// that answer: the erasure still goes on, the faces kept pending, and
	// deleted once the cluster answers.
	eng.down, eng.refuse = true, true
	e.erase(t, b)
	if err := h.Index.Delete(ctx, []int64{b}); err != nil {
		t.Fatalf("delete refused by every replica: %v; want it kept pending", err)
	}
	if pend, _ := e.db.PendingDeletes(ctx, "weaviate/Gabarit_m1", 10); !slices.Equal(pend, []int64{b}) {
		t.Fatalf("pending deletes %v, want [%d]", pend, b)
	}
	eng.down, eng.refuse = false, false
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if pend, _ := e.db.PendingDeletes(ctx, "weaviate/Gabarit_m1", 10); len(pend) != 0 || slices.Contains(eng.ids(), b) {
		t.Fatalf("after the cluster answered: pending %v, engine holds %v", pend, eng.ids())
	}
}

// TestRemoteIndexAddRefused: an engine that refuses the adds of an ingest
// batch (a replica down under write consistency QUORUM) does not fail the
// ingest: the faces are stored, Deferred says why they are not indexed, the
// cursor stays before their add operations, and the first catch-up the
// engine accepts adds them. A face erased meanwhile is not added.
func TestRemoteIndexAddRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.add(t, "m1")
	eng := newFakeEngine()
	h, err := openRemote(t, e, eng, e.keys, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if d := h.Deferred(); d != nil {
		t.Fatalf("Deferred after a clean open: %v", d)
	}
	before, _ := e.db.IndexCursor(ctx, "weaviate/Gabarit_m1")
	eng.noWrites = true
	b, c := e.add(t, "m1"), e.add(t, "m1")
	if err := h.Index.Add(ctx, []int64{b, c}, [][]float32{template(t, e, b), template(t, e, c)}); err != nil {
		t.Fatalf("an ingest batch the engine refused: %v; want it deferred", err)
	}
	d := h.Deferred()
	if d == nil || !strings.Contains(d.Error(), "cannot reach enough replicas") {
		t.Fatalf("Deferred = %v; want the engine's refusal", d)
	}
	if got := eng.ids(); !slices.Equal(got, []int64{a}) {
		t.Fatalf("the engine holds %v while refusing writes", got)
	}
	if cur, _ := e.db.IndexCursor(ctx, "weaviate/Gabarit_m1"); cur.Applied != before.Applied {
		t.Fatalf("cursor moved from %d to %d past adds the engine refused", before.Applied, cur.Applied)
	}
	// The periodic catch-up reports the refusal and keeps it deferred.
	if _, err := h.CatchUp(ctx); err == nil || h.Deferred() == nil {
		t.Fatalf("catch-up while writes are refused: %v (deferred %v); want the refusal", err, h.Deferred())
	}
	// A save (the end of an ingest run) does not fail on it either.
	if err := h.Save(ctx); err != nil {
		t.Fatalf("save while writes are refused: %v", err)
	}
	e.erase(t, c)
	eng.noWrites = false
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := eng.ids(); !slices.Equal(got, []int64{a, b}) {
		t.Fatalf("after the engine accepted writes again it holds %v, want [%d %d]", got, a, b)
	}
	if d := h.Deferred(); d != nil {
		t.Fatalf("Deferred after a full catch-up: %v", d)
	}
	head, _ := e.db.IndexOutboxHead(ctx)
	if cur, _ := e.db.IndexCursor(ctx, "weaviate/Gabarit_m1"); cur.Applied != head {
		t.Fatalf("cursor %d after the catch-up, head %d", cur.Applied, head)
	}
}

// TestRemoteIndexRecheck: an add of a face the store no longer holds (an
// erasure applied by another instance between the template's load and the
// add) is deleted again.
func TestRemoteIndexRecheck(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.add(t, "m1")
	eng := newFakeEngine()
	h, err := openRemote(t, e, eng, e.keys, "m1")
	if err != nil {
		t.Fatal(err)
	}
	tpl := template(t, e, a)
	e.erase(t, a)
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// The late add of another instance that loaded the template before the erasure.
	if err := h.Index.Add(ctx, []int64{a}, [][]float32{tpl}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(eng.ids(), a) {
		t.Fatalf("erased face %d left in the engine by a late add", a)
	}
}

// TestRemoteIndexLostAndKeys: an engine that lost its data is filled
// again; a store opened with another master key cannot open the rotation.
func TestRemoteIndexLostAndKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(t, "m1")
	eng := newFakeEngine()
	if _, err := openRemote(t, e, eng, e.keys, "m1"); err != nil {
		t.Fatal(err)
	}
	eng.live = flat.New(dim) // the cluster was re-created empty
	h, err := openRemote(t, e, eng, e.keys, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Rebuilt || !h.Behind || vindex.Count(h.Index) != 1 {
		t.Fatalf("open over an emptied engine: rebuilt %v, behind %v, %d faces; want it filled again", h.Rebuilt, h.Behind, vindex.Count(h.Index))
	}
	// A gallery emptied by erasures is not an engine that lost its data.
	for _, id := range eng.ids() {
		e.erase(t, id)
	}
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	resets := eng.resets
	if h2, err := openRemote(t, e, eng, e.keys, "m1"); err != nil || h2.Rebuilt || eng.resets != resets {
		t.Fatalf("open over an emptied gallery: %v, rebuilt %v, %d resets (was %d); want no rebuild", err, h2 != nil && h2.Rebuilt, eng.resets, resets)
	}
	_, other := storetest.Open(t)
	if _, err := vstore.OpenRemote(ctx, vstore.Remote{Name: "weaviate/Gabarit_m1", Connect: eng.connect, Seal: other},
		"m1", dim, e.db, e.keys); err == nil {
		t.Fatal("the rotation secret opened with another master key")
	}
}

// TestRemoteNewRotation: a new rotation drops the index and forgets the
// secret; the next open draws another one and fills the index again.
func TestRemoteNewRotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.add(t, "m1")
	eng := newFakeEngine()
	if _, err := openRemote(t, e, eng, e.keys, "m1"); err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(eng.stored[a])
	old, _ := e.db.IndexCursor(ctx, "weaviate/Gabarit_m1")
	r := vstore.Remote{Name: "weaviate/Gabarit_m1", Connect: eng.connect, Seal: e.keys}
	if err := vstore.NewRotation(ctx, r, e.db); err != nil {
		t.Fatal(err)
	}
	if eng.dropped != 1 || len(eng.ids()) != 0 {
		t.Fatalf("after NewRotation: dropped %d times, engine holds %v", eng.dropped, eng.ids())
	}
	h, err := openRemote(t, e, eng, e.keys, "m1")
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := e.db.IndexCursor(ctx, "weaviate/Gabarit_m1")
	if !h.Rebuilt || slices.Equal(cur.Rotation, old.Rotation) || slices.Equal(eng.stored[a], before) || eng.stored[a] == nil {
		t.Fatalf("after a new rotation: rebuilt %v, same sealed secret %v, same stored vector %v",
			h.Rebuilt, slices.Equal(cur.Rotation, old.Rotation), slices.Equal(eng.stored[a], before))
	}
	if hits, err := h.Index.Search(ctx, template(t, e, a), 1, 0.999); err != nil || len(hits) != 1 || hits[0].ID != a {
		t.Fatalf("search after a new rotation: %v, %v", hits, err)
	}
	// Nothing to rotate: no error.
	if err := vstore.NewRotation(ctx, vstore.Remote{Name: "weaviate/none", Connect: eng.connect, Seal: e.keys}, e.db); err != nil {
		t.Fatal(err)
	}
}

// template returns face id's template, opened.
func template(t *testing.T, e *env, id int64) []float32 {
	t.Helper()
	ctx := context.Background()
	var out []float32
	err := e.db.FaceTemplates(ctx, []int64{id}, func(fid, src int64, model string, blob []byte) error {
		v, err := e.keys.Open(ctx, src, fid, model, blob)
		out = v
		return err
	})
	if err != nil || out == nil {
		t.Fatalf("template of face %d: %v", id, err)
	}
	return out
}
