package hnsw

import (
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/kernel"
	"gabarit/internal/vindex/vindextest"
)

// Uniform random unit vectors of dimension 64 (vindextest's recall check:
// 5,000 of them, 200 queries) have no cluster structure at all, the worst
// case for a graph index: with the default EfSearch of 64 this index reaches
// only about 0.89 recall@10 there (0.8935 measured), with EfSearch 128 about
// 0.97 (0.9730 measured; 0.98 on other seeds). The suite therefore runs with
// conformanceCfg and requires minRecall, a margin of about 0.02 for changes
// of seed or of the suite's data. The int8 codes cost nothing measurable
// there: walking with float32 distances gave the same recall.
const minRecall = 0.95

// conformanceCfg is the Config the conformance suite runs with.
var conformanceCfg = Config{EfSearch: 128}

// TestConformance runs the suite on the index without a Source (scores
// from the int8 codes, within ScoreTolerance) and with one (exact scores).
func TestConformance(t *testing.T) {
	t.Parallel()
	t.Run("int8", func(t *testing.T) {
		t.Parallel()
		vindextest.Run(t, vindextest.Factory{
			New: func(t *testing.T, dim int) vindex.Index { return New(dim, conformanceCfg) },
			Load: func(r io.Reader) (vindex.Index, error) {
				x, err := Load(r, nil)
				if err != nil {
					return nil, err // not a typed nil in the interface
				}
				return x, nil
			},
			MinRecall: minRecall,
			ScoreTol:  ScoreTolerance,
		})
	})
	t.Run("source", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var last *mapSource // the source of the index created last
		vindextest.Run(t, vindextest.Factory{
			New: func(t *testing.T, dim int) vindex.Index {
				src := &mapSource{dim: dim, v: map[int64][]float32{}}
				mu.Lock()
				last = src
				mu.Unlock()
				cfg := conformanceCfg
				cfg.Source = src
				return sourced{New(dim, cfg), src}
			},
			Load: func(r io.Reader) (vindex.Index, error) {
				mu.Lock()
				src := last.clone()
				mu.Unlock()
				x, err := Load(r, src)
				if err != nil {
					return nil, err
				}
				return sourced{x, src}, nil
			},
			MinRecall: minRecall,
		})
	})
}

// mapSource is a VectorSource over a map, standing for the store.
type mapSource struct {
	dim int
	mu  sync.RWMutex
	v   map[int64][]float32
}

func (m *mapSource) Vectors(_ context.Context, ids []int64, dst [][]float32, ok []bool) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i, id := range ids {
		v, found := m.v[id]
		ok[i] = found
		copy(dst[i], v)
	}
	return nil
}

func (m *mapSource) clone() *mapSource {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return &mapSource{dim: m.dim, v: maps.Clone(m.v)}
}

// sourced is an index whose Source holds its vectors as the store does in
// production: a vector is stored before it is added to the index and
// dropped once it is deleted from it.
type sourced struct {
	*Index
	src *mapSource
}

func (s sourced) Add(ctx context.Context, ids []int64, vecs [][]float32) error {
	if len(ids) == len(vecs) && !slices.ContainsFunc(vecs, func(v []float32) bool { return len(v) != s.src.dim }) {
		s.src.mu.Lock()
		for i, id := range ids {
			s.src.v[id] = slices.Clone(vecs[i])
		}
		s.src.mu.Unlock()
	}
	return s.Index.Add(ctx, ids, vecs)
}

func (s sourced) Delete(ctx context.Context, ids []int64) error {
	if err := s.Index.Delete(ctx, ids); err != nil {
		return err
	}
	s.src.mu.Lock()
	for _, id := range ids {
		delete(s.src.v, id)
	}
	s.src.mu.Unlock()
	return nil
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func unit(r *rand.Rand, n int) []float32 {
	return normalize(randVec(r, n))
}

func normalize(v []float32) []float32 {
	var ss float64
	for _, f := range v {
		ss += float64(f) * float64(f)
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(ss))
	}
	return v
}

// lengths returns vector lengths that exercise the unrolled body of a
// kernel, its tail and both together.
func lengths() []int {
	ls := []int{127, 128, 511, 512, 513}
	for n := range 71 {
		ls = append(ls, n)
	}
	return ls
}

