package flat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/kernel"
)

// MaxDim is the largest dimension New accepts and Load reads.
const MaxDim = 1 << 16

const (
	// parallelMin is the number of vectors above which Search splits the scan
	// across runtime.GOMAXPROCS(0) goroutines; below it the goroutines cost
	// more than they save.
	parallelMin = 20_000
	// scanChunk is how many vectors a scan compares between two checks of
	// its context (about 1 ms at dimension 512).
	scanChunk = 4096
)

var _ vindex.Index = (*Index)(nil)

// Index is an exact in-memory vector index. All its methods are safe for
// concurrent use: searches share a read lock and run in parallel with one
// another; Add, Delete and Close take the write lock.
type Index struct {
	dim         int
	parallelMin int // Len above which Search scans in parallel; a field so tests can lower it

	mu     sync.RWMutex
	slab   []float32       // vector of slot s at slab[s*dim:(s+1)*dim]
	ids    []int64         // id of slot s
	slot   map[int64]int32 // id → slot
	closed bool
}

// New returns an empty index for vectors of dimension dim. It panics if dim
// is not in [1, MaxDim], as make does for a negative length.
func New(dim int) *Index {
	if dim < 1 || dim > MaxDim {
		panic(fmt.Sprintf("flat: dimension %d out of range [1, %d]", dim, MaxDim))
	}
	return &Index{dim: dim, parallelMin: parallelMin, slot: make(map[int64]int32)}
}

// Dim returns the dimension of the index's vectors.
func (x *Index) Dim() int { return x.dim }

// Len returns the number of vectors in the index, 0 once it is closed.
// It never fails; it has vindex.Index's signature.
func (x *Index) Len(context.Context) (int, error) { return x.Count(), nil }

// Count returns the number of vectors in the index, 0 once it is closed.
func (x *Index) Count() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.ids)
}

// Add inserts or replaces the vectors of ids, as vindex.Index.Add says. It is
// all or nothing: every vector is checked (length Dim, finite values) before
// any is stored. Add copies the vectors.
func (x *Index) Add(ctx context.Context, ids []int64, vecs [][]float32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flat add: %w", err)
	}
	if len(ids) != len(vecs) {
		return fmt.Errorf("flat add: %d ids for %d vectors", len(ids), len(vecs))
	}
	for i, v := range vecs {
		if len(v) != x.dim {
			return fmt.Errorf("flat add id %d: length %d, index dimension %d: %w", ids[i], len(v), x.dim, vindex.ErrDim)
		}
		if !finite(v) {
			return fmt.Errorf("flat add id %d: vector has a NaN or infinite value", ids[i])
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("flat add: %w", vindex.ErrClosed)
	}
	if len(x.ids)+len(ids) > math.MaxInt32 {
		return fmt.Errorf("flat add: index would exceed %d vectors", math.MaxInt32)
	}
	x.slab = slices.Grow(x.slab, len(ids)*x.dim)
	for i, id := range ids {
		if s, ok := x.slot[id]; ok {
			copy(x.vec(int(s)), vecs[i])
			continue
		}
		x.slot[id] = int32(len(x.ids))
		x.ids = append(x.ids, id)
		x.slab = append(x.slab, vecs[i]...)
	}
	return nil
}

// Delete removes ids, as vindex.Index.Delete says: once it returns, no
// Search sees them. Each removal moves the last vector into the freed slot
// and zeroes the vacated memory.
func (x *Index) Delete(ctx context.Context, ids []int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flat delete: %w", err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("flat delete: %w", vindex.ErrClosed)
	}
	for _, id := range ids {
		s, ok := x.slot[id]
		if !ok {
			continue
		}
		delete(x.slot, id)
		last := len(x.ids) - 1
		if int(s) != last {
			moved := x.ids[last]
			copy(x.vec(int(s)), x.vec(last))
			x.ids[s] = moved
			x.slot[moved] = s
		}
		clear(x.vec(last))
		x.slab = x.slab[:last*x.dim]
		x.ids = x.ids[:last]
	}
	return nil
}

// Search returns the k best hits with Score >= minScore, as
// vindex.Index.Search says, by comparing q with every vector. Above 20,000
// vectors the scan is split across runtime.GOMAXPROCS(0) goroutines; f is
// then called from several goroutines at once.
func (x *Index) Search(ctx context.Context, q []float32, k int, minScore float32) ([]vindex.Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("flat search: %w", err)
	}
	if len(q) != x.dim {
		return nil, fmt.Errorf("flat search: query length %d, index dimension %d: %w", len(q), x.dim, vindex.ErrDim)
	}
	if minScore <= -1 {
		minScore = float32(math.Inf(-1)) // rounding may put an opposite vector just below -1
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return nil, fmt.Errorf("flat search: %w", vindex.ErrClosed)
	}
	n := len(x.ids)
	if k <= 0 || n == 0 {
		return nil, nil
	}
	k = min(k, n)
	procs := runtime.GOMAXPROCS(0)
	if n <= x.parallelMin || procs == 1 {
		h := newHeap(k)
		if err := scan(ctx, q, x.slab, x.ids, minScore, &h); err != nil {
			return nil, fmt.Errorf("flat search: %w", err)
		}
		return h.sorted(), nil
	}

	heaps := make([]hitHeap, procs)
	errs := make([]error, procs)
	per := (n + procs - 1) / procs
	var wg sync.WaitGroup
	for p := range procs {
		lo, hi := p*per, min((p+1)*per, n)
		if lo >= hi {
			break
		}
		heaps[p] = newHeap(k)
		wg.Go(func() {
			errs[p] = scan(ctx, q, x.slab[lo*x.dim:hi*x.dim], x.ids[lo:hi], minScore, &heaps[p])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("flat search: %w", err)
	}
	merged := newHeap(k)
	for _, h := range heaps {
		for _, hit := range h.hits {
			if merged.accepts(hit.ID, hit.Score) {
				merged.push(hit)
			}
		}
	}
	return merged.sorted(), nil
}

// Close releases the index and zeroes its vectors; later calls return
// vindex.ErrClosed, a second Close returns nil.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	clear(x.slab[:cap(x.slab)])
	x.slab, x.ids, x.slot, x.closed = nil, nil, nil, true
	return nil
}

// vec returns the vector in slot s (aliasing the slab).
func (x *Index) vec(s int) []float32 {
	return x.slab[s*x.dim : (s+1)*x.dim : (s+1)*x.dim]
}

// scan compares q with the vectors of slab (len(ids) of them, each of length
// len(q)) and pushes those scoring at least minScore and accepted by f into
// h. It checks ctx every scanChunk vectors and does not allocate.
func scan(ctx context.Context, q, slab []float32, ids []int64, minScore float32, h *hitHeap) error {
	dim := len(q)
	for lo := 0; lo < len(ids); lo += scanChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+scanChunk, len(ids))
		for s := lo; s < hi; s++ {
			score := kernel.Dot(q, slab[s*dim:(s+1)*dim])
			if !(score >= minScore) {
				continue
			}
			id := ids[s]
			if !h.accepts(id, score) {
				continue
			}
			h.push(vindex.Hit{ID: id, Score: score})
		}
	}
	return nil
}

// finite reports whether v holds no NaN or infinite value.
func finite(v []float32) bool {
	for _, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return false
		}
	}
	return true
}
