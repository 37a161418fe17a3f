package rights_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
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

var (
	_ rights.RangeStore = (*store.DB)(nil)
	_ rights.Store      = (*store.DB)(nil)
	_ rights.Quarantine = (*store.DB)(nil)
)

// TestParts: the parts cover lo..hi once, in order, with sizes that differ
// by at most one, and depend on nothing but (lo, hi, p).
func TestParts(t *testing.T) {
	for _, tt := range []struct {
		lo, hi int64
		p      int
		parts  int
	}{
		{1, 100, 8, 8}, {1, 100, 7, 7}, {5, 5, 3, 1}, {10, 13, 9, 4}, {1, 1_000_000, 16, 16},
		{3, 2, 4, 0}, {1, 10, 0, 1}, {1, 10, -2, 1}, {7, 3_000_007, 56, 56},
	} {
		got := rights.Parts(tt.lo, tt.hi, tt.p)
		if len(got) != tt.parts {
			t.Errorf("Parts(%d, %d, %d) = %d parts, want %d", tt.lo, tt.hi, tt.p, len(got), tt.parts)
			continue
		}
		if !reflect.DeepEqual(got, rights.Parts(tt.lo, tt.hi, tt.p)) {
			t.Errorf("Parts(%d, %d, %d) differs from one call to the next", tt.lo, tt.hi, tt.p)
		}
		next := tt.lo
		least, most := tt.hi-tt.lo+1, int64(0)
		for _, r := range got {
			if r.Lo != next || r.Hi < r.Lo {
				t.Fatalf("Parts(%d, %d, %d) = %v: a gap, an overlap or an empty part at %v", tt.lo, tt.hi, tt.p, got, r)
			}
			least, most = min(least, r.Hi-r.Lo+1), max(most, r.Hi-r.Lo+1)
			next = r.Hi + 1
		}
		if len(got) > 0 && (next != tt.hi+1 || most-least > 1) {
			t.Errorf("Parts(%d, %d, %d): ends at %d (want %d), sizes %d..%d", tt.lo, tt.hi, tt.p, next-1, tt.hi, least, most)
		}
	}
}

// serial hides the store's RangeStore methods: the engine then scans with
// one goroutine through AllTemplates, as before the parallel scan.
type serial struct {
	rights.Store
	rights.Quarantine
}

// partStore wraps a store: part runs before each range is streamed, and
// its error fails the stream.
type partStore struct {
	*store.DB
	part func(ctx context.Context, lo, hi int64) error
}

func (s partStore) TemplatesInRange(ctx context.Context, modelID string, lo, hi int64, fn func(faceID, sourceID int64, modelID string, template []byte) error) error {
	if err := s.part(ctx, lo, hi); err != nil {
		return err
	}
	return s.DB.TemplatesInRange(ctx, modelID, lo, hi, fn)
}

// scanFixture is a store of several thousand 512-d faces: the requester's
// 20, look-alikes at many similarities, strangers, faces in quarantine,
// faces of a shredded source and of another model (the requester's among
// both), their ids interleaved; and a request of the requester's.
type scanFixture struct {
	db    *store.DB
	eng   *rights.Engine
	req   int64
	mine  []int64 // the requester's readable faces of the model
	gone  []int64 // the requester's faces that must not be found: shredded source, other model
	faces int     // faces of the model, readable or not
}

