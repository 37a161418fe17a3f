package imageproc

import (
	"math"
	"math/rand/v2"
	"testing"
)

// geomTestNoise returns a w×h image of deterministic pseudo-random pixels.
func geomTestNoise(w, h int, seed uint64) *RGB {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m := NewRGB(w, h)
	for i := range m.Pix {
		m.Pix[i] = byte(r.IntN(256))
	}
	return m
}

// geomTestFill returns a w×h image of one colour.
func geomTestFill(w, h int, r, g, b byte) *RGB {
	m := NewRGB(w, h)
	for i := 0; i < len(m.Pix); i += 3 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2] = r, g, b
	}
	return m
}

func geomTestAt(m *RGB, x, y int) [3]byte {
	o := (y*m.W + x) * 3
	return [3]byte{m.Pix[o], m.Pix[o+1], m.Pix[o+2]}
}

// geomTestSim builds the similarity of scale s, rotation theta and translation (tx, ty).
func geomTestSim(s, theta, tx, ty float64) Affine {
	a, b := s*math.Cos(theta), s*math.Sin(theta)
	return Affine{a, -b, tx, b, a, ty}
}

var geomTestPoints = [][2]float64{
	{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366}, {41.5493, 92.3655}, {70.7299, 92.2041},
}

func geomTestApplyAll(m Affine, pts [][2]float64) [][2]float64 {
	out := make([][2]float64, len(pts))
	for i, p := range pts {
		out[i][0], out[i][1] = m.Apply(p[0], p[1])
	}
	return out
}

func TestSimilarityRecoversTransform(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    Affine
	}{
		{name: "identity", m: geomTestSim(1, 0, 0, 0)},
		{name: "rotate scale translate", m: geomTestSim(1.7, 0.35, 120.5, -42.25)},
		{name: "shrink and turn back", m: geomTestSim(0.25, -2.8, -10, 300)},
		{name: "quarter turn", m: geomTestSim(3, math.Pi/2, 0, 7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Similarity(geomTestPoints, geomTestApplyAll(tt.m, geomTestPoints))
			if err != nil {
				t.Fatalf("Similarity: %v", err)
			}
			for i := range got {
				if math.Abs(got[i]-tt.m[i]) > 1e-9 {
					t.Fatalf("Similarity = %v, want %v", got, tt.m)
				}
			}
		})
	}
}

func TestSimilarityNoisy(t *testing.T) {
	t.Parallel()
	want := geomTestSim(2.2, 0.6, 35, 18)
	dst := geomTestApplyAll(want, geomTestPoints)
	// Deterministic perturbation of up to ±0.5 px, with zero mean.
	noise := [][2]float64{{0.5, -0.3}, {-0.4, 0.2}, {0.1, 0.5}, {-0.3, -0.5}, {0.1, 0.1}}
	for i := range dst {
		dst[i][0] += noise[i][0]
		dst[i][1] += noise[i][1]
	}
	got, err := Similarity(geomTestPoints, dst)
	if err != nil {
		t.Fatalf("Similarity: %v", err)
	}
	gs, gt := math.Hypot(got[0], got[3]), math.Atan2(got[3], got[0])
	if math.Abs(gs-2.2) > 0.02 || math.Abs(gt-0.6) > 0.01 {
		t.Errorf("scale, angle = %.4f, %.4f; want 2.2, 0.6", gs, gt)
	}
	for i, p := range geomTestPoints {
		x, y := got.Apply(p[0], p[1])
		if d := math.Hypot(x-dst[i][0], y-dst[i][1]); d > 1 {
			t.Errorf("point %d lands %.3f px from its target", i, d)
		}
	}
}

func TestSimilarityNoReflection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dst  [][2]float64
	}{
		{name: "mirrored x", dst: geomTestApplyAll(Affine{-1, 0, 200, 0, 1, 0}, geomTestPoints)},
		{name: "mirrored y", dst: geomTestApplyAll(Affine{1, 0, 0, 0, -1, 200}, geomTestPoints)},
		{name: "mirrored and scaled", dst: geomTestApplyAll(Affine{0, 2, 0, 2, 0, 0}, geomTestPoints)},
		{name: "plain", dst: geomTestApplyAll(geomTestSim(1.5, 1, 2, 3), geomTestPoints)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Similarity(geomTestPoints, tt.dst)
			if err != nil {
				t.Fatalf("Similarity: %v", err)
			}
			if m[0] != m[4] || m[1] != -m[3] {
				t.Errorf("not a similarity [a -b; b a]: %v", m)
			}
			if det := m[0]*m[4] - m[1]*m[3]; det < 0 {
				t.Errorf("determinant %v < 0: reflection", det)
			}
		})
	}
}

