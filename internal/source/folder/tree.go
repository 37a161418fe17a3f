package folder

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"gabarit/internal/source"
)

// MaxDepth is the deepest folder level Tree walks, the root's subfolders
// being level 1. A folder nested deeper is refused with ErrTooDeep and its
// contents are not listed; the rest of the walk goes on.
const MaxDepth = 1000

// ErrTooDeep reports a folder nested more than MaxDepth levels below the root.
var ErrTooDeep = fmt.Errorf("folder nested more than %d levels deep: its contents are skipped", MaxDepth)

// maxOpenDirs is how many folders on the current path a walk keeps open, to
// open their subfolders by name; an ancestor beyond that is closed, and
// reopened from the nearest open one if the walk comes back to it with more
// subfolders to visit.
const maxOpenDirs = 32

// Tree walks the files under root, an absolute directory with symlinks
// resolved, whose locators accept takes, in lexical order of locators, by
// the rules of this package (see the package documentation): hidden
// directories are skipped, symlinked directories are not followed, folders
// deeper than MaxDepth are refused with ErrTooDeep, and a symlink leading
// outside root is refused with source.ErrEscape whatever its name. found
// receives each regular file: its locator, the path to open it by beneath
// the root (slash-separated; for a symlink, its resolved target, since
// os.Root does not follow absolute links) and its FileInfo. refused receives
// each entry that cannot be listed, with the reason. Tree returns the first
// error found or refused returns, or ctx.Err() once ctx is done. The video
// source walks its folders with it too.
//
// Each folder is opened by name from its parent's open handle, never by its
// path from the root, so the walk costs time linear in the number of folders
// however deep they nest, and locators longer than PATH_MAX work.
func Tree(ctx context.Context, root string, accept func(loc string) bool,
	found func(loc, target string, fi fs.FileInfo) error, refused func(loc string, err error) error) error {
	t := tree{root: root, accept: accept, found: found, refused: refused}
	return t.dir(ctx, 0, ".", "")
}

type tree struct {
	root    string
	accept  func(string) bool
	found   func(loc, target string, fi fs.FileInfo) error
	refused func(loc string, err error) error

	// open[i] is the folder at level i of the current path (0: the root),
	// nil when closed to bound the open files; names[i-1] is its name.
	open  []*os.Root
	names []string
}

// dir walks the folder at locator loc, level levels below the root, whose
// name in its parent is name ("" for the root).
func (t *tree) dir(ctx context.Context, level int, loc, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := t.enter(level, name)
	defer t.leave(level)
	if err != nil {
		return t.refused(loc, err)
	}
	// Sort by name, directories keyed with a trailing slash, so that the
	// locators come out in lexical order ("a.jpg" < "a/b.jpg").
	key := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(key(a), key(b)) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		child := e.Name()
		if level > 0 {
			child = loc + "/" + e.Name()
		}
		var err error
		switch typ := e.Type(); {
		case typ.IsDir():
			switch {
			case strings.HasPrefix(e.Name(), "."):
				continue // hidden directories are not part of the collection
			case level+1 > MaxDepth:
				err = t.refused(child, ErrTooDeep)
			default:
				err = t.dir(ctx, level+1, child, e.Name())
			}
		case typ&fs.ModeSymlink != 0:
			err = t.symlink(child)
		case !t.accept(child):
			continue
		case typ.IsRegular():
			fi, ierr := e.Info()
			if ierr != nil {
				err = t.refused(child, ierr)
				break
			}
			err = t.found(child, child, fi)
		default:
			err = t.refused(child, fmt.Errorf("not a regular file (%s)", typ))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// enter opens the folder named name at level (the root at level 0) from its
// parent, keeps it open for its subfolders, and returns its entries.
func (t *tree) enter(level int, name string) ([]fs.DirEntry, error) {
	t.open = append(t.open[:level], nil)
	var r *os.Root
	var err error
	if level == 0 {
		t.names = t.names[:0]
		r, err = os.OpenRoot(t.root)
	} else {
		t.names = append(t.names[:level-1], name)
		var parent *os.Root
		if parent, err = t.handle(level - 1); err == nil {
			r, err = parent.OpenRoot(name)
		}
	}
	if err != nil {
		return nil, err
	}
	t.open[level] = r
	if old := level - maxOpenDirs; old > 0 && t.open[old] != nil {
		t.open[old].Close()
		t.open[old] = nil
	}
	f, err := r.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// leave closes the folder at level, if open, and forgets it.
func (t *tree) leave(level int) {
	if level < len(t.open) && t.open[level] != nil {
		t.open[level].Close()
	}
	t.open = t.open[:min(level, len(t.open))]
}

// handle returns the open folder at level of the current path, reopening it
// from its nearest open ancestor (the root is never closed) if it was closed.
func (t *tree) handle(level int) (*os.Root, error) {
	if r := t.open[level]; r != nil {
		return r, nil
	}
	i := level - 1
	for t.open[i] == nil {
		i--
	}
	r, err := t.open[i].OpenRoot(path.Join(t.names[i:level]...))
	if err != nil {
		return nil, err
	}
	t.open[level] = r
	return r, nil
}

// symlink handles a symbolic link at loc: refused if it escapes, listed if
// it leads to an accepted regular file inside, ignored if it leads to a
// directory.
func (t *tree) symlink(loc string) error {
	full := filepath.Join(t.root, filepath.FromSlash(loc))
	target, err := filepath.EvalSymlinks(full)
	if err != nil {
		if !t.accept(loc) {
			return nil
		}
		return t.refused(loc, fmt.Errorf("resolve symlink: %w", err))
	}
	if !inside(t.root, target) {
		return t.refused(loc, fmt.Errorf("symlink target outside the root: %w", source.ErrEscape))
	}
	if !t.accept(loc) {
		return nil
	}
	fi, err := os.Stat(target)
	switch {
	case err != nil:
		return t.refused(loc, err)
	case fi.IsDir():
		return nil // symlinked directories are not followed
	case !fi.Mode().IsRegular():
		return t.refused(loc, fmt.Errorf("not a regular file (%s)", fi.Mode().Type()))
	}
	rel, err := filepath.Rel(t.root, target)
	if err != nil {
		return t.refused(loc, err)
	}
	return t.found(loc, filepath.ToSlash(rel), fi)
}

// inside reports whether the absolute, resolved path p lies in root.
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && filepath.IsLocal(rel)
}
