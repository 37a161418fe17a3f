package hnsw

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// maxLevel is the highest level a node can get; with M=16 a level above 8
// has a probability below 10⁻⁹ per node, so the cap never bites in practice.
const maxLevel = 16

// ctxEvery is how many expansions a beam search makes between two checks of
// its context (well under a millisecond at dimension 512).
const ctxEvery = 256

// nStripes is the number of link locks: slot s's links are guarded by
// stripes[s%nStripes] (hnswlib keeps one lock per node; striping costs no
// RAM per face and rarely contends at 2 to 64 threads).
const nStripes = 1 << 12

// graph is the state of one HNSW graph. Index's lock guards its slices and
// maps: they grow (Index.reserve), and slots are removed, only under the
// write lock. Under the read lock, searches and the parallel linking of
// reserved slots (linkAll) run at once: link blocks are then read and
// written under their stripe lock, and the entry point under epMu; codes,
// scales, ids, levels and the tombstones do not change under the read lock.
// Slots are dense uint32 numbers given in insertion order and never reused.
type graph struct {
	dim    int
	m, m0  int     // links per node on levels ≥ 1, on level 0 (2m)
	efC    int     // beam width of insertion
	ml     float64 // level multiplier 1/ln(m)
	rng    *rand.Rand
	codes  []int8    // int8 codes of slot s at codes[s*dim:(s+1)*dim]
	scales []float32 // scale of slot s: vector ≈ scales[s] × codes
	ids    []int64   // id of slot s (0 once deleted)
	levels []uint8   // top level of slot s
	links0 []uint32  // level-0 links of slot s at links0[s*(m0+1):]: count, then m0 slots
	upper  map[uint32][]uint32
	// upper[s] holds the links of levels 1..levels[s] of slot s, level l
	// at [(l-1)*(m+1):]: count, then m slots.
	dead  []uint64         // tombstone bitmap
	nDead int              // number of tombstoned slots
	slot  map[int64]uint32 // id → slot of the live vectors

	epMu  sync.Mutex // guards entry and top while slots are linked in parallel
	entry uint32     // entry point
	top   int        // level of the entry point; -1 when the graph is empty

	stripes *[nStripes]sync.Mutex // link locks, see nStripes
}

// newGraph returns an empty graph; cfg has its defaults applied.
func newGraph(dim int, cfg Config, stream uint64) *graph {
	return &graph{
		dim:     dim,
		m:       cfg.M,
		m0:      2 * cfg.M,
		efC:     cfg.EfConstruction,
		ml:      1 / math.Log(float64(cfg.M)),
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), stream)),
		upper:   make(map[uint32][]uint32),
		slot:    make(map[int64]uint32),
		top:     -1,
		stripes: new([nStripes]sync.Mutex),
	}
}

// cand is a slot with its similarity to the current query.
type cand struct {
	sim float32
	s   uint32
}

// query is a vector in the form the graph walk compares: int8 codes and scale.
type query struct {
	code  []int8
	scale float32
}

func (g *graph) n() int               { return len(g.ids) }
func (g *graph) code(s uint32) []int8 { return g.codes[int(s)*g.dim : (int(s)+1)*g.dim] }
func (g *graph) isDead(s uint32) bool { return g.dead[s/64]&(1<<(s%64)) != 0 }

// entryPoint returns the entry point and its level.
func (g *graph) entryPoint() (uint32, int) {
	g.epMu.Lock()
	defer g.epMu.Unlock()
	return g.entry, g.top
}

// neighboursOf copies the neighbours of slot s on level l into buf (which
// it grows as needed) under the slot's stripe lock and returns them.
func (g *graph) neighboursOf(s uint32, l int, buf []uint32) []uint32 {
	mu := &g.stripes[s%nStripes]
	mu.Lock()
	buf = append(buf[:0], neighbours(g.links(s, l))...)
	mu.Unlock()
	return buf
}

// sim returns the approximate cosine of q and slot s from the int8 codes.
func (g *graph) sim(q query, s uint32) float32 {
	return q.scale * g.scales[s] * float32(dot8(q.code, g.code(s)))
}

// nodeQuery returns slot s as a query.
func (g *graph) nodeQuery(s uint32) query { return query{g.code(s), g.scales[s]} }

// links returns the link block of slot s at level l: element 0 is the
// count, the neighbours follow.
func (g *graph) links(s uint32, l int) []uint32 {
	if l == 0 {
		o := int(s) * (g.m0 + 1)
		return g.links0[o : o+g.m0+1]
	}
	o := (l - 1) * (g.m + 1)
	return g.upper[s][o : o+g.m+1]
}

// neighbours returns the neighbours in a link block.
func neighbours(block []uint32) []uint32 { return block[1 : 1+block[0]] }

