package records

import (
	"strings"
	"testing"
	"time"

	"gabarit/internal/store"
)

func TestBuild(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srcs := []store.Source{
		{ID: 1, Kind: store.KindFolder, Locator: "/a", Controller: "Org A", Purpose: "missing persons", LegalBasis: store.BasisPublicTask,
			Art9Condition: "9(2)(g) substantial public interest", Jurisdiction: "FR", Retention: 30 * 24 * time.Hour, CreatedAt: t0.Add(time.Hour), State: store.StateActive},
		{ID: 2, Kind: store.KindVideo, Locator: "/b|c", Controller: "Org B", Purpose: "missing persons", LegalBasis: store.BasisLegalObligation,
			Art9Condition: "9(2)(g) substantial public interest", Jurisdiction: "BE", Retention: 90 * 24 * time.Hour, CreatedAt: t0, State: store.StateActive},
		{ID: 3, Kind: store.KindArchive, Locator: "/c", Controller: "Org A", Purpose: "event photos", LegalBasis: store.BasisConsent,
			Art9Condition: "9(2)(a) explicit consent", Jurisdiction: "FR", Retention: 36 * time.Hour, CreatedAt: t0.Add(2 * time.Hour), State: store.StateSuspended},
	}
	r := Build(t0.Add(time.Hour*24), Organisation{Controller: "Org A, 1 rue X, Paris", DPO: "dpo@example.org"}, srcs,
		map[int64][2]int64{1: {10, 12}, 3: {4, 4}})
	if r.Controller != "Org A, 1 rue X, Paris" || r.DPO != "dpo@example.org" || r.Representative != NotDeclared ||
		r.Transfers != NotDeclared || len(r.Recipients) != 1 || r.Recipients[0] != NotDeclared {
		t.Errorf("organisation fields: %+v", r)
	}
	if len(r.Activities) != 2 {
		t.Fatalf("activities = %d, want one per purpose (2)", len(r.Activities))
	}
	a := r.Activities[0]
	if a.Purpose != "missing persons" || len(a.Sources) != 2 || len(a.Controllers) != 2 || len(a.LegalBases) != 2 ||
		len(a.Art9) != 1 || len(a.Jurisdictions) != 2 || !a.Since.Equal(t0) || a.Sources[0].Images != 10 {
		t.Errorf("first activity = %+v", a)
	}
	if got := r.Activities[1].Retention[0]; got != "36h0m0s after ingestion (source 3)" {
		t.Errorf("retention = %q", got)
	}
	var md strings.Builder
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Art. 30(1)(a)", "NOT DECLARED", "## Activity 1: missing persons", "`/b\\|c`", "AES-256-GCM", "30 days",
		"## Search records", "probe face crop of each search", "erased six months after the search by the retention purge"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	empty := Build(t0, Organisation{}, nil, nil)
	md.Reset()
	if err := empty.Markdown(&md); err != nil || !strings.Contains(md.String(), "No source has been declared") {
		t.Errorf("empty record: %v\n%s", err, md.String())
	}
}
