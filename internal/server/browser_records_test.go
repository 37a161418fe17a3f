//go:build onnx

package server

import (
	"testing"

	"github.com/chromedp/chromedp"

	"gabarit/internal/browsertest"
	"gabarit/internal/records"
	"gabarit/internal/store"
)

// TestBrowserRecords walks the records form in a headless browser: the
// DPO's home page warns that the records are incomplete and links to the
// form; a mistaken e-mail address is shown next to its field, with what was
// typed kept; corrected, the records are saved and the warning is gone.
// No page may report a script error or a violation of the content
// security policy.
func TestBrowserRecords(t *testing.T) {
	e := newTestEnv(t, nil) // the fake model: no face is searched here
	e.addUser("dora", store.RoleDPO)
	b := &browser{t: t, ctx: browsertest.New(t), base: e.ts.URL}

	b.signIn("dora")
	b.expectText("#records-warning", "The records of processing are incomplete: controller, representative, DPO, recipients, transfers and supervisory authority not declared.")
	b.shot("records-warning")
	b.do(chromedp.Click(chromedp.CSS(`#records-warning a[href="/records#declaration"]`)),
		chromedp.WaitVisible(chromedp.CSS("#records-form")))
	// The form answers 400, which the browser reports: accepted below.
	if err := chromedp.Do(b.ctx,
		chromedp.SendKeys(chromedp.CSS("#rec-controller"), "Example City Police, 1 rue de la Paix, 75002 Paris"),
		chromedp.SendKeys(chromedp.CSS("#rec-dpo"), "Jeanne Martin, jeanne@police"),
		chromedp.SendKeys(chromedp.CSS("#rec-representative"), "none"),
		chromedp.SendKeys(chromedp.CSS("#rec-authority"), "CNIL, 3 place de Fontenoy, 75007 Paris"),
		chromedp.SendKeys(chromedp.CSS("#rec-transfers"), "none"),
		chromedp.SendKeys(chromedp.CSS("#rec-recipients"), "investigators of the city police\ncourts"),
		chromedp.Click(chromedp.CSS(`#records-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#rec-dpo-error"))); err != nil {
		t.Fatal(err)
	}
	b.accept("400")
	b.expectText("#page-error", "The records of processing are not saved: correct the fields marked below.")
	b.expectText("#rec-dpo-error", `The e-mail address "jeanne@police" is not valid`)
	if v := run(b, chromedp.Value(chromedp.CSS("#rec-controller"))); v != "Example City Police, 1 rue de la Paix, 75002 Paris" {
		t.Errorf("controller after the error: %q, want what was typed", v)
	}
	b.shot("records-form-error")

	run(b, chromedp.Evaluate[string](`document.querySelector("#rec-dpo").value = ""`))
	b.do(chromedp.SendKeys(chromedp.CSS("#rec-dpo"), "Jeanne Martin, jeanne.martin@police.example.org"),
		chromedp.Click(chromedp.CSS(`#records-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	b.expectText(".notice.ok", "Records of processing are saved.")
	b.shot("records-saved")
	org, _, err := records.Load(e.data.Dir)
	if err != nil || org.DPO != "Jeanne Martin, jeanne.martin@police.example.org" || len(org.Recipients) != 2 || len(org.Missing()) != 0 {
		t.Errorf("saved: %+v %v", org, err)
	}
	b.do(chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS(".stats")))
	if n := run(b, chromedp.Evaluate[int](`document.querySelectorAll("#records-warning").length`)); n != 0 {
		t.Errorf("the warning is still shown once the records are complete")
	}
}