func newScanFixture(t *testing.T, target string) *scanFixture {
	t.Helper()
	const d = 512
	ctx := context.Background()
	var (
		db   *store.DB
		kr   *keyring.Keyring
		path string
	)
	if target == "" {
		db, kr, path = storetest.OpenFile(t)
	} else {
		db, kr = storetest.OpenTarget(t, target)
	}
	src, shredded := storetest.Source(t, db, store.BasisConsent, time.Hour), storetest.Source(t, db, store.BasisConsent, time.Hour)
	for _, s := range []int64{src, shredded} {
		if err := kr.EnsureKey(ctx, s); err != nil { // the key of a source is made outside the ingest's transaction
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	unit := func() face.Embedding {
		v := make([]float32, d)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return face.Normalize(v)
	}
	person := unit()
	like := func(noise float64) face.Embedding { // cosine to person about 1/sqrt(1+noise²)
		v, n := make([]float32, d), unit()
		for i := range v {
			v[i] = person[i] + float32(noise)*n[i]
		}
		return face.Normalize(v)
	}
	f := &scanFixture{db: db}
	img := 0
	add := func(src int64, model string, images int, kind func(i, j int) string) {
		t.Helper()
		recs := make([]store.IngestRecord, images)
		var kinds []string
		for i := range recs {
			var key [8]byte
			binary.LittleEndian.PutUint64(key[:], uint64(img))
			recs[i] = store.IngestRecord{Locator: fmt.Sprintf("img%05d.jpg", img), SHA256: sha256.Sum256(key[:]),
				Image: store.Image{Width: 640, Height: 480}}
			img++
			for j := range 4 {
				k := kind(i, j)
				var tm face.Embedding
				switch k {
				case "mine":
					tm = like(0.9)
				case "like":
					tm = like(1.2 + 6*r.Float64())
				default:
					tm = unit()
				}
				kinds = append(kinds, k)
				recs[i].Faces = append(recs[i].Faces, store.Face{Box: face.Box{X: float64(10 + 150*j), Y: 20, W: 100, H: 100},
					Quality: 0.5 + 0.1*float64(j), ModelID: model, Dim: d})
				recs[i].Templates = append(recs[i].Templates, tm)
			}
		}
		res, err := db.CommitIngest(ctx, src, recs, func(sf store.Face, tm []float32) ([]byte, error) {
			return kr.Seal(ctx, src, sf.ID, sf.ModelID, tm)
		})
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, rr := range res {
			for _, id := range rr.FaceIDs {
				switch {
				case kinds[k] == "mine" && src != shredded && model == "m":
					f.mine = append(f.mine, id)
				case kinds[k] == "mine":
					f.gone = append(f.gone, id)
				}
				if model == "m" {
					f.faces++
				}
				k++
			}
		}
	}
	var quarantine []int64
	for b := range 20 {
		// 30 images of the model: the requester's face on the first of
		// one image in three of the first batch, a look-alike on every
		// fifth image; then a shredded source's and another model's.
		add(src, "m", 30, func(i, j int) string {
			switch {
			case b < 10 && i%15 == 0 && j == 0:
				return "mine"
			case i%5 == 0 && j == 1:
				return "like"
			}
			return ""
		})
		add(shredded, "m", 3, func(i, j int) string { return map[bool]string{true: "mine"}[i == 0 && j == 0] })
		add(src, "m2", 3, func(i, j int) string { return map[bool]string{true: "mine"}[j == 0] })
	}
	// Faces in quarantine: one id in 97, none of the requester's.
	n, lo, hi, err := db.FaceIDRange(ctx, "m")
	if err != nil || n != int64(f.faces) {
		t.Fatalf("FaceIDRange = %d, %v; want %d faces", n, err, f.faces)
	}
	for id := lo; id <= hi; id += 97 {
		if slices.Contains(f.mine, id) {
			continue
		}
		if ok, err := db.QuarantineFace(ctx, id, store.FoundByRights, "test", "test"); err == nil && ok {
			quarantine = append(quarantine, id)
		}
	}
	if len(quarantine) < 10 {
		t.Fatalf("%d faces put in quarantine, want at least 10", len(quarantine))
	}
	if path != "" {
		// Two templates swapped in the file: neither opens; the first
		// scan puts them in quarantine.
		storetest.SwapTemplates(t, path, lo+5, lo+6)
	}
	if err := kr.Shred(ctx, shredded); err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(ctx, db, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	dec, err := modelpack.DefaultOpenSet().Decider()
	if err != nil {
		t.Fatal(err)
	}
	f.eng = &rights.Engine{An: photos{"selfie": one(person)}, Store: db, Keys: kr, Vault: v, Index: flat.New(d), ModelID: "m",
		Decider: dec, Match: 0.3566, SelfieMatch: 0.45, Methods: dsr.DefaultIdentityMethods(), OutDir: t.TempDir()}
	req, err := f.eng.Register(ctx, dsr.Access, [][]byte{[]byte("selfie")}, "p@example.org", "test")
	if err != nil {
		t.Fatal(err)
	}
	f.req = req.ID
	if len(f.mine) != 20 || len(f.gone) == 0 {
		t.Fatalf("fixture: %d faces of the requester's, %d unfindable; want 20 and some", len(f.mine), len(f.gone))
	}
	return f
}

// TestParallelScan: the parallel scan finds exactly the candidates of the
// serial scan (same faces, scores, similarities, bands, pre-selection),
// compares as many faces and counts as many unreadable ones, for 1, 2 and 7
// workers (56 parts, which do not divide the id range), on SQLite and
// PostgreSQL; the requester's 20 faces are among them, those of a shredded
// source or another model are not.
func TestParallelScan(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return "" }},
		{"PostgreSQL", func(t *testing.T) string { return storetest.Postgres(t) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newScanFixture(t, tt.target(t))
			ctx := context.Background()
			_, lo, hi, err := f.db.FaceIDRange(ctx, "m")
			if err != nil {
				t.Fatal(err)
			}
			if (hi-lo+1)%(7*rights.PartsPerWorker) == 0 {
				t.Fatalf("the id range %d..%d divides into %d parts: the fixture must make it not", lo, hi, 7*rights.PartsPerWorker)
			}
			find := func(s rights.Store, workers int) rights.Found {
				t.Helper()
				e := *f.eng
				e.Store, e.Workers = s, workers
				found, err := e.Find(ctx, f.req, "test")
				if err != nil {
					t.Fatalf("Find with %d workers: %v", workers, err)
				}
				return found
			}
			// The parallel scan first: it meets the damaged templates.
			seven := find(f.db, 7)
			want := find(serial{f.db, f.db}, 1)
			got := map[int]rights.Found{7: seven, 1: find(f.db, 1), 2: find(f.db, 2)}
			var ids []int64
			for _, c := range want.Review.Candidates {
				ids = append(ids, c.FaceID)
			}
			for _, id := range f.mine {
				if !slices.Contains(ids, id) {
					t.Errorf("the requester's face %d is not a candidate of the serial scan", id)
				}
			}
			for _, id := range f.gone {
				if slices.Contains(ids, id) {
					t.Errorf("face %d (shredded source or other model) is a candidate", id)
				}
			}
			wantUnreadable := 0
			if tt.name == "SQLite" {
				wantUnreadable = 2 // the swapped templates
			}
			if want.Review.Gallery+want.Unreadable > f.faces || want.Unreadable < 10+wantUnreadable {
				t.Errorf("serial scan: %d faces compared, %d unreadable, of %d", want.Review.Gallery, want.Unreadable, f.faces)
			}
			t.Logf("%d faces of the model, %d compared, %d unreadable, %d candidates", f.faces, want.Review.Gallery, want.Unreadable, len(ids))
			for w, g := range got {
				if g.Review.Gallery != want.Review.Gallery || g.Unreadable != want.Unreadable {
					t.Errorf("%d workers: %d faces compared, %d unreadable; serial %d, %d", w, g.Review.Gallery, g.Unreadable,
						want.Review.Gallery, want.Unreadable)
				}
				if !reflect.DeepEqual(g.Review.Candidates, want.Review.Candidates) {
					t.Errorf("%d workers: %d candidates, not the serial scan's %d", w, len(g.Review.Candidates), len(want.Review.Candidates))
				}
			}
		})
	}
}

