package rights_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/modelpack"
	"gabarit/internal/rights"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vault"
	"gabarit/internal/vindex/flat"
)

const dim = 6

// photos maps photo bytes to the faces the fake analyzer finds.
type photos map[string][]face.Face

func (p photos) Analyze(_ context.Context, data []byte) (face.Analysis, error) {
	fs, ok := p[string(data)]
	if !ok {
		return face.Analysis{}, errors.New("corrupt image")
	}
	return face.Analysis{Width: 100, Height: 100, Faces: fs}, nil
}

var (
	alice = face.Normalize([]float32{1, 0.1, 0, 0, 0, 0})
	bob   = face.Normalize([]float32{0, 1, 0.1, 0, 0, 0})
	carol = face.Normalize([]float32{0, 0, 1, 0.1, 0, 0})
	// alicia resembles alice (similarity 0.35): a candidate of alice's
	// requests, under the strict operating point.
	alicia = face.Normalize([]float32{0.35 * 1 / 1.005, 0.35 * 0.1 / 1.005, 0, 0, 0.9367, 0})
)

func one(v face.Embedding) []face.Face {
	return []face.Face{{Box: face.Box{W: 50, H: 50}, Quality: 0.8, Embedding: v}}
}

// pgPrefix starts the names of the tests that TestRightsOnPostgres runs
// again over a PostgreSQL store: their fixtures open one.
const pgPrefix = "TestRightsOnPostgres/"

// TestRightsOnPostgres runs the rights requests end to end (register,
// find, review, identity check, act; erasure, access, restriction,
// notices, a crash half-way) over a PostgreSQL store, as the other tests
// do over SQLite.
func TestRightsOnPostgres(t *testing.T) {
	storetest.Postgres(t) // skips (or fails) here, once, without a server
	for _, tt := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Access", TestAccess}, {"Candidates", TestCandidates}, {"NothingBeforeReview", TestNothingBeforeReview},
		{"Erasure", TestErasure}, {"ReviewDecides", TestReviewDecides}, {"Restriction", TestRestriction},
		{"NotHeld", TestNotHeld}, {"Notices", TestNotices}, {"IdentityCheckRevealsNothing", TestIdentityCheckRevealsNothing},
		{"FinishAfterCrash", TestFinishAfterCrash}, {"SweepClosed", TestSweepClosed}, {"AccessPackageInStore", TestAccessPackageInStore},
	} {
		t.Run(tt.name, tt.fn)
	}
}

type fixture struct {
	db  *store.DB
	kr  *keyring.Keyring
	v   *vault.Vault
	idx *flat.Index
	eng *rights.Engine
	ids map[string][]int64 // face ids by person
	// path is the store's SQLite file.
	path string
}

