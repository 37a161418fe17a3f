package flat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
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
		if fixCRC && len(data) >= 4 {
			data = bytes.Clone(data)
			binary.LittleEndian.PutUint32(data[len(data)-4:], crc32.ChecksumIEEE(data[:len(data)-4]))
		}
		r := bytes.NewReader(data)
		x, err := Load(r)
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
