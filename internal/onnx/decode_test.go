package onnx

import (
	"math"
	"testing"

	"gabarit/internal/face"
)

func decTestNear(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func decTestBoxNear(a, b face.Box, tol float64) bool {
	return decTestNear(a.X, b.X, tol) && decTestNear(a.Y, b.Y, tol) &&
		decTestNear(a.W, b.W, tol) && decTestNear(a.H, b.H, tol)
}

func TestDecodeRFB(t *testing.T) {
	t.Parallel()
	const w, h = 320, 240
	tests := []struct {
		name     string
		scores   []float32
		boxes    []float32
		minScore float64
		want     []face.Detection
		wantErr  bool
	}{
		{name: "empty", scores: nil, boxes: nil, minScore: 0.5},
		{
			name:     "one face",
			scores:   []float32{0.1, 0.9},
			boxes:    []float32{0.1, 0.2, 0.3, 0.5},
			minScore: 0.5,
			want:     []face.Detection{{Box: face.Box{X: 32, Y: 48, W: 64, H: 72}, Score: 0.9}},
		},
		{
			name:     "column 0 is background",
			scores:   []float32{0.9, 0.1},
			boxes:    []float32{0.1, 0.2, 0.3, 0.5},
			minScore: 0.5,
		},
		{
			name:     "below threshold dropped, threshold itself kept",
			scores:   []float32{0.6, 0.4, 0.5, 0.5, 0.25, 0.75},
			boxes:    []float32{0, 0, 1, 1, 0.5, 0.5, 0.75, 1, 0.25, 0, 0.5, 0.25},
			minScore: 0.5,
			want: []face.Detection{
				{Box: face.Box{X: 160, Y: 120, W: 80, H: 120}, Score: 0.5},
				{Box: face.Box{X: 80, Y: 0, W: 80, H: 60}, Score: 0.75},
			},
		},
		{
			name:     "inverted and empty boxes dropped",
			scores:   []float32{0.05, 0.95, 0.05, 0.95, 0.05, 0.95, 0.1, 0.9},
			boxes:    []float32{0.5, 0.5, 0.4, 0.6, 0.5, 0.5, 0.6, 0.4, 0.5, 0.5, 0.5, 0.6, 0.25, 0.25, 0.5, 0.5},
			minScore: 0.5,
			want:     []face.Detection{{Box: face.Box{X: 80, Y: 60, W: 80, H: 60}, Score: 0.9}},
		},
		{name: "boxes too short", scores: []float32{0.1, 0.9, 0.1, 0.9}, boxes: []float32{0, 0, 1, 1}, wantErr: true},
		{name: "boxes too long", scores: []float32{0.1, 0.9}, boxes: []float32{0, 0, 1, 1, 0}, wantErr: true},
		{name: "odd score count", scores: []float32{0.1, 0.9, 0.3}, boxes: []float32{0, 0, 1, 1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeRFB(tt.scores, tt.boxes, w, h, tt.minScore)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decodeRFB = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeRFB: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("decodeRFB = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if !decTestBoxNear(got[i].Box, tt.want[i].Box, 1e-4) || !decTestNear(got[i].Score, tt.want[i].Score, 1e-6) {
					t.Errorf("detection %d = %+v, want %+v", i, got[i], tt.want[i])
				}
				if got[i].Points != nil {
					t.Errorf("detection %d has landmarks", i)
				}
			}
		})
	}
}

// yunetTestLevels returns zeroed YuNet outputs for a w×h input.
func yunetTestLevels(w, h int) []yunetLevel {
	var ls []yunetLevel
	for _, s := range []int{8, 16, 32} {
		n := (w / s) * (h / s)
		ls = append(ls, yunetLevel{
			stride: s,
			cls:    make([]float32, n),
			obj:    make([]float32, n),
			bbox:   make([]float32, 4*n),
			kps:    make([]float32, 10*n),
		})
	}
	return ls
}

