package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
)

// ---- fakes ----

// fakeDetector "detects" red square blobs: every 4-connected region of
// pixels that are at least half red (R−G ≥ 128 and R−B ≥ 128, so that blobs
// blended into the background by resizing keep their size) whose bounding
// box has both sides ≥ minSide becomes a detection of score 0.99.
type fakeDetector struct {
	w, h      int  // fixed input size; 0, 0 for dynamic
	landmarks bool // give five landmarks (unit-square face layout) per box
	minSide   int
	calls     atomic.Int64
}

func (d *fakeDetector) InputSize() (int, int) { return d.w, d.h }
func (d *fakeDetector) HasLandmarks() bool    { return d.landmarks }

func (d *fakeDetector) Detect(ctx context.Context, img *imageproc.RGB) ([]face.Detection, error) {
	d.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.w != 0 && (img.W != d.w || img.H != d.h) {
		return nil, fmt.Errorf("fakeDetector: input %d×%d, want %d×%d", img.W, img.H, d.w, d.h)
	}
	var out []face.Detection
	for _, b := range redBlobs(img) {
		if int(b.W) < d.minSide || int(b.H) < d.minSide {
			continue
		}
		det := face.Detection{Box: b, Score: 0.99}
		if d.landmarks {
			five := unitFive()
			for k := range five {
				five[k] = face.Point{X: b.X + five[k].X*b.W, Y: b.Y + five[k].Y*b.H}
			}
			det.Points = &five
		}
		out = append(out, det)
	}
	return out, nil
}

func isRed(p []byte) bool {
	return int(p[0])-int(p[1]) >= 128 && int(p[0])-int(p[2]) >= 128
}

// redBlobs returns the bounding box of each 4-connected region of red pixels.
func redBlobs(img *imageproc.RGB) []face.Box {
	w, h := img.W, img.H
	seen := make([]bool, w*h)
	var boxes []face.Box
	var stack []int
	for y := range h {
		row := img.Pix[y*w*3 : (y+1)*w*3]
		for x := range w {
			if seen[y*w+x] || !isRed(row[3*x:]) {
				continue
			}
			x0, y0, x1, y1 := x, y, x, y
			seen[y*w+x] = true
			stack = append(stack[:0], y*w+x)
			for len(stack) > 0 {
				i := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				px, py := i%w, i/w
				x0, y0, x1, y1 = min(x0, px), min(y0, py), max(x1, px), max(y1, py)
				for _, n := range [4][2]int{{px - 1, py}, {px + 1, py}, {px, py - 1}, {px, py + 1}} {
					nx, ny := n[0], n[1]
					if nx < 0 || ny < 0 || nx >= w || ny >= h || seen[ny*w+nx] {
						continue
					}
					if isRed(img.Pix[(ny*w+nx)*3:]) {
						seen[ny*w+nx] = true
						stack = append(stack, ny*w+nx)
					}
				}
			}
			boxes = append(boxes, face.Box{X: float64(x0), Y: float64(y0), W: float64(x1 - x0 + 1), H: float64(y1 - y0 + 1)})
		}
	}
	return boxes
}

// unitFive is the five-point face layout of fakeLandmarker, in the unit square.
func unitFive() face.Landmarks {
	return face.Landmarks{{X: 0.3, Y: 0.4}, {X: 0.7, Y: 0.4}, {X: 0.5, Y: 0.6}, {X: 0.35, Y: 0.8}, {X: 0.65, Y: 0.8}}
}

// fakeLandmarker returns the same plausible frontal 68-point face for every crop.
type fakeLandmarker struct {
	calls atomic.Int64
}

func (*fakeLandmarker) InputSize() int { return 64 }

func fake68() [68]face.Point {
	var p [68]face.Point
	for i := range p {
		p[i] = face.Point{X: 0.5, Y: 0.5}
	}
	// Jaw line (0–16) on a half ellipse.
	for i := 0; i <= 16; i++ {
		a := math.Pi * float64(i) / 16
		p[i] = face.Point{X: 0.5 - 0.45*math.Cos(a), Y: 0.45 + 0.5*math.Sin(a)}
	}
	// Eyelids around (0.3, 0.4) and (0.7, 0.4).
	for _, e := range []struct {
		first int
		cx    float64
	}{{36, 0.3}, {42, 0.7}} {
		p[e.first] = face.Point{X: e.cx - 0.06, Y: 0.4}
		p[e.first+1] = face.Point{X: e.cx - 0.02, Y: 0.38}
		p[e.first+2] = face.Point{X: e.cx + 0.02, Y: 0.38}
		p[e.first+3] = face.Point{X: e.cx + 0.06, Y: 0.4}
		p[e.first+4] = face.Point{X: e.cx + 0.02, Y: 0.42}
		p[e.first+5] = face.Point{X: e.cx - 0.02, Y: 0.42}
	}
	for i := 27; i <= 30; i++ { // nose bridge down to the tip
		p[i] = face.Point{X: 0.5, Y: 0.4 + 0.2*float64(i-27)/3}
	}
	p[48], p[60] = face.Point{X: 0.35, Y: 0.8}, face.Point{X: 0.35, Y: 0.8}
	p[54], p[64] = face.Point{X: 0.65, Y: 0.8}, face.Point{X: 0.65, Y: 0.8}
	return p
}