// TestDot8MatchesRef is the differential test of the int8 kernels (the
// assembly one on amd64 with AVX2, and the pure-Go one) against the
// reference loop, at lengths around the unrolling and the extremes.
func TestDot8MatchesRef(t *testing.T) {
	t.Parallel()
	t.Logf("AVX2 kernel in use: %v", useAVX2())
	r := rand.New(rand.NewPCG(3, 4))
	codes := func(n int, fill func(i int) int8) []int8 {
		c := make([]int8, n)
		for i := range c {
			c[i] = fill(i)
		}
		return c
	}
	random := func(int) int8 { return int8(r.IntN(255) - 127) }
	for _, n := range append(lengths(), MaxDim) {
		cases := []struct {
			name string
			a, b []int8
		}{
			{"random", codes(n, random), codes(n, random)},
			{"max", codes(n, func(int) int8 { return 127 }), codes(n, func(int) int8 { return 127 })},
			{"min", codes(n, func(int) int8 { return -127 }), codes(n, func(int) int8 { return 127 })},
			{"alternating", codes(n, func(i int) int8 { return int8(127 - 254*(i%2)) }), codes(n, func(int) int8 { return -127 })},
		}
		for _, c := range cases {
			if got, want := int64(dot8(c.a, c.b)), dot8Ref(c.a, c.b); got != want {
				t.Fatalf("n=%d %s: dot8 = %d, dot8Ref = %d", n, c.name, got, want)
			}
			if got, want := int64(dot8Go(c.a, c.b)), dot8Ref(c.a, c.b); got != want {
				t.Fatalf("n=%d %s: dot8Go = %d, dot8Ref = %d", n, c.name, got, want)
			}
		}
	}
}

// TestQuantizedDotMatchesFloat is the differential test of the int8 path
// against the float reference: each code is within half a step of the
// value it stands for, which bounds the error of the scaled int8 dot.
func TestQuantizedDotMatchesFloat(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range lengths() {
		for range 10 {
			a, b := unit(r, n), unit(r, n)
			if n == 0 {
				a, b = nil, nil
			}
			ca, cb := make([]int8, n), make([]int8, n)
			sa, sb := quantize(a, ca), quantize(b, cb)
			var bound float64
			for i := range a {
				if d := math.Abs(float64(a[i]) - float64(sa)*float64(ca[i])); d > float64(sa)/2*(1+1e-5) {
					t.Fatalf("n=%d: component %d off by %g, half step %g", n, i, d, sa/2)
				}
				bound += float64(sa)/2*math.Abs(float64(b[i])) + float64(sb)/2*math.Abs(float64(sa)*float64(ca[i]))
			}
			got := float64(sa) * float64(sb) * float64(dot8(ca, cb))
			if diff := math.Abs(got - float64(kernel.DotRef(a, b))); diff > bound+1e-6 {
				t.Fatalf("n=%d: int8 dot %v, float dot %v, diff %g above bound %g", n, got, kernel.DotRef(a, b), diff, bound)
			}
		}
	}
	c := []int8{1, 2, 3}
	if s := quantize([]float32{0, 0, 0}, c); s != 0 || c[0]|c[1]|c[2] != 0 {
		t.Errorf("quantize(zero vector) = %v, codes %v; want 0, zeros", s, c)
	}
	if quantize([]float32{-0.5, 0.25, 0.1}, c); c[0] != -127 || c[1] != 64 {
		t.Errorf("quantize gave codes %v, want -127 for the largest magnitude", c)
	}
}

func TestZeroAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	a, b := unit(r, 512), unit(r, 512)
	ca, cb := make([]int8, 512), make([]int8, 512)
	quantize(a, ca)
	quantize(b, cb)
	if n := testing.AllocsPerRun(100, func() { kernel.Dot(a, b) }); n != 0 {
		t.Errorf("dot allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { dot8(ca, cb) }); n != 0 {
		t.Errorf("dot8 allocates %v times per call, want 0", n)
	}
}

// TestLevelDistribution checks P(level ≥ l) = M^-l, the geometric law
// with mL = 1/ln(M).
func TestLevelDistribution(t *testing.T) {
	t.Parallel()
	for _, m := range []int{4, 16} {
		cfg, err := Config{M: m}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		g := newGraph(8, cfg, 0)
		const draws = 400_000
		var atLeast [maxLevel + 2]int
		for range draws {
			lvl := g.randomLevel()
			for l := 0; l <= lvl; l++ {
				atLeast[l]++
			}
		}
		for l := 1; l <= 2; l++ {
			want := math.Pow(float64(m), -float64(l))
			got := float64(atLeast[l]) / draws
			sd := math.Sqrt(want * (1 - want) / draws)
			if math.Abs(got-want) > 5*sd {
				t.Errorf("M=%d: P(level ≥ %d) = %.5f, want %.5f ± %.5f", m, l, got, want, 5*sd)
			}
		}
	}
}

