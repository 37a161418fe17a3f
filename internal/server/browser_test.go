//go:build onnx

package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gabarit/internal/app"
	"gabarit/internal/browsertest"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modeltest"
	"gabarit/internal/pipeline"
	"gabarit/internal/setup"
	"gabarit/internal/store"
)

// TestBrowserConsole walks the console and the portal in a headless
// browser with the real models: an operator declares the demo photos and
// ingests them, watching the live progress; an investigator searches a
// group photo for one of its faces; two verifiers confirm a result until it
// is identified; a person makes an access request on the portal with a
// photo of their face; the DPO finds it in the rights queue and opens
// it. Every step is a screenshot, and no page may report a script error or
// a violation of the content security policy.
func TestBrowserConsole(t *testing.T) {
	dirs := modeltest.Installed(t)
	model, err := app.OpenFaces(context.Background(), app.FaceOptions{Cache: dirs.Root, MinFaceFraction: -1}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { model.Close() })
	e := newTestEnv(t, model)
	e.useSamplePhotos(dirs)
	selfie := selfieOf(t, model, filepath.Join(dirs.TestPhotos(), "sample1.jpg"))
	other := selfieOf(t, model, filepath.Join(dirs.TestPhotos(), "sample2.jpg"))
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	e.addUser("vera", store.RoleVerifier)
	e.addUser("victor", store.RoleVerifier)
	e.addUser("dora", store.RoleDPO)
	e.addUser("ada", store.RoleAdmin)

	ctx := browsertest.New(t)
	b := &browser{t: t, ctx: ctx, base: e.ts.URL}

	// The way in, and a failed sign-in.
	b.do(chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS(`a[href="/portal"]`)))
	b.shot("welcome")
	b.do(chromedp.Navigate(b.base+"/sources"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#name"), "olga"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"))
	if _, err := chromedp.Run(ctx, chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`))); err != nil {
		t.Fatal(err)
	}
	b.accept("status of 401") // the browser logs the page's status as an error
	b.do(chromedp.WaitVisible(chromedp.CSS("#page-error")))
	b.expectText("#page-error", "Wrong name or password.")
	b.shot("sign-in-failed")

	// The operator declares the photo folder and ingests it.
	b.signIn("olga")
	b.shot("operator-home")
	b.do(chromedp.Navigate(b.base+"/sources"),
		chromedp.WaitVisible(chromedp.CSS("#declare-form")),
		chromedp.SendKeys(chromedp.CSS("#path"), e.photos),
		chromedp.SendKeys(chromedp.CSS("#controller"), "Example City Police"),
		chromedp.SendKeys(chromedp.CSS("#src-purpose"), "Identification of suspects in open investigations"),
		chromedp.SendKeys(chromedp.CSS("#jurisdiction"), "FR"),
		// Nothing legal is chosen in advance: the operator chooses.
		chromedp.SetValue(chromedp.CSS("#legal_basis"), "public-task"),
		chromedp.SetValue(chromedp.CSS("#art9"), "substantial-public-interest"),
		chromedp.SendKeys(chromedp.CSS("#retention"), "6m"),
	)
	b.shot("declare-form")
	b.do(chromedp.Click(chromedp.CSS(`#declare-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-source="1"]`)))
	b.expectText(".notice.ok", "Source 1 is declared")
	b.shot("source-declared")
	b.do(chromedp.Click(chromedp.CSS(`button[data-ingest="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="1"]`)))
	b.shot("ingest-started")
	b.do(chromedp.WaitVisible(chromedp.CSS(`#jobs tr[data-job="1"][data-state="done"]`)))
	b.poll(`document.querySelector('tr[data-source="1"] [data-count="faces"]').textContent !== "0"`)
	b.expectText(`#jobs tr[data-job="1"]`, "6 / 6 files")
	b.shot("ingest-done")
	b.signOut()

	// The investigator searches one face of a group photo.
	b.signIn("ivan")
	if _, err := chromedp.Run(ctx, chromedp.Navigate(b.base+"/rights")); err != nil {
		t.Fatal(err)
	}
	b.accept("status of 403")
	b.do(chromedp.WaitVisible(chromedp.CSS(".error-page")))
	b.shot("not-allowed")
	b.do(chromedp.Navigate(b.base+"/search"),
		chromedp.WaitVisible(chromedp.CSS("#dropzone")))
	b.shot("search-empty")
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{filepath.Join(e.photos, "sample3.jpg")}),
		chromedp.WaitVisible(chromedp.CSS(`#boxes .box[data-index="1"]`)))
	boxes := run(b, chromedp.Evaluate[int](`document.querySelectorAll("#boxes .box").length`))
	if boxes < 2 {
		t.Fatalf("%d faces drawn on sample3.jpg, want several", boxes)
	}
	b.do(chromedp.Click(chromedp.CSS(`#boxes .box[data-index="1"]`)),
		chromedp.SendKeys(chromedp.CSS("#purpose"), "Identify a witness seen in a group photo"),
		chromedp.SendKeys(chromedp.CSS("#case"), "2025-0147"),
	)
	if sel := run(b, chromedp.Evaluate[string](`document.querySelector("#boxes .box.selected").dataset.index`)); sel != "1" {
		t.Errorf("selected face %q, want 1", sel)
	}
	b.shot("search-faces")
	b.do(chromedp.Click(chromedp.CSS("#search-button")),
		chromedp.WaitVisible(chromedp.CSS("#results .grid img.crop")))
	b.poll(`[...document.querySelectorAll("#results img.crop")].every(i => i.complete && i.naturalWidth > 0)`)
	b.expectText("#results .audit-note", "recorded in the audit log")
	searchHref := run(b, chromedp.Evaluate[string](`document.querySelector("#results .audit-note a").getAttribute("href")`))
	b.expectText("#results #results-count", "match")
	firstSrc := run(b, chromedp.Evaluate[string](`document.querySelector("#results .grid img.crop").getAttribute("src")`))
	faceID := regexp.MustCompile(`/faces/(\d+)/crop`).FindStringSubmatch(firstSrc)
	if !regexp.MustCompile(`^/searches/\d+$`).MatchString(searchHref) || faceID == nil {
		t.Fatalf("search link %q, first crop %q", searchHref, firstSrc)
	}
	if sim := run(b, chromedp.Text(chromedp.CSS("#results .similarity"))); sim < "0.99" {
		t.Errorf("first result's similarity %s: the face searched is in the collection", sim)
	}
	b.do(chromedp.ScrollIntoView(chromedp.CSS("#results")))
	b.shot("search-results")
	b.signOut()

	// Two verifiers confirm the first result.
	for i, name := range []string{"vera", "victor"} {
		b.signIn(name)
		b.do(chromedp.Navigate(b.base+"/searches"),
			chromedp.WaitVisible(chromedp.CSS(`a[href="`+searchHref+`"]`)))
		if i == 0 {
			b.expectText("#searches", "to verify")
			b.shot("searches-list")
		}
		b.do(chromedp.Click(chromedp.CSS(`a[href="`+searchHref+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`a.verify[data-face="`+faceID[1]+`"]`)))
		b.poll(`[...document.querySelectorAll("img.crop")].every(i => i.complete && i.naturalWidth > 0)`)
		if i == 0 {
			b.shot("search-record")
		}
		b.do(chromedp.Click(chromedp.CSS(`a.verify[data-face="`+faceID[1]+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`button.confirm[data-face="`+faceID[1]+`"]`)))
		b.poll(`[...document.querySelectorAll("img.crop")].every(i => i.complete && i.naturalWidth > 0)`)
		if i == 0 {
			b.shot("verification")
		}
		// Confirming goes through a step that says what it means.
		b.do(chromedp.Click(chromedp.CSS(`button.confirm[data-face="`+faceID[1]+`"]`)),
			chromedp.WaitVisible(chromedp.CSS("#statement #confirm-yes")))
		b.expectText("#statement", "is the person searched in search #")
		b.expectText("#statement", "one of the 2 confirmations an identification needs")
		if i == 0 {
			b.shot("confirmation-step")
		}
		b.do(chromedp.Click(chromedp.CSS("#confirm-yes")),
			chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
		b.poll(`[...document.querySelectorAll("img.crop")].every(i => i.complete && i.naturalWidth > 0)`)
		if i == 0 {
			b.expectText("#verdict", "1 of 2 confirmations")
			b.shot("first-confirmation")
		} else {
			b.expectText("#verdict .identified-label", "Identified")
			b.expectText(".notice.ok", "the person is identified")
			b.shot("identified")
		}
		b.signOut()
	}

	// A person asks for access on the portal, without an account. Each
	// photo is checked as it is chosen: one without a face holds the
	// request back.
	b.do(chromedp.Navigate(b.base+"/portal"),
		chromedp.WaitVisible(chromedp.CSS("#portal-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#selfie"), []string{blankPhoto(t)}))
	b.poll(`document.querySelector("#selfie-checks li.bad") !== null`)
	b.expectText("#selfie-checks", "photo 1: We found no face")
	if !run(b, chromedp.Evaluate[bool](`document.querySelector("#portal-submit").disabled`)) {
		t.Error("the request can be sent with a photo without a face")
	}
	b.shot("portal-no-face")
	// Photos of two people would be refused together: said before sending.
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#selfie"), []string{selfie, other}))
	b.poll(`document.querySelector("#selfies-together") !== null`)
	b.expectText("#selfies-together", "would be refused")
	if !run(b, chromedp.Evaluate[bool](`document.querySelector("#portal-submit").disabled`)) {
		t.Error("the request can be sent with photos of two people")
	}
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#selfie"), []string{selfie}),
		chromedp.SendKeys(chromedp.CSS("#contact"), "jane.doe@example.org"),
		chromedp.Click(chromedp.CSS(`input[name="kind"][value="access"]`)),
	)
	b.poll(`document.querySelector("#selfie-checks li.ok, #selfie-checks li.warn") !== null && !document.querySelector("#portal-submit").disabled`)
	b.expectText("#selfie-checks", "photo 1: ")
	b.shot("portal-form")
	b.do(chromedp.Click(chromedp.CSS(`#portal-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#reference")))
	ref := run(b, chromedp.Text(chromedp.CSS("#reference")))
	due := run(b, chromedp.Text(chromedp.CSS("#due")))
	code := run(b, chromedp.Text(chromedp.CSS("#status-code")))
	if !regexp.MustCompile(`^R-\d+$`).MatchString(ref) || due == "" || !regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}$`).MatchString(code) {
		t.Errorf("portal answer: reference %q, due %q, status code %q", ref, due, code)
	}
	b.expectText("#portal-message", "says nothing about whether any data about you is held")
	b.shot("portal-answer")

	// With the reference and the status code, the person sees how the
	// request stands.
	b.do(chromedp.Navigate(b.base+"/portal/status"),
		chromedp.WaitVisible(chromedp.CSS("#status-form")),
		chromedp.SendKeys(chromedp.CSS("#ref"), ref),
		chromedp.SendKeys(chromedp.CSS("#code"), strings.ToLower(code)),
		chromedp.Click(chromedp.CSS(`#status-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#status-state")))
	b.expectText("#status-state", "received, not yet answered")
	b.expectText("#due", due)
	b.shot("portal-status")

	// The DPO finds the request in the queue and opens its page, where it
	// is answered step by step (TestBrowserRights walks the steps).
	b.signIn("dora")
	id := strings.TrimPrefix(ref, "R-")
	row := `tr[data-request="` + id + `"]`
	b.do(chromedp.Navigate(b.base+"/rights"),
		chromedp.WaitVisible(chromedp.CSS(row)))
	b.expectText(row, "access")
	b.expectText(row, "find the candidates")
	b.shot("rights-queue")
	b.do(chromedp.Click(chromedp.CSS(row+" a.request-link")),
		chromedp.WaitVisible(chromedp.CSS("#next-step")))
	b.expectText("#next-step", "Find the candidates")
	b.poll(`[...document.querySelectorAll("#selfies img")].every(i => i.complete && i.naturalWidth > 0)`)
	b.shot("rights-request")
	b.do(chromedp.Navigate(b.base+"/audit"), chromedp.WaitVisible(chromedp.CSS("#verify")))
	b.expectText("#verify", "Intact.")
	b.shot("audit")
	b.do(chromedp.Navigate(b.base+"/records"), chromedp.WaitVisible(chromedp.CSS(".activity")))
	b.shot("records")
	b.signOut()

	// The admin's pages.
	b.signIn("ada")
	b.do(chromedp.Navigate(b.base+"/users"), chromedp.WaitVisible(chromedp.CSS("#users")))
	b.shot("users")
	b.do(chromedp.Navigate(b.base+"/tokens"),
		chromedp.WaitVisible(chromedp.CSS("#token-form")),
		chromedp.SendKeys(chromedp.CSS("#label"), "nightly export"),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#new-token")))
	b.shot("token-created")
	b.signOut()
}

// TestBrowserVerification walks the verification of a search's results
// in a headless browser with the real models: the verifier finds the
// search in the history, opens a result and sees the face searched and the
// candidate side by side, with the band of the match, then rejects it with
// a reason; the screen then shows it rejected, and it can no longer be
// confirmed. Every step is a screenshot.
func TestBrowserVerification(t *testing.T) {
	dirs := modeltest.Installed(t)
	model, err := app.OpenFaces(context.Background(), app.FaceOptions{Cache: dirs.Root, MinFaceFraction: -1}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { model.Close() })
	e := newTestEnv(t, model)
	e.useSamplePhotos(dirs)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	e.addUser("vera", store.RoleVerifier)
	op := e.token("olga")
	if j := e.ingest(op, e.declareSource(op)); j.State != jobDone || j.Faces == 0 {
		t.Fatalf("ingest: %+v", j)
	}
	probe, err := os.ReadFile(filepath.Join(e.photos, "sample1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	st, res, body := e.token("ivan").search(probe, map[string]string{"purpose": "Identify a suspect of a theft", "case": "2025-0199"})
	if st != 200 || len(res.Results) == 0 {
		t.Fatalf("search: %d %s", st, body)
	}
	face := fmt.Sprint(res.Results[0].FaceID)
	record := fmt.Sprintf("/searches/%d", res.SearchID)
	screen := fmt.Sprintf("%s/faces/%s", record, face)

	ctx := browsertest.New(t)
	b := &browser{t: t, ctx: ctx, base: e.ts.URL}
	b.signIn("vera")
	b.do(chromedp.Navigate(b.base+"/searches?case=2025-0199"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="`+record+`"]`)))
	b.expectText(fmt.Sprintf(`tr[data-search="%d"]`, res.SearchID), "to verify")
	b.shot("history")
	b.do(chromedp.Click(chromedp.CSS(`a[href="`+record+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a.verify[data-face="`+face+`"]`)))
	b.expectText("#results-count", "match")
	b.do(chromedp.Click(chromedp.CSS(`a.verify[data-face="`+face+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#probe-crop")),
		chromedp.WaitVisible(chromedp.CSS("#candidate-crop")))
	b.poll(`[...document.querySelectorAll("#probe-crop, #candidate-crop, img.context-img")].every(i => i.complete && i.naturalWidth > 0)`)
	if got := run(b, chromedp.Evaluate[string](`location.pathname`)); got != screen {
		t.Errorf("verification screen at %s, want %s", got, screen)
	}
	// Side by side: the same row, the face searched first.
	if !run(b, chromedp.Evaluate[bool](`(() => {
		const p = document.querySelector("#probe-crop").getBoundingClientRect();
		const c = document.querySelector("#candidate-crop").getBoundingClientRect();
		return Math.abs(p.top - c.top) < 2 && p.right <= c.left && p.width > 100 && c.width > 100;
	})()`)) {
		t.Error("the face searched and the candidate are not side by side")
	}
	band := run(b, chromedp.Evaluate[string](`document.querySelector("#compare .band").textContent`))
	if band != res.Results[0].Band || (band != "strong" && band != "probable") {
		t.Errorf("band %q on the screen, %q in the search", band, res.Results[0].Band)
	}
	b.expectText("#compare .strangers", "strangers expected at this score in a gallery of")
	b.shot("verification-screen")

	// Reject it, with a reason.
	b.do(chromedp.SendKeys(chromedp.CSS("#reject-reason"), "Not the same person: the ears and the hairline differ"))
	b.shot("reject-reason")
	b.do(chromedp.Click(chromedp.CSS(`button.reject[data-face="`+face+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	b.poll(`[...document.querySelectorAll("#probe-crop, #candidate-crop")].every(i => i.complete && i.naturalWidth > 0)`)
	b.expectText(".notice.ok", "Your rejection of face "+face+" is recorded")
	b.expectText("#verdict .rejected-label", "Rejected")
	b.expectText("#verdict .rejections", "the ears and the hairline differ")
	if n := run(b, chromedp.Evaluate[int](`document.querySelectorAll("button.confirm").length`)); n != 0 {
		t.Errorf("%d confirm buttons on a rejected face", n)
	}
	b.shot("rejected")
	b.do(chromedp.Navigate(b.base+screen+"/confirm"), chromedp.WaitVisible(chromedp.CSS("#statement")))
	b.expectText("#statement", "cannot be confirmed")
	b.do(chromedp.Navigate(b.base+"/searches?state=rejected"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="`+record+`"]`)))
	b.expectText(fmt.Sprintf(`tr[data-search="%d"]`, res.SearchID), "1 rejected")
	b.shot("history-rejected")
	b.signOut()
	if cs, err := e.data.DB.Confirmations(context.Background(), res.SearchID); err != nil || len(cs) != 0 {
		t.Errorf("confirmations after the rejection: %v, %v", cs, err)
	}
}

// TestBrowserRights walks an access request from the portal to its
// answer in a headless browser with the real models: a person asks on the
// portal with a selfie; the DPO opens the request from the queue, finds
// the candidates, unticks one and saves the review, records the identity
// check, acts from the confirmation step and downloads the package, whose
// report lists exactly the reviewed faces; the person's status page then
// says the request is completed. Every step is a screenshot.
func TestBrowserRights(t *testing.T) {
	e, model, dirs := samplesEnv(t)
	selfie := selfieOf(t, model, filepath.Join(dirs.TestPhotos(), "sample1.jpg"))
	e.addUser("olga", store.RoleOperator)
	e.addUser("dora", store.RoleDPO)
	op := e.token("olga")
	if j := e.ingest(op, e.declareSource(op)); j.State != jobDone || j.Faces == 0 {
		t.Fatalf("ingest: %+v", j)
	}

	ctx := browsertest.New(t)
	b := &browser{t: t, ctx: ctx, base: e.ts.URL}

	// The person asks for access, and keeps the reference and status code.
	b.do(chromedp.Navigate(b.base+"/portal"),
		chromedp.WaitVisible(chromedp.CSS("#portal-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#selfie"), []string{selfie}),
		chromedp.SendKeys(chromedp.CSS("#contact"), "jane.doe@example.org"),
		chromedp.Click(chromedp.CSS(`input[name="kind"][value="access"]`)))
	// The portal checks the selfie as it is chosen, then lets it be sent.
	b.poll(`document.querySelector("#selfie-checks li.ok, #selfie-checks li.warn") !== null && !document.querySelector("#portal-submit").disabled`)
	b.do(chromedp.Click(chromedp.CSS(`#portal-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#reference")))
	ref := run(b, chromedp.Text(chromedp.CSS("#reference")))
	code := run(b, chromedp.Text(chromedp.CSS("#status-code")))
	id := strings.TrimPrefix(ref, "R-")
	if !regexp.MustCompile(`^\d+$`).MatchString(id) || code == "" {
		t.Fatalf("portal answer: reference %q, status code %q", ref, code)
	}

	// The DPO opens it from the queue.
	b.signIn("dora")
	row := `tr[data-request="` + id + `"]`
	b.do(chromedp.Navigate(b.base+"/rights"),
		chromedp.WaitVisible(chromedp.CSS(row)))
	b.do(chromedp.Click(chromedp.CSS(row+" a.request-link")),
		chromedp.WaitVisible(chromedp.CSS("#next-step")))
	b.expectText("#next-step", "Find the candidates")
	b.expectText("#contact", "jane.doe@example.org")

	// Find the candidates: the pre-selection is ticked.
	b.do(chromedp.Click(chromedp.CSS("#find-candidates")),
		chromedp.WaitVisible(chromedp.CSS("#candidate-table")))
	b.expectText(".notice.ok", "The candidates of request "+ref+" are found")
	b.expectText("#next-step", "Review the candidates")
	b.poll(`[...document.querySelectorAll("#selfies img, #candidate-table img")].every(i => i.complete && i.naturalWidth > 0)`)
	type cand struct {
		ID          string `json:"id"`
		Checked     bool   `json:"checked"`
		Preselected bool   `json:"preselected"`
	}
	const candidates = `[...document.querySelectorAll("#candidate-table tr.candidate")].map(r => ({
		id: r.id.replace("cand-", ""), checked: r.querySelector('input[name="face"]').checked,
		preselected: !r.classList.contains("below-strict")}))`
	cands := run(b, chromedp.Evaluate[[]cand](candidates))
	var ticked []string
	for _, c := range cands {
		if c.Checked != c.Preselected {
			t.Errorf("candidate %s: ticked %v, pre-selected %v", c.ID, c.Checked, c.Preselected)
		}
		if c.Checked {
			ticked = append(ticked, c.ID)
		}
	}
	t.Logf("%d candidates, %d pre-selected", len(cands), len(ticked))
	if len(ticked) < 2 {
		t.Fatalf("%d candidates pre-selected, want at least 2 (the person is in several photos): %+v", len(ticked), cands)
	}
	b.do(chromedp.ScrollIntoView(chromedp.CSS("#candidates")))
	b.shot("rights-candidates")

	// Untick one and save the review.
	out := ticked[len(ticked)-1]
	b.do(chromedp.Click(chromedp.CSS(`#cand-`+out+` input[name="face"]`)),
		chromedp.Click(chromedp.CSS("#save-review")),
		chromedp.WaitVisible(chromedp.CSS("#reviewed-by")))
	b.expectText(".notice.ok", "Your review of request "+ref+" is saved")
	reviewed := slices.Clone(ticked[:len(ticked)-1])
	var now []string
	for _, c := range run(b, chromedp.Evaluate[[]cand](candidates)) {
		if c.Checked {
			now = append(now, c.ID)
		}
	}
	if !slices.Equal(now, reviewed) {
		t.Errorf("after the review, ticked %v, want %v", now, reviewed)
	}
	b.expectText("#next-step", "Record how the requester's identity was established")
	b.shot("rights-reviewed")

	// The identity check.
	b.do(chromedp.ScrollIntoView(chromedp.CSS("#identity-form")),
		chromedp.SetValue(chromedp.CSS("#identity-method"), "id-document"),
		chromedp.SendKeys(chromedp.CSS("#identity-note"), "passport seen at the front desk"),
		chromedp.Click(chromedp.CSS("#record-identity")),
		chromedp.WaitVisible(chromedp.CSS("#identity-recorded")))
	b.expectText("#identity-recorded", "passport seen at the front desk")
	b.expectText("#next-step", "Act on the reviewed set")

	// Act, through the confirmation step.
	b.do(chromedp.Click(chromedp.CSS("#act-link")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-process")))
	b.expectText("#what", fmt.Sprintf("Build the access package with %d face", len(reviewed)))
	b.expectText("#what", "other people's faces in the same images stay blurred")
	if n := run(b, chromedp.Evaluate[string](`document.querySelector('input[name="confirm_faces"]').value`)); n != fmt.Sprint(len(reviewed)) {
		t.Errorf("confirm_faces %q, want %d", n, len(reviewed))
	}
	b.shot("rights-confirm")
	b.do(chromedp.Click(chromedp.CSS("#confirm-process")),
		chromedp.WaitVisible(chromedp.CSS("#outcome")))
	b.expectText(".notice.ok", "Request "+ref+" was acted on")
	b.expectText("#request-state", "completed")
	b.expectText("#acted-on", fmt.Sprintf("Acted on %d reviewed face", len(reviewed)))
	b.shot("rights-completed")

	// The package holds exactly the reviewed faces.
	href := run(b, chromedp.Evaluate[string](`document.querySelector("#download-package").getAttribute("href")`))
	if href != "/api/v1/rights/"+id+"/package" {
		t.Errorf("package link %q", href)
	}
	pkg := run(b, chromedp.Evaluate[string](`fetch(`+strconv.Quote(href)+`).then(r => {
		if (!r.ok || r.headers.get("Content-Type") !== "application/zip") throw new Error("package: " + r.status);
		return r.arrayBuffer();
	}).then(buf => {
		const a = new Uint8Array(buf); let s = "";
		for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode(...a.subarray(i, i + 0x8000));
		return btoa(s);
	})`, chromedp.EvalAwaitPromise))
	zipped, err := base64.StdEncoding.DecodeString(pkg)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatalf("the package is not a zip: %v", err)
	}
	f, err := zr.Open("report.json")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Faces []struct {
			FaceID int64 `json:"face_id"`
		} `json:"faces"`
	}
	err = json.NewDecoder(f).Decode(&report)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var inPackage []string
	for _, f := range report.Faces {
		inPackage = append(inPackage, strconv.FormatInt(f.FaceID, 10))
	}
	slices.Sort(inPackage)
	slices.Sort(reviewed)
	if !slices.Equal(inPackage, reviewed) {
		t.Errorf("the package's faces %v, want the reviewed %v", inPackage, reviewed)
	}

	// The sealed record: the faces acted on, and the one the review left out.
	b.do(chromedp.Click(chromedp.CSS("#record-link")),
		chromedp.WaitVisible(chromedp.CSS("#record-faces")))
	for _, f := range reviewed {
		b.expectText(`#record-faces tr[data-face="`+f+`"]`, f)
	}
	b.expectText(`#record-others tr[data-face="`+out+`"]`, "pre-selected, removed by the DPO")
	b.shot("rights-record")
	b.signOut()

	// The person sees the request completed.
	b.do(chromedp.Navigate(b.base+"/portal/status?"+url.Values{"ref": {ref}, "code": {code}}.Encode()),
		chromedp.WaitVisible(chromedp.CSS("#status-state")))
	if st := run(b, chromedp.Evaluate[string](`document.querySelector("#status-state").dataset.state`)); st != "completed" {
		t.Errorf("the portal's status: %q, want completed", st)
	}
	b.expectText("#status-state", "completed")
	b.shot("portal-status")
}

// samplesEnv is a server on the real models with the demo photos as its
// collection's folder (not yet declared).
func samplesEnv(t *testing.T) (*testEnv, *app.Faces, setup.Dirs) {
	t.Helper()
	dirs := modeltest.Installed(t)
	model, err := app.OpenFaces(context.Background(), app.FaceOptions{Cache: dirs.Root, MinFaceFraction: -1}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { model.Close() })
	e := newTestEnv(t, model)
	e.useSamplePhotos(dirs)
	return e, model, dirs
}

// useSamplePhotos replaces the fake model's colour squares in e's source
// folder with the six npm test photos.
func (e *testEnv) useSamplePhotos(dirs setup.Dirs) {
	e.t.Helper()
	if err := os.RemoveAll(e.photos); err != nil {
		e.t.Fatal(err)
	}
	if err := os.MkdirAll(e.photos, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("sample%d.jpg", i)
		b, err := os.ReadFile(filepath.Join(dirs.TestPhotos(), name))
		if err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.photos, name), b, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// browser drives the tab of a browser test.
type browser struct {
	t        *testing.T
	ctx      context.Context
	base     string
	accepted int // errors reported so far that the test expected
}

// do runs actions, failing the test on error, then checks that the page
// reported no script error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
	b.noErrors()
}

// run runs an action that returns a value.
func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

func (b *browser) noErrors() {
	b.t.Helper()
	if errs := browsertest.Errors(b.ctx); len(errs) > b.accepted {
		b.t.Fatalf("page errors: %q", errs[b.accepted:])
	}
}

// accept waits for the browser to report an expected error containing
// want (a page answered with an error status), and accepts it.
func (b *browser) accept(want string) {
	b.t.Helper()
	errs, err := browsertest.WaitError(b.ctx, b.accepted, want, 10*time.Second)
	if err != nil || len(errs) != b.accepted+1 || !strings.Contains(errs[b.accepted], want) {
		b.t.Fatalf("want one error containing %q (%v); errors: %q", want, err, errs[min(b.accepted, len(errs)):])
	}
	b.accepted++
}

// poll waits until a JavaScript expression is true.
func (b *browser) poll(expr string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		b.t.Fatalf("wait for %s: %v", expr, err)
	}
	b.noErrors()
}

// expectText checks that the element sel contains want.
func (b *browser) expectText(sel, want string) {
	b.t.Helper()
	got := run(b, chromedp.Text(chromedp.CSS(sel)))
	if !strings.Contains(got, want) {
		b.t.Errorf("%s: %q does not contain %q", sel, got, want)
	}
}

// shot takes a screenshot, after checking the page for errors.
func (b *browser) shot(name string) {
	b.t.Helper()
	b.noErrors()
	browsertest.Screenshot(b.t, b.ctx, name)
}

func (b *browser) signIn(name string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".who .user")))
	b.expectText(".who .user", name)
}

func (b *browser) signOut() {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.expectText(".notice.ok", "You are signed out.")
}

// blankPhoto writes a grey JPEG, without a face, in a temporary folder and
// returns its path.
func blankPhoto(t *testing.T) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 96, 96))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "blank.jpg")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// selfieOf writes a photo of one person of the collection that is not one
// of its files: the largest face of photo, cropped with a margin and
// mirrored, as a JPEG in a temporary folder, and returns its path.
func selfieOf(t *testing.T, m *app.Faces, photo string) string {
	t.Helper()
	data, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	an, err := m.Analyze(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	i := face.Largest(an.Faces)
	if i < 0 {
		t.Fatalf("no face in %s", photo)
	}
	d, err := imageproc.Decode(data, imageproc.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src := d.Img.Image()
	box := an.Faces[i].Box
	mg := math.Max(box.W, box.H) * 0.6
	r := image.Rect(int(box.X-mg), int(box.Y-mg), int(box.X+box.W+mg), int(box.Y+box.H+mg)).Intersect(src.Bounds())
	out := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := 0; y < r.Dy(); y++ {
		for x := 0; x < r.Dx(); x++ {
			out.Set(r.Dx()-1-x, y, src.At(r.Min.X+x, r.Min.Y+y))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "selfie.jpg")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
