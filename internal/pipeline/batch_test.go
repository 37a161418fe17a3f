package pipeline

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
)

// crop is a 112×112 crop of one grey level, so that each gets its own template.
func crop(level byte) *imageproc.RGB {
	c := imageproc.NewRGB(112, 112)
	for i := range c.Pix {
		c.Pix[i] = level
	}
	for i := 0; i < 112*56*3; i += 3 {
		c.Pix[i] = 255 - level // the top half differs in red
	}
	return c
}

// TestBatcherMerges checks that the crops of concurrent callers go to the
// network in one call and that each caller gets its own templates, in order.
func TestBatcherMerges(t *testing.T) {
	inner := &fakeEmbedder{}
	// A linger far beyond the test: only a full batch starts the call.
	b := NewBatcher(inner, 8, time.Hour)
	const callers = 4
	want := make([][]face.Embedding, callers)
	got := make([][]face.Embedding, callers)
	in := make([][]*imageproc.RGB, callers)
	for i := range callers {
		in[i] = []*imageproc.RGB{crop(byte(10 * i)), crop(byte(10*i + 5))}
		w, err := (&fakeEmbedder{}).Embed(context.Background(), in[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = w
	}
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.Embed(context.Background(), in[i])
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !reflect.DeepEqual(want[i], got[i]) {
			t.Errorf("caller %d templates: got %v, want %v", i, got[i], want[i])
		}
	}
	if !reflect.DeepEqual([]int{8}, inner.recorded()) {
		t.Errorf("network calls by batch size: got %v, want %v", inner.recorded(), []int{8})
	}
}

// TestBatcherLinger checks that a batch that does not fill is still run.
func TestBatcherLinger(t *testing.T) {
	inner := &fakeEmbedder{}
	b := NewBatcher(inner, 64, time.Millisecond)
	got, err := b.Embed(context.Background(), []*imageproc.RGB{crop(1), crop(2), crop(3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] == nil || reflect.DeepEqual(got[0], got[1]) {
		t.Fatalf("got %d templates, want 3 distinct ones", len(got))
	}
	if !reflect.DeepEqual([]int{3}, inner.recorded()) {
		t.Errorf("network calls by batch size: got %v, want %v", inner.recorded(), []int{3})
	}
	// A call as large as the batch runs on its own, at once.
	big := make([]*imageproc.RGB, 64)
	for i := range big {
		big[i] = crop(byte(i))
	}
	if _, err := b.Embed(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]int{3, 64}, inner.recorded()) {
		t.Errorf("network calls by batch size: got %v, want [3 64]", inner.recorded())
	}
}

type failingEmbedder struct{ fakeEmbedder }

var errNetwork = errors.New("network failed")

func (*failingEmbedder) Embed(context.Context, []*imageproc.RGB) ([]face.Embedding, error) {
	return nil, errNetwork
}

// TestBatcherErrors checks that a failed call reaches every caller of the
// batch, and that a cancelled caller stops waiting.
func TestBatcherErrors(t *testing.T) {
	b := NewBatcher(&failingEmbedder{}, 2, time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.Embed(context.Background(), []*imageproc.RGB{crop(byte(i))})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, errNetwork) {
			t.Errorf("caller %d: %v, want the network's error", i, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wait := NewBatcher(&fakeEmbedder{}, 8, time.Hour)
	if _, err := wait.Embed(ctx, []*imageproc.RGB{crop(1)}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v, want context.Canceled", err)
	}
}

// TestPipelineEmbedBatch checks that Config.EmbedBatch merges the embedder
// calls of images processed at once, and that the faces and templates are
// those of the unbatched pipeline.
func TestPipelineEmbedBatch(t *testing.T) {
	img := decoded(redSquares(640, 480, square{100, 100, 120}, square{380, 200, 140}))
	plain := mustNew(t, &fakeDetector{w: 320, h: 240, minSide: 10}, &fakeLandmarker{}, &fakeEmbedder{}, Config{})
	want, err := plain.Process(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Faces) != 2 {
		t.Fatalf("unbatched pipeline found %d faces, want 2", len(want.Faces))
	}
	inner := &fakeEmbedder{}
	p := mustNew(t, &fakeDetector{w: 320, h: 240, minSide: 10}, &fakeLandmarker{}, inner, Config{EmbedBatch: 4})
	p.emb.(*Batcher).linger = time.Hour // only a full batch starts a call
	var wg sync.WaitGroup
	res := make([]*Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = p.Process(context.Background(), img)
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !reflect.DeepEqual(want.Faces, res[i].Faces) {
			t.Errorf("image %d faces: got %v, want %v", i, res[i].Faces, want.Faces)
		}
	}
	if !reflect.DeepEqual([]int{4}, inner.recorded()) {
		t.Errorf("network calls by batch size: got %v, want %v", inner.recorded(), []int{4})
	}
	st := p.StageTimes()
	for _, s := range []string{StageDetect, StageLandmarks, StageAlign, StageEmbed} {
		if st[s] <= 0 {
			t.Errorf("stage %s: no time recorded", s)
		}
	}
	p.ResetStageTimes()
	if st := p.StageTimes(); st[StageEmbed] != 0 {
		t.Errorf("after reset, embed time %v", st[StageEmbed])
	}
}
