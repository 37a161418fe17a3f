package hnsw

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/kernel"
)

// MaxDim is the largest dimension New accepts and Load reads.
const MaxDim = 1 << 16

// Limits on the Config fields, which Load also checks.
const (
	maxM  = 256     // largest Config.M
	maxEf = 1 << 16 // largest Config.EfConstruction and Config.EfSearch
)

var _ vindex.Index = (*Index)(nil)

// Config tunes the graph. Zero fields take their defaults.
type Config struct {
	// M is the number of links a node keeps on the levels above 0; level 0
	// keeps 2M. More links raise recall and RAM (4 bytes × 2M per face).
	// Default 16, range [2, 256].
	M int
	// EfConstruction is the beam width of an insertion: wider builds a
	// better graph, more slowly. Default 200, at least M.
	EfConstruction int
	// EfSearch is the beam width of a search (at least k is used): wider
	// raises recall and latency. Default 64.
	EfSearch int
	// Seed seeds the level draws, so that a build is reproducible.
	Seed int64
}

// withDefaults returns cfg with zero fields set to their defaults, and an
// error when a field is out of range.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.M == 0 {
		cfg.M = 16
	}
	if cfg.EfConstruction == 0 {
		cfg.EfConstruction = 200
	}
	if cfg.EfSearch == 0 {
		cfg.EfSearch = 64
	}
	switch {
	case cfg.M < 2 || cfg.M > maxM:
		return cfg, fmt.Errorf("m %d out of range [2, %d]", cfg.M, maxM)
	case cfg.EfConstruction < cfg.M || cfg.EfConstruction > maxEf:
		return cfg, fmt.Errorf("efConstruction %d out of range [m=%d, %d]", cfg.EfConstruction, cfg.M, maxEf)
	case cfg.EfSearch < 1 || cfg.EfSearch > maxEf:
		return cfg, fmt.Errorf("efSearch %d out of range [1, %d]", cfg.EfSearch, maxEf)
	}
	return cfg, nil
}

// Index is an approximate in-memory vector index. All its methods are safe
// for concurrent use: searches share a read lock; Add (per vector), Delete,
// Compact and Close take the write lock.
type Index struct {
	dim int
	cfg Config

	mu     sync.RWMutex
	g      *graph
	closed bool

	vis sync.Pool // *visited
}

// New returns an empty index for vectors of dimension dim. It panics if dim
// is not in [1, MaxDim] or a Config field is out of range, as make does for
// a negative length.
func New(dim int, cfg Config) *Index {
	if dim < 1 || dim > MaxDim {
		panic(fmt.Sprintf("hnsw: dimension %d out of range [1, %d]", dim, MaxDim))
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic("hnsw: " + err.Error())
	}
	return &Index{dim: dim, cfg: cfg, g: newGraph(dim, cfg, 0)}
}

// Dim returns the dimension of the index's vectors.
func (x *Index) Dim() int { return x.dim }

// Len returns the number of live vectors in the index, 0 once it is closed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return 0
	}
	return len(x.g.slot)
}

// Tombstones returns the number of deleted slots still in the graph: they
// cost RAM and search time until Compact (or a reindex) rebuilds it.
func (x *Index) Tombstones() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return 0
	}
	return x.g.nDead
}

// getVisited returns a visited set from the pool, reset for n slots.
func (x *Index) getVisited(n int) *visited {
	v, _ := x.vis.Get().(*visited)
	if v == nil {
		v = new(visited)
	}
	v.reset(n)
	return v
}

// Add inserts or replaces the vectors of ids, as vindex.Index.Add says. Every
// vector is checked (length Dim, finite values) before any is stored; then
// each is inserted under the write lock, released between vectors, and
// the context is checked between vectors. A replaced id is deleted (its old
// vector zeroed) and inserted anew. Add copies the vectors.
func (x *Index) Add(ctx context.Context, ids []int64, vecs [][]float32) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hnsw add: %w", err)
	}
	if len(ids) != len(vecs) {
		return fmt.Errorf("hnsw add: %d ids for %d vectors", len(ids), len(vecs))
	}
	for i, v := range vecs {
		if len(v) != x.dim {
			return fmt.Errorf("hnsw add id %d: length %d, index dimension %d: %w", ids[i], len(v), x.dim, vindex.ErrDim)
		}
		if !finite(v) {
			return fmt.Errorf("hnsw add id %d: vector has a NaN or infinite value", ids[i])
		}
	}
	for i, id := range ids {
		if i > 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("hnsw add: %w", err)
			}
		}
		if err := x.add1(id, vecs[i]); err != nil {
			return err
		}
	}
	return nil
}

// add1 inserts or replaces one vector under the write lock.
func (x *Index) add1(id int64, v []float32) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("hnsw add: %w", vindex.ErrClosed)
	}
	g := x.g
	if s, ok := g.slot[id]; ok {
		g.remove(s)
	}
	if g.n() >= math.MaxUint32-1 {
		return fmt.Errorf("hnsw add: index would exceed %d slots", math.MaxUint32-1)
	}
	vis := x.getVisited(g.n() + 1)
	g.insert(id, v, vis)
	x.vis.Put(vis)
	return nil
}

