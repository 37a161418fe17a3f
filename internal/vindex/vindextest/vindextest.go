// Package vindextest is the conformance suite every vindex.Index
// implementation runs from its own tests, in the style of Litestream's
// RunWithReplicaClient and testing/fstest:
//
//	func TestConformance(t *testing.T) {
//		vindextest.Run(t, vindextest.Factory{
//			New:       func(t *testing.T, dim int) vindex.Index { return flat.New(dim) },
//			Load:      func(r io.Reader) (vindex.Index, error) { ... },
//			MinRecall: 1,
//		})
//	}
//
// Its central check is the GDPR invariant: once Delete returns, no Search
// returns the deleted ids, also while other goroutines add and delete. Run
// it with -race.
package vindextest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"gabarit/internal/vindex"
)

// defaultScoreTol is how far (in cosine) a returned Score may be from the
// score computed here in float64 when Factory.ScoreTol is zero: float32
// rounding, summation order.
const defaultScoreTol = 1e-4

// noMin is a minScore that accepts every vector.
const noMin float32 = -2

// Factory describes the implementation under test to Run.
type Factory struct {
	// New returns an empty index of dimension dim. Run closes every index
	// it gets at the end of its subtest; a second Close must return nil.
	New func(t *testing.T, dim int) vindex.Index

	// Load reads back an index that Save wrote. An index whose Save
	// returns errors.ErrUnsupported (an engine that persists itself) gives
	// Reopen instead; one of the two is required.
	Load func(r io.Reader) (vindex.Index, error)

	// Reopen returns a second, independent handle on the data ix holds (a
	// new client of the same remote collection), which the persistence
	// subtest checks gives the same results as ix. Run closes it.
	Reopen func(t *testing.T, ix vindex.Index) vindex.Index

	// MinRecall is the recall@10 the index must reach against exact search
	// on 5,000 random unit vectors of dimension 64 and 200 random queries,
	// in (0,1]. 1 declares an exact index, which every subtest then also
	// holds to exactly the brute-force results.
	MinRecall float64

	// ScoreTol is how far (in cosine) a returned Score may lie from the
	// exact cosine of the id's current vector; zero means 1e-4 (float32
	// rounding). An index that scores with quantised codes declares its
	// bound here (at most 0.05). Whatever the tolerance, a hit is returned
	// only when the Score the index returns is at least minScore, and
	// MinRecall is measured against exact search as always. An exact index
	// (MinRecall 1) must keep the default.
	ScoreTol float64
}

// Run runs the conformance suite against the implementation f describes,
// one subtest per property. Subtests run one after another.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.New == nil {
		t.Fatal("vindextest: Factory.New is nil")
	}
	if f.Load == nil && f.Reopen == nil {
		t.Fatal("vindextest: Factory.Load and Factory.Reopen are both nil: give one")
	}
	if !(f.MinRecall > 0 && f.MinRecall <= 1) {
		t.Fatalf("vindextest: Factory.MinRecall %v not in (0,1]", f.MinRecall)
	}
	if f.ScoreTol < 0 || f.ScoreTol > 0.05 || (f.MinRecall == 1 && f.ScoreTol > defaultScoreTol) {
		t.Fatalf("vindextest: Factory.ScoreTol %v not in [0, 0.05], or above 1e-4 for an exact index", f.ScoreTol)
	}
	tol := f.ScoreTol
	if tol == 0 {
		tol = defaultScoreTol
	}
	s := suite{f: f, exact: f.MinRecall == 1, tol: tol}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Empty", s.testEmpty},
		{"FindsItself", s.testFindsItself},
		{"KLargerThanLen", s.testKLargerThanLen},
		{"MinScore", s.testMinScore},
		{"Replace", s.testReplace},
		{"AddCopies", s.testAddCopies},
		{"Ties", s.testTies},
		{"DeleteThenSearchNeverReturns", s.testDeleteThenSearch},
		{"DeleteUnknown", s.testDeleteUnknown},
		{"WrongDimension", s.testWrongDimension},
		{"ContextCancelled", s.testContextCancelled},
		{"ConcurrentSearchAddDelete", s.testConcurrent},
		{"SaveLoad", s.testSaveLoad},
		{"Close", s.testClose},
		{"Recall", s.testRecall},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.fn)
	}
}

