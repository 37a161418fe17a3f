//go:build cgo && onnx

package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/modeltest"
	"gabarit/internal/store"
)

// TestQuarantineCommands is the probe of issue 12 (item 3) from the command
// line: two sealed templates swapped in the database. The search whose
// probe hits one still answers, without it; reindex completes without
// them; each is put in quarantine once, however many commands meet it;
// quarantine list shows them; release refuses while the template is still
// damaged and succeeds once the right bytes are restored, the face back in
// searches; erase deletes the other.
func TestQuarantineCommands(t *testing.T) {
	d := modeltest.Installed(t)
	data, _ := ingestedSamples(t, d, 3)
	probe := filepath.Join(d.TestPhotos(), "sample1.jpg")
	search := func() app.SearchView { t.Helper(); return searchCLI(t, data, probe) }
	first := search()
	if len(first.Results) == 0 {
		t.Fatal("the probe finds nothing before the damage")
	}
	hit := first.Results[0].FaceID

	db, err := sql.Open("sqlite", filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var other int64
	if err := db.QueryRow(`SELECT f.id FROM faces f JOIN images i ON i.id = f.image_id WHERE i.locator = 'sample3.jpg' ORDER BY f.id LIMIT 1`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	templates := map[int64][]byte{}
	for _, f := range []int64{hit, other} {
		var b []byte
		if err := db.QueryRow(`SELECT template FROM faces WHERE id = ?`, f).Scan(&b); err != nil {
			t.Fatal(err)
		}
		templates[f] = b
	}
	set := func(a, b int64) {
		t.Helper()
		if _, err := db.Exec(`UPDATE faces SET template = ? WHERE id = ?`, templates[b], a); err != nil {
			t.Fatal(err)
		}
	}
	set(hit, other)
	set(other, hit)

	for range 2 {
		if res := search(); slices.ContainsFunc(res.Results, func(h app.HitView) bool { return h.FaceID == hit }) {
			t.Fatalf("a face whose template does not open was returned: %+v", res.Results)
		}
	}
	out, stderr, err := cli(t, data, "reindex")
	if err != nil {
		t.Fatalf("reindex with two damaged templates: %v %s", err, stderr)
	}
	var faces int
	if err := db.QueryRow(`SELECT count(*) FROM faces`).Scan(&faces); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fmt.Sprintf("indexed %d faces", faces-2)) {
		t.Errorf("reindex printed %q, want %d faces indexed (2 of %d in quarantine)", out, faces-2, faces)
	}
	search()
	quarantines := func() map[string]int {
		t.Helper()
		rows, err := db.Query(`SELECT object FROM audit WHERE action = 'face.quarantine'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				t.Fatal(err)
			}
			out[o]++
		}
		return out
	}
	if got := quarantines(); len(got) != 2 || got[fmt.Sprint("face/", hit)] != 1 || got[fmt.Sprint("face/", other)] != 1 {
		t.Errorf("face.quarantine entries = %v, want one for each of faces %d and %d", got, hit, other)
	}

	out, _, err = runCLI(t, "quarantine", "list", "--data", data, "--json")
	var listed []store.QuarantinedFace
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 2 ||
		listed[0].FaceID != hit || listed[0].Found != store.FoundBySearch || listed[0].Reason != "does not authenticate" ||
		listed[1].FaceID != other || listed[1].Found == "" {
		t.Fatalf("quarantine list --json = %s, %v", out, err)
	}
	out, _, err = runCLI(t, "quarantine", "list", "--data", data)
	if err != nil || !strings.Contains(out, "2 faces in quarantine") || !strings.Contains(out, "does not authenticate") {
		t.Errorf("quarantine list = %q, %v", out, err)
	}

	// Still damaged: release refuses and says what to do.
	_, _, err = runCLI(t, "quarantine", "release", fmt.Sprint(hit), "--data", data)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "still cannot be opened") {
		t.Errorf("release of a damaged face: %v", err)
	}
	// Restored from a backup: released, and found again.
	set(hit, hit)
	set(other, other)
	if out, stderr, err := runCLI(t, "quarantine", "release", "--data", data, fmt.Sprint(hit)); err != nil || !strings.Contains(out, "left quarantine") {
		t.Fatalf("release after restoring: %q %s %v", out, stderr, err)
	}
	if res := search(); len(res.Results) == 0 || res.Results[0].FaceID != hit {
		t.Errorf("released face %d not found again: %+v", hit, res.Results)
	}
	if out, stderr, err := runCLI(t, "quarantine", "erase", fmt.Sprint(other), "--data", data); err != nil || !strings.Contains(out, "erased") {
		t.Fatalf("erase: %q %s %v", out, stderr, err)
	}
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM faces WHERE id = ?`, other).Scan(&left); err != nil || left != 0 {
		t.Errorf("erased face still stored: %d, %v", left, err)
	}
	if _, _, err := runCLI(t, "quarantine", "erase", fmt.Sprint(hit), "--data", data); exitCode(err) != 1 ||
		!strings.Contains(err.Error(), "not in quarantine") {
		t.Errorf("erase of a face not in quarantine: %v", err)
	}
	out, _, err = runCLI(t, "quarantine", "list", "--data", data)
	if err != nil || strings.TrimSpace(out) != "no face in quarantine" {
		t.Errorf("quarantine list at the end = %q, %v", out, err)
	}
	var actions []string
	rows, err := db.Query(`SELECT action FROM audit WHERE action LIKE 'face%' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		actions = append(actions, a)
	}
	want := []string{"face.quarantine", "face.quarantine", "face.quarantine.release", "faces.erase"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit actions %v, want %v", actions, want)
	}
}
