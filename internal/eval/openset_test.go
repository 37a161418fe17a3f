package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFitTail: on scores whose tail is known (uniform on [0, 1): FAR(s) =
// 1-s), the fitted points sit where they should, and too few scores are
// refused.
func TestFitTail(t *testing.T) {
	n := 1_000_000
	s := make([]float64, n)
	for i := range s {
		s[i] = (float64(i) + 0.5) / float64(n)
	}
	pts, slope, err := FitTail(s, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) < 5 || !(slope < 0) {
		t.Fatalf("points %v, slope %v", pts, slope)
	}
	for _, p := range pts {
		if math.Abs((1-p.Score)-p.FAR) > 2e-6 {
			t.Errorf("point %+v: FAR of a uniform score is %v", p, 1-p.Score)
		}
	}
	if _, _, err := FitTail(s[:100], 10); err == nil {
		t.Error("a tail fitted on 100 scores")
	}
}

// synthPhotos makes n identities of k photos each in d dimensions: one
// face per photo, its identity's centre plus noise.
func synthPhotos(n, k, d int, noise float64, seed uint64) []Photo {
	rng := rand.New(rand.NewPCG(seed, 2))
	var photos []Photo
	for i := range n {
		c := make([]float64, d)
		for j := range c {
			c[j] = rng.NormFloat64()
		}
		for p := range k {
			v := make([]float32, d)
			var norm float64
			for j := range v {
				x := c[j] + noise*rng.NormFloat64()
				v[j] = float32(x)
				norm += x * x
			}
			for j := range v {
				v[j] /= float32(math.Sqrt(norm))
			}
			photos = append(photos, Photo{Set: "synth", Identity: fmt.Sprintf("id%03d", i), File: fmt.Sprintf("id%03d/%02d", i, p),
				Subject: 0, Faces: []PhotoFace{{Emb: v, Quality: 0.9, Size: 100}}})
		}
	}
	return photos
}

// TestOpenSetCounts: the protocol's counts follow from the folds, and the
// extreme rules give the extreme rates: a threshold no score reaches
// returns nothing (FPIR 0, FNIR 1), one every score reaches returns
// everything (FPIR 1, FNIR 0); well separated identities are found by the
// product's decision, with few strangers.
func TestOpenSetCounts(t *testing.T) {
	photos := synthPhotos(60, 8, 32, 0.3, 1)
	rows, err := OpenSet(photos, OpenSetConfig{Folds: 4, MatedProbes: 2, Sizes: []int{0}, FPIR: 0.01, Seed: 1,
		Rules: []Rule{Threshold("none", 2), Threshold("all", -2), Decided("decider", 0)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("rows = %+v", rows)
	}
	for _, r := range rows {
		// 15 held-out identities × 8 photos per fold, 45 × 2 mated.
		if r.NonMated != 4*120 || r.Mated != 4*90 || r.Faces != 45*6 || r.People != 45 {
			t.Errorf("%s: counts %+v", r.Rule, r)
		}
	}
	if r := rows[0]; r.FPIR != 0 || r.FNIR != 1 {
		t.Errorf("nothing returned: %+v", r)
	}
	if r := rows[1]; r.FPIR != 1 || r.FNIR != 0 || r.Recall != 1 {
		t.Errorf("everything returned: %+v", r)
	}
	// A sanity bound, not an accuracy claim: 480 non-mated searches on
	// tails fitted from 15,000 impostor comparisons.
	if r := rows[2]; r.FPIR > 0.03 || r.FNIR > 0.05 || r.Recall < 0.9 {
		t.Errorf("decider on separated identities: %+v", r)
	}
}

// TestDropCrossDuplicates: the same picture under two identities goes,
// both copies.
func TestDropCrossDuplicates(t *testing.T) {
	photos := synthPhotos(3, 2, 16, 0.3, 3)
	dup := photos[0]
	dup.Identity, dup.File = "id001", "id001/copy"
	photos = append(photos, dup)
	kept, dropped := DropCrossDuplicates(photos)
	if len(kept) != len(photos)-2 || len(dropped) != 2 || dropped[0] != "id000/00" || dropped[1] != "id001/copy" {
		t.Errorf("kept %d of %d, dropped %v", len(kept), len(photos), dropped)
	}
}
