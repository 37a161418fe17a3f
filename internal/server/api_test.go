package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"gabarit/internal/vindex"
	"image/color"
	"image/jpeg"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/membudget"
	"gabarit/internal/modeltest"
	"gabarit/internal/passwd"
	"gabarit/internal/store"
)

func TestSmokeSearchFlow(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	op := e.login("olga")
	id := e.declareSource(op)
	j := e.ingest(op, id)
	if j.State != jobDone || j.Images != 3 || j.Faces != 3 {
		t.Fatalf("job = %+v", j)
	}
	probe, err := os.ReadFile(filepath.Join(e.photos, "p1.png"))
	if err != nil {
		t.Fatal(err)
	}
	inv := e.login("ivan")
	st, body := inv.multipart("/api/v1/searches", map[string]string{"purpose": "test case", "case": "C-1"}, map[string][][]byte{"photo": {probe}})
	if st != http.StatusOK {
		t.Fatalf("search: %d %s", st, body)
	}
	res := decode[app.SearchView](t, body)
	if !res.Match || len(res.Results) != 1 || res.Results[0].Locator != "p1.png" {
		t.Fatalf("search = %+v", res)
	}
	st, body = inv.do("GET", fmt.Sprintf("/api/v1/faces/%d/crop", res.Results[0].FaceID), "", nil)
	if st != http.StatusOK {
		t.Fatalf("crop: %d %s", st, body)
	}
	st, body = inv.multipart("/api/v1/searches", map[string]string{"purpose": "x"}, map[string][][]byte{"photo": {testPNG(t, color.RGBA{})}})
	if st != http.StatusUnprocessableEntity {
		t.Fatalf("no-face search: %d %s", st, body)
	}
}