// setLinks replaces the neighbours in a link block.
func setLinks(block []uint32, cs []cand) {
	block[0] = uint32(len(cs))
	for i, c := range cs {
		block[1+i] = c.s
	}
}

// randomLevel draws a level with P(level ≥ l) = m^-l.
func (g *graph) randomLevel() int {
	u := 1 - g.rng.Float64() // in (0, 1]
	return min(maxLevel, int(-math.Log(u)*g.ml))
}

// greedy walks level l from ep towards q, moving to the best neighbour
// until none is better, and returns where it stops.
func (g *graph) greedy(q query, ep cand, l int) cand {
	var buf [maxM]uint32
	for changed := true; changed; {
		changed = false
		for _, nb := range g.neighboursOf(ep.s, l, buf[:0]) {
			if s := g.sim(q, nb); s > ep.sim {
				ep, changed = cand{s, nb}, true
			}
		}
	}
	return ep
}

// searchLayer is the beam search of level l from eps: it keeps the ef best
// slots that accept allows (all slots are traversed, accepted or not) and
// returns them in no particular order. eps must already be marked in vis.
// It checks ctx every ctxEvery expansions, since a filter that rejects most
// slots makes it walk much of the graph.
func (g *graph) searchLayer(ctx context.Context, q query, eps []cand, ef, l int, accept func(uint32) bool, vis *visited) ([]cand, error) {
	todo := candHeap{max: true}
	res := candHeap{}
	buf := make([]uint32, 0, g.m0)
	for _, e := range eps {
		todo.push(e)
		if accept(e.s) {
			res.push(e)
			if len(res.c) > ef {
				res.pop()
			}
		}
	}
	for i := 1; len(todo.c) > 0; i++ {
		if i%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c := todo.pop()
		if len(res.c) >= ef && c.sim < res.c[0].sim {
			break
		}
		buf = g.neighboursOf(c.s, l, buf)
		for _, nb := range buf {
			if !vis.visit(nb) {
				continue
			}
			s := g.sim(q, nb)
			if len(res.c) < ef || s > res.c[0].sim {
				todo.push(cand{s, nb})
				if accept(nb) {
					res.push(cand{s, nb})
					if len(res.c) > ef {
						res.pop()
					}
				}
			}
		}
	}
	return res.c, nil
}

// selectNeighbours applies the HNSW heuristic (algorithm 4 of the paper,
// without extension or kept pruned connections): cs sorted best first, it
// keeps a candidate only when it is closer to the base than to every
// candidate already kept, up to m. It sorts cs and returns a prefix of it
// (reordered in place).
func (g *graph) selectNeighbours(cs []cand, m int) []cand {
	slices.SortFunc(cs, bestFirst)
	if len(cs) <= m {
		return cs
	}
	kept := 0
	for i := range cs {
		c := cs[i]
		good := true
		cq := g.nodeQuery(c.s)
		for _, r := range cs[:kept] {
			if g.sim(cq, r.s) > c.sim {
				good = false
				break
			}
		}
		if good {
			cs[kept] = c
			kept++
			if kept == m {
				break
			}
		}
	}
	return cs[:kept]
}

// bestFirst orders candidates by decreasing similarity, then by slot.
func bestFirst(a, b cand) int {
	if c := cmp.Compare(b.sim, a.sim); c != 0 {
		return c
	}
	return cmp.Compare(a.s, b.s)
}

// grow appends a slot for id with the int8 codes and scale of its vector
// at level lvl and returns it; the caller maps id to it and links it in.
// It runs under the write lock.
func (g *graph) grow(id int64, code []int8, scale float32, lvl int) uint32 {
	s := uint32(len(g.ids))
	g.ids = append(g.ids, id)
	g.codes = appendZeroing(g.codes, code)
	g.scales = append(g.scales, scale)
	g.levels = append(g.levels, uint8(lvl))
	g.links0 = append(g.links0, make([]uint32, g.m0+1)...)
	if lvl > 0 {
		g.upper[s] = make([]uint32, lvl*(g.m+1))
	}
	if int(s)/64 >= len(g.dead) {
		g.dead = append(g.dead, 0)
	}
	return s
}

// appendZeroing appends v to s like append, but when it must move s to a
// larger array it clears the old one, so that no copy of a vector's codes
// is left behind in memory to outlive its erasure. It grows by a quarter,
// which also keeps the slack of a large index small.
func appendZeroing[T int8 | float32](s, v []T) []T {
	if need := len(s) + len(v); need > cap(s) {
		grown := make([]T, len(s), need+need/4)
		copy(grown, s)
		clear(s[:cap(s)])
		s = grown
	}
	return append(s, v...)
}

