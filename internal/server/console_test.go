package server

import (
	"fmt"
	"image/color"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

// webSession is a console client: a browser's session, whose forms carry the
// session's CSRF token in the csrf_token field, as the pages' forms do.
type webSession struct {
	*client
	token string // the session's CSRF token, read from the page
}

// consoleEnv is a test server whose login limit does not get in the way of
// tests that sign many users in.
func consoleEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t, nil)
	e.srv.logins = newLimiter(1000, time.Minute)
	return e
}

func (c *client) get(path string) response { return c.send("GET", path, "", nil) }

// form posts urlencoded fields.
func (c *client) form(path string, v url.Values) response {
	return c.send("POST", path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// signIn signs name in through the sign-in form and reads the CSRF token
// from the page it lands on.
func (e *testEnv) signIn(name string) *webSession {
	e.t.Helper()
	c := e.anon()
	r := c.form("/login", url.Values{"name": {name}, "password": {testPassword}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		e.t.Fatalf("sign in %s: %d %s %.300s", name, r.status, r.header.Get("Location"), r.body)
	}
	r = c.get("/")
	m := csrfMeta.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		e.t.Fatalf("home of %s: %d, csrf meta %v", name, r.status, m)
	}
	return &webSession{client: c, token: m[1]}
}

// post posts a console form with the session's CSRF token.
func (p *webSession) post(path string, v url.Values) response {
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf_token", p.token)
	return p.form(path, v)
}

// postFiles posts a multipart console form with the session's CSRF token.
func (p *webSession) postFiles(path string, v url.Values, files map[string][][]byte) response {
	if v == nil {
		v = url.Values{}
	}
	v.Set("csrf_token", p.token)
	return p.upload(path, v, files)
}

var (
	htmlTag      = regexp.MustCompile(`<[a-zA-Z][^>]*>`)
	inlineStyle  = regexp.MustCompile(`(?i)\sstyle\s*=`)
	inlineEvent  = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	scriptSrc    = regexp.MustCompile(`(?i)^<script\s[^>]*\bsrc="/static/[^"]+"`)
	scriptBlocks = regexp.MustCompile(`(?is)<script\b[^>]*>(.*?)</script>`)
)

// checkHTML fails the test when a page breaks the content security policy:
// a script without src or with a body, a style element or attribute, an
// inline event handler, or a link to another site.
func checkHTML(t *testing.T, what, body string) {
	t.Helper()
	if !strings.HasPrefix(body, "<!doctype html>") {
		t.Errorf("%s: not an HTML page: %.200s", what, body)
		return
	}
	for _, tag := range htmlTag.FindAllString(body, -1) {
		low := strings.ToLower(tag)
		switch {
		case strings.HasPrefix(low, "<style"):
			t.Errorf("%s: style element %s", what, tag)
		case strings.HasPrefix(low, "<script") && !scriptSrc.MatchString(tag):
			t.Errorf("%s: script without a static src: %s", what, tag)
		case inlineStyle.MatchString(tag):
			t.Errorf("%s: inline style in %s", what, tag)
		case inlineEvent.MatchString(tag):
			t.Errorf("%s: inline event handler in %s", what, tag)
		case strings.Contains(low, "http://") || strings.Contains(low, "https://"):
			t.Errorf("%s: a link to another site in %s", what, tag)
		}
	}
	for _, m := range scriptBlocks.FindAllStringSubmatch(body, -1) {
		if strings.TrimSpace(m[1]) != "" {
			t.Errorf("%s: inline script %.80q", what, m[1])
		}
	}
}

// consoleData fills a store with something of everything: a source
// ingested, a search with a result, a rights request.
func consoleData(t *testing.T, e *testEnv) (searchID, faceID int64) {
	t.Helper()
	for _, u := range []struct {
		name string
		role store.Role
	}{{"ada", admin}, {"olga", operator}, {"ivan", investigator}, {"vera", verifier}, {"dora", dpo}, {"aude", auditor}} {
		e.addUser(u.name, u.role)
	}
	op := e.login("olga")
	e.ingest(op, e.declareSource(op))
	probe, err := os.ReadFile(filepath.Join(e.photos, "p1.png"))
	if err != nil {
		t.Fatal(err)
	}
	st, body := e.login("ivan").multipart("/api/v1/searches", map[string]string{"purpose": "console test", "case": "C-7"},
		map[string][][]byte{"photo": {probe}})
	if st != http.StatusOK {
		t.Fatalf("search: %d %s", st, body)
	}
	res := decode[app.SearchView](t, body)
	if len(res.Results) != 1 {
		t.Fatalf("search: %s", body)
	}
	st, body = e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": "access", "contact": "a@example.org"},
		map[string][][]byte{"selfie": {probe}})
	if st != http.StatusCreated {
		t.Fatalf("portal request: %d %s", st, body)
	}
	return res.SearchID, res.Results[0].FaceID
}

// TestConsolePages renders every page for each role: 200 with its heading
// for the roles allowed, a 403 page for the others, and a redirect to the
// sign-in page for nobody; every page keeps to the content security policy.
func TestConsolePages(t *testing.T) {
	e := consoleEnv(t)
	sid, fid := consoleData(t, e)
	users := map[store.Role]string{admin: "ada", operator: "olga", investigator: "ivan", verifier: "vera", dpo: "dora", auditor: "aude"}
	sessions := map[store.Role]*webSession{}
	for r, name := range users {
		sessions[r] = e.signIn(name)
	}
	pages := []struct {
		path, heading string
		roles         []store.Role // nil: every signed-in user
	}{
		{"/", "Welcome, ", nil},
		{"/search", "Search by photo", roles(investigator)},
		{"/searches", "Searches", roles(verifier, auditor, investigator)},
		{fmt.Sprintf("/searches/%d", sid), fmt.Sprintf("Search #%d", sid), roles(verifier, auditor, investigator)},
		{fmt.Sprintf("/searches/%d/faces/%d", sid, fid), fmt.Sprintf("Verify face %d of search #%d", fid, sid), roles(verifier, auditor, investigator)},
		{fmt.Sprintf("/searches/%d/faces/%d/confirm", sid, fid), fmt.Sprintf("Confirm face %d of search #%d", fid, sid), roles(verifier)},
		{"/sources", "Sources", roles(admin, operator, dpo, auditor)},
		{"/rights", "Rights requests", roles(dpo, auditor)},
		{"/rights/1", "Rights request R-1", roles(dpo, auditor)},
		{"/rights/1/process", "Act on request R-1", roles(dpo)},
		{"/audit", "Audit log", roles(auditor, dpo)},
		{"/records", "Records of processing activities", roles(admin, dpo, auditor)},
		{"/users", "Users", roles(admin)},
		{"/tokens", "API tokens", nil},
	}
	for _, pg := range pages {
		for _, r := range allRoles {
			got := sessions[r].get(pg.path)
			allowed := pg.roles == nil || slices.Contains(pg.roles, r)
			what := fmt.Sprintf("GET %s as %s", pg.path, r)
			switch {
			case allowed && (got.status != http.StatusOK || !strings.Contains(got.body, "<h1>"+pg.heading)):
				t.Errorf("%s: %d, want 200 with heading %q: %.300s", what, got.status, pg.heading, got.body)
			case !allowed && (got.status != http.StatusForbidden || !strings.Contains(got.body, "<h1>Not allowed</h1>")):
				t.Errorf("%s: %d, want the 403 page: %.300s", what, got.status, got.body)
			}
			checkHTML(t, what, got.body)
			if got.status == http.StatusOK && !strings.Contains(got.body, `action="/logout"`) {
				t.Errorf("%s: no sign-out button", what)
			}
		}
		got := e.anon().get(pg.path)
		want := "/login?next=" + url.QueryEscape(pg.path)
		if pg.path == "/" {
			if got.status != http.StatusOK || !strings.Contains(got.body, `href="/portal"`) || !strings.Contains(got.body, `href="/login"`) {
				t.Errorf("GET / anonymously: %d %.300s", got.status, got.body)
			}
			checkHTML(t, "GET / anonymously", got.body)
		} else if got.status != http.StatusSeeOther || got.header.Get("Location") != want {
			t.Errorf("GET %s anonymously: %d to %q, want 303 to %q", pg.path, got.status, got.header.Get("Location"), want)
		}
	}

	// The navigation shows only what the roles allow.
	home := sessions[investigator].get("/").body
	for path, want := range map[string]bool{"/search": true, "/sources": false, "/rights": false, "/users": false, "/tokens": true} {
		if got := strings.Contains(home, `<a href="`+path+`"`); got != want {
			t.Errorf("investigator's navigation: link to %s = %v, want %v", path, got, want)
		}
	}
	if !strings.Contains(home, "ivan") || !strings.Contains(home, `<span class="chip">investigator</span>`) {
		t.Error("the top bar does not name the user and their roles")
	}

	// The public pages.
	for _, path := range []string{"/login", "/portal"} {
		got := e.anon().get(path)
		if got.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, got.status)
		}
		checkHTML(t, "GET "+path, got.body)
		if strings.Contains(got.body, `href="/sources"`) || strings.Contains(got.body, `href="/search"`) {
			t.Errorf("GET %s links to console pages", path)
		}
	}

	// Errors are pages in the layout; the API still answers JSON.
	nf := sessions[admin].get("/no/such/page")
	if nf.status != http.StatusNotFound || !strings.Contains(nf.body, "<h1>Not found</h1>") {
		t.Errorf("unknown page: %d %.200s", nf.status, nf.body)
	}
	checkHTML(t, "404 page", nf.body)
	api := e.anon().get("/api/v1/sources")
	if api.status != http.StatusUnauthorized || !strings.HasPrefix(api.header.Get("Content-Type"), "application/json") {
		t.Errorf("anonymous API call: %d %s %s", api.status, api.header.Get("Content-Type"), api.body)
	}

	// Static files carry their hash and are cached; pages are not.
	css := regexp.MustCompile(`href="(/static/app\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(home)
	if css == nil {
		t.Fatal("no hashed stylesheet link")
	}
	got := e.anon().get(css[1])
	if got.status != http.StatusOK || !strings.Contains(got.header.Get("Cache-Control"), "immutable") {
		t.Errorf("GET %s: %d %q", css[1], got.status, got.header.Get("Cache-Control"))
	}
	if cc := sessions[admin].get("/").header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("home page Cache-Control %q", cc)
	}
}

// TestConsoleSignIn: the sign-in form, its failures, its redirect (never
// to another site) and signing out.
func TestConsoleSignIn(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("olga", operator)
	c := e.anon()
	got := c.form("/login", url.Values{"name": {"olga"}, "password": {"wrong password!"}, "next": {"/sources"}})
	if got.status != http.StatusUnauthorized || !strings.Contains(got.body, "Wrong name or password.") ||
		!strings.Contains(got.body, `value="olga"`) || got.header.Get("Set-Cookie") != "" {
		t.Errorf("wrong password: %d %q %.400s", got.status, got.header.Get("Set-Cookie"), got.body)
	}
	checkHTML(t, "failed sign-in", got.body)
	// Failed sign-ins are audited: the account and why, never the password
	// nor a name that is no account.
	c.form("/login", url.Values{"name": {"jane.doe@example.org"}, "password": {"a secret tried"}})
	es, err := e.data.DB.AuditEntries(t.Context(), 1, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, en := range es {
		if en.Action == "session.failed" {
			failed = append(failed, en.Object+" "+string(en.Detail))
			if strings.Contains(string(en.Detail), "secret") || strings.Contains(en.Object+string(en.Detail), "jane") ||
				strings.Contains(string(en.Detail), "wrong password!") {
				t.Errorf("the audit keeps what was typed: %s %s", en.Object, en.Detail)
			}
		}
	}
	if len(failed) != 2 || failed[0] != `user/olga {"reason":"wrong password"}` || failed[1] != `user/? {"reason":"unknown account"}` {
		t.Errorf("failed sign-ins audited: %q", failed)
	}
	if got := c.form("/login", url.Values{"name": {""}}); got.status != http.StatusBadRequest {
		t.Errorf("empty form: %d", got.status)
	}
	for next, want := range map[string]string{
		"/sources?x=1":        "/sources?x=1",
		"":                    "/",
		"//evil.example":      "/",
		"http://evil.example": "/",
		"https:evil.example":  "/",
		"/\\evil.example":     "/",
		"evil.example":        "/",
		"/login?next=//evil":  "/",
		"javascript:alert(1)": "/",
	} {
		c := e.anon()
		got := c.form("/login", url.Values{"name": {"olga"}, "password": {testPassword}, "next": {next}})
		if got.status != http.StatusSeeOther || got.header.Get("Location") != want {
			t.Errorf("next %q: %d to %q, want %q", next, got.status, got.header.Get("Location"), want)
		}
	}
	// The sign-in page sends a signed-in user on, and carries next.
	if got := e.anon().get("/login?next=%2Fsources"); !strings.Contains(got.body, `name="next" value="/sources"`) {
		t.Errorf("next not carried by the form: %.500s", got.body)
	}
	p := e.signIn("olga")
	if got := p.get("/login?next=/sources"); got.status != http.StatusSeeOther || got.header.Get("Location") != "/sources" {
		t.Errorf("sign-in page when signed in: %d %q", got.status, got.header.Get("Location"))
	}
	// Signing out ends the session.
	got = p.post("/logout", nil)
	if got.status != http.StatusSeeOther || !strings.HasPrefix(got.header.Get("Location"), "/login") {
		t.Fatalf("sign out: %d %q", got.status, got.header.Get("Location"))
	}
	if got := p.get("/sources"); got.status != http.StatusSeeOther || !strings.HasPrefix(got.header.Get("Location"), "/login") {
		t.Errorf("after signing out: %d %q", got.status, got.header.Get("Location"))
	}
	if got := e.anon().get("/login?notice=signed-out"); !strings.Contains(got.body, "You are signed out.") {
		t.Error("no signed-out notice")
	}
}

// TestConsoleCSRF: a console form posted without the session's token, or
// with another's, is refused.
func TestConsoleCSRF(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("olga", operator)
	e.addUser("ada", admin)
	op, ad := e.signIn("olga"), e.signIn("ada")
	decl := url.Values{"kind": {"folder"}, "path": {e.photos}, "controller": {"C"}, "purpose": {"P"}, "legal_basis": {"consent"},
		"art9": {"explicit-consent"}, "jurisdiction": {"FR"}, "retention": {"30d"}}
	cases := []struct {
		name string
		p    *webSession
		path string
		v    url.Values
	}{
		{"declare", op, "/sources", decl},
		{"logout", op, "/logout", url.Values{}},
		{"add user", ad, "/users", url.Values{"name": {"x"}, "password": {testPassword}, "roles": {"auditor"}}},
		{"token", op, "/tokens", url.Values{"label": {"x"}, "days": {"3"}}},
	}
	for _, tc := range cases {
		for _, tok := range []string{"", "not-the-token", ad.token + op.token} {
			v := url.Values{}
			for k, vs := range tc.v {
				v[k] = vs
			}
			if tok != "" {
				v.Set("csrf_token", tok)
			}
			got := tc.p.form(tc.path, v)
			if got.status != http.StatusForbidden || !strings.Contains(got.body, "csrf") {
				t.Errorf("%s with token %q: %d %.300s", tc.name, tok, got.status, got.body)
			}
			checkHTML(t, tc.name+" without token", got.body)
		}
	}
	// Another user's token is not this session's.
	if got := op.form("/tokens", url.Values{"label": {"x"}, "days": {"3"}, "csrf_token": {ad.token}}); got.status != http.StatusForbidden {
		t.Errorf("another session's token: %d", got.status)
	}
	// A multipart form too.
	if got := op.upload("/rights", url.Values{"kind": {"access"}}, nil); got.status != http.StatusForbidden {
		t.Errorf("multipart without token: %d", got.status)
	}
	// A cross-site form is refused even with the token.
	v := url.Values{"label": {"x"}, "days": {"3"}, "csrf_token": {op.token}}
	req, _ := http.NewRequest("POST", e.ts.URL+"/tokens", strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := op.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site form: %d", resp.StatusCode)
	}
	// With its token, the form works.
	if got := op.post("/sources", decl); got.status != http.StatusSeeOther {
		t.Errorf("declare with the token: %d %.300s", got.status, got.body)
	}
}

// TestConsoleSearchAndVerification: the search form without scripts, its
// results, and the verification of a result by two verifiers.
func TestConsoleSearchAndVerification(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("olga", operator)
	e.addUser("ivan", investigator)
	e.addUser("vera", verifier)
	e.addUser("victor", verifier)
	e.addUser("iris", investigator, verifier)
	op := e.signIn("olga")

	// The form chooses no legal basis, Art. 9 condition or retention for
	// the controller.
	form := op.get("/sources")
	for _, sel := range []string{"legal_basis", "art9"} {
		block := between(form.body, `<select id="`+sel+`"`, "</select>")
		if !strings.Contains(block, " required") || strings.Count(block, " selected") != 1 ||
			!strings.Contains(block, `<option value="" selected disabled>`) {
			t.Errorf("the %s choice is made in advance: %s", sel, block)
		}
	}
	if field := between(form.body, `<input id="retention"`, ">"); !strings.Contains(field, `value=""`) {
		t.Errorf("the retention is filled in advance: %s", field)
	}

	// The operator declares and ingests through the console.
	got := op.post("/sources", url.Values{"kind": {"folder"}, "path": {e.photos}, "controller": {"C"}, "purpose": {"P"},
		"legal_basis": {"consent"}, "art9": {"explicit-consent"}, "jurisdiction": {"fr"}, "retention": {"30d"}})
	if got.status != http.StatusSeeOther || got.header.Get("Location") != "/sources?id=1&notice=declared" {
		t.Fatalf("declare: %d %q %.300s", got.status, got.header.Get("Location"), got.body)
	}
	bad := op.post("/sources", url.Values{"kind": {"folder"}, "path": {e.photos}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "Missing") || !strings.Contains(bad.body, "value=\""+e.photos+"\"") {
		t.Errorf("incomplete declaration: %d %.500s", bad.status, bad.body)
	}
	got = op.post("/sources/1/ingest", nil)
	if got.status != http.StatusSeeOther || !strings.Contains(got.header.Get("Location"), "notice=ingest") {
		t.Fatalf("ingest: %d %.300s", got.status, got.body)
	}
	if j, err := e.srv.jobs.wait(t.Context(), 1); err != nil || j.State != jobDone {
		t.Fatalf("job = %+v, %v", j, err)
	}
	src := op.get("/sources?notice=ingest&id=1")
	if !strings.Contains(src.body, "Ingest job 1 started") || !strings.Contains(src.body, `data-state="done"`) ||
		!strings.Contains(src.body, `<td class="num" data-count="faces">3</td>`) {
		t.Errorf("sources page after ingest: %.3000s", src.body)
	}
	if got := op.post("/sources/1/suspend", nil); got.status != http.StatusSeeOther {
		t.Errorf("suspend: %d", got.status)
	}
	if got := op.post("/sources/1/ingest", nil); got.status != http.StatusConflict || !strings.Contains(got.body, "suspended") {
		t.Errorf("ingest of a suspended source: %d %.300s", got.status, got.body)
	}
	if got := op.post("/sources/1/resume", nil); got.status != http.StatusSeeOther {
		t.Errorf("resume: %d", got.status)
	}

	// The investigator searches without scripts.
	probe, err := os.ReadFile(filepath.Join(e.photos, "p1.png"))
	if err != nil {
		t.Fatal(err)
	}
	inv := e.signIn("ivan")
	got = inv.postFiles("/search", url.Values{"purpose": {"theft, case 12"}, "case": {"C-12"}}, map[string][][]byte{"photo": {probe}})
	if got.status != http.StatusOK || !strings.Contains(got.body, `src="/api/v1/faces/`) || !strings.Contains(got.body, "p1.png") ||
		!strings.Contains(got.body, "recorded in the audit log") || !strings.Contains(got.body, `<a href="/searches/1">#1</a>`) {
		t.Fatalf("search: %d %.3000s", got.status, got.body)
	}
	checkHTML(t, "search results", got.body)
	none := inv.postFiles("/search", url.Values{"purpose": {"x"}}, map[string][][]byte{"photo": {testPNG(t, color.RGBA{1, 2, 3, 0})}})
	if none.status != http.StatusOK || !strings.Contains(none.body, "No match.") {
		t.Errorf("search without a match: %d %.2000s", none.status, none.body)
	}
	noPurpose := inv.postFiles("/search", url.Values{"case": {"C-12"}}, map[string][][]byte{"photo": {probe}})
	if noPurpose.status != http.StatusBadRequest || !strings.Contains(noPurpose.body, "purpose") || !strings.Contains(noPurpose.body, `value="C-12"`) {
		t.Errorf("search without purpose: %d %.2000s", noPurpose.status, noPurpose.body)
	}
	noFace := inv.postFiles("/search", url.Values{"purpose": {"x"}}, map[string][][]byte{"photo": {testPNG(t, color.RGBA{})}})
	if noFace.status != http.StatusUnprocessableEntity || !strings.Contains(noFace.body, "No face was found") {
		t.Errorf("search without a face: %d %.2000s", noFace.status, noFace.body)
	}

	// The investigator sees their search's record, but cannot confirm.
	rec := inv.get("/searches/1")
	if rec.status != http.StatusOK || !strings.Contains(rec.body, "theft, case 12") || strings.Contains(rec.body, "Confirm match") {
		t.Errorf("record for its investigator: %d %.2000s", rec.status, rec.body)
	}
	faceID := regexp.MustCompile(`/api/v1/faces/(\d+)/crop`).FindStringSubmatch(rec.body)
	if faceID == nil {
		t.Fatalf("no crop on the record: %.2000s", rec.body)
	}
	if got := inv.post("/searches/1/confirm", url.Values{"face_id": {faceID[1]}}); got.status != http.StatusForbidden {
		t.Errorf("investigator confirms: %d", got.status)
	}

	// Verifiers find the search in the list and confirm.
	vera := e.signIn("vera")
	list := vera.get("/searches")
	if !strings.Contains(list.body, `<a href="/searches/1">#1</a>`) || !strings.Contains(list.body, "theft, case 12") {
		t.Errorf("searches list: %.3000s", list.body)
	}
	// A confirmation goes through a step that says what it means.
	got = vera.post("/searches/1/confirm", url.Values{"face_id": {faceID[1]}})
	step := "/searches/1/faces/" + faceID[1] + "/confirm"
	if got.status != http.StatusSeeOther || got.header.Get("Location") != step {
		t.Fatalf("confirmation without its step: %d %q %.300s", got.status, got.header.Get("Location"), got.body)
	}
	pg := vera.get(step)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "is the person searched in <strong>search #1</strong>") ||
		!strings.Contains(pg.body, "one of the 2 confirmations an identification needs") || !strings.Contains(pg.body, `name="attest" value="yes"`) ||
		!strings.Contains(pg.body, `href="/searches/1/faces/`+faceID[1]+`" id="confirm-cancel"`) {
		t.Errorf("confirmation step: %d %.3000s", pg.status, pg.body)
	}
	checkHTML(t, "confirmation step", pg.body)
	if cs, err := e.data.DB.Confirmations(t.Context(), 1); err != nil || len(cs) != 0 {
		t.Fatalf("confirmations before the step was confirmed: %v, %v", cs, err)
	}
	attest := func(face string) url.Values { return url.Values{"face_id": {face}, "attest": {"yes"}} }
	got = vera.post("/searches/1/confirm", attest(faceID[1]))
	if got.status != http.StatusSeeOther || got.header.Get("Location") != "/searches/1/faces/"+faceID[1]+"?id="+faceID[1]+"&notice=confirmed" {
		t.Fatalf("first confirmation: %d %q %.300s", got.status, got.header.Get("Location"), got.body)
	}
	pg = vera.get(got.header.Get("Location"))
	if !strings.Contains(pg.body, "1 of 2 confirmations") || !strings.Contains(pg.body, "You confirmed this face.") {
		t.Errorf("after the first confirmation: %.3000s", pg.body)
	}
	twice := vera.post("/searches/1/confirm", attest(faceID[1]))
	if twice.status != http.StatusConflict || !strings.Contains(twice.body, "already confirmed") {
		t.Errorf("confirmed twice: %d %.500s", twice.status, twice.body)
	}
	checkHTML(t, "confirmed twice", twice.body)
	if got := vera.post("/searches/1/confirm", attest("999")); got.status != http.StatusBadRequest {
		t.Errorf("a face the search did not return: %d", got.status)
	}
	got = e.signIn("victor").post("/searches/1/confirm", attest(faceID[1]))
	if got.status != http.StatusSeeOther || !strings.Contains(got.header.Get("Location"), "notice=identified") {
		t.Fatalf("second confirmation: %d %.300s", got.status, got.body)
	}
	pg = vera.get("/searches/1")
	if !strings.Contains(pg.body, "Identified") || !strings.Contains(pg.body, "vera, victor") {
		t.Errorf("after two confirmations: %.3000s", pg.body)
	}
	if list := vera.get("/searches"); !strings.Contains(list.body, "1 identified") {
		t.Errorf("searches list after identification: %.3000s", list.body)
	}

	// One who ran a search cannot confirm it, even as a verifier.
	iris := e.signIn("iris")
	got = iris.postFiles("/search", url.Values{"purpose": {"own"}}, map[string][][]byte{"photo": {probe}})
	irisSearch := regexp.MustCompile(`<a href="(/searches/\d+)">`).FindStringSubmatch(got.body)
	if got.status != http.StatusOK || irisSearch == nil {
		t.Fatalf("iris searches: %d", got.status)
	}
	own := iris.post(irisSearch[1]+"/confirm", attest(faceID[1]))
	if own.status != http.StatusForbidden || !strings.Contains(own.body, "you ran this search") {
		t.Errorf("own search confirmed: %d %s", own.status, regexp.MustCompile(`(?s)<main.*</main>`).FindString(own.body))
	}
	if rec := iris.get(irisSearch[1]); strings.Contains(rec.body, "Confirm match") {
		t.Error("a confirm button on one's own search")
	}
	// Another investigator's search is not found.
	if got := e.signIn("iris").get("/searches/1"); got.status != http.StatusOK {
		t.Errorf("a verifier reads any search: %d", got.status)
	}
	e.addUser("ines", investigator)
	if got := e.signIn("ines").get("/searches/1"); got.status != http.StatusNotFound {
		t.Errorf("another investigator's search: %d", got.status)
	}
}

