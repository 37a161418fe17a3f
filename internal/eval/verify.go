package eval

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Score is the outcome of comparing the two images of one pair.
type Score struct {
	Fold   int     // fold of the pair (any integers; folds are grouped by value)
	Same   bool    // true for a matched (same person) pair
	Sim    float64 // similarity, higher = more alike; ignored when Failed
	Failed bool    // one image had no face
}

// Verification holds 1:1 verification metrics.
type Verification struct {
	// Accuracy is the mean over folds of the accuracy on each fold, with the
	// threshold for each fold chosen on the OTHER folds to maximise their
	// accuracy (LFW View 2 protocol). With a single fold the threshold is
	// chosen on that fold itself (optimistic).
	Accuracy float64 `json:"accuracy"`
	// AccuracyStd is the population standard deviation (divide by the
	// number of folds, numpy's default, as in the sklearn-based LFW scripts)
	// of the per-fold accuracies.
	AccuracyStd float64 `json:"accuracy_std"`
	// Threshold is the mean of the per-fold thresholds.
	Threshold float64 `json:"threshold"`
	// TARAtFAR is the true-accept rate at the threshold of ThresholdForFAR
	// over all pairs pooled, keyed "1e-2", "1e-3" (and "1e-4" when there are
	// at least 10,000 negative pairs). Failed positive pairs count as
	// rejected.
	TARAtFAR map[string]float64 `json:"tar_at_far"`
	// ThresholdAtFAR is the threshold behind each TARAtFAR entry.
	ThresholdAtFAR map[string]float64 `json:"threshold_at_far"`
	// AUC is the area under the ROC curve (ties count half).
	AUC float64 `json:"auc"`
	// Pairs is the number of scored pairs, failures included.
	Pairs int `json:"pairs"`
	// Failures is the number of pairs with Failed set.
	Failures int `json:"failures"`
	// EER is the equal error rate, where FAR = FRR on the ROC curve
	// (linear interpolation between ROC points).
	EER float64 `json:"eer"`
}

// farLevels are the FAR operating points of Verify, with their keys.
var farLevels = []struct {
	key    string
	far    float64
	minNeg int // minimum number of negatives for the level to be reported
}{
	{"1e-2", 1e-2, 0},
	{"1e-3", 1e-3, 0},
	{"1e-4", 1e-4, 10000},
}

// Verify computes verification metrics from pair scores. Failures are counted
// as errors, never dropped: in accuracy a failed pair is always wrong; in the
// ROC, TAR@FAR, AUC and EER a failed pair is never accepted, as a system that
// finds no face declares no match: a failed positive pair is a false reject
// at every threshold, a failed negative pair a true reject. A pair is
// accepted when Sim >= threshold. Verify needs at least one positive and one
// negative pair, and finite similarities on pairs that did not fail.
func Verify(scores []Score) (Verification, error) {
	var v Verification
	if len(scores) == 0 {
		return v, errors.New("verify: no scores")
	}
	pos, neg := 0, 0
	for i, s := range scores {
		if s.Same {
			pos++
		} else {
			neg++
		}
		if s.Failed {
			v.Failures++
		} else if math.IsNaN(s.Sim) || math.IsInf(s.Sim, 0) {
			return v, fmt.Errorf("verify: score %d: non-finite similarity %v", i, s.Sim)
		}
	}
	if pos == 0 || neg == 0 {
		return v, fmt.Errorf("verify: need both matched and mismatched pairs, got %d and %d", pos, neg)
	}
	v.Pairs = len(scores)

	// Successful scores sorted once by similarity; each fold then scans the
	// list in O(n), so the whole is O(n log n + folds·n).
	ok := make([]Score, 0, len(scores)-v.Failures)
	for _, s := range scores {
		if !s.Failed {
			ok = append(ok, s)
		}
	}
	slices.SortStableFunc(ok, func(a, b Score) int { return cmpFloat(a.Sim, b.Sim) })

	folds := foldIDs(scores)
	accs := make([]float64, len(folds))
	for k, f := range folds {
		exclude, has := f, len(folds) > 1
		t := bestThreshold(ok, exclude, has)
		right, total := 0, 0
		for _, s := range scores {
			if s.Fold != f {
				continue
			}
			total++
			if !s.Failed && (s.Sim >= t) == s.Same {
				right++
			}
		}
		accs[k] = float64(right) / float64(total)
		v.Threshold += t
	}
	v.Threshold /= float64(len(folds))
	v.Accuracy, v.AccuracyStd = meanStd(accs)

	impostors := make([]float64, 0, neg)
	for _, s := range scores {
		if s.Same {
			continue
		}
		if s.Failed {
			impostors = append(impostors, math.Inf(-1))
		} else {
			impostors = append(impostors, s.Sim)
		}
	}
	v.TARAtFAR = make(map[string]float64)
	v.ThresholdAtFAR = make(map[string]float64)
	for _, l := range farLevels {
		if neg < l.minNeg {
			continue
		}
		t, _ := ThresholdForFAR(impostors, l.far)
		acc := 0
		for _, s := range scores {
			if s.Same && !s.Failed && s.Sim >= t {
				acc++
			}
		}
		v.TARAtFAR[l.key] = float64(acc) / float64(pos)
		v.ThresholdAtFAR[l.key] = t
	}

	roc := rocCurve(scores)
	v.AUC = roc.auc()
	v.EER = roc.eer()
	return v, nil
}

