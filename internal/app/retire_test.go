package app

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"gabarit/internal/config"
	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/flat"
)

// retireFixture is a data directory with two sources of three images of
// two faces each, sealed under the sources' keys and indexed.
type retireFixture struct {
	d     *Data
	idx   *flat.Index
	srcs  [2]int64
	faces map[int64]int64  // face id → source
	blobs map[int64][]byte // face id → sealed template, as a backup would hold it
	vecs  map[int64][]float32
}

func newRetireFixture(t *testing.T) *retireFixture {
	t.Helper()
	ctx := context.Background()
	d, err := OpenData(ctx, config.Config{DataDir: t.TempDir(), Index: IndexFlat}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := &retireFixture{d: d, idx: flat.New(2), faces: map[int64]int64{}, blobs: map[int64][]byte{}, vecs: map[int64][]float32{}}
	for i := range f.srcs {
		f.srcs[i], err = d.DB.CreateSource(ctx, store.Source{Kind: store.KindFolder, Locator: t.TempDir(), Controller: "Example Org",
			Purpose: "tests", LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a)", Jurisdiction: "FR",
			Retention: 30 * 24 * time.Hour, CreatedBy: "test"})
		if err != nil {
			t.Fatal(err)
		}
		f.ingest(t, f.srcs[i], 3)
	}
	return f
}

