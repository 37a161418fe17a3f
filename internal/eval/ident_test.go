package eval

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func smp(id string, v ...float32) Sample { return Sample{Identity: id, Emb: v} }

func failedSample(id string) Sample { return Sample{Identity: id, Failed: true} }

// deg is a 2-D unit vector at the given angle in degrees.
func deg(id string, a float64) Sample {
	r := a * math.Pi / 180
	return smp(id, float32(math.Cos(r)), float32(math.Sin(r)))
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	// Orthogonal gallery for the open-set case: the dot products with the
	// probes are their coordinates.
	abc := []Sample{smp("A", 1, 0, 0), smp("B", 0, 1, 0), smp("C", 0, 0, 1)}
	tests := []struct {
		name                     string
		gallery, probes, distrac []Sample
		want                     Identification
	}{
		{
			// The C probe at 8° is closer to B (10°) and A (0°) than to
			// C (20°): rank 3, a rank-5 hit only. Open set: the non-mated
			// best scores are cos 2° and cos 9°; the A probe's mate
			// (cos 1°) clears the threshold just above cos 2°.
			name:    "rank 1 versus rank 5",
			gallery: []Sample{deg("A", 0), deg("B", 10), deg("C", 20), deg("D", 90), deg("E", 180)},
			probes:  []Sample{deg("C", 8), deg("A", 1)},
			want: Identification{Gallery: 5, Probes: 2, Rank1: 0.5, Rank5: 1,
				TPIRAtFPIR: map[string]float64{"1e-2": 0.5, "1e-1": 0.5}},
		},
		{
			name:    "distractor outranks the mate",
			gallery: []Sample{deg("A", 0), deg("B", 90)},
			probes:  []Sample{deg("A", 3)},
			distrac: []Sample{deg("x", 2)},
			want: Identification{Gallery: 2, Distractors: 1, Probes: 1, Rank1: 0, Rank5: 1,
				TPIRAtFPIR: map[string]float64{"1e-2": 0, "1e-1": 0}},
		},
		{
			// Distractors never count as a mate, whatever their label.
			name:    "distractor with a gallery identity",
			gallery: []Sample{deg("A", 0), deg("B", 90)},
			probes:  []Sample{deg("A", 3)},
			distrac: []Sample{deg("A", 3)},
			want: Identification{Gallery: 2, Distractors: 1, Probes: 1, Rank1: 0, Rank5: 1,
				TPIRAtFPIR: map[string]float64{"1e-2": 0, "1e-1": 0}},
		},
		{
			// A gallery entry scoring exactly as high as the mate ranks
			// before it.
			name:    "ties rank conservatively",
			gallery: []Sample{smp("A", 1, 0), smp("B", 1, 0)},
			probes:  []Sample{smp("A", 1, 0)},
			want: Identification{Gallery: 2, Probes: 1, Rank1: 0, Rank5: 1,
				TPIRAtFPIR: map[string]float64{"1e-2": 0, "1e-1": 0}},
		},
		{
			// One probe has no face: a miss at every rank and in TPIR; it
			// runs no non-mated search, so the threshold is just above
			// the good probe's non-mated score (cos 89°).
			name:    "failed probe",
			gallery: []Sample{deg("A", 0), deg("B", 90)},
			probes:  []Sample{deg("A", 1), failedSample("A")},
			want: Identification{Gallery: 2, Probes: 2, Rank1: 0.5, Rank5: 0.5, Failures: 1,
				TPIRAtFPIR: map[string]float64{"1e-2": 0.5, "1e-1": 0.5}},
		},
		{
			// A's gallery photo has no face: A's probes can only miss;
			// failed images count once each. A's probes still run their
			// non-mated search (best: B, cos 90° and cos 88°), which the
			// B probe's mate (cos 10°) clears.
			name:    "failed gallery entry and distractor",
			gallery: []Sample{failedSample("A"), deg("B", 90)},
			probes:  []Sample{deg("A", 0), deg("A", 2), deg("B", 80)},
			distrac: []Sample{failedSample("")},
			want: Identification{Gallery: 2, Distractors: 1, Probes: 3, Rank1: 1.0 / 3, Rank5: 1.0 / 3, Failures: 2,
				TPIRAtFPIR: map[string]float64{"1e-2": 1.0 / 3, "1e-1": 1.0 / 3}},
		},
		{
			// Ten probes; (mate score, best non-mated score, rank):
			// (.9,.1,1) (.8,.5,1) (.7,.2,1) (.65,.6,1) (.95,.3,1)
			// (.5,.4,1) (.3,.75,2) (.45,.05,1) (.55,.15,1) (.85,.25,1).
			// FPIR 1e-2 of 10 searches allows none: t just above .75,
			// 4 rank-1 mates above it. FPIR 1e-1 allows one: t just
			// above .6, 6 mates above it.
			name:    "tpir at fpir",
			gallery: abc,
			probes: []Sample{
				smp("A", 0.9, 0.1, 0), smp("A", 0.8, 0.5, 0), smp("B", 0.2, 0.7, 0),
				smp("B", 0.6, 0.65, 0), smp("C", 0, 0.3, 0.95), smp("C", 0.4, 0, 0.5),
				smp("A", 0.3, 0.75, 0), smp("B", 0, 0.45, 0.05), smp("C", 0.15, 0, 0.55),
				smp("A", 0.85, 0, 0.25),
			},
			want: Identification{Gallery: 3, Probes: 10, Rank1: 0.9, Rank5: 1,
				TPIRAtFPIR: map[string]float64{"1e-2": 0.4, "1e-1": 0.6}},
		},
		{
			// A one-entry gallery: the non-mated search is empty and can
			// raise no alarm, so every rank-1 mate counts.
			name:    "single gallery entry",
			gallery: []Sample{deg("A", 0)},
			probes:  []Sample{deg("A", 10), deg("A", 20)},
			want: Identification{Gallery: 1, Probes: 2, Rank1: 1, Rank5: 1,
				TPIRAtFPIR: map[string]float64{"1e-2": 1, "1e-1": 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Identify(tc.gallery, tc.probes, tc.distrac)
			if err != nil {
				t.Fatalf("Identify: %v", err)
			}
			checkIdentification(t, got, tc.want)
		})
	}
}

func checkIdentification(t *testing.T, got, want Identification) {
	t.Helper()
	if got.Gallery != want.Gallery || got.Distractors != want.Distractors || got.Probes != want.Probes || got.Failures != want.Failures {
		t.Errorf("counts = %d/%d/%d/%d, want %d/%d/%d/%d (gallery/distractors/probes/failures)",
			got.Gallery, got.Distractors, got.Probes, got.Failures, want.Gallery, want.Distractors, want.Probes, want.Failures)
	}
	if !near(got.Rank1, want.Rank1) || !near(got.Rank5, want.Rank5) {
		t.Errorf("rank1, rank5 = %v, %v, want %v, %v", got.Rank1, got.Rank5, want.Rank1, want.Rank5)
	}
	if len(got.TPIRAtFPIR) != len(want.TPIRAtFPIR) {
		t.Errorf("TPIRAtFPIR = %v, want %v", got.TPIRAtFPIR, want.TPIRAtFPIR)
	}
	for k, w := range want.TPIRAtFPIR {
		if g, ok := got.TPIRAtFPIR[k]; !ok || !near(g, w) {
			t.Errorf("TPIRAtFPIR[%s] = %v, want %v", k, g, w)
		}
	}
}

func TestIdentifyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		gallery, probes []Sample
		want            string
	}{
		{name: "empty gallery", probes: []Sample{smp("A", 1)}, want: "empty gallery"},
		{name: "no probes", gallery: []Sample{smp("A", 1)}, want: "no probes"},
		{name: "duplicate identity", gallery: []Sample{smp("A", 1), smp("A", 0)}, probes: []Sample{smp("A", 1)}, want: "appears twice"},
		{name: "probe without mate", gallery: []Sample{smp("A", 1)}, probes: []Sample{smp("B", 1)}, want: "no gallery entry"},
		{name: "size mismatch", gallery: []Sample{smp("A", 1, 0)}, probes: []Sample{smp("A", 1)}, want: "embedding size 1, want 2"},
		{name: "empty embedding", gallery: []Sample{smp("A")}, probes: []Sample{smp("A", 1)}, want: "empty embedding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Identify(tc.gallery, tc.probes, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Identify error = %v, want %q", err, tc.want)
			}
		})
	}
}