// linkAll links the reserved slots in, as algorithm 1 of the paper, on up
// to workers goroutines at once; it runs under the read lock (see graph).
// Tombstoned slots (deleted since they were reserved) are skipped. On a
// done context it stops and returns the slots it did not link, with the
// context's error. visFor returns a visited set for a worker.
func (g *graph) linkAll(ctx context.Context, slots []uint32, workers int, visFor func() *visited, putVis func(*visited)) ([]uint32, error) {
	workers = max(1, min(workers, len(slots)))
	var next atomic.Int64
	linked := make([]bool, len(slots))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vis := visFor()
			defer putVis(vis)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(slots) || ctx.Err() != nil {
					return
				}
				if s := slots[i]; !g.isDead(s) {
					g.link1(s, vis)
				}
				linked[i] = true
			}
		}()
	}
	wg.Wait()
	var left []uint32
	for i, ok := range linked {
		if !ok {
			left = append(left, slots[i])
		}
	}
	if len(left) > 0 {
		return left, ctx.Err()
	}
	return nil, nil
}

// link1 links reserved slot s into the graph. When the graph has no entry
// point yet, s becomes it.
func (g *graph) link1(s uint32, vis *visited) {
	lvl := int(g.levels[s])
	g.epMu.Lock()
	entry, top := g.entry, g.top
	if top < 0 {
		g.entry, g.top = s, lvl
		g.epMu.Unlock()
		return
	}
	g.epMu.Unlock()
	q := g.nodeQuery(s)
	ep := cand{g.sim(q, entry), entry}
	for l := top; l > lvl; l-- {
		ep = g.greedy(q, ep, l)
	}
	live := func(t uint32) bool { return !g.isDead(t) }
	eps := []cand{ep}
	for l := min(lvl, top); l >= 0; l-- {
		vis.reset(g.n())
		vis.visit(s)
		for _, e := range eps {
			vis.visit(e.s)
		}
		// Background: an insertion is not interrupted half-linked.
		w, _ := g.searchLayer(context.Background(), q, eps, g.efC, l, live, vis)
		if len(w) > 0 {
			eps = slices.Clone(w)
		}
		nbrs := g.selectNeighbours(w, g.m)
		g.setOwnLinks(s, l, q, nbrs)
		for _, nb := range nbrs {
			g.link(nb.s, s, nb.sim, l)
		}
	}
	if lvl > top {
		g.epMu.Lock()
		if lvl > g.top {
			g.entry, g.top = s, lvl
		}
		g.epMu.Unlock()
	}
}

// setOwnLinks sets the level-l neighbours of slot s, being linked, to
// nbrs. A concurrent insertion may already have linked itself to s (it
// reached s through a level above); those links are kept, the heuristic
// choosing among both sets when they overflow, else s could end up with no
// link in, unreachable.
func (g *graph) setOwnLinks(s uint32, l int, q query, nbrs []cand) {
	mu := &g.stripes[s%nStripes]
	mu.Lock()
	defer mu.Unlock()
	block := g.links(s, l)
	if block[0] == 0 {
		setLinks(block, nbrs)
		return
	}
	cs := slices.Clone(nbrs)
	for _, t := range neighbours(block) {
		if !slices.ContainsFunc(cs, func(c cand) bool { return c.s == t }) {
			cs = append(cs, cand{g.sim(q, t), t})
		}
	}
	setLinks(block, g.selectNeighbours(cs, g.maxLinks(l)))
}

// maxLinks returns the most neighbours a node has on level l.
func (g *graph) maxLinks(l int) int {
	if l == 0 {
		return g.m0
	}
	return g.m
}

// link adds s (at similarity sim) to the neighbours of t on level l,
// re-selecting them with the heuristic when the list overflows (tombstoned
// neighbours give their place to the nodes they linked to, see
// candidates).
func (g *graph) link(t, s uint32, sim float32, l int) {
	mu := &g.stripes[t%nStripes]
	mu.Lock()
	defer mu.Unlock()
	block := g.links(t, l)
	if slices.Contains(neighbours(block), s) {
		return // t, inserted concurrently, already chose s
	}
	n := int(block[0])
	if n < g.maxLinks(l) {
		block[1+n] = s
		block[0]++
		return
	}
	cs := g.candidates(t, l, neighbours(block), []cand{{sim, s}})
	setLinks(block, g.selectNeighbours(cs, g.maxLinks(l)))
}

// candidates appends to cs, as candidates for u's level-l list, the live
// nodes of ts and, in place of each tombstone among them, the live nodes
// that tombstone links to: a list that drops a tombstone must not drop the
// way it gave to the nodes beyond it, or those may be left with no way in,
// and no search would reach them again. Only one tombstone deep, so that
// the cost stays that of a list or two however many were deleted.
// Tombstones' lists are read without their locks: nothing changes them any
// more (only live nodes are linked to).
func (g *graph) candidates(u uint32, l int, ts []uint32, cs []cand) []cand {
	uq := g.nodeQuery(u)
	add := func(t uint32) {
		if t != u && !g.isDead(t) && !slices.ContainsFunc(cs, func(c cand) bool { return c.s == t }) {
			cs = append(cs, cand{g.sim(uq, t), t})
		}
	}
	for _, t := range ts {
		if !g.isDead(t) {
			add(t)
			continue
		}
		for _, v := range neighbours(g.links(t, l)) {
			add(v)
		}
	}
	return cs
}

