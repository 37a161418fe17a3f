package archive

import (
	"archive/zip"
	"cmp"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"gabarit/internal/imageproc"
	"gabarit/internal/source"
)

// ratioFloor is the declared size, in bytes, under which the
// uncompressed/compressed ratio is not checked: a smaller entry cannot be a
// bomb, and small flat images (a one-colour BMP) legitimately compress well.
const ratioFloor = 1 << 20

// zipEntry is a zip member with its checked name.
type zipEntry struct {
	f   *zip.File
	loc string // cleaned locator; the raw name when !ok
	ok  bool
}

func (s *Source) walkZip(ctx context.Context, f *os.File, size int64, fn func(source.Item, error) error) error {
	zr, err := zip.NewReader(f, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // insecure names are handled below
		return fmt.Errorf("walk archive %s: %w", s.path, err)
	}
	if len(zr.File) > s.lim.MaxEntries {
		return fmt.Errorf("walk archive %s: %d entries, limit %d: %w", s.path, len(zr.File), s.lim.MaxEntries, source.ErrTooLarge)
	}
	if err := s.checkZip(zr, size); err != nil {
		return err
	}
	entries := make([]zipEntry, 0, len(zr.File))
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") || zf.Mode().IsDir() {
			continue
		}
		loc, ok := cleanName(zf.Name)
		if !ok {
			loc = zf.Name
		}
		entries = append(entries, zipEntry{f: zf, loc: loc, ok: ok})
	}
	slices.SortStableFunc(entries, func(a, b zipEntry) int { return cmp.Compare(a.loc, b.loc) })

	var total int64
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		zf, loc := e.f, e.loc
		var err error
		switch {
		case !e.ok:
			err = escape(fn, loc)
		case !imageproc.IsImageName(loc):
			continue
		case i > 0 && entries[i-1].ok && entries[i-1].loc == loc:
			err = itemErr(fn, loc, errors.New("duplicate entry"))
		case zf.Mode()&os.ModeSymlink != 0:
			err = itemErr(fn, loc, errors.New("symlink entry not followed"))
		case !zf.Mode().IsRegular():
			err = itemErr(fn, loc, fmt.Errorf("not a regular file (%s)", zf.Mode().Type()))
		case zf.Flags&0x1 != 0:
			err = itemErr(fn, loc, fmt.Errorf("encrypted entry: %w", errors.ErrUnsupported))
		case zf.Method != zip.Store && zf.Method != zip.Deflate:
			err = itemErr(fn, loc, fmt.Errorf("compression method %d: %w", zf.Method, errors.ErrUnsupported))
		case zf.UncompressedSize64 > uint64(s.lim.MaxFileBytes):
			err = itemErr(fn, loc, tooLarge("declared %d bytes, limit %d", zf.UncompressedSize64, s.lim.MaxFileBytes))
		case zf.UncompressedSize64 > ratioFloor && zf.UncompressedSize64/uint64(s.lim.MaxRatio) > zf.CompressedSize64:
			err = itemErr(fn, loc, tooLarge("compression ratio over %d (%d to %d bytes)", s.lim.MaxRatio, zf.CompressedSize64, zf.UncompressedSize64))
		default:
			n := int64(zf.UncompressedSize64) // ≤ MaxFileBytes
			total += n
			if total > s.lim.MaxTotalBytes {
				return fmt.Errorf("walk archive %s: more than %d uncompressed bytes: %w", s.path, s.lim.MaxTotalBytes, source.ErrTooLarge)
			}
			g := &guard{}
			err = fn(source.Item{
				Locator: loc,
				Size:    n,
				ModTime: zf.Modified,
				Open:    func() (io.ReadCloser, error) { return openZip(g, zf, loc, n) },
			}, nil)
			g.closed = true
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// localHeaderLen is the fixed part of a zip local file header, in bytes.
const localHeaderLen = 30

// checkZip refuses, before any entry is read, a zip whose entries overlap and
// one whose declared sizes add up to more than MaxRatio times the archive's
// size.
//
// Overlap is how the bombs of D. Fifield ("A better zip bomb", 2019) get past
// per-entry limits: many central-directory entries point at one compressed
// stream, or each entry's data contains the local header and data of the
// next, so one stream is inflated once per entry. Every entry's span, from
// its local header (taken as the fixed header plus its name, as written by
// every archiver) to the end of its compressed data, must be disjoint from
// the others'. Entries whose local header cannot be read are left to fail
// when opened.
//
// The whole-archive ratio bounds what can be inflated in total: declared
// sizes are enforced by the entry readers, so no more than MaxRatio times the
// archive's size is ever decompressed, whatever the entries' layout.
func (s *Source) checkZip(zr *zip.Reader, size int64) error {
	type span struct {
		start, end int64
		name       string
	}
	spans := make([]span, 0, len(zr.File))
	var total uint64
	for _, zf := range zr.File {
		total += zf.UncompressedSize64
		if total < zf.UncompressedSize64 { // overflow
			total = math.MaxUint64
		}
		off, err := zf.DataOffset()
		if err != nil || zf.CompressedSize64 > uint64(size) {
			continue
		}
		spans = append(spans, span{start: off - localHeaderLen - int64(len(zf.Name)), end: off + int64(zf.CompressedSize64), name: zf.Name})
	}
	if total > ratioFloor && total/uint64(s.lim.MaxRatio) > uint64(size) {
		return fmt.Errorf("walk archive %s: entries declare %d bytes in all, more than %d times the archive's %d bytes: %w",
			s.path, total, s.lim.MaxRatio, size, source.ErrTooLarge)
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if a, b := spans[i-1], spans[i]; b.start < a.end {
			return fmt.Errorf("walk archive %s: entries %q and %q: %w: %w", s.path, a.name, b.name, ErrOverlap, source.ErrTooLarge)
		}
	}
	return nil
}

// openZip opens a zip member, decompressing it here rather than through
// archive/zip so that a stream longer than declared is reported as
// source.ErrTooLarge; the CRC-32 is checked at the end.
func openZip(g *guard, zf *zip.File, loc string, size int64) (io.ReadCloser, error) {
	if g.closed {
		return nil, &source.ItemError{Locator: loc, Err: ErrClosed}
	}
	raw, err := zf.OpenRaw()
	if err != nil {
		return nil, &source.ItemError{Locator: loc, Err: err}
	}
	var rc io.ReadCloser
	if zf.Method == zip.Deflate {
		rc = flate.NewReader(raw)
	} else {
		rc = io.NopCloser(raw)
	}
	exact := source.ExactReader(rc, size, loc)
	return &guardedReader{g: g, loc: loc, r: &crcReader{r: exact, h: crc32.NewIEEE(), want: zf.CRC32, loc: loc}}, nil
}

// crcReader checks the CRC-32 of a stream when it reaches EOF.
type crcReader struct {
	r    io.ReadCloser
	h    hash.Hash32
	want uint32
	loc  string
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) && c.h.Sum32() != c.want {
		return n, &source.ItemError{Locator: c.loc, Err: zip.ErrChecksum}
	}
	return n, err
}

func (c *crcReader) Close() error { return c.r.Close() }
