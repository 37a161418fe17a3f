// Package face holds the domain types of the face path: boxes, landmarks,
// detections, templates and the interfaces that detectors and embedders
// implement. It imports only the standard library.
package face

import (
	"context"
	"errors"
	"math"
)

// Sentinel errors shared by every implementation of the face path.
var (
	// ErrNoFace is returned when an image holds no usable face.
	ErrNoFace = errors.New("no face found")
	// ErrModelMismatch is returned when templates of different models are compared.
	ErrModelMismatch = errors.New("templates come from different models")
)

// Point is a position in pixels of the original (orientation-corrected) image.
type Point struct {
	X, Y float64
}

// Box is an axis-aligned rectangle in pixels: top-left corner, width and height.
type Box struct {
	X, Y, W, H float64
}

// Area returns the box's area in square pixels (0 for an empty box).
func (b Box) Area() float64 {
	if b.W <= 0 || b.H <= 0 {
		return 0
	}
	return b.W * b.H
}

// IoU returns the intersection over union of two boxes, in [0,1].
func (b Box) IoU(o Box) float64 {
	x1 := math.Max(b.X, o.X)
	y1 := math.Max(b.Y, o.Y)
	x2 := math.Min(b.X+b.W, o.X+o.W)
	y2 := math.Min(b.Y+b.H, o.Y+o.H)
	if x2 <= x1 || y2 <= y1 {
		return 0
	}
	inter := (x2 - x1) * (y2 - y1)
	return inter / (b.Area() + o.Area() - inter)
}

// Landmarks are the five points of the ArcFace convention, in this order:
// left eye, right eye (as seen in the image), nose tip, left and right mouth corner.
type Landmarks [5]Point

// Detection is one face found by a detector.
type Detection struct {
	Box    Box
	Score  float64    // detector confidence in [0,1]
	Points *Landmarks // five landmarks when the detector gives them, else nil
}

// Face is a detected face with its landmarks, quality and (once embedded) template.
type Face struct {
	Box       Box
	Score     float64   // detector confidence in [0,1]
	Landmarks Landmarks // five points in original-image pixels
	Quality   float64   // usefulness for recognition in [0,1]; see Quality
	Embedding Embedding // L2-normalised template; nil until embedded
}

// Embedding is an L2-normalised face template.
type Embedding []float32

// Cosine returns the cosine similarity of two L2-normalised embeddings, in [-1,1].
// It returns ErrModelMismatch when their lengths differ.
func (e Embedding) Cosine(o Embedding) (float64, error) {
	if len(e) != len(o) || len(e) == 0 {
		return 0, ErrModelMismatch
	}
	var s float32
	for i := range e {
		s += e[i] * o[i]
	}
	return float64(s), nil
}

// Normalize scales v in place to unit L2 norm and returns it as an Embedding.
// A zero vector is left as is.
func Normalize(v []float32) Embedding {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// Largest returns the index of the face with the largest box, or -1 if faces is empty.
func Largest(faces []Face) int {
	best, area := -1, -1.0
	for i, f := range faces {
		if a := f.Box.Area(); a > area {
			best, area = i, a
		}
	}
	return best
}

// Primary returns the index of the face most likely to be a photo's subject
// in a w×h image: the largest box, discounted by up to half for a box centre
// far from the image centre. It returns -1 if faces is empty.
func Primary(faces []Face, w, h int) int {
	best, score := -1, -1.0
	cx, cy := float64(w)/2, float64(h)/2
	diag := math.Hypot(cx, cy)
	for i, f := range faces {
		d := math.Hypot(f.Box.X+f.Box.W/2-cx, f.Box.Y+f.Box.H/2-cy)
		s := f.Box.Area() * (1 - 0.5*math.Min(d/diag, 1))
		if s > score {
			best, score = i, s
		}
	}
	return best
}

// Analysis is what an Analyzer finds in one image.
type Analysis struct {
	Width, Height int    // pixels, after EXIF orientation
	Faces         []Face // with L2-normalised embeddings
}

// Analyzer finds the faces of one encoded image and embeds them. It is the
// face path seen by ingestion, search and rights requests. Analyze must be
// safe for concurrent use; its errors describe the image (corrupt, too large).
type Analyzer interface {
	Analyze(ctx context.Context, data []byte) (Analysis, error)
}
