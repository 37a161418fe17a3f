package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/records"
	"gabarit/internal/store"
)

// testDeclaration is a complete declaration for the records tests; its
// values are people's names and addresses, which must never reach the
// audit log.
func testDeclaration(version string) map[string]any {
	return map[string]any{
		"version":        version,
		"controller":     "Example City Police, 1 rue de la Paix, 75002 Paris, contact@police.example.org",
		"representative": "none",
		"dpo":            "Jeanne Martin, jeanne.martin@police.example.org",
		"recipients":     []string{"investigators of the city police", "courts"},
		"transfers":      "none",
		"authority":      "CNIL, 3 place de Fontenoy, 75007 Paris",
	}
}

// declarationValues are strings of testDeclaration's values.
var declarationValues = []string{"Example City", "rue de la Paix", "contact@police", "Jeanne", "jeanne.martin", "investigators of the city", "courts", "CNIL", "Fontenoy"}

// getDeclaration reads the declaration through the API as c.
func getDeclaration(t *testing.T, c *client) declarationJSON {
	t.Helper()
	st, body := c.json("GET", "/api/v1/records", nil)
	if st != http.StatusOK {
		t.Fatalf("GET /api/v1/records: %d %s", st, body)
	}
	conforms(t, "OrganisationDeclaration", body)
	var d declarationJSON
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// recordsAudit returns the records.update entries of the audit log.
func recordsAudit(t *testing.T, e *testEnv) []store.AuditEntry {
	t.Helper()
	es, err := e.data.DB.AuditEntries(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEntry
	for _, a := range es {
		if a.Action == "records.update" {
			out = append(out, a)
		}
		for _, v := range declarationValues {
			if strings.Contains(string(a.Detail), v) || strings.Contains(a.Object, v) {
				t.Errorf("audit entry %d (%s) holds a declared value %q: %s", a.ID, a.Action, v, a.Detail)
			}
		}
	}
	return out
}

// TestRecordsAPI: admins and the DPO edit the declaration through PUT
// /api/v1/records, validated field by field, refused when based on an old
// version, audited with the fields' names only; other roles cannot.
func TestRecordsAPI(t *testing.T) {
	e := newTestEnv(t, nil)
	for name, r := range map[string]store.Role{"ada": admin, "dora": dpo, "aude": auditor, "olga": operator} {
		e.addUser(name, r)
	}
	// A declaration made by hand on the server, with identity methods the
	// API does not edit: they are kept.
	path := filepath.Join(e.data.Dir, records.FileName)
	if err := os.WriteFile(path, []byte(`{"controller": "Old Org", "identity_methods": [{"id": "badge", "label": "staff badge"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ada, dora, aude, olga := e.token("ada"), e.login("dora"), e.token("aude"), e.token("olga")

	d := getDeclaration(t, aude)
	if d.Controller != "Old Org" || !slices.Equal(d.Missing, []string{"representative", "dpo", "recipients", "transfers", "authority"}) {
		t.Errorf("declaration = %+v", d)
	}
	if st, _ := olga.json("GET", "/api/v1/records", nil); st != http.StatusForbidden {
		t.Errorf("operator GET: %d, want 403", st)
	}
	for who, c := range map[string]*client{"auditor": aude, "operator": olga} {
		if st, body := c.json("PUT", "/api/v1/records", testDeclaration(d.Version)); st != http.StatusForbidden {
			t.Errorf("%s PUT: %d %s, want 403", who, st, body)
		}
	}

	// Field errors, every one named; nothing saved.
	bad := testDeclaration(d.Version)
	bad["controller"], bad["dpo"], bad["recipients"] = "", "Jeanne Martin, jeanne@police", []string{" "}
	st, body := dora.json("PUT", "/api/v1/records", bad)
	if st != http.StatusBadRequest {
		t.Fatalf("invalid PUT: %d %s", st, body)
	}
	conforms(t, "InvalidFields", body)
	var inv invalidFieldsJSON
	if err := json.Unmarshal(body, &inv); err != nil {
		t.Fatal(err)
	}
	if inv.Code != "invalid" || len(inv.Fields) != 3 || !strings.Contains(inv.Fields["dpo"], "e-mail address") ||
		!strings.HasPrefix(inv.Fields["controller"], "Required") || inv.Fields["recipients"] == "" {
		t.Errorf("invalid PUT: %+v", inv)
	}
	noVersion := testDeclaration("")
	if st, body := dora.json("PUT", "/api/v1/records", noVersion); st != http.StatusBadRequest || !strings.Contains(string(body), `"version"`) {
		t.Errorf("PUT without version: %d %s", st, body)
	}
	if st, body := dora.json("PUT", "/api/v1/records", map[string]any{"version": d.Version, "identity_methods": []string{}}); st != http.StatusBadRequest {
		t.Errorf("PUT of a field the API does not edit: %d %s, want 400", st, body)
	}
	if got := getDeclaration(t, aude); got.Version != d.Version {
		t.Fatalf("a refused PUT changed the file: %+v", got)
	}

	// The DPO declares everything.
	st, body = dora.json("PUT", "/api/v1/records", testDeclaration(d.Version))
	if st != http.StatusOK {
		t.Fatalf("PUT: %d %s", st, body)
	}
	conforms(t, "OrganisationDeclaration", body)
	var saved declarationJSON
	if err := json.Unmarshal(body, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved.Missing) != 0 || saved.Version == d.Version ||
		!slices.Equal(saved.Changed, []string{"controller", "representative", "dpo", "recipients", "transfers", "authority"}) {
		t.Errorf("PUT answered %+v", saved)
	}
	if got := getDeclaration(t, ada); got.Version != saved.Version || got.DPO != "Jeanne Martin, jeanne.martin@police.example.org" || len(got.Missing) != 0 {
		t.Errorf("after PUT: %+v", got)
	}
	if ms, err := app.IdentityMethods(e.data.Dir); err != nil || len(ms) != 1 || ms[0].ID != "badge" {
		t.Errorf("identity methods after PUT: %+v %v", ms, err)
	}
	rec, err := app.BuildRecords(t.Context(), e.data, e.srv.cfg.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Controller == records.NotDeclared || rec.Authority == records.NotDeclared || rec.Recipients[0] != "investigators of the city police" {
		t.Errorf("record after PUT: %+v", rec)
	}

	// The admin, still holding the first version, is refused; with the
	// new one, saved.
	later := testDeclaration(d.Version)
	later["authority"] = "Autorité de protection des données, rue de la Presse 35, Bruxelles"
	st, body = ada.json("PUT", "/api/v1/records", later)
	var ae apiError
	if err := json.Unmarshal(body, &ae); err != nil || st != http.StatusConflict || ae.Code != "stale" {
		t.Errorf("stale PUT: %d %s, want 409 stale", st, body)
	}
	if got := getDeclaration(t, ada); got.Authority != "CNIL, 3 place de Fontenoy, 75007 Paris" {
		t.Errorf("a stale PUT changed the authority: %q", got.Authority)
	}
	later["version"] = saved.Version
	st, body = ada.json("PUT", "/api/v1/records", later)
	if st != http.StatusOK || !strings.Contains(string(body), `"changed":["authority"]`) {
		t.Errorf("PUT as admin: %d %s", st, body)
	}

	// Two changes, two entries, naming the fields and never their values.
	es := recordsAudit(t, e)
	if len(es) != 2 {
		t.Fatalf("%d records.update entries, want 2", len(es))
	}
	if es[0].Actor != "dora" || string(es[0].Detail) != `{"fields":["controller","representative","dpo","recipients","transfers","authority"]}` ||
		es[1].Actor != "ada" || string(es[1].Detail) != `{"fields":["authority"]}` {
		t.Errorf("entries: %s by %s, %s by %s", es[0].Detail, es[0].Actor, es[1].Detail, es[1].Actor)
	}
	// The audit log as the API shows it holds no value either.
	_, body = dora.json("GET", "/api/v1/audit", nil)
	for _, v := range append(declarationValues, "Autorité", "Bruxelles") {
		if strings.Contains(string(body), v) {
			t.Errorf("GET /api/v1/audit shows %q", v)
		}
	}
}

var fieldError = regexp.MustCompile(`<span class="error-text small field-error" id="rec-([a-z_]+)-error">`)

// TestRecordsConsole: the home page warns admins and the DPO while the
// records are incomplete; the DPO completes them on the records page's
// form (errors shown next to their fields, the values kept), and the
// warning goes; others see the page read-only.
func TestRecordsConsole(t *testing.T) {
	e := consoleEnv(t)
	for name, r := range map[string]store.Role{"ada": admin, "dora": dpo, "aude": auditor, "ivan": investigator} {
		e.addUser(name, r)
	}
	ada, dora, aude, ivan := e.signIn("ada"), e.signIn("dora"), e.signIn("aude"), e.signIn("ivan")
	const warning = `id="records-warning"`

	for who, s := range map[string]*webSession{"admin": ada, "dpo": dora} {
		home := s.get("/")
		checkHTML(t, "home of "+who, home.body)
		if !strings.Contains(home.body, warning) ||
			!strings.Contains(home.body, "The records of processing are incomplete: controller, representative, DPO, recipients, transfers and supervisory authority not declared. Access reports and authority exports will say NOT DECLARED.") ||
			!strings.Contains(home.body, `href="/records#declaration"`) {
			t.Errorf("home of %s: no records warning: %.2000s", who, home.body)
		}
	}
	for who, s := range map[string]*webSession{"auditor": aude, "investigator": ivan} {
		if home := s.get("/"); strings.Contains(home.body, warning) {
			t.Errorf("home of %s shows the records warning", who)
		}
	}

	// The auditor reads the records, without a form; the admin gets the
	// form but not the exports, which are the DPO's and the auditor's.
	page := aude.get("/records")
	if page.status != http.StatusOK || strings.Contains(page.body, `id="records-form"`) || !strings.Contains(page.body, "/api/v1/exports/records") {
		t.Errorf("auditor's records page: %d form=%v", page.status, strings.Contains(page.body, `id="records-form"`))
	}
	if r := aude.post("/records", url.Values{"controller": {"x"}}); r.status != http.StatusForbidden {
		t.Errorf("auditor's POST /records: %d, want 403", r.status)
	}
	page = ada.get("/records")
	checkHTML(t, "admin's records page", page.body)
	if !strings.Contains(page.body, `id="records-form"`) || strings.Contains(page.body, "/api/v1/exports/records") {
		t.Errorf("admin's records page: form=%v exports=%v", strings.Contains(page.body, `id="records-form"`), strings.Contains(page.body, "/api/v1/exports/records"))
	}
	page = dora.get("/records")
	version := regexp.MustCompile(`name="version" value="([0-9a-f]{64})"`).FindStringSubmatch(page.body)
	if version == nil || version[1] != records.Version(nil) {
		t.Fatalf("DPO's records page: no version of the empty declaration: %v", version)
	}
	for _, f := range records.Required {
		if !regexp.MustCompile(`for="rec-` + f + `">[^<]*<span class="req">\(required\)</span>`).MatchString(page.body) {
			t.Errorf("field %s is not marked required", f)
		}
	}

	// Errors next to their fields, what was written kept, nothing saved.
	form := url.Values{"version": {version[1]}, "controller": {"Example City Police, 1 rue de la Paix, 75002 Paris"},
		"representative": {"none"}, "dpo": {"Jeanne Martin, jeanne@police"}, "recipients": {"investigators of the city police\r\n\r\ncourts"},
		"transfers": {""}, "authority": {"CNIL, 3 place de Fontenoy, 75007 Paris"}}
	r := dora.post("/records", form)
	checkHTML(t, "records form with errors", r.body)
	var marked []string
	for _, m := range fieldError.FindAllStringSubmatch(r.body, -1) {
		marked = append(marked, m[1])
	}
	if r.status != http.StatusBadRequest || !slices.Equal(marked, []string{"dpo", "transfers"}) ||
		!strings.Contains(r.body, "The records of processing are not saved: correct the fields marked below.") ||
		!strings.Contains(r.body, `value="Example City Police, 1 rue de la Paix, 75002 Paris"`) ||
		!strings.Contains(r.body, `aria-invalid="true"`) || !strings.Contains(r.body, "investigators of the city police\n\ncourts</textarea>") {
		t.Errorf("form with errors: %d, fields marked %v: %.3000s", r.status, marked, r.body)
	}
	if _, v, _ := records.Load(e.data.Dir); v != version[1] {
		t.Fatal("a form with errors saved the records")
	}

	// Corrected: saved, with the notice, and the record shows it.
	form.Set("dpo", "Jeanne Martin, jeanne.martin@police.example.org")
	form.Set("transfers", "none")
	r = dora.post("/records", form)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/records?notice=records-saved" {
		t.Fatalf("save: %d %q %.500s", r.status, r.header.Get("Location"), r.body)
	}
	page = dora.get(r.header.Get("Location"))
	if !strings.Contains(page.body, `<div class="notice ok" role="status">Records of processing are saved.</div>`) ||
		!strings.Contains(page.body, "<dd>Jeanne Martin, jeanne.martin@police.example.org</dd>") ||
		strings.Contains(page.body, `<span class="badge bad">NOT DECLARED</span></dd>`) {
		t.Errorf("records page after saving: %.4000s", page.body)
	}
	org, v2, err := records.Load(e.data.Dir)
	if err != nil || !slices.Equal(org.Recipients, []string{"investigators of the city police", "courts"}) || len(org.Missing()) != 0 {
		t.Errorf("saved declaration: %+v %v", org, err)
	}
	for who, s := range map[string]*webSession{"admin": ada, "dpo": dora} {
		if home := s.get("/"); strings.Contains(home.body, warning) {
			t.Errorf("home of %s still warns once the records are complete", who)
		}
	}

	// The admin's form, opened before the DPO saved, is refused; what the
	// admin wrote is kept, on the current version.
	stale := url.Values{}
	for k, v := range form {
		stale[k] = slices.Clone(v)
	}
	stale.Set("authority", "Autorité de protection des données, Bruxelles")
	r = ada.post("/records", stale)
	if r.status != http.StatusConflict || !strings.Contains(r.body, "someone else changed the records of processing") ||
		!strings.Contains(r.body, `value="Autorité de protection des données, Bruxelles"`) || !strings.Contains(r.body, `name="version" value="`+v2+`"`) {
		t.Errorf("stale save: %d %.3000s", r.status, r.body)
	}
	if got, _, _ := records.Load(e.data.Dir); got.Authority != "CNIL, 3 place de Fontenoy, 75007 Paris" {
		t.Errorf("a stale form changed the authority: %q", got.Authority)
	}
	// Saved again on the current version.
	stale.Set("version", v2)
	if r = ada.post("/records", stale); r.status != http.StatusSeeOther {
		t.Errorf("save on the current version: %d %.500s", r.status, r.body)
	}
	_, v3, _ := records.Load(e.data.Dir)
	// The same again: nothing changed, nothing written.
	stale.Set("version", v3)
	r = ada.post("/records", stale)
	if r.header.Get("Location") != "/records?notice=records-unchanged" {
		t.Errorf("unchanged save: %d %q", r.status, r.header.Get("Location"))
	}

	// Emptied again (by hand on the server): the warning names what is
	// missing.
	if err := os.WriteFile(filepath.Join(e.data.Dir, records.FileName), []byte(`{"controller": "X", "representative": "none", "recipients": ["courts"], "transfers": "none"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if home := dora.get("/"); !strings.Contains(home.body, "The records of processing are incomplete: DPO and supervisory authority not declared.") {
		t.Errorf("home with DPO and authority missing: %.2000s", home.body)
	}
	if err := os.WriteFile(filepath.Join(e.data.Dir, records.FileName), []byte(`{"controller": `), 0o600); err != nil {
		t.Fatal(err)
	}
	if home := ada.get("/"); home.status != http.StatusOK || !strings.Contains(home.body, "The records of processing cannot be read") {
		t.Errorf("home with records.json broken: %d %.2000s", home.status, home.body)
	}

	es := recordsAudit(t, e)
	if len(es) != 2 || es[0].Actor != "dora" || es[1].Actor != "ada" || string(es[1].Detail) != `{"fields":["authority"]}` {
		t.Errorf("records.update entries: %+v", es)
	}
}
