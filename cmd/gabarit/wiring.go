package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"gabarit/internal/app"
	"gabarit/internal/imageproc"
	"gabarit/internal/membudget"
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
	embedBatch  int               // --embed-batch; 0 = 128 on cuda, off on cpu
	memBudget   string            // --memory-budget; "" = $GABARIT_MEMORY_BUDGET or membudget.Default
	budget      *membudget.Budget // set by open; nil when the budget is off
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
	fs.IntVar(&f.embedBatch, "embed-batch", 0, "faces of the images processed at once embedded in one network call, up to this many (0: 128 with --device cuda, 1 on cpu)")
	fs.StringVar(&f.memBudget, "memory-budget", "", "memory shared by the images decoded at once, such as 768M or 2G; a heavier image waits, one over it is refused (off: no budget; default $"+membudget.EnvVar+" or 768M)")
}

func (f *faceFlags) dirs() setup.Dirs { return f.options().Dirs() }

func (f *faceFlags) packDir() string { return f.options().PackDir() }

// faceKit is an opened model pack and the pipeline on it.
type faceKit = app.Faces

// options are the face path's settings from the flags.
func (f *faceFlags) options() app.FaceOptions {
	return app.FaceOptions{Cache: f.cache, Pack: f.pack, Device: f.device, Threads: f.threads,
		MinFace: f.minFace, MinFaceFraction: f.minFaceFrac, DecodeSide: f.decodeSide}
}

// open loads the pack and builds the pipeline.
func (f *faceFlags) open(ctx context.Context, cfg pipeline.Config) (*faceKit, error) {
	if f.workers < 1 {
		return nil, fmt.Errorf("--workers must be ≥ 1, got %d", f.workers)
	}
	size, err := membudget.FromEnv(membudget.Default)
	if f.memBudget != "" {
		size, err = membudget.Parse(f.memBudget)
		if err != nil {
			err = fmt.Errorf("--memory-budget: %w", err)
		}
	}
	if err != nil {
		return nil, err
	}
	if f.embedBatch < 0 {
		return nil, fmt.Errorf("--embed-batch must be ≥ 0, got %d", f.embedBatch)
	}
	if cfg.EmbedBatch == 0 {
		cfg.EmbedBatch = f.embedBatchSize()
	}
	if size > 0 {
		f.budget = membudget.New(size)
		cfg.Budget = f.budget
		// An image needing more than the budget is refused by it; let the
		// decoder's own limit be no lower than the budget's.
		if cfg.Limits == (imageproc.Limits{}) {
			cfg.Limits = imageproc.DefaultLimits
		}
		cfg.Limits.MaxDecodedBytes = max(cfg.Limits.MaxDecodedBytes, size)
	}
	return app.OpenFaces(ctx, f.options(), cfg)
}

// embedBatchSize is --embed-batch, or its default for the device: on a GPU,
// batches across images; on the CPU, one call per image (a call runs on
// one thread, so a batch would serialise the workers).
func (f *faceFlags) embedBatchSize() int {
	if f.embedBatch > 0 {
		return f.embedBatch
	}
	if f.device == "cuda" {
		return 128
	}
	return 1
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

// manifest opens the model pack's manifest (verifying its files) without
// loading the networks: for commands that need the model id, not the models.
func (f *faceFlags) manifest() (*modelpack.Manifest, error) { return f.options().Manifest() }
