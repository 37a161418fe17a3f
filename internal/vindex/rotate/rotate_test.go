package rotate

import (
	"bytes"
	"fmt"
	"gabarit/internal/vindex/vindextest"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func testSecret(b byte) []byte {
	return bytes.Repeat([]byte{b}, SecretSize)
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestOrthogonal(t *testing.T) {
	t.Parallel()
	for _, dim := range []int{1, 2, 7, 64, 512} {
		t.Run(fmt.Sprintf("dim=%d", dim), func(t *testing.T) {
			t.Parallel()
			r, err := New(testSecret(1), dim)
			if err != nil {
				t.Fatal(err)
			}
			if r.Dim() != dim {
				t.Fatalf("Dim() = %d, want %d", r.Dim(), dim)
			}
			worst := 0.0
			for i := range dim {
				for j := range dim {
					want := 0.0
					if i == j {
						want = 1
					}
					got := dot(r.m[i*dim:(i+1)*dim], r.m[j*dim:(j+1)*dim])
					worst = max(worst, math.Abs(got-want))
				}
			}
			if worst > 1e-5 {
				t.Errorf("R·Rᵀ differs from I by up to %g, want ≤ 1e-5", worst)
			}
		})
	}
}

func TestPreservesCosines(t *testing.T) {
	t.Parallel()
	const dim = 512
	rot, err := New(testSecret(2), dim)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	vecs := make([][]float32, 50)
	rotated := make([][]float32, len(vecs))
	for i := range vecs {
		vecs[i] = vindextest.RandUnit(r, dim)
		rotated[i] = make([]float32, dim)
		rot.Apply(rotated[i], vecs[i])
	}
	// A near-duplicate pair too, the cosines that matter for faces.
	near := slices.Clone(vecs[0])
	near[0] += 0.05
	vecs = append(vecs, near)
	rotated = append(rotated, make([]float32, dim))
	rot.Apply(rotated[len(rotated)-1], near)

	worst, same := 0.0, 0
	for i := range vecs {
		if d := math.Abs(dot(rotated[i], rotated[i]) - dot(vecs[i], vecs[i])); d > worst {
			worst = d
		}
		for j := range i {
			worst = max(worst, math.Abs(dot(rotated[i], rotated[j])-dot(vecs[i], vecs[j])))
		}
		for k := range dim {
			if math.Abs(float64(rotated[i][k]-vecs[i][k])) < 1e-3 {
				same++
			}
		}
	}
	if worst > 1e-5 {
		t.Errorf("cosines changed by up to %g, want ≤ 1e-5", worst)
	}
	// A coordinate of a unit vector of dimension 512 is about N(0, 1/512):
	// two independent ones land within 1e-3 of each other with probability
	// about 2e-3/(sqrt(2π)·0.0625) ≈ 0.013.
	if total := len(vecs) * dim; float64(same) > 0.03*float64(total) {
		t.Errorf("%d of %d rotated coordinates within 1e-3 of the original, want few", same, total)
	}
}

func TestApplyInPlaceAndInvert(t *testing.T) {
	// Not parallel: AllocsPerRun refuses parallel tests.
	const dim = 64
	rot, err := New(testSecret(3), dim)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	v := vindextest.RandUnit(r, dim)
	want := make([]float32, dim)
	rot.Apply(want, v)
	got := slices.Clone(v)
	rot.Apply(got, got)
	if !slices.Equal(got, want) {
		t.Fatal("Apply(v, v) differs from Apply(dst, v)")
	}
	back := make([]float32, dim)
	rot.Invert(back, got)
	for i := range v {
		if math.Abs(float64(back[i]-v[i])) > 1e-5 {
			t.Fatalf("Invert(Apply(v))[%d] = %g, want %g", i, back[i], v[i])
		}
	}
	if n := testing.AllocsPerRun(100, func() { rot.Apply(want, v) }); n != 0 {
		t.Errorf("Apply allocates %v times, want 0", n)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	const dim = 128
	a, err := New(testSecret(4), dim)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(testSecret(4), dim)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.m, b.m) {
		t.Error("two rotations from the same secret differ")
	}
	other := testSecret(4)
	other[31] ^= 1 // one bit
	c, err := New(other, dim)
	if err != nil {
		t.Fatal(err)
	}
	diff := 0
	for i := range a.m {
		if math.Abs(float64(a.m[i]-c.m[i])) > 1e-3 {
			diff++
		}
	}
	if diff < len(a.m)*9/10 {
		t.Errorf("secrets one bit apart give matrices differing in only %d of %d entries", diff, len(a.m))
	}
	s1, s2 := NewSecret(), NewSecret()
	if len(s1) != SecretSize || bytes.Equal(s1, s2) {
		t.Errorf("NewSecret gave %d bytes, twice the same: %v", len(s1), bytes.Equal(s1, s2))
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret []byte
		dim    int
	}{
		{"short secret", make([]byte, 16), 8},
		{"nil secret", nil, 8},
		{"zero dim", testSecret(1), 0},
		{"negative dim", testSecret(1), -3},
		{"huge dim", testSecret(1), MaxDim + 1},
	}
	for _, tt := range tests {
		if _, err := New(tt.secret, tt.dim); err == nil {
			t.Errorf("%s: New succeeded, want an error", tt.name)
		}
	}
}

func TestApplyPanicsOnWrongLength(t *testing.T) {
	t.Parallel()
	rot, err := New(testSecret(5), 8)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Apply on a vector of length 7 did not panic")
		}
	}()
	rot.Apply(make([]float32, 8), make([]float32, 7))
}

// TestNewIsFast reports the build time of a dimension-512 matrix; it
// asserts nothing about time (the machine is shared), only logs it.
func TestNewIsFast(t *testing.T) {
	start := time.Now()
	if _, err := New(testSecret(6), 512); err != nil {
		t.Fatal(err)
	}
	t.Logf("New(dim=512) took %v", time.Since(start))
}

func BenchmarkNew(b *testing.B) {
	for _, dim := range []int{128, 512} {
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			s := testSecret(7)
			for b.Loop() {
				if _, err := New(s, dim); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkApply(b *testing.B) {
	for _, dim := range []int{128, 512} {
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			rot, err := New(testSecret(8), dim)
			if err != nil {
				b.Fatal(err)
			}
			src := vindextest.RandUnit(rand.New(rand.NewPCG(5, 6)), dim)
			dst := make([]float32, dim)
			b.SetBytes(int64(4 * dim))
			b.ReportAllocs()
			for b.Loop() {
				rot.Apply(dst, src)
			}
		})
	}
}
