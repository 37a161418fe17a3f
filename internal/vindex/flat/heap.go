package flat

import (
	"cmp"
	"slices"

	"gabarit/internal/vindex"
)

// worse reports whether a ranks below b: a lower score, or the same score
// and a larger id (ties go to the smaller id).
func worse(a, b vindex.Hit) bool {
	return a.Score < b.Score || (a.Score == b.Score && a.ID > b.ID)
}

// compareHits orders hits best first, for slices.SortFunc.
func compareHits(a, b vindex.Hit) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// hitHeap keeps the best k hits seen so far in a min-heap whose root is the
// worst of them, so that a better candidate replaces the root in O(log k).
type hitHeap struct {
	hits []vindex.Hit
	k    int
}

// newHeap returns an empty heap for the best k hits (k > 0).
func newHeap(k int) hitHeap {
	return hitHeap{hits: make([]vindex.Hit, 0, k), k: k}
}

// accepts reports whether a hit with this id and score would enter the heap.
func (h *hitHeap) accepts(id int64, score float32) bool {
	return len(h.hits) < h.k || worse(h.hits[0], vindex.Hit{ID: id, Score: score})
}

// push adds x if it is among the best k seen so far; callers check accepts
// first.
func (h *hitHeap) push(x vindex.Hit) {
	if len(h.hits) < h.k {
		h.hits = append(h.hits, x)
		h.up(len(h.hits) - 1)
		return
	}
	h.hits[0] = x
	h.down(0)
}

func (h *hitHeap) up(i int) {
	s := h.hits
	for i > 0 {
		p := (i - 1) / 2
		if !worse(s[i], s[p]) {
			return
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *hitHeap) down(i int) {
	s := h.hits
	n := len(s)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && worse(s[r], s[l]) {
			m = r
		}
		if !worse(s[m], s[i]) {
			return
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
}

// sorted returns the hits best first; the heap is spent afterwards.
func (h *hitHeap) sorted() []vindex.Hit {
	slices.SortFunc(h.hits, compareHits)
	return h.hits
}
