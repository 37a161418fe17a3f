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
	// Vertical pass first, over only the source rows each output row needs,
	// into one float row; then the horizontal pass into the destination.
	row := make([]float32, src.W*3)
	sstride := src.W * 3
	for y, c := range yw.c {
		clear(row)
		for k, wt := range yw.w[c.off : c.off+c.n] {
			in := src.Pix[(c.first+k)*sstride : (c.first+k+1)*sstride]
			for i, v := range in {
				row[i] += wt * float32(v)
			}
		}
		out := dst.Pix[y*w*3 : (y+1)*w*3]
		for x, cx := range xw.c {
			var r, g, b float32
			for k, wt := range xw.w[cx.off : cx.off+cx.n] {
				p := (cx.first + k) * 3
				r += wt * row[p]
				g += wt * row[p+1]
				b += wt * row[p+2]
			}
			out[x*3], out[x*3+1], out[x*3+2] = clamp8(r), clamp8(g), clamp8(b)
		}
	}
	return dst
}

// resizeTable maps m source samples onto n destination samples: destination
// i takes c[i].n weights from w[c[i].off:], starting at source c[i].first.
type resizeTable struct {
	c []resizeCoeff
	w []float32
}

type resizeCoeff struct {
	first, off, n int
}

// resizeWeights returns the table mapping m source samples onto n
// destination samples: an area average when shrinking, bilinear (pixel
// centres aligned) when enlarging.
func resizeWeights(m, n int) resizeTable {
	t := resizeTable{c: make([]resizeCoeff, n)}
	add := func(i, first int, ws ...float32) {
		t.c[i] = resizeCoeff{first: first, off: len(t.w), n: len(ws)}
		t.w = append(t.w, ws...)
	}
	scale := float64(m) / float64(n)
	for i := range n {
		if scale > 1 { // area average over [i*scale, (i+1)*scale)
			lo, hi := float64(i)*scale, float64(i+1)*scale
			first := int(math.Floor(lo))
			last := min(int(math.Ceil(hi))-1, m-1)
			t.c[i] = resizeCoeff{first: first, off: len(t.w), n: last - first + 1}
			for k := first; k <= last; k++ {
				a := math.Max(lo, float64(k))
				b := math.Min(hi, float64(k+1))
				t.w = append(t.w, float32((b-a)/scale))
			}
			continue
		}
		x := (float64(i)+0.5)*scale - 0.5
		x0 := int(math.Floor(x))
		f := float32(x - float64(x0))
		switch {
		case x0 < 0:
			add(i, 0, 1)
		case x0 >= m-1:
			add(i, m-1, 1)
		default:
			add(i, x0, 1-f, f)
		}
	}
	return t
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
