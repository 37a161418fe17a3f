// Package synth generates synthetic face templates for benchmarking the
// vector indexes: L2-normalised vectors grouped by identity whose
// same-identity (genuine) and different-identity (impostor) cosine
// distributions match those measured on real templates.
//
// The model: an identity's centre c is the normalised sum of a component
// in a shared low-rank "population" subspace (weight PopShare) and a
// component uniform on the sphere; the population component is what makes
// real impostor cosines spread about twice as wide as those of random
// vectors (std 0.099 against 1/√512 = 0.044). A face is t·c + √(1-t²)·n,
// with n a random unit vector orthogonal to c and t, its cosine with the
// centre, drawn per face from a normal law clipped to [0.05, 0.99]: two
// faces of one identity then have a cosine of about t₁·t₂.
package synth

import (
	"math"
	"math/rand/v2"
)

// Params are the parameters of the model (see the package doc).
type Params struct {
	Dim      int     // dimension of the templates
	Rank     int     // dimension of the population subspace
	PopShare float64 // share of a centre's energy in the population subspace, in [0,1]
	TMean    float64 // mean cosine of a face with its identity's centre
	TStd     float64 // standard deviation of that cosine
}

// Measured on real templates by
//
//	gabarit bench search --calibrate ../shared/data/celeba-dev
//
// (MobileFaceNet, 512-d, the default model pack; 120 identities, 2,500
// images): genuine cosine mean 0.5898, std 0.2046 (29,239 pairs); impostor
// cosine mean 0.0056, std 0.0991 (3,089,514 pairs).
const (
	RealGenuineMean  = 0.5898
	RealGenuineStd   = 0.2046
	RealImpostorMean = 0.0056
	RealImpostorStd  = 0.0991
)

// Calibrated returns the parameters fitted to the real statistics above at
// dimension 512 (the fit is in docs/PERFORMANCE.md; TestCalibrated checks
// it). The impostor mean of 0.0056 is not modelled (the model's is 0).
func Calibrated() Params {
	return Params{Dim: 512, Rank: 32, PopShare: 0.83, TMean: 0.785, TStd: 0.23}
}

// Generator draws identities and faces. Its methods are safe for
// concurrent use when each goroutine passes its own *rand.Rand.
type Generator struct {
	p     Params
	basis [][]float64 // Rank orthonormal vectors spanning the population subspace
}

// New returns a generator for p; seed fixes the population subspace.
func New(p Params, seed uint64) *Generator {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	basis := make([][]float64, p.Rank)
	for i := range basis {
		v := gauss(r, p.Dim)
		for _, b := range basis[:i] { // Gram-Schmidt
			d := dot(v, b)
			for j := range v {
				v[j] -= d * b[j]
			}
		}
		normalize(v)
		basis[i] = v
	}
	return &Generator{p: p, basis: basis}
}

// Params returns the generator's parameters.
func (g *Generator) Params() Params { return g.p }

// Identity returns a new identity centre (unit length).
func (g *Generator) Identity(r *rand.Rand) []float64 {
	c := gauss(r, g.p.Dim)
	normalize(c)
	if len(g.basis) > 0 && g.p.PopShare > 0 {
		u := make([]float64, g.p.Dim)
		for _, b := range g.basis {
			z := r.NormFloat64()
			for j := range u {
				u[j] += z * b[j]
			}
		}
		normalize(u)
		a, w := math.Sqrt(g.p.PopShare), math.Sqrt(1-g.p.PopShare)
		for j := range c {
			c[j] = a*u[j] + w*c[j]
		}
		normalize(c)
	}
	return c
}

// Face writes a new face of the identity whose centre is c into dst
// (length Dim, L2-normalised).
func (g *Generator) Face(r *rand.Rand, c []float64, dst []float32) {
	t := min(0.99, max(0.05, g.p.TMean+g.p.TStd*r.NormFloat64()))
	n := gauss(r, g.p.Dim)
	d := dot(n, c)
	for j := range n {
		n[j] -= d * c[j]
	}
	normalize(n)
	s := math.Sqrt(1 - t*t)
	for j := range dst {
		dst[j] = float32(t*c[j] + s*n[j])
	}
	var ss float64
	for _, f := range dst {
		ss += float64(f) * float64(f)
	}
	inv := 1 / math.Sqrt(ss)
	for j := range dst {
		dst[j] = float32(float64(dst[j]) * inv)
	}
}

func gauss(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = r.NormFloat64()
	}
	return v
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func normalize(v []float64) {
	inv := 1 / math.Sqrt(dot(v, v))
	for i := range v {
		v[i] *= inv
	}
}
