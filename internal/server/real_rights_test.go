//go:build onnx

package server

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/modeltest"
	"gabarit/internal/store"
)

// Two celeba-dev identities that look alike to the default model: an
// erasure with photos of the first used to erase photos of the second
// (each at 0.38–0.40 to one selfie) when a face counted as the person's on
// any selfie at the pairwise threshold.
const (
	lookAlikeA = "07205"
	lookAlikeB = "07442"
	notHeld    = "07484" // never ingested
)

// realRightsEnv ingests both look-alikes (A without the two photos kept as
// selfies) and three other identities through the API, with the real
// models, and returns the environment, A's selfies and the locators of
// every stored face by id.
func realRightsEnv(t *testing.T) (*testEnv, [][]byte, map[int64]string) {
	t.Helper()
	model, _ := realModel(t)
	root := modeltest.SharedData(t, "celeba-dev")
	e := newTestEnv(t, model)
	e.photos = filepath.Join(e.dir, "celeba")
	ids, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	people := []string{lookAlikeA, lookAlikeB}
	for _, d := range ids {
		if len(people) == 5 {
			break
		}
		if d.IsDir() && !slices.Contains(people, d.Name()) && d.Name() != notHeld {
			people = append(people, d.Name())
		}
	}
	selfies := selfiePair(t, model, filepath.Join(root, lookAlikeA))
	for _, p := range people {
		files, _ := filepath.Glob(filepath.Join(root, p, "*.jpg"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if p == lookAlikeA && slices.ContainsFunc(selfies, func(s []byte) bool { return bytes.Equal(s, b) }) {
				continue
			}
			if err := os.MkdirAll(filepath.Join(e.photos, p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(e.photos, p, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.addUser("olga", store.RoleOperator)
	e.addUser("dora", store.RoleDPO)
	j := e.ingest(e.token("olga"), e.declareSource(e.token("olga")))
	if j.State != jobDone || j.Faces < 60 {
		t.Fatalf("ingest job = %+v", j)
	}
	locs := map[int64]string{}
	if err := e.data.DB.AllTemplates(context.Background(), func(id, _ int64, _ string, _ []byte) error {
		locs[id] = ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	refs, err := e.data.DB.FaceRefs(context.Background(), slices.Collect(func(yield func(int64) bool) {
		for id := range locs {
			if !yield(id) {
				return
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range refs {
		locs[id] = r.Locator
	}
	return e, selfies, locs
}

// selfiePair returns two photos of the identity in dir whose faces agree
// at the selfie threshold, as a request's selfies must.
func selfiePair(t *testing.T, m *app.Faces, dir string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	var photos [][]byte
	var embs []face.Embedding
	for _, f := range files[:min(8, len(files))] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		an, err := m.Analyze(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		if i := face.Largest(an.Faces); i >= 0 {
			photos, embs = append(photos, b), append(embs, an.Faces[i].Embedding)
		}
	}
	for i := range embs {
		for j := i + 1; j < len(embs); j++ {
			if c, _ := embs[i].Cosine(embs[j]); c >= app.SelfieMatch {
				return [][]byte{photos[i], photos[j]}
			}
		}
	}
	t.Fatalf("no two photos of %s agree at %.4f", dir, app.SelfieMatch)
	return nil
}

func of(locator, person string) bool { return strings.HasPrefix(locator, person+"/") }

// TestRealRightsLookAlikes: with two people who look alike, an erasure by
// one lists the other's faces as candidates, under the strict operating
// point and not selected, and erases none of them; the record of the
// erased faces is the DPO's alone.
func TestRealRightsLookAlikes(t *testing.T) {
	e, selfies, locs := realRightsEnv(t)
	dpo := e.token("dora")
	id := e.registerRights(dpo, "erasure", selfies)
	rv := e.findCandidates(dpo, id)
	var mine, theirs, selected []int64
	for _, c := range rv.Candidates {
		loc := locs[c.FaceID]
		switch {
		case of(loc, lookAlikeB):
			theirs = append(theirs, c.FaceID)
			if c.Preselected || c.Selected || c.Band == "strong" {
				t.Errorf("the look-alike's face %s is pre-selected: %+v", loc, c)
			}
		case of(loc, lookAlikeA):
			mine = append(mine, c.FaceID)
		case c.Preselected:
			t.Errorf("another person's face %s is pre-selected: %+v", loc, c)
		}
		if c.Selected {
			selected = append(selected, c.FaceID)
		}
	}
	t.Logf("%d candidates among %d faces: %d of %s (%d pre-selected), %d of %s; strict points %.4f / %.4f",
		rv.Total, rv.Gallery, len(mine), lookAlikeA, rv.Preselected, len(theirs), lookAlikeB, rv.Strict, rv.Group)
	if len(theirs) == 0 {
		t.Fatalf("none of %s's faces is a candidate: the test would prove nothing", lookAlikeB)
	}
	if rv.Preselected < 3 || len(mine) < 10 {
		t.Errorf("%d of %s's faces found, %d pre-selected", len(mine), lookAlikeA, rv.Preselected)
	}
	// Nothing happens before the identity check.
	if st, body := dpo.json("POST", fmt.Sprintf("/api/v1/rights/%d/process", id), map[string]any{"confirm_faces": len(selected)}); st != http.StatusConflict ||
		!strings.Contains(string(body), "no_identity_check") {
		t.Errorf("act before the identity check: %d %s", st, body)
	}
	out := e.actOn(dpo, id, selected)
	if out.Erased != len(selected) || out.Proof == nil || !out.Proof.OK {
		t.Fatalf("erasure: %+v", out)
	}
	ctx := context.Background()
	for _, f := range theirs {
		if _, err := e.data.DB.Face(ctx, f); err != nil {
			t.Errorf("the look-alike's face %d (%s) is gone: %v", f, locs[f], err)
		}
	}
	// The sealed record names the erased faces, for the DPO only.
	st, body := dpo.do("GET", fmt.Sprintf("/api/v1/rights/%d/record", id), "", nil)
	var rec struct {
		Faces []struct {
			FaceID  int64  `json:"face_id"`
			Locator string `json:"locator"`
		} `json:"faces"`
		Others []struct {
			FaceID int64 `json:"face_id"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(body, &rec); st != http.StatusOK || err != nil {
		t.Fatalf("record: %d %s", st, body)
	}
	var erased []int64
	for _, f := range rec.Faces {
		erased = append(erased, f.FaceID)
		if f.Locator != locs[f.FaceID] {
			t.Errorf("record: face %d at %q, was %q", f.FaceID, f.Locator, locs[f.FaceID])
		}
	}
	slices.Sort(erased)
	slices.Sort(selected)
	if !slices.Equal(erased, selected) || len(rec.Others) != rv.Total-len(selected) {
		t.Errorf("record: erased %v, selected %v; %d others of %d", erased, selected, len(rec.Others), rv.Total)
	}
	for _, r := range []store.Role{store.RoleAuditor, store.RoleAdmin, store.RoleInvestigator, store.RoleVerifier, store.RoleOperator, store.RoleExaminer} {
		name := "u-" + string(r)
		e.addUser(name, r)
		if st, _ := e.token(name).do("GET", fmt.Sprintf("/api/v1/rights/%d/record", id), "", nil); st != http.StatusForbidden {
			t.Errorf("%s reads the record: %d", r, st)
		}
	}
	// The general audit keeps counts, not face ids.
	es, err := e.data.DB.AuditEntries(ctx, 1, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range es {
		if en.Object != fmt.Sprintf("rights/%d", id) {
			continue
		}
		var detail map[string]any
		_ = json.Unmarshal(en.Detail, &detail)
		for k, v := range detail {
			if _, list := v.([]any); list {
				t.Errorf("audit %s lists %s: %s", en.Action, k, en.Detail)
			}
		}
	}
}

// TestRealRightsAccess: the package is built only after the identity
// check, lists exactly the reviewed faces and matches the SHA-256 recorded;
// a person not held gets a package with nobody's data, that says so.
func TestRealRightsAccess(t *testing.T) {
	e, selfies, locs := realRightsEnv(t)
	dpo := e.token("dora")
	root := modeltest.SharedData(t, "celeba-dev")

	// The person held: deselect one pre-selected face.
	id := e.registerRights(dpo, "access", selfies)
	rv := e.findCandidates(dpo, id)
	var selected []int64
	for _, c := range rv.Candidates {
		if c.Selected {
			selected = append(selected, c.FaceID)
		}
	}
	if len(selected) < 2 {
		t.Fatalf("%d faces pre-selected", len(selected))
	}
	selected = selected[1:]
	if st, body := dpo.do("GET", fmt.Sprintf("/api/v1/rights/%d/package", id), "", nil); st != http.StatusConflict {
		t.Errorf("package before acting: %d %s", st, body)
	}
	out := e.actOn(dpo, id, selected)
	report := packageReport(t, dpo, id, out.PackageSHA)
	var got []int64
	for _, f := range report.Faces {
		got = append(got, f.FaceID)
		if !of(f.Locator, lookAlikeA) {
			t.Errorf("the package holds %s", f.Locator)
		}
		if f.Similarity == nil || *f.Similarity < 0.3 {
			t.Errorf("face %d: similarity %v", f.FaceID, f.Similarity)
		}
	}
	slices.Sort(got)
	slices.Sort(selected)
	if !slices.Equal(got, selected) {
		t.Errorf("report.json lists %v, reviewed %v", got, selected)
	}

	// Someone never ingested: the DPO rejects every candidate.
	stranger := selfiePair(t, e.srv.cfg.Model.(*app.Faces), filepath.Join(root, notHeld))
	id = e.registerRights(dpo, "access", stranger[:1])
	rv = e.findCandidates(dpo, id)
	for _, c := range rv.Candidates {
		if c.Preselected {
			t.Errorf("a face of someone else (%s) is pre-selected for a person not held: %+v", locs[c.FaceID], c)
		}
	}
	out = e.actOn(dpo, id, []int64{})
	report = packageReport(t, dpo, id, out.PackageSHA)
	if len(report.Faces) != 0 || !strings.Contains(report.Confirmation, "holds no face") {
		t.Errorf("the package of a person not held: %+v", report)
	}
}

type reportJSON struct {
	Confirmation string `json:"confirmation"`
	Faces        []struct {
		FaceID     int64    `json:"face_id"`
		Locator    string   `json:"locator"`
		Similarity *float64 `json:"similarity"`
	} `json:"faces"`
}

// packageReport downloads request id's package, checks its SHA-256 and
// that it holds only the report and the faces' files, and returns the report.
func packageReport(t *testing.T, c *client, id int64, sha string) reportJSON {
	t.Helper()
	st, body := c.do("GET", fmt.Sprintf("/api/v1/rights/%d/package", id), "", nil)
	if st != http.StatusOK {
		t.Fatalf("package: %d %s", st, body)
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != sha {
		t.Errorf("package sha256 %x, recorded %s", sum, sha)
	}
	st, rb := c.do("GET", fmt.Sprintf("/api/v1/rights/%d", id), "", nil)
	d := decode[app.RequestDetail](t, rb)
	var res struct {
		SHA string `json:"package_sha256"`
	}
	if err := json.Unmarshal(d.Result, &res); st != http.StatusOK || err != nil || res.SHA != sha {
		t.Errorf("the request records sha256 %q (%v), the package is %s", res.SHA, err, sha)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var rep reportJSON
	for _, zf := range zr.File {
		if zf.Name != "report.json" {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
	}
	return rep
}
