package rights_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/dsr"
	"gabarit/internal/rights"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// TestRequestGoesOnPastSwappedTemplates is the probe of issue 12 (item 3):
// bob's and carol's sealed templates swapped in the database no longer
// stop a request of someone else. Alice's access request finds her faces,
// the two damaged faces are put in quarantine (found by rights, once) and
// counted as unreadable in what the DPO sees: the candidate step and the
// request's result.
func TestRequestGoesOnPastSwappedTemplates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	storetest.SwapTemplates(t, f.path, f.ids["bob"][0], f.ids["carol"][0])

	r := f.request(t, dsr.Access, "alice1", "alice2")
	found, err := f.eng.Find(ctx, r.ID, "dpo")
	if err != nil {
		t.Fatalf("find with two damaged faces in the store: %v", err)
	}
	if found.Unreadable != 2 || found.Review.Gallery != 3 {
		t.Errorf("unreadable %d, gallery %d; want 2 unreadable of 5 faces, 3 compared", found.Unreadable, found.Review.Gallery)
	}
	var pre []int64
	for _, c := range found.Review.Candidates {
		if c.Preselected {
			pre = append(pre, c.FaceID)
		}
	}
	slices.Sort(pre)
	if !slices.Equal(pre, f.ids["alice"]) {
		t.Errorf("pre-selected %v, want alice's faces %v", pre, f.ids["alice"])
	}
	q, err := f.db.Quarantined(ctx)
	if err != nil || len(q) != 2 || q[0].Found != store.FoundByRights {
		t.Fatalf("quarantined = %+v, %v", q, err)
	}
	// Found again: the faces are not opened nor reported twice.
	again, err := f.eng.Find(ctx, r.ID, "dpo")
	if err != nil || again.Unreadable != 2 {
		t.Fatalf("find again: unreadable %d, %v", again.Unreadable, err)
	}
	if n := auditActions(t, f.db)["face.quarantine"]; n != 2 {
		t.Errorf("%d face.quarantine entries, want 2", n)
	}

	out := f.answer(t, r.ID, nil)
	res, ok := rights.ResultOf(out.Request)
	if out.Request.State != dsr.Completed || !ok || res.UnreadableFaces != 2 || *res.Faces != 2 {
		t.Fatalf("outcome %+v, result %+v", out, res)
	}
	// The package itself tells the person.
	zr, err := zip.OpenReader(out.Package)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var rep struct {
		Notes []string `json:"notes"`
	}
	for _, zf := range zr.File {
		if zf.Name == "report.json" {
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(rc).Decode(&rep)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool {
		return strings.HasPrefix(n, "2 stored face(s) could not be compared with your photos")
	}) {
		t.Errorf("the access package's notes do not say 2 faces could not be compared: %q", rep.Notes)
	}
}

// TestEraseQuarantinedFaceOfReviewedSet: a face of the reviewed set put in
// quarantine after the review is still erased (erasing needs no
// template); a face the DPO adds that is in quarantine joins the set
// without a score; a restriction counts the faces it could not keep out
// by their template.
func TestEraseQuarantinedFaceOfReviewedSet(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Erasure, "alice1", "alice2")
	f.find(t, r.ID)
	a0, a1 := f.ids["alice"][0], f.ids["alice"][1]
	if _, err := f.eng.Review(ctx, r.ID, []int64{a0, a1}, "dpo"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Identify(ctx, r.ID, "id-document", "passport seen", "dpo"); err != nil {
		t.Fatal(err)
	}
	storetest.SwapTemplates(t, f.path, a1, f.ids["alicia"][0])
	if _, err := f.db.QuarantineFace(ctx, a1, store.FoundBySearch, "does not authenticate", "cli:ann"); err != nil {
		t.Fatal(err)
	}
	out, err := f.eng.Process(ctx, r.ID, 2, "dpo")
	if err != nil {
		t.Fatal(err)
	}
	if out.Erased != 2 || out.Proof == nil || !out.Proof.OK {
		t.Fatalf("erasure of a set with a quarantined face: erased %d, proof %+v", out.Erased, out.Proof)
	}
	for _, id := range []int64{a0, a1} {
		if _, err := f.db.Face(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("face %d still stored: %v", id, err)
		}
	}

	// Carol's restriction; her face is pointed out, then found damaged.
	f2 := newFixture(t)
	c := f2.ids["carol"][0]
	storetest.SwapTemplates(t, f2.path, c, f2.ids["bob"][0])
	r2, err := f2.eng.Register(ctx, dsr.Restriction, [][]byte{[]byte("alice1")}, "alice@example.org", "dpo")
	if err != nil {
		t.Fatal(err)
	}
	f2.find(t, r2.ID)
	rv, err := f2.eng.Review(ctx, r2.ID, append(slices.Clone(f2.ids["alice"]), c), "dpo")
	if err != nil {
		t.Fatalf("review adding a quarantined face: %v", err)
	}
	if i := slices.IndexFunc(rv.Candidates, func(x store.RightsCandidate) bool { return x.FaceID == c }); i < 0 || rv.Candidates[i].Score != 0 {
		t.Fatalf("added quarantined face: %+v", rv.Candidates)
	}
	if _, err := f2.eng.Identify(ctx, r2.ID, "id-document", "passport seen", "dpo"); err != nil {
		t.Fatal(err)
	}
	o2, err := f2.eng.Process(ctx, r2.ID, 3, "dpo")
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := rights.ResultOf(o2.Request); !ok || res.UnreadableFaces != 1 || *res.Restricted != 3 {
		t.Errorf("restriction result %+v", res)
	}
}

func auditActions(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	es, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range es {
		out[e.Action]++
	}
	return out
}
