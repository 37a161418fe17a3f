package rights_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"testing"

	"gabarit/internal/dsr"
	"gabarit/internal/rights"
	"gabarit/internal/store"
)

// TestAccessPackageInStore: the access package is kept in the store,
// sealed (its bytes are not there in clear), with its SHA-256; any engine
// over the store reads it back, the same bytes as the file the CLI writes;
// an engine without OutDir writes no file; a package that does not match
// its SHA-256, or whose sealed bytes were altered, is refused.
func TestAccessPackageInStore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Access, "alice1", "alice2")
	out := f.answer(t, r.ID, nil)
	file, err := os.ReadFile(out.Package)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := f.db.RightsPackageOf(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if kept.SHA256 != out.PackageSHA || kept.SHA256 != fmt.Sprintf("%x", sha256.Sum256(file)) || kept.Size != int64(len(file)) {
		t.Errorf("kept package: sha %s size %d; want %s and %d", kept.SHA256, kept.Size, out.PackageSHA, len(file))
	}
	if bytes.Contains(kept.Sealed, []byte("report.json")) || bytes.Contains(kept.Sealed, file[:64]) {
		t.Error("the package is kept in clear")
	}

	// Another engine over the store (another instance), without a folder.
	other := *f.eng
	other.OutDir = ""
	got, err := other.Package(ctx, r.ID)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("Package: %d bytes, %v; want the %d bytes of the file", len(got), err, len(file))
	}
	if _, err := zip.NewReader(bytes.NewReader(got), int64(len(got))); err != nil {
		t.Errorf("the package read back is not a zip: %v", err)
	}
	r2 := f.request(t, dsr.Access, "alice1")
	out2 := (&fixture{db: f.db, eng: &other}).answer(t, r2.ID, nil)
	if out2.Package != "" || out2.PackageSHA == "" {
		t.Errorf("an engine without OutDir: package %q, sha %q; want no file and a sha", out2.Package, out2.PackageSHA)
	}
	if b, err := f.eng.Package(ctx, r2.ID); err != nil || fmt.Sprintf("%x", sha256.Sum256(b)) != out2.PackageSHA {
		t.Errorf("package of a request answered without a folder: %v", err)
	}
	if _, err := f.eng.Package(ctx, r2.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("package of an unknown request: %v; want ErrNotFound", err)
	}

	// Request 1's sealed package under request 2's id: it does not open
	// (the seal is bound to the request).
	if err := f.db.PutRightsPackage(ctx, store.RightsPackage{RequestID: r2.ID, Sealed: kept.Sealed, SHA256: kept.SHA256, Size: kept.Size}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Package(ctx, r2.ID); !errors.Is(err, rights.ErrPackageAltered) {
		t.Errorf("a package sealed for another request: %v; want ErrPackageAltered", err)
	}
	// The right seal, the wrong SHA-256.
	if err := f.db.PutRightsPackage(ctx, store.RightsPackage{RequestID: r.ID, Sealed: kept.Sealed, SHA256: out2.PackageSHA, Size: kept.Size}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Package(ctx, r.ID); !errors.Is(err, rights.ErrPackageAltered) {
		t.Errorf("a package that does not match its SHA-256: %v; want ErrPackageAltered", err)
	}
}