// TestBadInput: wrong types, unknown fields, huge bodies, missing purpose,
// non-images, wrong methods and paths get a JSON {code, message} with the
// right status, and nothing internal.
func TestBadInput(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	e.addUser("vera", store.RoleVerifier)
	inv := e.token("ivan")
	ver := e.token("vera")
	op := e.token("olga")
	photo := testPNG(t, color.RGBA{200, 10, 10, 0})
	huge := bytes.Repeat([]byte("x"), defaultUpload+1)
	cases := []struct {
		name       string
		call       func() (int, []byte)
		status     int
		code       string
		mentioning string
	}{
		{"wrong type", func() (int, []byte) {
			return ver.do("POST", "/api/v1/searches/1/confirmations", "application/json", strings.NewReader(`{"face_id":"seven"}`))
		}, 400, "invalid", "face_id"},
		{"unknown field", func() (int, []byte) {
			return op.do("POST", "/api/v1/sources", "application/json", strings.NewReader(`{"kind":"folder","colour":"red"}`))
		}, 400, "invalid", "colour"},
		{"trailing data", func() (int, []byte) {
			return ver.do("POST", "/api/v1/searches/1/confirmations", "application/json", strings.NewReader(`{"face_id":1} {}`))
		}, 400, "invalid", "trailing"},
		{"not JSON", func() (int, []byte) {
			return ver.do("POST", "/api/v1/searches/1/confirmations", "text/plain", strings.NewReader(`face 1`))
		}, 415, "want_json", ""},
		{"huge JSON", func() (int, []byte) {
			return op.do("POST", "/api/v1/sources", "application/json", bytes.NewReader(append([]byte(`{"kind":"`), bytes.Repeat([]byte("a"), maxJSONBody)...)))
		}, 413, "too_large", ""},
		{"huge upload", func() (int, []byte) {
			return inv.multipart("/api/v1/searches", map[string]string{"purpose": "p"}, map[string][][]byte{"photo": {huge}})
		}, 413, "too_large", ""},
		{"missing purpose", func() (int, []byte) {
			return inv.multipart("/api/v1/searches", map[string]string{"case": "C"}, map[string][][]byte{"photo": {photo}})
		}, 400, "missing_purpose", "purpose"},
		{"no photo", func() (int, []byte) {
			return inv.multipart("/api/v1/searches", map[string]string{"purpose": "p"}, nil)
		}, 400, "invalid", "photo"},
		{"not an image", func() (int, []byte) {
			return inv.multipart("/api/v1/searches", map[string]string{"purpose": "p"}, map[string][][]byte{"photo": {[]byte("GIF? no: <script>alert(1)</script>")}})
		}, 415, "not_an_image", ""},
		{"truncated image", func() (int, []byte) {
			return inv.multipart("/api/v1/searches", map[string]string{"purpose": "p"}, map[string][][]byte{"photo": {photo[:40]}})
		}, 422, "bad_image", ""},
		{"bad k", func() (int, []byte) {
			return inv.multipart("/api/v1/searches", map[string]string{"purpose": "p", "k": "many"}, map[string][][]byte{"photo": {photo}})
		}, 400, "invalid", "k"},
		{"k out of range", func() (int, []byte) {
			return inv.multipart("/api/v1/searches", map[string]string{"purpose": "p", "k": "100000"}, map[string][][]byte{"photo": {photo}})
		}, 400, "invalid", ""},
		{"bad id", func() (int, []byte) { return inv.json("GET", "/api/v1/searches/abc", nil) }, 400, "invalid", "id"},
		{"wrong method", func() (int, []byte) { return inv.json("PATCH", "/api/v1/searches", nil) }, 405, "method_not_allowed", ""},
		{"unknown path", func() (int, []byte) { return inv.json("GET", "/api/v1/nothing", nil) }, 404, "not_found", ""},
		{"bad bearer", func() (int, []byte) {
			c := e.anon()
			c.bearer = "gbt_not-a-token"
			return c.json("GET", "/api/v1/sources", nil)
		}, 401, "bad_token", ""},
		{"bad source declaration", func() (int, []byte) {
			return op.json("POST", "/api/v1/sources", map[string]string{"kind": "folder", "path": "/nonexistent/x", "controller": "c",
				"purpose": "p", "legal_basis": "consent", "art9": "explicit-consent", "jurisdiction": "FR", "retention": "30d"})
		}, 400, "invalid", "path"},
		{"declaration without legal basis", func() (int, []byte) {
			return op.json("POST", "/api/v1/sources", map[string]string{"kind": "folder", "path": e.photos})
		}, 400, "invalid", "legal-basis"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := tc.call()
			ae := decode[apiError](t, body)
			if st != tc.status || ae.Code != tc.code || ae.Message == "" {
				t.Fatalf("got %d %s, want %d %s", st, short(body), tc.status, tc.code)
			}
			if !strings.Contains(ae.Message, tc.mentioning) {
				t.Errorf("message %q does not mention %q", ae.Message, tc.mentioning)
			}
			if strings.Contains(string(body), e.dir) || strings.Contains(string(body), "sql") {
				t.Errorf("answer leaks internals: %s", body)
			}
		})
	}
}

