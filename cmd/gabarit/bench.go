package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gabarit/internal/imageproc"
	"gabarit/internal/pipeline"
)

func (e *cmdEnv) bench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "search" {
		return e.benchSearch(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "serve" {
		return e.benchServe(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "pipeline" {
		fmt.Fprintln(e.stderr, "usage: gabarit bench pipeline|search|serve [flags]")
		return exitError{2}
	}
	fs := flag.NewFlagSet("bench pipeline", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	photos := fs.String("photos", "", "folder of source photos with faces (default: the installed npm demo photos)")
	seconds := fs.Float64("seconds", 4, "duration of each measurement in each round")
	rounds := fs.Int("rounds", 3, "interleaved rounds; each figure is the median round")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the first round of one measurement to this file")
	profiled := fs.String("profile", "pipeline-250", "the measurement --cpuprofile covers: model-only, pipeline-250, pipeline-12mp, pipeline-12mp-min120, pipeline-12mp-min240-quarter")
	if err := parseArgs(fs, args[1:]); err != nil {
		return exitError{2}
	}
	if *rounds < 1 || *seconds <= 0 {
		return fmt.Errorf("bench: --rounds must be ≥ 1 and --seconds > 0")
	}
	dir := *photos
	if dir == "" {
		dir = ff.dirs().TestPhotos()
	}
	srcFiles, err := imageFiles(dir)
	if err != nil || len(srcFiles) == 0 {
		return fmt.Errorf("bench: no photos in %s (run gabarit setup): %v", dir, err)
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	dur := time.Duration(*seconds * float64(time.Second))

	small, big, err := benchInputs(ctx, kit, srcFiles)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "inputs: %d face photos of 250×250, %d photos of 4000×3000 (12 MP); %d worker(s), %s each\n",
		len(small), len(big), ff.workers, dur)

	// Model-only ceiling: the networks on ready inputs, doing the work the
	// pipeline does for each 250×250 photo: one detector input, then one
	// landmark crop and one aligned crop per face it holds.
	facesIn := make([]int, len(small))
	for i, b := range small {
		r, err := kit.Pipe.ProcessBytes(ctx, b)
		if err != nil {
			return err
		}
		facesIn[i] = len(r.Faces)
	}
	tw, th := kit.Models.Detector.InputSize()
	if tw == 0 {
		tw, th = 320, 240
	}
	tile := imageproc.NewRGB(tw, th)
	lmSide := 64
	if kit.Models.Landmarker != nil {
		lmSide = kit.Models.Landmarker.InputSize()
	}
	lmCrop := imageproc.NewRGB(lmSide, lmSide)
	ew, eh := kit.Models.Embedder.InputSize()
	aligned := imageproc.NewRGB(ew, eh)
	// Ready inputs with photo-like statistics: the first 250×250 photo,
	// resampled to each network's input (all-black inputs run faster).
	first, err := imageproc.Decode(small[0], imageproc.DecodeOptions{Limits: imageproc.DefaultLimits})
	if err != nil {
		return err
	}
	tile = imageproc.ResizeArea(first.Img, tw, th)
	lmCrop = imageproc.ResizeArea(first.Img, lmSide, lmSide)
	aligned = imageproc.ResizeArea(first.Img, ew, eh)
	modelOnly := func(ctx context.Context, i int) (int, error) {
		if _, err := kit.Models.Detector.Detect(ctx, tile); err != nil {
			return 0, err
		}
		n := facesIn[i%len(facesIn)]
		if n == 0 {
			return 0, nil
		}
		lms, crops := make([]*imageproc.RGB, n), make([]*imageproc.RGB, n)
		for k := range n {
			lms[k], crops[k] = lmCrop, aligned
		}
		if kit.Models.Landmarker != nil {
			if _, err := kit.Models.Landmarker.Landmarks68(ctx, lms); err != nil {
				return 0, err
			}
		}
		_, err := kit.Models.Embedder.Embed(ctx, crops)
		return n, err
	}
	process := func(p *pipeline.Pipeline, inputs [][]byte) func(ctx context.Context, i int) (int, error) {
		return func(ctx context.Context, i int) (int, error) {
			r, err := p.ProcessBytes(ctx, inputs[i%len(inputs)])
			if err != nil {
				return 0, err
			}
			return len(r.Faces), nil
		}
	}
	// A coarser pipeline for large photos: faces of at least 120 px.
	var lm pipeline.Landmarker
	if kit.Models.Landmarker != nil {
		lm = kit.Models.Landmarker
	}
	coarse, err := pipeline.New(kit.Models.Detector, lm, kit.Models.Embedder, pipeline.Config{MinFace: 120, MinFaceFraction: -1, NMSIoU: kit.Manifest.Thresholds.NMSIoU})
	if err != nil {
		return err
	}
	// Group photos where only faces of 240 px and more (8% of the height)
	// matter: the JPEG is decoded at 1/4 (1000×750), where such a face still
	// spans 60 px and more.
	group, err := pipeline.New(kit.Models.Detector, lm, kit.Models.Embedder, pipeline.Config{MinFace: 240, MinFaceFraction: -1, DecodeSide: 1000, NMSIoU: kit.Manifest.Thresholds.NMSIoU})
	if err != nil {
		return err
	}
	// The measurements are interleaved in rounds and each reports its
	// median round, so that a noisy neighbour on a shared machine weighs on
	// all of them alike.
	series := []*benchSeries{
		{name: "model-only", fn: modelOnly},
		{name: "pipeline-250", fn: process(kit.Pipe, small)},
		{name: "pipeline-12mp", fn: process(kit.Pipe, big)},
		{name: "pipeline-12mp-min120", fn: process(coarse, big)},
		{name: "pipeline-12mp-min240-quarter", fn: process(group, big)},
	}
	for b := range []int{1, 8, 32} {
		size := []int{1, 8, 32}[b]
		batch := make([]*imageproc.RGB, size)
		for i := range batch {
			batch[i] = aligned
		}
		series = append(series, &benchSeries{name: fmt.Sprintf("embed-batch%d", size), fn: func(ctx context.Context, i int) (int, error) {
			_, err := kit.Models.Embedder.Embed(ctx, batch)
			return size, err
		}})
	}
	for round := range *rounds {
		for _, sr := range series {
			if *cpuProfile != "" && round == 0 && sr.name == *profiled {
				pf, err := os.Create(*cpuProfile)
				if err != nil {
					return err
				}
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
			}
			r := runFor(ctx, ff.workers, dur, sr.fn)
			if *cpuProfile != "" && round == 0 && sr.name == *profiled {
				pprof.StopCPUProfile()
			}
			if r.err != nil {
				return fmt.Errorf("bench %s: %w", sr.name, r.err)
			}
			sr.rates = append(sr.rates, r)
		}
	}
	med := map[string]rate{}
	for _, sr := range series {
		med[sr.name] = sr.median()
	}
	ceiling, pipeSmall, pipeBig, pipeCoarse, pipeGroup := med["model-only"], med["pipeline-250"], med["pipeline-12mp"], med["pipeline-12mp-min120"], med["pipeline-12mp-min240-quarter"]
	embedRates := map[string]float64{}
	for _, k := range []string{"batch1", "batch8", "batch32"} {
		embedRates[k] = round2(med["embed-"+k].unitsPerSec())
	}
	out := map[string]any{
		"device": ff.device, "workers": ff.workers, "threads_per_call": ff.threads, "cpus": runtime.NumCPU(),
		"jpeg_decoder":                  map[bool]string{true: "libjpeg-turbo", false: "Go image/jpeg"}[imageproc.FastJPEG()],
		"model_only_images_per_s":       round2(ceiling.opsPerSec()),
		"pipeline_250_images_per_s":     round2(pipeSmall.opsPerSec()),
		"pipeline_250_vs_ceiling":       math.Round(pipeSmall.opsPerSec()/ceiling.opsPerSec()*1000) / 1000,
		"pipeline_12mp_images_per_s":    round2(pipeBig.opsPerSec()),
		"pipeline_12mp_faces_per_s":     round2(pipeBig.unitsPerSec()),
		"pipeline_12mp_faces_per_image": round2(float64(pipeBig.units) / math.Max(float64(pipeBig.ops), 1)),
		"embedder_faces_per_s":          embedRates,
		"pipeline_250_faces_per_image":  round2(float64(pipeSmall.units) / math.Max(float64(pipeSmall.ops), 1)),
		"seconds_per_measurement":       dur.Seconds(),
		"min_face_px":                   ff.minFace,
		"pack":                          kit.Manifest.Name,
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	fmt.Fprintf(e.stdout, "device %s, %d worker(s) × %d thread(s), JPEG decoder %s, pack %s\n",
		ff.device, ff.workers, ff.threads, out["jpeg_decoder"], kit.Manifest.Name)
	fmt.Fprintf(e.stdout, "model-only ceiling (detector+landmarks+embedder, 1 face): %8.1f images/s\n", ceiling.opsPerSec())
	fmt.Fprintf(e.stdout, "pipeline, 250×250 face photos:                         %8.1f images/s (%.1f%% of ceiling)\n",
		pipeSmall.opsPerSec(), 100*pipeSmall.opsPerSec()/ceiling.opsPerSec())
	fmt.Fprintf(e.stdout, "pipeline, 12 MP photos:                                %8.1f images/s, %.1f faces/s (%.1f faces/image)\n",
		pipeBig.opsPerSec(), pipeBig.unitsPerSec(), out["pipeline_12mp_faces_per_image"])
	fmt.Fprintf(e.stdout, "pipeline, 12 MP photos, faces ≥ 120 px only:           %8.1f images/s, %.1f faces/s\n",
		pipeCoarse.opsPerSec(), pipeCoarse.unitsPerSec())
	fmt.Fprintf(e.stdout, "pipeline, 12 MP, faces ≥ 240 px, JPEG decoded at 1/4:  %8.1f images/s, %.1f faces/s\n",
		pipeGroup.opsPerSec(), pipeGroup.unitsPerSec())
	fmt.Fprintf(e.stdout, "embedder alone, faces/s by batch size:                %v\n", embedRates)
	return nil
}

// benchInputs makes the two benchmark sets from photos with faces: 250×250
// JPEG crops centred on each face (the face about 45%% of the frame, as in
// LFW), and the photos themselves resized to 4000×3000 JPEG.
func benchInputs(ctx context.Context, kit *faceKit, files []string) (small, big [][]byte, err error) {
	for _, f := range files {
		d, err := imageproc.DecodeFile(f, imageproc.DecodeOptions{Limits: imageproc.DefaultLimits})
		if err != nil {
			return nil, nil, err
		}
		r, err := kit.Pipe.Process(ctx, d)
		if err != nil {
			return nil, nil, err
		}
		s := float64(d.Img.W) / float64(d.Width)
		for _, fc := range r.Faces {
			if fc.Quality < 0.3 {
				continue
			}
			side := fc.Box.H * 2.2 * s
			cx, cy := (fc.Box.X+fc.Box.W/2)*s, (fc.Box.Y+fc.Box.H/2)*s
			k := 250 / side
			crop, err := imageproc.Warp(d.Img, imageproc.Affine{k, 0, -(cx - side/2) * k, 0, k, -(cy - side/2) * k}, 250, 250)
			if err != nil {
				return nil, nil, err
			}
			b, err := encodeJPEG(crop)
			if err != nil {
				return nil, nil, err
			}
			small = append(small, b)
		}
		b, err := encodeJPEG(imageproc.ResizeArea(d.Img, 4000, 3000))
		if err != nil {
			return nil, nil, err
		}
		big = append(big, b)
	}
	if len(small) == 0 {
		return nil, nil, fmt.Errorf("bench: no usable face in %d photo(s)", len(files))
	}
	return small, big, nil
}

func encodeJPEG(m *imageproc.RGB) ([]byte, error) {
	var buf bytes.Buffer
	err := jpeg.Encode(&buf, m.Image(), &jpeg.Options{Quality: 90})
	return buf.Bytes(), err
}

// benchSeries is one measured workload and its rounds.
type benchSeries struct {
	name  string
	fn    func(ctx context.Context, i int) (int, error)
	rates []rate
}

// median returns the round with the median operations per second.
func (s *benchSeries) median() rate {
	rs := append([]rate(nil), s.rates...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].opsPerSec() < rs[j].opsPerSec() })
	return rs[len(rs)/2]
}

type rate struct {
	ops, units int64
	elapsed    time.Duration
	err        error
}

func (r rate) opsPerSec() float64   { return float64(r.ops) / r.elapsed.Seconds() }
func (r rate) unitsPerSec() float64 { return float64(r.units) / r.elapsed.Seconds() }

// runFor calls fn on workers goroutines until d has passed (after one
// untimed warm-up call per worker) and counts calls and the units they report.
func runFor(ctx context.Context, workers int, d time.Duration, fn func(ctx context.Context, i int) (int, error)) rate {
	var r rate
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		if _, err := fn(ctx, w); err != nil {
			return rate{err: err}
		}
	}
	var next atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				u, err := fn(ctx, int(next.Add(1)))
				mu.Lock()
				if err != nil && r.err == nil {
					r.err = err
				}
				r.ops++
				r.units += int64(u)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	if r.err == nil {
		r.err = ctx.Err()
	}
	return r
}
