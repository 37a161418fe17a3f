package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/face"
	"gabarit/internal/store"
)

// gab runs a command on the data directory data, without the face
// models (the tests of this file need none): --data follows the command,
// or its subcommand for audit.
func gab(t *testing.T, data string, args ...string) (string, string, error) {
	t.Helper()
	n := 1
	if args[0] == "audit" {
		n = 2
	}
	args = append(append(append([]string{}, args[:n]...), "--data", data), args[n:]...)
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// status is the exit status of a command's error.
func status(err error) int {
	var ee exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case err != nil:
		return 1
	}
	return 0
}

// verifyFixture makes a data directory with two faces, a search by another
// investigator that returned both, one by the command line's own account,
// and the command line's account registered as a verifier.
func verifyFixture(t *testing.T) (data string, other, own int64, faces []int64) {
	t.Helper()
	ctx := context.Background()
	data = t.TempDir()
	d, err := app.OpenData(ctx, config.Config{DataDir: data, Index: app.IndexFlat}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	src, err := d.DB.CreateSource(ctx, store.Source{Kind: store.KindFolder, Locator: t.TempDir(), Controller: "Example Org",
		Purpose: "tests", LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a)", Jurisdiction: "FR",
		Retention: 30 * 24 * time.Hour, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fs := make([]store.Face, 2)
	for i := range fs {
		fs[i] = store.Face{Box: face.Box{X: float64(10 * i), Y: 10, W: 40, H: 40}, Score: 0.9, Quality: 0.8,
			ModelID: "test-model", Dim: 4, Template: []byte{byte(i), 1, 2, 3}}
	}
	_, faces, err = d.DB.AddImage(ctx, store.Image{SourceID: src, SHA256: sha256.Sum256([]byte("img")), Locator: "a.jpg",
		SizeBytes: 1000, Width: 100, Height: 100}, fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.DB.AddUser(ctx, actor(), []store.Role{store.RoleAdmin, store.RoleVerifier}, "test"); err != nil {
		t.Fatal(err)
	}
	search := func(who string) int64 {
		id, _, err := d.DB.RecordSearch(ctx, store.Search{Actor: who, Purpose: "case", ProbeSHA256: [32]byte{1}, K: 5,
			Threshold: 0.4, Returned: faces})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	return data, search("cli:investigator"), search(actor()), faces
}

// TestRejectCommand: gabarit reject records a verifier's rejection with its
// reason; the face can then never be confirmed; usage errors exit 2,
// refusals 1.
func TestRejectCommand(t *testing.T) {
	data, other, own, faces := verifyFixture(t)
	sid, a, b := fmt.Sprint(other), fmt.Sprint(faces[0]), fmt.Sprint(faces[1])

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no reason", []string{"reject", sid, a}, "give --reason"},
		{"blank reason", []string{"reject", "--reason", " ", sid, a}, "give --reason"},
		{"one id", []string{"reject", "--reason", "no", sid}, "want SEARCH_ID FACE_ID"},
		{"not a number", []string{"reject", "--reason", "no", "x", a}, "positive numbers"},
		{"unknown flag", []string{"reject", "--reason", "no", sid, a, "--verbose"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := gab(t, data, tc.args...)
			if status(err) != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, %q; want 2 saying %q", status(err), stderr, tc.want)
			}
		})
	}

	// Flags after the ids, as before them.
	out, stderr, err := gab(t, data, "reject", sid, a, "--reason", "another person: the ears differ", "--json")
	if err != nil {
		t.Fatalf("reject: %v %s", err, stderr)
	}
	var r struct {
		Search   int64  `json:"search_id"`
		Face     int64  `json:"face_id"`
		Verifier string `json:"verifier"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Search != other || r.Face != faces[0] || r.Verifier != actor() ||
		r.Reason != "another person: the ears differ" {
		t.Errorf("reject --json: %q, %v", out, err)
	}
	if _, _, err := gab(t, data, "reject", "--reason", "again", sid, a); status(err) != 1 || !strings.Contains(err.Error(), "already rejected") {
		t.Errorf("rejecting twice: exit %d, %v", status(err), err)
	}
	if _, _, err := gab(t, data, "confirm", sid, a); status(err) != 1 || !strings.Contains(err.Error(), "cannot be confirmed") {
		t.Errorf("confirming a rejected face: exit %d, %v", status(err), err)
	}
	if _, _, err := gab(t, data, "reject", "--reason", "mine", fmt.Sprint(own), a); status(err) != 1 || !strings.Contains(err.Error(), "own search") {
		t.Errorf("rejecting one's own search: exit %d, %v", status(err), err)
	}
	// A face one confirmed may still be rejected: the rejection prevails.
	if out, _, err := gab(t, data, "confirm", sid, b, "--json"); err != nil || !strings.Contains(out, `"confirmations":1`) {
		t.Fatalf("confirm with --json after the ids: %q, %v", out, err)
	}
	out, _, err = gab(t, data, "reject", "--reason", "on second thought, no", sid, b)
	if err != nil || !strings.Contains(out, "rejected by "+actor()+" — never an identification") {
		t.Errorf("reject a confirmed face: %q, %v", out, err)
	}
	out, _, err = gab(t, data, "audit", "list", "--json")
	if err != nil || strings.Count(out, `"action":"search.reject"`) != 2 || !strings.Contains(out, "the ears differ") {
		t.Errorf("rejections audited: %d in %.300s", strings.Count(out, `"action":"search.reject"`), out)
	}
	if out, _, err := gab(t, data, "audit", "verify"); err != nil {
		t.Errorf("audit verify: %q %v", out, err)
	}
}