func TestSimilarityDegenerate(t *testing.T) {
	t.Parallel()
	same := [][2]float64{{5, 5}, {5, 5}, {5, 5}, {5, 5}, {5, 5}}
	tests := []struct {
		name     string
		src, dst [][2]float64
	}{
		{name: "all points equal", src: same, dst: geomTestPoints},
		{name: "mismatched lengths", src: geomTestPoints, dst: geomTestPoints[:4]},
		{name: "one point", src: geomTestPoints[:1], dst: geomTestPoints[:1]},
		{name: "no points", src: nil, dst: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if m, err := Similarity(tt.src, tt.dst); err == nil {
				t.Errorf("Similarity = %v, want an error", m)
			}
		})
	}
}

func TestAffineInvert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		m       Affine
		wantErr bool
	}{
		{name: "identity", m: Affine{1, 0, 0, 0, 1, 0}},
		{name: "similarity", m: geomTestSim(1.3, 0.7, -12, 40)},
		{name: "general affine", m: Affine{2, 0.5, 3, -1, 4, -7}},
		{name: "reflection", m: Affine{-1, 0, 10, 0, 1, 0}},
		{name: "singular rank 1", m: Affine{1, 2, 3, 2, 4, 5}, wantErr: true},
		{name: "zero", m: Affine{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv, err := tt.m.Invert()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Invert(%v) = %v, want an error", tt.m, inv)
				}
				return
			}
			if err != nil {
				t.Fatalf("Invert: %v", err)
			}
			for _, p := range [][2]float64{{0, 0}, {1, 0}, {0, 1}, {-37.5, 12.25}, {1000, -3}} {
				x, y := tt.m.Apply(p[0], p[1])
				bx, by := inv.Apply(x, y)
				if math.Abs(bx-p[0]) > 1e-9 || math.Abs(by-p[1]) > 1e-9 {
					t.Errorf("inv(m(%v)) = (%v, %v)", p, bx, by)
				}
				fx, fy := inv.Apply(p[0], p[1])
				gx, gy := tt.m.Apply(fx, fy)
				if math.Abs(gx-p[0]) > 1e-9 || math.Abs(gy-p[1]) > 1e-9 {
					t.Errorf("m(inv(%v)) = (%v, %v)", p, gx, gy)
				}
			}
		})
	}
}

