package weaviate

import (
	"context"
	mrand "math/rand/v2"
	"slices"
	"testing"
	"time"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/vindextest"
)

// TestDeleteSomeAndReset: with a node missing, Delete refuses but
// DeleteSome deletes from the replicas that answer; Reset empties the
// collection and leaves it usable, with the same configuration.
func TestDeleteSomeAndReset(t *testing.T) {
	e := cluster(t)
	ctx := context.Background()
	ix := open(t, Config{Endpoints: e, Collection: testCollection("engine"), Dim: 8, Replicas: 2})
	defer ix.Close()
	r := mrand.New(mrand.NewPCG(5, 5))
	vecs := [][]float32{vindextest.RandUnit(r, 8), vindextest.RandUnit(r, 8), vindextest.RandUnit(r, 8)}
	if err := ix.Add(ctx, []int64{1, 2, 3}, vecs); err != nil {
		t.Fatal(err)
	}
	ix.members = append(slices.Clone(ix.members), "node-gone")
	if err := ix.Delete(ctx, []int64{1}); err == nil {
		t.Fatal("Delete at ALL with a node missing succeeded")
	}
	if err := ix.DeleteSome(ctx, []int64{1}); err != nil {
		t.Fatalf("DeleteSome with a node missing: %v", err)
	}
	// DeleteSome acknowledges at ONE: a search (at ONE too) may read the
	// other replica before the delete reaches it, moments later.
	var hits []vindex.Hit
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		hits, err = ix.Search(ctx, vecs[0], 3, -1)
		gone := err == nil && !slices.ContainsFunc(hits, func(h vindex.Hit) bool { return h.ID == 1 }) && len(hits) == 2
		if gone || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || slices.ContainsFunc(hits, func(h vindex.Hit) bool { return h.ID == 1 }) || len(hits) != 2 {
		t.Fatalf("Search after DeleteSome(1), for 10 s = %v, %v; want 2 and 3 only", hits, err)
	}
	ix.members = ix.members[:len(ix.members)-1]

	if err := ix.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if n, err := ix.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len after Reset = %d, %v; want 0", n, err)
	}
	if err := ix.Add(ctx, []int64{7}, vecs[1:2]); err != nil {
		t.Fatalf("Add after Reset: %v", err)
	}
	if hits, err := ix.Search(ctx, vecs[1], 1, 0.99); err != nil || len(hits) != 1 || hits[0].ID != 7 {
		t.Fatalf("Search after Reset and Add = %v, %v", hits, err)
	}
	// Reopened with the same configuration, the collection is accepted.
	again, err := Open(ctx, ix.Config())
	if err != nil {
		t.Fatalf("Open after Reset: %v", err)
	}
	again.Close()
}
