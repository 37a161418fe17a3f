package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// outbox returns the index operations of model after seq, as "add:ID"
// and "del:ID" in seq order, and checks that they come in increasing seq.
func outbox(t *testing.T, db *DB, model string, after int64) []string {
	t.Helper()
	ops, head, _, err := db.IndexOpsAfter(context.Background(), model, after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	last := after
	for _, o := range ops {
		if o.Seq <= last || o.Seq > head {
			t.Fatalf("op seq %d after %d (head %d): not in order", o.Seq, last, head)
		}
		last = o.Seq
		out = append(out, fmt.Sprintf("%s:%d", o.Op, o.FaceID))
	}
	return out
}

func opsOf(op string, ids ...int64) []string {
	var out []string
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%s:%d", op, id))
	}
	return out
}

func head(t *testing.T, db *DB) int64 {
	t.Helper()
	h, err := db.IndexOutboxHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func seal(f Face, tm []float32) ([]byte, error) { return []byte{1, byte(len(tm))}, nil }

// TestIndexOutboxWithEveryChange checks that each change of faces writes its
// index operations in its own transaction: an ingest batch (one add per
// face, none when it rolls back), an erasure, a purge, a quarantine and its
// release, a crypto-shredding and a retirement.
func TestIndexOutboxWithEveryChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	src := mustSource(t, db, nil)
	const m = "test-model-v1"
	if got := outbox(t, db, m, 0); len(got) != 0 || head(t, db) != 0 {
		t.Fatalf("new store: outbox %v, head %d", got, head(t, db))
	}

	rec := func(n, faces int) IngestRecord {
		img := testImage(src, n)
		return IngestRecord{Locator: img.Locator, SHA256: img.SHA256, Image: img, Faces: testFaces(faces, 8, n),
			Templates: make([][]float32, faces)}
	}
	res, err := db.CommitIngest(ctx, src, []IngestRecord{rec(1, 2), rec(2, 1), rec(3, 0)}, seal)
	if err != nil {
		t.Fatal(err)
	}
	ingested := append(slices.Clone(res[0].FaceIDs), res[1].FaceIDs...)
	if got, want := outbox(t, db, m, 0), opsOf(OpAdd, ingested...); !slices.Equal(got, want) {
		t.Fatalf("after an ingest batch: outbox %v, want %v", got, want)
	}
	if got := outbox(t, db, "another-model", 0); len(got) != 0 {
		t.Errorf("another model's outbox: %v", got)
	}

	// A batch that fails on its second record rolls back with its
	// operations.
	before := head(t, db)
	bad := rec(5, 1)
	bad.Templates = nil
	if _, err := db.CommitIngest(ctx, src, []IngestRecord{rec(4, 2), bad}, seal); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad batch: %v, want ErrInvalid", err)
	}
	if h := head(t, db); h != before || count(t, db, "index_outbox") != 3 {
		t.Fatalf("rolled-back batch: head %d (was %d), %d operations", h, before, count(t, db, "index_outbox"))
	}

	step := func(name string, want []string, change func() error) {
		t.Helper()
		h := head(t, db)
		if err := change(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := outbox(t, db, m, h); !slices.Equal(got, want) {
			t.Errorf("%s: outbox %v, want %v", name, got, want)
		}
	}
	step("erasure", opsOf(OpDel, res[0].FaceIDs[0]), func() error {
		_, _, err := db.EraseFaces(ctx, []int64{res[0].FaceIDs[0], 999}, "dpo", "rights/1")
		return err
	})
	step("quarantine", opsOf(OpDel, res[1].FaceIDs[0]), func() error {
		_, err := db.QuarantineFace(ctx, res[1].FaceIDs[0], FoundBySearch, "does not authenticate", "test")
		return err
	})
	step("quarantine again", nil, func() error {
		_, err := db.QuarantineFace(ctx, res[1].FaceIDs[0], FoundBySearch, "does not authenticate", "test")
		return err
	})
	step("release", opsOf(OpAdd, res[1].FaceIDs[0]), func() error {
		return db.ReleaseFace(ctx, res[1].FaceIDs[0], "test")
	})
	clock.Add(31 * 24 * time.Hour)
	step("purge", opsOf(OpDel, res[0].FaceIDs[1]), func() error {
		_, err := db.PurgeImage(ctx, res[0].ImageID, clock.Now(), "test")
		return err
	})

	// A second source: shredded, then retired.
	other := mustSource(t, db, func(s *Source) { s.Locator = "/srv/collections/b" })
	res, err = db.CommitIngest(ctx, other, []IngestRecord{rec(6, 2)}, seal)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutSourceKey(ctx, other, []byte{1}); err != nil {
		t.Fatal(err)
	}
	step("crypto-shredding", opsOf(OpDel, res[0].FaceIDs...), func() error {
		return db.DeleteSourceKey(ctx, other)
	})
	step("retirement", opsOf(OpDel, res[0].FaceIDs...), func() error {
		if err := db.SetSourceState(ctx, other, StateDeleted); err != nil {
			return err
		}
		_, err := db.DeleteRetiredImages(ctx, other, []int64{res[0].ImageID})
		return err
	})
	step("deleting faces", nil, func() error {
		_, err := db.DeleteFaces(ctx, []int64{12345})
		return err
	})
}