type suite struct {
	f     Factory
	exact bool
	tol   float64 // score tolerance, see Factory.ScoreTol
}

// open returns a new index of dimension dim, closed when t ends.
func (s suite) open(t *testing.T, dim int) vindex.Index {
	t.Helper()
	ix := s.f.New(t, dim)
	if ix == nil {
		t.Fatal("Factory.New returned nil")
	}
	t.Cleanup(func() {
		if err := ix.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ix
}

// model is what the index should hold: id → vector.
type model map[int64][]float32

// add adds vecs to ix and to m, failing t on error.
func (m model) add(t *testing.T, ix vindex.Index, ids []int64, vecs [][]float32) {
	t.Helper()
	if err := ix.Add(context.Background(), ids, vecs); err != nil {
		t.Fatalf("Add(%d vectors): %v", len(ids), err)
	}
	for i, id := range ids {
		m[id] = slices.Clone(vecs[i])
	}
}

// del deletes ids from ix and from m, failing t on error.
func (m model) del(t *testing.T, ix vindex.Index, ids []int64) {
	t.Helper()
	if err := ix.Delete(context.Background(), ids); err != nil {
		t.Fatalf("Delete(%d ids): %v", len(ids), err)
	}
	for _, id := range ids {
		delete(m, id)
	}
}

// fill adds n random unit vectors with ids first, first+1, … to ix and m
// and returns the ids.
func (m model) fill(t *testing.T, ix vindex.Index, r *rand.Rand, first int64, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	vecs := make([][]float32, n)
	for i := range n {
		ids[i] = first + int64(i)
		vecs[i] = RandUnit(r, ix.Dim())
	}
	m.add(t, ix, ids, vecs)
	return ids
}

// exact returns the brute-force answer to a search of m, scored in float64.
func (m model) exact(q []float32, k int, minScore float32) []vindex.Hit {
	var all []vindex.Hit
	for id, v := range m {
		sc := float32(dot64(q, v))
		if minScore <= -1 || sc >= minScore {
			all = append(all, vindex.Hit{ID: id, Score: sc})
		}
	}
	slices.SortFunc(all, func(a, b vindex.Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return all[:min(max(k, 0), len(all))]
}

// check returns an error when hits break the contract of a search of m for
// q: more than k hits, an id that is not in m (deleted, replaced away or
// never added), a wrong score, a score below minScore, a duplicate or a
// wrong order. It never prints vectors.
func (m model) check(hits []vindex.Hit, q []float32, k int, minScore float32, tol float64) error {
	if len(hits) > max(k, 0) {
		return fmt.Errorf("got %d hits for k=%d", len(hits), k)
	}
	seen := make(map[int64]bool, len(hits))
	for i, h := range hits {
		v, ok := m[h.ID]
		if !ok {
			return fmt.Errorf("hit %d: id %d is not in the index (deleted or never added)", i, h.ID)
		}
		if seen[h.ID] {
			return fmt.Errorf("hit %d: id %d returned twice", i, h.ID)
		}
		seen[h.ID] = true
		if want := dot64(q, v); math.Abs(float64(h.Score)-want) > tol {
			return fmt.Errorf("hit %d: id %d has score %.6f, its current vector gives %.6f", i, h.ID, h.Score, want)
		}
		if minScore > -1 && h.Score < minScore {
			return fmt.Errorf("hit %d: id %d has score %.6f below minScore %.3f", i, h.ID, h.Score, minScore)
		}
		if i > 0 {
			p := hits[i-1]
			if p.Score < h.Score || (p.Score == h.Score && p.ID > h.ID) {
				return fmt.Errorf("hits %d and %d out of order: (%d, %.6f) before (%d, %.6f)", i-1, i, p.ID, p.Score, h.ID, h.Score)
			}
		}
	}
	return nil
}

// search runs a search that must succeed and satisfy m.check; for an exact
// index it must also match the brute-force answer.
func (s suite) search(t *testing.T, ix vindex.Index, m model, q []float32, k int, minScore float32) []vindex.Hit {
	t.Helper()
	hits, err := ix.Search(context.Background(), q, k, minScore)
	if err != nil {
		t.Fatalf("Search(k=%d, minScore=%.3f): %v", k, minScore, err)
	}
	if err := m.check(hits, q, k, minScore, s.tol); err != nil {
		t.Fatalf("Search(k=%d, minScore=%.3f): %v", k, minScore, err)
	}
	if s.exact {
		want := m.exact(q, k, minScore)
		if len(hits) != len(want) {
			t.Fatalf("Search(k=%d, minScore=%.3f): %d hits, exact search gives %d", k, minScore, len(hits), len(want))
		}
		for i := range want {
			// Ids may differ only between scores equal within rounding.
			if math.Abs(float64(hits[i].Score-want[i].Score)) > s.tol {
				t.Fatalf("Search(k=%d, minScore=%.3f): hit %d is (%d, %.6f), exact search gives (%d, %.6f)",
					k, minScore, i, hits[i].ID, hits[i].Score, want[i].ID, want[i].Score)
			}
		}
	}
	return hits
}

// count returns ix.Len, failing t on error.
func count(t *testing.T, ix vindex.Index) int {
	t.Helper()
	n, err := ix.Len(context.Background())
	if err != nil {
		t.Fatalf("Len: %v", err)
	}
	return n
}

func (s suite) testEmpty(t *testing.T) {
	ix := s.open(t, 8)
	if got := ix.Dim(); got != 8 {
		t.Errorf("Dim() = %d, want 8", got)
	}
	if got := count(t, ix); got != 0 {
		t.Errorf("Len() = %d on a new index, want 0", got)
	}
	r := newRand(t)
	hits, err := ix.Search(context.Background(), RandUnit(r, 8), 10, noMin)
	if err != nil || len(hits) != 0 {
		t.Errorf("Search on an empty index = %v, %v; want no hits, nil", hits, err)
	}
	if err := ix.Delete(context.Background(), []int64{1, 2}); err != nil {
		t.Errorf("Delete on an empty index: %v", err)
	}
}

func (s suite) testFindsItself(t *testing.T) {
	ix := s.open(t, 32)
	m := model{}
	r := newRand(t)
	ids := m.fill(t, ix, r, 1, 500)
	if got := count(t, ix); got != 500 {
		t.Fatalf("Len() = %d after adding 500, want 500", got)
	}
	for _, id := range ids[:50] {
		hits := s.search(t, ix, m, m[id], 5, noMin)
		if len(hits) == 0 || hits[0].ID != id || float64(hits[0].Score) < min(0.999, 1-s.tol) {
			t.Fatalf("Search(vector of %d) = %v, want %d first with score ≈1", id, hits, id)
		}
	}
}

func (s suite) testKLargerThanLen(t *testing.T) {
	ix := s.open(t, 16)
	m := model{}
	r := newRand(t)
	m.fill(t, ix, r, 100, 20)
	q := RandUnit(r, 16)
	hits := s.search(t, ix, m, q, 100, noMin)
	if s.exact && len(hits) != 20 {
		t.Errorf("Search(k=100) on 20 vectors gave %d hits, want 20", len(hits))
	}
	if len(hits) == 0 {
		t.Errorf("Search(k=100, no minimum) on 20 vectors gave no hits")
	}
	for _, k := range []int{0, -1} {
		hits, err := ix.Search(context.Background(), q, k, noMin)
		if err != nil || len(hits) != 0 {
			t.Errorf("Search(k=%d) = %v, %v; want no hits, nil", k, hits, err)
		}
	}
}

func (s suite) testMinScore(t *testing.T) {
	const dim = 32
	ix := s.open(t, dim)
	m := model{}
	r := newRand(t)
	// Every stored vector lives in the first half of the dimensions.
	ids := make([]int64, 300)
	vecs := make([][]float32, 300)
	for i := range ids {
		ids[i] = int64(i)
		vecs[i] = RandUnit(r, dim/2)
		vecs[i] = append(vecs[i], make([]float32, dim/2)...)
	}
	m.add(t, ix, ids, vecs)

	// A query in the other half is far from everything: no match is the answer.
	far := append(make([]float32, dim/2), RandUnit(r, dim/2)...)
	if hits := s.search(t, ix, m, far, 10, 0.5); len(hits) != 0 {
		t.Errorf("Search(far query, minScore=0.5) = %v, want no hits, never the nearest stranger", hits)
	}
	if hits := s.search(t, ix, m, far, 10, noMin); len(hits) == 0 {
		t.Errorf("Search(far query, no minimum) gave no hits")
	}
	for i := range 20 {
		q := RandUnit(r, dim)
		for _, ms := range []float32{0.95, 0.3, 0, -0.3} {
			s.search(t, ix, m, q, 10, ms)
		}
		hits := s.search(t, ix, m, vecs[i], 300, 0.5)
		if len(hits) == 0 || hits[0].ID != ids[i] {
			t.Fatalf("Search(vector of %d, minScore=0.5) = %v, want %d first", ids[i], hits, ids[i])
		}
	}
}

func (s suite) testReplace(t *testing.T) {
	ix := s.open(t, 16)
	m := model{}
	r := newRand(t)
	ids := m.fill(t, ix, r, 0, 200)
	old := make(map[int64][]float32)
	var rids []int64
	var rvecs [][]float32
	for _, id := range ids[:50] {
		old[id] = m[id]
		rids = append(rids, id)
		rvecs = append(rvecs, RandUnit(r, 16))
	}
	m.add(t, ix, rids, rvecs)
	if got := count(t, ix); got != 200 {
		t.Fatalf("Len() = %d after replacing 50 of 200, want 200", got)
	}
	for _, id := range rids {
		// check fails on any hit scored with the old vector.
		s.search(t, ix, m, old[id], 200, noMin)
		hits := s.search(t, ix, m, m[id], 1, noMin)
		if len(hits) != 1 || hits[0].ID != id {
			t.Fatalf("Search(new vector of %d) = %v, want %d first", id, hits, id)
		}
	}
	// The later of two vectors for one id in one call wins.
	a, b := RandUnit(r, 16), RandUnit(r, 16)
	m.add(t, ix, []int64{7, 7}, [][]float32{a, b})
	m[7] = b
	s.search(t, ix, m, a, 200, noMin)
	if hits := s.search(t, ix, m, b, 1, noMin); len(hits) != 1 || hits[0].ID != 7 {
		t.Fatalf("Search(second vector of 7) = %v, want 7 first", hits)
	}
}

func (s suite) testAddCopies(t *testing.T) {
	ix := s.open(t, 16)
	m := model{}
	r := newRand(t)
	m.fill(t, ix, r, 0, 100)
	v := RandUnit(r, 16)
	m.add(t, ix, []int64{1000}, [][]float32{v})
	for i := range v {
		v[i] = -v[i] // the caller reuses its buffer
	}
	s.search(t, ix, m, m[1000], 10, noMin)
	s.search(t, ix, m, v, 10, noMin)
}

func (s suite) testTies(t *testing.T) {
	ix := s.open(t, 16)
	m := model{}
	r := newRand(t)
	m.fill(t, ix, r, 1000, 100)
	v := RandUnit(r, 16)
	same := []int64{42, 7, 19, 3, 100}
	vecs := make([][]float32, len(same))
	for i := range vecs {
		vecs[i] = v
	}
	m.add(t, ix, same, vecs)
	for k, want := range map[int][]int64{1: {3}, 3: {3, 7, 19}, 5: {3, 7, 19, 42, 100}} {
		hits := s.search(t, ix, m, v, k, noMin)
		var got []int64
		for _, h := range hits {
			got = append(got, h.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Search(k=%d) over equal vectors gave ids %v, want %v (ties by smaller id)", k, got, want)
		}
		for _, h := range hits {
			if h.Score != hits[0].Score {
				t.Errorf("equal vectors scored differently: %v", hits)
				break
			}
		}
	}
}

func (s suite) testDeleteThenSearch(t *testing.T) {
	const dim = 32
	ix := s.open(t, dim)
	m := model{}
	r := newRand(t)
	ids := m.fill(t, ix, r, 0, 2000)
	deleted := make(map[int64][]float32)
	perm := r.Perm(len(ids))[:500]
	for len(perm) > 0 {
		n := min(1+r.IntN(40), len(perm))
		batch := make([]int64, 0, n+2)
		for _, p := range perm[:n] {
			batch = append(batch, ids[p])
			deleted[ids[p]] = m[ids[p]]
		}
		batch = append(batch, batch[0], 1_000_000) // a duplicate and an unknown id
		perm = perm[n:]
		m.del(t, ix, batch)
	}
	if got := count(t, ix); got != 1500 {
		t.Fatalf("Len() = %d after deleting 500 of 2000, want 1500", got)
	}
	dids := make([]int64, 0, len(deleted))
	for id := range deleted {
		dids = append(dids, id)
	}
	slices.Sort(dids)
	for i := range 1000 {
		q := RandUnit(r, dim)
		if i%2 == 0 { // the strongest query for a deleted id is its own vector
			q = deleted[dids[r.IntN(len(dids))]]
		}
		for _, h := range s.search(t, ix, m, q, 20, noMin) {
			if _, ok := deleted[h.ID]; ok {
				t.Fatalf("query %d: deleted id %d returned", i, h.ID)
			}
		}
	}
	// Adding a deleted id again makes it searchable again.
	back := dids[:10]
	vecs := make([][]float32, len(back))
	for i, id := range back {
		vecs[i] = deleted[id]
	}
	m.add(t, ix, back, vecs)
	for _, id := range back {
		if hits := s.search(t, ix, m, m[id], 1, noMin); len(hits) != 1 || hits[0].ID != id {
			t.Fatalf("Search(vector of re-added %d) = %v, want %d first", id, hits, id)
		}
	}
	// Deleting everything leaves an empty index.
	all := make([]int64, 0, len(m))
	for id := range m {
		all = append(all, id)
	}
	m.del(t, ix, all)
	if got := count(t, ix); got != 0 {
		t.Fatalf("Len() = %d after deleting every id, want 0", got)
	}
	if hits := s.search(t, ix, m, deleted[dids[0]], 10, noMin); len(hits) != 0 {
		t.Fatalf("Search after deleting every id = %v, want no hits", hits)
	}
}

func (s suite) testDeleteUnknown(t *testing.T) {
	ix := s.open(t, 8)
	m := model{}
	r := newRand(t)
	m.fill(t, ix, r, 0, 50)
	for _, ids := range [][]int64{nil, {}, {424242}, {-1, 50, math.MaxInt64}} {
		if err := ix.Delete(context.Background(), ids); err != nil {
			t.Errorf("Delete(%v): %v", ids, err)
		}
	}
	if got := count(t, ix); got != 50 {
		t.Errorf("Len() = %d after deleting unknown ids, want 50", got)
	}
	s.search(t, ix, m, RandUnit(r, 8), 50, noMin)
}

func (s suite) testWrongDimension(t *testing.T) {
	const dim = 16
	ix := s.open(t, dim)
	m := model{}
	r := newRand(t)
	m.fill(t, ix, r, 0, 10)
	ctx := context.Background()
	for _, n := range []int{0, 1, dim - 1, dim + 1, 2 * dim} {
		v := RandUnit(r, max(n, 1))[:n]
		if err := ix.Add(ctx, []int64{99}, [][]float32{v}); !errors.Is(err, vindex.ErrDim) {
			t.Errorf("Add(vector of length %d) = %v, want ErrDim", n, err)
		}
		batch := [][]float32{RandUnit(r, dim), v}
		if err := ix.Add(ctx, []int64{98, 99}, batch); !errors.Is(err, vindex.ErrDim) {
			t.Errorf("Add(batch with a vector of length %d) = %v, want ErrDim", n, err)
		}
		if _, err := ix.Search(ctx, v, 5, noMin); !errors.Is(err, vindex.ErrDim) {
			t.Errorf("Search(query of length %d) = %v, want ErrDim", n, err)
		}
	}
	if err := ix.Add(ctx, []int64{1, 2}, [][]float32{RandUnit(r, dim)}); err == nil {
		t.Errorf("Add(2 ids, 1 vector) succeeded, want an error")
	}
	if _, ok := m[99]; ok {
		t.Fatal("test bug: 99 in the model")
	}
	s.search(t, ix, m, RandUnit(r, dim), 20, noMin) // 99 never added
}

func (s suite) testContextCancelled(t *testing.T) {
	ix := s.open(t, 8)
	m := model{}
	r := newRand(t)
	m.fill(t, ix, r, 0, 50)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Search(ctx, RandUnit(r, 8), 5, noMin); !errors.Is(err, context.Canceled) {
		t.Errorf("Search(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := ix.Add(ctx, []int64{1000}, [][]float32{RandUnit(r, 8)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Add(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := ix.Delete(ctx, []int64{1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete(cancelled ctx) = %v, want context.Canceled", err)
	}
	// The index stays usable; what the cancelled calls did is unspecified.
	m.del(t, ix, []int64{1, 1000})
	s.search(t, ix, m, RandUnit(r, 8), 60, noMin)
}

// testConcurrent searches while other goroutines add and delete, and checks
// that no search that began after a Delete returned shows a deleted id.
func (s suite) testConcurrent(t *testing.T) {
	const (
		dim       = 16
		nDoomed   = 600  // ids 0..599, deleted during the test
		nKept     = 600  // ids 1000..1599, never touched
		firstNew  = 5000 // ids added during the test
		nNew      = 600
		searchers = 3
		searches  = 300
	)
	ix := s.open(t, dim)
	r := newRand(t)
	vec := make(map[int64][]float32) // read-only once the goroutines start
	var ids []int64
	var vecs [][]float32
	for _, span := range [][2]int64{{0, nDoomed}, {1000, 1000 + nKept}, {firstNew, firstNew + nNew}} {
		for id := span[0]; id < span[1]; id++ {
			vec[id] = RandUnit(r, dim)
			if id < firstNew {
				ids = append(ids, id)
				vecs = append(vecs, vec[id])
			}
		}
	}
	if err := ix.Add(context.Background(), ids, vecs); err != nil {
		t.Fatalf("Add: %v", err)
	}

	// deletedAt[id] is the epoch after which Delete(id) had returned (0: not yet).
	var epoch atomic.Int64
	deletedAt := make([]atomic.Int64, nDoomed)
	ctx := context.Background()
	var wg sync.WaitGroup
	order := r.Perm(nDoomed)
	wg.Go(func() { // deleter
		for len(order) > 0 {
			n := min(1+len(order)%5, len(order))
			batch := make([]int64, n)
			for i, p := range order[:n] {
				batch[i] = int64(p)
			}
			order = order[n:]
			if err := ix.Delete(ctx, batch); err != nil {
				t.Errorf("Delete: %v", err)
				return
			}
			e := epoch.Add(1)
			for _, id := range batch {
				deletedAt[id].Store(e)
			}
			runtime.Gosched()
		}
	})
	wg.Go(func() { // adder
		for id := int64(firstNew); id < firstNew+nNew; id += 10 {
			var ids []int64
			var vecs [][]float32
			for j := id; j < id+10; j++ {
				ids = append(ids, j)
				vecs = append(vecs, vec[j])
			}
			if err := ix.Add(ctx, ids, vecs); err != nil {
				t.Errorf("Add: %v", err)
				return
			}
			runtime.Gosched()
		}
	})
	for g := range searchers {
		seed := r.Uint64()
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			for range searches {
				target := int64(r.IntN(nDoomed))
				start := epoch.Load()
				hits, err := ix.Search(ctx, vec[target], 5, noMin)
				if err != nil {
					t.Errorf("Search: %v", err)
					return
				}
				for i, h := range hits {
					if _, ok := vec[h.ID]; !ok {
						t.Errorf("Search returned id %d, never added", h.ID)
						return
					}
					if h.ID < nDoomed {
						if e := deletedAt[h.ID].Load(); e != 0 && e <= start {
							t.Errorf("Search begun after Delete(%d) returned still returned it", h.ID)
							return
						}
					}
					if i > 0 && (hits[i-1].Score < h.Score || (hits[i-1].Score == h.Score && hits[i-1].ID > h.ID)) {
						t.Errorf("hits out of order: %v", hits)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got, want := count(t, ix), nKept+nNew; got != want {
		t.Fatalf("Len() = %d after the concurrent run, want %d", got, want)
	}
	m := model{}
	for id, v := range vec {
		if id >= nDoomed {
			m[id] = v
		}
	}
	for id := range int64(nDoomed) {
		s.search(t, ix, m, vec[id], 5, noMin)
	}
}

func (s suite) testSaveLoad(t *testing.T) {
	const dim = 24
	ctx := context.Background()
	r := newRand(t)

	empty := s.open(t, dim)
	re := s.roundTrip(t, empty)
	if re.Dim() != dim || count(t, re) != 0 {
		t.Fatalf("empty index loaded as Dim %d, Len %d; want %d, 0", re.Dim(), count(t, re), dim)
	}

	ix := s.open(t, dim)
	m := model{}
	ids := m.fill(t, ix, r, -500, 1000) // negative ids too
	m.del(t, ix, ids[:100])
	var rids []int64
	var rvecs [][]float32
	for _, id := range ids[100:150] {
		rids = append(rids, id)
		rvecs = append(rvecs, RandUnit(r, dim))
	}
	m.add(t, ix, rids, rvecs)

	re = s.roundTrip(t, ix)
	if re.Dim() != dim || count(t, re) != count(t, ix) {
		t.Fatalf("loaded index has Dim %d, Len %d; want %d, %d", re.Dim(), count(t, re), dim, count(t, ix))
	}
	for i := range 100 {
		q := RandUnit(r, dim)
		if i%2 == 0 {
			q = m[ids[100+r.IntN(900)]]
		}
		want := s.search(t, ix, m, q, 10, noMin)
		got := s.search(t, re, m, q, 10, noMin) // check rejects deleted and replaced vectors
		if !slices.Equal(got, want) {
			t.Fatalf("query %d: loaded index gives %v, saved index gave %v", i, got, want)
		}
	}
	// The loaded index is a working index.
	m.del(t, re, ids[150:160])
	m.fill(t, re, r, 10_000, 10)
	s.search(t, re, m, m[10_000], 20, noMin)

	if s.f.Load == nil {
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := ix.Save(cctx, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("Save(cancelled ctx) = %v, want context.Canceled", err)
	}
}

// roundTrip saves ix and loads it back (or, for an index that persists
// itself, opens a second handle on it), closing the copy when t ends.
func (s suite) roundTrip(t *testing.T, ix vindex.Index) vindex.Index {
	t.Helper()
	if s.f.Load == nil {
		re := s.f.Reopen(t, ix)
		if re == nil {
			t.Fatal("Factory.Reopen returned nil")
		}
		t.Cleanup(func() {
			if err := re.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return re
	}
	var buf bytes.Buffer
	if err := ix.Save(context.Background(), &buf); err != nil {
		t.Fatalf("Save: %v", err)
	}
	re, err := s.f.Load(&buf)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() {
		if err := re.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return re
}

func (s suite) testClose(t *testing.T) {
	ix := s.f.New(t, 8)
	m := model{}
	r := newRand(t)
	m.fill(t, ix, r, 0, 10)
	if err := ix.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	if _, err := ix.Search(ctx, RandUnit(r, 8), 5, noMin); !errors.Is(err, vindex.ErrClosed) {
		t.Errorf("Search after Close = %v, want ErrClosed", err)
	}
	if err := ix.Add(ctx, []int64{1}, [][]float32{RandUnit(r, 8)}); !errors.Is(err, vindex.ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
	if err := ix.Delete(ctx, []int64{1}); !errors.Is(err, vindex.ErrClosed) {
		t.Errorf("Delete after Close = %v, want ErrClosed", err)
	}
	if err := ix.Save(ctx, io.Discard); !errors.Is(err, vindex.ErrClosed) && !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Save after Close = %v, want ErrClosed", err)
	}
	if got, err := ix.Len(ctx); (err == nil && got != 0) || (err != nil && !errors.Is(err, vindex.ErrClosed)) {
		t.Errorf("Len after Close = %d, %v; want 0 or ErrClosed", got, err)
	}
	if err := ix.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// testRecall measures recall@10 against brute force: the share of returned
// hits that belong to the true top 10 (a hit whose true score equals the
// 10th best within rounding counts).
func (s suite) testRecall(t *testing.T) {
	const (
		dim      = 64
		n        = 5000
		nQueries = 200
		k        = 10
	)
	ix := s.open(t, dim)
	m := model{}
	r := newRand(t)
	for first := int64(0); first < n; first += 500 {
		m.fill(t, ix, r, first, 500)
	}
	ctx := context.Background()
	found := 0
	for range nQueries {
		q := RandUnit(r, dim)
		hits, err := ix.Search(ctx, q, k, noMin)
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		if err := m.check(hits, q, k, noMin, s.tol); err != nil {
			t.Fatalf("Search: %v", err)
		}
		kth := float64(m.exact(q, k, noMin)[k-1].Score)
		for _, h := range hits {
			if dot64(q, m[h.ID]) >= kth-1e-6 {
				found++
			}
		}
	}
	recall := float64(found) / (nQueries * k)
	t.Logf("recall@%d = %.4f (%d queries, %d vectors of dimension %d; required %.4f)", k, recall, nQueries, n, dim, s.f.MinRecall)
	if recall < s.f.MinRecall {
		t.Errorf("recall@%d = %.4f, below the required %.4f", k, recall, s.f.MinRecall)
	}
}

// newRand returns a generator seeded from the test's name, so that every
// subtest is deterministic and independent of the others.
func newRand(t *testing.T) *rand.Rand {
	var h uint64 = 14695981039346656037
	for _, c := range []byte(t.Name()) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(h, 0x9e3779b97f4a7c15))
}

// randUnit returns a random L2-normalised vector of length dim, uniform on
// the sphere.
// RandUnit returns a random unit vector of dimension dim, uniform on the
// sphere (normalised Gaussian draws from r).
func RandUnit(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for {
		var ss float64
		for i := range v {
			x := r.NormFloat64()
			v[i] = float32(x)
			ss += x * x
		}
		if ss > 1e-12 {
			inv := 1 / math.Sqrt(ss)
			for i := range v {
				v[i] = float32(float64(v[i]) * inv)
			}
			return v
		}
	}
}

// dot64 returns the dot product of a and b in float64.
func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// CancelAfter returns a context whose Err reports context.Canceled from
// its (n+1)th call on (and whose Done channel closes then): a search that
// checks its context at every step is cancelled in the middle, at a place
// the test chooses, without timing.
func CancelAfter(parent context.Context, n int) context.Context {
	ctx, cancel := context.WithCancel(parent)
	c := &countdown{Context: ctx, cancel: cancel}
	c.left.Store(int64(n))
	return c
}

type countdown struct {
	context.Context
	cancel context.CancelFunc
	left   atomic.Int64
}

func (c *countdown) Err() error {
	if c.left.Add(-1) < 0 {
		c.cancel()
	}
	return c.Context.Err()
}