// TestSessionsAndTokens: CSRF on cookie sessions, cross-site requests,
// logout, expired and revoked tokens, login rate limit.
func TestSessionsAndTokens(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	sess := e.login("olga")
	noCSRF := *sess
	noCSRF.csrf = ""
	decl := app.Declaration{Kind: "folder", Path: e.photos, Controller: "c", Purpose: "p", LegalBasis: "consent",
		Art9: "explicit-consent", Jurisdiction: "FR", Retention: "30d"}
	if st, body := noCSRF.json("POST", "/api/v1/sources", decl); st != 403 || decode[apiError](t, body).Code != "csrf" {
		t.Errorf("without CSRF token: %d %s", st, body)
	}
	wrong := *sess
	wrong.csrf = "forged"
	if st, body := wrong.json("POST", "/api/v1/sources", decl); st != 403 || decode[apiError](t, body).Code != "csrf" {
		t.Errorf("wrong CSRF token: %d %s", st, body)
	}
	// A cross-site request is refused even with the right token.
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/sources", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", sess.csrf)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := sess.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-origin: %d", resp.StatusCode)
	}
	if st, body := sess.json("POST", "/api/v1/sources", decl); st != 201 {
		t.Fatalf("with CSRF token: %d %s", st, body)
	}
	// Logout ends the session.
	if st, _ := sess.json("DELETE", "/api/v1/session", nil); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st, _ := sess.json("GET", "/api/v1/sources", nil); st != 401 {
		t.Errorf("after logout: %d", st)
	}
	// Tokens: revoked and expired ones are refused with their reason.
	tok := e.token("olga")
	list := decode[[]tokenJSON](t, mustOK(t, tok, "GET", "/api/v1/tokens"))
	if len(list) != 1 || list[0].Token != "" {
		t.Fatalf("token list = %+v (the secret must never be listed)", list)
	}
	if st, _ := tok.json("DELETE", fmt.Sprintf("/api/v1/tokens/%d", list[0].ID), nil); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	if st, body := tok.json("GET", "/api/v1/sources", nil); st != 401 || decode[apiError](t, body).Code != "token_revoked" {
		t.Errorf("revoked token: %d %s", st, body)
	}
	tok2, hash, err := passwd.NewToken(tokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(5 * time.Millisecond)
	if _, err := e.data.DB.CreateAPIToken(context.Background(), "olga", "short", hash, expires, "test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "past the token's expiry", func() bool { return time.Now().After(expires) })
	exp := e.anon()
	exp.bearer = tok2
	if st, body := exp.json("GET", "/api/v1/sources", nil); st != 401 || decode[apiError](t, body).Code != "token_expired" {
		t.Errorf("expired token: %d %s", st, body)
	}
	// Login: wrong password and unknown user look the same; the 11th
	// attempt within a minute is refused.
	a := e.anon()
	st1, b1 := a.json("POST", "/api/v1/session", map[string]string{"name": "olga", "password": "wrong password!!"})
	st2, b2 := a.json("POST", "/api/v1/session", map[string]string{"name": "nobody", "password": "wrong password!!"})
	if st1 != 401 || st2 != 401 || string(b1) != string(b2) {
		t.Errorf("failed logins differ: %d %s / %d %s", st1, b1, st2, b2)
	}
	var last int
	for range 10 {
		last, _ = a.json("POST", "/api/v1/session", map[string]string{"name": "olga", "password": "wrong password!!"})
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("login attempts are not limited: last status %d", last)
	}
}

func mustOK(t *testing.T, c *client, method, path string) []byte {
	t.Helper()
	st, body := c.json(method, path, nil)
	if st != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, st, body)
	}
	return body
}

// TestCropsOnlyForReturnedFaces: an investigator sees the crops of faces
// their own searches returned, not others'; a verifier sees those returned
// by any search; nobody browses faces by id.
func TestCropsOnlyForReturnedFaces(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	e.addUser("inga", store.RoleInvestigator)
	e.addUser("vera", store.RoleVerifier)
	e.ingest(e.token("olga"), e.declareSource(e.token("olga")))
	probe, err := os.ReadFile(filepath.Join(e.photos, "p2.png"))
	if err != nil {
		t.Fatal(err)
	}
	ivan, inga, vera := e.token("ivan"), e.token("inga"), e.token("vera")
	st, body := ivan.multipart("/api/v1/searches", map[string]string{"purpose": "case"}, map[string][][]byte{"photo": {probe}})
	res := decode[app.SearchView](t, body)
	if st != 200 || len(res.Results) != 1 {
		t.Fatalf("search: %d %s", st, body)
	}
	crop := fmt.Sprintf("/api/v1/faces/%d/crop", res.Results[0].FaceID)
	for _, tc := range []struct {
		who  string
		c    *client
		want int
	}{{"ivan", ivan, 200}, {"inga", inga, 404}, {"vera", vera, 200}} {
		if st, body := tc.c.do("GET", crop, "", nil); st != tc.want {
			t.Errorf("%s: crop %d %s, want %d", tc.who, st, short(body), tc.want)
		}
	}
	// A face no search returned: nobody gets it.
	for _, c := range []*client{ivan, vera} {
		for id := int64(1); id <= 3; id++ {
			if id == res.Results[0].FaceID {
				continue
			}
			if st, _ := c.do("GET", fmt.Sprintf("/api/v1/faces/%d/crop", id), "", nil); st != 404 {
				t.Errorf("face %d never returned: crop status %d", id, st)
			}
		}
	}
	resp, err := ivan.hc.Do(mustReq(t, ivan, "GET", crop))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("crop Cache-Control %q", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/jpeg" {
		t.Errorf("crop Content-Type %q", ct)
	}
}

