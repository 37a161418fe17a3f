package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/store"
)

// lookalikeModel is fakeModel with faces whose similarities the test
// chooses: a photo of one of its colours has the face of that colour's
// template. Other photos have fakeModel's faces, made orthogonal to the
// chosen templates, so that they are never candidates.
type lookalikeModel struct {
	fakeModel
	faces map[color.RGBA][]float32
}

// lookalikeDims are the dimensions the chosen templates use.
const lookalikeDims = 5

func (m lookalikeModel) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	an, err := m.fakeModel.Analyze(ctx, data)
	if err != nil || len(an.Faces) == 0 {
		return an, err
	}
	d, err := imageproc.Decode(data, imageproc.DecodeOptions{})
	if err != nil {
		return face.Analysis{}, err
	}
	px := d.Img.Pix
	if t, ok := m.faces[color.RGBA{px[0], px[1], px[2], 0}]; ok {
		an.Faces[0].Embedding = face.Normalize(slices.Clone(t))
		return an, nil
	}
	v := an.Faces[0].Embedding
	clear(v[:lookalikeDims])
	an.Faces[0].Embedding = face.Normalize(v)
	return an, nil
}

// unit is a template of the lookalike model at cosine cos with e0, the
// rest along axis.
func unit(cos float64, axis int) []float32 {
	v := make([]float32, fakeDim)
	v[0] = float32(cos)
	v[axis] += float32(math.Sqrt(1 - cos*cos))
	return v
}

// The colours of the rights tests' photos.
var (
	colourSelfie   = color.RGBA{240, 200, 160, 0} // the requester's selfie: e0
	colourStranger = color.RGBA{60, 60, 200, 0}   // a stranger's selfie: e4
)

// rightsPhotos are the photos of the rights tests' collection, with their
// templates' cosine to the selfie: the person twice (pre-selected), a
// lookalike in the probable band and one in the weak band (candidates, not
// pre-selected), and a stranger (not a candidate).
var rightsPhotos = []struct {
	name   string
	colour color.RGBA
	t      []float32
}{
	{"person.png", color.RGBA{220, 40, 40, 0}, unit(1, 1)},
	{"person-again.png", color.RGBA{40, 220, 40, 0}, unit(0.97, 1)},
	{"lookalike.png", color.RGBA{40, 40, 220, 0}, unit(0.30, 2)},
	{"faint.png", color.RGBA{220, 220, 40, 0}, unit(0.22, 2)},
	{"stranger.png", color.RGBA{40, 220, 220, 0}, unit(0, 3)},
}

// rightsEnv is a server with the rights tests' collection ingested and
// users olga (operator), ivan (investigator), dora (DPO) and aude
// (auditor); faces maps each photo to its face's id.
type rightsEnv struct {
	*testEnv
	faces map[string]int64
}

