package hnsw

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
//	magic   "GBHNSW2\n"  8 bytes; the digit is the format version
//	dim     uint32
//	m       uint32       Config.M
//	efC     uint32       Config.EfConstruction
//	efS     uint32       Config.EfSearch
//	seed    int64        Config.Seed
//	count   uint64       slots, tombstones included
//	entry   uint32       entry point slot (0 when count is 0)
//	top     int32        level of the entry point, -1 when count is 0
//	count records, in slot order:
//	  id     int64       0 for a tombstone
//	  flags  uint8       bit 0: tombstone; other bits zero
//	  level  uint8       top level of the node, ≤ 16
//	  scale  float32     (IEEE 754 bits) of the codes; zero for a tombstone
//	  codes  dim int8    the vector ≈ scale × codes; zero for a tombstone
//	  links  for each level 0..level: count uint32, then the level's
//	         capacity (2m on level 0, m above) of uint32 slots, unused ones 0
//	crc     uint32       CRC-32 (IEEE) of every byte before it, magic included
//
// Version 1 stored the float32 vectors; since version 2 the index holds
// only the int8 codes (the float32 vectors stay in the store), and Load
// refuses version 1 files: rebuild the index from the store instead.
const (
	magic      = "GBHNSW2\n"
	headerSize = len(magic) + 4*4 + 8 + 8 + 4 + 4
)

// ErrCorrupt is returned (wrapped) by Load when the data is not a complete,
// intact hnsw index file: bad magic, unsupported version, impossible header
// or record, truncation (also wrapping io.ErrUnexpectedEOF), duplicate id,
// non-finite value, dangling link or checksum mismatch.
var ErrCorrupt = errors.New("corrupt hnsw index file")

// Save writes the index, graph included, to w in the GBHNSW2 format, which
// Load reads back into an index answering every search the same way. It
// holds the read lock while writing, so Add and Delete wait for it.
func (x *Index) Save(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hnsw save: %w", err)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.closed {
		return fmt.Errorf("hnsw save: %w", vindex.ErrClosed)
	}
	g := x.g
	le := binary.LittleEndian
	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	rec := make([]byte, 0, headerSize)
	rec = append(rec, magic...)
	rec = le.AppendUint32(rec, uint32(x.dim))
	rec = le.AppendUint32(rec, uint32(x.cfg.M))
	rec = le.AppendUint32(rec, uint32(x.cfg.EfConstruction))
	rec = le.AppendUint32(rec, uint32(x.cfg.EfSearch))
	rec = le.AppendUint64(rec, uint64(x.cfg.Seed))
	rec = le.AppendUint64(rec, uint64(g.n()))
	entry, top := g.entryPoint()
	rec = le.AppendUint32(rec, entry)
	rec = le.AppendUint32(rec, uint32(int32(top)))
	if _, err := bw.Write(rec); err != nil {
		return fmt.Errorf("hnsw save: %w", err)
	}
	for s := range uint32(g.n()) {
		if s%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("hnsw save: %w", err)
			}
		}
		var flags uint8
		if g.isDead(s) {
			flags = 1
		}
		rec = le.AppendUint64(rec[:0], uint64(g.ids[s]))
		rec = append(rec, flags, g.levels[s])
		rec = le.AppendUint32(rec, math.Float32bits(g.scales[s]))
		for _, c := range g.code(s) {
			rec = append(rec, byte(c))
		}
		// Under the stripe lock: an Add may be linking under the read lock.
		mu := &g.stripes[s%nStripes]
		mu.Lock()
		for l := 0; l <= int(g.levels[s]); l++ {
			for _, u := range g.links(s, l) {
				rec = le.AppendUint32(rec, u)
			}
		}
		mu.Unlock()
		if _, err := bw.Write(rec); err != nil {
			return fmt.Errorf("hnsw save: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("hnsw save: %w", err)
	}
	if _, err := w.Write(le.AppendUint32(nil, crc.Sum32())); err != nil {
		return fmt.Errorf("hnsw save: %w", err)
	}
	return nil
}