func mustReq(t *testing.T, c *client, method, path string) *http.Request {
	req, err := http.NewRequest(method, c.e.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	return req
}

// TestSecurityHeaders: every answer carries the CSP and frame denial, and
// is not cached (static assets excepted).
func TestSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, nil)
	for _, path := range []string{"/api/v1/health", "/api/v1/nothing", "/portal", "/login"} {
		resp, err := http.Get(e.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			!strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, h)
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: no request id", path)
		}
	}
}

// TestMetrics: /metrics exposes the search latency histogram, ingest
// counters, queue depths and the rights register by state.
func TestMetrics(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	e.ingest(e.token("olga"), e.declareSource(e.token("olga")))
	e.token("ivan").multipart("/api/v1/searches", map[string]string{"purpose": "p"}, map[string][][]byte{"photo": {testPNG(t, color.RGBA{1, 2, 3, 0})}})
	if st, body := e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": "access", "contact": "me@example.org"},
		map[string][][]byte{"selfie": {testPNG(t, color.RGBA{9, 9, 9, 0})}}); st != 201 {
		t.Fatalf("portal: %d %s", st, body)
	}
	e.addUser("aude", store.RoleAuditor) // /metrics is for admins and auditors (TestMetricsNeedSignIn)
	m := e.token("aude").get("/metrics")
	if m.status != http.StatusOK {
		t.Fatalf("/metrics as an auditor: %d %s", m.status, m.body)
	}
	b := m.body
	for _, want := range []string{
		`gabarit_search_duration_seconds_bucket{outcome="ok"`,
		`gabarit_ingest_images_total 3`, `gabarit_ingest_faces_total 3`,
		`gabarit_ingest_images_per_second`, `gabarit_ingest_faces_per_second`,
		`gabarit_ingest_jobs_queue_depth 0`, `gabarit_analysis_queue_depth 0`,
		`gabarit_rights_requests{state="received"} 1`, `gabarit_rights_requests_overdue 0`,
		`gabarit_http_request_duration_seconds_bucket{route="POST /api/v1/searches"`,
		`gabarit_faces_indexed 3`,
	} {
		if !strings.Contains(b, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestRightsThroughTheAPI: a person asks through the portal; the answer is
// the same whether or not they are held; the DPO processes an erasure and
// the person is no longer found.
func TestRightsThroughTheAPI(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	e.addUser("dora", store.RoleDPO)
	e.ingest(e.token("olga"), e.declareSource(e.token("olga")))
	held, err := os.ReadFile(filepath.Join(e.photos, "p0.png"))
	if err != nil {
		t.Fatal(err)
	}
	stranger := testPNG(t, color.RGBA{77, 77, 77, 0})
	portal := e.anon()
	ask := func(selfie []byte, kind string) portalAnswer {
		st, body := portal.multipart("/api/v1/portal/requests", map[string]string{"kind": kind, "contact": "person@example.org"},
			map[string][][]byte{"selfie": {selfie}})
		if st != http.StatusCreated {
			t.Fatalf("portal %s: %d %s", kind, st, body)
		}
		return decode[portalAnswer](t, body)
	}
	a1, a2 := ask(held, "erasure"), ask(stranger, "erasure")
	if a1.Message != a2.Message || a1.Kind != a2.Kind || a1.Reference == a2.Reference || !a1.Due.Equal(a2.Due) && a1.Due.Sub(a2.Due) > time.Minute {
		t.Errorf("the portal's answers differ beyond reference and time: %+v / %+v", a1, a2)
	}
	if st, body := portal.multipart("/api/v1/portal/requests", map[string]string{"kind": "everything", "contact": "x"},
		map[string][][]byte{"selfie": {held}}); st != 400 {
		t.Errorf("portal, unknown kind: %d %s", st, body)
	}
	if st, body := portal.multipart("/api/v1/portal/requests", map[string]string{"kind": "access", "contact": "x"},
		map[string][][]byte{"selfie": {testPNG(t, color.RGBA{})}}); st != 422 {
		t.Errorf("portal selfie without a face: %d %s", st, body)
	}
	dpo := e.token("dora")
	reg := decode[struct {
		Requests []app.RequestView `json:"requests"`
		Overdue  int               `json:"overdue"`
	}](t, mustOK(t, dpo, "GET", "/api/v1/rights"))
	if len(reg.Requests) != 2 {
		t.Fatalf("register = %+v", reg)
	}
	var id int64
	if _, err := fmt.Sscanf(a1.Reference, "R-%d", &id); err != nil {
		t.Fatal(err)
	}
	// The request's page: the contact and the next step for the DPO; no
	// contact for an auditor.
	e.addUser("aude", store.RoleAuditor)
	d := decode[app.RequestDetail](t, mustOK(t, dpo, "GET", fmt.Sprintf("/api/v1/rights/%d", id)))
	if d.Contact != "person@example.org" || d.Next != "find the candidates" || len(d.Methods) == 0 {
		t.Errorf("the DPO's view: contact %q, next %q, %d methods", d.Contact, d.Next, len(d.Methods))
	}
	if body := mustOK(t, e.token("aude"), "GET", fmt.Sprintf("/api/v1/rights/%d", id)); strings.Contains(string(body), "person@example.org") ||
		strings.Contains(string(body), "identity_methods") {
		t.Errorf("the auditor's view holds the contact: %s", body)
	}
	if st, body := dpo.json("POST", fmt.Sprintf("/api/v1/rights/%d/process", id), map[string]int{"confirm_faces": 1}); st != http.StatusConflict ||
		!strings.Contains(string(body), "no_identity_check") {
		t.Errorf("process before any step: %d %s", st, body)
	}
	rv := e.findCandidates(dpo, id)
	if rv.Preselected != 1 || len(rv.Candidates) != 1 {
		t.Fatalf("candidates: %+v", rv)
	}
	out := e.actOn(dpo, id, []int64{rv.Candidates[0].FaceID})
	if out.Request.State != "completed" || out.Erased != 1 || out.Proof == nil || !out.Proof.OK {
		t.Fatalf("process: %+v", out)
	}
	if st, body := dpo.json("POST", fmt.Sprintf("/api/v1/rights/%d/process", id), map[string]int{"confirm_faces": 1}); st != http.StatusConflict {
		t.Errorf("process twice: %d %s", st, body)
	}
	st, body := e.token("ivan").multipart("/api/v1/searches", map[string]string{"purpose": "after erasure"}, map[string][][]byte{"photo": {held}})
	if res := decode[app.SearchView](t, body); st != 200 || res.Match {
		t.Errorf("after erasure the person is still found: %d %s", st, body)
	}
}

// TestScheduledPurge: the server's housekeeping deletes what is past its
// retention period, audited as the server, and removes it from the index.
func TestScheduledPurge(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.ingest(e.token("olga"), e.declareSource(e.token("olga")))
	ctx := context.Background()
	if n := vindex.Count(e.srv.cfg.Index.Index); n != 3 {
		t.Fatalf("index holds %d faces", n)
	}
	e.srv.housekeeping(ctx) // nothing is due yet
	if n, err := e.data.DB.FaceCount(ctx); err != nil || n != 3 {
		t.Fatalf("before the deadline: %d faces, %v", n, err)
	}
	e.srv.cfg.Now = func() time.Time { return time.Now().Add(31 * 24 * time.Hour) } // the source keeps 30 days
	e.srv.housekeeping(ctx)
	if n, err := e.data.DB.FaceCount(ctx); err != nil || n != 0 {
		t.Fatalf("after the deadline: %d faces, %v", n, err)
	}
	if n := vindex.Count(e.srv.cfg.Index.Index); n != 0 {
		t.Errorf("index still holds %d faces", n)
	}
	es, err := e.data.DB.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range es {
		found = found || (a.Actor == "server:retention" && a.Action == "image.purge")
	}
	if !found {
		t.Error("no audit entry of the server's purge")
	}
}

// TestVideoFaceCrop: the crop of a face found in a video is cut from the
// frame at its time code, read from the video now.
func TestVideoFaceCrop(t *testing.T) {
	ffmpeg := modeltest.FFmpeg(t)
	e := newTestEnv(t, nil)
	dir := filepath.Join(e.dir, "videos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Red for the first second, then blue.
	cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi",
		"-i", "nullsrc=s=160x120:r=10,format=rgb24,geq=r='if(lt(T,1),255,0)':g=0:b='if(lt(T,1),0,255)'",
		"-t", "2", "-pix_fmt", "yuv420p", "file:"+filepath.Join(dir, "clip.mp4"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	ctx := context.Background()
	src, err := app.Declaration{Kind: "video", Path: dir, Controller: "c", Purpose: "p", LegalBasis: "consent",
		Art9: "explicit-consent", Jurisdiction: "FR", Retention: "30d"}.Validate("")
	if err != nil {
		t.Fatal(err)
	}
	id, err := app.AddSource(ctx, e.data.DB, src, "test")
	if err != nil {
		t.Fatal(err)
	}
	src.ID = id
	for _, tc := range []struct {
		at   time.Duration
		blue bool
	}{{300 * time.Millisecond, false}, {1500 * time.Millisecond, true}} {
		at := tc.at
		ref := store.FaceRef{Face: store.Face{ID: 1, Box: face.Box{X: 60, Y: 40, W: 40, H: 40}, TimeCode: &at}, SourceID: id, Locator: "clip.mp4"}
		b, err := e.srv.crop(ctx, ref)
		if err != nil {
			t.Fatalf("crop at %v: %v", at, err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r, _, bl, _ := img.At(img.Bounds().Dx()/2, img.Bounds().Dy()/2).RGBA()
		if (bl > r) != tc.blue {
			t.Errorf("crop at %v: centre r=%d b=%d, want blue=%v", at, r>>8, bl>>8, tc.blue)
		}
	}

	// With a memory budget, the frame's share (its stored size) is held
	// while it is decoded: refused when it cannot fit, served when it can.
	imgID, _, err := e.data.DB.AddImage(ctx, store.Image{SourceID: id, SHA256: sha256.Sum256([]byte("clip")), Locator: "clip.mp4",
		SizeBytes: 1, Width: 160, Height: 120}, []store.Face{{Box: face.Box{X: 60, Y: 40, W: 40, H: 40}, ModelID: "m", Dim: 4, Template: []byte{1}}})
	if err != nil {
		t.Fatal(err)
	}
	at := 300 * time.Millisecond
	ref := store.FaceRef{Face: store.Face{ID: 1, ImageID: imgID, Box: face.Box{X: 60, Y: 40, W: 40, H: 40}, TimeCode: &at}, SourceID: id, Locator: "clip.mp4"}
	e.srv.cfg.Budget = membudget.New(64 << 10)
	if _, err := e.srv.crop(ctx, ref); !errors.Is(err, membudget.ErrOverBudget) {
		t.Errorf("a frame over the budget: %v", err)
	}
	e.srv.cfg.Budget = membudget.New(1 << 20)
	if _, err := e.srv.crop(ctx, ref); err != nil || e.srv.cfg.Budget.InUse() != 0 {
		t.Errorf("a frame within the budget: %v, %d bytes left held", err, e.srv.cfg.Budget.InUse())
	}
}