var (
	refRE  = regexp.MustCompile(`R-\d+`)
	codeRE = regexp.MustCompile(`\b[A-Z2-7]{5}-[A-Z2-7]{5}\b`) // a status code
	dateRE = regexp.MustCompile(`\b\d{1,2} [A-Z][a-z]+ \d{4}\b|\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b`)
)

// TestPortal: anyone registers a request with selfies; the answer is the
// same page whether or not the person's face is held.
func TestPortal(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("olga", operator)
	e.addUser("dora", dpo)
	op := e.login("olga")
	e.ingest(op, e.declareSource(op))
	held, err := os.ReadFile(filepath.Join(e.photos, "p1.png"))
	if err != nil {
		t.Fatal(err)
	}
	stranger := testPNG(t, color.RGBA{90, 90, 30, 0})

	form := e.anon().get("/portal")
	for _, want := range []string{"access", "erasure", "objection", "restriction", `name="selfie"`, "multiple", `name="contact"`, `href="/login"`} {
		if !strings.Contains(form.body, want) {
			t.Errorf("portal form lacks %q", want)
		}
	}
	answer := func(photo []byte, kind string) string {
		t.Helper()
		got := e.anon().upload("/portal", url.Values{"kind": {kind}, "contact": {"someone@example.org"}}, map[string][][]byte{"selfie": {photo}})
		if got.status != http.StatusCreated || !strings.Contains(got.body, portalMessage) {
			t.Fatalf("portal request: %d %.2000s", got.status, got.body)
		}
		checkHTML(t, "portal answer", got.body)
		return dateRE.ReplaceAllString(codeRE.ReplaceAllString(refRE.ReplaceAllString(got.body, "R-?"), "CODE"), "DATE")
	}
	a, b := answer(held, "access"), answer(stranger, "access")
	if a != b {
		t.Errorf("the answer depends on whether the face is held:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(a, "Your reference") || !strings.Contains(a, "Answer due by") {
		t.Errorf("answer: %.2000s", a)
	}
	if answer(held, "erasure") != answer(stranger, "erasure") {
		t.Error("erasure answers differ")
	}

	// Refusals are explained in plain words, and keep what was typed.
	got := e.anon().upload("/portal", url.Values{"kind": {"access"}, "contact": {"me@example.org"}},
		map[string][][]byte{"selfie": {testPNG(t, color.RGBA{})}})
	if got.status != http.StatusUnprocessableEntity || !strings.Contains(got.body, "We found no face") || !strings.Contains(got.body, "me@example.org") {
		t.Errorf("selfie without a face: %d %.2000s", got.status, got.body)
	}
	checkHTML(t, "portal error", got.body)
	got = e.anon().upload("/portal", url.Values{"kind": {"everything"}, "contact": {"me@example.org"}}, map[string][][]byte{"selfie": {held}})
	if got.status != http.StatusBadRequest || !strings.Contains(got.body, "me@example.org") {
		t.Errorf("an unknown kind through the portal: %d", got.status)
	}
	got = e.anon().upload("/portal", url.Values{"kind": {"access"}, "contact": {"me@example.org"}},
		map[string][][]byte{"selfie": {held, held, held, held, held, held}})
	if got.status != http.StatusBadRequest || !strings.Contains(got.body, "at most 5") {
		t.Errorf("six selfies: %d %.1000s", got.status, got.body)
	}

	// The DPO sees the requests, each linked to its page, where it is
	// answered (see console_rights_test.go): nothing is done from the
	// queue, nor without the confirmation step.
	dora := e.signIn("dora")
	q := dora.get("/rights")
	if !strings.Contains(q.body, "<strong>R-1</strong>") || !strings.Contains(q.body, "<strong>R-4</strong>") || strings.Contains(q.body, "someone@example.org") ||
		!strings.Contains(q.body, `href="/rights/1"`) || strings.Contains(q.body, `action="/rights/1/process"`) {
		t.Errorf("rights queue: %.3000s", q.body)
	}
	if got := dora.post("/rights/1/process", nil); got.status != http.StatusBadRequest || !strings.Contains(got.body, "confirmation step") {
		t.Errorf("process from outside the confirmation step: %d %.500s", got.status, got.body)
	}
	if got := dora.post("/rights/2/extend", url.Values{"months": {"2"}, "reason": {"many collections"}}); got.status != http.StatusBadRequest ||
		!strings.Contains(got.body, "The person was told") {
		t.Errorf("extend without notice: %d %.500s", got.status, got.body)
	}
	if got := dora.post("/rights/2/extend", url.Values{"months": {"2"}, "reason": {"many collections"}, "notice_sent": {"1"}}); got.status != http.StatusSeeOther {
		t.Errorf("extend: %d %.500s", got.status, got.body)
	}
	if q := dora.get("/rights"); !strings.Contains(q.body, ">extended</span>") {
		t.Errorf("extended request not shown: %.3000s", q.body)
	}
	if got := dora.post("/rights/2/lift", nil); got.status != http.StatusBadRequest {
		t.Errorf("lift an access request: %d", got.status)
	}
	// The DPO registers a restriction received by post.
	got = dora.postFiles("/rights", url.Values{"kind": {"restriction"}, "contact": {"12 rue X, Paris"}}, map[string][][]byte{"selfie": {held}})
	if got.status != http.StatusSeeOther || !strings.Contains(got.header.Get("Location"), "notice=registered") {
		t.Errorf("register: %d %.500s", got.status, got.body)
	}
	// The portal is rate-limited by client address.
	e.srv.portal = newLimiter(0, time.Hour)
	got = e.anon().upload("/portal", url.Values{"kind": {"access"}, "contact": {"me@example.org"}}, map[string][][]byte{"selfie": {held}})
	if got.status != http.StatusTooManyRequests || !strings.Contains(got.body, "Too many requests") || got.header.Get("Retry-After") == "" {
		t.Errorf("rate-limited portal: %d %q %.500s", got.status, got.header.Get("Retry-After"), got.body)
	}
	// An overdue request is flagged.
	e.srv.cfg.Now = func() time.Time { return time.Now().AddDate(0, 3, 0) }
	q = dora.get("/rights")
	if !strings.Contains(q.body, "OVERDUE") || !strings.Contains(q.body, "overdue.</strong>") {
		t.Errorf("overdue not flagged: %.3000s", q.body)
	}
	e.srv.cfg.Now = time.Now
}

// TestConsoleAdmin: users, tokens, the audit log and the records.
func TestConsoleAdmin(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("ada", admin)
	e.addUser("aude", auditor, dpo)
	ad := e.signIn("ada")
	got := ad.post("/users", url.Values{"name": {"nina"}, "password": {testPassword}, "roles": {"investigator", "verifier"}})
	if got.status != http.StatusSeeOther {
		t.Fatalf("add user: %d %.500s", got.status, got.body)
	}
	if page := ad.get(got.header.Get("Location")); !strings.Contains(page.body, "User nina is added.") {
		t.Errorf("the notice does not say which user: %.1500s", page.body)
	}
	if got := ad.post("/users", url.Values{"name": {"nina"}, "password": {testPassword}, "roles": {"auditor"}}); got.status != http.StatusConflict ||
		!strings.Contains(got.body, "already exists") || !strings.Contains(got.body, `value="nina"`) {
		t.Errorf("add twice: %d %.500s", got.status, got.body)
	}
	// Messages say what is wrong and what to do, once, with no internal
	// wrapping.
	if got := ad.post("/users", url.Values{"name": {"x"}, "password": {"short"}, "roles": {"auditor"}}); got.status != http.StatusBadRequest ||
		!strings.Contains(got.body, "The password must have at least 12 characters.") || strings.Contains(got.body, "hash password") {
		t.Errorf("short password: %d %.500s", got.status, got.body)
	}
	if got := ad.post("/users", url.Values{"name": {"two words"}, "password": {testPassword}, "roles": {"auditor"}}); got.status != http.StatusBadRequest ||
		!strings.Contains(got.body, "no space") {
		t.Errorf("a name with a space: %d %.500s", got.status, got.body)
	}
	if got := ad.post("/users", url.Values{"name": {"cli:x"}, "password": {testPassword}, "roles": {"auditor"}}); got.status != http.StatusBadRequest {
		t.Errorf("cli name: %d", got.status)
	}
	nina := e.signIn("nina")
	if !strings.Contains(nina.get("/").body, "Search by photo") {
		t.Error("the new user's home lacks search")
	}
	if got := ad.post("/users/ada/disable", nil); got.status != http.StatusConflict {
		t.Errorf("disable oneself: %d", got.status)
	}
	if got := ad.post("/users/nina/disable", url.Values{"confirm": {"yes"}}); got.status != http.StatusSeeOther {
		t.Errorf("disable: %d", got.status)
	}
	if got := nina.get("/search"); got.status != http.StatusSeeOther {
		t.Errorf("a disabled user's page: %d", got.status)
	}
	if users := ad.get("/users"); !strings.Contains(users.body, ">disabled</span>") {
		t.Errorf("users: %.2000s", users.body)
	}

	// Tokens: shown once, listed, revoked.
	au := e.signIn("aude")
	// Post, redirect, get: the token is on the page the browser is sent
	// to, once; reloading it shows it no more, and mints nothing.
	got = au.post("/tokens", url.Values{"label": {"export script"}, "days": {"30"}})
	show := got.header.Get("Location")
	if got.status != http.StatusSeeOther || !strings.HasPrefix(show, "/tokens?show=") || strings.Contains(got.body, "gbt_") {
		t.Fatalf("create token: %d %q %.1000s", got.status, show, got.body)
	}
	if other := e.signIn("ada").get(show); strings.Contains(other.body, "gbt_") {
		t.Error("another user's page shows the new token")
	}
	got = au.get(show)
	tok := regexp.MustCompile(`gbt_[A-Za-z0-9_-]+`).FindString(got.body)
	if got.status != http.StatusOK || tok == "" {
		t.Fatalf("the page after creating the token: %d %.1000s", got.status, got.body)
	}
	again := au.get(show)
	if strings.Contains(again.body, tok) || !strings.Contains(again.body, "shown once") {
		t.Errorf("reloading shows the token again, or says nothing: %.1000s", again.body)
	}
	if ts, err := e.data.DB.APITokens(t.Context(), "aude"); err != nil || len(ts) != 1 {
		t.Errorf("tokens of aude after a reload: %d, %v", len(ts), err)
	}
	bearer := e.anon()
	bearer.bearer = tok
	if st, body := bearer.json("GET", "/api/v1/audit/verify", nil); st != http.StatusOK {
		t.Errorf("new token: %d %s", st, body)
	}
	list := au.get("/tokens")
	if strings.Contains(list.body, tok) || !strings.Contains(list.body, "export script") {
		t.Errorf("token list shows the token, or not its label: %.1000s", list.body)
	}
	if got := au.post("/tokens", url.Values{"label": {""}, "days": {"30"}}); got.status != http.StatusBadRequest {
		t.Errorf("token without label: %d", got.status)
	}
	if got := e.signIn("ada").post("/tokens/1/revoke", nil); got.status != http.StatusSeeOther {
		t.Errorf("admin revokes: %d", got.status)
	}
	if st, _ := bearer.json("GET", "/api/v1/audit/verify", nil); st != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", st)
	}

	// The audit log: verified, newest first, paged.
	a := au.get("/audit")
	if !strings.Contains(a.body, "<strong>Intact.</strong>") || !strings.Contains(a.body, "user.disable") {
		t.Errorf("audit: %.3000s", a.body)
	}
	first := regexp.MustCompile(`<td class="num">(\d+)</td>`).FindStringSubmatch(a.body)
	if first == nil {
		t.Fatal("no entries")
	}
	if got := au.get("/audit?before=" + first[1]); got.status != http.StatusOK || strings.Contains(got.body, `<td class="num">`+first[1]+`</td>`) {
		t.Errorf("audit before %s: %d", first[1], got.status)
	}
	if got := au.get("/audit?before=x"); got.status != http.StatusBadRequest {
		t.Errorf("bad before: %d", got.status)
	}

	// The records, and the authority export from the console.
	if r := au.get("/records"); !strings.Contains(r.body, "Security measures") || !strings.Contains(r.body, "NOT DECLARED") {
		t.Errorf("records: %.2000s", r.body)
	}
	x := au.post("/records/export", nil)
	if x.status != http.StatusOK || x.header.Get("Content-Type") != "application/zip" || !strings.HasPrefix(x.body, "PK") {
		t.Errorf("export: %d %s", x.status, x.header.Get("Content-Type"))
	}
}
