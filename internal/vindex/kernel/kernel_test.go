package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// TestDotMatchesRef checks the fast dot product against the reference across
// lengths that exercise the unrolled body, the tail and both together.
func TestDotMatchesRef(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{127, 128, 511, 512, 513}
	for n := range 71 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for range 20 {
			a, b := randVec(r, n), randVec(r, n)
			var mag float64 // sum of |a_i b_i| bounds the rounding error
			for i := range a {
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			got, want := Dot(a, b), DotRef(a, b)
			if diff := math.Abs(float64(got - want)); diff > 1e-5*mag+1e-6 {
				t.Fatalf("n=%d: Dot = %v, DotRef = %v (diff %g, magnitude %g)", n, got, want, diff, mag)
			}
		}
	}
	// Exact on integers, where no rounding happens.
	for _, n := range lengths {
		a, b := make([]float32, n), make([]float32, n)
		var want float32
		for i := range a {
			a[i], b[i] = float32(i%7-3), float32(i%5-2)
			want += a[i] * b[i]
		}
		if got := Dot(a, b); got != want {
			t.Fatalf("n=%d: Dot of small integers = %v, want %v", n, got, want)
		}
	}
}

func TestDotZeroAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a, b := randVec(r, 512), randVec(r, 512)
	if allocs := testing.AllocsPerRun(100, func() { Dot(a, b) }); allocs != 0 {
		t.Errorf("Dot allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	x, y := randVec(r, 512), randVec(r, 512)
	var sink float32
	for _, impl := range []struct {
		name string
		fn   func(a, b []float32) float32
	}{{"ref", DotRef}, {"fast", Dot}} {
		b.Run("n=512/"+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(2 * 4 * 512)
			for b.Loop() {
				sink += impl.fn(x, y)
			}
		})
	}
	_ = sink // keeps the calls from being optimised away
}
