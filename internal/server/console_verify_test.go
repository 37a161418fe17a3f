package server

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// searchIDs lists the searches of a history page, in its order.
func searchIDs(body string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<tr data-search="(\d+)"`).FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// mustContain fails the test for each of wants that body lacks.
func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, mainOf(body))
		}
	}
}

// mainOf is the <main> of a page, for error messages.
func mainOf(body string) string {
	if m := regexp.MustCompile(`(?s)<main.*</main>`).FindString(body); m != "" {
		return m
	}
	return body
}

// TestConsoleHistoryAndVerification: the history of searches by role and
// filter, the strength of results, paging through all of them, the
// verification screen, and a rejection.
func TestConsoleHistoryAndVerification(t *testing.T) {
	e := searchEnv(t, 25) // 28 faces
	ivan, eve, vera := e.signIn("ivan"), e.signIn("eve"), e.signIn("vera")

	// The search form: the exploratory fields for examiners only.
	if pg := ivan.get("/search"); strings.Contains(pg.body, `id="threshold"`) {
		t.Error("an investigator's search form offers a threshold")
	}
	mustContain(t, "an examiner's search form", eve.get("/search").body, `id="threshold"`, `id="reason"`, "Exploratory search (examiners)")

	// An investigator's search, without scripts: strength at a glance.
	got := ivan.postFiles("/search", url.Values{"purpose": {"theft"}, "case": {"C-1"}}, map[string][][]byte{"photo": {e.photo("p1.png")}})
	if got.status != http.StatusOK {
		t.Fatalf("search: %d %s", got.status, mainOf(got.body))
	}
	checkHTML(t, "search results", got.body)
	// fakeModel's templates of 16 numbers are alike enough that strangers
	// reach the operating point too: a few results.
	if !regexp.MustCompile(`<strong>\d+ match(es)?</strong> \(showing 1(–\d+)?\)`).MatchString(got.body) {
		t.Errorf("search results do not count the matches:\n%s", mainOf(got.body))
	}
	mustContain(t, "search results", got.body, `<span class="badge band band-strong"`, "strangers expected at this score in a gallery of 28 faces",
		`src="/api/v1/searches/1/probe.jpg"`, "Face searched: 1 of 1 (best quality)", "Operating point")
	ivanFace := regexp.MustCompile(`/api/v1/faces/(\d+)/crop`).FindStringSubmatch(got.body)[1]

	// An examiner's exploratory search: marked, with its reason, and every
	// result reachable.
	got = eve.postFiles("/search", url.Values{"purpose": {"fraud"}, "case": {"C-2"}, "threshold": {"-1"}, "reason": {"a poor CCTV still"}, "k": {"5"}},
		map[string][][]byte{"photo": {e.photo("p2.png")}})
	if got.status != http.StatusOK {
		t.Fatalf("exploratory search: %d %s", got.status, mainOf(got.body))
	}
	checkHTML(t, "exploratory results", got.body)
	mustContain(t, "exploratory results", got.body, "<strong>Exploratory search</strong>", `<q class="reason">a poor CCTV still</q>`,
		"28 results at or above the threshold (matches and weak leads)</strong> (showing 1–5)", `<a href="/searches/2#results">see every one on the search's page</a>`)

	rec := vera.get("/searches/2")
	checkHTML(t, "search record", rec.body)
	mustContain(t, "search record, first page", rec.body, "<strong>Exploratory search</strong>", "a poor CCTV still",
		"28 results at or above the threshold (matches and weak leads)</strong> (showing 1–24)", `href="/searches/2?cursor=o24#results" rel="next"`,
		`id="probe-crop" src="/api/v1/searches/2/probe.jpg"`)
	if strings.Contains(rec.body, `rel="prev"`) {
		t.Error("the first page links to a previous one")
	}
	var seen []string
	for _, m := range regexp.MustCompile(`id="face-(\d+)"`).FindAllStringSubmatch(rec.body, -1) {
		seen = append(seen, m[1])
	}
	rec = vera.get("/searches/2?cursor=o24")
	mustContain(t, "search record, last page", rec.body, "(showing 25–28)", `href="/searches/2?cursor=o0#results" rel="prev"`,
		`data-band="weak"`, "not a match: an exploratory search's lead below the operating point")
	for _, m := range regexp.MustCompile(`id="face-(\d+)"`).FindAllStringSubmatch(rec.body, -1) {
		seen = append(seen, m[1])
	}
	slices.Sort(seen)
	if len(seen) != 28 || len(slices.Compact(slices.Clone(seen))) != 28 {
		t.Errorf("the two pages show %d faces (%d distinct), want all 28 once", len(seen), len(slices.Compact(seen)))
	}
	if got := vera.get("/searches/2?cursor=zz"); got.status != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d", got.status)
	}

	// The history: one's own for an investigator, whatever is asked.
	for _, q := range []string{"", "?actor=eve"} {
		pg := ivan.get("/searches" + q)
		checkHTML(t, "ivan's history", pg.body)
		if ids := searchIDs(pg.body); !slices.Equal(ids, []string{"1"}) || strings.Contains(pg.body, `id="f-actor"`) {
			t.Errorf("ivan's history%s: %v", q, ids)
		}
	}
	pg := vera.get("/searches")
	checkHTML(t, "the verifier's history", pg.body)
	if ids := searchIDs(pg.body); !slices.Equal(ids, []string{"2", "1"}) {
		t.Errorf("vera's history: %v", ids)
	}
	mustContain(t, "the verifier's history", pg.body, `id="f-actor"`, "Exploratory, because: a poor CCTV still", ">exploratory</span>")
	for q, want := range map[string][]string{"?case=C-1": {"1"}, "?actor=eve": {"2"}, "?state=unverified": {"2", "1"}, "?state=rejected": nil,
		"?to=2000-01-01": nil} {
		if ids := searchIDs(vera.get("/searches" + q).body); !slices.Equal(ids, want) {
			t.Errorf("history %s: %v, want %v", q, ids, want)
		}
	}
	mustContain(t, "ivan's home", ivan.get("/").body, `id="recent-searches"`, `<a href="/searches/1">#1</a>`, "to verify", "All your searches")

	// The verification screen: the face searched beside the candidate.
	screen := fmt.Sprintf("/searches/1/faces/%s", ivanFace)
	pg = vera.get(screen)
	checkHTML(t, "verification screen", pg.body)
	mustContain(t, "verification screen", pg.body, fmt.Sprintf("<h1>Verify face %s of search #1</h1>", ivanFace),
		`id="probe-crop" src="/api/v1/searches/1/probe.jpg"`, fmt.Sprintf(`id="candidate-crop" src="/api/v1/faces/%s/crop"`, ivanFace),
		`band band-strong`, "strangers expected at this score in a gallery of 28 faces",
		fmt.Sprintf(`src="/api/v1/faces/%s/image.jpg"`, ivanFace), "Other people's faces are pixelated",
		fmt.Sprintf(`action="/searches/1/faces/%s/confirm"`, ivanFace), `action="/searches/1/reject"`, "0 of 2 confirmations")

	// A rejection needs its reason.
	got = vera.post("/searches/1/reject", url.Values{"face_id": {ivanFace}, "reason": {"  "}})
	if got.status != http.StatusBadRequest {
		t.Errorf("rejection without a reason: %d", got.status)
	}
	mustContain(t, "rejection without a reason", got.body, "State why you reject this face")
	checkHTML(t, "rejection without a reason", got.body)
	got = vera.post("/searches/1/reject", url.Values{"face_id": {ivanFace}, "reason": {"another person: the ears differ"}})
	if got.status != http.StatusSeeOther || got.header.Get("Location") != screen+"?id="+ivanFace+"&notice=rejected" {
		t.Fatalf("rejection: %d %q %s", got.status, got.header.Get("Location"), mainOf(got.body))
	}
	pg = vera.get(got.header.Get("Location"))
	mustContain(t, "rejected face", pg.body, "Your rejection of face", "Rejected: never an identification",
		"<q>another person: the ears differ</q>")
	if strings.Contains(pg.body, "Confirm match") {
		t.Error("a rejected face can still be confirmed from its screen")
	}

	// Nobody confirms it any more.
	victor := e.signIn("victor")
	mustContain(t, "confirmation step of a rejected face", victor.get(screen+"/confirm").body, "A verifier rejected this result: it cannot be confirmed.")
	got = victor.post("/searches/1/confirm", url.Values{"face_id": {ivanFace}, "attest": {"yes"}})
	if got.status != http.StatusConflict {
		t.Errorf("confirming a rejected face: %d", got.status)
	}
	mustContain(t, "confirming a rejected face", got.body, "was rejected by a verifier: a rejected result cannot be confirmed")
	mustContain(t, "record of a rejected face", vera.get("/searches/1").body, "Rejected by vera")
	if ids := searchIDs(vera.get("/searches?state=rejected").body); !slices.Equal(ids, []string{"1"}) {
		t.Errorf("rejected searches: %v", ids)
	}

	// The searcher sees the screen, without the actions; an auditor sees
	// the face searched, not the candidate.
	pg = ivan.get(screen)
	mustContain(t, "the searcher's screen", pg.body, `id="probe-crop"`, `id="candidate-crop"`, "You ran this search")
	if strings.Contains(pg.body, `action="/searches/1/reject"`) {
		t.Error("the searcher may reject their own search's result")
	}
	e.addUser("aude2", auditor)
	pg = e.signIn("aude2").get(screen)
	mustContain(t, "the auditor's screen", pg.body, `id="probe-crop"`, "Faces are shown to investigators and verifiers")
	if strings.Contains(pg.body, `id="candidate-crop"`) || strings.Contains(pg.body, "image.jpg") {
		t.Error("an auditor sees the candidate's face")
	}
	// Another investigator's search is not found.
	if got := e.signIn("ines").get(screen); got.status != http.StatusNotFound {
		t.Errorf("another investigator's verification screen: %d", got.status)
	}
	if got := vera.get("/searches/1/faces/999999"); got.status != http.StatusNotFound {
		t.Errorf("a face the search did not return: %d", got.status)
	}
}
