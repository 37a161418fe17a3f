package flat

import (
	"bytes"
	"context"
	"io"
	"testing"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/vindextest"
)

// FuzzLoad checks the index file loader on arbitrary bytes: it fails with
// ErrCorrupt, never panics, and allocates in proportion to what it reads
// (the header's count is not trusted). With fixCRC the fuzzer's file gets a
// valid checksum, so that the checks behind the checksum are reached. An
// accepted file gives an index that searches, and saves back to the bytes
// it was read from.
func FuzzLoad(f *testing.F) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 5} {
		x := New(3)
		for i := range n {
			v := []float32{0.6, 0.8, 0}
			v[i%3], v[(i+1)%3] = v[(i+1)%3], v[i%3]
			if err := x.Add(ctx, []int64{int64(i + 1)}, [][]float32{v}); err != nil {
				f.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if err := x.Save(ctx, &buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes(), false)
		f.Add(buf.Bytes(), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		vindextest.CheckLoad(t, data, fixCRC, func(r io.Reader) (vindex.Index, error) {
			x, err := Load(r)
			if x == nil {
				return nil, err // no typed nil in the interface
			}
			return x, err
		}, ErrCorrupt)
	})
}
