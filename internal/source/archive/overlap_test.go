package archive_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"testing"

	"gabarit/internal/source"
	"gabarit/internal/source/archive"
)

// rawEntry is one central-directory record of a hand-built zip: a stored
// entry whose local header is at offset and whose data is data.
type rawEntry struct {
	name   string
	offset uint32
	data   []byte
}

// localHeader returns a zip local file header for a stored entry.
func localHeader(name string, data []byte) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) } //nolint:errcheck // writes to a bytes.Buffer
	le(uint32(0x04034b50))
	le(uint16(20))               // version needed
	le(uint16(0))                // flags
	le(uint16(zip.Store))        // method
	le(uint16(0))                // time
	le(uint16(0x21))             // date: 1980-01-01
	le(crc32.ChecksumIEEE(data)) // crc-32
	le(uint32(len(data)))        // compressed size
	le(uint32(len(data)))        // uncompressed size
	le(uint16(len(name)))        // name length
	le(uint16(0))                // extra length
	b.WriteString(name)
	return b.Bytes()
}

// centralZip appends a central directory listing es, and the end record, to
// body (the local headers and data).
func centralZip(body []byte, es []rawEntry) []byte {
	b := bytes.NewBuffer(bytes.Clone(body))
	le := func(v any) { binary.Write(b, binary.LittleEndian, v) } //nolint:errcheck // writes to a bytes.Buffer
	cd := b.Len()
	for _, e := range es {
		le(uint32(0x02014b50))
		le(uint16(20)) // made by: FAT, 2.0
		le(uint16(20)) // version needed
		le(uint16(0))  // flags
		le(uint16(zip.Store))
		le(uint16(0))
		le(uint16(0x21))
		le(crc32.ChecksumIEEE(e.data))
		le(uint32(len(e.data)))
		le(uint32(len(e.data)))
		le(uint16(len(e.name)))
		le(uint16(0)) // extra length
		le(uint16(0)) // comment length
		le(uint16(0)) // disk
		le(uint16(0)) // internal attributes
		le(uint32(0)) // external attributes
		le(e.offset)
		b.WriteString(e.name)
	}
	cdSize := b.Len() - cd
	le(uint32(0x06054b50))
	le(uint16(0))
	le(uint16(0))
	le(uint16(len(es)))
	le(uint16(len(es)))
	le(uint32(cdSize))
	le(uint32(cd))
	le(uint16(0))
	return b.Bytes()
}

// sharedZip is a zip of n entries whose central-directory records all point
// at one local header and its stored data of size bytes: reading every entry
// reads the data n times.
func sharedZip(n, size int) []byte {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{}).Read(data) //nolint:errcheck // never fails
	body := append(localHeader("0000.jpg", data), data...)
	es := make([]rawEntry, n)
	for i := range es {
		es[i] = rawEntry{name: fmt.Sprintf("%04d.jpg", i), offset: 0, data: data}
	}
	return centralZip(body, es)
}

// quotedZip is a zip of n stored entries where each entry's data holds the
// local header and data of the next one (the "quoted" overlap): the local
// headers of all but the first lie inside another entry's data.
func quotedZip(n, size int) []byte {
	kernel := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(kernel) //nolint:errcheck // never fails
	datas := make([][]byte, n)
	names := make([]string, n)
	datas[n-1] = kernel
	for i := n - 1; i >= 0; i-- {
		names[i] = fmt.Sprintf("%04d.jpg", i)
		if i < n-1 {
			datas[i] = append(localHeader(names[i+1], datas[i+1]), datas[i+1]...)
		}
	}
	body := append(localHeader(names[0], datas[0]), datas[0]...)
	es := make([]rawEntry, n)
	off := 0
	for i := range es {
		es[i] = rawEntry{name: names[i], offset: uint32(off), data: datas[i]}
		off += len(localHeader(names[i], datas[i]))
	}
	return centralZip(body, es)
}

// countingWalk reads every item it is given, inside the callback, and
// returns the bytes read and Walk's error.
func countingWalk(t *testing.T, src source.Source) (read int64, items int, err error) {
	t.Helper()
	err = src.Walk(t.Context(), func(it source.Item, err error) error {
		if err != nil {
			return nil
		}
		rc, err := it.Open()
		if err != nil {
			return nil
		}
		defer rc.Close()
		n, _ := io.Copy(io.Discard, rc) // read errors are not what this counts
		read += n
		items++
		return nil
	})
	return read, items, err
}

// TestZipOverlap checks that zips whose entries share compressed data are
// refused before anything is inflated.
func TestZipOverlap(t *testing.T) {
	t.Parallel()
	const n, size = 200, 64 << 10 // 200 entries of 64 KiB: 13 MB from a 74 kB file
	for _, tc := range []struct {
		name string
		zip  []byte
	}{
		{"shared stream", sharedZip(n, size)},
		{"quoted headers", quotedZip(40, size)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A ratio this high leaves only the overlap check to refuse it.
			read, items, err := countingWalk(t, openBytes(t, tc.zip, source.Limits{MaxRatio: 1 << 20}))
			if !errors.Is(err, archive.ErrOverlap) || !errors.Is(err, source.ErrTooLarge) {
				t.Errorf("Walk: %v, want ErrOverlap and ErrTooLarge", err)
			}
			if read != 0 || items != 0 {
				t.Errorf("%d bytes of %d items read from a %d-byte archive before refusing it", read, items, len(tc.zip))
			}
		})
	}

	// The same layout without overlap (each entry its own copy) is read whole:
	// the check does not refuse ordinary stored zips.
	data := make([]byte, size)
	var body []byte
	var es []rawEntry
	for i := range 3 {
		name := fmt.Sprintf("%04d.jpg", i)
		es = append(es, rawEntry{name: name, offset: uint32(len(body)), data: data})
		body = append(append(body, localHeader(name, data)...), data...)
	}
	read, items, err := countingWalk(t, openBytes(t, centralZip(body, es), source.Limits{}))
	if err != nil || items != 3 || read != 3*size {
		t.Errorf("disjoint entries: Walk %v, %d items, %d bytes; want nil, 3, %d", err, items, read, 3*size)
	}
}

// TestZipTotalRatio checks that an archive of many small, highly compressed
// entries (each under the per-entry ratio check) is refused as a whole,
// before anything is inflated.
func TestZipTotalRatio(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	const n, size = 40, 900 << 10 // 40 entries of 900 KiB of zeros: 37 MB
	for i := range n {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%02d.jpg", i), Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, zeros(size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	read, items, err := countingWalk(t, openBytes(t, buf.Bytes(), source.Limits{}))
	if !errors.Is(err, source.ErrTooLarge) || read != 0 {
		t.Errorf("Walk: %v after %d bytes of %d items from %d bytes; want ErrTooLarge before reading",
			err, read, items, buf.Len())
	}
	// A ratio limit above the archive's lets it through: the refusal is the
	// whole-archive ratio, not an entry's.
	if _, items, err := countingWalk(t, openBytes(t, buf.Bytes(), source.Limits{MaxRatio: 100_000})); err != nil || items != n {
		t.Errorf("MaxRatio 100000: Walk %v, %d items; want nil, %d", err, items, n)
	}
}