func (l *fakeLandmarker) Landmarks68(ctx context.Context, crops []*imageproc.RGB) ([][68]face.Point, error) {
	l.calls.Add(1)
	out := make([][68]face.Point, len(crops))
	for i, c := range crops {
		if c.W != 64 || c.H != 64 {
			return nil, fmt.Errorf("fakeLandmarker: crop %d is %d×%d", i, c.W, c.H)
		}
		out[i] = fake68()
	}
	return out, nil
}

func (*fakeLandmarker) FivePoints(p [68]face.Point) face.Landmarks { return testFivePoints(p) }

// testFivePoints is the 68→5 rule of internal/onnx.
func testFivePoints(p [68]face.Point) face.Landmarks {
	mean := func(idx ...int) face.Point {
		var q face.Point
		for _, i := range idx {
			q.X += p[i].X
			q.Y += p[i].Y
		}
		return face.Point{X: q.X / float64(len(idx)), Y: q.Y / float64(len(idx))}
	}
	return face.Landmarks{mean(37, 38, 40, 41), mean(43, 44, 46, 47), p[30], mean(48, 60), mean(54, 64)}
}

// fakeEmbedder makes an 8-value template from the mean R and G of each
// quadrant of the crop, and records the batch sizes it is given.
type fakeEmbedder struct {
	mu      sync.Mutex
	batches []int
}

func (*fakeEmbedder) Dim() int              { return 8 }
func (*fakeEmbedder) InputSize() (int, int) { return 112, 112 }

func (e *fakeEmbedder) Embed(ctx context.Context, crops []*imageproc.RGB) ([]face.Embedding, error) {
	e.mu.Lock()
	e.batches = append(e.batches, len(crops))
	e.mu.Unlock()
	out := make([]face.Embedding, len(crops))
	for i, c := range crops {
		if c.W != 112 || c.H != 112 {
			return nil, fmt.Errorf("fakeEmbedder: crop %d is %d×%d", i, c.W, c.H)
		}
		v := make([]float32, 8)
		for y := range c.H {
			for x := range c.W {
				q := 2*(2*y/c.H) + 2*x/c.W
				o := (y*c.W + x) * 3
				v[2*q] += float32(c.Pix[o])
				v[2*q+1] += float32(c.Pix[o+1])
			}
		}
		for k := range v {
			v[k] = v[k]/float32(c.W*c.H/4) + 1
		}
		out[i] = face.Normalize(v)
	}
	return out, nil
}

func (e *fakeEmbedder) recorded() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.batches...)
}

// ---- helpers ----

type square struct{ x, y, side int }

// redSquares returns a w×h grey image with pure red squares.
func redSquares(w, h int, sq ...square) *imageproc.RGB {
	img := imageproc.NewRGB(w, h)
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	for _, s := range sq {
		for y := max(s.y, 0); y < min(s.y+s.side, h); y++ {
			for x := max(s.x, 0); x < min(s.x+s.side, w); x++ {
				o := (y*w + x) * 3
				img.Pix[o], img.Pix[o+1], img.Pix[o+2] = 255, 0, 0
			}
		}
	}
	return img
}

func decoded(img *imageproc.RGB) *imageproc.Decoded {
	return &imageproc.Decoded{Img: img, Width: img.W, Height: img.H, Format: "test"}
}

