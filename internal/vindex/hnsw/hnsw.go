package hnsw

import (
	"cmp"
	"context"
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
	// Seed seeds the level draws. A build on one worker is reproducible; on
	// several, the order in which the workers link the nodes varies.
	Seed int64
	// Workers is how many goroutines link the vectors of one Add (or a
	// Compact) into the graph at once. Default GOMAXPROCS. It is not saved.
	Workers int
	// Source, when non-nil, gives the exact vectors that a search re-scores
	// its candidates with: every returned Score is then the exact cosine
	// (to float32 rounding) of the vector Source holds. When nil, Scores
	// are those of the int8 codes, within ScoreTolerance of the exact
	// cosine. It is not saved; pass it again to Load.
	Source VectorSource
	// Rescore is how many of a search's best candidates by int8 score are
	// re-scored with the Source (at least k are): the int8 order is off by
	// a few thousandths of cosine only, so the true top k are among the
	// first few dozen, and each re-score costs a vector read. Default 32.
	// It is not saved.
	Rescore int
}

// ScoreTolerance bounds how far a Score computed from the int8 codes (an
// index without a Source) may lie from the exact cosine of the vectors
// added, for L2-normalised vectors: each code is off by at most half a
// step of max|x|/127, so the error is at most about max|x|·max|y|·dim/127,
// and in practice a few thousandths (measured below 0.003 at dimension 64
// and 512 on random and face-like vectors). A caller comparing such scores
// to a decision threshold should re-score the hits near it with the exact
// vectors, or give the index a Source.
const ScoreTolerance = 0.01

