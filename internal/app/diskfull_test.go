package app

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

// codedError stands for the SQLite driver's error, which carries SQLite's
// result code.
type codedError struct{ code int }

func (e codedError) Error() string { return fmt.Sprintf("sqlite error %d", e.code) }
func (e codedError) Code() int     { return e.code }

// TestDiskFull: opening a data directory on a full disk says which
// directory and that the disk is full, whichever way the disk's lack of
// room is reported; other errors are left as they are.
func TestDiskFull(t *testing.T) {
	const dir = "/srv/gabarit"
	full := func(string) (uint64, error) { return 4096, nil }
	roomy := func(string) (uint64, error) { return 50 << 30, nil }
	unknown := func(string) (uint64, error) { return 0, syscall.ENOENT }
	ioerr := fmt.Errorf("open store: %w", codedError{10}) // SQLITE_IOERR: "disk I/O error"
	for _, tc := range []struct {
		name      string
		err       error
		free      func(string) (uint64, error)
		explained bool
	}{
		{"ENOSPC", &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOSPC}, unknown, true},
		{"SQLITE_FULL", fmt.Errorf("migrate: %w", codedError{13}), roomy, true},
		{"SQLITE_IOERR_WRITE on a full disk", fmt.Errorf("migrate: %w", codedError{778}), full, true},
		{"disk I/O error on a full disk", ioerr, full, true},
		{"disk I/O error with room", ioerr, roomy, false},
		{"other error, free space unknown", errors.New("database is locked"), unknown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explainDiskFull(dir, tc.err, tc.free)
			if !errors.Is(got, tc.err) {
				t.Fatalf("%v does not wrap %v", got, tc.err)
			}
			says := strings.Contains(got.Error(), "the disk holding the data directory "+dir+" is full") &&
				strings.Contains(got.Error(), "free some space on it")
			if says != tc.explained {
				t.Errorf("explained %v, want %v: %v", says, tc.explained, got)
			}
		})
	}
	if explainDiskFull(dir, nil, full) != nil {
		t.Error("no error became one")
	}
	// The real probe answers for a directory that does not exist yet, from
	// its nearest existing parent.
	if _, err := freeBytes(t.TempDir() + "/not/yet"); err != nil {
		t.Errorf("freeBytes of a directory to be created: %v", err)
	}
}