// TestParallelScanCancelled: cancelling the request's context while the
// parts are being scanned stops every worker: Find fails with
// context.Canceled, and the parts not yet taken are not read.
func TestParallelScanCancelled(t *testing.T) {
	f := newScanFixture(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var parts atomic.Int64
	e := *f.eng
	e.Workers = 2
	e.Store = partStore{DB: f.db, part: func(context.Context, int64, int64) error {
		if parts.Add(1) == 3 {
			cancel()
		}
		return nil
	}}
	if _, err := e.Find(ctx, f.req, "test"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Find with its context cancelled = %v, want context.Canceled", err)
	}
	if n := parts.Load(); n > 4 {
		t.Errorf("%d parts were read after the cancellation at the third; want at most 4 of %d", n, 2*rights.PartsPerWorker)
	}
}

// TestParallelScanPartFails: a part whose read fails makes Find fail with
// that error, and the other workers stop.
func TestParallelScanPartFails(t *testing.T) {
	f := newScanFixture(t, "")
	errRead := errors.New("read failed")
	var parts atomic.Int64
	e := *f.eng
	e.Workers = 2
	e.Store = partStore{DB: f.db, part: func(ctx context.Context, lo, hi int64) error {
		if parts.Add(1) == 5 {
			return fmt.Errorf("templates of faces %d..%d: %w", lo, hi, errRead)
		}
		return nil
	}}
	if _, err := e.Find(context.Background(), f.req, "test"); !errors.Is(err, errRead) {
		t.Fatalf("Find with a failing part = %v, want the part's error", err)
	}
	if n := parts.Load(); n > 6 {
		t.Errorf("%d parts were read after the fifth failed; want at most 6 of %d", n, 2*rights.PartsPerWorker)
	}
	// The request is as it was: a later Find on a sound store succeeds.
	if _, err := f.eng.Find(context.Background(), f.req, "test"); err != nil {
		t.Errorf("Find after the failure: %v", err)
	}
}
