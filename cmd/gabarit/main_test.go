//go:build cgo && onnx

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/modeltest"
)

// runCLI runs the command line in-process and returns stdout and the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestFacesJSON(t *testing.T) {
	d := modeltest.Installed(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "truncated.jpg")
	good := filepath.Join(d.TestPhotos(), "sample1.jpg")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, data[:len(data)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "faces", "--json", good, bad, filepath.Join(dir, "missing.png"), good)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("exit: %v, want status 1 when a file cannot be read", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d output lines, want one per file (4):\n%s", len(lines), out)
	}
	var res []fileJSON
	for _, l := range lines {
		var f fileJSON
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		res = append(res, f)
	}
	if res[0].File != good || res[0].Width != 1920 || res[0].Height != 1280 || len(res[0].Faces) < 3 || res[0].Error != "" {
		t.Errorf("first file: %+v", res[0])
	}
	if res[1].Error == "" || !strings.Contains(res[1].Error, "truncated.jpg") {
		t.Errorf("truncated file: error %q should name the file", res[1].Error)
	}
	if res[2].Error == "" {
		t.Errorf("missing file: no error")
	}
	if len(res[3].Faces) != len(res[0].Faces) {
		t.Errorf("the same file gave %d then %d faces", len(res[0].Faces), len(res[3].Faces))
	}
	for _, f := range res[0].Faces {
		if f.Box[2] <= 0 || f.Box[3] <= 0 || f.Score < 0.7 || f.Score > 1 || f.Quality < 0 || f.Quality > 1 {
			t.Errorf("implausible face %+v", f)
		}
	}
	// The raw JSON keys are the documented ones.
	var raw map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"file", "width", "height", "faces"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("key %q missing from %s", k, lines[0])
		}
	}
	face0 := raw["faces"].([]any)[0].(map[string]any)
	for _, k := range []string{"box", "score", "landmarks", "quality"} {
		if _, ok := face0[k]; !ok {
			t.Errorf("face key %q missing", k)
		}
	}
}

func TestFacesAllGoodExitsZero(t *testing.T) {
	d := modeltest.Installed(t)
	drawn := t.TempDir()
	if _, _, err := runCLI(t, "faces", "--draw", drawn, filepath.Join(d.TestPhotos(), "sample2.jpg")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(drawn, "sample2.faces.png")); err != nil {
		t.Fatal(err)
	}
}

func TestCompare(t *testing.T) {
	d := modeltest.Installed(t)
	p := func(n string) string { return filepath.Join(d.TestPhotos(), n) }
	var res struct {
		Similarity float64 `json:"similarity"`
		SamePerson *bool   `json:"same_person"`
		Threshold  float64 `json:"threshold"`
	}
	out, _, err := runCLI(t, "compare", p("sample1.jpg"), p("sample1.jpg"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Similarity < 0.999 || res.SamePerson == nil || !*res.SamePerson {
		t.Errorf("a photo against itself: %s", out)
	}
	out, _, err = runCLI(t, "compare", "--json", p("sample1.jpg"), p("sample4.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Similarity > res.Threshold || *res.SamePerson {
		t.Errorf("two different people: %s", out)
	}
	if _, _, err := runCLI(t, "compare", p("sample1.jpg")); err == nil {
		t.Error("compare with one photo succeeded")
	}
	// Text by default.
	out, _, err = runCLI(t, "compare", p("sample1.jpg"), p("sample4.jpg"))
	if err != nil || !strings.HasPrefix(out, "similarity ") || !strings.Contains(out, ": not the same person (threshold ") {
		t.Errorf("compare as text: %q, %v", out, err)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"faces"}, {"eval"}, {"eval", "pairs"}, {"faces", "--workers", "0", "x.jpg"}} {
		if _, _, err := runCLI(t, args...); err == nil {
			t.Errorf("gabarit %v succeeded", args)
		}
	}
}

// TestEvalPairsDeepface runs the verification protocol on the labelled
// pairs of ../shared/data/deepface-tests.
func TestEvalPairsDeepface(t *testing.T) {
	modeltest.Installed(t)
	root := modeltest.SharedData(t, "deepface-tests")
	plot := filepath.Join(t.TempDir(), "roc.png")
	out, _, err := runCLI(t, "eval", "pairs", "--csv", filepath.Join(root, "master.csv"), "--root", root, "--plot", plot, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Accuracy float64            `json:"accuracy"`
		TAR      map[string]float64 `json:"tar_at_far"`
		Pairs    int                `json:"pairs"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Pairs != 300 || v.Accuracy < 0.95 {
		t.Errorf("deepface master.csv: %s", out)
	}
	if fi, err := os.Stat(plot); err != nil || fi.Size() < 1000 {
		t.Errorf("ROC plot not written: %v", err)
	}
}

// TestEvalIdentFaceapi identifies the TV characters of faceapi-bbt.
func TestEvalIdentFaceapi(t *testing.T) {
	modeltest.Installed(t)
	root := modeltest.SharedData(t, "faceapi-bbt")
	out, _, err := runCLI(t, "eval", "ident", "--root", root, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Rank1  float64 `json:"rank1"`
		Probes int     `json:"probes"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Probes != 32 || v.Rank1 < 0.8 {
		t.Errorf("faceapi-bbt identification: %s", out)
	}
}