// newFixture stores alice twice (once alone, once with bob), carol once
// and alicia, who resembles alice, once.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	var (
		db   *store.DB
		kr   *keyring.Keyring
		path string
	)
	if strings.HasPrefix(t.Name(), pgPrefix) {
		db, kr = storetest.OpenTarget(t, storetest.Postgres(t))
		if db.Dialect() != "postgres" {
			t.Fatalf("the store of %s is %s, not PostgreSQL", t.Name(), db.Dialect())
		}
	} else {
		db, kr, path = storetest.OpenFile(t)
	}
	v, err := vault.Open(ctx, db, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	src := storetest.Source(t, db, store.BasisConsent, time.Hour)
	if err := kr.EnsureKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, kr: kr, v: v, idx: flat.New(dim), ids: map[string][]int64{}, path: path}
	add := func(loc string, people ...string) {
		vecs := map[string]face.Embedding{"alice": alice, "bob": bob, "carol": carol, "alicia": alicia}
		rec := store.IngestRecord{Locator: loc, SHA256: sha256.Sum256([]byte(loc)), Image: store.Image{Width: 100, Height: 100}}
		for i, p := range people {
			rec.Faces = append(rec.Faces, store.Face{Box: face.Box{X: float64(10 + 40*i), Y: 10, W: 30, H: 30}, ModelID: "m", Dim: dim})
			rec.Templates = append(rec.Templates, vecs[p])
		}
		res, err := db.CommitIngest(ctx, src, []store.IngestRecord{rec}, func(sf store.Face, t []float32) ([]byte, error) {
			return kr.Seal(ctx, src, sf.ID, sf.ModelID, t)
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range people {
			id := res[0].FaceIDs[i]
			f.ids[p] = append(f.ids[p], id)
			if err := f.idx.Add(ctx, []int64{id}, [][]float32{rec.Templates[i]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("a.jpg", "alice")
	add("ab.jpg", "alice", "bob")
	add("c.jpg", "carol")
	add("l.jpg", "alicia")
	pics := photos{"alice1": one(alice), "alice2": one(face.Normalize([]float32{1, 0.15, 0.05, 0, 0, 0})),
		"bob1": one(bob), "dave": one(face.Normalize([]float32{0, 0, 0, 0, 0, 1})), "blank": nil}
	dec, err := modelpack.DefaultOpenSet().Decider()
	if err != nil {
		t.Fatal(err)
	}
	f.eng = &rights.Engine{An: pics, Store: db, Keys: kr, Vault: v, Index: f.idx, ModelID: "m", Decider: dec,
		Match: 0.5, SelfieMatch: 0.8, Methods: dsr.DefaultIdentityMethods(),
		Crop: func(photo []byte, _ face.Face) ([]byte, error) { return append([]byte("crop of "), photo...), nil },
		Image: func(context.Context, store.Source, string) ([]byte, error) {
			return nil, errors.New("no image in this test")
		},
		OutDir: t.TempDir()}
	return f
}

func (f *fixture) request(t *testing.T, kind dsr.Kind, selfies ...string) dsr.Request {
	t.Helper()
	var b [][]byte
	for _, s := range selfies {
		b = append(b, []byte(s))
	}
	r, err := f.eng.Register(context.Background(), kind, b, "alice@example.org", "dpo")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != dsr.Received || r.Due.Before(r.Received.AddDate(0, 0, 27)) {
		t.Fatalf("registered %+v", r)
	}
	return r
}

// find builds request id's candidate set and indexes it by face.
func (f *fixture) find(t *testing.T, id int64) map[int64]store.RightsCandidate {
	t.Helper()
	found, err := f.eng.Find(context.Background(), id, "dpo")
	if err != nil || found.Refused {
		t.Fatalf("find: %+v, %v", found, err)
	}
	out := map[int64]store.RightsCandidate{}
	for _, c := range found.Review.Candidates {
		out[c.FaceID] = c
	}
	return out
}

// answer takes request id through its steps: find, review with exactly
// selected (nil: the pre-selection), identity check, act.
func (f *fixture) answer(t *testing.T, id int64, selected []int64) rights.Outcome {
	t.Helper()
	ctx := context.Background()
	cands := f.find(t, id)
	if selected == nil {
		for fid, c := range cands {
			if c.Preselected {
				selected = append(selected, fid)
			}
		}
	}
	rv, err := f.eng.Review(ctx, id, selected, "dpo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Identify(ctx, id, "id-document", "passport seen", "dpo"); err != nil {
		t.Fatal(err)
	}
	out, err := f.eng.Process(ctx, id, len(rv.Selected()), "dpo")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAccess(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Access, "alice1", "alice2")
	out := f.answer(t, r.ID, nil)
	if out.Request.State != dsr.Completed || out.ActedOn != 2 || out.Package == "" {
		t.Fatalf("outcome %+v", out)
	}
	// Which faces: in the sealed record only.
	if len(out.Request.Matches) != 0 {
		t.Errorf("the register keeps face ids %v after closing", out.Request.Matches)
	}
	zr, err := zip.OpenReader(out.Package)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var rep struct {
		Faces []struct {
			FaceID     int64    `json:"face_id"`
			Similarity *float64 `json:"similarity"`
		} `json:"faces"`
	}
	for _, zf := range zr.File {
		if zf.Name == "report.json" {
			rc, _ := zf.Open()
			if err := json.NewDecoder(rc).Decode(&rep); err != nil {
				t.Fatal(err)
			}
			rc.Close()
		}
	}
	var got []int64
	for _, fc := range rep.Faces {
		got = append(got, fc.FaceID)
		if fc.Similarity == nil || *fc.Similarity < 0.9 {
			t.Errorf("face %d: similarity %v in the report", fc.FaceID, fc.Similarity)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(f.ids["alice"]) {
		t.Errorf("report.json lists %v, want alice's %v", got, f.ids["alice"])
	}
	b, _ := os.ReadFile(out.Package)
	var res struct {
		SHA string `json:"package_sha256"`
	}
	if err := json.Unmarshal(out.Request.Result, &res); err != nil || res.SHA != fmt.Sprintf("%x", sha256.Sum256(b)) || res.SHA != out.PackageSHA {
		t.Errorf("package sha256 %q in the result (%v), outcome %q", res.SHA, err, out.PackageSHA)
	}
	// The selfies' templates and crops are gone once the request is closed.
	if ts, _ := f.v.Templates(ctx, r.ID, vault.Selfie); len(ts) != 0 {
		t.Errorf("%d selfie templates kept after closing", len(ts))
	}
	if _, err := f.eng.SelfieCrop(ctx, r.ID, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("selfie crop after closing: %v", err)
	}
	if _, err := f.eng.Process(ctx, r.ID, 2, "dpo"); !errors.Is(err, rights.ErrNotOpen) {
		t.Errorf("processing a closed request: %v", err)
	}
	// Selfie templates a crash left behind a closed request go at the next
	// attempt on it.
	if _, err := f.v.Add(ctx, vault.Selfie, r.ID, "m", [][]float32{alice}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Find(ctx, r.ID, "dpo"); !errors.Is(err, rights.ErrNotOpen) {
		t.Errorf("finding for a closed request: %v", err)
	}
	if ts, _ := f.v.Templates(ctx, r.ID, vault.Selfie); len(ts) != 0 {
		t.Errorf("%d selfie templates left behind a closed request", len(ts))
	}
}

// TestCandidates: the set holds the person's faces, pre-selected, and a
// look-alike under the strict operating point, not pre-selected, each
// scored against every selfie.
func TestCandidates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Erasure, "alice1", "alice2")
	if b, err := f.eng.SelfieCrop(ctx, r.ID, 2); err != nil || string(b) != "crop of alice2" {
		t.Errorf("selfie 2's crop: %q, %v", b, err)
	}
	cands := f.find(t, r.ID)
	for _, id := range f.ids["alice"] {
		c, ok := cands[id]
		if !ok || !c.Preselected || !c.Selected || c.Band != rights.BandStrong || len(c.Similarities) != 2 {
			t.Errorf("alice's face %d: %+v (found %v)", id, c, ok)
		}
	}
	c, ok := cands[f.ids["alicia"][0]]
	if !ok || c.Preselected || c.Selected || c.Band == rights.BandStrong || c.Score < 0.3 || c.Score > 0.4 || c.Strangers <= 0 {
		t.Errorf("alicia's face: %+v (found %v)", c, ok)
	}
	if _, ok := cands[f.ids["bob"][0]]; ok {
		t.Errorf("bob's face is a candidate")
	}
	rv, err := f.db.RightsReview(ctx, r.ID)
	if err != nil || rv.Gallery != 5 || rv.Selfies != 2 || rv.ReviewedBy != "" || rv.Strict <= c.Score {
		t.Errorf("review %+v, %v", rv, err)
	}
}

// TestNothingBeforeReview: no act without a candidate set, a review, an
// identity check, and the count the DPO confirmed.
func TestNothingBeforeReview(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Erasure, "alice1")
	if _, err := f.eng.Process(ctx, r.ID, 2, "dpo"); !errors.Is(err, rights.ErrNoIdentity) {
		t.Errorf("act before the identity check: %v", err)
	}
	if _, err := f.eng.Identify(ctx, r.ID, "passport", "", "dpo"); !errors.Is(err, dsr.ErrInvalid) {
		t.Errorf("unknown method: %v", err)
	}
	if _, err := f.eng.Identify(ctx, r.ID, "other", " ", "dpo"); !errors.Is(err, dsr.ErrInvalid) {
		t.Errorf("method other without a note: %v", err)
	}
	if _, err := f.eng.Identify(ctx, r.ID, "in-person", "", "dpo"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Identify(ctx, r.ID, "in-person", "", "dpo"); err == nil {
		t.Error("a second identity check was recorded")
	}
	if _, err := f.eng.Process(ctx, r.ID, 2, "dpo"); !errors.Is(err, rights.ErrNoCandidates) {
		t.Errorf("act without candidates: %v", err)
	}
	f.find(t, r.ID)
	if _, err := f.eng.Process(ctx, r.ID, 2, "dpo"); !errors.Is(err, rights.ErrNotReviewed) {
		t.Errorf("act before the review: %v", err)
	}
	if _, err := f.eng.Review(ctx, r.ID, f.ids["alice"], "dpo"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Process(ctx, r.ID, 3, "dpo"); !errors.Is(err, rights.ErrStale) {
		t.Errorf("act on another count than confirmed: %v", err)
	}
	if n, _ := f.db.FaceCount(ctx); n != 5 {
		t.Fatalf("%d faces left before acting, want 5", n)
	}
	// Finding again resets the review.
	f.find(t, r.ID)
	if _, err := f.eng.Process(ctx, r.ID, 2, "dpo"); !errors.Is(err, rights.ErrNotReviewed) {
		t.Errorf("act after a new search, before its review: %v", err)
	}
	if _, err := f.eng.Review(ctx, r.ID, f.ids["alice"], "dpo"); err != nil {
		t.Fatal(err)
	}
	out, err := f.eng.Process(ctx, r.ID, 2, "dpo")
	if err != nil || out.Erased != 2 {
		t.Fatalf("act: %+v, %v", out, err)
	}
}

func TestErasure(t *testing.T) {
	for _, kind := range []dsr.Kind{dsr.Erasure, dsr.Objection} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			r := f.request(t, kind, "alice1")
			out := f.answer(t, r.ID, nil)
			if out.Erased != 2 || out.ErasedImages != 1 || out.Proof == nil || !out.Proof.OK || out.Proof.Searched == 0 {
				t.Fatalf("outcome %+v, proof %+v", out, out.Proof)
			}
			// A search at threshold 0 returns none of alice's faces; bob's
			// and alicia's stay.
			hits, _ := f.idx.Search(ctx, alice, 100, 0)
			for _, h := range hits {
				for _, id := range f.ids["alice"] {
					if h.ID == id {
						t.Errorf("erased face %d returned", id)
					}
				}
			}
			for _, p := range []string{"bob", "alicia"} {
				if _, err := f.db.Face(ctx, f.ids[p][0]); err != nil {
					t.Errorf("%s's face erased: %v", p, err)
				}
			}
			suppressed, err := f.v.Match(ctx, "m", alice, []vault.Kind{vault.Objection}, 0.5)
			if err != nil || suppressed != (kind == dsr.Objection) {
				t.Errorf("suppression entry: %v, %v", suppressed, err)
			}
			// The look-alike is not suppressed by the person's objection.
			if s, _ := f.v.Match(ctx, "m", alicia, []vault.Kind{vault.Objection}, 0.5); s {
				t.Error("alicia is suppressed")
			}
			// The record says which faces went, and which candidates stayed.
			rec, err := f.eng.OpenRecord(ctx, r.ID, "dpo")
			if err != nil {
				t.Fatal(err)
			}
			var acted, left []int64
			for _, fc := range rec.Faces {
				acted = append(acted, fc.FaceID)
				if fc.Locator == "" || !fc.Preselected {
					t.Errorf("record of face %d: %+v", fc.FaceID, fc)
				}
			}
			for _, o := range rec.Others {
				left = append(left, o.FaceID)
			}
			if fmt.Sprint(acted) != fmt.Sprint(f.ids["alice"]) || fmt.Sprint(left) != fmt.Sprint(f.ids["alicia"]) ||
				rec.Identity == nil || rec.Identity.Method != "id-document" || rec.Review == nil || rec.Review.ReviewedBy != "dpo" {
				t.Errorf("record: acted on %v, left %v, identity %+v, review %+v", acted, left, rec.Identity, rec.Review)
			}
			es, _ := f.db.AuditEntries(ctx, 1, 1<<40)
			var actions []string
			for _, e := range es {
				if e.Object == fmt.Sprintf("rights/%d", r.ID) {
					actions = append(actions, e.Action)
					if e.Action == "rights.record" && !strings.Contains(string(e.Detail), `"faces":2`) {
						t.Errorf("record audit detail %s", e.Detail)
					}
				}
			}
			want := "rights.received rights.candidates rights.reviewed rights.verified rights.identity rights.in-progress faces.erase rights.completed rights.record rights.record-read"
			if strings.Join(actions, " ") != want {
				t.Errorf("audit trail\n%s\nwant\n%s", strings.Join(actions, " "), want)
			}
		})
	}
}

// TestReviewDecides: the DPO deselects one of the person's faces and adds
// the look-alike; exactly those are acted on.
func TestReviewDecides(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Erasure, "alice1")
	keep, take := f.ids["alice"][1], f.ids["alicia"][0]
	out := f.answer(t, r.ID, []int64{f.ids["alice"][0], take})
	if out.Erased != 2 {
		t.Fatalf("erased %d", out.Erased)
	}
	if _, err := f.db.Face(ctx, keep); err != nil {
		t.Errorf("the deselected face was erased: %v", err)
	}
	if _, err := f.db.Face(ctx, take); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the selected look-alike was not erased: %v", err)
	}
	// A face that was not a candidate is added with its score.
	r2 := f.request(t, dsr.Restriction, "alice1")
	f.find(t, r2.ID)
	rv, err := f.eng.Review(ctx, r2.ID, []int64{keep, f.ids["carol"][0]}, "dpo")
	if err != nil {
		t.Fatal(err)
	}
	var added *store.RightsCandidate
	for i, c := range rv.Candidates {
		if c.FaceID == f.ids["carol"][0] {
			added = &rv.Candidates[i]
		}
	}
	if added == nil || !added.Added || !added.Selected || added.Band != rights.BandWeak || len(rv.Selected()) != 2 {
		t.Errorf("added %+v, selected %v", added, rv.Selected())
	}
	if _, err := f.eng.Review(ctx, r2.ID, []int64{1 << 40}, "dpo"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("adding a face that does not exist: %v", err)
	}
}

func TestRestriction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Restriction, "alice1")
	out := f.answer(t, r.ID, nil)
	if out.ActedOn != 2 || out.Erased != 0 {
		t.Fatalf("outcome %+v", out)
	}
	if ok, _ := f.v.Match(ctx, "m", alice, []vault.Kind{vault.Restriction}, 0.5); !ok {
		t.Error("no restriction entry")
	}
	if ok, _ := f.v.Match(ctx, "m", alicia, []vault.Kind{vault.Restriction}, 0.5); ok {
		t.Error("the look-alike is hidden")
	}
	if n, _ := f.db.FaceCount(ctx); n != 5 {
		t.Errorf("restriction deleted faces: %d left", n)
	}
}

