package eval

import (
	"math"
	"slices"
	"strings"
	"testing"
)

const eps = 1e-9

func near(a, b float64) bool { return math.Abs(a-b) <= eps }

// sc builds a score; fold f, same, sim.
func sc(f int, same bool, sim float64) Score { return Score{Fold: f, Same: same, Sim: sim} }

// failed builds a failed score.
func failed(f int, same bool) Score { return Score{Fold: f, Same: same, Sim: 0.99, Failed: true} }

// separable is two folds of perfectly separable scores.
var separable = []Score{
	sc(0, true, 0.9), sc(0, true, 0.8), sc(0, false, 0.1), sc(0, false, 0.2),
	sc(1, true, 0.7), sc(1, true, 0.85), sc(1, false, 0.3), sc(1, false, 0.15),
}

func TestVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scores []Score
		want   Verification
	}{
		{
			name:   "perfectly separable",
			scores: separable,
			want: Verification{
				Accuracy: 1, AccuracyStd: 0, Threshold: 0.5,
				TARAtFAR:       map[string]float64{"1e-2": 1, "1e-3": 1},
				ThresholdAtFAR: map[string]float64{"1e-2": math.Nextafter(0.3, 1), "1e-3": math.Nextafter(0.3, 1)},
				AUC:            1, Pairs: 8, Failures: 0, EER: 0,
			},
		},
		{
			// Each fold is separable on its own, but at a different level:
			// fold 0 at 0.5, fold 1 at 0.8. Trained on the other fold, the
			// threshold is wrong for each test fold (accuracy 1/2); a
			// threshold that looked at the test fold would give 1.
			name: "threshold chosen on the other folds",
			scores: []Score{
				sc(0, true, 0.6), sc(0, false, 0.4),
				sc(1, true, 0.9), sc(1, false, 0.7),
			},
			want: Verification{
				Accuracy: 0.5, AccuracyStd: 0, Threshold: (0.8 + 0.5) / 2,
				TARAtFAR:       map[string]float64{"1e-2": 0.5, "1e-3": 0.5},
				ThresholdAtFAR: map[string]float64{"1e-2": math.Nextafter(0.7, 1), "1e-3": math.Nextafter(0.7, 1)},
				// Positive beats negative in 3 of 4 combinations.
				AUC: 0.75, Pairs: 4, EER: 0.5,
			},
		},
		{
			// Fold 0 gets a failed positive and a failed negative: 4 of 6
			// right. TAR@FAR: the failed negative is a false accept at any
			// threshold, above the 0 allowed out of 5 negatives, so TAR is
			// 0 and the threshold rejects everything. ROC starts at
			// FAR 1/5 and ends at TAR 4/5: AUC = 0.8·0.8.
			name:   "failures lower every metric",
			scores: append([]Score{failed(0, true), failed(0, false)}, separable...),
			want: Verification{
				Accuracy: (4.0/6 + 1) / 2, AccuracyStd: (1 - 4.0/6) / 2, Threshold: 0.5,
				// The failed positive is never accepted (TAR 4/5); the
				// failed negative is never accepted either.
				TARAtFAR:       map[string]float64{"1e-2": 0.8, "1e-3": 0.8},
				ThresholdAtFAR: map[string]float64{"1e-2": math.Nextafter(0.3, 1), "1e-3": math.Nextafter(0.3, 1)},
				AUC:            0.8, Pairs: 10, Failures: 2, EER: 0.2,
			},
		},
		{
			// Fold 0: P .6 .3, N .5 .2 ; fold 1: P .8, N .7 .1.
			// Fold 0 trained on fold 1 (.1N .7N .8P): best 0.75, test:
			// .6P wrong, .3P wrong, .5N right, .2N right → 1/2.
			// Fold 1 trained on fold 0 (.2N .3P .5N .6P): candidates
			// all:2/4, .25:3/4, .4:2/4, .55:3/4, above:2/4 → middle of
			// {.25,.55} lower → .25; test: .8P .7N(wrong) .1N → 2/3.
			name: "known overlap",
			scores: []Score{
				sc(0, true, 0.6), sc(0, true, 0.3), sc(0, false, 0.5), sc(0, false, 0.2),
				sc(1, true, 0.8), sc(1, false, 0.7), sc(1, false, 0.1),
			},
			want: Verification{
				Accuracy: (0.5 + 2.0/3) / 2, AccuracyStd: (2.0/3 - 0.5) / 2, Threshold: (0.75 + 0.25) / 2,
				TARAtFAR:       map[string]float64{"1e-2": 1.0 / 3, "1e-3": 1.0 / 3},
				ThresholdAtFAR: map[string]float64{"1e-2": math.Nextafter(0.7, 1), "1e-3": math.Nextafter(0.7, 1)},
				// Positives .8 .6 .3 vs negatives .7 .5 .2 .1: 4+3+2 = 9 of 12 wins.
				AUC: 0.75, Pairs: 7,
				// ROC: (0,1/3) (1/4,1/3) (1/4,2/3) (1/2,2/3) ...: the
				// segment at FRR 1/3 crosses FAR = FRR at 1/3.
				EER: 1.0 / 3,
			},
		},
		{
			// With one fold there are no other folds: the threshold is
			// chosen on the fold itself. Accept-all and 0.5 both give
			// 2/3; the lower of the two is taken.
			name:   "single fold",
			scores: []Score{sc(3, true, 0.6), sc(3, false, 0.4), sc(3, true, 0.35)},
			want: Verification{
				Accuracy: 2.0 / 3, Threshold: math.Nextafter(0.35, 0),
				TARAtFAR:       map[string]float64{"1e-2": 0.5, "1e-3": 0.5},
				ThresholdAtFAR: map[string]float64{"1e-2": math.Nextafter(0.4, 1), "1e-3": math.Nextafter(0.4, 1)},
				AUC:            0.5, Pairs: 3, EER: 0.5,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Verify(tc.scores)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			checkVerification(t, got, tc.want)
		})
	}
}

