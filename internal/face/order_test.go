package face

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestReadingOrder(t *testing.T) {
	t.Parallel()
	// Each face is named by the number a reader gives it; the boxes come
	// in another order.
	type named struct {
		n   int
		box Box
	}
	tests := []struct {
		name  string
		faces []named
	}{
		{name: "none"},
		{name: "one", faces: []named{{1, Box{X: 10, Y: 10, W: 50, H: 50}}}},
		{name: "one row, right to left as detected", faces: []named{
			{3, Box{X: 900, Y: 100, W: 120, H: 120}},
			{1, Box{X: 100, Y: 130, W: 120, H: 120}},
			{2, Box{X: 500, Y: 80, W: 120, H: 120}},
		}},
		{name: "a small face higher in a row of large ones", faces: []named{
			{2, Box{X: 400, Y: 120, W: 40, H: 40}}, // centre 140: above the others' centres, inside their boxes
			{1, Box{X: 100, Y: 100, W: 150, H: 150}},
			{3, Box{X: 700, Y: 110, W: 150, H: 150}},
		}},
		{name: "two rows, back row higher", faces: []named{
			{5, Box{X: 620, Y: 400, W: 130, H: 130}},
			{1, Box{X: 50, Y: 60, W: 110, H: 110}},
			{4, Box{X: 150, Y: 420, W: 130, H: 130}},
			{3, Box{X: 700, Y: 40, W: 110, H: 110}},
			{2, Box{X: 380, Y: 80, W: 110, H: 110}},
		}},
		{name: "a column", faces: []named{
			{3, Box{X: 100, Y: 500, W: 80, H: 80}},
			{1, Box{X: 110, Y: 10, W: 80, H: 80}},
			{2, Box{X: 90, Y: 250, W: 80, H: 80}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			faces := make([]Face, len(tt.faces))
			for i, f := range tt.faces {
				faces[i] = Face{Box: f.box, Score: float64(f.n)}
			}
			want := slices.Clone(faces)
			slices.SortFunc(want, func(a, b Face) int { return int(a.Score - b.Score) })
			ReadingOrder(faces)
			if !slices.Equal(numbers(faces), numbers(want)) {
				t.Fatalf("order %v, want %v", numbers(faces), numbers(want))
			}
			// The order depends only on the boxes: shuffled and sorted
			// again, or sorted twice, it is the same.
			for range 5 {
				rand.Shuffle(len(faces), func(i, j int) { faces[i], faces[j] = faces[j], faces[i] })
				ReadingOrder(faces)
				if !slices.Equal(numbers(faces), numbers(want)) {
					t.Fatalf("after a shuffle: order %v, want %v", numbers(faces), numbers(want))
				}
			}
		})
	}
}

// numbers are the faces' names (kept in Score by TestReadingOrder).
func numbers(faces []Face) []int {
	out := make([]int, len(faces))
	for i, f := range faces {
		out[i] = int(f.Score)
	}
	return out
}