// TestIndexOpsAfterPagesAndPrunes checks the limit, the head and the
// pruning of old operations with its horizon.
func TestIndexOpsAfterPagesAndPrunes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	src := mustSource(t, db, nil)
	var ids []int64
	for n := range 5 {
		if n == 3 {
			clock.Add(8 * 24 * time.Hour) // the first three are old
		}
		_, fids, err := db.AddImage(ctx, testImage(src, n), testFaces(1, 8, n))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fids...)
	}
	ops, h, pruned, err := db.IndexOpsAfter(ctx, "test-model-v1", 0, 2)
	if err != nil || len(ops) != 2 || h != 5 || pruned != 0 || ops[1].FaceID != ids[1] {
		t.Fatalf("first page: %+v, head %d, pruned %d, %v", ops, h, pruned, err)
	}
	ops, _, _, err = db.IndexOpsAfter(ctx, "test-model-v1", ops[1].Seq, 2)
	if err != nil || len(ops) != 2 || ops[0].FaceID != ids[2] {
		t.Fatalf("second page: %+v, %v", ops, err)
	}
	if _, _, _, err := db.IndexOpsAfter(ctx, "test-model-v1", 0, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("limit 0: %v, want ErrInvalid", err)
	}

	n, err := db.PruneIndexOutbox(ctx, clock.Now().Add(-7*24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("prune: %d, %v; want 3", n, err)
	}
	ops, h, pruned, err = db.IndexOpsAfter(ctx, "test-model-v1", 0, 10)
	if err != nil || len(ops) != 2 || h != 5 || pruned != 3 {
		t.Fatalf("after the prune: %+v, head %d, pruned %d, %v; want 2 operations, head 5, pruned 3", ops, h, pruned, err)
	}
	// Pruning everything keeps the head: seq values are never reused.
	clock.Add(8 * 24 * time.Hour)
	if n, err := db.PruneIndexOutbox(ctx, clock.Now().Add(-7*24*time.Hour)); err != nil || n != 2 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
	if h := head(t, db); h != 5 {
		t.Errorf("head %d after pruning everything, want 5", h)
	}
	if n, err := db.PruneIndexOutbox(ctx, clock.Now()); err != nil || n != 0 {
		t.Errorf("prune of an empty outbox: %d, %v", n, err)
	}
	if _, _, err := db.AddImage(ctx, testImage(src, 9), testFaces(1, 8, 9)); err != nil {
		t.Fatal(err)
	}
	if got := outbox(t, db, "test-model-v1", 5); len(got) != 1 || !strings.HasPrefix(got[0], "add:") {
		t.Errorf("after pruning everything, a new face: %v", got)
	}
}

// TestFaceTemplates checks that FaceTemplates streams the stored faces
// among the ids, and skips the others.
func TestFaceTemplates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	_, ids, err := db.AddImage(ctx, testImage(src, 1), testFaces(3, 8, 1))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	err = db.FaceTemplates(ctx, []int64{ids[2], 999, ids[0]}, func(id, source int64, model string, tm []byte) error {
		if source != src || model != "test-model-v1" || len(tm) != 8 {
			t.Errorf("face %d: source %d, model %q, %d bytes", id, source, model, len(tm))
		}
		got = append(got, id)
		return nil
	})
	if err != nil || !slices.Equal(got, []int64{ids[0], ids[2]}) {
		t.Errorf("FaceTemplates: %v, %v; want %v", got, err, []int64{ids[0], ids[2]})
	}
}