// cmpFloat orders float64 values ascending (no NaN expected).
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// foldIDs returns the distinct fold values of scores, ascending.
func foldIDs(scores []Score) []int {
	seen := make(map[int]bool)
	var ids []int
	for _, s := range scores {
		if !seen[s.Fold] {
			seen[s.Fold] = true
			ids = append(ids, s.Fold)
		}
	}
	slices.Sort(ids)
	return ids
}

// meanStd returns the mean and population standard deviation of xs.
func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}

// bestThreshold returns the threshold maximising accuracy (accept when
// Sim >= t) over the successful scores in sorted (ascending by Sim), leaving
// out fold exclude when skip is set. Candidates are the midpoints between
// consecutive distinct similarities plus the two ends (just below the
// smallest, accepting all; just above the largest, rejecting all). Among
// equally good candidates the middle one (lower middle for an even count) is
// taken, so that a plateau gives a central threshold. Failed pairs are wrong
// whatever the threshold and do not take part. With no training score the
// threshold is 0.
func bestThreshold(sorted []Score, exclude int, skip bool) float64 {
	// Accept everything: the positives are right.
	right := 0
	var vals []float64 // distinct training similarities, ascending
	for _, s := range sorted {
		if skip && s.Fold == exclude {
			continue
		}
		if s.Same {
			right++
		}
		if len(vals) == 0 || vals[len(vals)-1] != s.Sim {
			vals = append(vals, s.Sim)
		}
	}
	if len(vals) == 0 {
		return 0
	}
	// Candidate c (0..len(vals)) rejects vals[:c] and accepts vals[c:].
	best, bestIdx := right, []int{0}
	i := 0
	for c := range vals {
		// Move group vals[c] from accepted to rejected; scores of the
		// excluded fold below it are passed over.
		for i < len(sorted) && sorted[i].Sim < vals[c] {
			i++
		}
		for ; i < len(sorted) && sorted[i].Sim == vals[c]; i++ {
			if skip && sorted[i].Fold == exclude {
				continue
			}
			if sorted[i].Same {
				right--
			} else {
				right++
			}
		}
		switch {
		case right > best:
			best, bestIdx = right, append(bestIdx[:0], c+1)
		case right == best:
			bestIdx = append(bestIdx, c+1)
		}
	}
	c := bestIdx[(len(bestIdx)-1)/2]
	switch c {
	case 0:
		return math.Nextafter(vals[0], math.Inf(-1))
	case len(vals):
		return math.Nextafter(vals[len(vals)-1], math.Inf(1))
	}
	return vals[c-1] + (vals[c]-vals[c-1])/2
}

