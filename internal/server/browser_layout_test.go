//go:build onnx

package server

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gabarit/internal/browsertest"
	"gabarit/internal/store"
)

// TestBrowserLayout visits every page of the console and of the portal in
// a headless browser, on a laptop (1366×900) and on a phone (390×844),
// with tables that are not empty, and checks on each that the page does not
// scroll sideways (the failure names the elements that stick out), that
// Sign out is on the screen, that the first Tab focuses the "Skip to
// content" link and that the page's title is its own. The pages come from
// the route table: every GET page route, with a concrete id for each path
// parameter, so that a new page is visited without changing this test;
// then the answer of the portal's form and a search's results. Every page
// is a screenshot.
func TestBrowserLayout(t *testing.T) {
	e, params := layoutEnv(t)
	var public, console []string
	for _, rt := range e.srv.routes {
		if rt.method != http.MethodGet || rt.kind != page {
			continue
		}
		path := layoutPath(t, rt.path, params)
		if rt.public {
			public = append(public, path)
		} else {
			console = append(console, path)
		}
	}
	// Pages that only a given state shows: the answer of a status look-up.
	public = append(public, "/portal/status?"+url.Values{"ref": {params["ref"]}, "code": {params["code"]}}.Encode())
	// "/" is the welcome page for the public, and the home page once signed
	// in; a request not yet acted on shows its candidates.
	console = append(console, "/", "/rights/"+params["/rights/{id}/process id"])
	if len(console) < 15 || len(public) < 4 {
		t.Fatalf("%d console and %d public pages in the route table: %v %v", len(console), len(public), console, public)
	}

	ctx := browsertest.New(t)
	b := &browser{t: t, ctx: ctx, base: e.ts.URL}
	for _, vp := range []struct {
		name string
		w, h int64
	}{{"laptop", 1366, 900}, {"phone", 390, 844}} {
		t.Run(vp.name, func(t *testing.T) {
			b.t = t
			// Not a mobile emulation: a mobile browser zooms out a page
			// wider than the screen, and the width measured would hide it.
			b.do(chromedp.EmulateViewport(vp.w, vp.h))
			titles := map[string]string{}
			for _, p := range public {
				b.checkLayout(p, false, titles)
			}
			b.portalAnswer(params["selfie"], titles)
			b.skipTo("/portal")

			b.signIn("alexandra.lindqvist")
			for _, p := range console {
				b.checkLayout(p, true, titles)
			}
			b.searchResults(params["probe"], titles)
			b.skipTo("/sources")
			// Sign out through the button the check found on the screen.
			b.signOut()
		})
	}
}

