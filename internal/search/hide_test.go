package search_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vault"
)

// hider opens a vault and returns it with the Hide function that asks it
// about objections and restrictions at cosine 0.9, checked once per search.
func hider(t *testing.T) (*vault.Vault, func(context.Context) (func([]float32) (bool, error), error)) {
	t.Helper()
	db, kr := storetest.Open(t) // the vault's own store: the fixture's is another
	v, err := vault.Open(context.Background(), db, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, func(ctx context.Context) (func([]float32) (bool, error), error) {
		return v.Matcher(ctx, "m1", []vault.Kind{vault.Objection, vault.Restriction}, 0.9)
	}
}

// TestRestrictedNeverReturned: while alice is restricted, no search returns
// or records her faces, whatever its k and threshold; once the restriction
// is lifted she is found again.
func TestRestrictedNeverReturned(t *testing.T) {
	pr := probes{
		"alice": {{Box: box(50), Embedding: vec(1, 0.05, 0.05, 0)}},
		"bob":   {{Box: box(50), Embedding: vec(0.1, 1, 0, 0)}},
	}
	f := newFixture(t, pr)
	ctx := context.Background()
	v, hide := hider(t)
	f.eng.Hide = hide
	// The restriction is enrolled from another photo of alice's.
	if _, err := v.Add(ctx, vault.Restriction, 1, "m1", [][]float32{vec(1, 0.08, 0.1, 0)}); err != nil {
		t.Fatal(err)
	}
	alice := []int64{f.ids["alice/1.jpg"], f.ids["alice/2.jpg"]}
	others := 0
	for i := range 1000 {
		r := req([]string{"alice", "bob"}[i%2])
		r.K = 1 + i%7
		r.Threshold = ptr(-1 + float64(i%20)/10) // -1 … 0.9: exploratory below the operating point
		r.MayExplore, r.Reason = true, "test"
		res, err := f.eng.Search(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.All {
			if slices.Contains(alice, h.FaceID) {
				t.Fatalf("search %d (k %d, threshold %.1f) returned restricted face %d", i, r.K, *r.Threshold, h.FaceID)
			}
		}
		others += len(res.All)
		rec, err := f.db.Search(ctx, res.SearchID)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range rec.Returned {
			if slices.Contains(alice, id) {
				t.Fatalf("search %d recorded restricted face %d as returned", i, id)
			}
		}
		if len(rec.Returned) != len(res.All) || len(res.Hits) != min(r.K, len(res.All)) || rec.Above != res.Above {
			t.Fatalf("search %d: %d hits of %d, %d recorded (above %d)", i, len(res.Hits), len(res.All), len(rec.Returned), rec.Above)
		}
	}
	if others == 0 {
		t.Fatal("no search returned anyone: the test tests nothing")
	}

	if n, err := v.RemoveRequest(ctx, 1, vault.Restriction); err != nil || n != 1 {
		t.Fatalf("lift restriction: %d, %v", n, err)
	}
	res, err := f.eng.Search(ctx, req("alice"))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, h := range res.Hits {
		got = append(got, h.FaceID)
	}
	slices.Sort(got)
	if !slices.Equal(got, alice) {
		t.Errorf("after the restriction is lifted: hits %v, want alice's %v", got, alice)
	}
}

// TestObjectionHidden: an objection hides too; a failing check fails the
// search rather than returning hidden faces.
func TestObjectionHidden(t *testing.T) {
	pr := probes{"bob": {{Box: box(50), Embedding: vec(0, 1, 0.05, 0)}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	v, hide := hider(t)
	f.eng.Hide = hide
	if _, err := v.Add(ctx, vault.Objection, 2, "m1", [][]float32{vec(0, 1, 0, 0.05)}); err != nil {
		t.Fatal(err)
	}
	res, err := f.eng.Search(ctx, req("bob"))
	if err != nil || len(res.Hits) != 0 {
		t.Fatalf("bob objected: hits %+v, %v", res.Hits, err)
	}

	errVault := errors.New("vault unreadable")
	f.eng.Hide = func(context.Context) (func([]float32) (bool, error), error) {
		return func([]float32) (bool, error) { return false, errVault }, nil
	}
	if res, err := f.eng.Search(ctx, req("bob")); !errors.Is(err, errVault) || len(res.Hits) != 0 {
		t.Errorf("failing check: %+v, %v", res.Hits, err)
	}
	// A vault that cannot check its list at the start fails the search too.
	f.eng.Hide = func(context.Context) (func([]float32) (bool, error), error) { return nil, errVault }
	if res, err := f.eng.Search(ctx, req("bob")); !errors.Is(err, errVault) || len(res.Hits) != 0 {
		t.Errorf("failing list check: %+v, %v", res.Hits, err)
	}
}

// TestObjectionOnOtherInstanceHides: the vault of instance A and that of
// instance B over one PostgreSQL store; an objection accepted through A is
// enforced by B's very next search, without B reopening anything.
func TestObjectionOnOtherInstanceHides(t *testing.T) {
	pr := probes{"alice": {{Box: box(50), Embedding: vec(1, 0.05, 0.05, 0)}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	dsn := storetest.Postgres(t)
	master, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), "master.key")) // shared by the instances
	if err != nil {
		t.Fatal(err)
	}
	var vaults [2]*vault.Vault
	for i := range vaults {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		kr := keyring.New(master, db.KeyStore())
		t.Cleanup(func() { kr.Close() })
		v, err := vault.Open(ctx, db, kr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		vaults[i] = v
	}
	a, b := vaults[0], vaults[1]
	f.eng.Hide = func(ctx context.Context) (func([]float32) (bool, error), error) {
		return b.Matcher(ctx, "m1", []vault.Kind{vault.Objection, vault.Restriction}, 0.9)
	}
	alice := []int64{f.ids["alice/1.jpg"], f.ids["alice/2.jpg"]}
	found := func() int {
		t.Helper()
		r := req("alice")
		r.Threshold = ptr(0.5)
		res, err := f.eng.Search(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, h := range res.All {
			if slices.Contains(alice, h.FaceID) {
				n++
			}
		}
		return n
	}
	if n := found(); n == 0 {
		t.Fatal("B's search does not find alice before the objection: the test tests nothing")
	}
	if _, err := a.Add(ctx, vault.Objection, 7, "m1", [][]float32{vec(1, 0.08, 0.1, 0)}); err != nil {
		t.Fatal(err)
	}
	if n := found(); n != 0 {
		t.Errorf("B's next search returned %d of alice's faces after her objection through A", n)
	}
}