// TestNotHeld: an access request from someone not held, whose candidates
// the DPO rejects, discloses no one and says so.
func TestNotHeld(t *testing.T) {
	f := newFixture(t)
	r := f.request(t, dsr.Access, "dave")
	out := f.answer(t, r.ID, []int64{})
	if out.ActedOn != 0 || out.Package == "" {
		t.Fatalf("outcome %+v", out)
	}
	zr, err := zip.OpenReader(out.Package)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if zf.Name != "report.json" && zf.Name != "report.html" {
			t.Errorf("the package of someone not held holds %s", zf.Name)
		}
		if zf.Name == "report.json" {
			rc, _ := zf.Open()
			var rep struct {
				Faces        []any  `json:"faces"`
				Confirmation string `json:"confirmation"`
			}
			_ = json.NewDecoder(rc).Decode(&rep)
			rc.Close()
			if len(rep.Faces) != 0 || !strings.Contains(rep.Confirmation, "holds no face") {
				t.Errorf("report: %+v", rep)
			}
		}
	}
}

func TestNotices(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Erasure, "alice1")
	out := f.answer(t, r.ID, nil)
	if err := f.eng.Notified(ctx, r.ID, 999, "dpo"); !errors.Is(err, dsr.ErrInvalid) {
		t.Errorf("notice of a search that did not return the person: %v (recipients %v)", err, out.Recipients)
	}
}

