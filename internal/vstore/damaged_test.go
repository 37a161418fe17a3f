package vstore_test

import (
	"context"
	"gabarit/internal/vindex"
	"os"
	"path/filepath"
	"testing"

	"gabarit/internal/vstore"
)

// TestDamagedFileRebuiltOnce checks that an index file that cannot be
// loaded is reported (Handle.Damaged), rebuilt and saved in its place, so
// that the next Open loads it rather than rebuilding again.
func TestDamagedFileRebuiltOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for range 3 {
		e.add(t, "m1")
	}
	path := filepath.Join(t.TempDir(), "index", "faces.idx")
	open := func() *vstore.Handle {
		t.Helper()
		h, err := vstore.Open(ctx, path, flatKind, "m1", dim, e.db, e.keys)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	h := open()
	if h.Damaged != nil {
		t.Fatalf("no file: Damaged %v, want nil", h.Damaged)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("Open saved an index when there was no file (only a damaged file is replaced)")
	}
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("GBVSTORE1\ngarbage")},
		{"not an index", []byte("hello")},
		{"truncated", good[:len(good)-7]},
		{"empty", nil},
	} {
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		h := open()
		if h.Damaged == nil || !h.Rebuilt || vindex.Count(h.Index) != 3 {
			t.Errorf("%s: Damaged %v, rebuilt %v, len %d; want an error, rebuilt, 3", tc.name, h.Damaged, h.Rebuilt, vindex.Count(h.Index))
		}
		// The rebuilt index replaced the file: the next open loads it.
		h = open()
		if h.Damaged != nil || h.Rebuilt || h.CaughtUp != 0 || vindex.Count(h.Index) != 3 {
			t.Errorf("%s, second open: Damaged %v, rebuilt %v, caught up %d, len %d; want loaded as saved",
				tc.name, h.Damaged, h.Rebuilt, h.CaughtUp, vindex.Count(h.Index))
		}
	}
}