func mustNew(t *testing.T, det Detector, lm Landmarker, emb Embedder, cfg Config) *Pipeline {
	t.Helper()
	p, err := New(det, lm, emb, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// matchFaces checks that faces holds exactly one face near each wanted box:
// corners and sides within tol(side) pixels.
func matchFaces(t *testing.T, faces []face.Face, want []face.Box, tol func(side float64) float64) {
	t.Helper()
	if len(faces) != len(want) {
		t.Fatalf("found %d faces, want %d: %+v", len(faces), len(want), boxesOf(faces))
	}
	used := make([]bool, len(faces))
	for _, w := range want {
		d := tol(w.W)
		found := false
		for i, f := range faces {
			b := f.Box
			if !used[i] && math.Abs(b.X-w.X) <= d && math.Abs(b.Y-w.Y) <= d &&
				math.Abs(b.W-w.W) <= d && math.Abs(b.H-w.H) <= d {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no face within %.1f px of %+v; got %+v", d, w, boxesOf(faces))
		}
	}
}

func boxesOf(faces []face.Face) []face.Box {
	bs := make([]face.Box, len(faces))
	for i, f := range faces {
		bs[i] = f.Box
	}
	return bs
}

// faceTol is ±3 px for small faces and ±2 % of the side for big ones.
func faceTol(side float64) float64 { return math.Max(3, 0.02*side) }

// ---- (a) pyramid ----

func TestPyramidSmallImageSingleLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		w, h      int
		wantScale float64
	}{
		{name: "250x250", w: 250, h: 250, wantScale: 240.0 / 250},
		{name: "200x200 inside the input gets a margin", w: 200, h: 200, wantScale: 240.0 / 200 * 0.85},
		{name: "320x240 exactly the input", w: 320, h: 240, wantScale: 0.85},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ls := pyramid(tt.w, tt.h, 320, 240, 40, 16, 96)
			if len(ls) != 1 || ls[0].tiled {
				t.Fatalf("pyramid = %+v, want one untiled level", ls)
			}
			if math.Abs(ls[0].scale-tt.wantScale) > 1e-12 {
				t.Errorf("scale = %v, want %v", ls[0].scale, tt.wantScale)
			}
		})
	}
}

func TestPyramidLargeImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		overlap    int
		wantTiled  int
		minFace    float64
		detMin     float64
		w, h       int
		tileW, tlH int
	}{
		{name: "overlap 96", overlap: 96, wantTiled: 1, minFace: 60, detMin: 16, w: 4000, h: 3000, tileW: 320, tlH: 240},
		{name: "overlap 48", overlap: 48, wantTiled: 2, minFace: 60, detMin: 16, w: 4000, h: 3000, tileW: 320, tlH: 240},
		{name: "overlap 32", overlap: 32, wantTiled: 2, minFace: 60, detMin: 16, w: 4000, h: 3000, tileW: 320, tlH: 240},
		{name: "overlap 24 min face 20", overlap: 24, wantTiled: 6, minFace: 20, detMin: 16, w: 4000, h: 3000, tileW: 320, tlH: 240},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ls := pyramid(tt.w, tt.h, tt.tileW, tt.tlH, tt.minFace, tt.detMin, tt.overlap)
			if len(ls) != tt.wantTiled+1 {
				t.Fatalf("pyramid = %+v, want %d tiled levels and a final untiled one", ls, tt.wantTiled)
			}
			if want := tt.detMin / tt.minFace; math.Abs(ls[0].scale-want) > 1e-12 {
				t.Errorf("finest scale = %v, want %v", ls[0].scale, want)
			}
			fit := math.Min(float64(tt.tileW)/float64(tt.w), float64(tt.tlH)/float64(tt.h))
			for i, l := range ls[:len(ls)-1] {
				if !l.tiled {
					t.Errorf("level %d not tiled", i)
				}
				if l.scale <= fit {
					t.Errorf("tiled level %d scale %v ≤ fit %v", i, l.scale, fit)
				}
				if i > 0 {
					if r := ls[i-1].scale / l.scale; math.Abs(r-float64(tt.overlap)/tt.detMin) > 1e-9 {
						t.Errorf("ratio %d = %v, want %v", i, r, float64(tt.overlap)/tt.detMin)
					}
				}
			}
			last := ls[len(ls)-1]
			if last.tiled || math.Abs(last.scale-fit) > 1e-12 {
				t.Errorf("last level = %+v, want untiled at %v", last, fit)
			}
		})
	}
}

// ---- (b) tileStarts ----

func TestTileStarts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		n, t, over int
		want       []int // nil: only check the invariants
	}{
		{name: "smaller than a tile", n: 100, t: 320, over: 96, want: []int{0}},
		{name: "exactly a tile", n: 320, t: 320, over: 96, want: []int{0}},
		{name: "one more than a tile", n: 321, t: 320, over: 96, want: []int{0, 1}},
		{name: "1067 by 320", n: 1067, t: 320, over: 96, want: []int{0, 224, 448, 672, 747}},
		{name: "800 by 240", n: 800, t: 240, over: 96, want: []int{0, 144, 288, 432, 560}},
		{name: "exact fit", n: 544, t: 320, over: 96, want: []int{0, 224}},
		{name: "large", n: 5000, t: 640, over: 100},
		{name: "zero overlap", n: 1000, t: 100, over: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tileStarts(tt.n, tt.t, tt.over)
			if tt.want != nil && fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("tileStarts(%d, %d, %d) = %v, want %v", tt.n, tt.t, tt.over, got, tt.want)
			}
			if len(got) == 0 || got[0] != 0 {
				t.Fatalf("tiles %v do not start at 0", got)
			}
			if tt.n <= tt.t {
				return
			}
			if end := got[len(got)-1] + tt.t; end != tt.n {
				t.Errorf("last tile ends at %d, want %d", end, tt.n)
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Errorf("tiles %v not increasing", got)
				}
				if ov := got[i-1] + tt.t - got[i]; ov < tt.over {
					t.Errorf("tiles %d and %d overlap by %d < %d", i-1, i, ov, tt.over)
				}
			}
		})
	}
}

