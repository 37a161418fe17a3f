package server

import (
	"context"
	"fmt"
	"html"
	"image/color"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/store"
)

// portalAsk registers a request of kind through the portal's API and
// returns its answer.
func portalAsk(t *testing.T, e *testEnv, kind string) portalAnswer {
	t.Helper()
	st, body := e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": kind, "contact": "person@example.org"},
		map[string][][]byte{"selfie": {testPNG(t, color.RGBA{120, 40, 200, 0})}})
	if st != http.StatusCreated {
		t.Fatalf("portal %s: %d %s", kind, st, body)
	}
	conforms(t, "PortalAnswer", body)
	return decode[portalAnswer](t, body)
}

// refID is the id of a reference R-<id>.
func refID(t *testing.T, ref string) int64 {
	t.Helper()
	var id int64
	if _, err := fmt.Sscanf(ref, "R-%d", &id); err != nil {
		t.Fatalf("reference %q: %v", ref, err)
	}
	return id
}

var (
	statusCodeRE = regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}$`)
	stateRE      = regexp.MustCompile(`<dd id="status-state"[^>]*>([^<]*)</dd>`)
	dueRE        = regexp.MustCompile(`<dd id="due">([^<]*)</dd>`)
)

// TestPortalRestriction: restriction is the portal's fourth choice, in the
// form, the page's explanations and the API.
func TestPortalRestriction(t *testing.T) {
	e := newTestEnv(t, nil)
	form := e.anon().get("/portal")
	checkHTML(t, "portal", form.body)
	for _, want := range []string{
		`name="kind" value="restriction"`, "Hide my data from every search for now", "(restriction, Art. 18)",
		// What the controller may ask to confirm the identity: the
		// public wording of the default methods that have one.
		"Before answering, the controller may ask you to confirm that you are the person in the photos, for example:",
		"an identity document, shown or sent as a copy (it is not kept)", "coming in person",
		`href="/portal/status"`, `src="/static/portal.js?v=`, `id="selfie-checks"`, `id="portal-submit"`,
	} {
		if !strings.Contains(form.body, want) {
			t.Errorf("portal form lacks %q", want)
		}
	}
	if strings.Contains(form.body, "say how in the note") || strings.Contains(form.body, "was seen and matches") {
		t.Error("the portal lists the identity method that needs the DPO's note")
	}
	if js := e.anon().get(regexp.MustCompile(`/static/portal\.js\?v=[0-9a-f]+`).FindString(form.body)); js.status != http.StatusOK ||
		!strings.Contains(js.body, "/api/v1/portal/selfies-check") {
		t.Errorf("portal.js: %d %.200s", js.status, js.body)
	}

	a := portalAsk(t, e, "restriction")
	if a.Kind != "restriction" || !statusCodeRE.MatchString(a.StatusCode) || !strings.Contains(a.Message, "/portal/status") {
		t.Errorf("restriction through the API: %+v", a)
	}
	req, err := e.data.DB.RightsRequest(context.Background(), refID(t, a.Reference))
	if err != nil || req.Kind != dsr.Restriction {
		t.Errorf("registered %+v, %v; want a restriction", req, err)
	}

	got := e.anon().upload("/portal", url.Values{"kind": {"restriction"}, "contact": {"someone@example.org"}},
		map[string][][]byte{"selfie": {testPNG(t, color.RGBA{10, 120, 60, 0})}})
	checkHTML(t, "portal answer", got.body)
	if got.status != http.StatusCreated || !strings.Contains(got.body, "hide my data from every search for now (restriction)") {
		t.Errorf("restriction through the page: %d %.2000s", got.status, got.body)
	}
	code := regexp.MustCompile(`id="status-code">([^<]*)<`).FindStringSubmatch(got.body)
	if code == nil || !statusCodeRE.MatchString(code[1]) ||
		!strings.Contains(got.body, "Keep it: with your reference it shows how your request stands at") {
		t.Errorf("the answer page shows no status code: %.2000s", got.body)
	}
	if strings.Contains(got.body, "portal.js") {
		t.Error("the answer page loads the form's script")
	}
}