func newRightsEnv(t *testing.T) *rightsEnv {
	t.Helper()
	m := lookalikeModel{faces: map[color.RGBA][]float32{colourSelfie: unit(1, 1), colourStranger: unit(0, 4)}}
	for _, p := range rightsPhotos {
		m.faces[p.colour] = p.t
	}
	e := newTestEnv(t, m)
	e.srv.logins = newLimiter(1000, time.Minute)
	for _, p := range rightsPhotos {
		if err := os.WriteFile(filepath.Join(e.photos, p.name), testPNG(t, p.colour), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.addUser("olga", operator)
	e.addUser("ivan", investigator)
	e.addUser("dora", dpo)
	e.addUser("aude", auditor)
	op := e.login("olga")
	if j := e.ingest(op, e.declareSource(op)); j.Faces != 3+len(rightsPhotos) {
		t.Fatalf("ingest: %+v", j)
	}
	ids := make([]int64, 20)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	refs, err := e.data.DB.FaceRefs(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	re := &rightsEnv{testEnv: e, faces: map[string]int64{}}
	for id, ref := range refs {
		re.faces[filepath.Base(ref.Locator)] = id
	}
	return re
}

// ask registers a request of kind through the portal with a selfie of
// colour c, and returns its id.
func (e *rightsEnv) ask(kind string, c color.RGBA) int64 {
	e.t.Helper()
	st, body := e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": kind, "contact": "jane@example.org"},
		map[string][][]byte{"selfie": {testPNG(e.t, c)}})
	if st != http.StatusCreated {
		e.t.Fatalf("portal request: %d %s", st, body)
	}
	var id int64
	if _, err := fmt.Sscanf(decode[portalAnswer](e.t, body).Reference, "R-%d", &id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// candRow returns the candidate row of face fid on a request's page, or "".
func candRow(page string, fid int64) string {
	m := regexp.MustCompile(fmt.Sprintf(`(?s)<tr id="cand-%d"[^>]*>.*?</tr>`, fid)).FindString(page)
	return m
}

// checked reports whether face fid's checkbox is ticked on the page.
func checked(page string, fid int64) bool {
	return regexp.MustCompile(fmt.Sprintf(`<input type="checkbox" name="face" value="%d" checked>`, fid)).MatchString(page)
}

// wantRedirect checks that a form answered with a redirect to the
// request's page with notice, and returns the page it leads to.
func wantRedirect(t *testing.T, c *webSession, what string, got response, id int64, notice string) response {
	t.Helper()
	loc := got.header.Get("Location")
	if got.status != http.StatusSeeOther || !strings.HasPrefix(loc, fmt.Sprintf("/rights/%d?", id)) || !strings.Contains(loc, "notice="+notice) {
		t.Fatalf("%s: %d to %q, want 303 to the request's page with notice %s: %.1500s", what, got.status, loc, notice, got.body)
	}
	page := c.get(loc)
	if page.status != http.StatusOK {
		t.Fatalf("%s: the request's page: %d %.1500s", what, page.status, page.body)
	}
	checkHTML(t, what, page.body)
	return page
}

// TestConsoleRightsErasure walks an erasure through its page: the
// candidates with their pre-selection, a review that changes it, acting
// refused without an identity check, the confirmation step, the outcome
// with its proof and the Art. 19 notices, and the sealed record; an
// auditor reads the page without what is the DPO's only.
func TestConsoleRightsErasure(t *testing.T) {
	e := newRightsEnv(t)
	person, again, lookalike, faint, stranger := e.faces["person.png"], e.faces["person-again.png"], e.faces["lookalike.png"],
		e.faces["faint.png"], e.faces["stranger.png"]
	// A search returns the person's face: its users must be told of the erasure.
	st, body := e.login("ivan").multipart("/api/v1/searches", map[string]string{"purpose": "rights test"},
		map[string][][]byte{"photo": {testPNG(t, rightsPhotos[0].colour)}})
	if st != http.StatusOK {
		t.Fatalf("search: %d %s", st, body)
	}
	searchID := decode[struct {
		SearchID int64 `json:"search_id"`
	}](t, body).SearchID
	id := e.ask("erasure", colourSelfie)
	page := fmt.Sprintf("/rights/%d", id)
	dora, aude := e.signIn("dora"), e.signIn("aude")

	// The queue links to the page and says what is next; it acts on nothing.
	q := dora.get("/rights")
	if !strings.Contains(q.body, `href="`+page+`"`) || !strings.Contains(q.body, "find the candidates") || strings.Contains(q.body, "/process") {
		t.Errorf("queue: %.3000s", q.body)
	}
	// The register form checks the selfies' size before sending (app.js),
	// against the server's own limit.
	mustContain(t, "the register form", q.body, fmt.Sprintf(`data-max-bytes="%d"`, e.srv.cfg.MaxUpload), `src="/static/app.js`)
	got := dora.get(page)
	checkHTML(t, "request page", got.body)
	for _, want := range []string{"<h1>Rights request R-", "jane@example.org", `id="next-step"`, "Find the candidates", "Europe/Paris",
		fmt.Sprintf(`src="/api/v1/rights/%d/selfies/1"`, id)} {
		if !strings.Contains(got.body, want) {
			t.Errorf("request page lacks %q: %.4000s", want, got.body)
		}
	}
	if r := dora.get(fmt.Sprintf("/api/v1/rights/%d/selfies/1", id)); r.status != http.StatusOK || r.header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("selfie crop: %d %s", r.status, r.header.Get("Content-Type"))
	}

	// Acting before anything else: the step says what is missing, and
	// posting anyway says why nothing is done.
	step := dora.get(page + "/process")
	if step.status != http.StatusOK || !strings.Contains(step.body, "Nothing can be done yet") || !strings.Contains(step.body, "find the candidates") ||
		!strings.Contains(step.body, "identity was established") || strings.Contains(step.body, `name="confirm_faces"`) {
		t.Errorf("confirmation step before the review: %d %.3000s", step.status, step.body)
	}
	got = dora.post(page+"/process", url.Values{"confirm_faces": {"0"}})
	if got.status != http.StatusConflict || !strings.Contains(got.body, "identity check is not recorded") {
		t.Errorf("act without identity check: %d %.3000s", got.status, got.body)
	}
	checkHTML(t, "act without identity check", got.body)

	// The candidates, with the pre-selection.
	got = wantRedirect(t, dora, "find", dora.post(page+"/candidates", nil), id, "candidates-found")
	for _, f := range []int64{person, again, lookalike, faint} {
		if candRow(got.body, f) == "" {
			t.Errorf("face %d is not a candidate: %.6000s", f, got.body)
		}
	}
	if candRow(got.body, stranger) != "" {
		t.Errorf("the stranger's face %d is a candidate", stranger)
	}
	for f, want := range map[int64]bool{person: true, again: true, lookalike: false, faint: false} {
		if checked(got.body, f) != want {
			t.Errorf("face %d ticked = %v, want %v (the pre-selection)", f, !want, want)
		}
		below := strings.Contains(candRow(got.body, f), "below the strict operating point — not pre-selected")
		if below == want {
			t.Errorf("face %d marked below the strict point = %v", f, below)
		}
	}
	if !strings.Contains(got.body, "Not reviewed yet") || !strings.Contains(got.body, "review the candidates") {
		t.Errorf("the set is not shown as unreviewed: %.4000s", got.body)
	}
	// The page speaks the request's zone (Europe/Paris), not UTC.
	if summary := between(got.body, `id="review-summary"`, "</p>"); !strings.Contains(summary, " CET") && !strings.Contains(summary, " CEST") ||
		strings.Contains(summary, "UTC") {
		t.Errorf("the review's time is not in the request's zone: %s", summary)
	}
	for _, suffix := range []string{"crop", "image"} {
		if r := dora.get(fmt.Sprintf("/api/v1/rights/%d/faces/%d/%s", id, lookalike, suffix)); r.status != http.StatusOK {
			t.Errorf("candidate's %s: %d", suffix, r.status)
		}
	}

	// The auditor reads the page, without the contact, the selfies or the
	// candidates, and cannot act.
	got = aude.get(page)
	checkHTML(t, "auditor's page", got.body)
	if got.status != http.StatusOK || strings.Contains(got.body, "jane@example.org") || strings.Contains(got.body, `id="cand-`) ||
		strings.Contains(got.body, "/selfies/") || strings.Contains(got.body, `method="post" action="/rights/`) || !strings.Contains(got.body, "4 candidates") {
		t.Errorf("auditor's page: %d %.5000s", got.status, got.body)
	}
	for _, path := range []string{"/candidates", "/review", "/identity", "/process", "/refuse", "/extend", "/notices", "/lift"} {
		if r := aude.post(page+path, url.Values{"reason": {"x"}}); r.status != http.StatusForbidden {
			t.Errorf("auditor POST %s: %d", path, r.status)
		}
	}
	for _, path := range []string{"/record", "/process"} {
		if r := aude.get(page + path); r.status != http.StatusForbidden {
			t.Errorf("auditor GET %s: %d", path, r.status)
		}
	}

	// The review: the second photo of the person out, the lookalike in.
	got = dora.post(page+"/review", url.Values{"face": {fmt.Sprint(person), fmt.Sprint(lookalike)}, "add": {"12, x"}})
	if got.status != http.StatusBadRequest || !strings.Contains(got.body, `&#34;x&#34; is not a face id`) || !strings.Contains(got.body, `value="12, x"`) {
		t.Errorf("review with a bad id: %d %.3000s", got.status, got.body)
	}
	got = wantRedirect(t, dora, "review", dora.post(page+"/review", url.Values{"face": {fmt.Sprint(person), fmt.Sprint(lookalike)}}), id, "reviewed")
	for f, want := range map[int64]bool{person: true, again: false, lookalike: true, faint: false} {
		if checked(got.body, f) != want {
			t.Errorf("after the review, face %d ticked = %v, want %v", f, !want, want)
		}
	}
	if !strings.Contains(got.body, "Reviewed by dora") || !strings.Contains(got.body, "2 faces selected") {
		t.Errorf("review not shown: %.5000s", got.body)
	}

	// The identity check; a method that needs a note needs it.
	got = dora.post(page+"/identity", url.Values{"method": {"other"}, "note": {" "}})
	if got.status != http.StatusBadRequest || !strings.Contains(got.body, "say how in the note") {
		t.Errorf("identity without its note: %d %.3000s", got.status, got.body)
	}
	got = wantRedirect(t, dora, "identity", dora.post(page+"/identity", url.Values{"method": {"id-document"}, "note": {"passport seen"}}), id, "identity")
	if !strings.Contains(got.body, "passport seen") || !strings.Contains(got.body, "Act on the reviewed set.") {
		t.Errorf("identity not shown: %.5000s", got.body)
	}

	// The confirmation step says what will happen, with the number.
	step = dora.get(page + "/process")
	checkHTML(t, "confirmation step", step.body)
	if !strings.Contains(step.body, "Erase 2 faces (in 2 images)") || !strings.Contains(step.body, "This cannot be undone.") ||
		!strings.Contains(step.body, `name="confirm_faces" value="2"`) || !strings.Contains(step.body, "1 search returned some of them") {
		t.Errorf("confirmation step: %.3000s", step.body)
	}
	got = dora.post(page+"/process", url.Values{"confirm_faces": {"3"}})
	if got.status != http.StatusConflict || !strings.Contains(got.body, "look at the review again") {
		t.Errorf("act on a number not shown: %d %.3000s", got.status, got.body)
	}
	got = dora.post(page+"/process", nil)
	if got.status != http.StatusBadRequest || !strings.Contains(got.body, "confirmation step") {
		t.Errorf("act without confirming: %d %.3000s", got.status, got.body)
	}
	got = wantRedirect(t, dora, "process", dora.post(page+"/process", url.Values{"confirm_faces": {"2"}}), id, "processed")
	for _, want := range []string{"Erased 2 faces", "Proof of erasure", "The proof holds.", "Searches to notify", `id="record-link"`,
		"opening it is recorded in the audit log"} {
		if !strings.Contains(got.body, want) {
			t.Errorf("outcome lacks %q: %.6000s", want, got.body)
		}
	}
	if strings.Contains(got.body, `id="cand-`) || strings.Contains(got.body, `id="next-step"`) {
		t.Errorf("a closed request shows candidates or a next step")
	}
	for f, want := range map[int64]bool{person: false, again: true, lookalike: false, faint: true} {
		if refs, err := e.data.DB.FaceRefs(context.Background(), []int64{f}); err != nil || (len(refs) == 1) != want {
			t.Errorf("face %d kept = %v, want %v (%v)", f, len(refs) == 1, want, err)
		}
	}

	// Art. 19: the search's users are told.
	got = wantRedirect(t, dora, "notice", dora.post(page+"/notices", url.Values{"search_id": {fmt.Sprint(searchID)}}), id, "notified")
	if !strings.Contains(got.body, "recorded by dora") || strings.Contains(got.body, `class="button small notice-sent"`) {
		t.Errorf("notice not recorded: %.5000s", got.body)
	}
	if got := dora.post(page+"/notices", url.Values{"search_id": {"999"}}); got.status != http.StatusBadRequest {
		t.Errorf("notice of another search: %d", got.status)
	}

	// The sealed record: the faces acted on and the candidates left out.
	rec := dora.get(page + "/record")
	checkHTML(t, "record", rec.body)
	faces := regexp.MustCompile(`(?s)<table[^>]*id="record-faces".*?</table>`).FindString(rec.body)
	others := regexp.MustCompile(`(?s)<table[^>]*id="record-others".*?</table>`).FindString(rec.body)
	for f, inFaces := range map[int64]bool{person: true, lookalike: true, again: false, faint: false} {
		tag := fmt.Sprintf(`data-face="%d"`, f)
		if strings.Contains(faces, tag) != inFaces || strings.Contains(others, tag) == inFaces {
			t.Errorf("face %d in the record's faces = %v, want %v: %.4000s", f, strings.Contains(faces, tag), inFaces, rec.body)
		}
	}
	if !strings.Contains(rec.body, "person.png") || !strings.Contains(others, "pre-selected, removed by the DPO") {
		t.Errorf("record: %.4000s", rec.body)
	}
	entries, err := e.data.DB.AuditEntries(context.Background(), 0, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	reads := slices.DeleteFunc(entries, func(a store.AuditEntry) bool { return a.Action != "rights.record-read" })
	if len(reads) != 1 || reads[0].Actor != "dora" || reads[0].Object != fmt.Sprintf("rights/%d", id) {
		t.Errorf("record readings audited: %+v", reads)
	}

	// The auditor reads the outcome, not the record.
	got = aude.get(page)
	if got.status != http.StatusOK || !strings.Contains(got.body, "Erased 2 faces") || strings.Contains(got.body, `id="record-link"`) {
		t.Errorf("auditor's outcome: %d %.5000s", got.status, got.body)
	}
}

// TestConsoleRightsAccess walks an access request to its package, and
// one of a person not held, which answers that nothing is held.
func TestConsoleRightsAccess(t *testing.T) {
	e := newRightsEnv(t)
	person, again := e.faces["person.png"], e.faces["person-again.png"]
	id := e.ask("access", colourSelfie)
	page := fmt.Sprintf("/rights/%d", id)
	dora := e.signIn("dora")
	wantRedirect(t, dora, "find", dora.post(page+"/candidates", nil), id, "candidates-found")
	// The pre-selection, saved as it is.
	wantRedirect(t, dora, "review", dora.post(page+"/review", url.Values{"face": {fmt.Sprint(person), fmt.Sprint(again)}}), id, "reviewed")
	wantRedirect(t, dora, "identity", dora.post(page+"/identity", url.Values{"method": {"known-account"}}), id, "identity")
	step := dora.get(page + "/process")
	if !strings.Contains(step.body, "Build the access package with 2 faces (in 2 images); other people&#39;s faces in the same images stay blurred") ||
		!strings.Contains(step.body, `name="confirm_faces" value="2"`) || strings.Contains(step.body, "cannot be undone") {
		t.Errorf("confirmation step: %.3000s", step.body)
	}
	got := wantRedirect(t, dora, "process", dora.post(page+"/process", url.Values{"confirm_faces": {"2"}}), id, "processed")
	if !strings.Contains(got.body, fmt.Sprintf(`href="/api/v1/rights/%d/package"`, id)) || !strings.Contains(got.body, "The access package holds 2 faces") ||
		!strings.Contains(got.body, `id="package-sha"`) {
		t.Errorf("outcome: %.5000s", got.body)
	}
	pkg := dora.get(fmt.Sprintf("/api/v1/rights/%d/package", id))
	if pkg.status != http.StatusOK || pkg.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("package: %d %s", pkg.status, pkg.header.Get("Content-Type"))
	}
	zr, err := zip.NewReader(bytes.NewReader([]byte(pkg.body)), int64(len(pkg.body)))
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Faces []struct {
			FaceID int64 `json:"face_id"`
		} `json:"faces"`
	}
	for _, f := range zr.File {
		if f.Name != "report.json" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || json.Unmarshal(b, &report) != nil {
			t.Fatalf("report.json: %v %s", err, b)
		}
	}
	var got2 []int64
	for _, f := range report.Faces {
		got2 = append(got2, f.FaceID)
	}
	slices.Sort(got2)
	if want := []int64{min(person, again), max(person, again)}; !slices.Equal(got2, want) {
		t.Errorf("the package's faces = %v, want %v", got2, want)
	}

	// A person not held: no candidate; the answer says nothing is held.
	id = e.ask("access", colourStranger)
	page = fmt.Sprintf("/rights/%d", id)
	got = wantRedirect(t, dora, "find", dora.post(page+"/candidates", nil), id, "candidates-found")
	if !strings.Contains(got.body, `id="no-candidates"`) {
		t.Errorf("no candidates not said: %.4000s", got.body)
	}
	wantRedirect(t, dora, "review", dora.post(page+"/review", nil), id, "reviewed")
	wantRedirect(t, dora, "identity", dora.post(page+"/identity", url.Values{"method": {"in-person"}}), id, "identity")
	step = dora.get(page + "/process")
	if !strings.Contains(step.body, "No face is selected: the answer will say no data is held about the person.") ||
		!strings.Contains(step.body, `name="confirm_faces" value="0"`) {
		t.Errorf("confirmation step with no face: %.3000s", step.body)
	}
	got = wantRedirect(t, dora, "process", dora.post(page+"/process", url.Values{"confirm_faces": {"0"}}), id, "processed")
	if !strings.Contains(got.body, "No face was selected") {
		t.Errorf("outcome with no face: %.4000s", got.body)
	}
}

// TestConsoleRightsRestriction: a restriction is lifted from its page,
// and only while in force; a refusal needs its reason; selfies of two
// people refuse the request when its candidates are looked for.
func TestConsoleRightsRestriction(t *testing.T) {
	e := newRightsEnv(t)
	id := e.ask("restriction", colourSelfie)
	page := fmt.Sprintf("/rights/%d", id)
	dora := e.signIn("dora")
	wantRedirect(t, dora, "find", dora.post(page+"/candidates", nil), id, "candidates-found")
	wantRedirect(t, dora, "review", dora.post(page+"/review", url.Values{"face": {fmt.Sprint(e.faces["person.png"])}}), id, "reviewed")
	wantRedirect(t, dora, "identity", dora.post(page+"/identity", url.Values{"method": {"known-account"}}), id, "identity")
	if step := dora.get(page + "/process"); !strings.Contains(step.body, "Hide 1 face (in 1 image) from every search until the restriction is lifted") {
		t.Errorf("confirmation step: %.3000s", step.body)
	}
	got := wantRedirect(t, dora, "process", dora.post(page+"/process", url.Values{"confirm_faces": {"1"}}), id, "processed")
	if !strings.Contains(got.body, `id="lift"`) || !strings.Contains(got.body, "until the restriction is lifted") {
		t.Errorf("restriction in force: %.5000s", got.body)
	}
	if q := dora.get("/rights"); !strings.Contains(q.body, fmt.Sprintf(`action="/rights/%d/lift"`, id)) {
		t.Errorf("queue: no lift button for a restriction in force")
	}
	got = wantRedirect(t, dora, "lift", dora.post(page+"/lift", nil), id, "lifted")
	if strings.Contains(got.body, `id="lift"`) || !strings.Contains(got.body, "the restriction is lifted") {
		t.Errorf("lifted restriction: %.5000s", got.body)
	}
	if q := dora.get("/rights"); strings.Contains(q.body, fmt.Sprintf(`action="/rights/%d/lift"`, id)) {
		t.Errorf("queue: a lift button for a lifted restriction")
	}

	// An extension is shown with its reason; then a refusal needs a
	// reason, which the page then shows.
	id = e.ask("erasure", colourSelfie)
	page = fmt.Sprintf("/rights/%d", id)
	got = wantRedirect(t, dora, "extend", dora.post(page+"/extend", url.Values{"months": {"1"}, "reason": {"many collections to search"},
		"notice_sent": {"1"}}), id, "extended")
	if ext := regexp.MustCompile(`(?s)<dd id="extension">.*?</dd>`).FindString(got.body); !strings.Contains(ext, "many collections to search") ||
		!strings.Contains(ext, "the person was told on") || strings.Contains(got.body, `id="extend-form"`) {
		t.Errorf("extension: %q %.4000s", ext, got.body)
	}
	if got := dora.post(page+"/refuse", url.Values{"reason": {"  "}}); got.status != http.StatusBadRequest || !strings.Contains(got.body, "Give the reason") {
		t.Errorf("refuse without a reason: %d %.2000s", got.status, got.body)
	}
	got = wantRedirect(t, dora, "refuse", dora.post(page+"/refuse", url.Values{"reason": {"the identity could not be established"}}), id, "refused")
	if !strings.Contains(got.body, "the identity could not be established") || strings.Contains(got.body, `id="act-link"`) {
		t.Errorf("refused request: %.4000s", got.body)
	}

	st, body := e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": "erasure", "contact": "jane@example.org"},
		map[string][][]byte{"selfie": {testPNG(t, colourSelfie), testPNG(t, colourStranger)}})
	if st != http.StatusCreated {
		t.Fatalf("portal request: %d %s", st, body)
	}
	if _, err := fmt.Sscanf(decode[portalAnswer](t, body).Reference, "R-%d", &id); err != nil {
		t.Fatal(err)
	}
	page = fmt.Sprintf("/rights/%d", id)
	got = wantRedirect(t, dora, "find with two people's selfies", dora.post(page+"/candidates", nil), id, "selfies-refused")
	if !strings.Contains(got.body, "do not show one and the same person") || !strings.Contains(got.body, `id="request-reason"`) ||
		strings.Contains(got.body, `id="cand-`) {
		t.Errorf("selfies of two people: %.4000s", got.body)
	}
}

// between returns the part of s from the first start to the next end.
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}
