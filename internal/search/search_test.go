package search_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/openset"
	"gabarit/internal/search"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vindex/flat"
)

const dim = 4

// probes maps probe bytes to the faces the fake analyzer finds in them.
type probes map[string][]face.Face

func (p probes) Analyze(_ context.Context, data []byte) (face.Analysis, error) {
	faces, ok := p[string(data)]
	if !ok {
		return face.Analysis{}, errors.New("corrupt image")
	}
	return face.Analysis{Width: 100, Height: 100, Faces: faces}, nil
}

func vec(xs ...float32) face.Embedding { return face.Normalize(xs) }

func box(size float64) face.Box { return face.Box{X: 1, Y: 1, W: size, H: size} }

type fixture struct {
	db   *store.DB
	keys *keyring.Keyring
	idx  *flat.Index
	eng  *search.Engine
	src  [2]int64
	ids  map[string]int64 // face id by image locator
	path string           // the store's SQLite file
}

// newFixture stores four faces in two sources: alice twice (a1, a2), bob
// (b1) and carol in the second source (c1).
func newFixture(t *testing.T, pr probes) *fixture {
	t.Helper()
	ctx := context.Background()
	db, kr, path := storetest.OpenFile(t)
	f := &fixture{db: db, keys: kr, idx: flat.New(dim), ids: map[string]int64{}, path: path}
	for i := range f.src {
		f.src[i] = storetest.Source(t, db, []store.LegalBasis{store.BasisConsent, store.BasisPublicTask}[i], time.Hour)
		if err := kr.EnsureKey(ctx, f.src[i]); err != nil {
			t.Fatal(err)
		}
	}
	add := func(src int64, locator string, v face.Embedding) {
		rec := store.IngestRecord{Locator: locator, SHA256: sha256.Sum256([]byte(locator)),
			Image: store.Image{Width: 100, Height: 100},
			Faces: []store.Face{{Box: box(40), Score: 0.9, Quality: 0.5, ModelID: "m1", Dim: dim}}, Templates: [][]float32{v}}
		res, err := db.CommitIngest(ctx, src, []store.IngestRecord{rec}, func(sf store.Face, tmpl []float32) ([]byte, error) {
			return kr.Seal(ctx, src, sf.ID, sf.ModelID, tmpl)
		})
		if err != nil {
			t.Fatal(err)
		}
		id := res[0].FaceIDs[0]
		f.ids[locator] = id
		if err := f.idx.Add(ctx, []int64{id}, [][]float32{v}); err != nil {
			t.Fatal(err)
		}
	}
	add(f.src[0], "alice/1.jpg", vec(1, 0.1, 0, 0))
	add(f.src[0], "alice/2.jpg", vec(1, 0, 0.2, 0))
	add(f.src[0], "bob.jpg", vec(0, 1, 0, 0))
	add(f.src[1], "carol.jpg", vec(0, 0, 0, 1))
	f.eng = &search.Engine{An: pr, Store: db, Keys: kr, Index: f.idx, ModelID: "m1", Decider: testDecider(t)}
	return f
}

// testDecider puts the single-face operating point of a 4-face gallery at
// FPIR 1% just under 0.5 (0.64 for 3,000 faces), and links faces at 0.9.
func testDecider(t testing.TB) *openset.Decider {
	t.Helper()
	tail, err := openset.New([]openset.TailPoint{{Score: -0.5, FAR: 0.5}, {Score: 0.5, FAR: 0.00125}}, -20)
	if err != nil {
		t.Fatal(err)
	}
	return &openset.Decider{Single: tail, Group: tail, Link: 0.9, FloorFAR: 0.1, MinQuality: 0.2}
}

func req(probe string) search.Request {
	return search.Request{Actor: "cli:test", Purpose: "case work", Case: "C-1", K: 10, Face: -1, Probe: []byte(probe)}
}

func ptr(v float64) *float64 { return &v }

