package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Item is one file of a collection.
type Item struct {
	// Locator is the path of the file inside the source, slash-separated and
	// relative to the root: what users see and what the store keeps.
	Locator string
	// Size is the size of the content in bytes.
	Size int64
	// ModTime is the modification time recorded by the source (zero if none).
	ModTime time.Time
	// Open opens the content. The reader yields at most Size bytes; a stream
	// longer than Size fails with an error wrapping ErrTooLarge. Some sources
	// only allow Open while the Walk callback that received the item runs.
	Open func() (io.ReadCloser, error)
}

// Source lists the images of a declared collection.
type Source interface {
	// Walk calls fn for every candidate image file in a deterministic order
	// (lexical by Locator unless the implementation documents otherwise),
	// stopping at the first error fn returns, which Walk returns, or at ctx
	// cancellation, when it returns ctx.Err(). Files that cannot be read are
	// reported through fn's second argument (an *ItemError naming the locator
	// and the reason, with a zero Item apart from its Locator) rather than
	// stopping the walk. Errors that make the rest of the collection
	// unreadable (a corrupt archive, a limit on the whole collection) stop
	// the walk and are returned.
	Walk(ctx context.Context, fn func(it Item, err error) error) error
}

var (
	// ErrEscape reports a path that escapes the source: a symlink or an
	// archive entry leading outside the root.
	ErrEscape = errors.New("path escapes the source")
	// ErrTooLarge reports a file, an archive entry or a collection over its
	// Limits, including decompression bombs and streams longer than declared.
	ErrTooLarge = errors.New("entry too large")
)

// ItemError reports one file of a source that cannot be listed or read.
type ItemError struct {
	Locator string // the file's locator (for refused archive entries, the raw name)
	Err     error  // the reason; errors.Is(err, ErrEscape) etc. see through it
}

// Error returns the locator (quoted, since it comes from untrusted input) and
// the reason.
func (e *ItemError) Error() string { return fmt.Sprintf("source item %q: %v", e.Locator, e.Err) }

// Unwrap returns the reason.
func (e *ItemError) Unwrap() error { return e.Err }

// Default limits, used for zero or negative fields of Limits.
const (
	DefaultMaxFileBytes  = 64 << 20   // 64 MiB per file
	DefaultMaxTotalBytes = 64 << 30   // 64 GiB uncompressed per archive
	DefaultMaxEntries    = 10_000_000 // entries per source
	DefaultMaxRatio      = 200        // uncompressed/compressed size
)

// Limits bounds what a source accepts. Zero fields take the defaults.
type Limits struct {
	MaxFileBytes  int64 // largest file or entry, bytes (default 64 MiB)
	MaxTotalBytes int64 // archives: total uncompressed bytes (default 64 GiB)
	MaxEntries    int   // most entries (files or archive members) per source (default 10,000,000)
	MaxRatio      int   // archives: uncompressed/compressed size (default 200)
}

// WithDefaults returns l with zero or negative fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// ExactReader returns a reader over r that yields exactly size bytes: a
// stream longer than size fails with an *ItemError wrapping ErrTooLarge (it
// never reads more than one byte past size), a shorter one with an
// *ItemError wrapping io.ErrUnexpectedEOF. Closing it closes r. Sources use it
// so that no header or directory listing is trusted.
func ExactReader(r io.ReadCloser, size int64, locator string) io.ReadCloser {
	return &exactReader{r: r, left: size, locator: locator}
}

type exactReader struct {
	r       io.ReadCloser
	left    int64
	locator string
	err     error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left <= 0 {
		// Probe one byte: the stream must end exactly at size.
		var one [1]byte
		n, err := io.ReadFull(e.r, one[:])
		switch {
		case n > 0:
			e.err = &ItemError{Locator: e.locator, Err: fmt.Errorf("stream longer than declared size: %w", ErrTooLarge)}
		case errors.Is(err, io.EOF):
			e.err = io.EOF
		default:
			e.err = &ItemError{Locator: e.locator, Err: err}
		}
		return 0, e.err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) {
		if e.left > 0 {
			e.err = &ItemError{Locator: e.locator, Err: fmt.Errorf("stream shorter than declared size: %w", io.ErrUnexpectedEOF)}
			return n, e.err
		}
		// Defer EOF to the probe, which also checks nothing follows.
		err = nil
	} else if err != nil {
		e.err = &ItemError{Locator: e.locator, Err: err}
		return n, e.err
	}
	return n, err
}

func (e *exactReader) Close() error { return e.r.Close() }
