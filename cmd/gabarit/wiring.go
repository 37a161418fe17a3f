package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modelpack"
	"gabarit/internal/onnx"
	"gabarit/internal/pipeline"
	"gabarit/internal/setup"
)

// faceFlags are the flags shared by every command that runs the face path.
type faceFlags struct {
	cache       string
	pack        string
	device      string
	threads     int
	workers     int
	minFace     float64
	minFaceFrac float64
	decodeSide  int
}

func (f *faceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cache, "cache", "", "installation directory (default $GABARIT_CACHE or ~/.cache/gabarit)")
	fs.StringVar(&f.pack, "pack", "default", "model pack: a name under the installation's packs/ or a directory")
	fs.StringVar(&f.device, "device", "cpu", "where the networks run: cpu or cuda")
	fs.IntVar(&f.threads, "threads", 1, "ONNX Runtime threads per network call")
	fs.IntVar(&f.workers, "workers", runtime.GOMAXPROCS(0), "images processed at once")
	fs.Float64Var(&f.minFace, "min-face", 40, "smallest face to find, in pixels of the original image")
	fs.Float64Var(&f.minFaceFrac, "min-face-fraction", 0.02, "raise --min-face to this fraction of the image's shorter side (-1: off)")
	fs.IntVar(&f.decodeSide, "decode-side", 1600, "JPEGs may be decoded smaller (DCT scaling by 2, 4, 8) while their longer side stays ≥ this (-1: full size)")
}

func (f *faceFlags) dirs() setup.Dirs {
	if f.cache != "" {
		return setup.Dirs{Root: f.cache}
	}
	return setup.DefaultDirs()
}

func (f *faceFlags) packDir() string {
	if strings.ContainsRune(f.pack, os.PathSeparator) {
		return f.pack
	}
	return f.dirs().Pack(f.pack)
}

// faceKit is an opened model pack and the pipeline on it.
type faceKit struct {
	models   *onnx.Models
	manifest *modelpack.Manifest
	pipe     *pipeline.Pipeline
}

func (k *faceKit) Close() error { return k.models.Close() }

// open loads the pack and builds the pipeline.
func (f *faceFlags) open(ctx context.Context, cfg pipeline.Config) (*faceKit, error) {
	if f.workers < 1 {
		return nil, fmt.Errorf("--workers must be ≥ 1, got %d", f.workers)
	}
	d := f.dirs()
	o := onnx.Options{Library: d.ORTLibrary(), Device: f.device, Threads: f.threads}
	if f.device == "cuda" {
		o.Library = d.GPULibrary()
		o.CUDAProvider = filepath.Join(d.GPULibraryDir(), "libonnxruntime_providers_cuda.so")
	}
	models, err := onnx.Open(ctx, f.packDir(), o)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (install with: gabarit setup)", err)
	}
	if err != nil {
		return nil, err
	}
	m := models.Manifest
	cfg.MinFace = f.minFace
	cfg.MinFaceFraction = f.minFaceFrac
	cfg.DecodeSide = f.decodeSide
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
	return &faceKit{models: models, manifest: m, pipe: p}, nil
}

func version() string {
	v := "gabarit (devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value[:min(12, len(s.Value))]
			}
		}
	}
	return fmt.Sprintf("%s, onnx runtime compiled in: %v", v, onnx.Available)
}

// analyzer is the face path as ingestion and search see it.
type analyzer struct{ p *pipeline.Pipeline }

var _ face.Analyzer = analyzer{}

func (a analyzer) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	r, err := a.p.ProcessBytes(ctx, data)
	if err != nil {
		return face.Analysis{}, err
	}
	return face.Analysis{Width: r.Width, Height: r.Height, Faces: r.Faces}, nil
}

// manifest opens the model pack's manifest (verifying its files) without
// loading the networks: for commands that need the model id, not the models.
func (f *faceFlags) manifest() (*modelpack.Manifest, error) {
	m, err := modelpack.Open(f.packDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (install with: gabarit setup)", err)
	}
	return m, err
}

// AnalyzeFrame runs the face path on a decoded video frame.
func (a analyzer) AnalyzeFrame(ctx context.Context, img *imageproc.RGB) (face.Analysis, error) {
	r, err := a.p.Process(ctx, &imageproc.Decoded{Img: img, Width: img.W, Height: img.H, Format: "video", Orientation: 1})
	if err != nil {
		return face.Analysis{}, err
	}
	return face.Analysis{Width: r.Width, Height: r.Height, Faces: r.Faces}, nil
}