// ---- (c, d) end to end ----

func TestProcessFindsSmallAndLargeFaces(t *testing.T) {
	t.Parallel()
	full := redSquares(4000, 3000, square{3100, 2200, 60}, square{500, 400, 900})
	half := redSquares(2000, 1500, square{1550, 1100, 30}, square{250, 200, 450})
	want := []face.Box{{X: 3100, Y: 2200, W: 60, H: 60}, {X: 500, Y: 400, W: 900, H: 900}}
	tests := []struct {
		name string
		det  *fakeDetector
		d    *imageproc.Decoded
	}{
		{name: "fixed input", det: &fakeDetector{w: 320, h: 240, minSide: 10}, d: decoded(full)},
		{name: "dynamic input", det: &fakeDetector{minSide: 10}, d: decoded(full)},
		{
			name: "half-size decode",
			det:  &fakeDetector{w: 320, h: 240, minSide: 10},
			d:    &imageproc.Decoded{Img: half, Width: 4000, Height: 3000, Format: "test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emb := &fakeEmbedder{}
			p := mustNew(t, tt.det, &fakeLandmarker{}, emb, Config{MinFace: 60})
			res, err := p.Process(context.Background(), tt.d)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if res.Width != 4000 || res.Height != 3000 || res.Format != "test" {
				t.Errorf("result header = %d×%d %q", res.Width, res.Height, res.Format)
			}
			matchFaces(t, res.Faces, want, faceTol)
			for i, f := range res.Faces {
				if f.Score != 0.99 {
					t.Errorf("face %d score %v", i, f.Score)
				}
				if f.Quality < 0 || f.Quality > 1 || math.IsNaN(f.Quality) {
					t.Errorf("face %d quality %v outside [0,1]", i, f.Quality)
				}
				if len(f.Embedding) != 8 {
					t.Errorf("face %d embedding length %d, want 8", i, len(f.Embedding))
				}
				// Landmarks: the fake layout scaled into the square crop of
				// side box height, in original pixels.
				b := f.Box
				for k, u := range unitFive() {
					wx, wy := b.X+b.W/2-b.H/2+u.X*b.H, b.Y+u.Y*b.H
					if d := math.Hypot(f.Landmarks[k].X-wx, f.Landmarks[k].Y-wy); d > 1e-6*b.H+1e-6 {
						t.Errorf("face %d landmark %d = %+v, want (%.2f, %.2f)", i, k, f.Landmarks[k], wx, wy)
					}
				}
			}
			for i := 1; i < len(res.Faces); i++ {
				if res.Faces[i].Score > res.Faces[i-1].Score {
					t.Errorf("faces not sorted by descending score")
				}
			}
			if got := emb.recorded(); len(got) != 1 || got[0] != 2 {
				t.Errorf("embedder batches = %v, want [2]", got)
			}
		})
	}
}

// ---- (e) tile borders ----

func TestProcessFaceOnTileBorderReportedOnce(t *testing.T) {
	t.Parallel()
	// MinFace 32 → finest level at scale 0.5: 600×450, tiles at x = 0, 224,
	// 280 and y = 0, 144, 210. The face covers level x 308..348, across the
	// right edge of tile x=0 (which sees only 12 px of it, IoU 0.3 with the
	// whole face, so NMS alone would keep both), whole in the other two.
	img := redSquares(1200, 900, square{616, 400, 80})
	if xs := tileStarts(600, 320, 96); fmt.Sprint(xs) != "[0 224 280]" {
		t.Fatalf("test premise: tile starts %v", xs)
	}
	det := &fakeDetector{w: 320, h: 240, minSide: 10}
	p := mustNew(t, det, &fakeLandmarker{}, nil, Config{MinFace: 32, SkipEmbedding: true})
	res, err := p.Process(context.Background(), decoded(img))
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	matchFaces(t, res.Faces, []face.Box{{X: 616, Y: 400, W: 80, H: 80}}, faceTol)
	if got := det.calls.Load(); got != 9+1 {
		t.Errorf("detector calls = %d, want 9 tiles + 1 whole image", got)
	}
}

