//go:build cgo && onnx

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"gabarit/internal/vindex"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/modeltest"
)

// TestSourceRetireWithModels: with the model pack installed, gabarit source
// retire deletes the source's faces from the saved vector index at once
// (the next open neither rebuilds it nor finds them), and a search that
// found a face of the source finds none.
func TestSourceRetireWithModels(t *testing.T) {
	d := modeltest.Installed(t)
	data, id := ingestedSamples(t, d, 3)
	probe := filepath.Join(d.TestPhotos(), "sample1.jpg")
	search := func() app.SearchView { t.Helper(); return searchCLI(t, data, probe) }
	if res := search(); !res.Match || len(res.Results) == 0 {
		t.Fatalf("search before the retirement: %+v", res)
	}

	out, stderr, err := cli(t, data, "source", "retire", fmt.Sprint(id), "--confirm", "--json")
	if err != nil {
		t.Fatalf("retire: %v\n%s", err, stderr)
	}
	var rep app.RetireReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Images != 3 || rep.Faces < 3 || rep.AlreadyRetired {
		t.Fatalf("retire printed %q: %v", out, err)
	}
	if strings.Contains(stderr, "rebuilt") {
		t.Errorf("the index was not updated: %s", stderr)
	}
	// The saved index holds none of the faces: opening it rebuilds nothing.
	var ff faceFlags
	ff.pack = "default"
	m, err := ff.manifest()
	if err != nil {
		t.Fatal(err)
	}
	dk, err := app.OpenData(context.Background(), config.Config{DataDir: data, Index: app.IndexHNSW}, false)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dk.OpenIndex(context.Background(), m.Embedder.ID(), m.Embedder.Dim)
	if err != nil {
		t.Fatal(err)
	}
	if h.Rebuilt || vindex.Count(h.Index) != 0 {
		t.Errorf("index after the retirement: rebuilt %v, %d faces", h.Rebuilt, vindex.Count(h.Index))
	}
	h.Close()
	dk.Close()
	if res := search(); res.Match || len(res.Results) != 0 {
		t.Errorf("search after the retirement: %+v", res)
	}
}
