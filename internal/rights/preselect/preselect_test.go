package preselect

import (
	"math"
	"testing"

	"gabarit/internal/face"
	"gabarit/internal/modelpack"
	"gabarit/internal/openset"
)

// TestLookAlikeOfThePerson: the person's faces, look-alikes of each other,
// are pre-selected by their look-alike evidence; a stranger whose face
// resembles one of them is not, though a search's group evidence would
// match them.
func TestLookAlikeOfThePerson(t *testing.T) {
	dec, err := modelpack.DefaultOpenSet().Decider()
	if err != nil {
		t.Fatal(err)
	}
	person := func(i int) []float32 {
		v := make([]float32, 8)
		v[0], v[3+i] = 1, 0.2
		return face.Normalize(v)
	}
	stranger := face.Normalize([]float32{0.6, 0.8, 0, 0, 0, 0, 0, 0})
	cands := []openset.Candidate{
		{Similarity: 0.75, Quality: 0.9, Template: person(0)},
		{Similarity: 0.74, Quality: 0.9, Template: person(1)},
		{Similarity: 0.73, Quality: 0.9, Template: person(2)},
		{Similarity: 0.35, Quality: 0.9, Template: stranger},
	}
	const n, fpir = 3000, 0.001
	if p := dec.Points(n, fpir); !(p.Group < 0.73) || !(p.Single > 0.75) {
		t.Fatalf("points %+v: the test needs the person's faces between the group and single points", p)
	}
	_, search := dec.Decide(cands, n, fpir)
	if !search[3].Match {
		t.Fatal("a search's group evidence does not take the stranger: the test proves nothing")
	}
	p, ds := Preselect(dec, cands, n, fpir)
	for i := range 3 {
		if !ds[i].Preselected || ds[i].Band != BandStrong || ds[i].Support < 2 {
			t.Errorf("the person's face %d: %+v", i, ds[i])
		}
	}
	if ds[3].Preselected || ds[3].Band == BandStrong {
		t.Errorf("the stranger is pre-selected: %+v", ds[3])
	}
	if p.Strict != dec.Points(n, fpir).Single || p.Group != dec.Points(n, fpir).Group || p.Floor <= 0 {
		t.Errorf("points %+v", p)
	}
}

func TestScorer(t *testing.T) {
	a := face.Normalize([]float32{1, 0.2, 0})
	b := face.Normalize([]float32{1, -0.2, 0})
	s := NewScorer([][]float32{a, b})
	score, sims, best := s.Score(face.Normalize([]float32{1, 0.2, 0}))
	if len(sims) != 2 || math.Abs(sims[0]-1) > 1e-6 || best != sims[0] || !(score > sims[1] && score < sims[0]) {
		t.Errorf("score %v, sims %v, best %v", score, sims, best)
	}
	if NewScorer(nil) != nil || MeanTemplate([][]float32{{1, 0}, {-1, 0}}) != nil {
		t.Error("a scorer of no selfies, or of selfies that cancel out")
	}
}
