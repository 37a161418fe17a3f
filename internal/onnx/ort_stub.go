//go:build !(cgo && onnx)

package onnx

import (
	"context"
	"errors"
	"fmt"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modelpack"
)

// Available reports whether this build can run ONNX models.
const Available = false

var errNoORT = fmt.Errorf("onnx: this binary was built without cgo and the onnx build tag (make build): %w", errors.ErrUnsupported)

// Models are the opened networks of one model pack.
type Models struct {
	Manifest   *modelpack.Manifest
	Detector   *Detector
	Landmarker *Landmarker
	Embedder   *Embedder
}

// Open always fails in a build without ONNX Runtime.
func Open(ctx context.Context, dir string, o Options) (*Models, error) { return nil, errNoORT }

// Close does nothing.
func (m *Models) Close() error { return nil }

// Detector is unavailable in this build.
type Detector struct{}

// InputSize returns 0, 0.
func (d *Detector) InputSize() (w, h int) { return 0, 0 }

// HasLandmarks returns false.
func (d *Detector) HasLandmarks() bool { return false }

// Detect always fails in this build.
func (d *Detector) Detect(ctx context.Context, img *imageproc.RGB) ([]face.Detection, error) {
	return nil, errNoORT
}

// DetectBatch always fails in this build.
func (d *Detector) DetectBatch(ctx context.Context, imgs []*imageproc.RGB) ([][]face.Detection, error) {
	return nil, errNoORT
}

// Landmarker is unavailable in this build.
type Landmarker struct{}

// InputSize returns 0.
func (l *Landmarker) InputSize() int { return 0 }

// Landmarks68 always fails in this build.
func (l *Landmarker) Landmarks68(ctx context.Context, crops []*imageproc.RGB) ([][68]face.Point, error) {
	return nil, errNoORT
}

// FivePoints reduces 68 points to the five ArcFace landmarks.
func (l *Landmarker) FivePoints(p [68]face.Point) face.Landmarks { return fivePoints(p) }

// Embedder is unavailable in this build.
type Embedder struct{}

// Dim returns 0.
func (e *Embedder) Dim() int { return 0 }

// InputSize returns 0, 0.
func (e *Embedder) InputSize() (w, h int) { return 0, 0 }

// Embed always fails in this build.
func (e *Embedder) Embed(ctx context.Context, crops []*imageproc.RGB) ([]face.Embedding, error) {
	return nil, errNoORT
}