// Delete removes ids, as vindex.Index.Delete says: once it returns, no
// Search returns them. Each deleted slot is tombstoned, its vector, codes
// and id zeroed and its neighbours re-linked (about 2 ms per id at
// dimension 512 and M=16, under the write lock; removing a large share of
// the index is cheaper through Compact or a rebuild).
func (x *Index) Delete(ctx context.Context, ids []int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hnsw delete: %w", err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("hnsw delete: %w", vindex.ErrClosed)
	}
	for _, id := range ids {
		if s, ok := x.g.slot[id]; ok {
			x.g.remove(s)
		}
	}
	return nil
}

// Search returns up to k hits with Score >= minScore, as vindex.Index.Search
// says, approximately: it descends the graph, runs a beam of width
// max(EfSearch, k) on level 0 over int8 codes, keeping only live ids that f
// accepts (others are traversed, not kept), and re-ranks the kept
// candidates with the exact float32 cosine. A filter that rejects most ids
// makes the beam walk much of the graph (the context is checked during the
// walk); f is called at most once per visited id, under the read lock.
func (x *Index) Search(ctx context.Context, q []float32, k int, minScore float32, f vindex.Filter) ([]vindex.Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("hnsw search: %w", err)
	}
	if len(q) != x.dim {
		return nil, fmt.Errorf("hnsw search: query length %d, index dimension %d: %w", len(q), x.dim, vindex.ErrDim)
	}
	if minScore <= -1 {
		minScore = float32(math.Inf(-1)) // rounding may put an opposite vector just below -1
	}
	if k <= 0 {
		return nil, nil
	}
	qc := query{code: make([]int8, x.dim)}
	qc.scale = quantize(q, qc.code)

	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return nil, fmt.Errorf("hnsw search: %w", vindex.ErrClosed)
	}
	g := x.g
	if len(g.slot) == 0 {
		return nil, nil
	}
	ep := cand{g.sim(qc, g.entry), g.entry}
	for l := g.top; l > 0; l-- {
		ep = g.greedy(qc, ep, l)
	}
	accept := func(s uint32) bool { return !g.isDead(s) && (f == nil || f(g.ids[s])) }
	vis := x.getVisited(g.n())
	vis.visit(ep.s)
	cs, err := g.searchLayer(ctx, qc, []cand{ep}, max(x.cfg.EfSearch, k), 0, accept, vis)
	x.vis.Put(vis)
	if err != nil {
		return nil, fmt.Errorf("hnsw search: %w", err)
	}

	hits := make([]vindex.Hit, 0, len(cs))
	for _, c := range cs {
		if sc := kernel.Dot(q, g.vec(c.s)); sc >= minScore {
			hits = append(hits, vindex.Hit{ID: g.ids[c.s], Score: sc})
		}
	}
	slices.SortFunc(hits, func(a, b vindex.Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return hits[:min(k, len(hits))], nil
}

// Compact rebuilds the graph from the live vectors, dropping the
// tombstones, and zeroes the old graph's vectors. It holds the write lock
// throughout (a rebuild costs as much as adding every vector again), so
// searches wait; on a cancelled context the old graph stays.
func (x *Index) Compact(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hnsw compact: %w", err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("hnsw compact: %w", vindex.ErrClosed)
	}
	old := x.g
	g := newGraph(x.dim, x.cfg, uint64(old.n()))
	vis := new(visited)
	for s := range uint32(old.n()) {
		if old.isDead(s) {
			continue
		}
		if g.n()%256 == 0 {
			if err := ctx.Err(); err != nil {
				g.reset()
				return fmt.Errorf("hnsw compact: %w", err)
			}
		}
		vis.reset(g.n() + 1)
		g.insert(old.ids[s], old.vec(s), vis)
	}
	old.reset()
	x.g = g
	return nil
}

// Close releases the index and zeroes its vectors; later calls return
// vindex.ErrClosed, a second Close returns nil.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.g.reset()
	x.closed = true
	return nil
}

// memBytes estimates the RAM the graph holds, in bytes: used counts the
// lengths of its slices, held their capacities (what append's growth
// reserved); both add about 40 bytes per map entry.
func (x *Index) memBytes() (used, held int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	g := x.g
	used = len(g.codes) + 4*len(g.scales) + 4*len(g.vecs) + 8*len(g.ids) + len(g.levels) + 4*len(g.links0) + 8*len(g.dead)
	held = cap(g.codes) + 4*cap(g.scales) + 4*cap(g.vecs) + 8*cap(g.ids) + cap(g.levels) + 4*cap(g.links0) + 8*cap(g.dead)
	maps := 40 * len(g.slot)
	for _, u := range g.upper {
		maps += 40 + 4*len(u)
	}
	return used + maps, held + maps
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