// TestIdentityCheckRevealsNothing: selfies of two people, or without a
// face, are refused with the same answer whether or not the person is held.
func TestIdentityCheckRevealsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var outs []rights.Found
	for _, selfies := range [][]string{{"alice1", "bob1"}, {"dave", "bob1"}} {
		r := f.request(t, dsr.Access, selfies...)
		found, err := f.eng.Find(ctx, r.ID, "dpo")
		if err != nil {
			t.Fatal(err)
		}
		if !found.Refused || found.Request.State != dsr.Refused || found.Request.Reason != rights.RefusedIdentity ||
			len(found.Review.Candidates) != 0 {
			t.Errorf("%v: %+v", selfies, found)
		}
		outs = append(outs, found)
	}
	a, b := outs[0], outs[1] // alice (held) and dave (not held)
	a.Request, b.Request = dsr.Request{}, dsr.Request{}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("a held person's refusal %+v differs from a stranger's %+v", a, b)
	}
	if n, _ := f.db.FaceCount(ctx); n != 5 {
		t.Errorf("faces = %d after refusals", n)
	}
	// A selfie without a face: nothing is registered.
	for _, selfies := range [][][]byte{{[]byte("blank")}, {[]byte("alice1"), []byte("blank")}} {
		if _, err := f.eng.Register(ctx, dsr.Access, selfies, "x@example.org", "dpo"); !errors.Is(err, face.ErrNoFace) {
			t.Errorf("selfies %q: err = %v, want ErrNoFace", selfies, err)
		}
	}
	if reqs, _ := f.db.RightsRequests(ctx); len(reqs) != 2 {
		t.Errorf("%d requests registered, want 2", len(reqs))
	}
}

