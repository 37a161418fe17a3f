package server

import (
	"encoding/json"
	"fmt"
	"gabarit/internal/vindex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

// TestRetireSourceAPI: only an operator retires a source (as only an
// operator suspends one); an unknown source is 404; without "confirm"
// nothing happens and the answer says what would be destroyed; with it,
// the source's faces leave the index and the store (a search no longer
// finds them), its key is destroyed, its queued ingest is cancelled, and
// it can no longer be resumed or ingested.
func TestRetireSourceAPI(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("adam", store.RoleAdmin)
	e.addUser("ivan", store.RoleInvestigator)
	op := e.login("olga")
	id := e.declareSource(op)
	if j := e.ingest(op, id); j.State != jobDone || j.Faces != 3 {
		t.Fatalf("job = %+v", j)
	}
	path := fmt.Sprintf("/api/v1/sources/%d/retire", id)
	confirm := map[string]any{"confirm": true, "reason": "the contract ended"}

	for _, who := range []string{"adam", "ivan"} {
		if st, body := e.login(who).json("POST", path, confirm); st != http.StatusForbidden {
			t.Errorf("retire as %s: %d %s", who, st, body)
		}
	}
	if st, body := op.json("POST", "/api/v1/sources/999/retire", confirm); st != http.StatusNotFound {
		t.Errorf("retire an unknown source: %d %s", st, body)
	}
	st, body := op.json("POST", path, map[string]any{"reason": "x"})
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	if st != http.StatusBadRequest || !strings.Contains(ae.Message, "3 images and 3 faces") || !strings.Contains(ae.Message, "cannot be undone") {
		t.Errorf("retire without confirm: %d %s", st, body)
	}
	if h, _ := e.data.DB.SourceHoldings(t.Context(), id); h.State != store.StateActive || h.Faces != 3 {
		t.Fatalf("retire without confirm changed the source: %+v", h)
	}

	// A queued ingest of the source is cancelled by the retirement (the
	// worker is stopped, so that it stays queued).
	e.srv.jobs.stop()
	queued, err := e.data.DB.EnqueueIngestJob(t.Context(), id, "olga")
	if err != nil {
		t.Fatal(err)
	}

	st, body = op.json("POST", path, confirm)
	if st != http.StatusOK {
		t.Fatalf("retire: %d %s", st, body)
	}
	if v := decode[app.SourceView](t, body); v.ID != id || v.State != "retired" || v.Images != 0 || v.Faces != 0 {
		t.Errorf("retired source: %+v", v)
	}
	if j, _ := e.srv.jobs.get(t.Context(), queued.ID); j.State != jobCancelled || j.CancelledBy != "olga" {
		t.Errorf("queued job after the retirement: %+v", j)
	}
	if n := vindex.Count(e.srv.cfg.Index.Index); n != 0 {
		t.Errorf("%d faces left in the index", n)
	}
	if h, _ := e.data.DB.SourceHoldings(t.Context(), id); h != (store.Holdings{State: store.StateDeleted}) {
		t.Errorf("store after the retirement: %+v", h)
	}
	probe, err := os.ReadFile(filepath.Join(e.photos, "p1.png"))
	if err != nil {
		t.Fatal(err)
	}
	st, body = e.login("ivan").multipart("/api/v1/searches", map[string]string{"purpose": "test case"}, map[string][][]byte{"photo": {probe}})
	if res := decode[app.SearchView](t, body); st != http.StatusOK || res.Match || len(res.Results) != 0 {
		t.Errorf("search after the retirement: %d %s", st, body)
	}
	es, err := e.data.DB.AuditEntries(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var retired bool
	for _, en := range es {
		if en.Action == "source.retire" && en.Actor == "olga" && en.Object == fmt.Sprintf("source/%d", id) &&
			strings.Contains(string(en.Detail), `"faces":3`) && strings.Contains(string(en.Detail), "the contract ended") {
			retired = true
		}
	}
	if !retired {
		t.Errorf("no source.retire audit entry: %+v", es)
	}

	// Refused from now on; retiring again is answered, and changes nothing.
	st, body = op.json("POST", fmt.Sprintf("/api/v1/sources/%d/resume", id), nil)
	_ = json.Unmarshal(body, &ae)
	if st != http.StatusConflict || ae.Code != "retired" || ae.Message != fmt.Sprintf("source %d is retired; it cannot be resumed", id) {
		t.Errorf("resume a retired source: %d %s", st, body)
	}
	if st, body := op.json("POST", fmt.Sprintf("/api/v1/sources/%d/ingest", id), nil); st != http.StatusConflict ||
		!strings.Contains(string(body), fmt.Sprintf("source %d is retired: nothing is ingested from it", id)) {
		t.Errorf("ingest a retired source: %d %s", st, body)
	}
	if st, body := op.json("POST", path, confirm); st != http.StatusOK || decode[app.SourceView](t, body).State != "retired" {
		t.Errorf("retire again: %d %s", st, body)
	}
}

// TestConsoleRetireSource: the sources page offers "Retire…", which leads
// to a step saying what is destroyed and that it cannot be undone; only
// its confirmation retires the source, after which the page shows it
// retired, with no action but none left to take.
func TestConsoleRetireSource(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("olga", operator)
	e.addUser("dora", dpo)
	id := e.declareSource(e.login("olga"))
	e.ingest(e.login("olga"), id)
	op := e.signIn("olga")
	retire := fmt.Sprintf("/sources/%d/retire", id)

	page := op.get("/sources")
	if !strings.Contains(page.body, `href="`+retire+`"`) || !strings.Contains(page.body, "Retire…") {
		t.Fatalf("no Retire… action on the sources page: %.3000s", page.body)
	}
	step := op.get(retire)
	if step.status != http.StatusOK || !strings.Contains(step.body, `<strong data-count="images">3</strong> images`) ||
		!strings.Contains(step.body, `<strong data-count="faces">3</strong> faces`) || !strings.Contains(step.body, "This cannot be undone.") ||
		!strings.Contains(step.body, `name="confirm" value="yes"`) {
		t.Fatalf("retire step: %d %.3000s", step.status, step.body)
	}
	if got := e.signIn("dora").get(retire); got.status != http.StatusForbidden {
		t.Errorf("retire step as dpo: %d", got.status)
	}
	// Posted without the confirmation: the step again, nothing done.
	if got := op.post(retire, url.Values{"reason": {"end of contract"}}); got.status != http.StatusOK ||
		!strings.Contains(got.body, "This cannot be undone.") || !strings.Contains(got.body, `value="end of contract"`) {
		t.Errorf("retire without confirm: %d %.300s", got.status, got.body)
	}
	if h, _ := e.data.DB.SourceHoldings(t.Context(), id); h.State != store.StateActive || h.Faces != 3 {
		t.Fatalf("retire without confirm changed the source: %+v", h)
	}

	got := op.post(retire, url.Values{"confirm": {"yes"}, "reason": {"end of contract"}})
	if got.status != http.StatusSeeOther || got.header.Get("Location") != fmt.Sprintf("/sources?id=%d&notice=retired", id) {
		t.Fatalf("retire: %d %q %.300s", got.status, got.header.Get("Location"), got.body)
	}
	if h, _ := e.data.DB.SourceHoldings(t.Context(), id); h != (store.Holdings{State: store.StateDeleted}) {
		t.Errorf("store after the retirement: %+v", h)
	}
	page = op.get(got.header.Get("Location"))
	row := between(page.body, fmt.Sprintf(`<tr data-source="%d">`, id), "</tr>")
	if !strings.Contains(page.body, fmt.Sprintf("Source %d is retired", id)) || !strings.Contains(row, "state-retired") ||
		!strings.Contains(row, `data-count="faces">0<`) {
		t.Errorf("sources page after the retirement: %.3000s", page.body)
	}
	for _, action := range []string{"/ingest", "/suspend", "/resume", "/retire"} {
		if strings.Contains(row, fmt.Sprintf("/sources/%d%s", id, action)) {
			t.Errorf("a retired source offers %s: %s", action, row)
		}
	}
	got = op.post(fmt.Sprintf("/sources/%d/resume", id), nil)
	if got.status != http.StatusConflict || !strings.Contains(got.body, fmt.Sprintf("Source %d is retired; it cannot be resumed.", id)) {
		t.Errorf("resume a retired source: %d %.500s", got.status, got.body)
	}
}
