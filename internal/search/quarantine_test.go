package search_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// quarantineEntries returns the face.quarantine audit entries by object.
func quarantineEntries(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	all, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range all {
		if e.Action == "face.quarantine" {
			out[e.Object]++
		}
	}
	return out
}

// TestSearchQuarantinesSwappedTemplates is the probe of issue 12 (item 3):
// two sealed templates swapped in the database. A search whose probe hits
// them still answers, without them; they are put in quarantine once (one
// audit entry each, however many searches meet them), and left out of
// every later search.
func TestSearchQuarantinesSwappedTemplates(t *testing.T) {
	pr := probes{"alice": {{Box: box(50), Quality: 0.8, Embedding: vec(1, 0.05, 0.05, 0)}},
		"bob": {{Box: box(50), Quality: 0.8, Embedding: vec(0, 1, 0, 0)}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	a1, a2 := f.ids["alice/1.jpg"], f.ids["alice/2.jpg"]
	storetest.SwapTemplates(t, f.path, a1, f.ids["bob.jpg"])

	for i := range 3 {
		res, err := f.eng.Search(ctx, req("alice"))
		if err != nil {
			t.Fatalf("search %d: %v", i, err)
		}
		if got := res.Returned(); !slices.Equal(got, []int64{a2}) {
			t.Errorf("search %d returned %v, want only the readable alice/2 (%d)", i, got, a2)
		}
		if i == 0 && !slices.Contains(res.Stale, a1) {
			t.Errorf("search %d: stale %v, want the quarantined face %d (to drop from the index)", i, res.Stale, a1)
		}
	}
	// bob's template is damaged too: a search for him answers "no match".
	res, err := f.eng.Search(ctx, req("bob"))
	if err != nil || len(res.All) != 0 {
		t.Fatalf("search for bob: %v, %v; want no match and no error", res.Returned(), err)
	}

	got := quarantineEntries(t, f.db)
	want := map[string]int{fmt.Sprint("face/", a1): 1, fmt.Sprint("face/", f.ids["bob.jpg"]): 1}
	if !maps.Equal(got, want) {
		t.Errorf("face.quarantine entries = %v, want one per damaged face %v", got, want)
	}
	q, err := f.db.Quarantined(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || q[0].Found != store.FoundBySearch || q[0].Reason != "does not authenticate" || q[0].SourceID != f.src[0] {
		t.Errorf("quarantined = %+v", q)
	}

	// Restored from a backup, the template opens again, but the face stays
	// out of searches until the operator releases it.
	storetest.SwapTemplates(t, f.path, a1, f.ids["bob.jpg"])
	res, err = f.eng.Search(ctx, req("alice"))
	if err != nil || slices.Contains(res.Returned(), a1) {
		t.Fatalf("restored but not released: %v, %v; want face %d still left out", res.Returned(), err, a1)
	}
	if err := f.db.ReleaseFace(ctx, a1, "cli:op"); err != nil {
		t.Fatal(err)
	}
	res, err = f.eng.Search(ctx, req("alice"))
	if err != nil || !slices.Contains(res.Returned(), a1) {
		t.Fatalf("released: %v, %v; want face %d back", res.Returned(), err, a1)
	}
}

// TestSearchWithoutQuarantineFails keeps the old contract for a store that
// keeps no quarantine: a template that cannot be opened fails the search
// rather than being skipped unrecorded.
func TestSearchWithoutQuarantineFails(t *testing.T) {
	pr := probes{"alice": {{Box: box(50), Quality: 0.8, Embedding: vec(1, 0.05, 0.05, 0)}}}
	f := newFixture(t, pr)
	storetest.SwapTemplates(t, f.path, f.ids["alice/1.jpg"], f.ids["bob.jpg"])
	f.eng.Store = plainStore{f.db}
	if _, err := f.eng.Search(context.Background(), req("alice")); err == nil {
		t.Fatal("a damaged template was skipped without being recorded")
	}
}

// plainStore is a search.Store without a quarantine.
type plainStore struct{ db *store.DB }

func (p plainStore) FaceRefs(ctx context.Context, ids []int64) (map[int64]store.FaceRef, error) {
	return p.db.FaceRefs(ctx, ids)
}

func (p plainStore) RecordSearch(ctx context.Context, s store.Search) (int64, int64, error) {
	return p.db.RecordSearch(ctx, s)
}
