package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeclarationRefusesRootAndData: a source may not be /, the data
// directory, a folder holding it or a folder inside it, even through a
// symbolic link; a folder beside it is fine.
func TestDeclarationRefusesRootAndData(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	photos := filepath.Join(base, "photos")
	for _, d := range []string{filepath.Join(data, "crops"), photos} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	decl := func(path string) Declaration {
		return Declaration{Kind: "folder", Path: path, Controller: "Org", Purpose: "tests", LegalBasis: "consent",
			Art9: "9(2)(a)", Jurisdiction: "FR", Retention: "30d", DataDir: data}
	}
	for _, tc := range []struct{ path, says string }{
		{"/", "the root of the file system (/) cannot be a source"},
		{"/..", "the root of the file system (/) cannot be a source"},
		{data, "this is gabarit's data directory"},
		{data + "/", "this is gabarit's data directory"},
		{link, "this is gabarit's data directory"},
		{base, "this folder holds gabarit's data directory"},
		{filepath.Join(data, "crops"), "this is inside gabarit's data directory"},
		{filepath.Join(link, "crops"), "this is inside gabarit's data directory"},
	} {
		_, err := decl(tc.path).Validate("--")
		if err == nil || !strings.HasPrefix(err.Error(), "--path: "+tc.says) {
			t.Errorf("%s: %v; want --path: %s…", tc.path, err, tc.says)
		}
	}
	if _, err := decl(photos).Validate("--"); err != nil {
		t.Errorf("a folder beside the data directory: %v", err)
	}
	// Without a data directory (a caller that has none), / is still refused.
	d := decl("/")
	d.DataDir = ""
	if _, err := d.Validate(""); err == nil {
		t.Error("/ accepted without a data directory")
	}
}
