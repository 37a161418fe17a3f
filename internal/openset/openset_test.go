package openset

import (
	"math"
	"testing"
)

func testTail(t *testing.T) *Calibration {
	t.Helper()
	c, err := New([]TailPoint{{0.25, 1e-2}, {0.35, 1e-3}, {0.45, 1e-4}}, -10)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewRejectsBadTails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		points []TailPoint
		slope  float64
	}{
		{"one point", []TailPoint{{0.3, 1e-3}}, -10},
		{"scores not increasing", []TailPoint{{0.3, 1e-2}, {0.3, 1e-3}}, -10},
		{"FAR not decreasing", []TailPoint{{0.3, 1e-3}, {0.4, 1e-3}}, -10},
		{"FAR zero", []TailPoint{{0.3, 1e-3}, {0.4, 0}}, -10},
		{"score outside", []TailPoint{{0.3, 1e-3}, {1, 1e-4}}, -10},
		{"flat slope", []TailPoint{{0.3, 1e-3}, {0.4, 1e-4}}, 0},
		{"NaN slope", []TailPoint{{0.3, 1e-3}, {0.4, 1e-4}}, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.points, tc.slope); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestFARAndScoreAreInverse: Score(FAR(s)) = s inside the table and
// beyond it, and FAR falls as the score rises.
func TestFARAndScoreAreInverse(t *testing.T) {
	c := testTail(t)
	prev := 2.0
	for s := 0.06; s < 0.95; s += 0.01 {
		f := c.FAR(s)
		if f >= prev {
			t.Fatalf("FAR(%.2f) = %g, not below FAR at the previous score %g", s, f, prev)
		}
		prev = f
		if back := c.Score(f); math.Abs(back-s) > 1e-9 {
			t.Errorf("Score(FAR(%.2f)) = %v", s, back)
		}
	}
	if got := c.FAR(0.35); math.Abs(got-1e-3) > 1e-12 {
		t.Errorf("FAR at a point = %g", got)
	}
	// Before the first point: the first segment's slope, capped at 1.
	if got := c.FAR(0.15); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("FAR(0.15) = %g, want 0.1", got)
	}
	if got := c.FAR(-0.9); got != 1 {
		t.Errorf("FAR(-0.9) = %g, want 1", got)
	}
	// Beyond the last point: 10 decades per unit of score.
	if got := c.FAR(0.55); math.Abs(got-1e-5) > 1e-15 {
		t.Errorf("extrapolated FAR(0.55) = %g, want 1e-5", got)
	}
}

// TestOperatingPointHoldsFPIR: the operating point rises with the gallery,
// and at it the expected share of stranger searches with any result is the
// target.
func TestOperatingPointHoldsFPIR(t *testing.T) {
	c := testTail(t)
	prev := -1.0
	for _, n := range []int{1, 10, 1000, 1e6, 1e7} {
		op := c.OperatingPoint(n, 0.01)
		if op <= prev {
			t.Errorf("n %d: operating point %v not above %v", n, op, prev)
		}
		prev = op
		fpir := 1 - math.Pow(1-c.FAR(op), float64(n))
		if n > 1 && math.Abs(fpir-0.01) > 1e-6 {
			t.Errorf("n %d: FPIR at the operating point = %v", n, fpir)
		}
		if s := c.Strangers(op, n); n > 1 && math.Abs(s-0.01) > 2e-4 {
			t.Errorf("n %d: strangers at the operating point = %v", n, s)
		}
	}
	if op := c.OperatingPoint(1e18, 1e-6); op > 0.9999 {
		t.Errorf("operating point %v above its cap", op)
	}
}

func unit(xs ...float32) []float32 {
	var n float32
	for _, x := range xs {
		n += x * x
	}
	n = float32(math.Sqrt(float64(n)))
	for i := range xs {
		xs[i] /= n
	}
	return xs
}

