package ingest_test

import (
	"context"
	"gabarit/internal/vindex"
	"slices"
	"testing"

	"gabarit/internal/ingest"
	"gabarit/internal/source"
	"gabarit/internal/source/folder"
)

// TestIngestParts: the parts of a source (Config.Part with InPart) hold
// every entry exactly once; a run of one part reads, counts and stores
// only its entries; the parts run one after the other store what one run
// of the whole source stores.
func TestIngestParts(t *testing.T) {
	const parts = 3
	files := photos(30)
	in := make([]int, parts)
	for name := range files {
		n := 0
		for p := range parts {
			if ingest.InPart(p, parts)(name) {
				in[p]++
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s is in %d parts; want 1", name, n)
		}
	}
	e := newEnv(t, files)
	ctx := context.Background()
	an := &fakeAnalyzer{}
	images := 0
	for p := range parts {
		src, err := folder.Open(e.dir, source.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		before := an.calls.Load()
		sum, err := ingest.Run(ctx, src, an, e.db, e.keys, e.idx,
			ingest.Config{SourceID: e.src, ModelID: "fake", Workers: 2, Batch: 4, Part: ingest.InPart(p, parts)})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Seen != in[p] || sum.Images != in[p] || sum.Skipped != 0 || an.calls.Load()-before != int64(in[p]) {
			t.Errorf("part %d: %+v, %d analysed; want its %d files", p, sum.Stats, an.calls.Load()-before, in[p])
		}
		images += sum.Images
	}
	if n, _ := e.db.FaceCount(ctx); images != 30 || n != 30 || vindex.Count(e.idx) != 30 {
		t.Errorf("the parts stored %d images, %d faces, indexed %d; want the 30 of the source", images, n, vindex.Count(e.idx))
	}
	// The whole source again: every entry is known.
	sum, err := e.run(t, ctx, an)
	if err != nil || sum.Images != 0 || sum.Skipped != 30 {
		t.Errorf("whole source after its parts: %+v, %v; want 30 skipped", sum.Stats, err)
	}
	if slices.Contains(in, 0) {
		t.Errorf("files per part %v: the hash leaves a part empty", in)
	}
}
