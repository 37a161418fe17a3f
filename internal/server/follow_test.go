package server

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/store"
)

// TestFollowIndex checks that the server's vector index applies the
// changes of faces it did not make itself (another instance's ingest and
// erasure, written here straight to the store) without any request.
func TestFollowIndex(t *testing.T) {
	e := newTestEnvConfig(t, nil, func(c *Config) { c.CatchUpEvery = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	e.srv.followIndex(ctx)
	t.Cleanup(func() { cancel(); e.srv.bg.Wait() })
	db, keys, idx := e.data.DB, e.data.Keys, e.srv.cfg.Index.Index

	src, err := db.CreateSource(ctx, store.Source{Kind: store.KindFolder, Locator: e.photos, Controller: "Example",
		Purpose: "tests", LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a) explicit consent",
		Jurisdiction: "FR", Retention: time.Hour, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.EnsureKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, fakeDim)
	v[0] = 1
	rec := store.IngestRecord{Locator: "p0.png", SHA256: sha256.Sum256([]byte("p0")), Image: store.Image{Width: 9, Height: 9},
		Faces: []store.Face{{Box: face.Box{W: 5, H: 5}, ModelID: fakeModel{}.ModelID(), Dim: fakeDim}}, Templates: [][]float32{v}}
	res, err := db.CommitIngest(ctx, src, []store.IngestRecord{rec}, func(f store.Face, tm []float32) ([]byte, error) {
		return keys.Seal(ctx, src, f.ID, f.ModelID, tm)
	})
	if err != nil {
		t.Fatal(err)
	}
	id := res[0].FaceIDs[0]
	found := func() bool {
		hits, err := idx.Search(ctx, v, 10, -1)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if h.ID == id {
				return true
			}
		}
		return false
	}
	// Polled with a generous deadline: what is checked is that it
	// happens, not how fast.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the server's index never %s", what)
			}
		}
	}
	waitFor("got the face ingested elsewhere", found)
	if _, _, err := db.EraseFaces(ctx, []int64{id}, "dpo", "rights/1"); err != nil {
		t.Fatal(err)
	}
	waitFor("lost the face erased elsewhere", func() bool { return !found() })
}
