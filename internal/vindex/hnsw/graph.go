package hnsw

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
)

// maxLevel is the highest level a node can get; with M=16 a level above 8
// has a probability below 10⁻⁹ per node, so the cap never bites in practice.
const maxLevel = 16

// ctxEvery is how many expansions a beam search makes between two checks of
// its context (well under a millisecond at dimension 512).
const ctxEvery = 256

// graph is the state of one HNSW graph. It has no lock: Index guards it.
// Slots are dense uint32 numbers given in insertion order and never reused.
type graph struct {
	dim    int
	m, m0  int     // links per node on levels ≥ 1, on level 0 (2m)
	efC    int     // beam width of insertion
	ml     float64 // level multiplier 1/ln(m)
	rng    *rand.Rand
	codes  []int8    // int8 codes of slot s at codes[s*dim:(s+1)*dim]
	scales []float32 // scale of slot s: vector ≈ scales[s] × codes
	vecs   []float32 // float32 vector of slot s at vecs[s*dim:(s+1)*dim]
	ids    []int64   // id of slot s (0 once deleted)
	levels []uint8   // top level of slot s
	links0 []uint32  // level-0 links of slot s at links0[s*(m0+1):]: count, then m0 slots
	upper  map[uint32][]uint32
	// upper[s] holds the links of levels 1..levels[s] of slot s, level l
	// at [(l-1)*(m+1):]: count, then m slots.
	dead  []uint64         // tombstone bitmap
	nDead int              // number of tombstoned slots
	slot  map[int64]uint32 // id → slot of the live vectors
	entry uint32           // entry point
	top   int              // level of the entry point; -1 when the graph is empty
}

// newGraph returns an empty graph; cfg has its defaults applied.
func newGraph(dim int, cfg Config, stream uint64) *graph {
	return &graph{
		dim:   dim,
		m:     cfg.M,
		m0:    2 * cfg.M,
		efC:   cfg.EfConstruction,
		ml:    1 / math.Log(float64(cfg.M)),
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), stream)),
		upper: make(map[uint32][]uint32),
		slot:  make(map[int64]uint32),
		top:   -1,
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

func (g *graph) n() int                 { return len(g.ids) }
func (g *graph) code(s uint32) []int8   { return g.codes[int(s)*g.dim : (int(s)+1)*g.dim] }
func (g *graph) vec(s uint32) []float32 { return g.vecs[int(s)*g.dim : (int(s)+1)*g.dim] }
func (g *graph) isDead(s uint32) bool   { return g.dead[s/64]&(1<<(s%64)) != 0 }

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
	for changed := true; changed; {
		changed = false
		for _, nb := range neighbours(g.links(ep.s, l)) {
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
		for _, nb := range neighbours(g.links(c.s, l)) {
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
	slices.SortFunc(cs, func(a, b cand) int {
		if c := cmp.Compare(b.sim, a.sim); c != 0 {
			return c
		}
		return cmp.Compare(a.s, b.s)
	})
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

// grow appends a slot for id with vector v at level lvl and returns it; the
// caller maps id to it.
func (g *graph) grow(id int64, v []float32, lvl int) uint32 {
	s := uint32(len(g.ids))
	g.ids = append(g.ids, id)
	g.vecs = appendZeroing(g.vecs, v)
	g.codes = appendZeroing(g.codes, make([]int8, g.dim))
	g.scales = append(g.scales, quantize(v, g.codes[len(g.codes)-g.dim:]))
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
// larger array it clears the old one, so that no copy of a vector is left
// behind in memory to outlive its erasure. It grows by a quarter, which also
// keeps the slack of a large index small.
func appendZeroing[T int8 | float32](s, v []T) []T {
	if need := len(s) + len(v); need > cap(s) {
		grown := make([]T, len(s), need+need/4)
		copy(grown, s)
		clear(s[:cap(s)])
		s = grown
	}
	return append(s, v...)
}

// insert adds id with vector v (which must not be in the graph) and links
// it in, as algorithm 1 of the paper.
func (g *graph) insert(id int64, v []float32, vis *visited) {
	lvl := g.randomLevel()
	s := g.grow(id, v, lvl)
	g.slot[id] = s
	if g.top < 0 {
		g.entry, g.top = s, lvl
		return
	}
	q := g.nodeQuery(s)
	ep := cand{g.sim(q, g.entry), g.entry}
	for l := g.top; l > lvl; l-- {
		ep = g.greedy(q, ep, l)
	}
	live := func(t uint32) bool { return !g.isDead(t) }
	eps := []cand{ep}
	for l := min(lvl, g.top); l >= 0; l-- {
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
		setLinks(g.links(s, l), nbrs)
		for _, nb := range nbrs {
			g.link(nb.s, s, nb.sim, l)
		}
	}
	if lvl > g.top {
		g.entry, g.top = s, lvl
	}
}

// maxLinks returns the most neighbours a node has on level l.
func (g *graph) maxLinks(l int) int {
	if l == 0 {
		return g.m0
	}
	return g.m
}

// link adds s (at similarity sim) to the neighbours of t on level l,
// re-selecting them with the heuristic when the list overflows; tombstoned
// neighbours are dropped then.
func (g *graph) link(t, s uint32, sim float32, l int) {
	block := g.links(t, l)
	n := int(block[0])
	if n < g.maxLinks(l) {
		block[1+n] = s
		block[0]++
		return
	}
	tq := g.nodeQuery(t)
	cs := make([]cand, 0, n+1)
	cs = append(cs, cand{sim, s})
	for _, nb := range neighbours(block) {
		if !g.isDead(nb) {
			cs = append(cs, cand{g.sim(tq, nb), nb})
		}
	}
	setLinks(block, g.selectNeighbours(cs, g.maxLinks(l)))
}

// remove tombstones slot s: zeroes its vector, codes and id, and re-links
// each neighbour that linked back to s among the other neighbours of s. It
// moves the entry point to a live node when s was it, and resets the graph
// when no live node is left.
func (g *graph) remove(s uint32) {
	delete(g.slot, g.ids[s])
	g.ids[s] = 0
	g.dead[s/64] |= 1 << (s % 64)
	g.nDead++
	clear(g.vec(s))
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
			uq := g.nodeQuery(u)
			var cs []cand
			for _, t := range append(slices.Clone(neighbours(ub)), own...) {
				if t == u || g.isDead(t) || slices.ContainsFunc(cs, func(c cand) bool { return c.s == t }) {
					continue
				}
				cs = append(cs, cand{g.sim(uq, t), t})
			}
			setLinks(ub, g.selectNeighbours(cs, g.maxLinks(l)))
		}
	}
	if s == g.entry {
		g.top = -1
		for t := range g.levels {
			if !g.isDead(uint32(t)) && int(g.levels[t]) > g.top {
				g.entry, g.top = uint32(t), int(g.levels[t])
			}
		}
	}
}

// reset empties the graph, zeroing the memory that held vectors.
func (g *graph) reset() {
	clear(g.vecs[:cap(g.vecs)])
	clear(g.codes[:cap(g.codes)])
	clear(g.ids[:cap(g.ids)])
	g.codes, g.scales, g.vecs, g.ids, g.levels, g.links0, g.dead = nil, nil, nil, nil, nil, nil, nil
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