func TestDetectLevelDropsCutFaces(t *testing.T) {
	t.Parallel()
	// Direct check at one tiled level: a face cut by the tile edge is not
	// reported from the tile that cuts it.
	img := redSquares(600, 450, square{308, 200, 40})
	det := &fakeDetector{w: 320, h: 240, minSide: 1}
	p := mustNew(t, det, &fakeLandmarker{}, nil, Config{SkipEmbedding: true})
	dets, _, err := p.detectLevel(context.Background(), img, nil, level{scale: 1, tiled: true, maxH: math.Inf(1)}, 320, 240)
	if err != nil {
		t.Fatalf("detectLevel: %v", err)
	}
	for _, d := range dets {
		if d.Box != (face.Box{X: 308, Y: 200, W: 40, H: 40}) {
			t.Errorf("cut or misplaced detection %+v", d.Box)
		}
	}
	if len(dets) == 0 {
		t.Error("the face was not found in any tile")
	}
}

// ---- detector landmarks ----

func TestProcessDetectorLandmarks(t *testing.T) {
	t.Parallel()
	img := redSquares(800, 600, square{200, 150, 200})
	for _, tt := range []struct {
		name string
		det  *fakeDetector
	}{
		{name: "fixed", det: &fakeDetector{w: 320, h: 240, minSide: 10, landmarks: true}},
		{name: "dynamic", det: &fakeDetector{minSide: 10, landmarks: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, tt.det, nil, &fakeEmbedder{}, Config{})
			res, err := p.Process(context.Background(), decoded(img))
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			matchFaces(t, res.Faces, []face.Box{{X: 200, Y: 150, W: 200, H: 200}}, faceTol)
			if len(res.Faces) != 1 {
				return
			}
			f := res.Faces[0]
			for k, u := range unitFive() {
				wx, wy := 200+u.X*200, 150+u.Y*200
				if d := math.Hypot(f.Landmarks[k].X-wx, f.Landmarks[k].Y-wy); d > 4 {
					t.Errorf("landmark %d = %+v, want near (%v, %v)", k, f.Landmarks[k], wx, wy)
				}
			}
		})
	}
}

// ---- (f) NMS ----

func det(x, y, w, h, score float64) face.Detection {
	return face.Detection{Box: face.Box{X: x, Y: y, W: w, H: h}, Score: score}
}

func TestNMS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []face.Detection
		iou  float64
		want []face.Detection
	}{
		{name: "empty", in: nil, iou: 0.4, want: []face.Detection{}},
		{
			name: "keeps highest score",
			in:   []face.Detection{det(0, 0, 10, 10, 0.6), det(1, 1, 10, 10, 0.9)},
			iou:  0.4,
			want: []face.Detection{det(1, 1, 10, 10, 0.9)},
		},
		{
			name: "keeps disjoint, ordered by score",
			in:   []face.Detection{det(0, 0, 10, 10, 0.5), det(100, 0, 10, 10, 0.9), det(0, 100, 10, 10, 0.7)},
			iou:  0.4,
			want: []face.Detection{det(100, 0, 10, 10, 0.9), det(0, 100, 10, 10, 0.7), det(0, 0, 10, 10, 0.5)},
		},
		{
			name: "IoU equal to threshold kept",
			in:   []face.Detection{det(0, 0, 10, 10, 0.9), det(0, 0, 10, 5, 0.8)},
			iou:  0.5,
			want: []face.Detection{det(0, 0, 10, 10, 0.9), det(0, 0, 10, 5, 0.8)},
		},
		{
			name: "IoU above threshold suppressed",
			in:   []face.Detection{det(0, 0, 10, 10, 0.9), det(0, 0, 10, 5, 0.8)},
			iou:  0.4,
			want: []face.Detection{det(0, 0, 10, 10, 0.9)},
		},
		{
			name: "suppressed box does not suppress others",
			// B overlaps A and C; A beats B; C overlaps only B, so C stays.
			in:   []face.Detection{det(0, 0, 10, 10, 0.9), det(5, 0, 10, 10, 0.8), det(10, 0, 10, 10, 0.7)},
			iou:  0.3,
			want: []face.Detection{det(0, 0, 10, 10, 0.9), det(10, 0, 10, 10, 0.7)},
		},
		{
			name: "stable for equal scores",
			in: []face.Detection{
				det(50, 0, 10, 10, 0.8), det(0, 0, 10, 10, 0.8), det(0, 1, 10, 10, 0.8), det(100, 0, 10, 10, 0.8),
			},
			iou:  0.4,
			want: []face.Detection{det(50, 0, 10, 10, 0.8), det(0, 0, 10, 10, 0.8), det(100, 0, 10, 10, 0.8)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := append([]face.Detection(nil), tt.in...)
			got := NMS(in, tt.iou)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("NMS = %v, want %v", got, tt.want)
			}
			if fmt.Sprint(in) != fmt.Sprint(tt.in) {
				t.Errorf("NMS modified its input: %v", in)
			}
		})
	}
}

