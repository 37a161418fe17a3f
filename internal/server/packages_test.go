package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/rights"
	"gabarit/internal/store"
)

// TestAccessPackageFromStore: the access package made through one
// instance is served by another, from the store (no instance keeps a
// file); a package kept in the store that does not match its recorded
// SHA-256 is refused; one made before packages were kept in the store is
// still read from the data directory's folder.
func TestAccessPackageFromStore(t *testing.T) {
	e := newRightsEnv(t)
	id := e.ask("access", colourSelfie)
	dpoA := e.login("dora")
	rv := e.findCandidates(dpoA, id)
	var selected []int64
	for _, c := range rv.Candidates {
		if c.Preselected {
			selected = append(selected, c.FaceID)
		}
	}
	out := e.actOn(dpoA, id, selected)
	if !out.Package || out.PackageSHA == "" || out.ActedOn != len(selected) {
		t.Fatalf("outcome: %+v", out)
	}
	dir := filepath.Join(e.data.Dir, "rights")
	if _, err := os.Stat(rights.PackagePath(dir, id)); !os.IsNotExist(err) {
		t.Errorf("the server wrote the package to its disk: %v", err)
	}

	b := e.secondInstance(t, nil)
	dpoB := b.login("dora")
	path := fmt.Sprintf("/api/v1/rights/%d/package", id)
	got := dpoB.send("GET", path, "", nil)
	sum := sha256.Sum256([]byte(got.body))
	if got.status != http.StatusOK || got.header.Get("Content-Type") != "application/zip" || hex.EncodeToString(sum[:]) != out.PackageSHA {
		t.Fatalf("package through the other instance: %d %s, sha %x; want %s", got.status, got.header.Get("Content-Type"), sum, out.PackageSHA)
	}
	if _, err := zip.NewReader(bytes.NewReader([]byte(got.body)), int64(len(got.body))); err != nil {
		t.Errorf("package: %v", err)
	}

	// Sealed bytes cut short: refused.
	ctx := context.Background()
	kept, err := e.data.DB.RightsPackageOf(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.data.DB.PutRightsPackage(ctx, store.RightsPackage{RequestID: id, Sealed: append([]byte(nil), kept.Sealed[:len(kept.Sealed)-1]...),
		SHA256: kept.SHA256, Size: kept.Size}); err != nil {
		t.Fatal(err)
	}
	if st, body := dpoB.do("GET", path, "", nil); st != http.StatusConflict || !strings.Contains(string(body), "package_altered") {
		t.Errorf("altered package: %d %s; want 409 package_altered", st, body)
	}

	// Gone from the store: a package of an older version, in the folder.
	if ok, err := e.data.DB.DeleteRightsPackage(ctx, id); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if st, body := dpoB.do("GET", path, "", nil); st != http.StatusGone || !strings.Contains(string(body), "package_gone") {
		t.Errorf("package in neither place: %d %s; want 410 package_gone", st, body)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rights.PackagePath(dir, id), []byte(got.body), 0o600); err != nil {
		t.Fatal(err)
	}
	if got2 := dpoB.send("GET", path, "", nil); got2.status != http.StatusOK || got2.body != got.body {
		t.Errorf("package of an older version, from the folder: %d", got2.status)
	}
}