// layoutEnv is a server whose every table has rows: a declared and
// ingested source with its job, searches (one confirmed once), users, API
// tokens, a completed rights request with its sealed record and one ready to
// be acted on. It returns the values of the route table's path parameters,
// and a portal request's reference and status code.
func layoutEnv(t *testing.T) (*testEnv, map[string]string) {
	t.Helper()
	e := newTestEnv(t, nil)
	e.srv.logins = newLimiter(1000, time.Minute)
	e.morePhotos(6)
	all := []store.Role{store.RoleAdmin, store.RoleOperator, store.RoleInvestigator, store.RoleVerifier,
		store.RoleDPO, store.RoleAuditor, store.RoleExaminer}
	e.addUser("alexandra.lindqvist", all...)
	e.addUser("vera", store.RoleVerifier)
	e.addUser("olga", store.RoleOperator)
	me := e.token("alexandra.lindqvist")
	e.token("olga")

	src := e.declareSource(me)
	if j := e.ingest(me, src); j.State != jobDone || j.Faces == 0 {
		t.Fatalf("ingest: %+v", j)
	}
	var search, face int64
	for i, probe := range []string{"p0.png", "q01.png", "q02.png"} {
		st, res, body := me.search(e.photo(probe), map[string]string{
			"purpose": "Identify a witness seen near the station on the night of the theft",
			"case":    fmt.Sprintf("2025-01%02d", 47+i)})
		if st != http.StatusOK || len(res.Results) == 0 {
			t.Fatalf("search %s: %d %s", probe, st, body)
		}
		if i == 0 {
			search, face = res.SearchID, res.Results[0].FaceID
		}
	}
	if st, body := e.login("vera").json("POST", fmt.Sprintf("/api/v1/searches/%d/confirmations", search), map[string]any{"face_id": face}); st/100 != 2 {
		t.Fatalf("confirm: %d %s", st, body)
	}

	// A completed access request (its record is sealed), and an erasure
	// reviewed and checked, waiting on its confirmation step.
	done := e.registerRights(me, "access", [][]byte{e.photo("p1.png")})
	rv := e.findCandidates(me, done)
	e.actOn(me, done, []int64{rv.Candidates[0].FaceID})
	open := e.registerRights(me, "erasure", [][]byte{e.photo("p2.png")})
	rv = e.findCandidates(me, open)
	if st, body := me.json("POST", fmt.Sprintf("/api/v1/rights/%d/review", open), map[string]any{"selected": []int64{rv.Candidates[0].FaceID}}); st != http.StatusOK {
		t.Fatalf("review: %d %s", st, body)
	}
	if st, body := me.json("POST", fmt.Sprintf("/api/v1/rights/%d/identity", open),
		map[string]string{"method": "id-document", "note": "identity card seen"}); st != http.StatusOK {
		t.Fatalf("identity: %d %s", st, body)
	}
	a := portalAsk(t, e, "access")

	selfie, probe := filepath.Join(t.TempDir(), "selfie.png"), filepath.Join(e.photos, "q04.png")
	if err := os.WriteFile(selfie, e.photo("q03.png"), 0o644); err != nil {
		t.Fatal(err)
	}
	return e, map[string]string{
		// A path parameter's value: for one route ("pattern name"), for
		// the routes under a first segment ("/segment name"), or for any.
		"/searches id":            fmt.Sprint(search),
		"face":                    fmt.Sprint(face),
		"/sources id":             fmt.Sprint(src),
		"/rights id":              fmt.Sprint(done),
		"/rights/{id}/process id": fmt.Sprint(open),
		"/users name":             "olga",
		// Not path parameters: a portal request, and a selfie to send.
		"ref":    a.Reference,
		"code":   a.StatusCode,
		"selfie": selfie,
		"probe":  probe,
	}
}

// layoutPath fills the path parameters of a route's pattern from params
// (see layoutEnv), failing the test on a parameter it has no value for: a
// new page, to give one in layoutEnv.
func layoutPath(t *testing.T, pattern string, params map[string]string) string {
	t.Helper()
	path := strings.TrimSuffix(pattern, "{$}")
	segment := "/" + strings.Split(path, "/")[1]
	return regexp.MustCompile(`\{([a-z]+)\}`).ReplaceAllStringFunc(path, func(m string) string {
		name := m[1 : len(m)-1]
		for _, key := range []string{pattern + " " + name, segment + " " + name, name} {
			if v, ok := params[key]; ok {
				return v
			}
		}
		t.Fatalf("page %s: no value for {%s}; give one in layoutEnv", pattern, name)
		return ""
	})
}

// layoutReport is what a page's layout check finds.
type layoutReport struct {
	Title       string   `json:"title"`
	Width       int      `json:"width"`       // the window's
	ScrollWidth int      `json:"scrollWidth"` // the page's
	Offenders   []string `json:"offenders"`   // the elements that stick out
	SignOut     string   `json:"signOut"`     // "" when on the screen, else why not
	Main        bool     `json:"main"`        // a <main id="content"> and a header with a nav
	Unlabelled  []string `json:"unlabelled"`  // form controls without a label
	// Tables not inside a labelled region the keyboard reaches, which
	// scrolls them on a phone.
	Unscrollable []string `json:"unscrollable"`
}

