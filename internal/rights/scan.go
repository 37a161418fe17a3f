package rights

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"gabarit/internal/rights/preselect"
)

// PartsPerWorker is how many parts of the id range a parallel scan makes
// per worker: small enough parts that a slow one (a dense stretch of ids,
// a worker slowed by other work) does not hold the others up, few enough
// that the queries cost nothing next to the decryption.
const PartsPerWorker = 8

// RangeStore is what a parallel scan reads; *store.DB implements it. A
// Store that also implements it has its faces compared by several workers
// at once, by face-id range; one that does not is scanned by one
// goroutine through AllTemplates. Both find the same candidates.
type RangeStore interface {
	// FaceIDRange returns the number of faces of model modelID and the
	// least and greatest of their ids (0, 0 when there are none).
	FaceIDRange(ctx context.Context, modelID string) (n, lo, hi int64, err error)
	// TemplatesInRange streams the templates of the faces of modelID with
	// ids in lo..hi to fn in id order, like AllTemplates; fn may read the
	// store, and may be called from several ranges at once.
	TemplatesInRange(ctx context.Context, modelID string, lo, hi int64, fn func(faceID, sourceID int64, modelID string, template []byte) error) error
}

// IDRange is the face ids Lo..Hi, both included.
type IDRange struct{ Lo, Hi int64 }

// Parts cuts the ids lo..hi into p ranges of sizes that differ by at most
// one, in order, covering every id once: fewer when there are fewer ids
// than p (one id each), none when lo > hi; p < 1 counts as 1. It depends on
// nothing but its arguments, so instances that agree on lo, hi and p agree
// on the parts: the parts of one scan can be handed to several instances,
// each scanning its own, and their candidates merged by id. Ids are face
// ids: not negative.
func Parts(lo, hi int64, p int) []IDRange {
	if lo > hi {
		return nil
	}
	n := uint64(hi-lo) + 1
	parts := uint64(max(p, 1))
	if parts > n {
		parts = n
	}
	size, extra := n/parts, n%parts
	out := make([]IDRange, 0, parts)
	for i := range parts {
		k := size
		if i < extra {
			k++
		}
		out = append(out, IDRange{Lo: lo, Hi: lo + int64(k) - 1})
		lo += int64(k)
	}
	return out
}

// workers returns how many goroutines a scan uses: e.Workers, or
// GOMAXPROCS when it is not set.
func (e *Engine) workers() int {
	if e.Workers > 0 {
		return e.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// scanRanges is the parallel scan (see scan): workers goroutines take the
// parts of lo..hi one at a time, stream each from rs, open and score its
// templates, and keep the faces whose best similarity reaches loosest. The
// candidates are returned in id order, whatever the workers: the same as
// a scan by one goroutine. The first error (a part's read, a face that
// cannot be opened, ctx's) stops every worker and is returned.
func (e *Engine) scanRanges(ctx context.Context, rs RangeStore, s *preselect.Scorer, held map[int64]bool, loosest float64, lo, hi int64, workers, parts int, actor string) (out []scored, n, unreadable int, err error) {
	ranges := Parts(lo, hi, parts)
	workers = max(1, min(workers, len(ranges)))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type tally struct {
		out           []scored
		n, unreadable int
	}
	var (
		next    atomic.Int64 // the index of the next part to take
		tallies = make([]tally, workers)
		wg      sync.WaitGroup
	)
	for w := range tallies {
		t := &tallies[w]
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(ranges) {
					return
				}
				seen := 0
				err := rs.TemplatesInRange(ctx, e.ModelID, ranges[i].Lo, ranges[i].Hi, func(faceID, sourceID int64, modelID string, blob []byte) error {
					if seen++; seen%256 == 0 {
						if err := ctx.Err(); err != nil {
							return err
						}
					}
					tm, quarantined, err := e.opened(ctx, held, faceID, sourceID, modelID, blob, actor)
					if quarantined {
						t.unreadable++
					}
					if tm == nil || err != nil {
						return err
					}
					t.n++
					score, sims, best := s.Score(tm)
					if best >= loosest {
						t.out = append(t.out, scored{id: faceID, score: score, best: best, sims: sims, template: tm})
					}
					return nil
				})
				if err != nil {
					cancel(err) // the first cause wins: a later one is the others stopping
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, 0, 0, err
	}
	for _, t := range tallies {
		out = append(out, t.out...)
		n += t.n
		unreadable += t.unreadable
	}
	slices.SortFunc(out, func(a, b scored) int { return cmp.Compare(a.id, b.id) })
	return out, n, unreadable, nil
}
