package app

import (
	"context"
	"errors"
	"fmt"
	"gabarit/internal/membudget"
	"gabarit/internal/openset"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modelpack"
	"gabarit/internal/onnx"
	"gabarit/internal/pipeline"
	"gabarit/internal/setup"
)

// FaceOptions choose the installation, the model pack and how the face
// path runs.
type FaceOptions struct {
	Cache           string  // installation directory ("" = $GABARIT_CACHE or ~/.cache/gabarit)
	Pack            string  // a pack name under the installation's packs/, or a directory
	Device          string  // cpu or cuda
	Threads         int     // ONNX Runtime threads per network call
	MinFace         float64 // smallest face to find, in pixels of the original image
	MinFaceFraction float64 // raise MinFace to this fraction of the shorter side (-1: off)
	DecodeSide      int     // JPEGs may be decoded smaller while their longer side stays ≥ this (-1: full size)
}

// Dirs is the installation.
func (o FaceOptions) Dirs() setup.Dirs {
	if o.Cache != "" {
		return setup.Dirs{Root: o.Cache}
	}
	return setup.DefaultDirs()
}

// PackDir is the model pack's directory.
func (o FaceOptions) PackDir() string {
	if strings.ContainsRune(o.Pack, os.PathSeparator) {
		return o.Pack
	}
	pack := o.Pack
	if pack == "" {
		pack = "default"
	}
	return o.Dirs().Pack(pack)
}

// Manifest opens the model pack's manifest (verifying its files) without
// loading the networks: for what needs the model id, not the models.
func (o FaceOptions) Manifest() (*modelpack.Manifest, error) {
	m, err := modelpack.Open(o.PackDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (install with: gabarit setup)", err)
	}
	return m, err
}

// Faces is an opened model pack and the pipeline on it.
type Faces struct {
	Models   *onnx.Models
	Manifest *modelpack.Manifest
	Pipe     *pipeline.Pipeline
}

// Close releases the networks.
func (f *Faces) Close() error { return f.Models.Close() }

// Budget is the memory budget the face path decodes in (nil: none).
func (f *Faces) Budget() *membudget.Budget { return f.Pipe.Budget() }

// ModelID names the pack's embedder: templates of different models are
// never compared.
func (f *Faces) ModelID() string { return f.Manifest.Embedder.ID() }

// Dim is the length of the pack's templates.
func (f *Faces) Dim() int { return f.Manifest.Embedder.Dim }

// SamePerson is the pack's same-person threshold.
func (f *Faces) SamePerson() float64 { return f.Manifest.Thresholds.SamePerson }

// OpenSet returns the embedder's open-set decision model.
func (f *Faces) OpenSet() (*openset.Decider, error) { return f.Manifest.OpenSet() }

// Analyzer is the face path as ingestion, search and rights see it.
func (f *Faces) Analyzer() Analyzer { return Analyzer{f.Pipe} }

// Analyze finds, aligns and embeds every face of an encoded image.
func (f *Faces) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	return f.Analyzer().Analyze(ctx, data)
}

// AnalyzeFrame runs the face path on a decoded video frame.
func (f *Faces) AnalyzeFrame(ctx context.Context, img *imageproc.RGB) (face.Analysis, error) {
	return f.Analyzer().AnalyzeFrame(ctx, img)
}

// Model is the face path as the engines need it: analysis of images and
// video frames, and the embedder's identity and threshold. *Faces
// implements it; tests of the code around the engines may use a fake.
type Model interface {
	face.Analyzer
	AnalyzeFrame(ctx context.Context, img *imageproc.RGB) (face.Analysis, error)
	ModelID() string
	Dim() int
	SamePerson() float64
	// OpenSet is the embedder's open-set decision model (operating points
	// for a gallery's size).
	OpenSet() (*openset.Decider, error)
}

var _ Model = (*Faces)(nil)

// OpenFaces loads the pack and builds the pipeline on it; o overrides the
// detection settings of cfg.
func OpenFaces(ctx context.Context, o FaceOptions, cfg pipeline.Config) (*Faces, error) {
	d := o.Dirs()
	device := o.Device
	if device == "" {
		device = "cpu"
	}
	oo := onnx.Options{Library: d.ORTLibrary(), Device: device, Threads: max(o.Threads, 1)}
	if device == "cuda" {
		oo.Library = d.GPULibrary()
		oo.CUDAProvider = filepath.Join(d.GPULibraryDir(), "libonnxruntime_providers_cuda.so")
	}
	models, err := onnx.Open(ctx, o.PackDir(), oo)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (install with: gabarit setup)", err)
	}
	if err != nil {
		return nil, err
	}
	m := models.Manifest
	cfg.MinFace = o.MinFace
	cfg.MinFaceFraction = o.MinFaceFraction
	cfg.DecodeSide = o.DecodeSide
	if cfg.NMSIoU == 0 {
		cfg.NMSIoU = m.Thresholds.NMSIoU
	}
	var lm pipeline.Landmarker
	if models.Landmarker != nil {
		lm = models.Landmarker
	}
	p, err := pipeline.New(models.Detector, lm, models.Embedder, cfg)
	if err != nil {
		_ = models.Close() // the pipeline error is the one to report
		return nil, err
	}
	return &Faces{Models: models, Manifest: m, Pipe: p}, nil
}

// Analyzer is the face path as ingestion and search see it: it implements
// face.Analyzer and, for videos, AnalyzeFrame.
type Analyzer struct{ P *pipeline.Pipeline }

var _ face.Analyzer = Analyzer{}

// Analyze finds, aligns and embeds every face of an encoded image.
func (a Analyzer) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	r, err := a.P.ProcessBytes(ctx, data)
	if err != nil {
		return face.Analysis{}, err
	}
	return face.Analysis{Width: r.Width, Height: r.Height, Faces: r.Faces}, nil
}

// AnalyzeFrame runs the face path on a decoded video frame.
func (a Analyzer) AnalyzeFrame(ctx context.Context, img *imageproc.RGB) (face.Analysis, error) {
	r, err := a.P.Process(ctx, &imageproc.Decoded{Img: img, Width: img.W, Height: img.H, Format: "video", Orientation: 1})
	if err != nil {
		return face.Analysis{}, err
	}
	return face.Analysis{Width: r.Width, Height: r.Height, Faces: r.Faces}, nil
}
