package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/face"
	"gabarit/internal/store"
)

// TestSourceRetire: without --confirm, gabarit source retire says what
// would be destroyed, changes nothing and exits 2; with it (flags after
// the ID) it retires the source, audited; a second run says it was
// already retired; resuming is refused; an unknown source is named.
func TestSourceRetire(t *testing.T) {
	ctx := context.Background()
	t.Setenv("GABARIT_CACHE", t.TempDir()) // no model pack: the index is left to be rebuilt
	data := t.TempDir()
	d, err := app.OpenData(ctx, config.Config{DataDir: data, Index: app.IndexFlat}, false)
	if err != nil {
		t.Fatal(err)
	}
	src, err := d.DB.CreateSource(ctx, store.Source{Kind: store.KindFolder, Locator: t.TempDir(), Controller: "Example Org",
		Purpose: "tests", LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a)", Jurisdiction: "FR",
		Retention: 30 * 24 * time.Hour, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Keys.EnsureKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	fs := []store.Face{{Box: face.Box{W: 40, H: 40}, ModelID: "m", Dim: 4, Template: []byte{1}},
		{Box: face.Box{X: 50, W: 40, H: 40}, ModelID: "m", Dim: 4, Template: []byte{2}}}
	if _, _, err := d.DB.AddImage(ctx, store.Image{SourceID: src, SHA256: sha256.Sum256([]byte("a")), Locator: "a.jpg",
		SizeBytes: 1, Width: 100, Height: 100}, fs); err != nil {
		t.Fatal(err)
	}
	d.Close()
	gabarit := func(args ...string) (string, string, error) {
		t.Helper()
		args = append(append([]string{"source"}, args...), "--data", data)
		var out, errOut bytes.Buffer
		err := run(ctx, args, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	holdings := func() store.Holdings {
		t.Helper()
		db, err := store.Open(ctx, data+"/gabarit.db")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		h, err := db.SourceHoldings(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	// Without --confirm: what would be destroyed, exit 2, nothing changed.
	out, errOut, err := gabarit("retire", "1")
	if status(err) != 2 || !strings.Contains(out, "holds 1 image and 2 faces") ||
		!strings.Contains(errOut, "add --confirm to retire source 1: this cannot be undone") {
		t.Errorf("retire without --confirm: %v\n%s%s", err, out, errOut)
	}
	if h := holdings(); h != (store.Holdings{State: store.StateActive, Images: 1, Faces: 2, Key: true}) {
		t.Fatalf("retire without --confirm changed the source: %+v", h)
	}

	// Flags after the ID.
	out, errOut, err = gabarit("retire", "1", "--confirm", "--reason", "contract ended", "--json")
	if err != nil {
		t.Fatalf("retire: %v\n%s", err, errOut)
	}
	var rep app.RetireReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep != (app.RetireReport{SourceID: src, Images: 1, Faces: 2}) {
		t.Errorf("retire --json printed %q: %v", out, err)
	}
	if !strings.Contains(errOut, "rebuilt from the store when next opened") {
		t.Errorf("no word about the vector index without a model pack: %q", errOut)
	}
	if h := holdings(); h != (store.Holdings{State: store.StateDeleted}) {
		t.Errorf("after retire: %+v", h)
	}
	db, err := store.Open(ctx, data+"/gabarit.db")
	if err != nil {
		t.Fatal(err)
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	db.Close()
	if err != nil || len(es) == 0 || es[len(es)-1].Action != "source.retire" ||
		!strings.Contains(string(es[len(es)-1].Detail), `"reason":"contract ended"`) {
		t.Errorf("audit: %v %+v", err, es)
	}

	out, _, err = gabarit("retire", "--confirm", "1")
	if err != nil || !strings.Contains(out, "source 1 was already retired") {
		t.Errorf("second retire: %v %q", err, out)
	}
	out, _, err = gabarit("retire", "1")
	if err != nil || !strings.Contains(out, "already retired; nothing of it is left") {
		t.Errorf("preview of a retired source: %v %q", err, out)
	}
	if _, _, err := gabarit("resume", "1"); err == nil || err.Error() != "source 1 is retired; it cannot be resumed" {
		t.Errorf("resume a retired source: %v", err)
	}
	out, _, _ = gabarit("list", "--json")
	var list []app.SourceView
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].State != "retired" {
		t.Errorf("source list: %q, %v", out, err)
	}
	if _, _, err := gabarit("retire", "9", "--confirm"); err == nil || !strings.Contains(err.Error(), "no source 9") {
		t.Errorf("retire an unknown source: %v", err)
	}
	if _, errOut, err := gabarit("retire", "--confirm"); status(err) != 2 || !strings.Contains(errOut, "want one source ID") {
		t.Errorf("retire without an ID: %v %q", err, errOut)
	}
	// Help and completion know the subcommand and its flags.
	var help, script bytes.Buffer
	if err := run(ctx, []string{"help", "source", "retire"}, &help, &help); err != nil ||
		!strings.Contains(help.String(), "-confirm") || !strings.Contains(help.String(), "-reason") {
		t.Errorf("gabarit help source retire: %v\n%s", err, help.String())
	}
	if err := run(ctx, []string{"completion", "bash"}, &script, &script); err != nil || !strings.Contains(script.String(), "retire") {
		t.Errorf("completion lacks retire: %v", err)
	}
}
