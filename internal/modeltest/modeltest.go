// Package modeltest finds, for tests, the installed runtime and model packs
// and the evaluation photos beside the repository.
package modeltest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"gabarit/internal/setup"
)

// Installed returns the installation directories when ONNX Runtime, the
// default pack and the test photos are installed. Otherwise the test is
// skipped, or fails when GABARIT_REQUIRE_MODELS is set (as `make test` and
// CI do), so that tests of the real models never pass by skipping there.
func Installed(t testing.TB) setup.Dirs {
	t.Helper()
	d := setup.DefaultDirs()
	for _, p := range []string{d.ORTLibrary(), filepath.Join(d.Pack("default"), "manifest.json"), filepath.Join(d.TestPhotos(), "sample1.jpg")} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("GABARIT_REQUIRE_MODELS") != "" {
				t.Fatalf("models are required (GABARIT_REQUIRE_MODELS is set) but %s is missing: run `make setup`", p)
			}
			t.Skipf("models not installed (%s missing): run `make setup` to run this test", p)
		}
	}
	return d
}

// SharedData returns the folder ../shared/data/NAME beside the repository
// (or under $GABARIT_SHARED_DATA), and skips the test with a message when it
// is absent: those evaluation photos are not distributed with gabarit. With
// GABARIT_REQUIRE_SHARED set (as .ci/run sets it: CI always has ../shared)
// an absent folder fails the test instead.
func SharedData(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv("GABARIT_SHARED_DATA")
	if base == "" {
		base = filepath.Join(repoRoot(t), "..", "shared", "data")
	}
	dir := filepath.Join(base, name)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		absent(t, "evaluation photos %s are absent (research data, not shipped with gabarit)", dir)
	}
	return dir
}

// SharedModel returns the folder ../shared/models/NAME beside the
// repository, and skips the test with a message when it is absent (or
// fails, as SharedData does): those optional models come from no package
// registry.
func SharedModel(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "..", "shared", "models", name)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		absent(t, "optional model folder %s is absent (not on any package registry)", dir)
	}
	return dir
}

// absent skips the test because something of ../shared is missing, or
// fails it when GABARIT_REQUIRE_SHARED is set.
func absent(t testing.TB, format, dir string) {
	t.Helper()
	if os.Getenv("GABARIT_REQUIRE_SHARED") != "" {
		t.Fatalf(format+", and GABARIT_REQUIRE_SHARED is set", dir)
	}
	t.Skipf(format+": skipping (set GABARIT_REQUIRE_SHARED=1 to fail instead)", dir)
}

// repoRoot walks up from the working directory to the folder holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// FFmpeg returns the path of ffmpeg when ffmpeg and ffprobe (Debian's
// ffmpeg package, which scripts/install-deps.sh installs) are on PATH.
// Otherwise the test is skipped, or fails when GABARIT_REQUIRE_FFMPEG is set
// (as `make test` and CI do), so that video tests never pass by skipping
// there.
func FFmpeg(t testing.TB) string {
	t.Helper()
	var ffmpeg string
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			if os.Getenv("GABARIT_REQUIRE_FFMPEG") != "" {
				t.Fatalf("%s not found and GABARIT_REQUIRE_FFMPEG is set: %v", tool, err)
			}
			t.Skipf("%s not found: install Debian's ffmpeg package (apt-get install ffmpeg), or set GABARIT_REQUIRE_FFMPEG=1 to fail instead", tool)
		}
		if tool == "ffmpeg" {
			ffmpeg = p
		}
	}
	return ffmpeg
}