// layoutJS measures the page: its width against the window's, the
// outermost elements that stick out on the right (not counting those
// inside a box that scrolls or clips), where Sign out is, the landmarks,
// and form controls that have no label.
const layoutJS = `(() => {
	const vw = window.innerWidth;
	const name = el => {
		let s = el.tagName.toLowerCase();
		if (el.id) return s + "#" + el.id;
		if (typeof el.className === "string" && el.className.trim()) s += "." + el.className.trim().split(/\s+/).join(".");
		return s;
	};
	const path = el => {
		const parts = [];
		for (let n = el; n && n !== document.body && parts.length < 4; n = n.parentElement) {
			parts.unshift(name(n));
			if (n.id) break;
		}
		return parts.join(" > ");
	};
	const clipped = el => {
		for (let n = el.parentElement; n && n !== document.body; n = n.parentElement) {
			const o = getComputedStyle(n).overflowX;
			if (o !== "visible") return true;
		}
		return false;
	};
	const offenders = [];
	if (document.documentElement.scrollWidth > vw) {
		for (const el of document.body.querySelectorAll("*")) {
			const r = el.getBoundingClientRect();
			if (r.width === 0 || r.right <= vw + 0.5 || clipped(el)) continue;
			const p = el.parentElement;
			if (p && p !== document.body && p.getBoundingClientRect().right > vw + 0.5) continue;
			offenders.push({sel: path(el), right: r.right, width: r.width});
		}
		offenders.sort((a, b) => b.right - a.right);
	}
	let signOut = "";
	const so = document.querySelector('form[action="/logout"] button');
	if (!so) signOut = "no Sign out button";
	else {
		const r = so.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) signOut = "hidden";
		else if (r.left < 0 || r.top < 0 || r.right > vw || r.bottom > window.innerHeight)
			signOut = "at " + JSON.stringify({left: r.left, top: r.top, right: r.right, bottom: r.bottom});
	}
	const unlabelled = [];
	for (const c of document.querySelectorAll("input, select, textarea")) {
		if (c.type === "hidden" || c.type === "submit" || c.type === "button") continue;
		if (c.labels && c.labels.length) continue;
		if (c.getAttribute("aria-label") || c.getAttribute("aria-labelledby") || c.title) continue;
		unlabelled.push(path(c));
	}
	const unscrollable = [];
	for (const t of document.querySelectorAll("table")) {
		const r = t.parentElement;
		if (!r || !r.matches('.table-scroll[role="region"][aria-label][tabindex="0"]')) unscrollable.push(path(t));
	}
	return {
		unscrollable,
		title: document.title, width: vw, scrollWidth: document.documentElement.scrollWidth,
		offenders: offenders.slice(0, 5).map(o => o.sel + " (right edge " + Math.round(o.right) + " px, " + Math.round(o.width) + " px wide)"),
		signOut, unlabelled,
		main: !!document.querySelector("main#content") && !!document.querySelector("header nav"),
	};
})()`

// checkLayout opens path and checks its layout; signedIn pages must show
// Sign out on the screen. titles collects the pages' titles, which must
// differ.
func (b *browser) checkLayout(path string, signedIn bool, titles map[string]string) {
	shot := "public-"
	if signedIn {
		shot = "console-"
	}
	route, query, _ := strings.Cut(path, "?")
	if route == "/" {
		shot += "home"
	}
	shot += strings.ReplaceAll(strings.Trim(route, "/"), "/", "-")
	if query != "" {
		shot += "-answer"
	}
	b.t.Helper()
	resp := run(b, chromedp.NavigateResponse(b.base+path))
	if resp.Status != http.StatusOK {
		b.t.Fatalf("%s: status %d", path, resp.Status)
	}
	b.do(chromedp.WaitReady(chromedp.CSS("main#content")))
	// Crops and the photos of a page are loaded before measuring.
	b.poll(`[...document.images].every(i => i.complete)`)
	b.shot(shot)
	b.report(path, signedIn, run(b, chromedp.Evaluate[layoutReport](layoutJS)), titles)

	// The first Tab from the top of the page goes to the skip link, which
	// is then on the screen.
	b.do(chromedp.KeyEvent("\t"))
	focus := run(b, chromedp.Evaluate[string](`(() => {
		const a = document.activeElement;
		if (!a || !a.matches("a.skip-link")) return "the first Tab focuses " + (a ? a.outerHTML.slice(0, 120) : "nothing");
		if (a.getAttribute("href") !== "#content" || a.textContent.trim() !== "Skip to content") return "skip link " + a.outerHTML;
		const r = a.getBoundingClientRect();
		if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth || r.width === 0) return "the focused skip link is off the screen";
		return "";
	})()`))
	if focus != "" {
		b.t.Errorf("%s at %d px: %s", path, run(b, chromedp.Evaluate[int](`window.innerWidth`)), focus)
	}
}

