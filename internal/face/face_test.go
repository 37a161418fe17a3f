package face

import (
	"errors"
	"math"
	"testing"
)

func TestBoxArea(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		b    Box
		want float64
	}{
		{name: "unit", b: Box{X: 3, Y: 4, W: 1, H: 1}, want: 1},
		{name: "rectangle", b: Box{X: -5, Y: 2, W: 4, H: 2.5}, want: 10},
		{name: "zero width", b: Box{X: 1, Y: 1, W: 0, H: 5}, want: 0},
		{name: "zero height", b: Box{X: 1, Y: 1, W: 5, H: 0}, want: 0},
		{name: "negative width", b: Box{W: -2, H: 3}, want: 0},
		{name: "negative both", b: Box{W: -2, H: -3}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.b.Area(); got != tt.want {
				t.Errorf("%+v.Area() = %v, want %v", tt.b, got, tt.want)
			}
		})
	}
}

func TestBoxIoU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b Box
		want float64
	}{
		{name: "disjoint", a: Box{0, 0, 10, 10}, b: Box{20, 20, 5, 5}, want: 0},
		{name: "disjoint in x only", a: Box{0, 0, 10, 10}, b: Box{11, 0, 10, 10}, want: 0},
		{name: "identical", a: Box{3, 4, 10, 20}, b: Box{3, 4, 10, 20}, want: 1},
		{name: "contained", a: Box{0, 0, 4, 4}, b: Box{1, 1, 2, 2}, want: 4.0 / 16},
		{name: "half overlap", a: Box{0, 0, 10, 10}, b: Box{5, 0, 10, 10}, want: 50.0 / 150},
		{name: "touching vertical edge", a: Box{0, 0, 10, 10}, b: Box{10, 0, 10, 10}, want: 0},
		{name: "touching horizontal edge", a: Box{0, 0, 10, 10}, b: Box{0, 10, 10, 10}, want: 0},
		{name: "touching corner", a: Box{0, 0, 10, 10}, b: Box{10, 10, 10, 10}, want: 0},
		{name: "zero-size inside", a: Box{0, 0, 10, 10}, b: Box{5, 5, 0, 0}, want: 0},
		{name: "both zero-size", a: Box{5, 5, 0, 0}, b: Box{5, 5, 0, 0}, want: 0},
		{name: "zero width line", a: Box{0, 0, 10, 10}, b: Box{5, 0, 0, 10}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.a.IoU(tt.b)
			if math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("%+v.IoU(%+v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if rev := tt.b.IoU(tt.a); math.Abs(rev-got) > 1e-12 {
				t.Errorf("IoU not symmetric: %v vs %v", got, rev)
			}
			if got < 0 || got > 1 || math.IsNaN(got) {
				t.Errorf("IoU = %v outside [0,1]", got)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []float32
		want []float32
	}{
		{name: "3-4-5", in: []float32{3, 4}, want: []float32{0.6, 0.8}},
		{name: "negative", in: []float32{0, -2, 0}, want: []float32{0, -1, 0}},
		{name: "already unit", in: []float32{1, 0, 0, 0}, want: []float32{1, 0, 0, 0}},
		{name: "zero vector unchanged", in: []float32{0, 0, 0}, want: []float32{0, 0, 0}},
		{name: "empty", in: []float32{}, want: []float32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := append([]float32(nil), tt.in...)
			got := Normalize(v)
			if len(got) != len(tt.want) {
				t.Fatalf("len = %d, want %d", len(got), len(tt.want))
			}
			var norm float64
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
					t.Errorf("Normalize(%v)[%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
				}
				norm += float64(got[i]) * float64(got[i])
			}
			allZero := true
			for _, x := range tt.in {
				allZero = allZero && x == 0
			}
			if !allZero && math.Abs(norm-1) > 1e-6 {
				t.Errorf("norm² = %v, want 1", norm)
			}
			if len(v) > 0 && &got[0] != &v[0] {
				t.Errorf("Normalize did not work in place")
			}
		})
	}
}

func TestCosine(t *testing.T) {
	t.Parallel()
	s := float32(1 / math.Sqrt2)
	tests := []struct {
		name    string
		a, b    Embedding
		want    float64
		wantErr error
	}{
		{name: "mismatched lengths", a: Embedding{1, 0}, b: Embedding{1, 0, 0}, wantErr: ErrModelMismatch},
		{name: "both empty", a: Embedding{}, b: Embedding{}, wantErr: ErrModelMismatch},
		{name: "one nil", a: nil, b: Embedding{1}, wantErr: ErrModelMismatch},
		{name: "orthogonal", a: Embedding{1, 0}, b: Embedding{0, 1}, want: 0},
		{name: "identical", a: Embedding{s, s}, b: Embedding{s, s}, want: 1},
		{name: "opposite", a: Embedding{0, 1, 0}, b: Embedding{0, -1, 0}, want: -1},
		{name: "45 degrees", a: Embedding{1, 0}, b: Embedding{s, s}, want: 1 / math.Sqrt2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.a.Cosine(tt.b)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Cosine err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Cosine: %v", err)
			}
			if math.Abs(got-tt.want) > 1e-6 {
				t.Errorf("Cosine = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLargest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		faces []Face
		want  int
	}{
		{name: "nil", faces: nil, want: -1},
		{name: "empty", faces: []Face{}, want: -1},
		{name: "single", faces: []Face{{Box: Box{W: 1, H: 1}}}, want: 0},
		{name: "single empty box", faces: []Face{{Box: Box{}}}, want: 0},
		{name: "last largest", faces: []Face{
			{Box: Box{W: 10, H: 10}}, {Box: Box{W: 5, H: 30}}, {Box: Box{W: 20, H: 20}},
		}, want: 2},
		{name: "tie keeps first", faces: []Face{
			{Box: Box{W: 2, H: 2}}, {Box: Box{W: 4, H: 4}}, {Box: Box{X: 9, W: 4, H: 4}},
		}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Largest(tt.faces); got != tt.want {
				t.Errorf("Largest = %d, want %d", got, tt.want)
			}
		})
	}
}

// centred returns a face with an s×s box centred on (cx, cy).
func centred(cx, cy, s float64) Face {
	return Face{Box: Box{X: cx - s/2, Y: cy - s/2, W: s, H: s}}
}

func TestPrimary(t *testing.T) {
	t.Parallel()
	const w, h = 1000, 1000
	tests := []struct {
		name  string
		faces []Face
		want  int
	}{
		{name: "empty", faces: nil, want: -1},
		{name: "single", faces: []Face{centred(10, 10, 5)}, want: 0},
		{
			name:  "central beats slightly larger corner face",
			faces: []Face{centred(60, 60, 110), centred(500, 500, 100)},
			want:  1,
		},
		{
			name:  "much larger off-centre face wins",
			faces: []Face{centred(500, 500, 100), centred(150, 150, 300)},
			want:  1,
		},
		{
			name:  "same size prefers the more central",
			faces: []Face{centred(100, 900, 80), centred(450, 520, 80), centred(900, 100, 80)},
			want:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Primary(tt.faces, w, h); got != tt.want {
				t.Errorf("Primary = %d, want %d", got, tt.want)
			}
		})
	}
}
