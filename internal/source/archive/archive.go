// Package archive reads a declared collection supplied as one archive file:
// zip, tar, or gzip-compressed tar (.tar.gz, .tgz), detected by content.
//
// Nothing is ever extracted to disk. Entry names are checked before anything
// is read: absolute names, names with a ".." element (backslashes count as
// separators), drive-letter names and any name filepath.IsLocal rejects are
// reported as *source.ItemError wrapping source.ErrEscape, whatever their
// extension. Symlink and hardlink entries are reported and never followed;
// a second entry with the same cleaned name is reported as a duplicate.
//
// Decompression bombs are bounded by source.Limits: an entry's declared size
// must not exceed MaxFileBytes (and, in zip, MaxRatio times its compressed
// size); the declared sizes of all entries, listed or not, must not exceed
// MaxTotalBytes (and, for tar.gz, MaxRatio times the archive size); nor may
// the number of entries exceed MaxEntries. A zip is also refused before
// anything is read when its entries overlap (ErrOverlap) or when their
// declared sizes add up to more than MaxRatio times the archive's size, which
// bounds all that one walk can inflate. Headers are not trusted: the reader
// returned by Item.Open fails with source.ErrTooLarge as soon as the stream
// goes past the declared size. Per-entry violations are item errors; limits on
// the whole archive stop the walk.
//
// Order and lifetime: zip entries are walked in lexical order of their
// locators. Tar entries can only be read in stream order, so Walk reads the
// archive once, in archive order (not sorted); builders of tar collections
// should store entries sorted by name. For every format, Item.Open must be
// called inside the Walk callback that received the item, and the reader used
// before that callback returns: afterwards Open and Read fail.
package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gabarit/internal/source"
)

var _ source.Source = (*Source)(nil)

// ErrClosed reports an Item.Open or Read after the Walk callback that
// received the item returned.
var ErrClosed = errors.New("archive item used after its walk callback returned")

// ErrOverlap reports a zip whose entries share compressed data (a bomb that
// inflates one stream once per entry); the whole archive is refused, with an
// error that also matches source.ErrTooLarge.
var ErrOverlap = errors.New("overlapping entries share compressed data")

// Format is the container format of an archive.
type Format string

// The formats Open recognises.
const (
	Zip   Format = "zip"
	Tar   Format = "tar"
	TarGz Format = "tar.gz"
)

// Source is an archive file declared as a collection. It holds no open file
// between walks and is safe for concurrent use.
type Source struct {
	path   string
	format Format
	lim    source.Limits
}

// Open returns the collection in the archive at path, whose format is
// detected from its first bytes (zip: "PK\x03\x04", gzip: 0x1f 0x8b, tar:
// "ustar" at offset 257).
func Open(path string, lim source.Limits) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open archive source %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open archive source %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open archive source %s: not a regular file", path)
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("open archive source %s: %w", path, err)
	}
	format, err := sniff(head[:n])
	if err != nil {
		return nil, fmt.Errorf("open archive source %s: %w", path, err)
	}
	return &Source{path: path, format: format, lim: lim.WithDefaults()}, nil
}

// sniff detects the format from the first bytes of an archive.
func sniff(head []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return Zip, nil // PK\x05\x06: an empty zip
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return TarGz, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return Tar, nil
	}
	return "", errors.New("unknown archive format (want zip, tar or tar.gz)")
}

// Format returns the detected format.
func (s *Source) Format() Format { return s.format }

// Walk calls fn for every image entry of the archive; see the package
// documentation for order, limits and the lifetime of Item.Open.
func (s *Source) Walk(ctx context.Context, fn func(it source.Item, err error) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("walk archive %s: %w", s.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("walk archive %s: %w", s.path, err)
	}
	switch s.format {
	case Zip:
		err = s.walkZip(ctx, f, fi.Size(), fn)
	case Tar:
		err = s.walkTar(ctx, f, fi.Size(), false, fn) // a seeker: skipped data is not read
	default:
		err = s.walkTar(ctx, f, fi.Size(), true, fn)
	}
	return err
}

// cleanName checks an entry name and returns its locator; ok is false when
// the name escapes (or is otherwise unusable as a locator).
func cleanName(name string) (loc string, ok bool) {
	n := strings.ReplaceAll(name, `\`, "/")
	if n == "" || strings.HasPrefix(n, "/") || strings.ContainsRune(n, 0) {
		return "", false
	}
	if len(n) >= 2 && n[1] == ':' {
		return "", false // a Windows drive letter
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", false
		}
	}
	c := path.Clean(n)
	if !filepath.IsLocal(filepath.FromSlash(c)) {
		return "", false
	}
	return c, true
}

// escape reports an escaping entry name.
func escape(fn func(source.Item, error) error, name string) error {
	return fn(source.Item{Locator: name}, &source.ItemError{Locator: name, Err: fmt.Errorf("entry name: %w", source.ErrEscape)})
}

// itemErr reports an unreadable entry.
func itemErr(fn func(source.Item, error) error, loc string, err error) error {
	return fn(source.Item{Locator: loc}, &source.ItemError{Locator: loc, Err: err})
}

// tooLarge formats a per-entry limit violation.
func tooLarge(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, source.ErrTooLarge)...)
}

// guard invalidates item readers once their walk callback returns.
type guard struct {
	closed bool
}

// guardedReader fails with ErrClosed once its guard is closed.
type guardedReader struct {
	g   *guard
	r   io.ReadCloser
	loc string
}

func (g *guardedReader) Read(p []byte) (int, error) {
	if g.g.closed {
		return 0, &source.ItemError{Locator: g.loc, Err: ErrClosed}
	}
	return g.r.Read(p)
}

func (g *guardedReader) Close() error { return g.r.Close() }