// remove tombstones slot s, under the write lock: zeroes its codes and id, and re-links
// each neighbour that linked back to s among the other neighbours of s. It
// moves the entry point to a live node when s was it, and resets the graph
// when no live node is left.
func (g *graph) remove(s uint32) {
	delete(g.slot, g.ids[s])
	g.ids[s] = 0
	g.dead[s/64] |= 1 << (s % 64)
	g.nDead++
	clear(g.code(s))
	g.scales[s] = 0
	if len(g.slot) == 0 {
		g.reset()
		return
	}
	for l := 0; l <= int(g.levels[s]); l++ {
		own := neighbours(g.links(s, l))
		for _, u := range own {
			if g.isDead(u) {
				continue
			}
			ub := g.links(u, l)
			if !slices.Contains(neighbours(ub), s) {
				continue
			}
			// u keeps its live neighbours, and s (and any other tombstone
			// in its list) gives its place to the nodes it linked to, best
			// first: re-selecting u's whole list would drop live
			// neighbours too, and a node only u linked to would be lost.
			var keep []cand
			var dead []uint32
			uq := g.nodeQuery(u)
			for _, t := range neighbours(ub) {
				if g.isDead(t) {
					dead = append(dead, t)
				} else {
					keep = append(keep, cand{g.sim(uq, t), t})
				}
			}
			cs := g.candidates(u, l, dead, keep)
			extra := cs[len(keep):]
			slices.SortFunc(extra, bestFirst)
			setLinks(ub, append(keep, extra[:min(len(extra), g.maxLinks(l)-len(keep))]...))
		}
	}
	if s == g.entry {
		// The new entry point is a live node of the highest level that has
		// links: a slot reserved by an Add but not linked yet has none, and
		// entering there would cut the walk off from the graph. Only when no
		// node has links (a graph of one node, or of reserved slots only)
		// does any live node do.
		g.top = -1
		linked := false
		for t := range g.levels {
			u := uint32(t)
			if g.isDead(u) {
				continue
			}
			hasLinks := g.links(u, 0)[0] > 0
			if (hasLinks && !linked) || ((hasLinks || !linked) && int(g.levels[t]) > g.top) {
				g.entry, g.top, linked = u, int(g.levels[t]), hasLinks
			}
		}
	}
}

// reset empties the graph, zeroing the memory that held codes and ids.
func (g *graph) reset() {
	clear(g.codes[:cap(g.codes)])
	clear(g.ids[:cap(g.ids)])
	g.codes, g.scales, g.ids, g.levels, g.links0, g.dead = nil, nil, nil, nil, nil, nil
	g.upper = make(map[uint32][]uint32)
	g.slot = make(map[int64]uint32)
	g.nDead, g.entry, g.top = 0, 0, -1
}

// candHeap is a binary heap of candidates: the best on top when max is
// set, else the worst.
type candHeap struct {
	c   []cand
	max bool
}

func (h *candHeap) less(i, j int) bool {
	if h.max {
		return h.c[i].sim > h.c[j].sim
	}
	return h.c[i].sim < h.c[j].sim
}

func (h *candHeap) push(c cand) {
	h.c = append(h.c, c)
	for i := len(h.c) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.c[i], h.c[p] = h.c[p], h.c[i]
		i = p
	}
}

func (h *candHeap) pop() cand {
	top := h.c[0]
	last := len(h.c) - 1
	h.c[0] = h.c[last]
	h.c = h.c[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.less(l, m) {
			m = l
		}
		if r < last && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h.c[i], h.c[m] = h.c[m], h.c[i]
		i = m
	}
	return top
}

// visited is a reusable visited set: a slot is visited in the current
// generation when marks[slot] == gen, so reset costs nothing.
type visited struct {
	marks []uint32
	gen   uint32
}

// reset starts a new generation for a graph of n slots.
func (v *visited) reset(n int) {
	if len(v.marks) < n {
		v.marks = make([]uint32, n+n/4+64)
		v.gen = 0
	}
	v.gen++
	if v.gen == 0 {
		clear(v.marks)
		v.gen = 1
	}
}

// visit marks s and reports whether it was not yet visited.
func (v *visited) visit(s uint32) bool {
	if v.marks[s] == v.gen {
		return false
	}
	v.marks[s] = v.gen
	return true
}
