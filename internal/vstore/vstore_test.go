package vstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/flat"
	"gabarit/internal/vstore"
)

const dim = 4

var flatKind = vstore.Kind{
	Name: "flat",
	New:  func(dim int) vindex.Index { return flat.New(dim) },
	Load: func(r io.Reader) (vindex.Index, error) { return flat.Load(r) },
}

type env struct {
	db   *store.DB
	keys *keyring.Keyring
	src  int64
	n    int
	path string // the store's SQLite file
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	db, kr, path := storetest.OpenFile(t)
	src := storetest.Source(t, db, store.BasisConsent, time.Hour)
	if err := kr.EnsureKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	return &env{db: db, keys: kr, src: src, path: path}
}

// add stores one image with one face of model m and returns the face id.
func (e *env) add(t testing.TB, m string) int64 {
	t.Helper()
	ctx := context.Background()
	e.n++
	v := face.Normalize([]float32{1, float32(e.n), 0, 1})
	loc := fmt.Sprint("img", e.n)
	rec := store.IngestRecord{Locator: loc, SHA256: sha256.Sum256([]byte(loc)), Image: store.Image{Width: 9, Height: 9},
		Faces: []store.Face{{Box: face.Box{W: 5, H: 5}, ModelID: m, Dim: dim}}, Templates: [][]float32{v}}
	res, err := e.db.CommitIngest(ctx, e.src, []store.IngestRecord{rec}, func(f store.Face, tm []float32) ([]byte, error) {
		return e.keys.Seal(ctx, e.src, f.ID, f.ModelID, tm)
	})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].FaceIDs[0]
}

func TestOpenCatchUpRebuild(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "index", "faces.idx")
	open := func() *vstore.Handle {
		t.Helper()
		h, err := vstore.Open(ctx, path, flatKind, "m1", dim, e.db, e.keys)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	for range 3 {
		e.add(t, "m1")
	}
	e.add(t, "other-model")
	h := open()
	if !h.Rebuilt || h.CaughtUp != 3 || vindex.Count(h.Index) != 3 {
		t.Fatalf("first open: rebuilt %v, caught up %d, len %d", h.Rebuilt, h.CaughtUp, vindex.Count(h.Index))
	}
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("index file: %v, %v", fi, err)
	}

	// Faces committed after the save (an ingest killed before saving).
	late := e.add(t, "m1")
	h = open()
	if h.Rebuilt || h.CaughtUp != 1 || vindex.Count(h.Index) != 4 {
		t.Fatalf("after a late commit: rebuilt %v, caught up %d, len %d", h.Rebuilt, h.CaughtUp, vindex.Count(h.Index))
	}
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()

	// A face deleted by a process that did not save the index: its
	// outbox operation removes it, without a rebuild.
	if _, err := e.db.DeleteFaces(ctx, []int64{late}); err != nil {
		t.Fatal(err)
	}
	h = open()
	if h.Rebuilt || vindex.Count(h.Index) != 3 {
		t.Fatalf("after a delete: rebuilt %v, len %d", h.Rebuilt, vindex.Count(h.Index))
	}
	hits, err := h.Index.Search(ctx, face.Normalize([]float32{1, 4, 0, 1}), 10, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, hit := range hits {
		if hit.ID == late {
			t.Fatalf("deleted face %d returned", late)
		}
	}
	h.Close()

	// A corrupt file is rebuilt, not trusted.
	if err := os.WriteFile(path, []byte("GBVSTORE1\ngarbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	h = open()
	if !h.Rebuilt || vindex.Count(h.Index) != 3 {
		t.Fatalf("corrupt file: rebuilt %v, len %d", h.Rebuilt, vindex.Count(h.Index))
	}
	h.Close()

	// Another model's index is not reused.
	h, err = vstore.Open(ctx, path, flatKind, "other-model", dim, e.db, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Rebuilt || vindex.Count(h.Index) != 1 {
		t.Fatalf("other model: rebuilt %v, len %d", h.Rebuilt, vindex.Count(h.Index))
	}
	h.Close()
}

func TestShreddedSkipped(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(t, "m1")
	if err := e.keys.Shred(ctx, e.src); err != nil {
		t.Fatal(err)
	}
	h, err := vstore.Rebuild(ctx, filepath.Join(t.TempDir(), "faces.idx"), flatKind, "m1", dim, e.db, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if vindex.Count(h.Index) != 0 {
		t.Fatalf("shredded faces indexed: %d", vindex.Count(h.Index))
	}
}
