package hnsw

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"gabarit/internal/vindex/flat"
	"gabarit/internal/vindex/kernel"
)

// clustered returns n unit vectors of dimension dim shaped like face
// templates: n/10 "persons" (centres uniform on the sphere) with 10 faces
// each on average; a face is its person's centre plus Gaussian noise of
// total norm about 0.88, normalised, so that a face has cosine about 0.75
// with its centre and about 0.56 with another face of the same person, and
// about 0 with other persons. It also returns the centres, so that queries
// can be new faces of enrolled persons.
func clustered(r *rand.Rand, n, dim int) (vecs, centres [][]float32) {
	centres = make([][]float32, max(1, n/10))
	for i := range centres {
		centres[i] = unit(r, dim)
	}
	vecs = make([][]float32, n)
	for i := range vecs {
		vecs[i] = face(r, centres[r.IntN(len(centres))])
	}
	return vecs, centres
}

// face returns a new face of the person whose centre is c.
func face(r *rand.Rand, c []float32) []float32 {
	const rho = 0.88 // noise norm relative to the unit centre
	sigma := rho / math.Sqrt(float64(len(c)))
	v := make([]float32, len(c))
	for i := range v {
		v[i] = c[i] + float32(sigma*r.NormFloat64())
	}
	return normalize(v)
}

// BenchmarkHNSW builds an index of n clustered unit vectors of dimension
// 512 (see clustered), then runs 500 queries (new faces of random enrolled
// persons) once per iteration and reports the build time (build-s, with the
// default Config), recall@10 against flat (recall@10-match: of the true
// top-10 hits of the same person only), mean and p99 single-query
// latency (mean-ms, p99-ms), the RAM per face (B/face: used; B/face-cap:
// with the slack append reserved) and, in its own sub-benchmark, the cost
// of one Delete (ms/delete; run it with -benchtime 1x only, since the ids
// are gone after the first iteration). Sizes of 100k
// and more are skipped with -short. Run it with -benchtime 1x, e.g.
//
//	go test -run '^$' -bench 'HNSW/dim=512/n=100k' -benchtime 1x -timeout 60m ./internal/vindex/hnsw/
func BenchmarkHNSW(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("dim=512/n=%dk", n/1000), func(b *testing.B) {
			if n >= 100_000 && testing.Short() {
				b.Skip("large build skipped in -short mode")
			}
			benchHNSW(b, 512, n)
		})
	}
}

func benchHNSW(b *testing.B, dim, n int) {
	// matchScore separates the faces of the query's person (cosine about
	// 0.56 here) from strangers (about 0 ± 0.05): recall@10-match counts
	// only the true top-10 hits above it, the ones a face search with a
	// threshold would show.
	const nq, k, matchScore = 500, 10, 0.3
	ctx := context.Background()
	r := rand.New(rand.NewPCG(uint64(dim), uint64(n)))
	vecs, centres := clustered(r, n, dim)
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i)
	}
	ref := flat.New(dim)
	if err := ref.Add(ctx, ids, vecs); err != nil {
		b.Fatal(err)
	}
	x := New(dim, Config{})
	start := time.Now()
	for lo := 0; lo < n; lo += 1000 {
		hi := min(lo+1000, n)
		if err := x.Add(ctx, ids[lo:hi], vecs[lo:hi]); err != nil {
			b.Fatal(err)
		}
	}
	build := time.Since(start)
	queries := make([][]float32, nq)
	kth := make([]float32, nq)
	matches := 0 // true top-10 hits scoring at least matchScore
	for i := range queries {
		queries[i] = face(r, centres[r.IntN(len(centres))])
		want, err := ref.Search(ctx, queries[i], k, -2)
		if err != nil {
			b.Fatal(err)
		}
		kth[i] = want[k-1].Score
		for _, h := range want {
			if h.Score >= matchScore {
				matches++
			}
		}
	}
	ref.Close()
	for _, efS := range []int{64, 128, 256} {
		b.Run(fmt.Sprintf("efS=%d", efS), func(b *testing.B) {
			x.SetEfSearch(efS)
			lat := make([]time.Duration, nq)
			found, foundMatch := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				found, foundMatch = 0, 0
				for i, q := range queries {
					t0 := time.Now()
					hits, err := x.Search(ctx, q, k, -2)
					lat[i] = time.Since(t0)
					if err != nil {
						b.Fatal(err)
					}
					for _, h := range hits {
						if sc := kernel.Dot(q, vecs[h.ID]); sc >= kth[i]-1e-6 {
							found++
							if sc >= matchScore {
								foundMatch++
							}
						}
					}
				}
			}
			slices.Sort(lat)
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(build.Seconds(), "build-s")
			b.ReportMetric(float64(found)/(nq*k), "recall@10")
			b.ReportMetric(float64(foundMatch)/float64(matches), "recall@10-match")
			b.ReportMetric(float64(sum.Microseconds())/1000/nq, "mean-ms")
			b.ReportMetric(float64(lat[nq*99/100].Microseconds())/1000, "p99-ms")
			used, held := x.MemBytes()
			b.ReportMetric(float64(used)/float64(n), "B/face")
			b.ReportMetric(float64(held)/float64(n), "B/face-cap")
		})
	}
	b.Run("delete", func(b *testing.B) {
		// Deletes 200 random ids, one call each, with their re-linking.
		perm := r.Perm(n)[:200]
		b.ReportAllocs()
		var per time.Duration
		for b.Loop() {
			t0 := time.Now()
			for _, p := range perm {
				if err := x.Delete(ctx, []int64{int64(p)}); err != nil {
					b.Fatal(err)
				}
			}
			per = time.Since(t0) / time.Duration(len(perm))
		}
		b.ReportMetric(float64(per.Microseconds())/1000, "ms/delete")
	})
}

// BenchmarkDot8 compares the int8 kernel with the float32 one at dimension
// 512.
func BenchmarkDot8(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	x, y := unit(r, 512), unit(r, 512)
	cx, cy := make([]int8, 512), make([]int8, 512)
	quantize(x, cx)
	quantize(y, cy)
	var sink int32
	var fsink float32
	b.Run("n=512/int8", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += dot8(cx, cy)
		}
	})
	b.Run("n=512/int8-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += dot8Go(cx, cy)
		}
	})
	b.Run("n=512/float32", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fsink += kernel.Dot(x, y)
		}
	})
	_, _ = sink, fsink // keeps the calls from being optimised away
}
