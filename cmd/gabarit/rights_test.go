//go:build cgo && onnx

package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modeltest"
	"gabarit/internal/pipeline"
	"gabarit/internal/search"
	"gabarit/internal/store"
	"gabarit/internal/vault"
)

// rightsFixture declares a gallery of celeba-dev identities as a source and
// ingests it. The person P is the first identity; P's first two photos are
// kept out of the gallery: the first is the selfie (with a crop of it as the
// second selfie), the second is a "new photo" for re-ingestion.
type rightsFixture struct {
	data, gallery, selfie, selfie2, newPhoto, person string
	src                                              int64
}

func newRightsFixture(t *testing.T) *rightsFixture {
	t.Helper()
	modeltest.Installed(t)
	root := modeltest.SharedData(t, "celeba-dev")
	names, files, err := identityFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	f := &rightsFixture{data: t.TempDir(), gallery: t.TempDir(), person: names[0]}
	dir := t.TempDir()
	f.selfie = filepath.Join(dir, "selfie.jpg")
	if err := copyFile(files[0][0], f.selfie); err != nil {
		t.Fatal(err)
	}
	f.selfie2 = cropJPEG(t, f.selfie, filepath.Join(dir, "selfie2.jpg"))
	f.newPhoto = files[0][1]
	n := 0
	for i := range min(6, len(names)) {
		start := 0
		if i == 0 {
			start = 2
		}
		for _, p := range files[i][start:] {
			if err := copyFile(p, filepath.Join(f.gallery, names[i], filepath.Base(p))); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	f.src = addSource(t, f.data, f.gallery)
	if _, stderr, err := cli(t, f.data, "ingest", "--json", fmt.Sprint(f.src)); exitCode(err) > 1 {
		t.Fatalf("ingest: %v\n%s", err, stderr)
	}
	// The tests search below the operating point to see everyone: the
	// command line's account is an examiner.
	if _, stderr, err := cli(t, f.data, "user", "add", "--roles", "admin,examiner", actor()); err != nil {
		t.Fatalf("user add: %v\n%s", err, stderr)
	}
	return f
}

func (f *rightsFixture) request(t *testing.T, kind string) int64 {
	t.Helper()
	out, stderr, err := cli(t, f.data, "rights", "request", "--kind", kind, "--selfie", f.selfie, "--selfie", f.selfie2,
		"--contact", "person@example.org", "--json")
	if err != nil {
		t.Fatalf("rights request: %v\n%s", err, stderr)
	}
	var r app.RequestView
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID <= 0 || r.State != "received" || r.Due.IsZero() {
		t.Fatalf("rights request printed %q: %v", out, err)
	}
	return r.ID
}

// process answers request id as a careful DPO would on the command line:
// find the candidates, select exactly the person's (the review: the
// pre-selection must hold none of anyone else's), record the identity
// check, act on the reviewed set.
func (f *rightsFixture) process(t *testing.T, id int64) map[string]any {
	t.Helper()
	out, stderr, err := cli(t, f.data, "rights", "candidates", "--json", fmt.Sprint(id))
	if err != nil {
		t.Fatalf("rights candidates: %v\n%s", err, stderr)
	}
	var rv app.ReviewView
	if err := json.Unmarshal([]byte(out), &rv); err != nil || rv.Total == 0 {
		t.Fatalf("rights candidates printed %q: %v", out, err)
	}
	if _, stderr, err := cli(t, f.data, "rights", "process", "--confirm", fmt.Sprint(rv.Preselected), fmt.Sprint(id)); err == nil ||
		!strings.Contains(err.Error()+stderr, "identity") {
		t.Errorf("act before the identity check: %v\n%s", err, stderr)
	}
	db, err := store.Open(context.Background(), filepath.Join(f.data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, c := range rv.Candidates {
		ids = append(ids, c.FaceID)
	}
	refs, err := db.FaceRefs(context.Background(), ids)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, c := range rv.Candidates {
		switch {
		case f.own(refs[c.FaceID].Locator):
			mine = append(mine, fmt.Sprint(c.FaceID))
		case c.Preselected:
			t.Errorf("another person's face %s is pre-selected", refs[c.FaceID].Locator)
		}
	}
	if _, stderr, err := cli(t, f.data, "rights", "review", "--none", "--select", strings.Join(mine, ","), fmt.Sprint(id)); err != nil {
		t.Fatalf("rights review: %v\n%s", err, stderr)
	}
	// Text by default: the request's line.
	if out, stderr, err := cli(t, f.data, "rights", "identity", "--method", "in-person", fmt.Sprint(id)); err != nil ||
		!strings.HasPrefix(out, fmt.Sprintf("request R-%d: ", id)) || !strings.Contains(out, ", verified; due ") {
		t.Fatalf("rights identity: %v %q\n%s", err, out, stderr)
	}
	out, stderr, err = cli(t, f.data, "rights", "process", "--json", "--confirm", fmt.Sprint(len(mine)), fmt.Sprint(id))
	if err != nil {
		t.Fatalf("rights process: %v\n%s", err, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res["state"] != "completed" || int(res["acted_on"].(float64)) != len(mine) {
		t.Fatalf("process = %s (selected %d)", out, len(mine))
	}
	return res
}

// searchIDs runs gabarit search with the selfie and returns the face ids
// and locators it prints.
func (f *rightsFixture) search(t *testing.T, threshold string) app.SearchView {
	t.Helper()
	out, _, err := cli(t, f.data, "search", "--purpose", "test", "--all", "--threshold", threshold,
		"--reason", "rights test: every face at this threshold", "--json", f.selfie)
	if err != nil {
		t.Fatal(err)
	}
	var res app.SearchView
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *rightsFixture) own(locator string) bool { return strings.HasPrefix(locator, f.person+"/") }

func TestRightsAccess(t *testing.T) {
	f := newRightsFixture(t)
	res := f.process(t, f.request(t, "access"))
	matched := int(res["acted_on"].(float64))
	if matched < 5 {
		t.Fatalf("matched %d faces of the person", matched)
	}
	zr, err := zip.OpenReader(res["package"].(string))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var images, faces int
	var report struct {
		Faces []struct {
			FaceID        int64  `json:"face_id"`
			ImageID       int64  `json:"image_id"`
			Locator       string `json:"locator"`
			ImageStatus   string `json:"image_status"`
			OthersBlurred bool   `json:"other_faces_blurred"`
		} `json:"faces"`
	}
	packaged := map[string]*zip.File{}
	for _, zf := range zr.File {
		switch {
		case strings.HasPrefix(zf.Name, "images/"):
			images++
			packaged[zf.Name] = zf
		case strings.HasPrefix(zf.Name, "faces/"):
			faces++
		case zf.Name == "report.json":
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			if err := json.NewDecoder(rc).Decode(&report); err != nil {
				t.Fatal(err)
			}
			rc.Close()
		}
	}
	if len(report.Faces) != matched || faces != matched || images == 0 {
		t.Errorf("package: %d faces in the report, %d crops, %d images; %d matched", len(report.Faces), faces, images, matched)
	}
	own := 0
	for _, fc := range report.Faces {
		if f.own(fc.Locator) {
			own++
		}
		if fc.ImageStatus != "included" {
			t.Errorf("%s: image %s", fc.Locator, fc.ImageStatus)
		}
	}
	if own < matched*8/10 {
		t.Errorf("only %d of %d matched faces are in the person's folder", own, matched)
	}

	// Other people's faces are blurred: in every packaged image with other
	// faces, each other face's box has lost its detail against the original;
	// the person's own face has not.
	db, err := store.Open(context.Background(), filepath.Join(f.data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checked := 0
	for _, fc := range report.Faces {
		if !fc.OthersBlurred {
			continue
		}
		zf := packaged[fmt.Sprintf("images/%d.jpg", fc.ImageID)]
		if zf == nil {
			t.Fatalf("image %d not in the package", fc.ImageID)
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		got, err := imageproc.Decode(b, imageproc.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		orig, err := imageproc.DecodeFile(filepath.Join(f.gallery, filepath.FromSlash(fc.Locator)), imageproc.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		faces, err := db.Faces(context.Background(), fc.ImageID)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range faces {
			d0, d1 := detail(orig.Img, o.Box), detail(got.Img, o.Box)
			if o.ID == fc.FaceID {
				if d1 < d0*0.8 {
					t.Errorf("image %d: the person's own face lost its detail (%.1f → %.1f)", fc.ImageID, d0, d1)
				}
				continue
			}
			// A small face is cut into 8×8 blocks of a few pixels, so block
			// edges keep some neighbour differences: 0.7 still separates it
			// from an untouched face (about 0.9–1.0 after re-encoding).
			if d1 > d0*0.7 {
				t.Errorf("image %d: another person's face (face %d) keeps its detail (%.1f → %.1f)", fc.ImageID, o.ID, d0, d1)
			}
			checked++
		}
	}
	t.Logf("%d other faces checked for blurring", checked)
	if checked == 0 {
		t.Log("no packaged image of the person holds another face: blurring checked by internal/dsr/access only")
	}
}

// detail is the mean absolute difference between horizontal neighbours in
// box: high for a sharp face, near zero once pixelated and blurred.
func detail(m *imageproc.RGB, b face.Box) float64 {
	x0, y0 := max(0, int(b.X)), max(0, int(b.Y))
	x1, y1 := min(m.W-1, int(b.X+b.W)), min(m.H-1, int(b.Y+b.H))
	var sum float64
	n := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			i := 3 * (y*m.W + x)
			for c := range 3 {
				d := float64(m.Pix[i+c]) - float64(m.Pix[i+3+c])
				if d < 0 {
					d = -d
				}
				sum += d
			}
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func TestRightsErasure(t *testing.T) {
	f := newRightsFixture(t)
	before := f.search(t, "0")
	res := f.process(t, f.request(t, "erasure"))
	erased := int(res["erased"].(float64))
	proof := res["proof"].(map[string]any)
	if erased < 5 || proof["ok"] != true {
		t.Fatalf("erasure: %v", res)
	}
	after := f.search(t, "0")
	if len(after.Results) >= len(before.Results) {
		t.Errorf("search at threshold 0: %d results before, %d after", len(before.Results), len(after.Results))
	}
	for _, h := range after.Results {
		if f.own(h.Locator) && h.Similarity >= 0.3566 {
			t.Errorf("after erasure, %s (face %d) is returned at similarity %.3f", h.Locator, h.FaceID, h.Similarity)
		}
	}
	out, _, _ := cli(t, f.data, "audit", "verify")
	if !strings.HasPrefix(out, "audit log intact") {
		t.Errorf("audit after erasure: %q", out)
	}
}

func TestRightsObjection(t *testing.T) {
	f := newRightsFixture(t)
	f.process(t, f.request(t, "objection"))
	// New photos of the person in a new source: not stored.
	fresh := t.TempDir()
	if err := copyFile(f.newPhoto, filepath.Join(fresh, "new.jpg")); err != nil {
		t.Fatal(err)
	}
	src := addSource(t, f.data, fresh)
	out, _, err := cli(t, f.data, "ingest", "--json", fmt.Sprint(src))
	if err != nil {
		t.Fatal(err)
	}
	var sum ingestJSON
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Suppressed < 1 {
		t.Fatalf("re-ingest of the person's new photo: %s, %v", out, err)
	}
	for _, h := range f.search(t, "0.3").Results {
		if f.own(h.Locator) || h.Locator == "new.jpg" {
			t.Errorf("objector's face %s returned", h.Locator)
		}
	}
}

// TestRightsRestriction: a restricted person is never returned, in 1,000
// searches through the search path of `gabarit search` (the probe analysed
// once; index, store, exact re-scoring and the vault's hiding every time).
func TestRightsRestriction(t *testing.T) {
	f := newRightsFixture(t)
	if got := f.search(t, "0.3566"); len(got.Results) == 0 || !f.own(got.Results[0].Locator) {
		t.Fatalf("before restriction the person is found: %+v", got.Results)
	}
	f.process(t, f.request(t, "restriction"))

	ctx := context.Background()
	var ff faceFlags
	ff.workers, ff.threads, ff.pack, ff.device, ff.minFace, ff.minFaceFrac, ff.decodeSide = 1, 1, "default", "cpu", 40, -1, 1600
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer kit.Close()
	df := dataFlags{dir: f.data, index: "hnsw"}
	dk, err := df.open(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dk.Close()
	modelID := kit.Manifest.Embedder.ID()
	h, err := dk.OpenIndex(ctx, modelID, kit.Manifest.Embedder.Dim)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	v, err := dk.Vault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := os.ReadFile(f.selfie)
	if err != nil {
		t.Fatal(err)
	}
	an, err := kit.Analyzer().Analyze(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := kit.OpenSet()
	if err != nil {
		t.Fatal(err)
	}
	eng := &search.Engine{An: fixedAnalysis{an}, Store: dk.DB, Keys: dk.Keys, Index: h.Index, ModelID: modelID, Decider: dec,
		Hide: func(ctx context.Context) (func([]float32) (bool, error), error) {
			return v.Matcher(ctx, modelID, []vault.Kind{vault.Objection, vault.Restriction}, kit.Manifest.Thresholds.SamePerson)
		}}
	refs := map[int64]string{}
	for i := range 1000 {
		res, err := eng.Search(ctx, search.Request{Actor: "test", Purpose: "restriction check", K: 1 + i%50,
			Threshold: &[]float64{-1, 0, 0.2, 0.3566}[i%4], MayExplore: true, Reason: "restriction check",
			Face: -1, Probe: probe})
		if err != nil {
			t.Fatal(err)
		}
		for _, hit := range res.All {
			refs[hit.FaceID] = hit.Locator
			if f.own(hit.Locator) && hit.Similarity >= kit.Manifest.Thresholds.SamePerson {
				t.Fatalf("search %d returned the restricted person's %s at %.3f", i, hit.Locator, hit.Similarity)
			}
		}
	}
	if len(refs) == 0 {
		t.Fatal("the searches returned nothing at all: the check proves nothing")
	}
	// Other people are still found.
	if !slices.ContainsFunc(mapsValues(refs), func(l string) bool { return !f.own(l) }) {
		t.Error("no other person returned at threshold -1")
	}
	// Lifted: found again.
	var reqs []app.RequestView
	out, _, _ := cli(t, f.data, "rights", "list", "--json")
	if err := json.Unmarshal([]byte(out), &reqs); err != nil || len(reqs) != 1 {
		t.Fatalf("rights list: %q, %v", out, err)
	}
	if _, stderr, err := cli(t, f.data, "rights", "lift", fmt.Sprint(reqs[0].ID)); err != nil {
		t.Fatalf("lift: %v\n%s", err, stderr)
	}
	if got := f.search(t, "0.3566"); len(got.Results) == 0 || !f.own(got.Results[0].Locator) {
		t.Errorf("after lifting, the person is not found: %+v", got.Results)
	}
}

// fixedAnalysis answers every Analyze with one analysis.
type fixedAnalysis struct{ a face.Analysis }

func (f fixedAnalysis) Analyze(context.Context, []byte) (face.Analysis, error) { return f.a, nil }

func mapsValues(m map[int64]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
