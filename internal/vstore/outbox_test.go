package vstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vstore"
)

// rewriteHeader changes the JSON header of the index file at path with fn,
// as a file saved by another version (or at another moment) would have it.
func rewriteHeader(t *testing.T, path string, fn func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const magic = "GBVSTORE1\n"
	if !bytes.HasPrefix(b, []byte(magic)) {
		t.Fatalf("%s is not an index file", path)
	}
	n := binary.LittleEndian.Uint32(b[len(magic):])
	js, rest := b[len(magic)+4:len(magic)+4+int(n)], b[len(magic)+4+int(n):]
	var hd map[string]any
	if err := json.Unmarshal(js, &hd); err != nil {
		t.Fatal(err)
	}
	fn(hd)
	js, err = json.Marshal(hd)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(magic), binary.LittleEndian.AppendUint32(nil, uint32(len(js)))...)
	out = append(append(out, js...), rest...)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (e *env) erase(t *testing.T, ids ...int64) {
	t.Helper()
	if _, _, err := e.db.EraseFaces(context.Background(), ids, "dpo", "rights/1"); err != nil {
		t.Fatal(err)
	}
}

func (e *env) open(t *testing.T, path string) *vstore.Handle {
	t.Helper()
	h, err := vstore.Open(context.Background(), path, flatKind, "m1", dim, e.db, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestOpenAppliesMissedOperations: an index saved before an ingest and an
// erasure made elsewhere gets the added face and loses the erased one on
// reopen, without a rebuild; applying the same operations again, to an
// index that already holds their effect, changes nothing.
func TestOpenAppliesMissedOperations(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, b := e.add(t, "m1"), e.add(t, "m1")
	path := filepath.Join(t.TempDir(), "faces.idx")
	h := e.open(t, path)
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()

	c := e.add(t, "m1") // an ingest killed before it saved, or another instance's
	e.erase(t, a)       // an erasure by a process without this index
	e.add(t, "other-model")
	h = e.open(t, path)
	if h.Rebuilt || h.CaughtUp != 1 {
		t.Errorf("reopen: rebuilt %v, caught up %d; want the saved index caught up with 1 face", h.Rebuilt, h.CaughtUp)
	}
	if got, want := indexed(t, h), []int64{b, c}; !slices.Equal(got, want) {
		t.Fatalf("indexed %v, want %v", got, want)
	}
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()

	// Nothing new: a catch-up changes nothing.
	h = e.open(t, path)
	if h.CaughtUp != 0 || h.Rebuilt {
		t.Errorf("open with nothing new: caught up %d, rebuilt %v", h.CaughtUp, h.Rebuilt)
	}
	if a, err := h.CatchUp(ctx); err != nil || a != (vstore.Applied{}) {
		t.Errorf("catch-up with nothing new: %+v, %v", a, err)
	}
	h.Close()

	// Every operation applied again, from seq 0, to the index that holds
	// their effect: the same index.
	rewriteHeader(t, path, func(hd map[string]any) { hd["outbox_seq"] = 0 })
	h = e.open(t, path)
	if h.Rebuilt {
		t.Error("an index with an older applied seq was rebuilt; want the operations applied again")
	}
	if got, want := indexed(t, h), []int64{b, c}; !slices.Equal(got, want) {
		t.Errorf("after applying every operation twice: indexed %v, want %v", got, want)
	}
}

// TestTwoInstances: two store handles on one SQLite file, each with its own
// index (two instances over one database). An ingest and an erasure through
// one reach the other's index at its next catch-up.
func TestTwoInstances(t *testing.T) {
	testTwoInstances(t, filepath.Join(t.TempDir(), "gabarit.db"))
}

// TestTwoInstancesPostgres: the same over one PostgreSQL database.
func TestTwoInstancesPostgres(t *testing.T) {
	testTwoInstances(t, storetest.Postgres(t))
}

func testTwoInstances(t *testing.T, target string) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*store.DB, *keyring.Keyring) {
		t.Helper()
		db, err := store.Open(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		master, err := keyring.LoadOrCreateMaster(filepath.Join(dir, "master.key")) // shared by the instances
		if err != nil {
			t.Fatal(err)
		}
		kr := keyring.New(master, db.KeyStore())
		t.Cleanup(func() { kr.Close() })
		return db, kr
	}
	dbA, keysA := open()
	dbB, keysB := open()
	e := &env{db: dbA, keys: keysA, src: storetest.Source(t, dbA, store.BasisConsent, time.Hour)}
	if err := keysA.EnsureKey(ctx, e.src); err != nil {
		t.Fatal(err)
	}
	first := e.add(t, "m1")

	hA := e.open(t, filepath.Join(t.TempDir(), "a.idx"))
	hB, err := vstore.Open(ctx, filepath.Join(t.TempDir(), "b.idx"), flatKind, "m1", dim, dbB, keysB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hB.Close() })

	// Instance A ingests a face and adds it to its own index.
	second := e.add(t, "m1")
	if _, err := hA.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := indexed(t, hB); !slices.Equal(got, []int64{first}) {
		t.Fatalf("B before its catch-up: %v", got)
	}
	if ap, err := hB.CatchUp(ctx); err != nil || ap.Added != 1 {
		t.Fatalf("B's catch-up: %+v, %v; want 1 face added", ap, err)
	}
	if got := indexed(t, hB); !slices.Equal(got, []int64{first, second}) {
		t.Fatalf("B after its catch-up: %v, want %v", got, []int64{first, second})
	}

	// Instance A erases the first face, from the store and at once from
	// its own index.
	e.erase(t, first)
	if err := hA.Index.Delete(ctx, []int64{first}); err != nil {
		t.Fatal(err)
	}
	if got := indexed(t, hB); !slices.Contains(got, first) {
		t.Fatalf("B lost the face before its catch-up: %v", got)
	}
	if ap, err := hB.CatchUp(ctx); err != nil || ap.Deleted != 1 || ap.Rebuilt {
		t.Fatalf("B's catch-up after the erasure: %+v, %v", ap, err)
	}
	hits, err := hB.Index.Search(ctx, face.Normalize([]float32{1, 1, 0, 1}), 10, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, hit := range hits {
		if hit.ID == first {
			t.Fatalf("B's index returns the erased face %d", first)
		}
	}
	if got, want := indexed(t, hA), indexed(t, hB); !slices.Equal(got, want) {
		t.Errorf("A indexes %v, B %v", got, want)
	}
}

// TestPrunedHorizonRebuilds: an index that had not applied operations
// since pruned from the outbox is rebuilt, when opened (Behind) and when
// catching up, and only once.
func TestPrunedHorizonRebuilds(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t)
	a := e.add(t, "m1")
	path := filepath.Join(t.TempDir(), "faces.idx")
	h := e.open(t, path)
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()

	b := e.add(t, "m1")
	e.erase(t, a)
	if n, err := e.db.PruneIndexOutbox(ctx, now.AddDate(1, 0, 0)); err != nil || n == 0 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	h = e.open(t, path)
	if !h.Rebuilt || !h.Behind {
		t.Errorf("open behind the pruned horizon: rebuilt %v, behind %v; want both", h.Rebuilt, h.Behind)
	}
	if got := indexed(t, h); !slices.Equal(got, []int64{b}) {
		t.Fatalf("indexed %v, want %v", got, []int64{b})
	}
	// The rebuilt index replaced the file: the next open loads it.
	h = e.open(t, path)
	if h.Rebuilt || h.Behind {
		t.Errorf("second open: rebuilt %v, behind %v; want the saved index", h.Rebuilt, h.Behind)
	}

	// A running instance that falls behind is rebuilt in place, once.
	c := e.add(t, "m1")
	e.erase(t, b)
	if _, err := e.db.PruneIndexOutbox(ctx, now.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	ap, err := h.CatchUp(ctx)
	if err != nil || !ap.Rebuilt || ap.Added != 1 {
		t.Fatalf("catch-up behind the horizon: %+v, %v; want rebuilt with 1 face", ap, err)
	}
	if got := indexed(t, h); !slices.Equal(got, []int64{c}) {
		t.Errorf("indexed %v after the rebuild, want %v", got, []int64{c})
	}
	if ap, err := h.CatchUp(ctx); err != nil || ap.Rebuilt {
		t.Errorf("next catch-up: %+v, %v; want no rebuild", ap, err)
	}
}

// TestFileWithoutOutboxSeqRebuiltOnce: a file saved before the outbox
// (a face-id watermark, no applied seq) is rebuilt and saved in its place.
func TestFileWithoutOutboxSeqRebuiltOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a, b := e.add(t, "m1"), e.add(t, "m1")
	path := filepath.Join(t.TempDir(), "faces.idx")
	h := e.open(t, path)
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()
	rewriteHeader(t, path, func(hd map[string]any) {
		delete(hd, "outbox_seq")
		hd["max_face_id"] = b
	})
	e.erase(t, a)
	h = e.open(t, path)
	if !h.Rebuilt || h.Behind || h.Damaged != nil {
		t.Errorf("old file: rebuilt %v, behind %v, damaged %v; want rebuilt only", h.Rebuilt, h.Behind, h.Damaged)
	}
	if got := indexed(t, h); !slices.Equal(got, []int64{b}) {
		t.Errorf("indexed %v, want %v", got, []int64{b})
	}
	if h = e.open(t, path); h.Rebuilt {
		t.Error("the old file was rebuilt again: want it replaced by the first open")
	}
}

