package flat

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strings"

	"gabarit/internal/vindex"
)

// The file format, all integers little-endian:
//
//	magic  "GBFLAT1\n"  8 bytes; the digit is the format version
//	dim    uint32
//	count  uint64
//	count records: id int64, then dim float32 (IEEE 754 bits)
//	crc    uint32       CRC-32 (IEEE) of every byte before it, magic included
const (
	magic      = "GBFLAT1\n"
	headerSize = len(magic) + 4 + 8
)

// ErrCorrupt is returned (wrapped) by Load when the data is not a complete,
// intact flat index file: bad magic, unsupported version, impossible header,
// truncation (also wrapping io.ErrUnexpectedEOF), duplicate id, non-finite
// value or checksum mismatch.
var ErrCorrupt = errors.New("corrupt flat index file")

// Save writes the index to w in the GBFLAT1 format, which Load reads back.
// It holds the read lock while writing, so Add and Delete (and, behind a
// waiting writer, new searches) wait for it; save to a fast local file.
func (x *Index) Save(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("flat save: %w", err)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return fmt.Errorf("flat save: %w", vindex.ErrClosed)
	}
	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	rec := make([]byte, 0, headerSize+8+4*x.dim)
	rec = append(rec, magic...)
	rec = binary.LittleEndian.AppendUint32(rec, uint32(x.dim))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(len(x.ids)))
	if _, err := bw.Write(rec); err != nil {
		return fmt.Errorf("flat save: %w", err)
	}
	for s, id := range x.ids {
		if s%scanChunk == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("flat save: %w", err)
			}
		}
		rec = binary.LittleEndian.AppendUint64(rec[:0], uint64(id))
		for _, f := range x.vec(s) {
			rec = binary.LittleEndian.AppendUint32(rec, math.Float32bits(f))
		}
		if _, err := bw.Write(rec); err != nil {
			return fmt.Errorf("flat save: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flat save: %w", err)
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return fmt.Errorf("flat save: %w", err)
	}
	return nil
}

// Load reads an index written by Save. It reads exactly the bytes Save wrote
// and no further. A truncated, corrupted or foreign file gives an error
// wrapping ErrCorrupt, never a partial index; an error from r is returned
// wrapped as it is.
func Load(r io.Reader) (*Index, error) {
	crc := crc32.NewIEEE()
	tr := io.TeeReader(r, crc)
	var hdr [headerSize]byte
	if _, err := io.ReadFull(tr, hdr[:]); err != nil {
		return nil, readErr("header", err)
	}
	if got := string(hdr[:len(magic)]); got != magic {
		if strings.HasPrefix(got, magic[:6]) {
			return nil, fmt.Errorf("flat load: unsupported format version %q: %w", strings.TrimSpace(got), ErrCorrupt)
		}
		return nil, fmt.Errorf("flat load: not a flat index file: %w", ErrCorrupt)
	}
	dim := binary.LittleEndian.Uint32(hdr[8:12])
	count := binary.LittleEndian.Uint64(hdr[12:20])
	if dim < 1 || dim > MaxDim {
		return nil, fmt.Errorf("flat load: dimension %d out of range [1, %d]: %w", dim, MaxDim, ErrCorrupt)
	}
	if count > math.MaxInt32 {
		return nil, fmt.Errorf("flat load: count %d too large: %w", count, ErrCorrupt)
	}
	x := New(int(dim))
	// Grow with what actually arrives rather than trusting count, so that a
	// corrupted count cannot make Load allocate more than the data it reads.
	recSize := 8 + 4*int(dim)
	batch := max(1, (1<<20)/recSize)
	buf := make([]byte, min(int(count), batch)*recSize)
	for done := 0; done < int(count); {
		n := min(int(count)-done, batch)
		b := buf[:n*recSize]
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, readErr(fmt.Sprintf("records %d to %d of %d", done, done+n, count), err)
		}
		x.slab = slices.Grow(x.slab, n*int(dim))
		for ; len(b) > 0; b = b[recSize:] {
			id := int64(binary.LittleEndian.Uint64(b))
			if _, dup := x.slot[id]; dup {
				return nil, fmt.Errorf("flat load: record %d: duplicate id %d: %w", done, id, ErrCorrupt)
			}
			start := len(x.slab)
			x.slab = x.slab[:start+int(dim)]
			v := x.slab[start:]
			for j := range v {
				v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[8+4*j:]))
			}
			if !finite(v) {
				return nil, fmt.Errorf("flat load: record %d: NaN or infinite value: %w", done, ErrCorrupt)
			}
			x.slot[id] = int32(len(x.ids))
			x.ids = append(x.ids, id)
			done++
		}
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, readErr("checksum", err)
	}
	if got, want := binary.LittleEndian.Uint32(sum[:]), crc.Sum32(); got != want {
		return nil, fmt.Errorf("flat load: checksum mismatch (file %08x, computed %08x): %w", got, want, ErrCorrupt)
	}
	return x, nil
}

// readErr wraps an error from io.ReadFull: the end of the data is
// truncation, anything else an error of the reader.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("flat load: truncated in %s: %w: %w", what, ErrCorrupt, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("flat load: read %s: %w", what, err)
}
