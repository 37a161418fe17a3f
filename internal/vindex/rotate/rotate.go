// Package rotate is a secret random rotation of R^dim: an orthogonal matrix
// drawn from the Haar distribution (uniform over all rotations and
// reflections) with a deterministic generator seeded by a per-deployment
// secret.
//
// An orthogonal matrix preserves dot products, so cosine similarities
// between rotated vectors equal those between the originals (to float32
// rounding): a vector engine that only ever sees rotated templates and
// rotated queries finds the same neighbours with the same scores, while
// the coordinates it stores are not the templates. Whoever holds the
// secret can rebuild the matrix and undo the rotation; whoever does not
// sees vectors that keep every pairwise angle (so they can still compare
// the stored faces among themselves) but not the templates.
package rotate

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand/v2"

	"gabarit/internal/vindex/kernel"
)

// SecretSize is the length in bytes of a secret.
const SecretSize = 32

// MaxDim is the largest dimension New accepts (the matrix takes 4·dim²
// bytes: 1 MiB at dimension 512, 64 MiB at MaxDim).
const MaxDim = 4096

// Rotation is a secret orthogonal matrix of one dimension. It is safe for
// concurrent use: Apply only reads it.
type Rotation struct {
	dim int
	m   []float32 // row-major dim×dim
}

// NewSecret returns a fresh random secret of SecretSize bytes from
// crypto/rand.
func NewSecret() []byte {
	s := make([]byte, SecretSize)
	// crypto/rand.Read never returns an error (it panics if the system's
	// generator fails).
	_, _ = rand.Read(s)
	return s
}

// New derives the rotation of R^dim for secret, which must be SecretSize
// bytes. The same secret and dimension always give the same matrix; the
// matrices of different secrets (or dimensions) are unrelated.
//
// The draw: a ChaCha8 generator seeded with HMAC-SHA256(secret, label, dim)
// fills a dim×dim matrix with standard Gaussians, whose rows modified
// Gram-Schmidt orthonormalises in float64. Gram-Schmidt yields the Q of the
// QR decomposition with a positive diagonal in R, which is the sign choice
// that makes Q Haar-distributed.
func New(secret []byte, dim int) (*Rotation, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("rotation secret is %d bytes, want %d", len(secret), SecretSize)
	}
	if dim < 1 || dim > MaxDim {
		return nil, fmt.Errorf("rotation dimension %d not in [1, %d]", dim, MaxDim)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("gabarit/vindex/rotate v1"))
	mac.Write(binary.LittleEndian.AppendUint64(nil, uint64(dim)))
	var seed [32]byte
	copy(seed[:], mac.Sum(nil))
	r := mrand.New(mrand.NewChaCha8(seed))

	for {
		a := make([]float64, dim*dim)
		for i := range a {
			a[i] = r.NormFloat64()
		}
		if orthonormalise(a, dim) {
			m := make([]float32, len(a))
			for i, x := range a {
				m[i] = float32(x)
			}
			return &Rotation{dim: dim, m: m}, nil
		}
		// A (numerically) singular Gaussian matrix: probability zero in
		// practice; draw again from the same stream, still deterministic.
	}
}

// orthonormalise turns the rows of the dim×dim row-major matrix a into an
// orthonormal basis by modified Gram-Schmidt, run twice per row ("twice is
// enough") so that the rows are orthogonal to float64 rounding whatever
// the conditioning. It reports false when a row is (numerically) dependent
// on the previous ones.
func orthonormalise(a []float64, dim int) bool {
	for i := range dim {
		ri := a[i*dim : (i+1)*dim]
		norm0 := math.Sqrt(dot64(ri, ri))
		for range 2 {
			for j := range i {
				rj := a[j*dim : (j+1)*dim]
				p := dot64(ri, rj)
				for k := range ri {
					ri[k] -= p * rj[k]
				}
			}
		}
		n := math.Sqrt(dot64(ri, ri))
		if n <= 1e-10*norm0 || n == 0 {
			return false
		}
		inv := 1 / n
		for k := range ri {
			ri[k] *= inv
		}
	}
	return true
}

func dot64(a, b []float64) float64 {
	var s0, s1, s2, s3 float64
	b = b[:len(a)]
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}

// Dim returns the dimension of the vectors the rotation applies to.
func (r *Rotation) Dim() int { return r.dim }

// Apply sets dst to the rotation of src (dst = R·src). Both must have length
// Dim (else Apply panics, as copy-like functions do on a programming
// error). dst may be src itself; other overlaps are not allowed. Apply does
// not allocate unless dst is src.
func (r *Rotation) Apply(dst, src []float32) {
	if len(dst) != r.dim || len(src) != r.dim {
		panic(fmt.Sprintf("rotate: Apply on vectors of length %d and %d, rotation of dimension %d", len(dst), len(src), r.dim))
	}
	if &dst[0] == &src[0] {
		src = append([]float32(nil), src...)
	}
	m := r.m
	for i := range dst {
		dst[i] = kernel.Dot(m[i*r.dim:(i+1)*r.dim], src)
	}
}

// Invert sets dst to the inverse rotation of src (dst = Rᵀ·src), so that
// Invert(Apply(v)) gives v back to float32 rounding. The rules on lengths
// and overlap are Apply's.
func (r *Rotation) Invert(dst, src []float32) {
	if len(dst) != r.dim || len(src) != r.dim {
		panic(fmt.Sprintf("rotate: Invert on vectors of length %d and %d, rotation of dimension %d", len(dst), len(src), r.dim))
	}
	if &dst[0] == &src[0] {
		src = append([]float32(nil), src...)
	}
	clear(dst)
	for i, x := range src {
		row := r.m[i*r.dim : (i+1)*r.dim]
		for k := range dst {
			dst[k] += x * row[k]
		}
	}
}