func TestSearchFindsThePersonOnly(t *testing.T) {
	pr := probes{"alice": {{Box: box(10), Quality: 0.1, Embedding: vec(0, 1, 0, 0)}, {Box: box(50), Quality: 0.8, Embedding: vec(1, 0.05, 0.05, 0)}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	res, err := f.eng.Search(ctx, req("alice"))
	if err != nil {
		t.Fatal(err)
	}
	// The best face (alice) is searched, not bob's small, blurred one.
	if len(res.Hits) != 2 || res.Hits[0].Locator != "alice/1.jpg" && res.Hits[0].Locator != "alice/2.jpg" {
		t.Fatalf("hits = %+v", res.Hits)
	}
	for _, h := range res.Hits {
		if h.Similarity < 0.5 || h.SourceID != f.src[0] || h.LegalBasis != store.BasisConsent || h.Box != box(40) {
			t.Errorf("hit = %+v", h)
		}
	}
	if res.ProbeFaces != 2 || res.ProbeFace.Embedding != nil {
		t.Errorf("probe faces %d, probe template kept: %v", res.ProbeFaces, res.ProbeFace.Embedding != nil)
	}
	if p := res.Probe; p.Index != 1 || p.Faces != 2 || p.Chosen != "best quality" || p.Quality != 0.8 || p.Warning != "" {
		t.Errorf("probe face = %+v", p)
	}

	// --face 0 searches bob.
	r := req("alice")
	r.Face = 0
	res, err = f.eng.Search(ctx, r)
	if err != nil || len(res.Hits) != 1 || res.Hits[0].Locator != "bob.jpg" {
		t.Fatalf("face 0: %+v, %v", res.Hits, err)
	}
	if p := res.Probe; p.Index != 0 || p.Chosen != "asked" || !strings.Contains(p.Warning, "low-quality") {
		t.Errorf("asked low-quality face = %+v", p)
	}
	r.Face = 2
	if _, err := f.eng.Search(ctx, r); !errors.Is(err, search.ErrBadRequest) {
		t.Errorf("face 2 of 2: err = %v", err)
	}
}

func TestNoMatchIsAnAnswer(t *testing.T) {
	pr := probes{"stranger": {{Box: box(50), Embedding: vec(0, -1, -1, 0.2)}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	res, err := f.eng.Search(ctx, req("stranger"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 0 {
		t.Fatalf("a stranger matched: %+v", res.Hits)
	}
	if res.AuditID == 0 || res.SearchID == 0 {
		t.Errorf("no-match search not recorded: %+v", res)
	}
}

func TestEverySearchAudited(t *testing.T) {
	pr := probes{"alice": {{Box: box(50), Embedding: vec(1, 0.05, 0.05, 0)}}, "noface": nil}
	f := newFixture(t, pr)
	ctx := context.Background()

	r := req("alice")
	r.Purpose = "  "
	if _, err := f.eng.Search(ctx, r); !errors.Is(err, search.ErrNoPurpose) {
		t.Fatalf("no purpose: err = %v", err)
	}
	if es, _ := f.db.AuditEntries(ctx, 1, 0); len(es) != 0 {
		t.Fatalf("refused search wrote %d audit entries", len(es))
	}

	res, err := f.eng.Search(ctx, req("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Search(ctx, req("noface")); !errors.Is(err, face.ErrNoFace) {
		t.Fatalf("probe without a face: err = %v", err)
	}
	es, err := f.db.AuditEntries(ctx, 1, 0)
	if err != nil || len(es) != 2 {
		t.Fatalf("audit entries = %d, %v; want 2", len(es), err)
	}
	e := es[0]
	if e.ID != res.AuditID || e.Actor != "cli:test" || e.Action != "search" || e.Object != fmt.Sprint("search/", res.SearchID) {
		t.Errorf("audit entry = %+v", e)
	}
	var d struct {
		Purpose, Case, Probe_sha256 string
		K                           int
		Threshold                   float64
		Operating_point, FPIR       float64
		Gallery, Above              int
		Returned                    []int64
	}
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("alice"))
	if d.Purpose != "case work" || d.Case != "C-1" || d.Probe_sha256 != fmt.Sprintf("%x", sum) || d.K != 10 ||
		d.Threshold != res.OperatingPoint || d.Operating_point != res.OperatingPoint || d.FPIR != search.DefaultFPIR ||
		d.Gallery != 4 || d.Above != 2 || len(d.Returned) != 2 {
		t.Errorf("audit detail = %s", e.Detail)
	}
	if bytes.Contains(e.Detail, []byte("alice")) && !strings.Contains(string(e.Detail), "alice/") {
		t.Errorf("audit detail holds the probe: %s", e.Detail)
	}
	s, err := f.db.Search(ctx, res.SearchID)
	if err != nil || s.ProbeSHA256 != sum || len(s.Returned) != 2 {
		t.Errorf("search row = %+v, %v", s, err)
	}
}

// TestDeletedAndShreddedNeverReturned: a face deleted from the store but
// still in a stale index, and the faces of a crypto-shredded source, are not
// returned.
func TestDeletedAndShreddedNeverReturned(t *testing.T) {
	pr := probes{"alice": {{Box: box(50), Embedding: vec(1, 0.05, 0.05, 0)}}, "carol": {{Box: box(50), Embedding: vec(0, 0, 0.1, 1)}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	if _, err := f.db.DeleteFaces(ctx, []int64{f.ids["alice/1.jpg"]}); err != nil {
		t.Fatal(err)
	}
	res, err := f.eng.Search(ctx, req("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].Locator != "alice/2.jpg" {
		t.Errorf("hits = %+v", res.Hits)
	}
	if len(res.Stale) != 1 || res.Stale[0] != f.ids["alice/1.jpg"] {
		t.Errorf("stale = %v", res.Stale)
	}

	if err := f.keys.Shred(ctx, f.src[1]); err != nil {
		t.Fatal(err)
	}
	res, err = f.eng.Search(ctx, req("carol"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 0 || !slices.Contains(res.Stale, f.ids["carol.jpg"]) {
		t.Errorf("shredded source: hits %+v, stale %v", res.Hits, res.Stale)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, probes{})
	ctx := context.Background()
	for _, mod := range []func(*search.Request){
		func(r *search.Request) { r.K = 0 },
		func(r *search.Request) { r.K = search.MaxK + 1 },
		func(r *search.Request) { r.Threshold = ptr(1.5) },
		func(r *search.Request) { r.Actor = "" },
		func(r *search.Request) { r.Probe = nil },
	} {
		r := req("x")
		mod(&r)
		if _, err := f.eng.Search(ctx, r); !errors.Is(err, search.ErrBadRequest) {
			t.Errorf("%+v: err = %v", r, err)
		}
	}
	if _, err := f.eng.Search(ctx, req("corrupt")); err == nil || !strings.Contains(err.Error(), "probe") {
		t.Errorf("corrupt probe: err = %v", err)
	}
}
