package app

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
)

// lowSpace is the free space (bytes, for an unprivileged process) under
// which an I/O error while opening a data directory is put down to a full
// disk: SQLite reports a write that finds no space as "disk I/O error" as
// often as "database or disk is full".
const lowSpace = 1 << 20

// sqliteFull is SQLite's result code SQLITE_FULL.
const sqliteFull = 13

// diskFull returns err, explained when the disk holding dir is full: which
// directory, how much is free and what to do, instead of SQLite's bare
// "disk I/O error".
func diskFull(dir string, err error) error {
	return explainDiskFull(dir, err, freeBytes)
}

// explainDiskFull is diskFull with the free-space probe given.
func explainDiskFull(dir string, err error, free func(dir string) (uint64, error)) error {
	if err == nil {
		return nil
	}
	n, ferr := free(dir)
	var coded interface{ Code() int }
	full := errors.Is(err, syscall.ENOSPC) ||
		errors.As(err, &coded) && coded.Code()&0xff == sqliteFull ||
		ferr == nil && n < lowSpace
	if !full {
		return err
	}
	left := ""
	if ferr == nil {
		left = " (" + strconv.FormatUint(n, 10) + " bytes free)"
	}
	return fmt.Errorf("the disk holding the data directory %s is full%s: free some space on it, then run the command again (%w)", dir, left, err)
}

// freeBytes returns the bytes an unprivileged process may still write on
// the file system holding dir (or, while dir does not exist yet, its
// nearest existing parent).
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	for {
		err := syscall.Statfs(dir, &st)
		if err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, syscall.ENOENT) || parent == dir {
			return 0, err
		}
		dir = parent
	}
	return st.Bavail * uint64(st.Bsize), nil //nolint:gosec // Bsize is a positive block size
}
