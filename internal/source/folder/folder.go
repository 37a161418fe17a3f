// Package folder reads a declared collection stored as a directory tree.
//
// Walk lists image files recursively in lexical order of their locators.
// Symbolic links are handled as follows:
//   - a symlink whose target (after filepath.EvalSymlinks) lies outside the
//     root is refused with an ItemError wrapping source.ErrEscape and is not
//     followed, whatever its name;
//   - a symlink to a regular file inside the root is listed once, under its
//     own locator (the target is listed under its own locator too);
//   - symlinked directories are never followed, even inside the root (this
//     keeps the walk finite and every file reachable by one real path).
//
// Hidden directories (names starting with ".") are skipped, like hidden files.
// A folder nested more than MaxDepth levels below the root is reported as an
// ItemError wrapping ErrTooDeep and not walked. The walk takes time linear in
// the number of folders however deep they nest, and locators may be longer
// than PATH_MAX.
//
// Item.Open goes through an os.Root opened on the collection root, so the
// file that is opened is guaranteed to lie inside the root even if a path
// component was swapped for a symlink after listing (the kernel resolves the
// path beneath the root directory). What is not guaranteed: that the opened
// file is the one that was listed (a file replaced by another file, or by a
// symlink to another file inside the root, is read as it is at open time), and
// that the root directory itself is not moved while in use. A file larger at
// open time than when listed, or whose stream is longer, fails with
// source.ErrTooLarge; a shorter stream fails with io.ErrUnexpectedEOF.
package folder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"gabarit/internal/imageproc"
	"gabarit/internal/source"
)

var _ source.Source = (*Source)(nil)

// Source is a directory tree declared as a collection. It holds no open
// file and is safe for concurrent use.
type Source struct {
	root string // absolute, symlinks resolved
	lim  source.Limits
}

// Open returns the collection rooted at root, which must exist and be a
// directory. The root is made absolute and symlinks in it are resolved.
func Open(root string, lim source.Limits) (*Source, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open folder source %s: %w", root, err)
	}
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("open folder source %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open folder source %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open folder source %s: not a directory", root)
	}
	return &Source{root: abs, lim: lim.WithDefaults()}, nil
}

// Root returns the absolute root directory, with symlinks resolved.
func (s *Source) Root() string { return s.root }

// Walk calls fn for every image file under the root, in lexical order of
// locators; see the package documentation for symlinks. Unreadable
// directories and files are reported to fn as *source.ItemError and the walk
// goes on. More than Limits.MaxEntries listed files stops the walk with an
// error wrapping source.ErrTooLarge.
func (s *Source) Walk(ctx context.Context, fn func(it source.Item, err error) error) error {
	w := walker{s: s, fn: fn}
	return Tree(ctx, s.root, imageproc.IsImageName, w.fileAt, func(loc string, err error) error {
		return fn(source.Item{Locator: loc}, &source.ItemError{Locator: loc, Err: err})
	})
}

type walker struct {
	s     *Source
	fn    func(source.Item, error) error
	count int
}

// fileAt lists the image file described by fi under locator loc, opened at
// the path target (relative to the root, slash-separated).
func (w *walker) fileAt(loc, target string, fi fs.FileInfo) error {
	if fi.Size() > w.s.lim.MaxFileBytes {
		return w.fn(source.Item{Locator: loc}, &source.ItemError{Locator: loc,
			Err: fmt.Errorf("%d bytes, limit %d: %w", fi.Size(), w.s.lim.MaxFileBytes, source.ErrTooLarge)})
	}
	w.count++
	if w.count > w.s.lim.MaxEntries {
		return fmt.Errorf("walk folder source: more than %d files: %w", w.s.lim.MaxEntries, source.ErrTooLarge)
	}
	size := fi.Size()
	return w.fn(source.Item{
		Locator: loc,
		Size:    size,
		ModTime: fi.ModTime(),
		Open:    func() (io.ReadCloser, error) { return w.s.open(loc, target, size) },
	}, nil)
}

// open opens the file listed at loc, found at target, with size bytes,
// beneath the root.
func (s *Source) open(loc, target string, size int64) (io.ReadCloser, error) {
	root, err := os.OpenRoot(s.root)
	if err != nil {
		return nil, &source.ItemError{Locator: loc, Err: err}
	}
	defer root.Close()
	// O_NONBLOCK: a file swapped for a FIFO must not block the open.
	f, err := root.OpenFile(filepath.FromSlash(target), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// os.Root refuses paths resolving outside the root; say so.
			resolved, rerr := filepath.EvalSymlinks(filepath.Join(s.root, filepath.FromSlash(target)))
			if rerr == nil && !inside(s.root, resolved) {
				err = fmt.Errorf("%w (%w)", source.ErrEscape, err)
			}
		}
		return nil, &source.ItemError{Locator: loc, Err: err}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &source.ItemError{Locator: loc, Err: err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &source.ItemError{Locator: loc, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	if fi.Size() > size {
		f.Close()
		return nil, &source.ItemError{Locator: loc, Err: fmt.Errorf("grew from %d to %d bytes since listing: %w", size, fi.Size(), source.ErrTooLarge)}
	}
	return source.ExactReader(f, size, loc), nil
}
