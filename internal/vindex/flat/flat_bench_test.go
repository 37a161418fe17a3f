package flat

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchIndex returns an index of n random unit vectors of dimension dim.
func benchIndex(b *testing.B, dim, n int) *Index {
	b.Helper()
	r := rand.New(rand.NewPCG(uint64(dim), uint64(n)))
	x := New(dim)
	const batch = 1000
	for first := 0; first < n; first += batch {
		m := min(batch, n-first)
		ids := make([]int64, m)
		vecs := make([][]float32, m)
		for i := range ids {
			ids[i], vecs[i] = int64(first+i), unit(r, dim)
		}
		if err := x.Add(context.Background(), ids, vecs); err != nil {
			b.Fatal(err)
		}
	}
	return x
}

// BenchmarkFlatSearch measures one top-10 query; above 20,000 vectors the
// scan runs on runtime.GOMAXPROCS(0) goroutines.
func BenchmarkFlatSearch(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("dim=512/n=%dk", n/1000), func(b *testing.B) {
			x := benchIndex(b, 512, n)
			q := unit(rand.New(rand.NewPCG(1, 1)), 512)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.Search(ctx, q, 10, 0.3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFlatScan measures the single-goroutine scan, the work one
// goroutine of a parallel search does per vector.
func BenchmarkFlatScan(b *testing.B) {
	b.Run("dim=512/n=100k", func(b *testing.B) {
		x := benchIndex(b, 512, 100_000)
		q := unit(rand.New(rand.NewPCG(1, 1)), 512)
		ctx := context.Background()
		h := newHeap(10)
		b.ReportAllocs()
		for b.Loop() {
			h.hits = h.hits[:0]
			if err := scan(ctx, q, x.slab, x.ids, 0.3, &h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