// report checks a page's layoutReport.
func (b *browser) report(path string, signedIn bool, r layoutReport, titles map[string]string) {
	b.t.Helper()
	if r.ScrollWidth > r.Width {
		b.t.Errorf("%s at %d px: the page is %d px wide; sticking out: %s", path, r.Width, r.ScrollWidth, strings.Join(r.Offenders, "; "))
	}
	if signedIn && r.SignOut != "" {
		b.t.Errorf("%s at %d px: Sign out is not on the screen: %s", path, r.Width, r.SignOut)
	}
	if !r.Main {
		b.t.Errorf("%s: no <main id=\"content\"> or no navigation in the header", path)
	}
	if len(r.Unlabelled) > 0 {
		b.t.Errorf("%s: form controls without a label: %s", path, strings.Join(r.Unlabelled, ", "))
	}
	if len(r.Unscrollable) > 0 {
		b.t.Errorf("%s: tables outside a labelled, focusable scrolling region (div.table-scroll): %s", path, strings.Join(r.Unscrollable, ", "))
	}
	// The same page in another state (a query, an answered form) may keep
	// its title.
	page, _, _ := strings.Cut(path, "?")
	page, _, _ = strings.Cut(page, " ")
	if other, ok := titles[r.Title]; ok && other != page {
		b.t.Errorf("%s has the title %q of %s", path, r.Title, other)
	}
	titles[r.Title] = page
}

// portalAnswer sends a request through the portal's form and checks the
// layout of its answer.
func (b *browser) portalAnswer(selfie string, titles map[string]string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+"/portal"),
		chromedp.WaitVisible(chromedp.CSS("#portal-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#selfie"), []string{selfie}),
		chromedp.SendKeys(chromedp.CSS("#contact"), "jane.doe@example.org"),
		chromedp.Click(chromedp.CSS(`input[name="kind"][value="access"]`)))
	b.poll(`!document.querySelector("#portal-submit").disabled`)
	b.do(chromedp.Click(chromedp.CSS(`#portal-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#reference")))
	b.shot("portal-answer")
	b.report("/portal (answer)", false, run(b, chromedp.Evaluate[layoutReport](layoutJS)), titles)
}

// searchResults runs a search on the search page and checks the layout of
// its results.
func (b *browser) searchResults(probe string, titles map[string]string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+"/search"),
		chromedp.WaitVisible(chromedp.CSS("#photo")),
		chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{probe}),
		chromedp.SendKeys(chromedp.CSS("#purpose"), "Identify a witness seen near the station"))
	b.poll(`!document.querySelector("#search-button").disabled`)
	b.do(chromedp.Click(chromedp.CSS("#search-button")),
		chromedp.WaitVisible(chromedp.CSS("#results .grid img.crop")))
	b.poll(`[...document.images].every(i => i.complete)`)
	b.shot("search-results")
	b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)) // the page scrolled to the results
	b.report("/search (results)", true, run(b, chromedp.Evaluate[layoutReport](layoutJS)), titles)
}

// skipTo opens path, follows its skip link with the keyboard, and checks
// that the focus moved to the page's content.
func (b *browser) skipTo(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("main#content")),
		chromedp.KeyEvent("\t"), chromedp.KeyEvent("\r"))
	b.poll(`location.hash === "#content"`)
	if got := run(b, chromedp.Evaluate[string](`document.activeElement.id`)); got != "content" {
		b.t.Errorf("%s: after the skip link, the focus is on %q, want the main content", path, got)
	}
	// The next Tab goes to the first control of the content, not the header's.
	b.do(chromedp.KeyEvent("\t"))
	if in := run(b, chromedp.Evaluate[bool](`document.querySelector("main").contains(document.activeElement)`)); !in {
		b.t.Errorf("%s: the Tab after the skip link leaves the content", path)
	}
}
