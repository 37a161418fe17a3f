// Package preselect scores stored faces against a rights requester's
// selfies taken together, and decides which a request pre-selects at a
// strict operating point: the decision rules of internal/rights, apart
// from the store, so that evaluations measure exactly them.
package preselect

import (
	"math"

	"gabarit/internal/openset"
)

// Bands of a candidate: strong is pre-selected (at the strict operating
// point); probable would be a match of a search at ten times the strict
// FPIR (the searches' default); weak is only a candidate.
const (
	BandStrong   = "strong"
	BandProbable = "probable"
	BandWeak     = "weak"
)

// Points are the similarities a candidate set is decided at, for a gallery.
type Points struct {
	Floor    float64 // least similarity to any one selfie of a candidate
	Strict   float64 // least score pre-selected on its own
	Group    float64 // least score, and second-best among look-alikes, pre-selected by look-alikes
	Probable float64 // least score of the probable band on its own
}

// Scorer scores stored faces against a person's selfies together.
type Scorer struct {
	Selfies [][]float32 // the selfies' templates
	Mean    []float32   // their mean, L2-normalised
}

// NewScorer returns the scorer of selfies, or nil when there are none.
func NewScorer(selfies [][]float32) *Scorer {
	m := MeanTemplate(selfies)
	if m == nil {
		return nil
	}
	return &Scorer{Selfies: selfies, Mean: m}
}

// Score returns a stored face's score (its similarity to the mean of the
// selfies: a stranger who resembles one selfie by chance resembles the
// others less, the person resembles all of them), its similarity to each
// selfie, and the best of those.
func (s *Scorer) Score(t []float32) (score float64, sims []float64, best float64) {
	sims = make([]float64, len(s.Selfies))
	best = math.Inf(-1)
	for i, q := range s.Selfies {
		sims[i] = dot(q, t)
		best = math.Max(best, sims[i])
	}
	return dot(s.Mean, t), sims, best
}

// PointsFor returns the points for a gallery of n faces at target FPIR
// fpir of the pre-selection: the floor is that of a search (pairwise FAR
// FloorFAR, raised so that about openset.MaxStrangerCandidates strangers'
// faces are candidates); the strict point is the decider's single-face
// operating point at fpir (half of it goes to the single-face path, half to
// look-alike evidence; see Preselect).
func PointsFor(d *openset.Decider, n int, fpir float64) Points {
	p := d.Points(n, fpir)
	return Points{Floor: p.Floor, Strict: p.Single, Group: p.Group, Probable: d.Points(n, math.Min(10*fpir, 0.5)).Single}
}

// Band returns the band of a score at p, by the score alone.
func (p Points) Band(score float64) string {
	switch {
	case score >= p.Strict:
		return BandStrong
	case score >= p.Probable:
		return BandProbable
	}
	return BandWeak
}

// Decision is the pre-selection's verdict on one candidate.
type Decision struct {
	Preselected bool
	Band        string
	Strangers   float64 // strangers' faces (or groups) expected at its evidence
	Support     int     // its look-alikes among the candidates
}

// Preselect decides the candidates of a gallery of n faces at target FPIR
// fpir with person-level evidence, as a search does (openset.Decider): a
// candidate is pre-selected when its score (against the selfies together)
// reaches the strict point on its own, or when the second-best score among
// it and its look-alikes reaches the group point. Strong candidates are
// pre-selected; probable ones would be at ten times the FPIR (a search's
// default); the others are weak.
func Preselect(d *openset.Decider, cands []openset.Candidate, n int, fpir float64) (Points, []Decision) {
	p := PointsFor(d, n, fpir)
	at := func(fpir float64) []bool {
		g := d.Points(n, fpir).Group
		_, vs := d.Decide(cands, n, fpir)
		out := make([]bool, len(vs))
		for i, v := range vs {
			// A search's group evidence says the group is the person; a
			// stranger who resembles one of the person's faces belongs to
			// it too. A request acts on each face: by the group, a face is
			// pre-selected only when its own score reaches the group point
			// as well.
			out[i] = v.Match && (!v.ByGroup || cands[i].Similarity >= g)
		}
		return out
	}
	strict, loose := at(fpir), at(math.Min(10*fpir, 0.5))
	_, vs := d.Decide(cands, n, fpir)
	out := make([]Decision, len(cands))
	for i, v := range vs {
		out[i] = Decision{Preselected: strict[i], Band: BandWeak, Strangers: v.Strangers, Support: v.Support}
		switch {
		case strict[i]:
			out[i].Band = BandStrong
		case loose[i]:
			out[i].Band = BandProbable
		}
	}
	return p, out
}

// MeanTemplate returns the L2-normalised mean of ts, or nil when there is
// none (or they cancel out).
func MeanTemplate(ts [][]float32) []float32 {
	if len(ts) == 0 {
		return nil
	}
	m := make([]float64, len(ts[0]))
	for _, t := range ts {
		if len(t) != len(m) {
			return nil
		}
		for i, v := range t {
			m[i] += float64(v)
		}
	}
	var norm float64
	for _, v := range m {
		norm += v * v
	}
	if norm == 0 {
		return nil
	}
	norm = math.Sqrt(norm)
	out := make([]float32, len(m))
	for i, v := range m {
		out[i] = float32(v / norm)
	}
	return out
}

// dot is the dot product of two templates (0 when their lengths differ).
func dot(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
