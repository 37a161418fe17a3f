//go:build cgo && onnx

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/imageproc"
	"gabarit/internal/modeltest"
)

// TestFacesCompareRefuseNonRegular: `gabarit faces` and `gabarit compare`
// refuse a FIFO, /dev/zero and a 2 GiB file instead of hanging or reading
// without end, and faces goes on with the other files.
func TestFacesCompareRefuseNonRegular(t *testing.T) {
	d := modeltest.Installed(t)
	fifo, sparse, _ := userFiles(t)
	good := filepath.Join(d.TestPhotos(), "sample2.jpg")
	out, _, err := runWithin(t, "faces", fifo, "/dev/zero", sparse, good)
	if exitCode(err) != 1 {
		t.Errorf("faces: %v, want exit status 1", err)
	}
	for _, want := range []string{
		fifo + ": error: not a regular file (a named pipe)",
		"/dev/zero: error: not a regular file (a character device)",
		sparse + ": error: the file is 2048 MiB; the limit is 64 MiB",
		good + ": ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("faces output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{fifo, "/dev/zero", sparse} {
		_, _, err := runWithin(t, "compare", good, bad)
		if !errors.Is(err, imageproc.ErrNotRegular) && !errors.Is(err, imageproc.ErrTooLarge) {
			t.Errorf("compare with %s: %v", bad, err)
		}
	}
}

// TestEscapedNamesPrinted: file names holding terminal escapes are printed
// escaped by faces and by ingest, in their text output.
func TestEscapedNamesPrinted(t *testing.T) {
	d := modeltest.Installed(t)
	photos := t.TempDir()
	photo := filepath.Join(photos, "sample\x1b[2J.jpg")
	if err := copyFile(filepath.Join(d.TestPhotos(), "sample2.jpg"), photo); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(photos, "notes\x1b]0;owned\a.jpg"), []byte("not a photo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "faces", photo)
	if err != nil || strings.ContainsRune(out, 0x1b) || !strings.Contains(out, `sample\x1b[2J.jpg: `) {
		t.Errorf("faces: %v\n%q", err, out)
	}
	data := t.TempDir()
	id := addSource(t, data, photos)
	out, _, err = cli(t, data, "ingest", fmt.Sprint(id))
	if exitCode(err) != 1 || strings.ContainsAny(out, "\x1b\a") || !strings.Contains(out, `error: notes\x1b]0;owned\a.jpg: `) {
		t.Errorf("ingest: %v\n%q", err, out)
	}
}

// TestIngestJSONWhenWalkAborts: `gabarit ingest --json` prints its JSON
// summary, with the error, when the source cannot be walked.
func TestIngestJSONWhenWalkAborts(t *testing.T) {
	d := modeltest.Installed(t)
	data, photos := t.TempDir(), filepath.Join(t.TempDir(), "photos")
	if err := copyFile(filepath.Join(d.TestPhotos(), "sample2.jpg"), filepath.Join(photos, "a.jpg")); err != nil {
		t.Fatal(err)
	}
	id := addSource(t, data, photos)
	if err := os.RemoveAll(photos); err != nil { // the collection is gone: the walk stops at once
		t.Fatal(err)
	}
	out, _, err := cli(t, data, "ingest", "--json", fmt.Sprint(id))
	if err == nil {
		t.Fatal("ingest of a missing folder succeeded")
	}
	var sum ingestJSON
	if jerr := json.Unmarshal([]byte(out), &sum); jerr != nil {
		t.Fatalf("ingest --json printed %q (%v); the command failed with %v", out, jerr, err)
	}
	if sum.SourceID != id || sum.Error == "" || sum.Error != err.Error() || sum.Images != 0 || sum.Errors == nil {
		t.Errorf("summary %+v for error %v", sum, err)
	}
}
