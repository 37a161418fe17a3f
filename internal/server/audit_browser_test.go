//go:build onnx

package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gabarit/internal/browsertest"
)

// TestBrowserAuditFilters filters the audit log in a headless browser: the
// form narrows the table and stays filled in, a filter matching nothing
// says so, and the paging links walk older and newer entries with the
// filter kept. Every step is a screenshot.
func TestBrowserAuditFilters(t *testing.T) {
	e, want := auditEnv(t, "aude")
	b := &browser{t: t, ctx: browsertest.New(t), base: e.ts.URL}
	b.signIn("aude")

	// entry selects the row of the entry with id id.
	entry := func(id int64) string { return fmt.Sprintf(`#audit tr[data-entry="%d"]`, id) }
	rows := func() []string {
		b.t.Helper()
		return run(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#audit tbody tr")].map(r => r.dataset.entry + " " + r.cells[2].textContent + " " + r.cells[3].textContent)`))
	}
	value := func(sel string) string {
		b.t.Helper()
		return run(b, chromedp.Evaluate[string](`document.querySelector(`+fmt.Sprintf("%q", sel)+`).value`))
	}

	b.do(chromedp.Navigate(b.base+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit-filters")),
		chromedp.SendKeys(chromedp.CSS("#f-actor"), "pat"),
		chromedp.SendKeys(chromedp.CSS("#f-action"), "rights."),
		chromedp.Click(chromedp.CSS(`#audit-filters button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(entry(want.rights[1]))))
	if got, w := strings.Join(rows(), "; "), fmt.Sprintf("%d pat rights.erasure; %d pat rights.received", want.rights[0], want.rights[1]); got != w {
		t.Errorf("filtered rows: %q, want %q", got, w)
	}
	if value("#f-actor") != "pat" || value("#f-action") != "rights." {
		t.Errorf("the form is not filled in: %q %q", value("#f-actor"), value("#f-action"))
	}
	b.shot("audit-filtered")

	// Nothing matches.
	b.do(chromedp.Navigate(b.base+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit-filters")),
		chromedp.SendKeys(chromedp.CSS("#f-case"), "no-such-case"),
		chromedp.Click(chromedp.CSS(`#audit-filters button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".empty-state")))
	b.expectText(".empty-state", "No entries match these filters.")

	// Paging with a filter: older, then newer again.
	b.do(chromedp.Navigate(b.base+"/audit?actor=bulk"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	first := rows()
	if len(first) != auditPerPage || !strings.HasPrefix(first[0], fmt.Sprint(want.bulk[0])+" bulk") {
		t.Fatalf("first page: %d rows from %q", len(first), first[0])
	}
	b.do(chromedp.Click(chromedp.CSS(`#audit-pager a[rel="next"]`)), chromedp.WaitVisible(chromedp.CSS(entry(want.bulk[auditPerPage]))))
	if value("#f-actor") != "bulk" {
		t.Errorf("older page lost the filter: %q", value("#f-actor"))
	}
	b.expectText("#audit-pager", "Newer entries")
	b.shot("audit-older")
	b.do(chromedp.Click(chromedp.CSS(`#audit-pager a[rel="next"]`)), chromedp.WaitVisible(chromedp.CSS(entry(want.bulk[2*auditPerPage]))))
	b.do(chromedp.Click(chromedp.CSS(`#audit-pager a[rel="prev"]`)), chromedp.WaitVisible(chromedp.CSS(entry(want.bulk[auditPerPage]))))
	if u := run(b, chromedp.Evaluate[string](`location.search`)); !strings.Contains(u, "after=") || !strings.Contains(u, "actor=bulk") {
		t.Errorf("newer link: %q", u)
	}
	b.do(chromedp.Click(chromedp.CSS(`#audit-pager a[rel="prev"]`)), chromedp.WaitVisible(chromedp.CSS(entry(want.bulk[0]))))
	if got := rows(); strings.Join(got, ";") != strings.Join(first, ";") {
		t.Errorf("back to the newest: %d rows from %q", len(got), got[0])
	}
}
