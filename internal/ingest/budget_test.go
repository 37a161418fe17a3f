package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/imageproc/bombtest"
	"gabarit/internal/membudget"
	"gabarit/internal/pipeline"
)

// nullDetector finds no face; it records the most images held between
// their decoding and their detection at once.
type nullDetector struct{ inDetect, most atomic.Int64 }

func (*nullDetector) InputSize() (int, int) { return 0, 0 }
func (*nullDetector) HasLandmarks() bool    { return true }
func (d *nullDetector) Detect(ctx context.Context, img *imageproc.RGB) ([]face.Detection, error) {
	n := d.inDetect.Add(1)
	defer d.inDetect.Add(-1)
	for {
		m := d.most.Load()
		if n <= m || d.most.CompareAndSwap(m, n) {
			break
		}
	}
	return nil, ctx.Err()
}

// pipeAnalyzer is the face path as ingest sees it, on a real pipeline.
type pipeAnalyzer struct{ p *pipeline.Pipeline }

func (a pipeAnalyzer) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	r, err := a.p.ProcessBytes(ctx, data)
	if err != nil {
		return face.Analysis{}, err
	}
	return face.Analysis{Width: r.Width, Height: r.Height, Faces: r.Faces}, nil
}

// TestIngestBombsWithinBudget ingests a folder of decompression bombs (16-bit
// deflate TIFFs, interlaced 16-bit PNGs, lossless WebPs) with 2 workers and
// a budget that holds about two of them: every one is decoded and analysed,
// and the bytes reserved at once never exceed the budget. A bomb that needs
// more than the whole budget is refused at once with a message that says
// so, and the others go on.
func TestIngestBombsWithinBudget(t *testing.T) {
	files := map[string]string{}
	for i := range 3 {
		w, h := 900+10*i, 700 // distinct contents: ingest skips duplicates
		files[fmt.Sprintf("tiff%d.tif", i)] = string(bombtest.TIFF16(w, h))
		files[fmt.Sprintf("png%d.png", i)] = string(bombtest.PNG16(w, h, true))
		files[fmt.Sprintf("webp%d.webp", i)] = string(bombtest.WebPLossless(w, h))
	}
	files["huge.tif"] = string(bombtest.TIFF16(2500, 2000)) // about 170 MiB to decode
	e := newEnv(t, files)

	const size = 120 << 20
	budget := membudget.New(size)
	det := &nullDetector{}
	p, err := pipeline.New(det, nil, nil, pipeline.Config{SkipEmbedding: true, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := e.run(t, context.Background(), pipeAnalyzer{p})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images != 9 || sum.Failed != 1 {
		t.Fatalf("%+v, errors %+v: want the 9 bombs that fit analysed and huge.tif refused", sum.Stats, sum.Errors)
	}
	// The limit is the budget less what the analysis reserves besides.
	if fe := sum.Errors[0]; fe.File != "huge.tif" || !strings.Contains(fe.Reason, "(2500×2000 pixels) would take ") ||
		!strings.Contains(fe.Reason, " MiB of memory to decode; the limit is 88 MiB") {
		t.Errorf("error %+v, want huge.tif refused for its memory", fe)
	}
	hw := budget.HighWater()
	if hw > size || hw < 30<<20 {
		t.Errorf("high-water mark %d bytes, want between one bomb and the budget (%d)", hw, size)
	}
	if got := budget.InUse(); got != 0 {
		t.Errorf("%d bytes still reserved after the run", got)
	}
	t.Logf("high-water mark %d MiB of %d; at most %d images in the detector at once", hw>>20, size>>20, det.most.Load())
}

// TestProcessBudgetRefusals checks the two refusals of the pipeline's
// budget: an image over the whole budget at once, and an image whose wait
// runs out, both before anything is decoded; and that what an analysis
// reserved is given back when it fails.
func TestProcessBudgetRefusals(t *testing.T) {
	budget := membudget.New(64 << 20)
	p, err := pipeline.New(&nullDetector{}, nil, nil, pipeline.Config{SkipEmbedding: true, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = p.ProcessBytes(ctx, bombtest.TIFF16(2000, 2000))
	var me *imageproc.MemoryLimitError
	if !errors.As(err, &me) || me.Limit != 32<<20 || !errors.Is(err, imageproc.ErrTooLarge) {
		t.Fatalf("err %v, want an *imageproc.MemoryLimitError of the budget less the analysis", err)
	}

	hold, _ := budget.Acquire(ctx, 60<<20)
	_, err = p.ProcessBytes(membudget.WithMaxWait(ctx, 0), bombtest.WebPLossless(500, 500))
	var be *membudget.BusyError
	if !errors.As(err, &be) {
		t.Fatalf("err %v, want a *membudget.BusyError while the budget is held", err)
	}
	hold()

	cancelled, cancel := context.WithCancel(ctx)
	cancel() // the detector fails with the context's error, after the decode
	if _, err := p.ProcessBytes(cancelled, bombtest.PNG16(300, 200, false)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want the detector's context.Canceled", err)
	}
	path := filepath.Join(t.TempDir(), "b.webp")
	if err := os.WriteFile(path, bombtest.WebPLossless(400, 300), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := p.ProcessFile(ctx, path); err != nil || r.Width != 400 {
		t.Fatalf("ProcessFile: %v, %v", r, err)
	}
	if got := budget.InUse(); got != 0 {
		t.Errorf("%d bytes still reserved", got)
	}
}
