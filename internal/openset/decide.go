package openset

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Decider makes the open-set decision of a search from the similarities of
// its candidates, with person-level evidence: a stranger resembles one
// photo of another person by chance; a person resembles several of their
// own.
//
// Candidates are the stored faces whose similarity to the probe reaches the
// floor (the single-face tail's score at FloorFAR). Faces of quality under
// MinQuality (small, blurred, turned away: their similarities are noisy)
// take no part in look-alike evidence: they match on their own similarity
// only. Two candidates whose own similarity reaches Link are
// look-alikes, most often the same person. A candidate is a match when its
// own similarity reaches the single-face operating point, or when, among
// itself and its look-alikes, the second-best similarity to the probe
// reaches the group operating point. Look-alikes are taken one step from
// the candidate, never through chains of look-alikes of look-alikes, which
// would join different people. Each path gets half of the target FPIR:
// the single-face path against the n stored faces, the group path against
// the n/2 groups of two or more faces that n faces can form at most.
type Decider struct {
	Single     *Calibration // tail of one stored face's similarity to a stranger's probe
	Group      *Calibration // tail of the second-best similarity of one other person's faces
	Link       float64      // least similarity of two stored faces taken as look-alikes
	FloorFAR   float64      // pairwise FAR of the least similarity of a candidate (see MaxStrangerCandidates)
	MinQuality float64      // stored faces of lower quality match on their own similarity only
}

// Candidate is one stored face compared with the probe.
type Candidate struct {
	Similarity float64   // to the probe
	Quality    float64   // of the stored face, in [0, 1]
	Template   []float32 // L2-normalised, to find look-alikes
}

// Points are the operating points of a decision for one gallery.
type Points struct {
	Floor  float64 // least similarity of a candidate
	Single float64 // least similarity of a match on its own
	Group  float64 // least second-best similarity of a candidate and its look-alikes
}

// Verdict is the decision about one candidate.
type Verdict struct {
	Match bool
	// Strangers is the number of faces (or, for a match by its
	// look-alikes, groups) of other people expected to reach this
	// candidate's evidence in a gallery of this size: the stronger of its
	// two paths.
	Strangers float64
	Support   int // the candidate's look-alikes among the candidates
	// ByGroup marks a match whose own similarity is under the single-face
	// operating point: its look-alikes carried it.
	ByGroup bool
}

// Check reports a Decider that cannot decide.
func (d *Decider) Check() error {
	switch {
	case d == nil || d.Single == nil || d.Group == nil:
		return errors.New("openset: a decider needs a single-face and a group tail")
	case !(d.Link > 0 && d.Link < 1):
		return fmt.Errorf("openset: link %v outside (0, 1)", d.Link)
	case !(d.FloorFAR > 0 && d.FloorFAR < 1):
		return fmt.Errorf("openset: floor FAR %v outside (0, 1)", d.FloorFAR)
	case !(d.MinQuality >= 0 && d.MinQuality < 1):
		return fmt.Errorf("openset: minimum quality %v outside [0, 1)", d.MinQuality)
	}
	return nil
}

// MaxLinked is the most candidates that take part in look-alike evidence,
// the most similar: finding look-alikes compares every pair. Candidates
// beyond it are decided on their own similarity.
const MaxLinked = 2000

// MaxStrangerCandidates bounds the candidates a search expects from other
// people: in a gallery so large that FloorFAR would let in more, the floor
// rises. Candidates are re-scored, checked and compared pairwise, so their
// number sets a search's cost; look-alikes under the raised floor could not
// reach the group operating point of such a gallery anyway.
const MaxStrangerCandidates = 200

// Points returns the operating points for a gallery of n faces at target
// FPIR fpir.
func (d *Decider) Points(n int, fpir float64) Points {
	floorFAR := d.FloorFAR
	if n > 0 {
		floorFAR = math.Min(floorFAR, MaxStrangerCandidates/float64(n))
	}
	return Points{
		Floor:  d.Single.Score(floorFAR),
		Single: d.Single.OperatingPoint(n, fpir/2),
		Group:  d.Group.OperatingPoint(max(n/2, 1), fpir/2),
	}
}

// Decide returns the verdict on each candidate, for a gallery of n faces at
// target FPIR fpir. Candidates under the floor or MinQuality are nobody's
// look-alikes, and match only at the single-face operating point.
func (d *Decider) Decide(cands []Candidate, n int, fpir float64) (Points, []Verdict) {
	p := d.Points(n, fpir)
	out := make([]Verdict, len(cands))
	var in []int // candidates that take part
	for i, c := range cands {
		out[i].Strangers = d.Single.FAR(c.Similarity) * float64(max(n, 0))
		out[i].Match = c.Similarity >= p.Single
		if c.Similarity >= p.Floor && c.Quality >= d.MinQuality {
			in = append(in, i)
		}
	}
	if len(in) > MaxLinked {
		// Finding look-alikes compares every pair: the most similar
		// MaxLinked take part, the others are decided alone.
		slices.SortStableFunc(in, func(a, b int) int { return cmp.Compare(cands[b].Similarity, cands[a].Similarity) })
		in = in[:MaxLinked]
	}
	// best[a] and second[a]: the two best similarities among candidate
	// in[a] and its look-alikes.
	best := make([]float64, len(in))
	second := make([]float64, len(in))
	for a, i := range in {
		best[a], second[a] = cands[i].Similarity, math.Inf(-1)
	}
	push := func(a int, s float64) {
		switch {
		case s > best[a]:
			best[a], second[a] = s, best[a]
		case s > second[a]:
			second[a] = s
		}
	}
	for a := range in {
		for b := a + 1; b < len(in); b++ {
			if dot(cands[in[a]].Template, cands[in[b]].Template) >= d.Link {
				push(a, cands[in[b]].Similarity)
				push(b, cands[in[a]].Similarity)
				out[in[a]].Support++
				out[in[b]].Support++
			}
		}
	}
	nGroups := float64(max(n/2, 1))
	for a, i := range in {
		v := &out[i]
		single := cands[i].Similarity >= p.Single
		byGroup := second[a] >= p.Group
		if byGroup {
			v.Strangers = math.Min(v.Strangers, d.Group.FAR(second[a])*nGroups)
		}
		v.Match = single || byGroup
		v.ByGroup = byGroup && !single
	}
	return p, out
}

// dot is the dot product of two vectors of the same length (0 otherwise).
func dot(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return float64(s)
}
