package vstore_test

import (
	"context"
	"errors"
	"fmt"
	"gabarit/internal/vindex"
	"path/filepath"
	"slices"
	"testing"

	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vstore"
)

// indexed returns the ids in h's index, in order.
func indexed(t *testing.T, h *vstore.Handle) []int64 {
	t.Helper()
	hits, err := h.Index.Search(context.Background(), []float32{0.5, 0.5, 0.5, 0.5}, 100, -1)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, hit := range hits {
		ids = append(ids, hit.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestRebuildQuarantinesSwappedTemplates: two sealed templates swapped in
// the database no longer stop a reindex. It completes without them, puts
// them in quarantine once (found by the index), and the next open keeps
// them out without rebuilding.
func TestRebuildQuarantinesSwappedTemplates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var ids []int64
	for range 4 {
		ids = append(ids, e.add(t, "m1"))
	}
	storetest.SwapTemplates(t, e.path, ids[1], ids[2])
	path := filepath.Join(t.TempDir(), "faces.idx")
	for i := range 2 {
		h, err := vstore.Rebuild(ctx, path, flatKind, "m1", dim, e.db, e.keys)
		if err != nil {
			t.Fatalf("reindex %d: %v", i, err)
		}
		if got := indexed(t, h); !slices.Equal(got, []int64{ids[0], ids[3]}) {
			t.Errorf("reindex %d indexed %v, want %v", i, got, []int64{ids[0], ids[3]})
		}
		h.Close()
	}
	q, err := e.db.Quarantined(ctx)
	if err != nil || len(q) != 2 || q[0].Found != store.FoundByIndex || q[1].Reason != "does not authenticate" {
		t.Fatalf("quarantined = %+v, %v", q, err)
	}
	if n := quarantineEntries(t, e.db); n != 2 {
		t.Errorf("%d face.quarantine entries after two reindexes, want 2", n)
	}
	h, err := vstore.Open(ctx, path, flatKind, "m1", dim, e.db, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	if h.Rebuilt || vindex.Count(h.Index) != 2 {
		t.Errorf("open: rebuilt %v, len %d; want the saved index of 2 used as it is", h.Rebuilt, vindex.Count(h.Index))
	}
	h.Close()
}

// TestOpenDropsFacesQuarantinedSinceSave: a face quarantined after the
// index was saved (by a search of another process) leaves the loaded index,
// without a rebuild; the catch-up leaves out a late face in quarantine.
func TestOpenDropsFacesQuarantinedSinceSave(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var ids []int64
	for range 3 {
		ids = append(ids, e.add(t, "m1"))
	}
	path := filepath.Join(t.TempDir(), "faces.idx")
	h, err := vstore.Rebuild(ctx, path, flatKind, "m1", dim, e.db, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	late := e.add(t, "m1")
	for _, id := range []int64{ids[1], late} {
		if _, err := e.db.QuarantineFace(ctx, id, store.FoundBySearch, "does not authenticate", "cli:ann"); err != nil {
			t.Fatal(err)
		}
	}
	h, err = vstore.Open(ctx, path, flatKind, "m1", dim, e.db, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Rebuilt || h.CaughtUp != 0 {
		t.Errorf("rebuilt %v, caught up %d; want neither", h.Rebuilt, h.CaughtUp)
	}
	if got := indexed(t, h); !slices.Equal(got, []int64{ids[0], ids[2]}) {
		t.Errorf("indexed %v, want %v", got, []int64{ids[0], ids[2]})
	}
}

func quarantineEntries(t *testing.T, db *store.DB) int {
	t.Helper()
	es, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Action == "face.quarantine" {
			n++
		}
	}
	return n
}

// TestReleaseAndErase: a face whose template is still damaged stays in
// quarantine; restored from a backup, it is released (audited) and back in
// the index; the other is erased from the store and the index.
func TestReleaseAndErase(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var ids []int64
	for range 3 {
		ids = append(ids, e.add(t, "m1"))
	}
	backup := map[int64][]byte{ids[0]: storetest.Template(t, e.path, ids[0]), ids[1]: storetest.Template(t, e.path, ids[1])}
	storetest.SwapTemplates(t, e.path, ids[0], ids[1])
	path := filepath.Join(t.TempDir(), "faces.idx")
	h, err := vstore.Rebuild(ctx, path, flatKind, "m1", dim, e.db, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := vstore.Release(ctx, e.db, e.keys, h, ids[0], "cli:op"); !errors.Is(err, vstore.ErrStillDamaged) {
		t.Fatalf("release of a damaged face: %v, want ErrStillDamaged", err)
	}
	if err := vstore.Release(ctx, e.db, e.keys, h, ids[2], "cli:op"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("release of a face not in quarantine: %v, want ErrNotFound", err)
	}
	storetest.SetTemplates(t, e.path, map[int64][]byte{ids[0]: backup[ids[0]]})
	if err := vstore.Release(ctx, e.db, e.keys, h, ids[0], "cli:op"); err != nil {
		t.Fatalf("release after restoring the template: %v", err)
	}
	if got := indexed(t, h); !slices.Equal(got, []int64{ids[0], ids[2]}) {
		t.Errorf("indexed %v after release, want %v", got, []int64{ids[0], ids[2]})
	}
	images, err := vstore.Erase(ctx, e.db, h, ids[1], "cli:op")
	if err != nil || len(images) != 1 {
		t.Fatalf("erase: images %v, %v", images, err)
	}
	if _, err := e.db.Face(ctx, ids[1]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("erased face still stored: %v", err)
	}
	if n, _ := e.db.QuarantineCount(ctx); n != 0 {
		t.Errorf("%d faces left in quarantine", n)
	}
	es, err := e.db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range es {
		if a.Actor == "cli:op" {
			actions = append(actions, a.Action+" "+a.Object)
		}
	}
	want := []string{fmt.Sprint("face.quarantine.release face/", ids[0]), fmt.Sprint("faces.erase face/", ids[1])}
	if !slices.Equal(actions, want) {
		t.Errorf("operator's audit entries %v, want %v", actions, want)
	}
}
