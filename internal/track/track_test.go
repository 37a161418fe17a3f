package track_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/track"
)

const step = 500 * time.Millisecond // time between sampled frames in the tests

// person returns a unit embedding for person k: persons are orthogonal
// (cosine 0), and the same person always gives the same embedding.
func person(k int) face.Embedding {
	e := make(face.Embedding, 8)
	e[k] = 1
	return e
}

// near returns an embedding of person k at cosine c from person(k), and
// at cosine sqrt(1-c²) from person(k+1).
func near(k int, c float64) face.Embedding {
	e := make(face.Embedding, 8)
	e[k] = float32(c)
	e[k+1] = float32(math.Sqrt(1 - c*c))
	return e
}

// at returns a 100×100 face of person k (no embedding when k < 0) at x, y.
func at(k int, x, y float64) face.Face {
	f := face.Face{Box: face.Box{X: x, Y: y, W: 100, H: 100}, Score: 0.9, Quality: 0.5}
	if k >= 0 {
		f.Embedding = person(k)
	}
	return f
}

// q returns f with quality and score set.
func q(f face.Face, quality, score float64) face.Face {
	f.Quality, f.Score = quality, score
	return f
}

// got is what the tests compare of a track.
type got struct {
	ID            int
	Start, End    time.Duration
	Frames        int
	BestTime      time.Duration
	BestQ, BestSc float64
}

func (g got) String() string {
	return fmt.Sprintf("#%d %v–%v ×%d best@%v q%.2f s%.2f", g.ID, g.Start, g.End, g.Frames, g.BestTime, g.BestQ, g.BestSc)
}

// run feeds frames to a Tracker, one every step, and returns the tracks in
// the order they were emitted, then flushed.
func run(cfg track.Config, frames [][]face.Face) []got {
	tr := track.New(cfg)
	var out []got
	keep := func(ts []track.Track) {
		for _, t := range ts {
			out = append(out, got{t.ID, t.Start, t.End, t.Frames, t.BestTime, t.Best.Quality, t.Best.Score})
		}
	}
	for i, fs := range frames {
		keep(tr.Add(time.Duration(i)*step, fs))
	}
	keep(tr.Flush())
	return out
}

// span is a track seen from frame a to frame b, in every frame, best at
// frame best with quality 0.5 and score 0.9 (the defaults of at).
func span(id, a, b, best int) got {
	return got{id, time.Duration(a) * step, time.Duration(b) * step, b - a + 1, time.Duration(best) * step, 0.5, 0.9}
}