// ---- (g) Align ----

func noise(w, h int, seed uint64) *imageproc.RGB {
	r := rand.New(rand.NewPCG(seed, 7))
	m := imageproc.NewRGB(w, h)
	for i := range m.Pix {
		m.Pix[i] = byte(r.IntN(256))
	}
	return m
}

func templateLandmarks(m imageproc.Affine) face.Landmarks {
	var lm face.Landmarks
	for k, p := range ArcFaceTemplate {
		x, y := m.Apply(p[0], p[1])
		lm[k] = face.Point{X: x, Y: y}
	}
	return lm
}

func TestAlignIdentity(t *testing.T) {
	t.Parallel()
	img := noise(112, 112, 1)
	crop, m, err := Align(img, templateLandmarks(imageproc.Affine{1, 0, 0, 0, 1, 0}), 112, 112)
	if err != nil {
		t.Fatalf("Align: %v", err)
	}
	for i, want := range []float64{1, 0, 0, 0, 1, 0} {
		if math.Abs(m[i]-want) > 1e-9 {
			t.Fatalf("transform = %v, want identity", m)
		}
	}
	if crop.W != 112 || crop.H != 112 {
		t.Fatalf("crop %d×%d", crop.W, crop.H)
	}
	if string(crop.Pix) != string(img.Pix) {
		diff := 0
		for i := range crop.Pix {
			if crop.Pix[i] != img.Pix[i] {
				diff++
			}
		}
		t.Errorf("identity alignment changed %d of %d samples", diff, len(img.Pix))
	}
}

func TestAlignRotatedScaled(t *testing.T) {
	t.Parallel()
	img := noise(400, 300, 2)
	tests := []struct {
		name        string
		scale, turn float64
		w, h        int
	}{
		{name: "rotated 25° scaled 1.8", scale: 1.8, turn: 25 * math.Pi / 180, w: 112, h: 112},
		{name: "rotated -40° scaled 0.7", scale: 0.7, turn: -40 * math.Pi / 180, w: 112, h: 112},
		{name: "upright 224", scale: 2.5, turn: 0, w: 224, h: 224},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := tt.scale*math.Cos(tt.turn), tt.scale*math.Sin(tt.turn)
			lm := templateLandmarks(imageproc.Affine{a, -b, 150, b, a, 80})
			crop, m, err := Align(img, lm, tt.w, tt.h)
			if err != nil {
				t.Fatalf("Align: %v", err)
			}
			if crop.W != tt.w || crop.H != tt.h {
				t.Fatalf("crop %d×%d, want %d×%d", crop.W, crop.H, tt.w, tt.h)
			}
			for k, p := range lm {
				x, y := m.Apply(p.X, p.Y)
				wx, wy := ArcFaceTemplate[k][0]*float64(tt.w)/112, ArcFaceTemplate[k][1]*float64(tt.h)/112
				if d := math.Hypot(x-wx, y-wy); d > 0.5 {
					t.Errorf("landmark %d lands %.3f px from the template", k, d)
				}
			}
			// The crop pixel at a template point samples the image at the landmark.
			inv, err := m.Invert()
			if err != nil {
				t.Fatal(err)
			}
			sx, sy := inv.Apply(float64(tt.w)/2, float64(tt.h)/2)
			if sx < 0 || sy < 0 || sx >= float64(img.W) || sy >= float64(img.H) {
				t.Errorf("crop centre maps outside the image: (%v, %v)", sx, sy)
			}
		})
	}
}

func TestAlignDegenerate(t *testing.T) {
	t.Parallel()
	var lm face.Landmarks
	for k := range lm {
		lm[k] = face.Point{X: 10, Y: 10}
	}
	if _, _, err := Align(noise(20, 20, 3), lm, 112, 112); err == nil {
		t.Error("Align with five identical landmarks succeeded")
	}
}

// ---- (h) quality ----

// qualityFace returns a face whose eyes are iod px apart around (200, 200)
// with the nose shifted sideways by yaw × iod.
func qualityFace(iod, yaw float64) face.Face {
	return face.Face{Landmarks: face.Landmarks{
		{X: 200 - iod/2, Y: 200},
		{X: 200 + iod/2, Y: 200},
		{X: 200 + yaw*iod, Y: 200 + 0.6*iod},
		{X: 200 - 0.4*iod, Y: 200 + 1.1*iod},
		{X: 200 + 0.4*iod, Y: 200 + 1.1*iod},
	}}
}

