package hnsw

import (
	"bytes"
	"context"
	"io"
	"math"
	"testing"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/vindextest"
)

// fuzzIndexFile saves a small index of dim 4 with n vectors, one deleted.
func fuzzIndexFile(tb testing.TB, n int) []byte {
	ctx := context.Background()
	x := New(4, Config{M: 2, EfConstruction: 4, EfSearch: 4, Seed: 1, Workers: 1})
	for i := range n {
		a := float64(i) * 0.7
		v := []float32{float32(math.Cos(a)), float32(math.Sin(a)), 0.1, -0.1}
		var s float32
		for _, c := range v {
			s += c * c
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(float64(s)))
		}
		if err := x.Add(ctx, []int64{int64(i + 1)}, [][]float32{v}); err != nil {
			tb.Fatal(err)
		}
	}
	if n > 1 {
		if err := x.Delete(ctx, []int64{2}); err != nil {
			tb.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := x.Save(ctx, &buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzLoad checks the index file loader on arbitrary bytes: it fails with
// ErrCorrupt, never panics, and allocates in proportion to what it reads
// (the header's count is not trusted). With fixCRC the fuzzer's file gets a
// valid checksum, so that the checks behind the checksum are reached. An
// accepted file gives an index that searches, and saves back to the bytes
// it was read from.
func FuzzLoad(f *testing.F) {
	for _, n := range []int{0, 1, 12} {
		b := fuzzIndexFile(f, n)
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		vindextest.CheckLoad(t, data, fixCRC, func(r io.Reader) (vindex.Index, error) {
			x, err := Load(r, nil)
			if x == nil {
				return nil, err // no typed nil in the interface
			}
			return x, err
		}, ErrCorrupt)
	})
}