func TestNewPanicsOnBadArguments(t *testing.T) {
	for _, c := range []struct {
		name string
		dim  int
		cfg  Config
	}{
		{"dim 0", 0, Config{}},
		{"dim too large", MaxDim + 1, Config{}},
		{"M 1", 8, Config{M: 1}},
		{"efC below M", 8, Config{M: 16, EfConstruction: 8}},
		{"negative efS", 8, Config{EfSearch: -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d, %+v) did not panic", c.dim, c.cfg)
				}
			}()
			New(c.dim, c.cfg)
		})
	}
	if x := New(8, Config{}); x.cfg != (Config{M: 16, EfConstruction: 200, EfSearch: 64, Workers: runtime.GOMAXPROCS(0), Rescore: 32}) {
		t.Errorf("defaults: %+v", x.cfg)
	}
}

// TestSourceRescores checks the re-score path: scores come from the
// Source's vectors (here deliberately not the ones added), ids it no
// longer holds are dropped, minScore applies to the exact score, and its
// error reaches the caller.
func TestSourceRescores(t *testing.T) {
	t.Parallel()
	const dim = 32
	r := rand.New(rand.NewPCG(31, 32))
	src := &mapSource{dim: dim, v: map[int64][]float32{}}
	x := New(dim, Config{Source: src})
	defer x.Close()
	ctx := context.Background()
	ids := make([]int64, 200)
	vecs := make([][]float32, 200)
	for i := range ids {
		ids[i], vecs[i] = int64(i), unit(r, dim)
		src.v[int64(i)] = vecs[i]
	}
	if err := x.Add(ctx, ids, vecs); err != nil {
		t.Fatal(err)
	}
	q := vecs[7]
	hits, err := x.Search(ctx, q, 5, -2)
	if err != nil || len(hits) != 5 || hits[0].ID != 7 || hits[0].Score != kernel.Dot(q, vecs[7]) {
		t.Fatalf("Search = %v, %v; want id 7 first with its exact score", hits, err)
	}
	for _, h := range hits {
		if want := kernel.Dot(q, vecs[h.ID]); h.Score != want {
			t.Errorf("id %d: score %v, exact %v", h.ID, h.Score, want)
		}
	}
	// The store's vector of 7 is now another one: its score follows it.
	other := unit(r, dim)
	src.v[7] = other
	hits, err = x.Search(ctx, q, 200, -2)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if h.ID == 7 && h.Score != kernel.Dot(q, other) {
			t.Errorf("id 7 scored %v, its Source vector gives %v", h.Score, kernel.Dot(q, other))
		}
	}
	// An id the Source no longer holds is never returned.
	delete(src.v, 8)
	hits, err = x.Search(ctx, vecs[8], 10, -2)
	if err != nil || slices.ContainsFunc(hits, func(h vindex.Hit) bool { return h.ID == 8 }) {
		t.Errorf("Search = %v, %v; want no id 8", hits, err)
	}
	// minScore applies to the exact score: no match is an answer.
	src.v[7] = vecs[7]
	hits, err = x.Search(ctx, q, 10, 0.999)
	if err != nil || len(hits) != 1 || hits[0].ID != 7 {
		t.Errorf("Search(minScore 0.999) = %v, %v; want id 7 alone", hits, err)
	}
	hits, err = x.Search(ctx, normalize(append(make([]float32, dim-1), 1)), 10, 0.9)
	if err != nil || len(hits) != 0 {
		t.Errorf("Search(far query, minScore 0.9) = %v, %v; want no hits", hits, err)
	}
	// A Source error is the search's error.
	bad := New(dim, Config{Source: failingSource{}})
	defer bad.Close()
	if err := bad.Add(ctx, ids[:10], vecs[:10]); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Search(ctx, q, 3, -2); !errors.Is(err, errSource) {
		t.Errorf("Search with a failing Source = %v, want errSource", err)
	}
}

var errSource = errors.New("source down")

type failingSource struct{}

func (failingSource) Vectors(context.Context, []int64, [][]float32, []bool) error { return errSource }

// TestParallelBuildRecall builds the same clustered set on 1 and on 4
// workers: the parallel graph must be as good (within noise) and sound.
func TestParallelBuildRecall(t *testing.T) {
	t.Parallel()
	const dim = 32
	r := rand.New(rand.NewPCG(33, 34))
	vecs, _ := clustered(r, 3000, dim)
	live := make(map[int64][]float32, len(vecs))
	for i, v := range vecs {
		live[int64(i)] = v
	}
	queries := make([][]float32, 100)
	for i := range queries {
		queries[i] = unit(r, dim)
	}
	var got [2]float64
	for i, w := range []int{1, 4} {
		x := build(t, dim, Config{M: 8, EfConstruction: 64, EfSearch: 64, Workers: w}, vecs)
		checkGraph(t, x)
		got[i] = recall(t, x, live, queries)
	}
	t.Logf("recall@10: 1 worker %.3f, 4 workers %.3f", got[0], got[1])
	if got[1] < got[0]-0.03 || got[1] < 0.85 {
		t.Errorf("recall@10 with 4 workers %.3f, with 1 %.3f", got[1], got[0])
	}
}
