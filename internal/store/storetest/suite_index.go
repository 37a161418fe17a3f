package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"gabarit/internal/store"
)

// testIndexCursors: a remote index's place in the outbox, its rotation
// secret and its pending deletes; and the outbox is not pruned past the
// place of the index furthest behind.
func (s suite) testIndexCursors(t *testing.T) {
	e := s.env(t)
	ctx, db := e.ctx, e.db
	const name = "weaviate/Gabarit_m1"
	if _, err := db.IndexCursor(ctx, name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cursor before any: %v, want ErrNotFound", err)
	}
	if _, err := db.CreateIndexCursor(ctx, store.IndexCursor{Name: name, ModelID: "m1", Dim: 4}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("cursor without a rotation: %v, want ErrInvalid", err)
	}
	first, err := db.CreateIndexCursor(ctx, store.IndexCursor{Name: name, ModelID: "m1", Dim: 4, Rotation: []byte("sealed-1")})
	if err != nil {
		t.Fatal(err)
	}
	// A second instance creating it at the same time gets the first one's.
	second, err := db.CreateIndexCursor(ctx, store.IndexCursor{Name: name, ModelID: "m1", Dim: 4, Rotation: []byte("sealed-2")})
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Rotation) != "sealed-1" || string(second.Rotation) != "sealed-1" || second.Applied != 0 || second.Dim != 4 {
		t.Fatalf("cursors %+v and %+v: want the first one's rotation, applied 0", first, second)
	}

	// Applied only moves forward, unless asked to move back.
	for _, step := range []struct {
		to   int64
		back bool
		want int64
	}{{10, false, 10}, {7, false, 10}, {12, false, 12}, {3, true, 3}} {
		if err := db.SetIndexApplied(ctx, name, step.to, step.back); err != nil {
			t.Fatal(err)
		}
		c, err := db.IndexCursor(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if c.Applied != step.want {
			t.Fatalf("after setting %d (back %v): applied %d, want %d", step.to, step.back, c.Applied, step.want)
		}
	}
	if err := db.SetIndexApplied(ctx, "weaviate/none", 5, false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("set applied of an unknown index: %v, want ErrNotFound", err)
	}

	// Pending deletes.
	if err := db.AddPendingDeletes(ctx, name, []int64{9, 4, 7}, 20); err != nil {
		t.Fatal(err)
	}
	if err := db.AddPendingDeletes(ctx, name, []int64{4}, 21); err != nil {
		t.Fatal(err)
	}
	got, err := db.PendingDeletes(ctx, name, 10)
	if err != nil || !slices.Equal(got, []int64{4, 7, 9}) {
		t.Fatalf("pending deletes %v, %v; want [4 7 9]", got, err)
	}
	if got, _ := db.PendingDeletes(ctx, name, 2); !slices.Equal(got, []int64{4, 7}) {
		t.Fatalf("pending deletes, limit 2: %v", got)
	}
	if err := db.ClearPendingDeletes(ctx, name, []int64{4, 9, 100}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.PendingDeletes(ctx, name, 10); !slices.Equal(got, []int64{7}) {
		t.Fatalf("pending deletes after clearing 4 and 9: %v, want [7]", got)
	}

	// The outbox keeps what the index has not applied.
	src := e.source(nil)
	e.add(src, 3) // three adds in the outbox
	e.add(src, 3)
	head, err := db.IndexOutboxHead(ctx)
	if err != nil || head < 2 {
		t.Fatalf("outbox head %d, %v", head, err)
	}
	if err := db.SetIndexApplied(ctx, name, 1, true); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(48 * time.Hour)
	if _, err := db.PruneIndexOutbox(ctx, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	ops, _, pruned, err := db.IndexOpsAfter(ctx, "test-model-v1", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if pruned > 1 || int64(len(ops)) != head-1 {
		t.Errorf("outbox pruned up to %d with %d operations left after 1; want at most 1 and %d (the remote index is at 1)",
			pruned, len(ops), head-1)
	}
	// What an operator sees: how far behind each index is, its pending
	// deletes; what the outbox keeps.
	const other = "weaviate/Gabarit_test"
	if _, err := db.CreateIndexCursor(ctx, store.IndexCursor{Name: other, ModelID: "test-model-v1", Dim: 4, Rotation: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetIndexApplied(ctx, other, 2, false); err != nil {
		t.Fatal(err)
	}
	states, err := db.IndexCursors(ctx)
	if err != nil || len(states) != 2 {
		t.Fatalf("index cursors %+v, %v; want two", states, err)
	}
	if st := states[0]; st.Name != name || st.ModelID != "m1" || st.Applied != 1 || st.Behind != 0 || st.PendingDeletes != 1 ||
		st.Created.IsZero() || st.Moved.Before(st.Created) {
		t.Errorf("cursor %+v; want %s at 1, nothing of model m1 behind, one pending delete", st, name)
	}
	if st := states[1]; st.Name != other || st.Applied != 2 || st.Behind != head-2 || st.PendingDeletes != 0 {
		t.Errorf("cursor %+v; want %s at 2 with %d operations behind", st, other, head-2)
	}
	ob, err := db.IndexOutbox(ctx)
	if err != nil || ob.Head != head || ob.Pruned > 1 || ob.Operations != head-ob.Pruned || ob.Oldest.IsZero() {
		t.Errorf("index outbox %+v, %v; want head %d, the operations after the pruned seq", ob, err, head)
	}
	// Forgetting an index is audited with it.
	before, err := db.AuditHeadID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(c store.IndexCursorState) store.AuditEntry {
		return store.AuditEntry{Actor: "admin", Action: "index.forget", Object: c.Name}
	}
	if _, err := db.ForgetIndexCursor(ctx, "weaviate/none", entry); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("forget an unknown index: %v, want ErrNotFound", err)
	}
	was, err := db.ForgetIndexCursor(ctx, other, entry)
	if err != nil || was.Name != other || was.Behind != head-2 {
		t.Fatalf("forget %s: %+v, %v", other, was, err)
	}
	if after, _ := db.AuditHeadID(ctx); after != before+1 {
		t.Errorf("audit head %d after forgetting an index, was %d: want one entry", after, before)
	}
	if states, _ := db.IndexCursors(ctx); len(states) != 1 || states[0].Name != name {
		t.Errorf("cursors after forgetting %s: %+v", other, states)
	}

	// Once the index is forgotten, the outbox is pruned as before.
	if err := db.DeleteIndexCursor(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.IndexCursor(ctx, name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cursor after delete: %v", err)
	}
	if got, _ := db.PendingDeletes(ctx, name, 10); len(got) != 0 {
		t.Errorf("pending deletes left after the cursor went: %v", got)
	}
	if _, err := db.PruneIndexOutbox(ctx, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, pruned, _ := db.IndexOpsAfter(ctx, "test-model-v1", 0, 100); pruned != head {
		t.Errorf("outbox pruned up to %d after the cursor went, want the head %d", pruned, head)
	}
}
