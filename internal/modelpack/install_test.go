package modelpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/modeltest"
	"gabarit/internal/setup"
)

// fakeNPM puts an `npm` script first in PATH that copies tgz into the
// current directory; it fails when run more than once. It returns a
// function reporting how often it ran.
func fakeNPM(t *testing.T, tgz string) func() int {
	t.Helper()
	bin := t.TempDir()
	count := filepath.Join(bin, "count")
	script := `#!/bin/sh
echo x >> "$FAKE_NPM_COUNT"
if [ "$(wc -l < "$FAKE_NPM_COUNT")" -gt 1 ]; then echo "fake npm: called again" >&2; exit 3; fi
[ "$1" = pack ] || exit 2
cp "$FAKE_NPM_TGZ" ./fake.tgz && echo fake.tgz
`
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_NPM_TGZ", tgz)
	t.Setenv("FAKE_NPM_COUNT", count)
	return func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
}

// defaultPackTarball rebuilds the default pack's npm tarball from an
// installed copy of its files, or skips the test.
func defaultPackTarball(t *testing.T) string {
	t.Helper()
	src := modeltest.Installed(t).Pack("default")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range setup.DefaultPack().Files {
		name := filepath.Join(src, filepath.Base(f.Dest))
		b, err := os.ReadFile(name)
		if err != nil || sha256Hex(b) != f.SHA256 {
			t.Fatalf("the installed default pack in %s is damaged (%v): run `gabarit setup`", src, err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Path, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.Close()
	zw.Close()
	name := filepath.Join(t.TempDir(), "pack.tgz")
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestInstallDefault(t *testing.T) {
	calls := fakeNPM(t, defaultPackTarball(t))
	dir := filepath.Join(t.TempDir(), "default")
	ctx := context.Background()
	if err := InstallDefault(ctx, dir, t.Logf); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Embedder.File != DefaultBatchEmbedderFile || m.Embedder.SHA256 != defaultBatchEmbedderSHA256 {
		t.Errorf("embedder %s %s, want %s %s", m.Embedder.File, m.Embedder.SHA256, DefaultBatchEmbedderFile, defaultBatchEmbedderSHA256)
	}
	for _, f := range []string{DefaultDetectorFile, DefaultLandmarksFile, DefaultEmbedderFile, "LICENSE", DefaultBatchEmbedderFile, ManifestFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	// A second install runs no npm and rewrites nothing.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, f := range []string{DefaultBatchEmbedderFile, ManifestFile} {
		os.Chtimes(filepath.Join(dir, f), old, old)
	}
	if err := InstallDefault(ctx, dir, t.Logf); err != nil {
		t.Fatalf("second install: %v", err)
	}
	if calls() != 1 {
		t.Errorf("npm ran %d times, want 1", calls())
	}
	for _, f := range []string{DefaultBatchEmbedderFile, ManifestFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("%s rewritten by the second install", f)
		}
	}

	// A damaged batch embedder is rewritten.
	os.WriteFile(filepath.Join(dir, DefaultBatchEmbedderFile), []byte("x"), 0o644)
	if err := InstallDefault(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Error(err)
	}
}

// yuNetDir returns the folder holding the YuNet model ($GABARIT_YUNET_DIR,
// else ../shared/models/yunet-2026may beside the repository), or skips the
// test when neither exists.
func yuNetDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("GABARIT_YUNET_DIR")
	if d == "" {
		d = modeltest.SharedModel(t, "yunet-2026may")
	}
	b, err := os.ReadFile(filepath.Join(d, YuNetDetectorFile))
	if err != nil {
		t.Fatalf("YuNet folder %s: %v", d, err)
	}
	if sha256Hex(b) != yuNetDetectorSHA256 {
		t.Fatalf("%s in %s is not the expected file (sha256 %s)", YuNetDetectorFile, d, sha256Hex(b))
	}
	return d
}

func TestInstallYuNetRefusesWrongFile(t *testing.T) {
	def := writeTestPack(t)
	from := t.TempDir()
	os.WriteFile(filepath.Join(from, YuNetDetectorFile), []byte("not yunet"), 0o644)
	dir := filepath.Join(t.TempDir(), "yunet")
	err := InstallYuNet(context.Background(), dir, from, def)
	if err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), YuNetDetectorFile) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		t.Error("manifest written for a wrong file")
	}
	if err := InstallYuNet(context.Background(), dir, t.TempDir(), def); err == nil {
		t.Error("missing YuNet file accepted")
	}
	if err := InstallYuNet(context.Background(), dir, from, t.TempDir()); err == nil {
		t.Error("missing default pack accepted")
	}
}

func TestInstallYuNet(t *testing.T) {
	from := yuNetDir(t)
	def := writeTestPack(t)
	dir := filepath.Join(t.TempDir(), "yunet")
	for i := 0; i < 2; i++ { // idempotent
		if err := InstallYuNet(context.Background(), dir, from, def); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "yunet" || m.Detector.Kind != "yunet" || m.Detector.SHA256 != yuNetDetectorSHA256 {
		t.Errorf("detector %+v", m.Detector)
	}
	if m.Embedder.SHA256 != sha256Hex([]byte("embedder")) || m.Landmarks.SHA256 != sha256Hex([]byte("landmarks")) {
		t.Errorf("embedder/landmarks not taken from the default pack: %+v %+v", m.Embedder, m.Landmarks)
	}
	for _, f := range []string{m.Detector.File, m.Landmarks.File, m.Embedder.File} {
		if filepath.IsAbs(f) || filepath.Dir(f) != "." {
			t.Errorf("%s is not a file of the pack directory", f)
		}
	}
}
