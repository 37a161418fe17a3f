package archive

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"gabarit/internal/imageproc"
	"gabarit/internal/source"
)

// walkTar walks a tar stream in archive order; r is gzip-compressed when gz.
func (s *Source) walkTar(ctx context.Context, r io.Reader, size int64, gz bool, fn func(source.Item, error) error) error {
	if gz {
		zr, err := gzip.NewReader(bufio.NewReader(r))
		if err != nil {
			return fmt.Errorf("walk archive %s: %w", s.path, err)
		}
		defer zr.Close()
		r = zr
	}
	tail := &tailReader{r: r}
	tr := tar.NewReader(tail)
	seen := map[string]bool{}
	var count int
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if tail.zeros < blockSize {
				// archive/tar accepts a stream that stops between two
				// entries; without the end-of-archive marker that is a
				// truncated archive.
				return fmt.Errorf("walk archive %s: no end-of-archive marker: %w", s.path, io.ErrUnexpectedEOF)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk archive %s: %w", s.path, err)
		}
		count++
		if count > s.lim.MaxEntries {
			return fmt.Errorf("walk archive %s: more than %d entries: %w", s.path, s.lim.MaxEntries, source.ErrTooLarge)
		}
		// Every entry's data passes through the decompressor, listed or not.
		total += max(hdr.Size, 0)
		if total > s.lim.MaxTotalBytes {
			return fmt.Errorf("walk archive %s: more than %d uncompressed bytes: %w", s.path, s.lim.MaxTotalBytes, source.ErrTooLarge)
		}
		if gz && total > ratioFloor && total/int64(s.lim.MaxRatio) > size {
			return fmt.Errorf("walk archive %s: compression ratio over %d: %w", s.path, s.lim.MaxRatio, source.ErrTooLarge)
		}
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		loc, ok := cleanName(hdr.Name)
		switch {
		case !ok:
			err = escape(fn, hdr.Name)
		case !imageproc.IsImageName(loc):
			continue
		case hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink:
			err = itemErr(fn, loc, errors.New("link entry not followed"))
		case hdr.Typeflag != tar.TypeReg:
			err = itemErr(fn, loc, fmt.Errorf("entry type %q: %w", hdr.Typeflag, errors.ErrUnsupported))
		case seen[loc]:
			err = itemErr(fn, loc, errors.New("duplicate entry"))
		case hdr.Size > s.lim.MaxFileBytes:
			err = itemErr(fn, loc, tooLarge("declared %d bytes, limit %d", hdr.Size, s.lim.MaxFileBytes))
		default:
			seen[loc] = true
			g := &guard{}
			opened := false
			n := hdr.Size
			err = fn(source.Item{
				Locator: loc,
				Size:    n,
				ModTime: hdr.ModTime,
				Open: func() (io.ReadCloser, error) {
					switch {
					case g.closed:
						return nil, &source.ItemError{Locator: loc, Err: ErrClosed}
					case opened:
						return nil, &source.ItemError{Locator: loc, Err: errors.New("tar entry opened twice")}
					}
					opened = true
					return &guardedReader{g: g, loc: loc, r: source.ExactReader(io.NopCloser(tr), n, loc)}, nil
				},
			}, nil)
			g.closed = true
		}
		if err != nil {
			return err
		}
	}
}

// blockSize is the size of a tar block; the end of an archive is marked by
// zero blocks (two per POSIX; archive/tar accepts one, and so do we).
const blockSize = 512

// tailReader counts the zero bytes at the end of what was read, to tell a
// complete tar stream from one cut at an entry boundary. It forwards Seek
// when the underlying reader has it, so that archive/tar can still skip
// unread entry data without reading it.
type tailReader struct {
	r     io.Reader
	zeros int // trailing zero bytes read (capped)
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for _, b := range p[:n] {
		if b != 0 {
			t.zeros = 0
		} else if t.zeros < 1<<20 {
			t.zeros++
		}
	}
	return n, err
}

// Seek forwards to the underlying reader, or fails if it cannot seek
// (archive/tar then falls back to reading).
func (t *tailReader) Seek(offset int64, whence int) (int64, error) {
	sk, ok := t.r.(io.Seeker)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	t.zeros = 0
	return sk.Seek(offset, whence)
}
