package retention_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"gabarit/internal/vindex"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/retention"
	"gabarit/internal/store"
	_ "gabarit/internal/store/drivers" // the tests open stores
	"gabarit/internal/vindex/flat"
)

func TestPurge(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gabarit.db"), store.WithClock(func() time.Time { return clock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idx := flat.New(2)
	var srcs []int64
	for _, ret := range []time.Duration{time.Hour, 48 * time.Hour} {
		id, err := db.CreateSource(ctx, store.Source{Kind: store.KindFolder, Locator: "/p", Controller: "Example",
			Purpose: "test", LegalBasis: store.BasisConsent, Art9Condition: "9(2)(a)", Jurisdiction: "FR",
			Retention: ret, CreatedBy: "test"})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, id)
	}
	faces := map[int64]int64{} // face id → source
	for i := range 6 {
		src := srcs[i%2]
		loc := fmt.Sprint("img", i)
		rec := store.IngestRecord{Locator: loc, SHA256: sha256.Sum256([]byte(loc)), Image: store.Image{Width: 9, Height: 9},
			Faces:     []store.Face{{Box: face.Box{W: 5, H: 5}, ModelID: "m", Dim: 2}, {Box: face.Box{W: 6, H: 6}, ModelID: "m", Dim: 2}},
			Templates: [][]float32{{1, 0}, {0, 1}}}
		res, err := db.CommitIngest(ctx, src, []store.IngestRecord{rec}, func(store.Face, []float32) ([]byte, error) { return []byte{1}, nil })
		if err != nil {
			t.Fatal(err)
		}
		for j, id := range res[0].FaceIDs {
			faces[id] = src
			if err := idx.Add(ctx, []int64{id}, [][]float32{rec.Templates[j]}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Nothing is due yet.
	rep, err := retention.Purge(ctx, db, idx, now, "scheduler")
	if err != nil || rep.Images != 0 {
		t.Fatalf("purge before any deadline: %+v, %v", rep, err)
	}
	// Two hours later, the first source's images are due.
	later := now.Add(2 * time.Hour)
	clock = func() time.Time { return later }
	rep, err = retention.Purge(ctx, db, idx, later, "scheduler")
	if err != nil || rep.Images != 3 || rep.Faces != 6 {
		t.Fatalf("purge: %+v, %v; want 3 images, 6 faces", rep, err)
	}
	if n, _ := db.FaceCount(ctx); n != 6 || vindex.Count(idx) != 6 {
		t.Fatalf("left: %d faces stored, %d indexed; want 6", n, vindex.Count(idx))
	}
	hits, err := idx.Search(ctx, []float32{1, 0}, 100, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		if faces[h.ID] != srcs[1] {
			t.Errorf("purged face %d still returned by the index", h.ID)
		}
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil || len(es) != 3 {
		t.Fatalf("audit entries: %d, %v; want 3", len(es), err)
	}
	for _, e := range es {
		var d struct {
			Reason string
			Faces  []int64
		}
		if err := json.Unmarshal(e.Detail, &d); err != nil || e.Action != "image.purge" || e.Actor != "scheduler" ||
			d.Reason != "retention" || len(d.Faces) != 2 {
			t.Errorf("audit entry %+v (%s), %v", e, e.Detail, err)
		}
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("audit chain broken at %d: %v", bad, err)
	}
	// An image not yet due cannot be purged by id.
	imgs, _ := db.ExpiredImages(ctx, later.Add(100*time.Hour), 10)
	if len(imgs) == 0 {
		t.Fatal("no image left")
	}
	if _, err := db.PurgeImage(ctx, imgs[0].ID, later, "x"); err == nil {
		t.Error("an image not due was purged")
	}
}

// TestProbeCropsErasedAfterSixMonths: the sealed crop of a search's probe
// face is erased ProbeCropRetention after the search, audited; the
// search's record stays, and younger crops stay too.
func TestProbeCropsErasedAfterSixMonths(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gabarit.db"), store.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids []int64
	for _, age := range []time.Duration{retention.ProbeCropRetention + time.Hour, retention.ProbeCropRetention - time.Hour} {
		id, _, err := db.RecordSearch(ctx, store.Search{Actor: "cli:ivan", At: now.Add(-age), Purpose: "case", K: 10,
			Threshold: 0.5, ProbeCrop: []byte("sealed crop")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rep, err := retention.Purge(ctx, db, flat.New(2), now, "scheduler")
	if err != nil || rep.ProbeCrops != 1 {
		t.Fatalf("purge: %+v, %v", rep, err)
	}
	old, err := db.Search(ctx, ids[0])
	if err != nil || old.ProbeCrop != nil || old.Purpose != "case" {
		t.Errorf("the older search: crop %q, record %+v, %v", old.ProbeCrop, old, err)
	}
	young, err := db.Search(ctx, ids[1])
	if err != nil || string(young.ProbeCrop) != "sealed crop" {
		t.Errorf("the younger search's crop: %q, %v", young.ProbeCrop, err)
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := es[len(es)-1]
	var d struct{ Crops int64 }
	if last.Action != "search.crops.purge" || last.Actor != "scheduler" || json.Unmarshal(last.Detail, &d) != nil || d.Crops != 1 {
		t.Errorf("audit entry %+v", last)
	}
	// Again: nothing left to erase, nothing audited.
	if rep, err := retention.Purge(ctx, db, flat.New(2), now, "scheduler"); err != nil || rep.ProbeCrops != 0 {
		t.Errorf("second purge: %+v, %v", rep, err)
	}
	if es2, _ := db.AuditEntries(ctx, 1, 0); len(es2) != len(es) {
		t.Errorf("an empty crop purge was audited")
	}
}
