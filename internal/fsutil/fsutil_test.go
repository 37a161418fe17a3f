package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFile: the file is replaced whole, with its mode, and no
// temporary file is left, on success or failure.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.json")
	for i, durable := range []bool{true, false} {
		want := []byte{byte('a' + i), '\n'}
		if err := WriteFile(path, want, 0o640, durable); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != string(want) {
			t.Errorf("read %q, %v; want %q", got, err, want)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
			t.Errorf("mode %v", fi.Mode().Perm())
		}
	}
	// A path whose directory does not exist: an error, nothing left.
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600, true); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	// A path that is a directory: the rename fails, the temporary goes.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "d"), []byte("x"), 0o600, true); err == nil {
		t.Error("replacing a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left in the directory: %v", entries)
	}
}