func TestWarpIdentity(t *testing.T) {
	t.Parallel()
	src := geomTestNoise(23, 17, 1)
	got, err := Warp(src, Affine{1, 0, 0, 0, 1, 0}, src.W, src.H)
	if err != nil {
		t.Fatalf("Warp: %v", err)
	}
	if got.W != src.W || got.H != src.H {
		t.Fatalf("size %d×%d, want %d×%d", got.W, got.H, src.W, src.H)
	}
	for y := range src.H {
		for x := range src.W {
			if g, w := geomTestAt(got, x, y), geomTestAt(src, x, y); g != w {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

func TestWarpTranslation(t *testing.T) {
	t.Parallel()
	src := geomTestNoise(20, 15, 2)
	tests := []struct {
		name   string
		dx, dy int
		w, h   int
	}{
		{name: "right and up", dx: 3, dy: -2, w: 20, h: 15},
		{name: "left and down", dx: -5, dy: 4, w: 20, h: 15},
		{name: "larger output", dx: 2, dy: 1, w: 26, h: 19},
		{name: "entirely outside", dx: 1000, dy: 0, w: 20, h: 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Warp(src, Affine{1, 0, float64(tt.dx), 0, 1, float64(tt.dy)}, tt.w, tt.h)
			if err != nil {
				t.Fatalf("Warp: %v", err)
			}
			for y := range tt.h {
				for x := range tt.w {
					sx, sy := x-tt.dx, y-tt.dy
					want := [3]byte{}
					if sx >= 0 && sy >= 0 && sx < src.W && sy < src.H {
						want = geomTestAt(src, sx, sy)
					}
					if g := geomTestAt(got, x, y); g != want {
						t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, want)
					}
				}
			}
		})
	}
}

func TestWarpSingular(t *testing.T) {
	t.Parallel()
	if _, err := Warp(geomTestNoise(4, 4, 3), Affine{1, 1, 0, 1, 1, 0}, 4, 4); err == nil {
		t.Error("Warp with a singular transform succeeded")
	}
}

func TestResizeAreaSameSizeCopies(t *testing.T) {
	t.Parallel()
	src := geomTestNoise(13, 9, 4)
	got := ResizeArea(src, 13, 9)
	if got == src || &got.Pix[0] == &src.Pix[0] {
		t.Fatal("ResizeArea to the same size returned the source, want a copy")
	}
	if got.W != 13 || got.H != 9 || string(got.Pix) != string(src.Pix) {
		t.Error("same-size ResizeArea changed the pixels")
	}
}

func TestResizeAreaChecker(t *testing.T) {
	t.Parallel()
	const w, h = 8, 6
	src := NewRGB(w, h)
	for y := range h {
		for x := range w {
			if (x+y)%2 == 1 {
				o := (y*w + x) * 3
				src.Pix[o], src.Pix[o+1], src.Pix[o+2] = 255, 255, 255
			}
		}
	}
	got := ResizeArea(src, w/2, h/2)
	if got.W != w/2 || got.H != h/2 {
		t.Fatalf("size %d×%d, want %d×%d", got.W, got.H, w/2, h/2)
	}
	for i, v := range got.Pix {
		if v != 127 && v != 128 {
			t.Fatalf("sample %d = %d, want 127 or 128", i, v)
		}
	}
}

func TestResizeAreaConstant(t *testing.T) {
	t.Parallel()
	src := geomTestFill(37, 23, 13, 200, 255)
	tests := []struct {
		name string
		w, h int
	}{
		{name: "down", w: 10, h: 7},
		{name: "up", w: 100, h: 61},
		{name: "down x up y", w: 5, h: 50},
		{name: "up x down y", w: 74, h: 3},
		{name: "to one pixel", w: 1, h: 1},
		{name: "width only", w: 37, h: 11},
		{name: "non-integer down", w: 36, h: 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ResizeArea(src, tt.w, tt.h)
			if got.W != tt.w || got.H != tt.h || len(got.Pix) != tt.w*tt.h*3 {
				t.Fatalf("got %d×%d with %d bytes, want %d×%d", got.W, got.H, len(got.Pix), tt.w, tt.h)
			}
			for i := 0; i < len(got.Pix); i += 3 {
				if p := [3]byte(got.Pix[i : i+3]); p != [3]byte{13, 200, 255} {
					t.Fatalf("pixel %d = %v, want [13 200 255]", i/3, p)
				}
			}
		})
	}
}

func TestResizeAreaDownscaleAverages(t *testing.T) {
	t.Parallel()
	// A 4×1 ramp halved averages neighbouring pairs exactly.
	src := NewRGB(4, 1)
	copy(src.Pix, []byte{0, 0, 0, 100, 10, 20, 200, 30, 40, 250, 50, 60})
	got := ResizeArea(src, 2, 1)
	want := []byte{50, 5, 10, 225, 40, 50}
	if string(got.Pix) != string(want) {
		t.Errorf("pixels = %v, want %v", got.Pix, want)
	}
}

func TestCrop(t *testing.T) {
	t.Parallel()
	src := geomTestNoise(10, 8, 5)
	tests := []struct {
		name       string
		x, y, w, h int
	}{
		{name: "inside", x: 2, y: 3, w: 5, h: 4},
		{name: "whole", x: 0, y: 0, w: 10, h: 8},
		{name: "partly outside top-left", x: -2, y: -1, w: 5, h: 4},
		{name: "partly outside bottom-right", x: 7, y: 6, w: 6, h: 5},
		{name: "larger than source", x: -3, y: -3, w: 16, h: 14},
		{name: "fully outside right", x: 10, y: 0, w: 3, h: 3},
		{name: "fully outside above", x: 0, y: -5, w: 4, h: 5},
		{name: "fully outside far", x: 100, y: 100, w: 3, h: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Crop(src, tt.x, tt.y, tt.w, tt.h)
			if got.W != tt.w || got.H != tt.h || len(got.Pix) != tt.w*tt.h*3 {
				t.Fatalf("got %d×%d with %d bytes, want %d×%d", got.W, got.H, len(got.Pix), tt.w, tt.h)
			}
			for y := range tt.h {
				for x := range tt.w {
					sx, sy := tt.x+x, tt.y+y
					want := [3]byte{}
					if sx >= 0 && sy >= 0 && sx < src.W && sy < src.H {
						want = geomTestAt(src, sx, sy)
					}
					if g := geomTestAt(got, x, y); g != want {
						t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, want)
					}
				}
			}
		})
	}
}