// VectorSource gives an index the exact vectors of its ids, so that it can
// keep only int8 codes in RAM. In production it is the store's templates,
// decrypted; in a benchmark, a file of float32 vectors.
type VectorSource interface {
	// Vectors writes the current vector of ids[i] (L2-normalised, length
	// Dim) into dst[i] and sets ok[i]; when it no longer holds ids[i] it
	// sets ok[i] false and the id is left out of the search's results.
	// len(ids) == len(dst) == len(ok). It is called without the index's
	// locks, by several searches at once, so it must be safe for
	// concurrent use, and it must not call the index.
	Vectors(ctx context.Context, ids []int64, dst [][]float32, ok []bool) error
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
	if cfg.Rescore <= 0 {
		cfg.Rescore = 32
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
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
// for concurrent use: searches share a read lock; Add takes the write lock
// to reserve the slots of a chunk of vectors, then links them in parallel
// under the read lock (searches go on meanwhile); Delete, Compact and Close
// take the write lock.
type Index struct {
	dim int
	cfg Config

	mu     sync.RWMutex
	g      *graph
	closed bool

	visMu   sync.Mutex
	visFree []*visited // visited sets for reuse; unlike a sync.Pool, a GC does not empty it
	bufs    sync.Pool  // *[]float32, re-score buffers
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
// It never fails; it has vindex.Index's signature.
func (x *Index) Len(context.Context) (int, error) { return x.Count(), nil }

// Count returns the number of live vectors in the index, 0 once it is closed.
func (x *Index) Count() int {
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

// getVisited returns a visited set for reuse, reset for n slots. At one
// million slots a set is 5 MB: a sync.Pool, which every GC empties, made
// searches allocate and zero one after each GC, a latency tail.
func (x *Index) getVisited(n int) *visited {
	x.visMu.Lock()
	var v *visited
	if k := len(x.visFree); k > 0 {
		v, x.visFree = x.visFree[k-1], x.visFree[:k-1]
	}
	x.visMu.Unlock()
	if v == nil {
		v = new(visited)
	}
	v.reset(n)
	return v
}

// putVisited keeps v for reuse, up to one set per concurrent search or
// insertion that the CPUs can run (more would be held for nothing).
func (x *Index) putVisited(v *visited) {
	x.visMu.Lock()
	defer x.visMu.Unlock()
	if len(x.visFree) < 2*runtime.GOMAXPROCS(0) {
		x.visFree = append(x.visFree, v)
	}
}

// addChunk is how many vectors Add reserves at once: its write lock is
// held for the reservation only (quantising and appending them), and the
// context is checked between chunks and between vectors while linking.
const addChunk = 4096

// Add inserts or replaces the vectors of ids, as vindex.Index.Add says. Every
// vector is checked (length Dim, finite values) before any is stored. Then,
// chunk by chunk, their int8 codes are appended under the write lock and
// they are linked into the graph by Config.Workers goroutines under the
// read lock. A replaced id is deleted (its old codes zeroed) and inserted
// anew; when an id occurs twice in ids, only its last vector is inserted.
// Add keeps the int8 codes only, not the vectors.
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
	last := make(map[int64]int, len(ids))
	for i, id := range ids {
		last[id] = i
	}
	for lo := 0; lo < len(ids); lo += addChunk {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("hnsw add: %w", err)
		}
		hi := min(lo+addChunk, len(ids))
		g, slots, err := x.reserve(ids[lo:hi], vecs[lo:hi], func(i int) bool { return last[ids[lo+i]] == lo+i })
		if err != nil {
			return err
		}
		if err := x.link(ctx, g, slots); err != nil {
			return err
		}
	}
	return nil
}

// reserve appends slots for the vectors whose index keep accepts, under the
// write lock, and returns the graph they are in and the slots.
func (x *Index) reserve(ids []int64, vecs [][]float32, keep func(i int) bool) (*graph, []uint32, error) {
	code := make([]int8, x.dim)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil, nil, fmt.Errorf("hnsw add: %w", vindex.ErrClosed)
	}
	g := x.g
	if g.n()+len(ids) >= math.MaxUint32-1 {
		return nil, nil, fmt.Errorf("hnsw add: index would exceed %d slots", math.MaxUint32-1)
	}
	for i, id := range ids {
		if s, ok := g.slot[id]; ok && keep(i) {
			g.remove(s)
		}
	}
	slots := make([]uint32, 0, len(ids))
	for i, id := range ids {
		if !keep(i) {
			continue
		}
		scale := quantize(vecs[i], code)
		s := g.grow(id, code, scale, g.randomLevel())
		g.slot[id] = s
		slots = append(slots, s)
	}
	return g, slots, nil
}

// link links the reserved slots of g in under the read lock. When the
// index was compacted meanwhile, the new graph already holds them; when it
// was closed, it returns ErrClosed. On a done context, the slots not yet
// linked are deleted again.
func (x *Index) link(ctx context.Context, g *graph, slots []uint32) error {
	x.mu.RLock()
	if x.closed {
		x.mu.RUnlock()
		return fmt.Errorf("hnsw add: %w", vindex.ErrClosed)
	}
	if x.g != g {
		x.mu.RUnlock()
		return nil
	}
	n := g.n()
	left, err := g.linkAll(ctx, slots, x.cfg.Workers,
		func() *visited { return x.getVisited(n) },
		x.putVisited)
	x.mu.RUnlock()
	if err == nil {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.g == g && !x.closed {
		for _, s := range left {
			if !g.isDead(s) {
				g.remove(s)
			}
		}
	}
	return fmt.Errorf("hnsw add: %w", err)
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
// accepts (others are traversed, not kept). Without a Source, the kept
// candidates are ranked by their int8 scores (within ScoreTolerance of the
// exact cosine). With one, the read lock is released, the vectors of the
// Config.Rescore best candidates are fetched from the Source and
// re-scored exactly, and the read
// lock is taken again to drop the ids deleted meanwhile, so that a Delete
// that returned before that check is always honoured. A filter that
// rejects most ids makes the beam walk much of the graph (the context is
// checked during the walk); f is called at most once per visited id, under
// the read lock.
func (x *Index) Search(ctx context.Context, q []float32, k int, minScore float32) ([]vindex.Hit, error) {
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
	hits, err := x.walk(ctx, q, k)
	if err != nil || len(hits) == 0 {
		return nil, err
	}
	if src := x.cfg.Source; src != nil {
		if hits, err = x.rescore(ctx, src, q, hits, max(k, x.cfg.Rescore)); err != nil {
			return nil, err
		}
	}
	kept := hits[:0]
	for _, h := range hits {
		if h.Score >= minScore {
			kept = append(kept, h)
		}
	}
	slices.SortFunc(kept, func(a, b vindex.Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return kept[:min(k, len(kept))], nil
}

// walk runs the graph search under the read lock and returns the beam's
// candidates with their int8 scores, in no particular order.
func (x *Index) walk(ctx context.Context, q []float32, k int) ([]vindex.Hit, error) {
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
	entry, top := g.entryPoint()
	if top < 0 {
		return nil, nil // reserved slots, none linked yet
	}
	ep := cand{g.sim(qc, entry), entry}
	for l := top; l > 0; l-- {
		ep = g.greedy(qc, ep, l)
	}
	accept := func(s uint32) bool { return !g.isDead(s) }
	vis := x.getVisited(g.n())
	vis.visit(ep.s)
	cs, err := g.searchLayer(ctx, qc, []cand{ep}, max(x.cfg.EfSearch, k), 0, accept, vis)
	x.putVisited(vis)
	if err != nil {
		return nil, fmt.Errorf("hnsw search: %w", err)
	}
	hits := make([]vindex.Hit, len(cs))
	for i, c := range cs {
		hits[i] = vindex.Hit{ID: g.ids[c.s], Score: c.sim}
	}
	return hits, nil
}

// rescore keeps the best n hits by int8 score and replaces their scores
// with the exact cosines of the vectors src holds, drops the ids src no
// longer has, then drops, under the read lock, the ids deleted since the
// walk.
func (x *Index) rescore(ctx context.Context, src VectorSource, q []float32, hits []vindex.Hit, n int) ([]vindex.Hit, error) {
	if len(hits) > n {
		slices.SortFunc(hits, func(a, b vindex.Hit) int { return cmp.Compare(b.Score, a.Score) })
		hits = hits[:n]
	}
	ids := make([]int64, len(hits))
	dst := make([][]float32, len(hits))
	bp, _ := x.bufs.Get().(*[]float32)
	if bp == nil {
		bp = new([]float32)
	}
	defer x.bufs.Put(bp)
	if cap(*bp) < len(hits)*x.dim {
		*bp = make([]float32, len(hits)*x.dim)
	}
	buf := (*bp)[:len(hits)*x.dim]
	for i, h := range hits {
		ids[i] = h.ID
		dst[i] = buf[i*x.dim : (i+1)*x.dim : (i+1)*x.dim]
	}
	ok := make([]bool, len(hits))
	if err := src.Vectors(ctx, ids, dst, ok); err != nil {
		return nil, fmt.Errorf("hnsw search: re-score: %w", err)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return nil, fmt.Errorf("hnsw search: %w", vindex.ErrClosed)
	}
	kept := hits[:0]
	for i, h := range hits {
		if _, live := x.g.slot[h.ID]; ok[i] && live {
			kept = append(kept, vindex.Hit{ID: h.ID, Score: kernel.Dot(q, dst[i])})
		}
	}
	clear(buf) // vectors of persons, not kept beyond their use
	return kept, nil
}

// Compact rebuilds the graph from the live codes, dropping the tombstones,
// and zeroes the old graph's codes. It holds the write lock throughout (a
// rebuild costs as much as adding every vector again, spread over
// Config.Workers goroutines), so searches wait; on a cancelled context the
// old graph stays.
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
	slots := make([]uint32, 0, len(old.slot))
	for s := range uint32(old.n()) {
		if !old.isDead(s) {
			ns := g.grow(old.ids[s], old.code(s), old.scales[s], g.randomLevel())
			g.slot[old.ids[s]] = ns
			slots = append(slots, ns)
		}
	}
	n := g.n()
	if _, err := g.linkAll(ctx, slots, x.cfg.Workers,
		func() *visited { return x.getVisited(n) },
		x.putVisited); err != nil {
		g.reset()
		return fmt.Errorf("hnsw compact: %w", err)
	}
	old.reset()
	x.g = g
	return nil
}

// Close releases the index and zeroes its codes; later calls return
// vindex.ErrClosed, a second Close returns nil.
func (x *Index) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.g.reset()
	x.closed = true
	x.visMu.Lock()
	x.visFree = nil
	x.visMu.Unlock()
	return nil
}

// SetEfSearch changes Config.EfSearch, the beam width of later searches
// (at least k is used). It panics when ef is out of [1, 65536].
func (x *Index) SetEfSearch(ef int) {
	if ef < 1 || ef > maxEf {
		panic(fmt.Sprintf("hnsw: efSearch %d out of range [1, %d]", ef, maxEf))
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cfg.EfSearch = ef
}

// MemBytes estimates the RAM the graph holds, in bytes: used counts the
// lengths of its slices, held their capacities (what append's growth
// reserved); both add about 40 bytes per map entry.
func (x *Index) MemBytes() (used, held int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	g := x.g
	used = len(g.codes) + 4*len(g.scales) + 8*len(g.ids) + len(g.levels) + 4*len(g.links0) + 8*len(g.dead)
	held = cap(g.codes) + 4*cap(g.scales) + 8*cap(g.ids) + cap(g.levels) + 4*cap(g.links0) + 8*cap(g.dead)
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