func TestDecodeYuNet(t *testing.T) {
	t.Parallel()
	const w, h = 64, 32
	tests := []struct {
		name       string
		level      int // index into the levels (strides 8, 16, 32)
		col, row   int
		cls, obj   float32
		wantScore  float64
		wantDetect bool
	}{
		{name: "stride 16 cell (2,1)", level: 1, col: 2, row: 1, cls: 0.9, obj: 0.9, wantScore: 0.9, wantDetect: true},
		{name: "cls·obj 0.81 product", level: 1, col: 2, row: 1, cls: 0.81, obj: 1, wantScore: 0.9, wantDetect: true},
		{name: "stride 8 cell (7,3)", level: 0, col: 7, row: 3, cls: 0.81, obj: 0.81, wantScore: 0.81, wantDetect: true},
		{name: "stride 32 cell (1,0)", level: 2, col: 1, row: 0, cls: 1, obj: 0.64, wantScore: 0.8, wantDetect: true},
		{name: "clamped above 1", level: 2, col: 0, row: 0, cls: 1.5, obj: 1.2, wantScore: 1, wantDetect: true},
		{name: "below threshold", level: 1, col: 2, row: 1, cls: 0.3, obj: 0.3, wantDetect: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			levels := yunetTestLevels(w, h)
			l := levels[tt.level]
			cols := w / l.stride
			i := tt.row*cols + tt.col
			l.cls[i], l.obj[i] = tt.cls, tt.obj
			copy(l.bbox[4*i:], []float32{0.25, 0.5, float32(math.Log(2)), float32(math.Log(1.5))})
			kps := []float32{0.1, 0.2, 0.9, 0.2, 0.5, 0.6, 0.2, 0.9, 0.8, 0.9}
			copy(l.kps[10*i:], kps)

			got, err := decodeYuNet(levels, w, h, 0.5)
			if err != nil {
				t.Fatalf("decodeYuNet: %v", err)
			}
			if !tt.wantDetect {
				if len(got) != 0 {
					t.Fatalf("decodeYuNet = %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("decodeYuNet gave %d detections, want 1: %+v", len(got), got)
			}
			d := got[0]
			st := float64(l.stride)
			cx, cy := (float64(tt.col)+0.25)*st, (float64(tt.row)+0.5)*st
			bw, bh := 2*st, 1.5*st
			want := face.Box{X: cx - bw/2, Y: cy - bh/2, W: bw, H: bh}
			if !decTestBoxNear(d.Box, want, 1e-4) {
				t.Errorf("box = %+v, want %+v", d.Box, want)
			}
			if !decTestNear(d.Score, tt.wantScore, 1e-6) {
				t.Errorf("score = %v, want %v", d.Score, tt.wantScore)
			}
			if d.Points == nil {
				t.Fatal("no landmarks")
			}
			for k := range 5 {
				wx := (float64(kps[2*k]) + float64(tt.col)) * st
				wy := (float64(kps[2*k+1]) + float64(tt.row)) * st
				if p := d.Points[k]; !decTestNear(p.X, wx, 1e-4) || !decTestNear(p.Y, wy, 1e-4) {
					t.Errorf("landmark %d = %+v, want (%v, %v)", k, p, wx, wy)
				}
			}
		})
	}
}

func TestDecodeYuNetSizeMismatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(ls []yunetLevel)
		w, h   int
	}{
		{name: "cls short", w: 64, h: 32, mutate: func(ls []yunetLevel) { ls[0].cls = ls[0].cls[:31] }},
		{name: "obj long", w: 64, h: 32, mutate: func(ls []yunetLevel) { ls[1].obj = append(ls[1].obj, 0) }},
		{name: "bbox short", w: 64, h: 32, mutate: func(ls []yunetLevel) { ls[2].bbox = ls[2].bbox[:7] }},
		{name: "kps short", w: 64, h: 32, mutate: func(ls []yunetLevel) { ls[1].kps = ls[1].kps[:79] }},
		{name: "input size differs", w: 128, h: 32, mutate: func([]yunetLevel) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ls := yunetTestLevels(64, 32)
			tt.mutate(ls)
			if got, err := decodeYuNet(ls, tt.w, tt.h, 0.5); err == nil {
				t.Errorf("decodeYuNet = %v, want an error", got)
			}
		})
	}
}

func TestDecodeYuNetLevelSizes(t *testing.T) {
	t.Parallel()
	ls := yunetTestLevels(64, 32)
	for i, want := range []int{32, 8, 2} { // 8×4, 4×2, 2×1 cells
		if len(ls[i].cls) != want {
			t.Fatalf("stride %d: %d cells, want %d", ls[i].stride, len(ls[i].cls), want)
		}
	}
	got, err := decodeYuNet(ls, 64, 32, 0.5)
	if err != nil || len(got) != 0 {
		t.Errorf("all-zero outputs: %v, %v; want no detection and no error", got, err)
	}
}

func TestFivePoints(t *testing.T) {
	t.Parallel()
	var p [68]face.Point
	for i := range p {
		// Non-linear in the index, so that a wrong index set cannot average
		// to the right value by accident.
		p[i] = face.Point{X: float64(i * i), Y: 1000 - 3*float64(i) + float64(i%5)}
	}
	mean := func(idx ...int) face.Point {
		var q face.Point
		for _, i := range idx {
			q.X += p[i].X
			q.Y += p[i].Y
		}
		return face.Point{X: q.X / float64(len(idx)), Y: q.Y / float64(len(idx))}
	}
	want := face.Landmarks{
		mean(37, 38, 40, 41),
		mean(43, 44, 46, 47),
		p[30],
		mean(48, 60),
		mean(54, 64),
	}
	// Hand-computed check of the first two, independent of the helper.
	if want[0].X != (37*37+38*38+40*40+41*41)/4.0 || want[2] != (face.Point{X: 900, Y: 910}) {
		t.Fatalf("test helper is wrong: %+v", want)
	}
	got := fivePoints(p)
	for k := range got {
		if !decTestNear(got[k].X, want[k].X, 1e-9) || !decTestNear(got[k].Y, want[k].Y, 1e-9) {
			t.Errorf("point %d = %+v, want %+v", k, got[k], want[k])
		}
	}
}