func TestToTensor(t *testing.T) {
	t.Parallel()
	src := NewRGB(2, 1)
	copy(src.Pix, []byte{10, 20, 30, 40, 50, 60})
	gray := func(r, g, b float32) float32 { return 0.299*r + 0.587*g + 0.114*b }
	tests := []struct {
		name      string
		order     ChannelOrder
		mean, std float32
		n         int
		want      []float32
		wantErr   bool
	}{
		{name: "RGB", order: OrderRGB, mean: 0, std: 1, n: 6, want: []float32{10, 40, 20, 50, 30, 60}},
		{name: "BGR", order: OrderBGR, mean: 0, std: 1, n: 6, want: []float32{30, 60, 20, 50, 10, 40}},
		{name: "GRAY", order: OrderGray, mean: 0, std: 1, n: 2, want: []float32{gray(10, 20, 30), gray(40, 50, 60)}},
		{
			name: "RGB mean std", order: OrderRGB, mean: 127.5, std: 128, n: 6,
			want: []float32{-117.5 / 128, -87.5 / 128, -107.5 / 128, -77.5 / 128, -97.5 / 128, -67.5 / 128},
		},
		{
			name: "GRAY mean std", order: OrderGray, mean: 20, std: 0.5, n: 2,
			want: []float32{(gray(10, 20, 30) - 20) / 0.5, (gray(40, 50, 60) - 20) / 0.5},
		},
		{name: "RGB short dst", order: OrderRGB, mean: 0, std: 1, n: 5, wantErr: true},
		{name: "GRAY dst sized for RGB", order: OrderGray, mean: 0, std: 1, n: 6, wantErr: true},
		{name: "unknown order", order: "RGBA", mean: 0, std: 1, n: 6, wantErr: true},
		{name: "empty order", order: "", mean: 0, std: 1, n: 6, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dst := make([]float32, tt.n)
			err := ToTensor(src, tt.order, tt.mean, tt.std, dst)
			if tt.wantErr {
				if err == nil {
					t.Fatal("ToTensor succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("ToTensor: %v", err)
			}
			for i := range dst {
				if math.Abs(float64(dst[i]-tt.want[i])) > 1e-4 {
					t.Errorf("dst = %v, want %v", dst, tt.want)
					break
				}
			}
		})
	}
}

func TestGrayMatchesTensor(t *testing.T) {
	t.Parallel()
	src := geomTestNoise(7, 5, 6)
	g := Gray(src)
	if len(g) != 35 {
		t.Fatalf("len = %d, want 35", len(g))
	}
	for i := range g {
		want := 0.299*float32(src.Pix[3*i]) + 0.587*float32(src.Pix[3*i+1]) + 0.114*float32(src.Pix[3*i+2])
		if math.Abs(float64(g[i]-want)) > 1e-4 {
			t.Fatalf("Gray[%d] = %v, want %v", i, g[i], want)
		}
	}
}

func BenchmarkResizeArea(b *testing.B) {
	src := geomTestNoise(1920, 1280, 7)
	b.Run("1920x1280_to_1067x711", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ResizeArea(src, 1067, 711)
		}
	})
}

func BenchmarkWarp(b *testing.B) {
	src := geomTestNoise(640, 480, 8)
	// A face of ~120 px turned by 10°, aligned onto 112×112.
	m := geomTestSim(0.9, 0.17, -250, -180)
	b.Run("112x112", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Warp(src, m, 112, 112); err != nil {
				b.Fatal(err)
			}
		}
	})
}
