package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSourceKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	key := []byte("wrapped-key-0123456789abcdef")

	if _, err := db.SourceKey(ctx, src); !errors.Is(err, ErrNotFound) {
		t.Errorf("SourceKey before put: err = %v, want ErrNotFound", err)
	}
	if err := db.PutSourceKey(ctx, src, key); err != nil {
		t.Fatal(err)
	}
	got, err := db.SourceKey(ctx, src)
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("SourceKey = %q, %v; want the key put", got, err)
	}
	if err := db.PutSourceKey(ctx, src, []byte("another")); !errors.Is(err, ErrExists) {
		t.Errorf("second PutSourceKey err = %v, want ErrExists", err)
	}
	if err := db.PutSourceKey(ctx, 999, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutSourceKey(unknown source) err = %v, want ErrNotFound", err)
	}
	if err := db.PutSourceKey(ctx, src, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("PutSourceKey(empty) err = %v, want ErrInvalid", err)
	}

	if err := db.DeleteSourceKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SourceKey(ctx, src); !errors.Is(err, ErrNotFound) {
		t.Errorf("SourceKey after delete: err = %v, want ErrNotFound", err)
	}
	if err := db.DeleteSourceKey(ctx, src); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteSourceKey err = %v, want ErrNotFound", err)
	}
	if err := db.PutSourceKey(ctx, src, []byte("new-key")); err != nil {
		t.Errorf("PutSourceKey after shredding: %v", err)
	}
}

func TestDeleteSourceKeyLeavesNoBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := mustSource(t, db, nil)
	key := bytes.Repeat([]byte("SECRET-KEY-MATERIAL!"), 4)
	if err := db.PutSourceKey(ctx, src, key); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if !filesContain(t, dir, key) {
		t.Fatal("key not found in the files before delete: the test cannot see it")
	}
	if err := db.DeleteSourceKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	if filesContain(t, dir, key) {
		t.Error("the deleted key's bytes are still in the database files")
	}
}

// filesContain reports whether any file in dir holds b.
func filesContain(t *testing.T, dir string, b []byte) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			return true
		}
	}
	return false
}