// randomSet builds a gallery of n identities, m probes and d distractors of
// unit vectors in dim dimensions, probes near their mates.
func randomSet(seed uint64, n, m, d, dim int, noise float64) (gallery, probes, distractors []Sample) {
	rng := rand.New(rand.NewPCG(seed, 1))
	unit := func(base []float32) []float32 {
		v := make([]float32, dim)
		var s float64
		for i := range v {
			x := rng.NormFloat64() * noise
			if base != nil {
				x += float64(base[i])
			}
			v[i] = float32(x)
			s += x * x
		}
		for i := range v {
			v[i] /= float32(math.Sqrt(s))
		}
		return v
	}
	for i := range n {
		gallery = append(gallery, Sample{Identity: strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('0'+i/26%10)) + string(rune('0'+i/260)), Emb: unit(nil)})
	}
	for i := range m {
		g := gallery[rng.IntN(n)]
		probes = append(probes, Sample{Identity: g.Identity, Emb: unit(g.Emb), Failed: i%17 == 0})
	}
	for range d {
		distractors = append(distractors, Sample{Identity: "?", Emb: unit(nil)})
	}
	return gallery, probes, distractors
}

func TestIdentifyMatchesSequential(t *testing.T) {
	t.Parallel()
	gallery, probes, distractors := randomSet(3, 300, 500, 200, 16, 0.25)
	got, err := Identify(gallery, probes, distractors)
	if err != nil {
		t.Fatal(err)
	}
	// Plain sequential reference.
	all := append(append([]Sample{}, gallery...), distractors...)
	var r1, r5 int
	var nonMated, mates []float64
	var rank1 []bool
	for _, p := range probes {
		if p.Failed {
			continue
		}
		var mate float32
		for i, g := range gallery {
			if g.Identity == p.Identity {
				mate = dot(all[i].Emb, p.Emb)
			}
		}
		rank, best := 1, math.Inf(-1)
		for i, g := range all {
			if i < len(gallery) && g.Identity == p.Identity {
				continue
			}
			s := dot(g.Emb, p.Emb)
			if s >= mate {
				rank++
			}
			best = math.Max(best, float64(s))
		}
		if rank == 1 {
			r1++
		}
		if rank <= 5 {
			r5++
		}
		nonMated = append(nonMated, best)
		mates = append(mates, float64(mate))
		rank1 = append(rank1, rank == 1)
	}
	want := Identification{Gallery: 300, Distractors: 200, Probes: 500,
		Rank1: float64(r1) / 500, Rank5: float64(r5) / 500, Failures: 30, TPIRAtFPIR: map[string]float64{}}
	for _, l := range fpirLevels {
		th, _ := ThresholdForFAR(nonMated, l.fpir)
		hit := 0
		for i, m := range mates {
			if rank1[i] && m >= th {
				hit++
			}
		}
		want.TPIRAtFPIR[l.key] = float64(hit) / 500
	}
	checkIdentification(t, got, want)
	if got.Rank1 == 0 || got.Rank1 == 1-30.0/500 {
		t.Logf("rank-1 %v: test data too easy or too hard", got.Rank1)
	}
}

func TestDot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b []float32
		want float32
	}{
		{name: "empty", want: 0},
		{name: "short", a: []float32{1, 2, 3}, b: []float32{4, 5, 6}, want: 32},
		{name: "unrolled with tail", a: []float32{1, 1, 1, 1, 1, 2}, b: []float32{1, 2, 3, 4, 5, 6}, want: 27},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := dot(tc.a, tc.b); got != tc.want {
				t.Errorf("dot = %v, want %v", got, tc.want)
			}
		})
	}
}

func BenchmarkIdentify(b *testing.B) {
	gallery, probes, distractors := randomSet(1, 2000, 600, 1000, 512, 0.5)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Identify(gallery, probes, distractors); err != nil {
			b.Fatal(err)
		}
	}
}
