// Package track links the faces detected in neighbouring sampled frames of a
// video into tracks, so that one person seen for a while is stored once per
// track (its best face, with the time code) rather than once per frame.
//
// A Tracker is fed the faces of each sampled frame in order. A face
// continues an open track when the track was seen in one of the last MaxGap
// sampled frames, and either its box overlaps the track's last box (IoU at
// least MinIoU) or its embedding is close to the track's reference embedding
// (cosine at least SamePerson), and never when that cosine is below
// MinCosine: two people who swap places are not merged because their boxes
// overlap. Each frame is assigned greedily, best pair first, so no face
// continues two tracks and no track takes two faces of one frame; faces left
// over start new tracks.
//
// Tracks are returned as they close (when they can no longer be continued)
// and by Flush at the end of the video, so memory is bounded by the faces of
// the last MaxGap frames whatever the video's length. The package does no
// I/O and is pure Go.
package track

import (
	"cmp"
	"slices"
	"time"

	"gabarit/internal/face"
)

// Default association thresholds, used for zero fields of Config.
const (
	// DefaultMaxGap is in sampled frames: a track last seen in frame n can be
	// continued in frames n+1 and n+2 (one frame without it is bridged).
	DefaultMaxGap = 2
	// DefaultMinIoU is the box overlap (intersection over union, in [0,1])
	// that continues a track.
	DefaultMinIoU = 0.3
	// DefaultSamePerson is the cosine similarity of embeddings (in [-1,1])
	// that continues a track wherever the face is: the default model pack's
	// same-person threshold.
	DefaultSamePerson = 0.3566
)

// Config holds the association thresholds of a Tracker. Zero fields take the
// defaults.
type Config struct {
	// MaxGap is how many sampled frames back a track may have been last
	// seen and still be continued: a track last seen in frame n can continue
	// in frames n+1 … n+MaxGap (default 2; 1 links consecutive frames only).
	MaxGap int
	// MinIoU is the intersection over union, in [0,1], of a face's box with
	// the track's last box that continues the track (default 0.3). A value
	// above 1 links by embedding only.
	MinIoU float64
	// SamePerson is the cosine similarity, in [-1,1], of a face's embedding
	// with the track's reference embedding that continues the track whatever
	// the boxes (default 0.3566); pass the model pack's same-person threshold.
	SamePerson float64
	// MinCosine is the cosine similarity below which a face never continues
	// a track, even if the boxes overlap (default SamePerson/2). A negative
	// value is kept as is (-1 disables the floor). It applies only when both
	// the face and the track have embeddings of the same length.
	MinCosine float64
}

// WithDefaults returns c with zero or negative fields set to the defaults
// (a zero MinCosine becomes SamePerson/2; a negative one is kept).
func (c Config) WithDefaults() Config {
	if c.MaxGap <= 0 {
		c.MaxGap = DefaultMaxGap
	}
	if c.MinIoU <= 0 {
		c.MinIoU = DefaultMinIoU
	}
	if c.SamePerson <= 0 {
		c.SamePerson = DefaultSamePerson
	}
	if c.MinCosine == 0 {
		c.MinCosine = c.SamePerson / 2
	}
	return c
}

// Track is one face followed across neighbouring sampled frames.
type Track struct {
	// ID numbers the tracks of a Tracker from 1, in order of first
	// appearance (faces of one frame in the order given).
	ID int
	// Start and End are the time codes of the first and last frames the
	// face was seen in.
	Start, End time.Duration
	// Best is the face of highest Quality, ties broken by the higher Score
	// and then by the earlier frame. Its Embedding is a copy.
	Best face.Face
	// BestTime is the time code of the frame Best was seen in.
	BestTime time.Duration
	// Frames counts the sampled frames the face was seen in.
	Frames int
}

// Tracker links faces across the sampled frames of one video. It is not
// safe for concurrent use; use one Tracker per video.
type Tracker struct {
	cfg    Config
	frame  int // index of the next frame
	lastID int
	open   []*state // in order of ID
}

// state is an open track.
type state struct {
	Track
	last int      // index of the frame it was last seen in
	box  face.Box // its box there
	// ref is the embedding of the best face that has one (highest Quality,
	// then Score); refQ and refS are that face's Quality and Score.
	ref        face.Embedding
	refQ, refS float64
}

