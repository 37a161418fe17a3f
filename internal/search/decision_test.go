package search_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gabarit/internal/face"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

// addFaces stores one face per template in f's first source.
func (f *fixture) addFaces(t *testing.T, prefix string, ts []face.Embedding, quality float64) []int64 {
	t.Helper()
	ctx := context.Background()
	var recs []store.IngestRecord
	for i, v := range ts {
		loc := fmt.Sprintf("%s/%d.jpg", prefix, i)
		recs = append(recs, store.IngestRecord{Locator: loc, SHA256: sha256.Sum256([]byte(loc)),
			Image: store.Image{Width: 100, Height: 100},
			Faces: []store.Face{{Box: box(40), Score: 0.9, Quality: quality, ModelID: "m1", Dim: dim}}, Templates: [][]float32{v}})
	}
	src := f.src[0]
	res, err := f.db.CommitIngest(ctx, src, recs, func(sf store.Face, tmpl []float32) ([]byte, error) {
		return f.keys.Seal(ctx, src, sf.ID, sf.ModelID, tmpl)
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	var vecs [][]float32
	for i, r := range res {
		ids = append(ids, r.FaceIDs[0])
		vecs = append(vecs, ts[i])
	}
	if err := f.idx.Add(ctx, ids, vecs); err != nil {
		t.Fatal(err)
	}
	return ids
}

// near returns n templates close to v (cosine above 0.95 with it).
func near(v face.Embedding, n int, seed uint64) []face.Embedding {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]face.Embedding, n)
	for i := range out {
		w := make([]float32, len(v))
		for j := range w {
			w[j] = v[j] + float32(rng.NormFloat64()*0.05)
		}
		out[i] = face.Normalize(w)
	}
	return out
}