// TestPortalStatus: the status page and its API show a request's state and
// due date to whoever has its reference and status code, and the same
// neutral 404 for anything else.
func TestPortalStatus(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	a := portalAsk(t, e, "access")
	other := portalAsk(t, e, "erasure")
	id := refID(t, a.Reference)
	if a.StatusCode == other.StatusCode {
		t.Fatalf("two requests share the status code %s", a.StatusCode)
	}
	if code, err := e.srv.statusCode(id); err != nil || groupCode(code) != a.StatusCode {
		t.Fatalf("status code of %s: %q, %v; the answer gave %q", a.Reference, code, err, a.StatusCode)
	}

	page := func(ref, code string) response {
		t.Helper()
		got := e.anon().get("/portal/status?" + url.Values{"ref": {ref}, "code": {code}}.Encode())
		checkHTML(t, "status page", got.body)
		return got
	}
	state := func(got response) string {
		t.Helper()
		m := stateRE.FindStringSubmatch(got.body)
		if got.status != http.StatusOK || m == nil {
			t.Fatalf("status page: %d %.2000s", got.status, got.body)
		}
		return html.UnescapeString(m[1])
	}
	apiStatus := func(ref, code string) (int, []byte) {
		t.Helper()
		return e.anon().do("GET", "/api/v1/portal/requests/"+url.PathEscape(ref)+"?"+url.Values{"code": {code}}.Encode(), "", nil)
	}
	wantDue := func(id int64) string {
		t.Helper()
		req, err := e.data.DB.RightsRequest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		loc, err := dsr.Location(req.Zone)
		if err != nil {
			t.Fatal(err)
		}
		return req.Deadline().In(loc).Format("Monday 2 January 2006") + " (" + loc.String() + ")"
	}
	advance := func(id int64, to dsr.State, reason string) {
		t.Helper()
		if _, err := e.data.DB.UpdateRightsRequest(ctx, id, "test", func(r *dsr.Request, now time.Time) error {
			return r.Advance(now, to, reason)
		}); err != nil {
			t.Fatalf("advance %d to %s: %v", id, to, err)
		}
	}

	// The form alone.
	if got := e.anon().get("/portal/status"); got.status != http.StatusOK || !strings.Contains(got.body, `id="status-form"`) ||
		strings.Contains(got.body, `id="status-state"`) {
		t.Errorf("status form: %d %.1000s", got.status, got.body)
	}

	// The code is read in any case, with or without the dash, spaces trimmed.
	lower := strings.ToLower(strings.ReplaceAll(a.StatusCode, "-", ""))
	for _, code := range []string{a.StatusCode, lower, "  " + a.StatusCode + " "} {
		got := page(" "+strings.ToLower(a.Reference), code)
		if s := state(got); s != "received, not yet answered" {
			t.Errorf("code %q: state %q, want received", code, s)
		}
		if m := dueRE.FindStringSubmatch(got.body); m == nil || m[1] != wantDue(id) {
			t.Errorf("due %v, want %q", m, wantDue(id))
		}
		if strings.Contains(got.body, "person@example.org") || strings.Contains(got.body, "access") {
			t.Errorf("the status page shows more than the state and due date: %.2000s", got.body)
		}
	}

	// The state as it moves on: "completed" only once completed.
	for _, step := range []struct {
		to   dsr.State
		want string
	}{
		{dsr.Verified, "being answered"},
		{dsr.InProgress, "being answered"},
		{dsr.Completed, "completed"},
	} {
		if s := state(page(a.Reference, a.StatusCode)); strings.Contains(s, "completed") {
			t.Errorf("before %s the state is %q", step.to, s)
		}
		advance(id, step.to, "")
		if s := state(page(a.Reference, a.StatusCode)); s != step.want {
			t.Errorf("after %s the state is %q, want %q", step.to, s, step.want)
		}
	}
	st, body := apiStatus(a.Reference, a.StatusCode)
	if st != http.StatusOK {
		t.Fatalf("API status: %d %s", st, body)
	}
	conforms(t, "PortalStatus", body)
	js := decode[portalStatusJSON](t, body)
	paris, err := dsr.Location("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	_, off := js.Due.Zone()
	_, wantOff := a.Due.In(paris).Zone()
	if js.Reference != a.Reference || js.State != "completed" || !js.Due.Equal(a.Due) || off != wantOff {
		t.Errorf("API status = %+v, want %s completed due %v in Europe/Paris", js, a.Reference, a.Due.In(paris))
	}

	// Extended: the new due date. Refused: no reason shown.
	oid := refID(t, other.Reference)
	if st, body := apiStatus(other.Reference, other.StatusCode); st != http.StatusOK ||
		decode[portalStatusJSON](t, body).State != "received" {
		t.Errorf("API status of a received request: %d %s", st, body)
	}
	advance(oid, dsr.Verified, "")
	if st, body := apiStatus(other.Reference, other.StatusCode); st != http.StatusOK ||
		decode[portalStatusJSON](t, body).State != "in-progress" {
		t.Errorf("API status of a verified request: %d %s (want in-progress)", st, body)
	}
	firstDue := wantDue(oid)
	if _, err := e.data.DB.UpdateRightsRequest(ctx, oid, "test", func(r *dsr.Request, now time.Time) error {
		return r.Extend(now, 2, "many collections")
	}); err != nil {
		t.Fatal(err)
	}
	got := page(other.Reference, other.StatusCode)
	if m := dueRE.FindStringSubmatch(got.body); state(got) != "deadline extended" || m == nil || m[1] != wantDue(oid) || m[1] == firstDue {
		t.Errorf("extended: state %q, due %v, want the new due date %q (was %q)", state(got), m, wantDue(oid), firstDue)
	}
	if strings.Contains(got.body, "many collections") {
		t.Error("the status page shows the extension's reason")
	}
	advance(oid, dsr.Refused, "the secret reason")
	got = page(other.Reference, other.StatusCode)
	if s := state(got); s != "refused" || strings.Contains(got.body, "secret reason") {
		t.Errorf("refused: state %q: %.2000s", s, got.body)
	}

	// Anything wrong gets the same neutral answer: a wrong code, another
	// request's code, an unknown reference (even with its right code), a
	// malformed one.
	missing, err := e.srv.statusCode(999)
	if err != nil {
		t.Fatal(err)
	}
	wrong := []struct{ name, ref, code string }{
		{"wrong code", a.Reference, "AAAAA-AAAAA"},
		{"another request's code", a.Reference, other.StatusCode},
		{"a shortened code", a.Reference, a.StatusCode[:5]},
		{"unknown reference", "R-999", groupCode(missing)},
		{"malformed reference", "R-one", a.StatusCode},
	}
	var neutral string
	for _, w := range wrong {
		got := page(w.ref, w.code)
		if got.status != http.StatusNotFound || !strings.Contains(got.body, "No request matches this reference and code.") ||
			strings.Contains(got.body, `id="status-state"`) {
			t.Errorf("%s: %d %.1500s", w.name, got.status, got.body)
		}
		// Apart from what was typed, shown again, the pages are the same.
		body := strings.ReplaceAll(strings.ReplaceAll(got.body, `value="`+w.ref+`"`, `value="REF"`), `value="`+w.code+`"`, `value="CODE"`)
		if neutral == "" {
			neutral = body
		} else if body != neutral {
			t.Errorf("%s: the page differs from the other failed look-ups:\n%s\n---\n%s", w.name, body, neutral)
		}
		st, b := apiStatus(w.ref, w.code)
		if st != http.StatusNotFound || string(b) != `{"code":"not_found","message":"no request matches this reference and code"}`+"\n" {
			t.Errorf("API, %s: %d %s", w.name, st, b)
		}
	}
	if st, b := apiStatus(a.Reference, ""); st != http.StatusNotFound {
		t.Errorf("API without a code: %d %s", st, b)
	}
	if got := page(a.Reference, ""); got.status != http.StatusBadRequest || !strings.Contains(got.body, "Give both your reference and your status code.") {
		t.Errorf("page without a code: %d %.1000s", got.status, got.body)
	}

	// Look-ups are rate-limited by client address.
	e.srv.portalStatus = newLimiter(0, time.Hour)
	if got := page(a.Reference, a.StatusCode); got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" ||
		!strings.Contains(got.body, "Too many requests") {
		t.Errorf("rate-limited page: %d %q %.500s", got.status, got.header.Get("Retry-After"), got.body)
	}
	if st, b := apiStatus(a.Reference, a.StatusCode); st != http.StatusTooManyRequests || decode[apiError](t, b).Code != "rate_limited" {
		t.Errorf("rate-limited API: %d %s", st, b)
	}
}

// lowQualityModel finds fakeModel's faces with a poor quality.
type lowQualityModel struct{ fakeModel }

func (m lowQualityModel) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	an, err := m.fakeModel.Analyze(ctx, data)
	for i := range an.Faces {
		an.Faces[i].Quality = 0.12
	}
	return an, err
}