// New returns a Tracker with the thresholds of cfg (zero fields take the
// defaults).
func New(cfg Config) *Tracker {
	return &Tracker{cfg: cfg.WithDefaults()}
}

// pair is a possible continuation of track t by face f in the current frame.
type pair struct {
	t, f  int // indexes into Tracker.open and the frame's faces
	score float64
}

// Add takes the faces detected in the next sampled frame, at time code at
// (time codes should increase from call to call), and returns the tracks
// that closed with it, in order of ID: those that cannot be continued by
// any later frame. faces is not retained.
func (t *Tracker) Add(at time.Duration, faces []face.Face) []Track {
	n := t.frame
	t.frame++

	var pairs []pair
	for ti, s := range t.open {
		for fi := range faces {
			if score, ok := t.match(s, &faces[fi]); ok {
				pairs = append(pairs, pair{ti, fi, score})
			}
		}
	}
	// Best pair first; ties by track (older first), then face order, so the
	// result does not depend on the sort's stability.
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(a.t, b.t); c != 0 {
			return c
		}
		return cmp.Compare(a.f, b.f)
	})
	trackUsed := make([]bool, len(t.open))
	faceUsed := make([]bool, len(faces))
	for _, p := range pairs {
		if trackUsed[p.t] || faceUsed[p.f] {
			continue
		}
		trackUsed[p.t], faceUsed[p.f] = true, true
		t.open[p.t].add(n, at, &faces[p.f])
	}
	for fi := range faces {
		if faceUsed[fi] {
			continue
		}
		t.lastID++
		s := &state{Track: Track{ID: t.lastID, Start: at}}
		s.add(n, at, &faces[fi])
		t.open = append(t.open, s)
	}

	// Close the tracks that frame n+1 could not continue.
	var closed []Track
	t.open = slices.DeleteFunc(t.open, func(s *state) bool {
		if n-s.last >= t.cfg.MaxGap {
			closed = append(closed, s.Track)
			return true
		}
		return false
	})
	return closed
}

// Flush closes and returns all open tracks, in order of ID, at the end of
// the video.
func (t *Tracker) Flush() []Track {
	closed := make([]Track, len(t.open))
	for i, s := range t.open {
		closed[i] = s.Track
	}
	t.open = nil
	return closed
}

// match reports whether face f may continue track s, and the pair's score
// for the greedy assignment: the IoU plus the cosine similarity (when
// known and positive).
func (t *Tracker) match(s *state, f *face.Face) (float64, bool) {
	iou := s.box.IoU(f.Box)
	cos, known := cosine(s.ref, f.Embedding)
	if known && cos < t.cfg.MinCosine {
		return 0, false
	}
	if iou < t.cfg.MinIoU && !(known && cos >= t.cfg.SamePerson) {
		return 0, false
	}
	return iou + max(cos, 0), true
}

// cosine returns the cosine similarity of a and b and whether it is known:
// both present, of the same length.
func cosine(a, b face.Embedding) (float64, bool) {
	c, err := a.Cosine(b)
	return c, err == nil
}

// add records face f, seen in frame n at time code at.
func (s *state) add(n int, at time.Duration, f *face.Face) {
	isBest := s.Frames == 0 || better(f.Quality, f.Score, s.Best.Quality, s.Best.Score)
	isRef := len(f.Embedding) > 0 && (s.ref == nil || better(f.Quality, f.Score, s.refQ, s.refS))
	var emb face.Embedding // one copy, shared by Best and ref
	if isBest || isRef {
		emb = slices.Clone(f.Embedding)
	}
	if isBest {
		s.Best = *f
		s.Best.Embedding = emb
		s.BestTime = at
	}
	if isRef {
		s.ref = emb
		s.refQ, s.refS = f.Quality, f.Score
	}
	s.Frames++
	s.End = at
	s.last = n
	s.box = f.Box
}

// better reports whether a face of quality q and score sc beats one of
// quality bq and score bs.
func better(q, sc, bq, bs float64) bool {
	return q > bq || (q == bq && sc > bs)
}