// ThresholdForFAR returns the smallest similarity threshold whose false-accept
// rate over the given impostor similarities is <= far, and the FAR achieved.
// An impostor is accepted when its similarity is >= the threshold, so the
// threshold lies just above (math.Nextafter) the highest impostor similarity
// that must be rejected: at most floor(far·n) impostors are accepted, and
// impostors tied at the threshold are all accepted or all rejected together.
// With no impostors, or far >= 1, every threshold qualifies and the result
// is (-Inf, achieved). far <= 0 gives a threshold just above the largest
// impostor. A +Inf impostor (a failure counted as an accept) cannot be
// rejected: if there are more than floor(far·n) of them the threshold is
// +Inf and achieved exceeds far.
func ThresholdForFAR(impostors []float64, far float64) (threshold, achieved float64) {
	n := len(impostors)
	if n == 0 {
		return math.Inf(-1), 0
	}
	if !(far > 0) { // also NaN
		far = 0
	}
	k := int(math.Floor(far * float64(n) * (1 + 1e-12))) // allowed false accepts
	if k >= n {
		return math.Inf(-1), 1
	}
	s := slices.Clone(impostors)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	// s[k] must be rejected; everything above it may be accepted.
	threshold = math.Nextafter(s[k], math.Inf(1))
	accepted := sort.Search(n, func(i int) bool { return s[i] < threshold })
	return threshold, float64(accepted) / float64(n)
}

// rocPoint is one point of a ROC curve, as counts.
type rocPoint struct{ fa, ta int }

// roc is a ROC curve: points from the strictest threshold to the loosest.
type roc struct {
	pts      []rocPoint
	pos, neg int
}

// rocCurve builds the ROC curve of scores; failed pairs are never accepted.
// Tied similarities form a single step.
func rocCurve(scores []Score) roc {
	var r roc
	ok := make([]Score, 0, len(scores))
	for _, s := range scores {
		if s.Same {
			r.pos++
		} else {
			r.neg++
		}
		if !s.Failed {
			ok = append(ok, s)
		}
	}
	slices.SortFunc(ok, func(a, b Score) int { return cmpFloat(b.Sim, a.Sim) })
	var p rocPoint
	r.pts = append(r.pts, p)
	for i := 0; i < len(ok); {
		for j := i; i < len(ok) && ok[i].Sim == ok[j].Sim; i++ {
			if ok[i].Same {
				p.ta++
			} else {
				p.fa++
			}
		}
		r.pts = append(r.pts, p)
	}
	if p.fa != r.neg {
		// Failed pairs are never accepted: the last step reaches FAR 1 only
		// at an infinitely low threshold, with TAR < 1 if positives failed.
		p.fa = r.neg
		r.pts = append(r.pts, p)
	}
	return r
}

// rate returns a point as (FAR, TAR).
func (r roc) rate(p rocPoint) (far, tar float64) {
	return float64(p.fa) / float64(r.neg), float64(p.ta) / float64(r.pos)
}

// auc returns the trapezoidal area under the curve (ties count half).
func (r roc) auc() float64 {
	a := 0.0
	for i := 1; i < len(r.pts); i++ {
		x0, y0 := r.rate(r.pts[i-1])
		x1, y1 := r.rate(r.pts[i])
		a += (x1 - x0) * (y0 + y1) / 2
	}
	return a
}

// eer returns the equal error rate: where the polyline through the ROC points
// crosses FAR = FRR (FRR = 1 - TAR).
func (r roc) eer() float64 {
	x0, y0 := r.rate(r.pts[0])
	d0 := x0 - (1 - y0)
	if d0 >= 0 {
		return x0
	}
	for _, p := range r.pts[1:] {
		x1, y1 := r.rate(p)
		d1 := x1 - (1 - y1)
		if d1 >= 0 {
			a := d0 / (d0 - d1)
			return x0 + a*(x1-x0)
		}
		x0, d0 = x1, d1
	}
	return x0 // not reached: the last point has FAR = 1 >= FRR
}
