package server

import (
	"fmt"
	"gabarit/internal/vindex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// TestQuarantineAPIAndConsole is the probe of issue 12 (item 3) through the
// server: two faces' sealed templates swapped in the database. Searches
// still answer (200, without the face) and put it in quarantine once; the
// API lists it for admins and operators only; release is refused while
// the template is damaged and succeeds once it is restored, the face found
// again; the console's sources page shows the other face in quarantine
// with its actions, and erasing it there deletes it.
func TestQuarantineAPIAndConsole(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("olga", operator)
	e.addUser("ivan", investigator)
	e.addUser("dora", dpo)
	op := e.login("olga")
	src := e.declareSource(op)
	if j := e.ingest(op, src); j.State != jobDone || j.Faces != 3 {
		t.Fatalf("job = %+v", j)
	}
	refs, err := e.data.DB.FaceRefs(t.Context(), []int64{1, 2, 3})
	if err != nil || len(refs) != 3 {
		t.Fatalf("faces: %v, %v", refs, err)
	}
	byPhoto := map[string]int64{}
	for id, r := range refs {
		byPhoto[r.Locator] = id
	}
	f0, f1 := byPhoto["p0.png"], byPhoto["p1.png"]
	dbPath := filepath.Join(e.dir, "data", "gabarit.db")
	good := storetest.Template(t, dbPath, f0)
	storetest.SwapTemplates(t, dbPath, f0, f1)

	ivan := e.login("ivan")
	search := func(photo string) app.SearchView {
		t.Helper()
		probe, err := os.ReadFile(filepath.Join(e.photos, photo))
		if err != nil {
			t.Fatal(err)
		}
		st, body := ivan.multipart("/api/v1/searches", map[string]string{"purpose": "test case"}, map[string][][]byte{"photo": {probe}})
		if st != http.StatusOK {
			t.Fatalf("search with %s: %d %s", photo, st, body)
		}
		return decode[app.SearchView](t, body)
	}
	for range 2 {
		if res := search("p0.png"); res.Match || len(res.Results) != 0 {
			t.Errorf("search for the damaged face: %+v, want no match", res.Results)
		}
	}
	if n := countAudit(t, e, "face.quarantine", fmt.Sprint("face/", f0)); n != 1 {
		t.Errorf("%d face.quarantine entries for face %d after two searches, want 1", n, f0)
	}

	for _, who := range []string{"ivan", "dora"} {
		if st, body := e.login(who).json("GET", "/api/v1/quarantine", nil); st != http.StatusForbidden {
			t.Errorf("quarantine list as %s: %d %s", who, st, body)
		}
	}
	st, body := op.json("GET", "/api/v1/quarantine", nil)
	list := decode[struct{ Faces []quarantinedJSON }](t, body)
	if st != http.StatusOK || len(list.Faces) != 1 || list.Faces[0].FaceID != f0 || list.Faces[0].FoundBy != "search" ||
		list.Faces[0].Reason != "does not authenticate" || list.Faces[0].SourceID != src {
		t.Fatalf("quarantine list: %d %s", st, body)
	}

	// A rights request of someone else goes on; the other damaged face is
	// put in quarantine by it, and the DPO is told that two faces could not
	// be compared.
	selfie, err := os.ReadFile(filepath.Join(e.photos, "p2.png"))
	if err != nil {
		t.Fatal(err)
	}
	dora := e.login("dora")
	req := e.registerRights(dora, "access", [][]byte{selfie})
	st, body = dora.json("POST", fmt.Sprintf("/api/v1/rights/%d/candidates", req), nil)
	if found := decode[foundJSON](t, body); st != http.StatusOK || found.Unreadable != 2 || found.Review == nil || found.Review.Total != 1 || found.Review.Gallery != 1 {
		t.Errorf("candidates with a face in quarantine: %d %s", st, body)
	}
	if p := e.signIn("dora").get(fmt.Sprintf("/rights/%d", req)); !strings.Contains(p.body, `id="quarantined"`) ||
		!strings.Contains(p.body, "2 stored faces are in quarantine") {
		t.Errorf("the DPO's request page does not say a face is in quarantine: %.3000s", p.body)
	}

	release := fmt.Sprintf("/api/v1/quarantine/%d/release", f0)
	st, body = op.json("POST", release, nil)
	if ae := decode[apiError](t, body); st != http.StatusConflict || ae.Code != "still_damaged" {
		t.Errorf("release of a damaged face: %d %s", st, body)
	}
	if st, body := op.json("POST", fmt.Sprintf("/api/v1/quarantine/%d/release", byPhoto["p2.png"]), nil); st != http.StatusNotFound {
		t.Errorf("release of a face not in quarantine: %d %s", st, body)
	}
	storetest.SetTemplates(t, dbPath, map[int64][]byte{f0: good}) // restored; f1 stays damaged
	st, body = op.json("POST", release, nil)
	if r := decode[quarantineResult](t, body); st != http.StatusOK || !r.Released || r.FaceID != f0 {
		t.Fatalf("release after restoring: %d %s", st, body)
	}
	if res := search("p0.png"); len(res.Results) != 1 || res.Results[0].FaceID != f0 {
		t.Errorf("released face not found again: %+v", res.Results)
	}
	if res := search("p1.png"); res.Match {
		t.Errorf("search for the other damaged face: %+v", res.Results)
	}

	// The console: the operator sees the face in quarantine and its
	// actions; the DPO sees the sources but not the quarantine.
	web := e.signIn("olga")
	page := web.get("/sources")
	checkHTML(t, "sources", page.body)
	erase := fmt.Sprintf("/quarantine/%d/erase", f1)
	if !strings.Contains(page.body, `id="quarantine"`) || !strings.Contains(page.body, `data-face="`+fmt.Sprint(f1)+`"`) ||
		!strings.Contains(page.body, `action="`+erase+`"`) || !strings.Contains(page.body, "does not authenticate") {
		t.Fatalf("sources page without the face in quarantine: %.4000s", page.body)
	}
	if p := e.signIn("dora").get("/sources"); p.status != http.StatusOK || strings.Contains(p.body, `id="quarantine"`) {
		t.Errorf("the DPO's sources page: %d, quarantine shown %v", p.status, strings.Contains(p.body, `id="quarantine"`))
	}
	r := web.post(fmt.Sprintf("/quarantine/%d/release", f1), nil)
	if r.status != http.StatusConflict || !strings.Contains(r.body, "still cannot be opened") {
		t.Errorf("console release of a damaged face: %d %.300s", r.status, r.body)
	}
	r = web.post(erase, url.Values{})
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "notice=face-gone") {
		t.Fatalf("console erase: %d %s %.300s", r.status, r.header.Get("Location"), r.body)
	}
	page = web.get(r.header.Get("Location"))
	if !strings.Contains(page.body, fmt.Sprintf("Face %d is erased", f1)) || !strings.Contains(page.body, `id="quarantine-empty"`) {
		t.Errorf("sources page after the erasure: %.4000s", page.body)
	}
	if _, err := e.data.DB.Face(t.Context(), f1); err == nil {
		t.Errorf("face %d still stored after its erasure", f1)
	}
	if ids := vindex.Count(e.srv.cfg.Index.Index); ids != 2 {
		t.Errorf("%d faces in the index, want 2", ids)
	}
	if n := countAudit(t, e, "faces.erase", fmt.Sprint("face/", f1)); n != 1 {
		t.Errorf("%d faces.erase entries for face %d, want 1", n, f1)
	}
}

func countAudit(t *testing.T, e *testEnv, action, object string) int {
	t.Helper()
	es, err := e.data.DB.AuditEntries(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(slices.DeleteFunc(es, func(a store.AuditEntry) bool { return a.Action != action || a.Object != object }))
}