func checkVerification(t *testing.T, got, want Verification) {
	t.Helper()
	fields := []struct {
		name      string
		got, want float64
	}{
		{"Accuracy", got.Accuracy, want.Accuracy},
		{"AccuracyStd", got.AccuracyStd, want.AccuracyStd},
		{"Threshold", got.Threshold, want.Threshold},
		{"AUC", got.AUC, want.AUC},
		{"EER", got.EER, want.EER},
		{"Pairs", float64(got.Pairs), float64(want.Pairs)},
		{"Failures", float64(got.Failures), float64(want.Failures)},
	}
	for _, f := range fields {
		if !near(f.got, f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	for _, m := range []struct {
		name      string
		got, want map[string]float64
	}{{"TARAtFAR", got.TARAtFAR, want.TARAtFAR}, {"ThresholdAtFAR", got.ThresholdAtFAR, want.ThresholdAtFAR}} {
		if len(m.got) != len(m.want) {
			t.Errorf("%s = %v, want %v", m.name, m.got, m.want)
		}
		for k, w := range m.want {
			if g, ok := m.got[k]; !ok || !near(g, w) {
				t.Errorf("%s[%s] = %v, want %v", m.name, k, g, w)
			}
		}
	}
}

// tieScores has 100 negatives (top ones given) and the given positives.
func tieScores(top []float64, positives ...float64) []Score {
	var s []Score
	for _, v := range top {
		s = append(s, sc(0, false, v))
	}
	for len(s) < 100 {
		s = append(s, sc(0, false, 0.1))
	}
	for _, v := range positives {
		s = append(s, sc(0, true, v))
	}
	return s
}

func TestVerifyTARTies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		scores  []Score
		wantTAR map[string]float64
		wantThr map[string]float64
	}{
		{
			// FAR 1e-2 of 100 allows one false accept: the 0.8 impostor.
			// A positive tied with it at 0.8 is accepted; one tied with
			// the rejected impostors at 0.1 is not.
			name:    "positive tied with the last accepted impostor",
			scores:  tieScores([]float64{0.8}, 0.8, 0.1, 0.9),
			wantTAR: map[string]float64{"1e-2": 2.0 / 3, "1e-3": 1.0 / 3},
			wantThr: map[string]float64{"1e-2": math.Nextafter(0.1, 1), "1e-3": math.Nextafter(0.8, 1)},
		},
		{
			// Two impostors tied at 0.8 cannot be split: accepting one
			// accepts both (FAR 2e-2), so both are rejected.
			name:    "tied impostors are rejected together",
			scores:  tieScores([]float64{0.8, 0.8}, 0.8, 0.9),
			wantTAR: map[string]float64{"1e-2": 0.5, "1e-3": 0.5},
			wantThr: map[string]float64{"1e-2": math.Nextafter(0.8, 1), "1e-3": math.Nextafter(0.8, 1)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, err := Verify(tc.scores)
			if err != nil {
				t.Fatal(err)
			}
			for k, w := range tc.wantTAR {
				if !near(v.TARAtFAR[k], w) {
					t.Errorf("TARAtFAR[%s] = %v, want %v", k, v.TARAtFAR[k], w)
				}
			}
			for k, w := range tc.wantThr {
				if v.ThresholdAtFAR[k] != w {
					t.Errorf("ThresholdAtFAR[%s] = %v, want %v", k, v.ThresholdAtFAR[k], w)
				}
			}
		})
	}
}

func TestVerifyFARKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		negs     int
		wantKeys int
	}{
		{name: "below 10000 negatives", negs: 9999, wantKeys: 2},
		{name: "10000 negatives", negs: 10000, wantKeys: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := []Score{sc(0, true, 0.9), sc(1, true, 0.8)}
			for i := range tc.negs {
				s = append(s, sc(i%2, false, float64(i)/float64(tc.negs)*0.5))
			}
			v, err := Verify(s)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.TARAtFAR) != tc.wantKeys || len(v.ThresholdAtFAR) != tc.wantKeys {
				t.Errorf("keys: %v %v, want %d", v.TARAtFAR, v.ThresholdAtFAR, tc.wantKeys)
			}
			if tc.wantKeys == 3 && v.TARAtFAR["1e-4"] != 1 {
				t.Errorf("TAR@1e-4 = %v, want 1", v.TARAtFAR["1e-4"])
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scores []Score
		want   string
	}{
		{name: "no scores", scores: nil, want: "no scores"},
		{name: "only positives", scores: []Score{sc(0, true, 0.5)}, want: "both"},
		{name: "NaN similarity", scores: []Score{sc(0, true, math.NaN()), sc(0, false, 0)}, want: "non-finite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Verify(tc.scores)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestThresholdForFAR(t *testing.T) {
	t.Parallel()
	inf := math.Inf(1)
	tests := []struct {
		name         string
		impostors    []float64
		far          float64
		wantT, wantA float64
	}{
		{name: "empty", impostors: nil, far: 1e-3, wantT: math.Inf(-1), wantA: 0},
		{name: "all equal", impostors: []float64{0.5, 0.5, 0.5}, far: 0.5, wantT: math.Nextafter(0.5, 1), wantA: 0},
		{name: "all equal, all allowed", impostors: []float64{0.5, 0.5, 0.5}, far: 1, wantT: math.Inf(-1), wantA: 1},
		{name: "far zero", impostors: []float64{0.1, 0.3, 0.2}, far: 0, wantT: math.Nextafter(0.3, 1), wantA: 0},
		{name: "negative far is zero", impostors: []float64{0.1, 0.3, 0.2}, far: -1, wantT: math.Nextafter(0.3, 1), wantA: 0},
		{name: "one of three", impostors: []float64{0.1, 0.3, 0.2}, far: 0.34, wantT: math.Nextafter(0.2, 1), wantA: 1.0 / 3},
		{name: "exact fraction", impostors: []float64{0.4, 0.3, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.4, -0.5}, far: 0.3, wantT: math.Nextafter(0.1, 1), wantA: 0.3},
		{name: "ties above the cut", impostors: []float64{0.9, 0.9, 0.2, 0.1}, far: 0.5, wantT: math.Nextafter(0.2, 1), wantA: 0.5},
		{name: "tie across the cut", impostors: []float64{0.9, 0.5, 0.5, 0.1}, far: 0.5, wantT: math.Nextafter(0.5, 1), wantA: 0.25},
		{name: "unrejectable failures", impostors: []float64{inf, inf, 0.1}, far: 0.4, wantT: inf, wantA: 2.0 / 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gotT, gotA := ThresholdForFAR(tc.impostors, tc.far)
			if gotT != tc.wantT || !near(gotA, tc.wantA) {
				t.Errorf("ThresholdForFAR = (%v, %v), want (%v, %v)", gotT, gotA, tc.wantT, tc.wantA)
			}
			// Smallest: the next lower threshold accepts too many.
			if len(tc.impostors) > 0 && !math.IsInf(gotT, 0) && tc.far < 1 {
				lower := math.Nextafter(gotT, math.Inf(-1))
				n := 0
				for _, v := range tc.impostors {
					if v >= lower {
						n++
					}
				}
				if float64(n)/float64(len(tc.impostors)) <= math.Max(tc.far, 0) {
					t.Errorf("threshold %v is not the smallest: %v also meets FAR %v", gotT, lower, tc.far)
				}
			}
		})
	}
}

func TestBestThresholdIsLinear(t *testing.T) {
	t.Parallel()
	// Ten folds of 2,000 scores: the per-fold O(n) scan must agree with a
	// brute-force search.
	var s []Score
	x := uint64(1)
	for i := range 20000 {
		x = x*6364136223846793005 + 1442695040888963407
		u := float64(x>>11) / (1 << 53)
		same := x>>10&1 == 1
		sim := u * 0.7
		if same {
			sim += 0.3
		}
		s = append(s, sc(i%10, same, math.Round(sim*1000)/1000))
	}
	v, err := Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if v.Accuracy < 0.7 || v.Accuracy > 0.8 {
		t.Errorf("accuracy %v out of the expected range", v.Accuracy)
	}
	// Brute force on fold 0's training set.
	sorted := slices.Clone(s)
	slices.SortFunc(sorted, func(a, b Score) int { return cmpFloat(a.Sim, b.Sim) })
	got := bestThreshold(sorted, 0, true)
	acc := func(t float64) int {
		n := 0
		for _, x := range s {
			if x.Fold != 0 && (x.Sim >= t) == x.Same {
				n++
			}
		}
		return n
	}
	best := 0
	for k := -1; k <= 1001; k++ { // similarities are multiples of 0.001
		best = max(best, acc((float64(k)+0.5)/1000))
	}
	if acc(got) != best {
		t.Errorf("bestThreshold %v gives %d right, brute force %d", got, acc(got), best)
	}
}
