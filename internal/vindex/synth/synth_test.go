package synth

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCalibrated checks that the calibrated generator reproduces the real
// genuine and impostor cosine statistics: means within 0.02, standard
// deviations within 0.015.
func TestCalibrated(t *testing.T) {
	t.Parallel()
	g := New(Calibrated(), 1)
	r := rand.New(rand.NewPCG(1, 2))
	const ids, per = 150, 6
	faces := make([][]float32, 0, ids*per)
	label := make([]int, 0, ids*per)
	for i := range ids {
		c := g.Identity(r)
		for range per {
			f := make([]float32, g.Params().Dim)
			g.Face(r, c, f)
			faces = append(faces, f)
			label = append(label, i)
		}
	}
	var gen, imp [3]float64 // n, sum, sum of squares
	for i := range faces {
		for j := i + 1; j < len(faces); j++ {
			var s float64
			for k := range faces[i] {
				s += float64(faces[i][k]) * float64(faces[j][k])
			}
			m := &imp
			if label[i] == label[j] {
				m = &gen
			}
			m[0]++
			m[1] += s
			m[2] += s * s
		}
	}
	stat := func(m [3]float64) (mean, std float64) {
		mean = m[1] / m[0]
		return mean, math.Sqrt(m[2]/m[0] - mean*mean)
	}
	gm, gs := stat(gen)
	im, is := stat(imp)
	t.Logf("genuine %.4f ± %.4f (real %.4f ± %.4f), impostor %.4f ± %.4f (real %.4f ± %.4f)",
		gm, gs, RealGenuineMean, RealGenuineStd, im, is, RealImpostorMean, RealImpostorStd)
	if math.Abs(gm-RealGenuineMean) > 0.02 || math.Abs(gs-RealGenuineStd) > 0.015 ||
		math.Abs(im-RealImpostorMean) > 0.02 || math.Abs(is-RealImpostorStd) > 0.015 {
		t.Errorf("generated statistics are off the real ones")
	}
}

func TestFaceIsUnit(t *testing.T) {
	t.Parallel()
	g := New(Calibrated(), 2)
	r := rand.New(rand.NewPCG(3, 4))
	f := make([]float32, 512)
	g.Face(r, g.Identity(r), f)
	var ss float64
	for _, x := range f {
		ss += float64(x) * float64(x)
	}
	if math.Abs(ss-1) > 1e-5 {
		t.Errorf("|face|² = %v, want 1", ss)
	}
}
