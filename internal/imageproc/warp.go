package imageproc

import (
	"errors"
	"math"
)

// Affine is a 2×3 matrix mapping source to destination pixel coordinates:
// x' = A[0]*x + A[1]*y + A[2], y' = A[3]*x + A[4]*y + A[5].
type Affine [6]float64

// Apply maps the point (x, y).
func (a Affine) Apply(x, y float64) (float64, float64) {
	return a[0]*x + a[1]*y + a[2], a[3]*x + a[4]*y + a[5]
}

// Invert returns the inverse transform; it fails on a singular matrix.
func (a Affine) Invert() (Affine, error) {
	det := a[0]*a[4] - a[1]*a[3]
	if math.Abs(det) < 1e-12 {
		return Affine{}, errors.New("imageproc: singular affine transform")
	}
	i0, i1 := a[4]/det, -a[1]/det
	i3, i4 := -a[3]/det, a[0]/det
	return Affine{i0, i1, -(i0*a[2] + i1*a[5]), i3, i4, -(i3*a[2] + i4*a[5])}, nil
}

// Similarity returns the least-squares similarity transform (rotation, uniform
// scale, translation; no reflection or shear) that maps the points src onto
// dst (Umeyama's method restricted to 2-D). It fails when src is degenerate
// (fewer than two distinct points).
func Similarity(src, dst [][2]float64) (Affine, error) {
	n := len(src)
	if n < 2 || n != len(dst) {
		return Affine{}, errors.New("imageproc: similarity needs ≥2 matching point pairs")
	}
	var msx, msy, mdx, mdy float64
	for i := range n {
		msx += src[i][0]
		msy += src[i][1]
		mdx += dst[i][0]
		mdy += dst[i][1]
	}
	fn := float64(n)
	msx, msy, mdx, mdy = msx/fn, msy/fn, mdx/fn, mdy/fn
	// With centred points p (source) and q (destination), the optimal
	// q ≈ [a -b; b a] p has a = Σ(p·q)/Σ|p|², b = Σ(p×q)/Σ|p|².
	var sxx, dot, cross float64
	for i := range n {
		px, py := src[i][0]-msx, src[i][1]-msy
		qx, qy := dst[i][0]-mdx, dst[i][1]-mdy
		sxx += px*px + py*py
		dot += px*qx + py*qy
		cross += px*qy - py*qx
	}
	if sxx < 1e-9 {
		return Affine{}, errors.New("imageproc: similarity source points are degenerate")
	}
	a, b := dot/sxx, cross/sxx
	return Affine{a, -b, mdx - (a*msx - b*msy), b, a, mdy - (b*msx + a*msy)}, nil
}

// Warp renders the w×h destination image of src under the transform m
// (source → destination), sampling bilinearly; destination pixels whose
// source lies outside src are black.
func Warp(src *RGB, m Affine, w, h int) (*RGB, error) {
	inv, err := m.Invert()
	if err != nil {
		return nil, err
	}
	dst := NewRGB(w, h)
	sw, sh := src.W, src.H
	stride := sw * 3
	for y := range h {
		// Source position of the destination pixel centre (x+0.5, y+0.5), in
		// source pixel-centre coordinates; it moves by (inv[0], inv[3]) per
		// destination column.
		fy := float64(y) + 0.5
		sx0, sy0 := inv.Apply(0.5, fy)
		for x := range w {
			sx := sx0 + float64(x)*inv[0] - 0.5
			sy := sy0 + float64(x)*inv[3] - 0.5
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			if x0 < -1 || y0 < -1 || x0 >= sw || y0 >= sh {
				continue
			}
			ax, ay := float32(sx-float64(x0)), float32(sy-float64(y0))
			o := (y*w + x) * 3
			if x0 >= 0 && y0 >= 0 && x0+1 < sw && y0+1 < sh {
				// All four neighbours inside: index directly.
				i := y0*stride + x0*3
				p := src.Pix[i : i+stride+6 : i+stride+6]
				for c := range 3 {
					p00, p10 := float32(p[c]), float32(p[3+c])
					p01, p11 := float32(p[stride+c]), float32(p[stride+3+c])
					top := p00 + (p10-p00)*ax
					bot := p01 + (p11-p01)*ax
					dst.Pix[o+c] = clamp8(top + (bot-top)*ay)
				}
				continue
			}
			for c := range 3 {
				p00 := warpPix(src, x0, y0, c)
				p10 := warpPix(src, x0+1, y0, c)
				p01 := warpPix(src, x0, y0+1, c)
				p11 := warpPix(src, x0+1, y0+1, c)
				top := p00 + (p10-p00)*ax
				bot := p01 + (p11-p01)*ax
				dst.Pix[o+c] = clamp8(top + (bot-top)*ay)
			}
		}
	}
	return dst, nil
}

func warpPix(m *RGB, x, y, c int) float32 {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return 0
	}
	return float32(m.Pix[(y*m.W+x)*3+c])
}