// countingOpener counts the templates opened.
type countingOpener struct {
	vstore.Opener
	n atomic.Int64
}

func (c *countingOpener) Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error) {
	c.n.Add(1)
	return c.Opener.Open(ctx, sourceID, faceID, modelID, blob)
}

// TestIndexAddCatchesUp: an ingest's batch added through Handle.Index is
// not loaded again from the store, while the other changes since are
// applied; and a face whose add an earlier catch-up had applied, erased
// since, does not come back with a late add.
func TestIndexAddCatchesUp(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	keys := &countingOpener{Opener: e.keys}
	h, err := vstore.Open(ctx, filepath.Join(t.TempDir(), "faces.idx"), flatKind, "m1", dim, e.db, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	other := e.add(t, "m1") // committed by another instance
	mine := e.add(t, "m1")  // this ingest's batch, just committed
	v := face.Normalize([]float32{1, float32(e.n), 0, 1})
	opened := keys.n.Load()
	if err := h.Index.Add(ctx, []int64{mine}, [][]float32{v}); err != nil {
		t.Fatal(err)
	}
	if got := indexed(t, h); !slices.Equal(got, []int64{other, mine}) {
		t.Errorf("after the batch: indexed %v, want %v", got, []int64{other, mine})
	}
	if n := keys.n.Load() - opened; n != 1 {
		t.Errorf("%d templates opened by the catch-up, want 1 (the other instance's face only)", n)
	}

	// A catch-up runs between a commit and its batch's Add, and the face
	// is erased in between: the late Add must not bring it back.
	late := e.add(t, "m1")
	e.erase(t, late)
	if _, err := h.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Index.Add(ctx, []int64{late}, [][]float32{v}); err != nil {
		t.Fatal(err)
	}
	if got := indexed(t, h); slices.Contains(got, late) {
		t.Errorf("an erased face came back with a late add: indexed %v", got)
	}
}

// BenchmarkCatchUp measures a catch-up with nothing new (what `gabarit
// serve` runs every few seconds, and an ingest batch's Add once its own
// faces are in) and one that applies a batch of 32 faces committed
// elsewhere (templates loaded and opened).
func BenchmarkCatchUp(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	for range 1000 {
		e.add(b, "m1")
	}
	h, err := vstore.Open(ctx, filepath.Join(b.TempDir(), "faces.idx"), flatKind, "m1", dim, e.db, e.keys)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	b.Run("idle", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.CatchUp(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch=32", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for range 32 {
				e.add(b, "m1")
			}
			b.StartTimer()
			if a, err := h.CatchUp(ctx); err != nil || a.Added != 32 {
				b.Fatal(a, err)
			}
		}
	})
}

// TestIndexOfAnotherStoreRebuilt: an index file saved over one store and
// opened over another (a data directory pointed at another database) is
// rebuilt from the second, even when the second's outbox is further on.
func TestIndexOfAnotherStoreRebuilt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "faces.idx")
	a := newEnv(t)
	a.add(t, "m1")
	h := a.open(t, path)
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	b := newEnv(t)
	var want []int64
	for range 3 {
		want = append(want, b.add(t, "m1"))
	}
	hb, err := vstore.Open(ctx, path, flatKind, "m1", dim, b.db, b.keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hb.Close() })
	if !hb.Rebuilt || !hb.OtherStore {
		t.Errorf("Open over another store: rebuilt %v, other store %v; want both", hb.Rebuilt, hb.OtherStore)
	}
	if got := indexed(t, hb); !slices.Equal(got, want) {
		t.Errorf("index over the second store holds %v, want %v", got, want)
	}
}