// Load reads an index written by Save; src becomes its Config.Source (nil
// for none) and Config.Workers takes its default. It reads exactly the
// bytes Save wrote and no further. A truncated, corrupted or foreign file gives an
// error wrapping ErrCorrupt, never a partial index and never a panic; an
// error from r is returned wrapped as it is.
func Load(r io.Reader, src VectorSource) (*Index, error) {
	le := binary.LittleEndian
	crc := crc32.NewIEEE()
	tr := io.TeeReader(r, crc)
	var hdr [headerSize]byte
	if _, err := io.ReadFull(tr, hdr[:]); err != nil {
		return nil, readErr("header", err)
	}
	if got := string(hdr[:len(magic)]); got != magic {
		if got == "GBHNSW1\n" {
			return nil, fmt.Errorf("hnsw load: format version 1 (float32 vectors) is no longer read; rebuild the index from the store (gabarit reindex): %w", ErrCorrupt)
		}
		if strings.HasPrefix(got, magic[:6]) {
			return nil, fmt.Errorf("hnsw load: unsupported format version %q: %w", strings.TrimSpace(got), ErrCorrupt)
		}
		return nil, fmt.Errorf("hnsw load: not an hnsw index file: %w", ErrCorrupt)
	}
	h := hdr[len(magic):]
	dim := le.Uint32(h[0:])
	cfg := Config{
		M:              int(le.Uint32(h[4:])),
		EfConstruction: int(le.Uint32(h[8:])),
		EfSearch:       int(le.Uint32(h[12:])),
		Seed:           int64(le.Uint64(h[16:])),
		Source:         src,
	}
	count := le.Uint64(h[24:])
	entry := le.Uint32(h[32:])
	top := int32(le.Uint32(h[36:]))
	if dim < 1 || dim > MaxDim {
		return nil, fmt.Errorf("hnsw load: dimension %d out of range [1, %d]: %w", dim, MaxDim, ErrCorrupt)
	}
	if cfg.M == 0 || cfg.EfConstruction == 0 || cfg.EfSearch == 0 {
		return nil, fmt.Errorf("hnsw load: zero parameter in %+v: %w", cfg, ErrCorrupt)
	}
	if _, err := cfg.withDefaults(); err != nil {
		return nil, fmt.Errorf("hnsw load: %w: %w", err, ErrCorrupt)
	}
	if count >= math.MaxUint32 {
		return nil, fmt.Errorf("hnsw load: count %d too large: %w", count, ErrCorrupt)
	}
	if (count == 0) != (top == -1) || top < -1 || top > maxLevel || (count == 0 && entry != 0) || (count > 0 && uint64(entry) >= count) {
		return nil, fmt.Errorf("hnsw load: entry point %d at level %d impossible for %d slots: %w", entry, top, count, ErrCorrupt)
	}
	x := New(int(dim), cfg)
	g := newGraph(int(dim), cfg, count)
	// Grow with what actually arrives rather than trusting count, so that a
	// corrupted count cannot make Load allocate more than the data it reads.
	// Each record is read with at most two reads (the fixed part with the
	// level-0 links, then the upper levels), and never beyond it, so that
	// Load reads exactly the file.
	l0 := 4 * (g.m0 + 1)
	rs := 10 + 4 + int(dim) // record size before the links
	buf := make([]byte, rs+l0)
	code := make([]int8, dim)
	for s := range uint32(count) {
		if _, err := io.ReadFull(tr, buf); err != nil {
			return nil, readErr(fmt.Sprintf("record %d of %d", s, count), err)
		}
		id := int64(le.Uint64(buf))
		flags, lvl := buf[8], int(buf[9])
		if flags > 1 || lvl > maxLevel {
			return nil, fmt.Errorf("hnsw load: record %d: flags %#x, level %d: %w", s, flags, lvl, ErrCorrupt)
		}
		scale := math.Float32frombits(le.Uint32(buf[10:]))
		zeroCodes := true
		for j := range code {
			code[j] = int8(buf[14+j])
			zeroCodes = zeroCodes && code[j] == 0
		}
		dead := flags == 1
		if dead && (id != 0 || scale != 0 || !zeroCodes) {
			return nil, fmt.Errorf("hnsw load: record %d: tombstone with an id or codes: %w", s, ErrCorrupt)
		}
		if !(scale >= 0 && scale <= 1) || slices.Contains(code, -128) { // NaN fails too; unit vectors have scale ≤ 1/127
			return nil, fmt.Errorf("hnsw load: record %d: scale %v or a code out of range: %w", s, scale, ErrCorrupt)
		}
		if _, dup := g.slot[id]; dup && !dead {
			return nil, fmt.Errorf("hnsw load: record %d: duplicate id %d: %w", s, id, ErrCorrupt)
		}
		g.grow(id, code, scale, lvl)
		if !dead {
			g.slot[id] = s
		} else {
			g.dead[s/64] |= 1 << (s % 64)
			g.nDead++
		}
		raw := buf[rs:]
		if lvl > 0 {
			raw = make([]byte, 4*lvl*(g.m+1))
			if _, err := io.ReadFull(tr, raw); err != nil {
				return nil, readErr(fmt.Sprintf("links of record %d of %d", s, count), err)
			}
			raw = append(buf[rs:], raw...)
		}
		for l := 0; l <= lvl; l++ {
			block := g.links(s, l)
			for i := range block {
				block[i] = le.Uint32(raw[4*i:])
			}
			raw = raw[4*len(block):]
			if int(block[0]) > len(block)-1 {
				return nil, fmt.Errorf("hnsw load: record %d level %d: %d links: %w", s, l, block[0], ErrCorrupt)
			}
		}
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, readErr("checksum", err)
	}
	if got, want := le.Uint32(sum[:]), crc.Sum32(); got != want {
		return nil, fmt.Errorf("hnsw load: checksum mismatch (file %08x, computed %08x): %w", got, want, ErrCorrupt)
	}
	g.entry, g.top = entry, int(top)
	if err := g.validate(); err != nil {
		return nil, fmt.Errorf("hnsw load: %w: %w", err, ErrCorrupt)
	}
	x.g = g
	return x, nil
}

// validate checks what the checksum cannot vouch for in a file made to
// pass it: every link names an existing slot whose level reaches the
// link's level, and the entry point sits on the top level.
func (g *graph) validate() error {
	n := uint32(g.n())
	if n > 0 && (int(g.levels[g.entry]) != g.top || g.isDead(g.entry)) {
		return fmt.Errorf("entry point %d (level %d, header says %d) is not a live node of the top level", g.entry, g.levels[g.entry], g.top)
	}
	for s := range n {
		for l := 0; l <= int(g.levels[s]); l++ {
			for _, t := range neighbours(g.links(s, l)) {
				if t >= n || int(g.levels[t]) < l {
					return fmt.Errorf("slot %d level %d links to slot %d, which is not on that level", s, l, t)
				}
			}
		}
	}
	if len(g.slot) == 0 && n > 0 {
		return fmt.Errorf("%d slots, all tombstones", n)
	}
	return nil
}

// zero reports whether v holds only zeros.
func zero(v []float32) bool {
	for _, f := range v {
		if f != 0 {
			return false
		}
	}
	return true
}

// readErr wraps an error from io.ReadFull: the end of the data is
// truncation, anything else an error of the reader.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("hnsw load: truncated in %s: %w: %w", what, ErrCorrupt, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("hnsw load: read %s: %w", what, err)
}
