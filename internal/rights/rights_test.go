package rights_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/rights"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vault"
	"gabarit/internal/vindex/flat"
)

const dim = 4

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
	alice = face.Normalize([]float32{1, 0.1, 0, 0})
	bob   = face.Normalize([]float32{0, 1, 0.1, 0})
	carol = face.Normalize([]float32{0, 0, 1, 0.1})
)

func one(v face.Embedding) []face.Face {
	return []face.Face{{Box: face.Box{W: 50, H: 50}, Embedding: v}}
}

type fixture struct {
	db  *store.DB
	kr  *keyring.Keyring
	v   *vault.Vault
	idx *flat.Index
	eng *rights.Engine
	ids map[string][]int64 // face ids by person
}

// newFixture stores alice twice (once alone, once with bob) and carol once.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, kr := storetest.Open(t)
	m, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), "vault.key"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(ctx, filepath.Join(t.TempDir(), "vault.db"), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	src := storetest.Source(t, db, store.BasisConsent, time.Hour)
	if err := kr.EnsureKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, kr: kr, v: v, idx: flat.New(dim), ids: map[string][]int64{}}
	add := func(loc string, people ...string) {
		vecs := map[string]face.Embedding{"alice": alice, "bob": bob, "carol": carol}
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
	pics := photos{"alice1": one(alice), "alice2": one(face.Normalize([]float32{1, 0.15, 0.05, 0})),
		"bob1": one(bob), "dave": one(face.Normalize([]float32{0, 0, 0, 1})), "blank": nil}
	f.eng = &rights.Engine{An: pics, Store: db, Keys: kr, Vault: v, Index: f.idx, ModelID: "m", Match: 0.5, SelfieMatch: 0.8,
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

func TestAccess(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Access, "alice1", "alice2")
	out, err := f.eng.Process(ctx, r.ID, "dpo")
	if err != nil {
		t.Fatal(err)
	}
	if out.Request.State != dsr.Completed || out.MatchedFaces != 2 || out.Package == "" {
		t.Fatalf("outcome %+v", out)
	}
	if fmt.Sprint(out.Request.Matches) != fmt.Sprint(f.ids["alice"]) {
		t.Errorf("matches %v, want alice's %v", out.Request.Matches, f.ids["alice"])
	}
	zr, err := zip.OpenReader(out.Package)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	names := map[string]bool{}
	for _, zf := range zr.File {
		names[zf.Name] = true
	}
	if !names["report.json"] || !names["report.html"] {
		t.Errorf("package holds %v", names)
	}
	// The selfies' templates are gone once the request is closed.
	if ts, _ := f.v.Templates(ctx, r.ID, vault.Selfie); len(ts) != 0 {
		t.Errorf("%d selfie templates kept after closing", len(ts))
	}
	if _, err := f.eng.Process(ctx, r.ID, "dpo"); !errors.Is(err, rights.ErrNotOpen) {
		t.Errorf("processing a closed request: %v", err)
	}
}

func TestErasure(t *testing.T) {
	for _, kind := range []dsr.Kind{dsr.Erasure, dsr.Objection} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			r := f.request(t, kind, "alice1")
			out, err := f.eng.Process(ctx, r.ID, "dpo")
			if err != nil {
				t.Fatal(err)
			}
			if out.Erased != 2 || out.ErasedImages != 1 || out.Proof == nil || !out.Proof.OK || out.Proof.Searched == 0 {
				t.Fatalf("outcome %+v, proof %+v", out, out.Proof)
			}
			// A search at threshold 0 returns none of alice's faces; bob's stays.
			hits, _ := f.idx.Search(ctx, alice, 100, 0, nil)
			for _, h := range hits {
				for _, id := range f.ids["alice"] {
					if h.ID == id {
						t.Errorf("erased face %d returned", id)
					}
				}
			}
			if _, err := f.db.Face(ctx, f.ids["bob"][0]); err != nil {
				t.Errorf("bob's face erased: %v", err)
			}
			suppressed, err := f.v.Match(ctx, "m", alice, []vault.Kind{vault.Objection}, 0.5)
			if err != nil || suppressed != (kind == dsr.Objection) {
				t.Errorf("suppression entry: %v, %v", suppressed, err)
			}
		})
	}
}

func TestRestriction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := f.request(t, dsr.Restriction, "alice1")
	out, err := f.eng.Process(ctx, r.ID, "dpo")
	if err != nil || out.MatchedFaces != 2 || out.Erased != 0 {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if ok, _ := f.v.Match(ctx, "m", alice, []vault.Kind{vault.Restriction}, 0.5); !ok {
		t.Error("no restriction entry")
	}
	if n, _ := f.db.FaceCount(ctx); n != 4 {
		t.Errorf("restriction deleted faces: %d left", n)
	}
}

// TestIdentityCheckRevealsNothing: selfies of two people, or without a
// face, are refused with the same answer whether or not the person is held.
func TestIdentityCheckRevealsNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var outs []rights.Outcome
	for _, selfies := range [][]string{{"alice1", "bob1"}, {"dave", "bob1"}} {
		r := f.request(t, dsr.Access, selfies...)
		out, err := f.eng.Process(ctx, r.ID, "dpo")
		if err != nil {
			t.Fatal(err)
		}
		if out.Request.State != dsr.Refused || out.Request.Reason != rights.RefusedIdentity || out.MatchedFaces != 0 ||
			len(out.Request.Matches) != 0 || out.Package != "" {
			t.Errorf("%v: outcome %+v", selfies, out)
		}
		outs = append(outs, out)
	}
	a, b := outs[0], outs[1] // alice (held) and dave (not held)
	a.Request, b.Request = dsr.Request{}, dsr.Request{}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("a held person's refusal %+v differs from a stranger's %+v", a, b)
	}
	if n, _ := f.db.FaceCount(ctx); n != 4 {
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