// TestDecideUsesGroups: a face under the single-face operating point is a
// match when a look-alike of it is close enough to the probe too; a lone
// face at the same similarity is not; faces under the minimum quality
// match on their own similarity only, and neither carry nor are carried.
func TestDecideUsesGroups(t *testing.T) {
	tail := testTail(t)
	d := &Decider{Single: tail, Group: tail, Link: 0.9, FloorFAR: 1e-2, MinQuality: 0.2}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	p := d.Points(100, 0.01)
	if !(p.Floor < p.Group && p.Group < p.Single) {
		t.Fatalf("points %+v", p)
	}
	mid := (p.Group + p.Single) / 2
	a, a2 := unit(1, 0.1, 0, 0), unit(1, 0.12, 0.05, 0) // one person
	lone := unit(0, 0, 1, 0)
	low := unit(0, 0, 0, 1)
	cands := []Candidate{
		{Similarity: p.Single + 0.01, Quality: 0.9, Template: a},
		{Similarity: mid, Quality: 0.9, Template: a2},
		{Similarity: mid, Quality: 0.9, Template: lone},
		{Similarity: p.Single + 0.02, Quality: 0.1, Template: low},
		{Similarity: p.Floor - 0.01, Quality: 0.9, Template: a},
		{Similarity: mid, Quality: 0.1, Template: a2}, // a blurred look-alike of a: not carried
	}
	_, v := d.Decide(cands, 100, 0.01)
	want := []bool{true, true, false, true, false, false}
	for i := range want {
		if v[i].Match != want[i] {
			t.Errorf("candidate %d: match %v, want %v (%+v)", i, v[i].Match, want[i], v[i])
		}
	}
	if !v[1].ByGroup || v[1].Support != 1 || v[0].ByGroup || v[0].Support != 1 || v[2].Support != 0 || v[5].Support != 0 {
		t.Errorf("look-alikes: %+v", v)
	}
	if v[1].Strangers >= tail.FAR(mid)*100 {
		t.Errorf("a match by its group reports %v strangers, no better than alone", v[1].Strangers)
	}
	if v[4].Support != 0 {
		t.Errorf("a candidate under the floor is a look-alike: %+v", v[4])
	}
	// Without its look-alike, the second face is alone.
	_, v = d.Decide(cands[1:2], 100, 0.01)
	if v[0].Match {
		t.Errorf("a lone face under the operating point matched: %+v", v[0])
	}
}

// TestNoChains: a chain of look-alikes (a~b, b~c, but not a~c) does not
// carry c with a's similarity.
func TestNoChains(t *testing.T) {
	tail := testTail(t)
	d := &Decider{Single: tail, Group: tail, Link: 0.9, FloorFAR: 1e-2, MinQuality: 0}
	p := d.Points(100, 0.01)
	mid := (p.Group + p.Single) / 2
	a := unit(1, 0, 0, 0)
	b := unit(1, 0.5, 0, 0)  // ~0.89 from a… make it closer
	b = unit(1, 0.45, 0, 0)  // cos(a,b) ≈ 0.912
	c := unit(1, 0.95, 0, 0) // cos(b,c) ≈ 0.93, cos(a,c) ≈ 0.72
	cands := []Candidate{
		{Similarity: p.Single + 0.05, Template: a},
		{Similarity: p.Floor + 0.01, Template: b},
		{Similarity: mid, Template: c},
	}
	_, v := d.Decide(cands, 100, 0.01)
	if v[2].Match {
		t.Errorf("c matched through a chain: %+v", v)
	}
	if v[1].Support != 2 || v[0].Support != 1 || v[2].Support != 1 {
		t.Errorf("support: %+v", v)
	}
}

// TestFloorRisesInLargeGalleries: the candidates expected from strangers
// stay bounded whatever the gallery's size.
func TestFloorRisesInLargeGalleries(t *testing.T) {
	tail := testTail(t)
	d := &Decider{Single: tail, Group: tail, Link: 0.9, FloorFAR: 1e-2, MinQuality: 0}
	small := d.Points(1000, 0.01)
	if small.Floor != tail.Score(1e-2) {
		t.Errorf("floor of 1,000 faces = %v, want the FloorFAR score %v", small.Floor, tail.Score(1e-2))
	}
	for _, n := range []int{1e5, 1e6, 1e8} {
		p := d.Points(n, 0.01)
		if got := tail.FAR(p.Floor) * float64(n); got > MaxStrangerCandidates*1.0001 {
			t.Errorf("n %d: %v stranger candidates expected", n, got)
		}
		if !(p.Floor < p.Group) {
			t.Errorf("n %d: floor %v not under the group point %v", n, p.Floor, p.Group)
		}
	}
}

// TestLinkingIsBounded: beyond MaxLinked candidates, the least similar are
// decided alone (no look-alikes), so a search's pairwise work is bounded.
func TestLinkingIsBounded(t *testing.T) {
	tail := testTail(t)
	d := &Decider{Single: tail, Group: tail, Link: 0.9, FloorFAR: 1e-2, MinQuality: 0}
	p := d.Points(100, 0.01)
	same := unit(1, 0, 0, 0)
	cands := make([]Candidate, MaxLinked+1)
	for i := range cands {
		cands[i] = Candidate{Similarity: p.Single - 0.001*float64(i)/float64(MaxLinked), Template: same}
	}
	_, v := d.Decide(cands, 100, 0.01)
	if v[0].Support != MaxLinked-1 || v[MaxLinked].Support != 0 {
		t.Errorf("support of the most similar %d, of the least similar %d", v[0].Support, v[MaxLinked].Support)
	}
}
