package access

import (
	"math/rand/v2"
	"testing"

	"gabarit/internal/imageproc"
)

func noise(w, h int, seed uint64) *imageproc.RGB {
	m := imageproc.NewRGB(w, h)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
	}
	return m
}

// TestObscureKeepsOnlyBlockMeans checks that what obscure leaves depends on
// nothing but the mean colour of each of its blocks: shuffling the pixels
// inside every block gives the same output, so the detail is gone for good.
func TestObscureKeepsOnlyBlockMeans(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		r    rect
	}{
		{"square", rect{8, 8, 72, 72}},
		{"odd", rect{3, 5, 50, 61}},
		{"tiny", rect{10, 10, 14, 13}},
		{"edge", rect{60, 0, 80, 80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := noise(80, 80, 7)
			b := &imageproc.RGB{W: a.W, H: a.H, Pix: append([]byte(nil), a.Pix...)}
			// Reverse the pixels of every block of b: same means, other detail.
			w, h := tc.r.x1-tc.r.x0, tc.r.y1-tc.r.y0
			nx, ny := min(pixelCells, w), min(pixelCells, h)
			for j := range ny {
				for i := range nx {
					var idx []int
					for y := tc.r.y0 + j*h/ny; y < tc.r.y0+(j+1)*h/ny; y++ {
						for x := tc.r.x0 + i*w/nx; x < tc.r.x0+(i+1)*w/nx; x++ {
							idx = append(idx, (y*b.W+x)*3)
						}
					}
					for k := range len(idx) / 2 {
						p, q := idx[k], idx[len(idx)-1-k]
						for c := range 3 {
							b.Pix[p+c], b.Pix[q+c] = b.Pix[q+c], b.Pix[p+c]
						}
					}
				}
			}
			obscure(a, tc.r, nil)
			obscure(b, tc.r, nil)
			for i := range a.Pix {
				if a.Pix[i] != b.Pix[i] {
					t.Fatalf("byte %d differs (%d, %d): obscure keeps more than the block means", i, a.Pix[i], b.Pix[i])
				}
			}
		})
	}
}

func TestObscureLeavesKeptAndOutside(t *testing.T) {
	t.Parallel()
	orig := noise(64, 64, 3)
	m := &imageproc.RGB{W: orig.W, H: orig.H, Pix: append([]byte(nil), orig.Pix...)}
	r, keep := rect{10, 10, 50, 50}, rect{30, 30, 60, 60}
	obscure(m, r, []rect{keep})
	changed := 0
	for y := range m.H {
		for x := range m.W {
			o := (y*m.W + x) * 3
			same := m.Pix[o] == orig.Pix[o] && m.Pix[o+1] == orig.Pix[o+1] && m.Pix[o+2] == orig.Pix[o+2]
			switch {
			case keep.contains(x, y) || !r.contains(x, y):
				if !same {
					t.Fatalf("pixel (%d,%d) outside the region or kept was changed", x, y)
				}
			case !same:
				changed++
			}
		}
	}
	if changed < 40*40-20*20-50 {
		t.Errorf("only %d pixels of the region changed", changed)
	}
}

func TestPixelRect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		b      [4]float64
		mx, my float64
		want   rect
	}{
		{"inside", [4]float64{10.5, 20.2, 30, 40}, 0, 0, rect{10, 20, 41, 61}},
		{"margin", [4]float64{10, 20, 30, 40}, 3, 4, rect{7, 16, 43, 64}},
		{"clipped", [4]float64{-5, 90, 30, 40}, 0, 0, rect{0, 90, 25, 100}},
		{"outside", [4]float64{200, 200, 10, 10}, 0, 0, rect{100, 100, 100, 100}},
		{"degenerate", [4]float64{10, 10, 0, 5}, 0, 0, rect{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := pixelRect(tc.b, tc.mx, tc.my, 100, 100); got != tc.want {
				t.Errorf("pixelRect = %+v, want %+v", got, tc.want)
			}
		})
	}
}