func TestQuality(t *testing.T) {
	t.Parallel()
	sharp := noise(400, 400, 4)
	flat := redSquares(400, 400)
	tests := []struct {
		name    string
		img     *imageproc.RGB
		f       face.Face
		aligned bool
		lo, hi  float64
	}{
		{name: "tiny face", img: sharp, f: qualityFace(6, 0), aligned: true, lo: 0, hi: 0},
		{name: "frontal sharp large", img: sharp, f: qualityFace(40, 0), aligned: true, lo: 0.5, hi: 1},
		{name: "mid-size", img: sharp, f: qualityFace(20, 0), aligned: true, lo: 0.2, hi: 0.51},
		{name: "nose far off midline", img: sharp, f: qualityFace(40, 0.4), aligned: true, lo: 0, hi: 0.15},
		{name: "nose beyond an eye", img: sharp, f: qualityFace(40, 0.6), aligned: true, lo: 0, hi: 0},
		{name: "blurred", img: flat, f: qualityFace(40, 0), aligned: true, lo: 0, hi: 0},
		{name: "eyes on one point", img: sharp, f: qualityFace(0, 0), aligned: false, lo: 0, hi: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.f
			crop := imageproc.ResizeArea(tt.img, 112, 112)
			if tt.aligned {
				c, _, err := Align(tt.img, f.Landmarks, 112, 112)
				if err != nil {
					t.Fatalf("Align: %v", err)
				}
				crop = c
			}
			q := quality(&f, crop)
			if math.IsNaN(q) || q < 0 || q > 1 {
				t.Fatalf("quality = %v outside [0,1]", q)
			}
			if q < tt.lo-1e-9 || q > tt.hi+1e-9 {
				t.Errorf("quality = %v, want in [%v, %v]", q, tt.lo, tt.hi)
			}
		})
	}
}

// ---- (i) ForEach ----

func TestForEach(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 100} {
		for _, workers := range []int{1, 3, 8} {
			t.Run(fmt.Sprintf("n=%d/workers=%d", n, workers), func(t *testing.T) {
				t.Parallel()
				calls := make([]atomic.Int32, n)
				var emitted []int
				ForEach(context.Background(), n, workers,
					func(_ context.Context, i int) int { calls[i].Add(1); return i * i },
					func(i int, v int) {
						if v != i*i {
							t.Errorf("emit(%d, %d), want value %d", i, v, i*i)
						}
						emitted = append(emitted, i)
					})
				if len(emitted) != n {
					t.Fatalf("emitted %d results, want %d", len(emitted), n)
				}
				for i, e := range emitted {
					if e != i {
						t.Fatalf("emitted out of order: %v", emitted)
					}
				}
				for i := range calls {
					if c := calls[i].Load(); c != 1 {
						t.Errorf("fn(%d) called %d times", i, c)
					}
				}
			})
		}
	}
}

// runWithWatchdog fails the test if f does not return within a generous
// limit (a deadlock), instead of hanging until the global test timeout.
func runWithWatchdog(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: did not return")
	}
}

func TestForEachCancelled(t *testing.T) {
	t.Parallel()
	const n = 1000
	tests := []struct {
		name     string
		cancelAt int // cancel from fn at this index; -1: cancelled before the call
	}{
		{name: "cancelled before", cancelAt: -1},
		{name: "cancelled while running", cancelAt: 10},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, workers), func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tt.cancelAt < 0 {
					cancel()
				}
				var emitted []int
				var started, atCancel atomic.Int64
				runWithWatchdog(t, func() {
					ForEach(ctx, n, workers,
						func(_ context.Context, i int) int {
							c := started.Add(1)
							if i == tt.cancelAt {
								atCancel.Store(c)
								cancel()
							}
							return i
						},
						func(i int, _ int) { emitted = append(emitted, i) })
				})
				for i, e := range emitted {
					if e != i {
						t.Fatalf("emitted %v, want a prefix of 0, 1, 2, …", emitted)
					}
				}
				// After cancel returns, the feeder hands out at most the one
				// index it may be sending, and each worker may still start
				// the one it already received.
				if after := started.Load() - atCancel.Load(); after > int64(workers)+1 {
					t.Errorf("%d calls started after the cancellation with %d workers, want ≤ %d", after, workers, workers+1)
				}
				if tt.cancelAt < 0 && started.Load() != 0 {
					t.Errorf("%d calls started on a context cancelled beforehand, want 0", started.Load())
				}
			})
		}
	}
}

// ---- (j) New ----