// TestPortalFaceCheck: a selfie is checked before it is sent; nothing is
// stored or audited.
func TestPortalFaceCheck(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := context.Background()
	audit := func() int {
		t.Helper()
		es, err := e.data.DB.AuditEntries(ctx, 1, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	// A member of staff signed in on the same browser checks with the
	// session's CSRF token, as portal.js sends it.
	e.addUser("dora", store.RoleDPO)
	staff := e.login("dora")
	before := audit()
	check := func(c *client, files ...[]byte) (int, faceCheckJSON, []byte) {
		t.Helper()
		st, body := c.multipart("/api/v1/portal/face-check", nil, map[string][][]byte{"selfie": files})
		var out faceCheckJSON
		if st == http.StatusOK {
			conforms(t, "FaceCheck", body)
			out = decode[faceCheckJSON](t, body)
		}
		return st, out, body
	}
	corrupt := append([]byte("\x89PNG\r\n\x1a\n"), []byte("not really a PNG")...)
	for _, tt := range []struct {
		name  string
		photo []byte
		want  faceCheckJSON
	}{
		{"a face", testPNG(t, color.RGBA{200, 10, 10, 0}), faceCheckJSON{Usable: true, Faces: 1, Quality: 0.9}},
		{"no face", testPNG(t, color.RGBA{}), faceCheckJSON{Message: portalErrorMessage(errNoFace)}},
		{"not an image", []byte("%PDF-1.4 a document"), faceCheckJSON{Message: unusableFile("the file is a PDF document, not a photo (gabarit reads " + imageproc.Readable() + ")")}},
		{"a corrupt image", corrupt, faceCheckJSON{Message: unusableFile("the PNG file is damaged or incomplete; it cannot be decoded")}},
	} {
		st, got, body := check(e.anon(), tt.photo)
		if st != http.StatusOK || got != tt.want {
			t.Errorf("%s: %d %s, want %+v", tt.name, st, body, tt.want)
		}
	}
	if !strings.Contains(portalErrorMessage(errNoFace), "We found no face") {
		t.Errorf("no-face message %q", portalErrorMessage(errNoFace))
	}
	if st, _, body := check(e.anon()); st != http.StatusBadRequest {
		t.Errorf("no photo: %d %s", st, body)
	}
	if st, _, body := check(e.anon(), testPNG(t, color.RGBA{1, 2, 3, 0}), testPNG(t, color.RGBA{4, 5, 6, 0})); st != http.StatusBadRequest {
		t.Errorf("two photos: %d %s", st, body)
	}
	if st, got, body := check(staff, testPNG(t, color.RGBA{9, 99, 9, 0})); st != http.StatusOK || !got.Usable {
		t.Errorf("with a session: %d %s", st, body)
	}
	if n := audit(); n != before {
		t.Errorf("face checks wrote %d audit entries", n-before)
	}
	if reqs, err := e.data.DB.RightsRequests(ctx); err != nil || len(reqs) != 0 {
		t.Errorf("face checks registered %d requests (%v)", len(reqs), err)
	}

	// A poor face is usable, with a warning.
	low := newTestEnv(t, lowQualityModel{})
	st, got, body := check(low.anon(), testPNG(t, color.RGBA{200, 10, 10, 0}))
	if st != http.StatusOK || !got.Usable || got.Quality != 0.12 || !strings.Contains(got.Message, "not sharp or frontal enough") {
		t.Errorf("a poor face: %d %s", st, body)
	}

	// Checks are rate-limited by client address.
	e.srv.faceCheck = newLimiter(0, time.Hour)
	if st, _, body := check(e.anon(), testPNG(t, color.RGBA{200, 10, 10, 0})); st != http.StatusTooManyRequests {
		t.Errorf("rate-limited: %d %s", st, body)
	}
}

// TestPortalSelfiesCheck: the selfies are checked together, as the request
// will be: each photo, and whether they show one person.
func TestPortalSelfiesCheck(t *testing.T) {
	e := newTestEnv(t, nil)
	check := func(files ...[]byte) selfiesCheckJSON {
		t.Helper()
		st, body := e.anon().multipart("/api/v1/portal/selfies-check", nil, map[string][][]byte{"selfie": files})
		if st != http.StatusOK {
			t.Fatalf("selfies check: %d %s", st, body)
		}
		conforms(t, "SelfiesCheck", body)
		return decode[selfiesCheckJSON](t, body)
	}
	red, green := testPNG(t, color.RGBA{200, 10, 10, 0}), testPNG(t, color.RGBA{10, 200, 10, 0})
	if got := check(red); len(got.Photos) != 1 || !got.Photos[0].Usable || got.OnePerson != nil {
		t.Errorf("one photo: %+v", got)
	}
	if got := check(red, red); len(got.Photos) != 2 || got.OnePerson == nil || !*got.OnePerson || got.Message != "" {
		t.Errorf("one person twice: %+v", got)
	}
	got := check(red, green, []byte("%PDF-1.4 a document"))
	if len(got.Photos) != 3 || !got.Photos[0].Usable || !got.Photos[1].Usable || got.Photos[2].Usable ||
		got.Photos[2].Message != unusableFile("the file is a PDF document, not a photo (gabarit reads "+imageproc.Readable()+")") {
		t.Errorf("photos: %+v", got.Photos)
	}
	if got.OnePerson == nil || *got.OnePerson || !strings.Contains(got.Message, "would be refused") {
		t.Errorf("two people: %+v", got)
	}
	six := [][]byte{red, red, red, red, red, red}
	if st, body := e.anon().multipart("/api/v1/portal/selfies-check", nil, map[string][][]byte{"selfie": six}); st != http.StatusBadRequest {
		t.Errorf("six photos: %d %s", st, body)
	}
}
