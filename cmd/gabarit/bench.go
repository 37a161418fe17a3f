package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gabarit/internal/imageproc"
	"gabarit/internal/onnx"
	"gabarit/internal/onnx/fp16"
	"gabarit/internal/pipeline"
)

func (e *cmdEnv) bench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "search" {
		return e.benchSearch(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "scale" {
		return e.benchScale(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "serve" {
		return e.benchServe(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "templates" {
		return e.benchTemplates(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "pipeline" {
		fmt.Fprintln(e.stderr, "usage: gabarit bench pipeline|search|scale|serve|templates [flags]")
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
	batches := fs.String("embed-batches", "", "embedder-alone batch sizes, comma-separated (default 1,8,32 on cpu, 64,128,256 on cuda)")
	half := fs.Bool("fp16", false, "also measure the embedder converted to float16 (the pack NAME-fp16 in the installation, made on first use): faces/s and its cosine to the float32 templates")
	if err := parseArgs(fs, args[1:]); err != nil {
		return exitError{2}
	}
	if *rounds < 1 || *seconds <= 0 {
		return fmt.Errorf("bench: --rounds must be ≥ 1 and --seconds > 0")
	}
	if *batches == "" {
		*batches = "1,8,32"
		if ff.device == "cuda" {
			*batches = "64,128,256"
		}
	}
	var sizes []int
	for _, f := range strings.Split(*batches, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(e.stderr, "bench: --embed-batches: %q is not a batch size (want numbers ≥ 1, such as 64,128,256)\n", f)
			return exitError{2}
		}
		sizes = append(sizes, n)
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
	// The fp16 embedder, when asked for: a second pack whose embedder is
	// the pack's converted to float16.
	var halfEmb *onnx.Embedder
	var halfCos map[string]float64
	if *half {
		hm, err := openFP16(ctx, &ff)
		if err != nil {
			return err
		}
		defer hm.Close()
		halfEmb = hm.Embedder
		halfCos, err = compareEmbedders(ctx, kit, hm.Embedder, small)
		if err != nil {
			return err
		}
	}
	embedSeries := func(name string, emb *onnx.Embedder, size int) *benchSeries {
		batch := make([]*imageproc.RGB, size)
		for i := range batch {
			batch[i] = aligned
		}
		return &benchSeries{name: name, fn: func(ctx context.Context, i int) (int, error) {
			_, err := emb.Embed(ctx, batch)
			return size, err
		}}
	}
	for _, size := range sizes {
		series = append(series, embedSeries(fmt.Sprintf("embed-batch%d", size), kit.Models.Embedder, size))
		if halfEmb != nil {
			series = append(series, embedSeries(fmt.Sprintf("embed-fp16-batch%d", size), halfEmb, size))
		}
	}
	// Where the time goes, per stage, for the two pipeline measurements on
	// the main pipeline (summed over their rounds).
	stages := map[string]map[string]time.Duration{}
	for round := range *rounds {
		for _, sr := range series {
			kit.Pipe.ResetStageTimes()
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
			if sr.name == "pipeline-250" || sr.name == "pipeline-12mp" {
				if stages[sr.name] == nil {
					stages[sr.name] = map[string]time.Duration{}
				}
				for k, v := range kit.Pipe.StageTimes() {
					stages[sr.name][k] += v
				}
				stages[sr.name]["images"] += time.Duration(r.ops)
			}
		}
	}
	med := map[string]rate{}
	for _, sr := range series {
		med[sr.name] = sr.median()
	}
	ceiling, pipeSmall, pipeBig, pipeCoarse, pipeGroup := med["model-only"], med["pipeline-250"], med["pipeline-12mp"], med["pipeline-12mp-min120"], med["pipeline-12mp-min240-quarter"]
	embedRates, halfRates := map[string]float64{}, map[string]float64{}
	for _, size := range sizes {
		k := fmt.Sprintf("batch%d", size)
		embedRates[k] = round2(med["embed-"+k].unitsPerSec())
		if halfEmb != nil {
			halfRates[k] = round2(med["embed-fp16-"+k].unitsPerSec())
		}
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
		"embed_batch":                   ff.embedBatchSize(),
		"stages_250":                    stageReport(stages["pipeline-250"]),
		"stages_12mp":                   stageReport(stages["pipeline-12mp"]),
	}
	if halfEmb != nil {
		out["fp16_embedder_faces_per_s"] = halfRates
		out["fp16_vs_fp32_cosine"] = halfCos
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
	if halfEmb != nil {
		fmt.Fprintf(e.stdout, "embedder alone, fp16, faces/s by batch size:          %v\n", halfRates)
		fmt.Fprintf(e.stdout, "fp16 vs fp32 templates, cosine over %d faces:          min %.5f, mean %.5f\n",
			int(halfCos["faces"]), halfCos["min"], halfCos["mean"])
	}
	for _, name := range []string{"pipeline-250", "pipeline-12mp"} {
		r := stageReport(stages[name])
		fmt.Fprintf(e.stdout, "%s, ms per image by stage (summed over workers):", name)
		for _, st := range pipeline.Stages {
			fmt.Fprintf(e.stdout, " %s %.2f (%.0f%%)", st, r[st+"_ms_per_image"], 100*r[st+"_share"])
		}
		fmt.Fprintln(e.stdout)
	}
	return nil
}

// stageReport turns summed stage times into milliseconds per image and
// shares of the total; st["images"] holds the image count.
func stageReport(st map[string]time.Duration) map[string]float64 {
	out := map[string]float64{}
	n := float64(st["images"])
	var total time.Duration
	for _, s := range pipeline.Stages {
		total += st[s]
	}
	for _, s := range pipeline.Stages {
		if n > 0 {
			out[s+"_ms_per_image"] = round2(float64(st[s].Microseconds()) / 1000 / n)
		}
		if total > 0 {
			out[s+"_share"] = math.Round(float64(st[s])/float64(total)*1000) / 1000
		}
	}
	return out
}

// openFP16 opens the float16 variant of the pack (NAME-fp16 beside it in the
// installation), making it first when it is missing.
func openFP16(ctx context.Context, ff *faceFlags) (*onnx.Models, error) {
	src := ff.packDir()
	dst := src + "-fp16"
	if _, err := os.Stat(filepath.Join(dst, "manifest.json")); err != nil {
		if _, err := fp16.MakePack(src, dst); err != nil {
			return nil, fmt.Errorf("bench: make the fp16 pack: %w", err)
		}
	}
	o := *ff
	o.pack = dst
	kit, err := o.open(ctx, pipeline.Config{})
	if err != nil {
		return nil, fmt.Errorf("bench: open the fp16 pack %s: %w", dst, err)
	}
	return kit.Models, nil
}

// compareEmbedders embeds the aligned faces of the 250×250 inputs with the
// kit's embedder and with other, and returns the cosine between the two
// templates of each face: its minimum and mean, and the face count.
func compareEmbedders(ctx context.Context, kit *faceKit, other *onnx.Embedder, inputs [][]byte) (map[string]float64, error) {
	w, h := kit.Models.Embedder.InputSize()
	var crops []*imageproc.RGB
	for _, b := range inputs {
		d, err := imageproc.Decode(b, imageproc.DecodeOptions{Limits: imageproc.DefaultLimits})
		if err != nil {
			return nil, err
		}
		r, err := kit.Pipe.Process(ctx, d)
		if err != nil {
			return nil, err
		}
		for _, f := range r.Faces {
			c, _, err := pipeline.Align(d.Img, f.Landmarks, w, h)
			if err != nil {
				continue
			}
			crops = append(crops, c)
		}
	}
	if len(crops) == 0 {
		return nil, errors.New("bench: no aligned face to compare the embedders on")
	}
	a, err := kit.Models.Embedder.Embed(ctx, crops)
	if err != nil {
		return nil, err
	}
	b, err := other.Embed(ctx, crops)
	if err != nil {
		return nil, err
	}
	lo, sum := 1.0, 0.0
	for i := range a {
		c, err := a[i].Cosine(b[i])
		if err != nil {
			return nil, err
		}
		lo = math.Min(lo, c)
		sum += c
	}
	return map[string]float64{"faces": float64(len(a)), "min": math.Round(lo*1e5) / 1e5, "mean": math.Round(sum/float64(len(a))*1e5) / 1e5}, nil
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