// TestFinishAfterCrash: a run that stopped after freezing the reviewed set
// (the request in progress, some faces already erased) is finished on that
// set, without a new confirmation, and the record still names every face.
func TestFinishAfterCrash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Erasure, "alice1")
	f.find(t, r.ID)
	if _, err := f.eng.Review(ctx, r.ID, f.ids["alice"], "dpo"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Identify(ctx, r.ID, "in-person", "", "dpo"); err != nil {
		t.Fatal(err)
	}
	// The crash: the set is frozen and one face erased, then nothing.
	if _, err := f.db.UpdateRightsRequest(ctx, r.ID, "dpo", func(q *dsr.Request, now time.Time) error {
		q.Matches = f.ids["alice"]
		return q.Advance(now, dsr.InProgress, "")
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.EraseFaces(ctx, f.ids["alice"][:1], "dpo", fmt.Sprintf("rights/%d", r.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Review(ctx, r.ID, nil, "dpo"); !errors.Is(err, rights.ErrActing) {
		t.Errorf("changing the review of a request being acted on: %v", err)
	}
	out, err := f.eng.Process(ctx, r.ID, -1, "dpo")
	if err != nil {
		t.Fatal(err)
	}
	if out.Request.State != dsr.Completed || out.ActedOn != 2 || out.Proof == nil || !out.Proof.OK {
		t.Fatalf("finished: %+v, proof %+v", out, out.Proof)
	}
	for _, id := range f.ids["alice"] {
		if _, err := f.db.Face(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("face %d: %v", id, err)
		}
	}
	rec, err := f.eng.OpenRecord(ctx, r.ID, "dpo")
	if err != nil || len(rec.Faces) != 2 {
		t.Fatalf("record: %+v, %v", rec, err)
	}
}