func TestNew(t *testing.T) {
	t.Parallel()
	plain := &fakeDetector{w: 320, h: 240}
	withLM := &fakeDetector{w: 320, h: 240, landmarks: true}
	tests := []struct {
		name    string
		det     Detector
		lm      Landmarker
		emb     Embedder
		cfg     Config
		wantErr bool
	}{
		{name: "nil detector", det: nil, lm: &fakeLandmarker{}, emb: &fakeEmbedder{}, wantErr: true},
		{name: "no landmarks anywhere", det: plain, lm: nil, emb: &fakeEmbedder{}, wantErr: true},
		{name: "detector landmarks suffice", det: withLM, lm: nil, emb: &fakeEmbedder{}},
		{name: "landmarker", det: plain, lm: &fakeLandmarker{}, emb: &fakeEmbedder{}},
		{name: "nil embedder", det: plain, lm: &fakeLandmarker{}, emb: nil, wantErr: true},
		{name: "nil embedder skipped", det: plain, lm: &fakeLandmarker{}, emb: nil, cfg: Config{SkipEmbedding: true}},
		{name: "nil everything but skip", det: withLM, cfg: Config{SkipEmbedding: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(tt.det, tt.lm, tt.emb, tt.cfg)
			if tt.wantErr {
				if err == nil || p != nil {
					t.Errorf("New = %v, %v; want an error", p, err)
				}
				return
			}
			if err != nil || p == nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestEmbedAlignedWithoutEmbedder(t *testing.T) {
	t.Parallel()
	p := mustNew(t, &fakeDetector{landmarks: true}, nil, nil, Config{SkipEmbedding: true})
	if _, err := p.EmbedAligned(context.Background(), nil); err == nil {
		t.Error("EmbedAligned without an embedder succeeded")
	}
}

// ---- (k, l) batching and SkipEmbedding ----

func TestEmbedderBatchPerImage(t *testing.T) {
	t.Parallel()
	emb := &fakeEmbedder{}
	p := mustNew(t, &fakeDetector{w: 320, h: 240, minSide: 10}, &fakeLandmarker{}, emb, Config{})
	images := []struct {
		img   *imageproc.RGB
		faces int
	}{
		{redSquares(640, 480, square{40, 40, 100}, square{300, 60, 120}, square{100, 300, 90}), 3},
		{redSquares(640, 480), 0},
		{redSquares(640, 480, square{250, 150, 150}), 1},
		{redSquares(640, 480, square{20, 20, 80}, square{500, 350, 100}), 2},
	}
	for i, im := range images {
		res, err := p.Process(context.Background(), decoded(im.img))
		if err != nil {
			t.Fatalf("image %d: Process: %v", i, err)
		}
		if len(res.Faces) != im.faces {
			t.Fatalf("image %d: %d faces, want %d", i, len(res.Faces), im.faces)
		}
		for j, f := range res.Faces {
			if len(f.Embedding) != 8 {
				t.Errorf("image %d face %d: embedding length %d", i, j, len(f.Embedding))
			}
		}
	}
	if got := emb.recorded(); fmt.Sprint(got) != "[3 1 2]" {
		t.Errorf("embedder batches = %v, want [3 1 2] (one per image with faces)", got)
	}
}

func TestSkipEmbedding(t *testing.T) {
	t.Parallel()
	emb := &fakeEmbedder{}
	p := mustNew(t, &fakeDetector{w: 320, h: 240, minSide: 10}, &fakeLandmarker{}, emb, Config{SkipEmbedding: true})
	res, err := p.Process(context.Background(), decoded(redSquares(640, 480, square{100, 100, 150}, square{400, 200, 120})))
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(res.Faces) != 2 {
		t.Fatalf("%d faces, want 2", len(res.Faces))
	}
	for i, f := range res.Faces {
		if f.Embedding != nil {
			t.Errorf("face %d has an embedding", i)
		}
		if f.Quality < 0 || f.Quality > 1 {
			t.Errorf("face %d quality %v", i, f.Quality)
		}
	}
	if got := emb.recorded(); len(got) != 0 {
		t.Errorf("embedder called with batches %v despite SkipEmbedding", got)
	}
}

// ---- errors ----

type errDetector struct{ fakeDetector }

var errBoom = errors.New("boom")

func (*errDetector) Detect(context.Context, *imageproc.RGB) ([]face.Detection, error) {
	return nil, errBoom
}

func TestProcessErrors(t *testing.T) {
	t.Parallel()
	p := mustNew(t, &errDetector{fakeDetector{w: 320, h: 240}}, &fakeLandmarker{}, &fakeEmbedder{}, Config{})
	if _, err := p.Process(context.Background(), decoded(redSquares(100, 100))); !errors.Is(err, errBoom) {
		t.Errorf("detector error: got %v, want %v", err, errBoom)
	}
	bad := &imageproc.Decoded{Img: &imageproc.RGB{W: 10, H: 10, Pix: make([]byte, 5)}, Width: 10, Height: 10}
	if _, err := p.Process(context.Background(), bad); err == nil {
		t.Error("malformed image accepted")
	}
}
