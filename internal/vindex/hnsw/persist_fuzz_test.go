package hnsw

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"
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
		if fixCRC && len(data) >= 4 {
			data = bytes.Clone(data)
			binary.LittleEndian.PutUint32(data[len(data)-4:], crc32.ChecksumIEEE(data[:len(data)-4]))
		}
		r := bytes.NewReader(data)
		x, err := Load(r, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if x != nil {
				t.Fatalf("index returned with error %v", err)
			}
			return
		}
		defer x.Close()
		read := data[:len(data)-r.Len()]
		q := make([]float32, x.Dim())
		q[0] = 1
		hits, err := x.Search(context.Background(), q, 3, -1, nil)
		if err != nil || len(hits) > min(3, x.Len()) {
			t.Fatalf("search of a loaded index: %d hits of %d, %v", len(hits), x.Len(), err)
		}
		var buf bytes.Buffer
		if err := x.Save(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), read) {
			t.Fatalf("loaded %d bytes, saved back %d different bytes", len(read), buf.Len())
		}
	})
}
