package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

// TestStaticServesFilesOnly: /static/ serves the embedded files and answers
// 404 for a directory instead of listing what it holds.
func TestStaticServesFilesOnly(t *testing.T) {
	e := newTestEnv(t, nil)
	anon := e.anon()
	if r := anon.get("/static/app.css"); r.status != http.StatusOK || !strings.Contains(r.body, "{") {
		t.Errorf("/static/app.css: %d, %d bytes", r.status, len(r.body))
	}
	for _, path := range []string{"/static/", "/static/app.css/", "/static/nothing.css"} {
		r := anon.get(path)
		if r.status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, r.status)
		}
		if strings.Contains(r.body, "app.css") || strings.Contains(r.body, "portal.js") {
			t.Errorf("%s lists the static files: %q", path, r.body)
		}
	}
}

// TestReadyAndMetricsNeedSignIn: /api/v1/ready says ready or not and
// nothing else; /metrics, which gives counts about the data, needs an
// admin or an auditor.
func TestReadyAndMetricsNeedSignIn(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("aude", store.RoleAuditor)
	e.addUser("adam", store.RoleAdmin)
	e.ingest(e.token("olga"), e.declareSource(e.token("olga")))

	r := e.anon().get("/api/v1/ready")
	var ready map[string]any
	if err := json.Unmarshal([]byte(r.body), &ready); err != nil || r.status != http.StatusOK {
		t.Fatalf("ready: %d %s (%v)", r.status, r.body, err)
	}
	if len(ready) != 1 || ready["status"] != "ready" {
		t.Errorf("ready gives %s, want only {\"status\":\"ready\"}", r.body)
	}
	conforms(t, "Readiness", []byte(r.body))

	for _, tc := range []struct {
		name string
		c    *client
		want int
	}{
		{"anonymous", e.anon(), http.StatusUnauthorized},
		{"operator", e.token("olga"), http.StatusForbidden},
		{"auditor", e.token("aude"), http.StatusOK},
		{"admin", e.login("adam"), http.StatusOK},
	} {
		r := tc.c.get("/metrics")
		if r.status != tc.want {
			t.Errorf("/metrics as %s: %d, want %d", tc.name, r.status, tc.want)
		}
		counts := strings.Contains(r.body, "gabarit_faces_indexed 3")
		if counts != (tc.want == http.StatusOK) {
			t.Errorf("/metrics as %s: counts shown %v; body %.200q", tc.name, counts, r.body)
		}
	}
}

// TestSourceDeclarationRefusesRootAndData: neither / nor the data
// directory, a folder holding it or one inside it can be declared.
func TestSourceDeclarationRefusesRootAndData(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	op := e.token("olga")
	inside := filepath.Join(e.data.Dir, "crops")
	if err := os.MkdirAll(inside, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(e.dir, "link-to-data")
	if err := os.Symlink(e.data.Dir, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, says string }{
		{"root", "/", "the root of the file system (/) cannot be a source"},
		{"data directory", e.data.Dir, "this is gabarit's data directory"},
		{"data directory through a link", link, "this is gabarit's data directory"},
		{"folder holding it", e.dir, "this folder holds gabarit's data directory"},
		{"folder inside it", inside, "this is inside gabarit's data directory"},
	} {
		st, body := op.json("POST", "/api/v1/sources", app.Declaration{Kind: "folder", Path: tc.path, Controller: "Test controller",
			Purpose: "tests", LegalBasis: "consent", Art9: "explicit-consent", Jurisdiction: "FR", Retention: "30d"})
		if st != http.StatusBadRequest || !strings.Contains(string(body), tc.says) {
			t.Errorf("%s: %d %s; want 400 saying %q", tc.name, st, body, tc.says)
		}
	}
	srcs, err := e.data.DB.Sources(t.Context())
	if err != nil || len(srcs) != 0 {
		t.Errorf("sources recorded: %d (%v), want none", len(srcs), err)
	}
	e.declareSource(op) // a folder beside the data directory is accepted
}
