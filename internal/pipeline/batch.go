package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
)

// Batcher is an Embedder that gathers the crops of concurrent callers (the
// images processed at once) into one network call of up to Size crops: a
// GPU is fed batches of many images' faces instead of one image's few.
// A batch starts as soon as Size crops wait, or Linger after its first
// crop arrived. Safe for concurrent use.
type Batcher struct {
	emb    Embedder
	size   int
	linger time.Duration

	mu      sync.Mutex
	pending []*batchReq
	crops   int
	timer   *time.Timer
	gen     int // bumped each time pending is taken
}

type batchReq struct {
	crops []*imageproc.RGB
	out   []face.Embedding
	err   error
	done  chan struct{}
}

var _ Embedder = (*Batcher)(nil)

// DefaultLinger is how long a partial batch waits for more crops.
const DefaultLinger = 2 * time.Millisecond

// NewBatcher wraps emb so that calls are merged into batches of up to size
// crops (size ≥ 1); linger ≤ 0 means DefaultLinger.
func NewBatcher(emb Embedder, size int, linger time.Duration) *Batcher {
	if linger <= 0 {
		linger = DefaultLinger
	}
	return &Batcher{emb: emb, size: max(size, 1), linger: linger}
}

// Dim returns the template length.
func (b *Batcher) Dim() int { return b.emb.Dim() }

// InputSize returns the aligned crop size.
func (b *Batcher) InputSize() (w, h int) { return b.emb.InputSize() }

// Embed queues crops for the next batch and returns their templates, in
// order. A call with Size crops or more runs at once, on its own.
func (b *Batcher) Embed(ctx context.Context, crops []*imageproc.RGB) ([]face.Embedding, error) {
	if len(crops) == 0 {
		return nil, nil
	}
	if len(crops) >= b.size {
		return b.emb.Embed(ctx, crops)
	}
	r := &batchReq{crops: crops, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	b.crops += len(crops)
	if b.crops >= b.size {
		batch := b.take()
		b.mu.Unlock()
		b.run(ctx, batch)
	} else {
		if len(b.pending) == 1 {
			gen := b.gen
			b.timer = time.AfterFunc(b.linger, func() { b.flush(gen) })
		}
		b.mu.Unlock()
	}
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
		// The batch still runs for the others; this caller stops waiting.
		return nil, ctx.Err()
	}
}

// take empties the queue; b.mu is held.
func (b *Batcher) take() []*batchReq {
	batch := b.pending
	b.pending, b.crops = nil, 0
	b.gen++
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	return batch
}

// flush runs the queue when the linger of generation gen expires.
func (b *Batcher) flush(gen int) {
	b.mu.Lock()
	if b.gen != gen || len(b.pending) == 0 {
		b.mu.Unlock()
		return
	}
	batch := b.take()
	b.mu.Unlock()
	// The callers' contexts may differ; the batch is not cancelled for one.
	b.run(context.Background(), batch)
}

// run embeds a batch and hands each caller its part.
func (b *Batcher) run(ctx context.Context, batch []*batchReq) {
	var all []*imageproc.RGB
	for _, r := range batch {
		all = append(all, r.crops...)
	}
	embs, err := b.emb.Embed(context.WithoutCancel(ctx), all)
	if err == nil && len(embs) != len(all) {
		err = fmt.Errorf("embedder returned %d templates for %d crops", len(embs), len(all))
	}
	k := 0
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.out = embs[k : k+len(r.crops)]
			k += len(r.crops)
		}
		close(r.done)
	}
}
