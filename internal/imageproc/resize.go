package imageproc

import "math"

// ResizeArea resamples src to w×h. Downscaling averages every source pixel
// that falls under a destination pixel (area filter, no aliasing); upscaling
// interpolates bilinearly.
func ResizeArea(src *RGB, w, h int) *RGB {
	dst := NewRGB(w, h)
	if w == src.W && h == src.H {
		copy(dst.Pix, src.Pix)
		return dst
	}
	xw := resizeWeights(src.W, w)
	yw := resizeWeights(src.H, h)
	// Horizontal pass into a float buffer of src.H rows × w columns.
	tmp := make([]float32, src.H*w*3)
	for y := 0; y < src.H; y++ {
		row := src.Pix[y*src.W*3 : (y+1)*src.W*3]
		out := tmp[y*w*3 : (y+1)*w*3]
		for x, c := range xw {
			var r, g, b float32
			for k, wt := range c.w {
				p := (c.first + k) * 3
				r += wt * float32(row[p])
				g += wt * float32(row[p+1])
				b += wt * float32(row[p+2])
			}
			out[x*3], out[x*3+1], out[x*3+2] = r, g, b
		}
	}
	// Vertical pass.
	for y, c := range yw {
		out := dst.Pix[y*w*3 : (y+1)*w*3]
		for i := range out {
			var v float32
			for k, wt := range c.w {
				v += wt * tmp[(c.first+k)*w*3+i]
			}
			out[i] = clamp8(v)
		}
	}
	return dst
}

type resizeCoeff struct {
	first int
	w     []float32
}

// resizeWeights returns, for each of n destination samples, the source range
// and weights mapping m source samples onto them.
func resizeWeights(m, n int) []resizeCoeff {
	cs := make([]resizeCoeff, n)
	scale := float64(m) / float64(n)
	for i := range cs {
		if scale > 1 { // area average over [i*scale, (i+1)*scale)
			lo, hi := float64(i)*scale, float64(i+1)*scale
			first := int(math.Floor(lo))
			last := int(math.Ceil(hi)) - 1
			if last >= m {
				last = m - 1
			}
			ws := make([]float32, last-first+1)
			for k := range ws {
				a := math.Max(lo, float64(first+k))
				b := math.Min(hi, float64(first+k+1))
				ws[k] = float32((b - a) / scale)
			}
			cs[i] = resizeCoeff{first, ws}
			continue
		}
		// Bilinear, pixel centres aligned.
		x := (float64(i)+0.5)*scale - 0.5
		x0 := int(math.Floor(x))
		f := float32(x - float64(x0))
		switch {
		case x0 < 0:
			cs[i] = resizeCoeff{0, []float32{1}}
		case x0 >= m-1:
			cs[i] = resizeCoeff{m - 1, []float32{1}}
		default:
			cs[i] = resizeCoeff{x0, []float32{1 - f, f}}
		}
	}
	return cs
}

func clamp8(v float32) byte {
	v += 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return byte(v)
}

// Crop copies the w×h region of src whose top-left corner is (x, y) into a new
// image. Parts of the region outside src are black.
func Crop(src *RGB, x, y, w, h int) *RGB {
	dst := NewRGB(w, h)
	for r := 0; r < h; r++ {
		sy := y + r
		if sy < 0 || sy >= src.H {
			continue
		}
		x0, x1 := max(x, 0), min(x+w, src.W)
		if x1 <= x0 {
			continue
		}
		copy(dst.Pix[(r*w+(x0-x))*3:(r*w+(x1-x))*3], src.Pix[(sy*src.W+x0)*3:(sy*src.W+x1)*3])
	}
	return dst
}
