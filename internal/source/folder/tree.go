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

// Tree walks the files under root, an absolute directory with symlinks
// resolved, whose locators accept takes, in lexical order of locators, by
// the rules of this package (see the package documentation): hidden
// directories are skipped, symlinked directories are not followed, and a
// symlink leading outside root is refused with source.ErrEscape whatever
// its name. found receives each regular file: its locator, the path to open
// it by beneath the root (slash-separated; for a symlink, its resolved
// target, since os.Root does not follow absolute links) and its FileInfo.
// refused receives each entry that cannot be listed, with the reason. Tree
// returns the first error found or refused returns, or ctx.Err() once ctx
// is done. The video source walks its folders with it too.
func Tree(ctx context.Context, root string, accept func(loc string) bool,
	found func(loc, target string, fi fs.FileInfo) error, refused func(loc string, err error) error) error {
	t := tree{root: root, accept: accept, found: found, refused: refused}
	return t.dir(ctx, ".")
}

type tree struct {
	root    string
	accept  func(string) bool
	found   func(loc, target string, fi fs.FileInfo) error
	refused func(loc string, err error) error
}

// dir walks the directory at locator dir ("." for the root).
func (t *tree) dir(ctx context.Context, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := t.readDir(dir)
	if err != nil {
		return t.refused(dir, err)
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
		loc := e.Name()
		if dir != "." {
			loc = path.Join(dir, e.Name())
		}
		var err error
		switch typ := e.Type(); {
		case typ.IsDir():
			if strings.HasPrefix(e.Name(), ".") {
				continue // hidden directories are not part of the collection
			}
			err = t.dir(ctx, loc)
		case typ&fs.ModeSymlink != 0:
			err = t.symlink(loc)
		case !t.accept(loc):
			continue
		case typ.IsRegular():
			fi, ierr := e.Info()
			if ierr != nil {
				err = t.refused(loc, ierr)
				break
			}
			err = t.found(loc, loc, fi)
		default:
			err = t.refused(loc, fmt.Errorf("not a regular file (%s)", typ))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *tree) readDir(dir string) ([]fs.DirEntry, error) {
	root, err := os.OpenRoot(t.root)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
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