func TestTracker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    track.Config
		frames [][]face.Face
		want   []got
	}{
		{
			name: "one face moving slowly",
			frames: func() [][]face.Face {
				var fs [][]face.Face
				for i := range 10 {
					fs = append(fs, []face.Face{at(0, 10*float64(i), 5*float64(i))})
				}
				return fs
			}(),
			want: []got{span(1, 0, 9, 0)},
		},
		{
			name: "one face moving slowly without embeddings",
			frames: [][]face.Face{
				{at(-1, 0, 0)}, {at(-1, 20, 0)}, {at(-1, 40, 0)}, {at(-1, 60, 0)},
			},
			want: []got{span(1, 0, 3, 0)},
		},
		{
			name: "two faces crossing",
			// A goes right, B left, through the same box at frame 3.
			frames: func() [][]face.Face {
				var fs [][]face.Face
				for i := range 7 {
					x := 50 * float64(i)
					fs = append(fs, []face.Face{at(0, x, 0), at(1, 300-x, 0)})
				}
				return fs
			}(),
			want: []got{span(1, 0, 6, 0), span(2, 0, 6, 0)},
		},
		{
			name: "two people swapping places between frames",
			frames: [][]face.Face{
				{at(0, 0, 0), at(1, 80, 0)},
				{at(1, 0, 0), at(0, 80, 0)},
				{at(0, 0, 0), at(1, 80, 0)},
			},
			want: []got{span(1, 0, 2, 0), span(2, 0, 2, 0)},
		},
		{
			name: "a different person in the same place is not merged",
			frames: [][]face.Face{
				{at(0, 0, 0)}, {at(0, 0, 0)}, {at(1, 0, 0)}, {at(1, 0, 0)},
			},
			// Track 1 is last seen in frame 1 and closes after frame 3.
			want: []got{span(1, 0, 1, 0), span(2, 2, 3, 2)},
		},
		{
			name: "the same person far away is linked by embedding",
			frames: [][]face.Face{
				{at(0, 0, 0)}, {at(0, 500, 300)}, {at(0, 0, 0)},
			},
			want: []got{span(1, 0, 2, 0)},
		},
		{
			name: "overlap with a cosine above the floor continues",
			frames: [][]face.Face{
				{at(0, 0, 0)},
				{{Box: face.Box{X: 10, W: 100, H: 100}, Score: 0.9, Quality: 0.5, Embedding: near(0, 0.25)}},
			},
			want: []got{span(1, 0, 1, 0)},
		},
		{
			name: "overlap with a cosine below the floor does not",
			frames: [][]face.Face{
				{at(0, 0, 0)},
				{{Box: face.Box{X: 10, W: 100, H: 100}, Score: 0.9, Quality: 0.5, Embedding: near(0, 0.1)}},
			},
			want: []got{span(1, 0, 0, 0), span(2, 1, 1, 1)},
		},
		{
			name: "no overlap and a cosine below same-person does not",
			frames: [][]face.Face{
				{at(0, 0, 0)},
				{{Box: face.Box{X: 300, W: 100, H: 100}, Score: 0.9, Quality: 0.5, Embedding: near(0, 0.3)}},
			},
			want: []got{span(1, 0, 0, 0), span(2, 1, 1, 1)},
		},
		{
			name: "a caller's higher same-person threshold",
			cfg:  track.Config{SamePerson: 0.6},
			frames: [][]face.Face{
				{at(0, 0, 0)},
				{{Box: face.Box{X: 300, W: 100, H: 100}, Score: 0.9, Quality: 0.5, Embedding: near(0, 0.5)}},
			},
			want: []got{span(1, 0, 0, 0), span(2, 1, 1, 1)},
		},
		{
			name: "one frame missed is bridged",
			frames: [][]face.Face{
				{at(0, 0, 0)}, {at(0, 0, 0)}, {}, {at(0, 0, 0)},
			},
			want: []got{{1, 0, 3 * step, 3, 0, 0.5, 0.9}},
		},
		{
			name: "leaving and coming back after a gap over MaxGap",
			frames: [][]face.Face{
				{at(0, 0, 0)}, {at(0, 0, 0)}, {}, {}, {at(0, 0, 0)}, {at(0, 0, 0)},
			},
			want: []got{span(1, 0, 1, 0), span(2, 4, 5, 4)},
		},
		{
			name: "a longer MaxGap bridges it",
			cfg:  track.Config{MaxGap: 3},
			frames: [][]face.Face{
				{at(0, 0, 0)}, {at(0, 0, 0)}, {}, {}, {at(0, 0, 0)}, {at(0, 0, 0)},
			},
			want: []got{{1, 0, 5 * step, 4, 0, 0.5, 0.9}},
		},
		{
			name: "MaxGap 1 links consecutive frames only",
			cfg:  track.Config{MaxGap: 1},
			frames: [][]face.Face{
				{at(0, 0, 0)}, {}, {at(0, 0, 0)},
			},
			want: []got{span(1, 0, 0, 0), span(2, 2, 2, 2)},
		},
		{
			name: "best quality, ties by score",
			frames: [][]face.Face{
				{q(at(0, 0, 0), 0.2, 0.99)},
				{q(at(0, 5, 0), 0.9, 0.7)},
				{q(at(0, 10, 0), 0.5, 0.99)},
				{q(at(0, 15, 0), 0.9, 0.8)},
				{q(at(0, 20, 0), 0.9, 0.8)}, // a full tie keeps the earlier face
			},
			want: []got{{1, 0, 4 * step, 5, 3 * step, 0.9, 0.8}},
		},
		{
			name: "ids increase in order of first appearance",
			frames: [][]face.Face{
				{at(0, 0, 0), at(1, 500, 0)},
				{at(0, 0, 0), at(1, 500, 0), at(2, 1000, 0)},
				{at(0, 0, 0), at(3, 0, 500), at(1, 500, 0), at(2, 1000, 0)},
			},
			want: []got{span(1, 0, 2, 0), span(2, 0, 2, 0), span(3, 1, 2, 1), span(4, 2, 2, 2)},
		},
		{
			name: "closed tracks come out as they close, before later ones",
			frames: [][]face.Face{
				{at(0, 0, 0)}, {at(1, 500, 0)}, {at(1, 500, 0)}, {at(1, 500, 0)},
			},
			// Track 1 closes with frame 2 (frame 3 could not continue it).
			want: []got{span(1, 0, 0, 0), span(2, 1, 3, 1)},
		},
		{
			name: "two detections of one person in a frame: one continues, the other starts a track",
			frames: [][]face.Face{
				{at(0, 0, 0)},
				{at(0, 300, 0), at(0, 5, 0)},
			},
			want: []got{span(1, 0, 1, 0), span(2, 1, 1, 1)},
		},
		{
			name:   "no faces",
			frames: [][]face.Face{{}, {}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := run(tt.cfg, tt.frames)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("tracks:\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

// TestCrossingKeepsIdentity checks that each track of two crossing faces
// follows one person: the best face (the last, of rising quality) is of
// the person who started the track.
func TestCrossingKeepsIdentity(t *testing.T) {
	t.Parallel()
	for _, cfg := range []track.Config{{}, {MinCosine: -1}, {MinIoU: 2}} {
		tr := track.New(cfg)
		for i := range 7 {
			x := 50 * float64(i)
			faces := []face.Face{
				q(at(1, 300-x, 0), 0.1*float64(i), 0.9),
				q(at(0, x, 0), 0.1*float64(i), 0.9),
			}
			if i > 0 {
				// Listed in the other order than the tracks, so that
				// ties broken by order would swap them.
				faces[0], faces[1] = faces[1], faces[0]
			}
			tr.Add(time.Duration(i)*step, faces)
		}
		ts := tr.Flush()
		if len(ts) != 2 {
			t.Fatalf("%+v: %d tracks, want 2", cfg, len(ts))
		}
		for i, want := range []int{1, 0} { // track 1 started with person 1
			tk := ts[i]
			if tk.Frames != 7 || tk.BestTime != 6*step || tk.Best.Embedding[want] != 1 {
				t.Errorf("%+v: track %d = %d frames, best at %v of %v; want 7 frames, best at %v of person %d",
					cfg, tk.ID, tk.Frames, tk.BestTime, tk.Best.Embedding, 6*step, want)
			}
		}
	}
}

// TestClosedAsTheyGo checks which call returns a track: the Add of the
// frame after which it can no longer be continued.
func TestClosedAsTheyGo(t *testing.T) {
	t.Parallel()
	tr := track.New(track.Config{})
	frames := [][]face.Face{{at(0, 0, 0)}, {}, {}, {at(0, 0, 0)}}
	wantClosed := []int{0, 0, 1, 0} // tracks returned by each Add
	for i, fs := range frames {
		if n := len(tr.Add(time.Duration(i)*step, fs)); n != wantClosed[i] {
			t.Errorf("Add of frame %d closed %d tracks, want %d", i, n, wantClosed[i])
		}
	}
	if rest := tr.Flush(); len(rest) != 1 || rest[0].ID != 2 {
		t.Errorf("Flush = %+v, want track 2", rest)
	}
	if rest := tr.Flush(); len(rest) != 0 {
		t.Errorf("second Flush = %+v, want none", rest)
	}
}

// TestBestEmbeddingCopied checks that a track keeps its own copy of the best
// face's embedding, not the caller's buffer.
func TestBestEmbeddingCopied(t *testing.T) {
	t.Parallel()
	tr := track.New(track.Config{})
	f := at(0, 0, 0)
	tr.Add(0, []face.Face{f})
	f.Embedding[0], f.Embedding[1] = 0, 1 // the caller reuses its buffer
	ts := tr.Flush()
	if len(ts) != 1 || ts[0].Best.Embedding[0] != 1 {
		t.Fatalf("Flush = %+v, want the embedding as it was added", ts)
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   track.Config
		want track.Config
	}{
		{"zero", track.Config{}, track.Config{MaxGap: 2, MinIoU: 0.3, SamePerson: 0.3566, MinCosine: 0.1783}},
		{"floor from threshold", track.Config{SamePerson: 0.5}, track.Config{MaxGap: 2, MinIoU: 0.3, SamePerson: 0.5, MinCosine: 0.25}},
		{"negative floor kept", track.Config{MaxGap: 4, MinIoU: 0.5, SamePerson: 0.4, MinCosine: -1}, track.Config{MaxGap: 4, MinIoU: 0.5, SamePerson: 0.4, MinCosine: -1}},
	}
	for _, tt := range tests {
		if got := tt.in.WithDefaults(); got != tt.want {
			t.Errorf("%s: WithDefaults = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// BenchmarkAdd measures one frame with 8 faces moving slowly.
func BenchmarkAdd(b *testing.B) {
	faces := make([]face.Face, 8)
	tr := track.New(track.Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for k := range faces {
			faces[k] = at(k, float64(200*k+i%50), 0)
		}
		tr.Add(time.Duration(i)*step, faces)
		i++
	}
}
