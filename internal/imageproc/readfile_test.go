package imageproc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readWithin runs ReadFile in a goroutine and fails the test if it has not
// returned within a minute: a FIFO must never block it.
func readWithin(t *testing.T, path string, limit int64) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := ReadFile(path, limit)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(time.Minute):
		t.Fatalf("ReadFile(%s) still blocked after a minute", path)
		return nil, nil
	}
}

// TestReadFile: the reader of files people name takes regular files only,
// within the limit, and never blocks or reads an endless stream.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	photo := filepath.Join(dir, "photo.png")
	want := bytes.Repeat([]byte{7}, 1000)
	if err := os.WriteFile(photo, want, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.jpg")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse.jpg")
	if err := os.WriteFile(sparse, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 2<<30); err != nil { // 2 GiB, no block written
		t.Fatal(err)
	}

	got, err := readWithin(t, photo, 0)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("regular file: %d bytes, %v", len(got), err)
	}
	if got, err := readWithin(t, photo, 1000); err != nil || len(got) != 1000 {
		t.Errorf("file exactly at the limit: %d bytes, %v", len(got), err)
	}

	for _, tc := range []struct {
		name, path string
		limit      int64
		is         error
		says       string
	}{
		{"fifo", fifo, 0, ErrNotRegular, "a named pipe"},
		{"dev zero", "/dev/zero", 0, ErrNotRegular, "a character device"},
		{"directory", dir, 0, ErrNotRegular, "a directory"},
		{"sparse 2 GiB", sparse, 0, ErrTooLarge, "the file is 2048 MiB; the limit is 64 MiB"},
		{"over a small limit", photo, 999, ErrTooLarge, "the file is 1000 bytes; the limit is 999 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := readWithin(t, tc.path, tc.limit)
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %d bytes, error %v; want %v", len(b), err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not say %q and name %s", err, tc.says, tc.path)
			}
		})
	}

	// DecodeFile reads through ReadFile: the same refusals.
	if _, err := DecodeFile(fifo, DecodeOptions{}); !errors.Is(err, ErrNotRegular) {
		t.Errorf("DecodeFile(fifo) = %v, want ErrNotRegular", err)
	}
	if _, err := DecodeFile(sparse, DecodeOptions{}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("DecodeFile(2 GiB sparse) = %v, want ErrTooLarge", err)
	}
}
