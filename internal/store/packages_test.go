package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"gabarit/internal/dsr"
)

// TestRightsPackages: a request's sealed access package is kept, read back
// by another handle on the same file, replaced by a resumed run, refused
// for an unknown request or without its SHA-256, and deleted.
func TestRightsPackages(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	id := mustRights(t, a, dsr.Access)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

	if _, err := b.RightsPackageOf(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("package before one was kept: %v; want ErrNotFound", err)
	}
	for name, p := range map[string]RightsPackage{
		"unknown request": {RequestID: id + 1, Sealed: []byte("x"), SHA256: sum("x"), Size: 1},
		"no sha":          {RequestID: id, Sealed: []byte("x"), Size: 1},
		"short sha":       {RequestID: id, Sealed: []byte("x"), SHA256: "abcd", Size: 1},
		"nothing sealed":  {RequestID: id, SHA256: sum("x"), Size: 1},
	} {
		err := a.PutRightsPackage(ctx, p)
		want := ErrInvalid
		if name == "unknown request" {
			want = ErrNotFound
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v; want %v", name, err, want)
		}
	}
	if n := count(t, a, "rights_packages"); n != 0 {
		t.Fatalf("%d packages kept by refused calls", n)
	}
	first := RightsPackage{RequestID: id, Sealed: []byte("sealed one"), SHA256: sum("one"), Size: 3}
	if err := a.PutRightsPackage(ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := b.RightsPackageOf(ctx, id)
	if err != nil || !bytes.Equal(got.Sealed, first.Sealed) || got.SHA256 != first.SHA256 || got.Size != 3 || got.Created.IsZero() {
		t.Fatalf("package read by another handle = %+v, %v", got, err)
	}
	second := RightsPackage{RequestID: id, Sealed: []byte("sealed two"), SHA256: sum("two"), Size: 4}
	if err := b.PutRightsPackage(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got, err := a.RightsPackageOf(ctx, id); err != nil || !bytes.Equal(got.Sealed, second.Sealed) || got.SHA256 != second.SHA256 {
		t.Fatalf("replaced package = %+v, %v", got, err)
	}
	if n := count(t, a, "rights_packages"); n != 1 {
		t.Errorf("%d packages after a replacement; want 1", n)
	}
	if ok, err := a.DeleteRightsPackage(ctx, id); err != nil || !ok {
		t.Fatalf("delete: %v, %v", ok, err)
	}
	if ok, err := a.DeleteRightsPackage(ctx, id); err != nil || ok {
		t.Errorf("second delete: %v, %v", ok, err)
	}
	if _, err := b.RightsPackageOf(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("package after its deletion: %v; want ErrNotFound", err)
	}
}
