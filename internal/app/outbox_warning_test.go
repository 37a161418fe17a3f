package app

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"gabarit/internal/config"
	"gabarit/internal/face"
	"gabarit/internal/store"
)

// TestOpenIndexBehindWarnsOnce checks that an index file saved before
// changes since pruned from the index outbox is rebuilt, saved, and
// reported once to Data.Warnings.
func TestOpenIndexBehindWarnsOnce(t *testing.T) {
	ctx := t.Context()
	d, err := OpenData(ctx, config.Config{DataDir: t.TempDir(), Index: IndexFlat}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var warn bytes.Buffer
	d.Warnings = &warn
	h, err := d.OpenIndex(ctx, "m1", 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(ctx); err != nil {
		t.Fatal(err)
	}
	h.Close()

	// A face ingested and erased while the index was not open, and the
	// outbox pruned since.
	src, err := d.DB.CreateSource(ctx, store.Source{Kind: store.KindFolder, Locator: "/photos", Controller: "Example",
		Purpose: "tests", LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a) explicit consent",
		Jurisdiction: "FR", Retention: time.Hour, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, ids, err := d.DB.AddImage(ctx, store.Image{SourceID: src, SHA256: sha256.Sum256([]byte("a")), Locator: "a.jpg",
		Width: 9, Height: 9}, []store.Face{{Box: face.Box{W: 5, H: 5}, ModelID: "m1", Dim: 4, Template: []byte{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.DB.EraseFaces(ctx, ids, "cli:dpo", "rights/1"); err != nil {
		t.Fatal(err)
	}
	if n, err := d.DB.PruneIndexOutbox(ctx, time.Now().Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("prune: %d, %v; want 2 operations pruned", n, err)
	}
	for i := range 2 {
		h, err := d.OpenIndex(ctx, "m1", 4)
		if err != nil {
			t.Fatal(err)
		}
		if h.Rebuilt != (i == 0) || h.Behind != (i == 0) {
			t.Errorf("open %d: rebuilt %v, behind %v", i+1, h.Rebuilt, h.Behind)
		}
		h.Close()
	}
	msg := warn.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "rebuilt from the store") {
		t.Errorf("warnings after 2 opens of an index behind the outbox: %q; want one line saying it was rebuilt", msg)
	}
}