// TestFloorAndExploratorySearch: nobody may go below the operating point
// unless allowed and with a reason; such a search is audited as
// exploratory, and what it returns beyond the matches is marked weak.
func TestFloorAndExploratorySearch(t *testing.T) {
	pr := probes{"alice": {{Box: box(50), Quality: 0.9, Embedding: vec(1, 0.05, 0.05, 0)}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	before, err := f.db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}

	r := req("alice")
	r.Threshold = ptr(-1)
	if _, err := f.eng.Search(ctx, r); !errors.Is(err, search.ErrBelowOperatingPoint) {
		t.Fatalf("below the operating point without the role: err = %v", err)
	}
	r.MayExplore = true
	if _, err := f.eng.Search(ctx, r); !errors.Is(err, search.ErrBelowOperatingPoint) {
		t.Fatalf("below the operating point without a reason: err = %v", err)
	}
	if es, _ := f.db.AuditEntries(ctx, 1, 0); len(es) != len(before) {
		t.Fatalf("refused searches wrote %d audit entries", len(es)-len(before))
	}

	r.Reason = "lead from a witness, poor photo"
	res, err := f.eng.Search(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exploratory || res.Threshold != -1 || res.Above != 4 || len(res.All) != 4 {
		t.Fatalf("exploratory: %+v", res)
	}
	for _, h := range res.All {
		alice := h.Locator == "alice/1.jpg" || h.Locator == "alice/2.jpg"
		if alice == (h.Band == search.BandWeak) {
			t.Errorf("%s: band %s", h.Locator, h.Band)
		}
	}
	rec, err := f.db.Search(ctx, res.SearchID)
	if err != nil || rec.Exploratory != r.Reason || rec.Threshold != -1 || len(rec.Results) != 4 {
		t.Fatalf("record: %+v, %v", rec, err)
	}
	es, err := f.db.AuditEntries(ctx, res.AuditID, 1)
	if err != nil || len(es) != 1 || es[0].Action != "search.exploratory" {
		t.Fatalf("audit: %+v, %v", es, err)
	}

	// Narrowing the search needs no role.
	r = req("alice")
	r.Threshold = ptr(0.995)
	res, err = f.eng.Search(ctx, r)
	if err != nil || res.Exploratory || len(res.All) != 1 || res.All[0].Locator != "alice/1.jpg" {
		t.Fatalf("narrowed: %+v, %v", res.All, err)
	}
}

// TestEveryMatchCountedAndRecorded: a person held in more photos than a
// page gets every one of them counted and recorded, once each, best first.
func TestEveryMatchCountedAndRecorded(t *testing.T) {
	probe := vec(1, 0.05, 0.05, 0)
	pr := probes{"dave": {{Box: box(50), Quality: 0.9, Embedding: probe}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	dave := f.addFaces(t, "dave", near(probe, 37, 1), 0.9)
	r := req("dave")
	r.K = 5
	res, err := f.eng.Search(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	// alice's two faces are within 0.95 of the probe too.
	if res.Above != 39 || len(res.All) != 39 || len(res.Hits) != 5 || res.Truncated {
		t.Fatalf("above %d, all %d, hits %d, truncated %v", res.Above, len(res.All), len(res.Hits), res.Truncated)
	}
	rec, err := f.db.Search(ctx, res.SearchID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for i, r := range rec.Results {
		if seen[r.FaceID] {
			t.Fatalf("face %d recorded twice", r.FaceID)
		}
		seen[r.FaceID] = true
		if i > 0 && r.Similarity > rec.Results[i-1].Similarity {
			t.Errorf("result %d not in rank order", i)
		}
		if r.Band == "" || r.Band == search.BandWeak {
			t.Errorf("result %d: band %q", i, r.Band)
		}
	}
	for _, id := range dave {
		if !seen[id] {
			t.Errorf("dave's face %d not recorded", id)
		}
	}
	if rec.Above != 39 || len(rec.Returned) != 39 {
		t.Errorf("record: above %d, returned %d", rec.Above, len(rec.Returned))
	}
}

// TestOperatingPointRisesWithTheGallery: the same probe against a larger
// gallery is decided at a higher similarity, and a lone look-alike that
// matched in a small gallery no longer does in a large one, while a face
// whose look-alikes resemble the probe too still matches.
func TestOperatingPointRisesWithTheGallery(t *testing.T) {
	probe := vec(1, 0, 0, 0)
	pr := probes{"p": {{Box: box(50), Quality: 0.9, Embedding: probe}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	small, err := f.eng.Search(ctx, req("p"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var noise []face.Embedding
	for range 3000 {
		noise = append(noise, face.Normalize([]float32{float32(rng.NormFloat64()) - 2, float32(rng.NormFloat64()),
			float32(rng.NormFloat64()), float32(rng.NormFloat64())}))
	}
	f.addFaces(t, "noise", noise, 0.9)
	large, err := f.eng.Search(ctx, req("p"))
	if err != nil {
		t.Fatal(err)
	}
	if large.Gallery != 3004 || !(large.OperatingPoint > small.OperatingPoint) || !(large.GroupPoint > small.GroupPoint) {
		t.Fatalf("operating points: %d faces %.4f/%.4f, %d faces %.4f/%.4f", small.Gallery, small.OperatingPoint,
			small.GroupPoint, large.Gallery, large.OperatingPoint, large.GroupPoint)
	}
	// A lone face just over the small gallery's operating point.
	lone := face.Normalize([]float32{1, 0, 0, 1.4})
	if s, _ := face.Embedding(probe).Cosine(lone); !(s > small.OperatingPoint && s < large.OperatingPoint && s < large.GroupPoint) {
		t.Fatalf("lone face at %.4f: pick another (points %.4f, %.4f)", s, small.OperatingPoint, large.OperatingPoint)
	}
	loneID := f.addFaces(t, "lone", []face.Embedding{lone}, 0.9)[0]
	// A person with three photos at a similarity between the large
	// gallery's group and single-face operating points.
	g := (large.GroupPoint + large.OperatingPoint) / 2
	var person []face.Embedding
	for _, z := range []float32{0, 0.02, -0.02} {
		person = append(person, face.Normalize([]float32{float32(g), z, float32(math.Sqrt(1 - g*g)), 0}))
	}
	personIDs := f.addFaces(t, "person", person, 0.9)
	res, err := f.eng.Search(ctx, req("p"))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, h := range res.All {
		got = append(got, h.FaceID)
		if slices.Contains(personIDs, h.FaceID) && (h.Support < 2 || h.Band == search.BandWeak) {
			t.Errorf("group member %+v", h)
		}
	}
	if slices.Contains(got, loneID) {
		t.Errorf("the lone look-alike matched in a gallery of %d faces: %+v (points %.4f %.4f)", res.Gallery, res.All, res.OperatingPoint, res.GroupPoint)
	}
	for _, id := range personIDs {
		if !slices.Contains(got, id) {
			t.Errorf("person's face %d not found (got %v)", id, got)
		}
	}
}

// TestLowQualityFaceMatchesAlone: a stored face under the decider's minimum
// quality takes no part in look-alike evidence, but a copy of the probe's
// face still matches on its own similarity.
func TestLowQualityFaceMatchesAlone(t *testing.T) {
	probe := vec(0, 0, 1, 0)
	pr := probes{"p": {{Box: box(50), Quality: 0.9, Embedding: probe}}}
	f := newFixture(t, pr)
	ctx := context.Background()
	id := f.addFaces(t, "blurred", []face.Embedding{probe}, 0.1)[0]
	res, err := f.eng.Search(ctx, req("p"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.All) != 1 || res.All[0].FaceID != id || res.All[0].Support != 0 {
		t.Fatalf("results = %+v", res.All)
	}
}