// ingest commits n images of two faces each into source src, as an ingest
// does, and indexes their faces.
func (f *retireFixture) ingest(t *testing.T, src int64, n int) {
	t.Helper()
	ctx := context.Background()
	if err := f.d.Keys.EnsureKey(ctx, src); err != nil {
		t.Fatal(err)
	}
	for j := range n {
		loc := fmt.Sprintf("person-%d/%d.jpg", src, len(f.faces)+j)
		a := float64(len(f.faces)+j) / 10
		tmpl := [][]float32{{float32(math.Cos(a)), float32(math.Sin(a))}, {float32(math.Sin(a)), float32(math.Cos(a))}}
		rec := store.IngestRecord{Locator: loc, SHA256: sha256.Sum256([]byte(loc)), Image: store.Image{Width: 90, Height: 90},
			Faces: []store.Face{{Box: face.Box{W: 40, H: 40}, Score: 0.9, Quality: 0.8, ModelID: "m", Dim: 2},
				{Box: face.Box{X: 45, W: 40, H: 40}, Score: 0.9, Quality: 0.8, ModelID: "m", Dim: 2}},
			Templates: tmpl}
		res, err := f.d.DB.CommitIngest(ctx, src, []store.IngestRecord{rec}, func(fc store.Face, v []float32) ([]byte, error) {
			b, err := f.d.Keys.Seal(ctx, src, fc.ID, fc.ModelID, v)
			f.blobs[fc.ID] = b
			return b, err
		})
		if err != nil {
			t.Fatal(err)
		}
		for k, id := range res[0].FaceIDs {
			f.faces[id], f.vecs[id] = src, tmpl[k]
			if err := f.idx.Add(ctx, []int64{id}, [][]float32{tmpl[k]}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// indexed returns the sources of the faces the index still finds.
func (f *retireFixture) indexed(t *testing.T) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for id, v := range f.vecs {
		hits, err := f.idx.Search(context.Background(), v, 100, -1)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if h.ID == id {
				out[f.faces[id]]++
			}
		}
	}
	return out
}

// lastAudit returns the last audit entry and its detail.
func lastAudit(t *testing.T, db *store.DB) (store.AuditEntry, map[string]any) {
	t.Helper()
	es, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil || len(es) == 0 {
		t.Fatalf("audit: %d entries, %v", len(es), err)
	}
	e := es[len(es)-1]
	var d map[string]any
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		t.Fatal(err)
	}
	return e, d
}

// TestRetireSource: retiring a source marks it retired with an audit entry,
// destroys its key (a template copied before opens no more, with a fresh
// keyring too), deletes its faces from the index and its images and faces
// from the store, forgets its ingest progress, and leaves the other source
// whole. Suspending, resuming or ingesting it is then refused; retiring it
// again changes and audits nothing.
func TestRetireSource(t *testing.T) {
	ctx := context.Background()
	f := newRetireFixture(t)
	db, gone, kept := f.d.DB, f.srcs[0], f.srcs[1]

	rep, err := RetireSource(ctx, db, f.d.Keys, gone, Retirement{Actor: "cli:ops", Reason: "contract ended", Index: f.idx})
	if err != nil {
		t.Fatal(err)
	}
	if rep != (RetireReport{SourceID: gone, Images: 3, Faces: 6}) {
		t.Errorf("report %+v, want 3 images and 6 faces, not already retired", rep)
	}
	// The index: only the other source's faces are found.
	if got := f.indexed(t); got[gone] != 0 || got[kept] != 6 || vindex.Count(f.idx) != 6 {
		t.Errorf("indexed by source: %v (len %d), want only source %d's 6", got, vindex.Count(f.idx), kept)
	}
	// The store.
	h, err := db.SourceHoldings(ctx, gone)
	if err != nil || h != (store.Holdings{State: store.StateDeleted}) {
		t.Errorf("retired source holds %+v, %v", h, err)
	}
	if h, _ := db.SourceHoldings(ctx, kept); h != (store.Holdings{State: store.StateActive, Images: 3, Faces: 6, Key: true}) {
		t.Errorf("other source holds %+v", h)
	}
	for id, src := range f.faces {
		_, err := db.Face(ctx, id)
		if src == gone && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("face %d of the retired source: %v", id, err)
		}
		if src == kept && err != nil {
			t.Errorf("face %d of the other source: %v", id, err)
		}
	}
	if _, ok, err := db.Progress(ctx, gone, fmt.Sprintf("person-%d/0.jpg", gone)); ok || err != nil {
		t.Errorf("the retired source's ingest progress is kept: %v, %v", ok, err)
	}
	// The key: a template copied before (a backup) opens no more, here or
	// with a fresh keyring on the same store; the other source's do.
	fresh := keyring.New(f.d.Master, db.KeyStore())
	defer fresh.Close()
	for id, src := range f.faces {
		for _, kr := range []*keyring.Keyring{f.d.Keys, fresh} {
			_, err := kr.Open(ctx, src, id, "m", f.blobs[id])
			if src == gone && !errors.Is(err, keyring.ErrShredded) {
				t.Errorf("face %d of the retired source opens: %v", id, err)
			}
			if src == kept && err != nil {
				t.Errorf("face %d of the other source: %v", id, err)
			}
		}
	}
	// The audit entry: who, what, counts and reason; no path or name.
	e, d := lastAudit(t, db)
	if e.Action != "source.retire" || e.Actor != "cli:ops" || e.Object != fmt.Sprintf("source/%d", gone) ||
		d["images"] != 3.0 || d["faces"] != 6.0 || d["reason"] != "contract ended" || d["resumed"] != nil {
		t.Errorf("audit entry %+v %s", e, e.Detail)
	}
	if strings.Contains(string(e.Detail), "person-") {
		t.Errorf("the audit entry names files: %s", e.Detail)
	}
	lastID := e.ID

	// Refused from now on.
	for _, st := range []store.SourceState{store.StateActive, store.StateSuspended} {
		err := SetSourceState(ctx, db, gone, st, "cli:ops")
		verb := map[store.SourceState]string{store.StateActive: "resumed", store.StateSuspended: "suspended"}[st]
		if !errors.Is(err, ErrRetired) || err.Error() != fmt.Sprintf("source %d is retired; it cannot be %s", gone, verb) {
			t.Errorf("set state %s of a retired source: %v", st, err)
		}
	}
	_, err = Ingest(ctx, f.d, nil, nil, nil, gone, IngestOptions{Actor: "cli:ops"})
	if !errors.Is(err, ErrNotActive) || !strings.Contains(err.Error(), fmt.Sprintf("source %d is retired", gone)) {
		t.Errorf("ingest of a retired source: %v", err)
	}
	if src, _ := db.Sources(ctx); SourceViews(src, nil)[0].State != StateRetired {
		t.Errorf("the retired source is shown as %q", SourceViews(src, nil)[0].State)
	}

	// Again: already retired, nothing to do, nothing audited.
	rep, err = RetireSource(ctx, db, f.d.Keys, gone, Retirement{Actor: "cli:ops", Index: f.idx})
	if err != nil || rep != (RetireReport{SourceID: gone, AlreadyRetired: true}) {
		t.Errorf("second retirement: %+v, %v", rep, err)
	}
	if e, _ := lastAudit(t, db); e.ID != lastID {
		t.Errorf("a retirement that did nothing was audited: %+v", e)
	}
	if _, err := RetireSource(ctx, db, f.d.Keys, 999, Retirement{Actor: "cli:ops"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown source: %v", err)
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("audit chain broken at %d: %v", bad, err)
	}
}

// failingShredder fails every Shred.
type failingShredder struct{}

func (failingShredder) Shred(context.Context, int64) error { return errors.New("disk full") }

// failingIndex fails every Delete.
type failingIndex struct{ vindex.Index }

func (failingIndex) Delete(context.Context, []int64) error { return errors.New("index broken") }

// TestRetireSourceResumes: a retirement stopped after marking the source
// (the key could not be destroyed), or after it (the index failed), leaves
// the source retired and is finished by running it again, which reports
// it was already retired and audits what it then deleted.
func TestRetireSourceResumes(t *testing.T) {
	ctx := context.Background()
	f := newRetireFixture(t)
	db, src := f.d.DB, f.srcs[0]

	if _, err := RetireSource(ctx, db, failingShredder{}, src, Retirement{Actor: "u", Index: f.idx}); err == nil {
		t.Fatal("retirement with a failing key store succeeded")
	}
	h, _ := db.SourceHoldings(ctx, src)
	if h != (store.Holdings{State: store.StateDeleted, Images: 3, Faces: 6, Key: true}) {
		t.Fatalf("after the first step: %+v", h)
	}
	if err := SetSourceState(ctx, db, src, store.StateActive, "u"); !errors.Is(err, ErrRetired) {
		t.Errorf("a half-retired source was resumed: %v", err)
	}
	// Stopped again, at the index: the key is gone, the rows stay.
	if _, err := RetireSource(ctx, db, f.d.Keys, src, Retirement{Actor: "u", Index: failingIndex{f.idx}}); err == nil {
		t.Fatal("retirement with a failing index succeeded")
	}
	if h, _ := db.SourceHoldings(ctx, src); h.Key || h.Images != 3 {
		t.Fatalf("after a failed index: %+v", h)
	}
	// An ingest that had already started commits nothing more.
	if _, err := db.CommitIngest(ctx, src, []store.IngestRecord{{Locator: "late.jpg", SHA256: sha256.Sum256([]byte("late")),
		Image: store.Image{Width: 9, Height: 9}}}, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("an image was added to a retired source: %v", err)
	}
	rep, err := RetireSource(ctx, db, f.d.Keys, src, Retirement{Actor: "u", Index: f.idx})
	if err != nil || rep != (RetireReport{SourceID: src, AlreadyRetired: true, Images: 3, Faces: 6}) {
		t.Fatalf("re-run: %+v, %v", rep, err)
	}
	if h, _ := db.SourceHoldings(ctx, src); h != (store.Holdings{State: store.StateDeleted}) {
		t.Errorf("after the re-run: %+v", h)
	}
	if got := f.indexed(t); got[src] != 0 {
		t.Errorf("%d faces of the retired source still indexed", got[src])
	}
	e, d := lastAudit(t, db)
	if e.Action != "source.retire" || d["resumed"] != true || d["images"] != 3.0 {
		t.Errorf("the re-run's audit entry: %+v %s", e, e.Detail)
	}
}
