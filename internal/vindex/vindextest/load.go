package vindextest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"gabarit/internal/vindex"
)

// CheckLoad is the body of an index file loader's fuzz target: data, with
// a valid trailing CRC-32 when fixCRC (so that the checks behind the
// checksum are reached), is loaded with load. It must fail with an error
// wrapping corrupt and no index, or give an index that searches and saves
// back to exactly the bytes it read.
func CheckLoad(t *testing.T, data []byte, fixCRC bool, load func(io.Reader) (vindex.Index, error), corrupt error) {
	t.Helper()
	if fixCRC && len(data) >= 4 {
		data = bytes.Clone(data)
		binary.LittleEndian.PutUint32(data[len(data)-4:], crc32.ChecksumIEEE(data[:len(data)-4]))
	}
	r := bytes.NewReader(data)
	x, err := load(r)
	if err != nil {
		if !errors.Is(err, corrupt) {
			t.Fatalf("error %v does not wrap %v", err, corrupt)
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
	n, err := x.Len(context.Background())
	if err != nil {
		t.Fatalf("Len of a loaded index: %v", err)
	}
	hits, err := x.Search(context.Background(), q, 3, -1)
	if err != nil || len(hits) > min(3, n) {
		t.Fatalf("search of a loaded index: %d hits of %d, %v", len(hits), n, err)
	}
	var buf bytes.Buffer
	if err := x.Save(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), read) {
		t.Fatalf("loaded %d bytes, saved back %d different bytes", len(read), buf.Len())
	}
}
