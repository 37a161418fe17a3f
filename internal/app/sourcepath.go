package app

import (
	"errors"
	"path/filepath"
	"strings"
)

// checkSourcePath refuses, as a source's path (absolute), the root of the
// file system, and — when dataDir is given — the data directory itself, a
// directory that holds it, and anything inside it: a source is a declared,
// closed collection, and gabarit's own store, keys, crops and index are
// not one. Both paths are compared with their symbolic links resolved.
func checkSourcePath(locator, dataDir string) error {
	loc := resolved(locator)
	if loc == string(filepath.Separator) {
		return errors.New("the root of the file system (/) cannot be a source: declare the folder that holds the collection")
	}
	if dataDir == "" {
		return nil
	}
	data := resolved(dataDir)
	switch {
	case loc == data:
		return errors.New("this is gabarit's data directory, which cannot be a source: declare the folder that holds the collection")
	case within(data, loc):
		return errors.New("this folder holds gabarit's data directory (" + dataDir + "), which cannot be part of a source: declare a folder that holds only the collection")
	case within(loc, data):
		return errors.New("this is inside gabarit's data directory (" + dataDir + "), which cannot be part of a source: declare a folder outside it")
	}
	return nil
}

// resolved returns path cleaned, with its symbolic links resolved when it
// exists (a path that does not exist yet is compared as written).
func resolved(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		path = r
	}
	return filepath.Clean(path)
}

// within reports whether path lies strictly inside dir (both clean and
// absolute).
func within(path, dir string) bool {
	if dir == string(filepath.Separator) {
		return path != dir
	}
	return strings.HasPrefix(path, dir+string(filepath.Separator))
}
