package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"gabarit/internal/ingest"
	"gabarit/internal/source"
	"gabarit/internal/source/folder"
	"gabarit/internal/store"
)

// ingestEntries returns the ingest audit entries, oldest first, with their
// details decoded.
func ingestEntries(t *testing.T, db *store.DB) ([]store.AuditEntry, []map[string]any) {
	t.Helper()
	page, err := db.QueryAudit(context.Background(), store.AuditFilter{Action: "source.ingest*", Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	var es []store.AuditEntry
	var ds []map[string]any
	for i := len(page) - 1; i >= 0; i-- {
		var d map[string]any
		if err := json.Unmarshal(page[i].Detail, &d); err != nil {
			t.Fatal(err)
		}
		es, ds = append(es, page[i]), append(ds, d)
	}
	return es, ds
}

// TestAuditKilledRun checks that the images committed by a run that never
// recorded its end (killed: End never runs) are accounted for in the audit
// log: its start entry is written before anything is committed, and the
// next run closes it with what it committed.
func TestAuditKilledRun(t *testing.T) {
	e := newEnv(t, photos(12))
	ctx := context.Background()
	an := &fakeAnalyzer{}

	j1, err := ingest.Begin(ctx, e.db, "alice", e.src)
	if err != nil {
		t.Fatal(err)
	}
	src, err := folder.Open(e.dir, source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The first run stops after its first commit, and records nothing more:
	// as if killed.
	_, _ = ingest.Run(cctx, src, an, e.db, e.keys, e.idx, ingest.Config{SourceID: e.src, ModelID: "fake", Workers: 1, Batch: 4,
		Progress: func(ingest.Stats) { cancel() }}) //nolint:errcheck // interrupted on purpose
	counts, err := e.db.SourceCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed := counts[e.src][0]
	if killed == 0 || killed >= 12 {
		t.Fatalf("first run committed %d of 12 images; want some, not all", killed)
	}
	es, _ := ingestEntries(t, e.db)
	if len(es) != 1 || es[0].Action != ingest.ActionStart || es[0].ID != j1.StartID() {
		t.Fatalf("after the killed run: %d ingest entries %+v, want its start", len(es), es)
	}

	j2, err := ingest.Begin(ctx, e.db, "bob", e.src)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := e.run(t, ctx, an)
	if err != nil {
		t.Fatal(err)
	}
	if err := j2.End(ctx, sum, false, false); err != nil {
		t.Fatal(err)
	}

	es, ds := ingestEntries(t, e.db)
	if len(es) != 4 {
		t.Fatalf("%d ingest entries, want start, end (closed by the next run), start, end", len(es))
	}
	want := []struct {
		action, actor string
		start         int64
	}{{ingest.ActionStart, "alice", 0}, {ingest.ActionEnd, "alice", j1.StartID()}, {ingest.ActionStart, "bob", 0}, {ingest.ActionEnd, "bob", j2.StartID()}}
	for i, w := range want {
		if es[i].Action != w.action || es[i].Actor != w.actor || es[i].Object != fmt.Sprint("source/", e.src) {
			t.Errorf("entry %d: %s by %s on %s, want %s by %s", i, es[i].Action, es[i].Actor, es[i].Object, w.action, w.actor)
		}
		if w.start != 0 && int64(ds[i]["start"].(float64)) != w.start {
			t.Errorf("entry %d closes start %v, want %d", i, ds[i]["start"], w.start)
		}
	}
	if ds[1]["killed"] != true || ds[1]["interrupted"] != true || int64(ds[1]["images"].(float64)) != killed || int64(ds[1]["faces"].(float64)) != killed {
		t.Errorf("closing entry of the killed run: %v; want killed, interrupted, %d images and faces", ds[1], killed)
	}
	if ds[3]["killed"] != nil {
		t.Errorf("entry of the complete run says killed: %v", ds[3])
	}
	counts, err = e.db.SourceCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if audited := int64(ds[1]["images"].(float64) + ds[3]["images"].(float64)); audited != counts[e.src][0] || audited != 12 {
		t.Errorf("audit log accounts for %d images, the store holds %d (want 12)", audited, counts[e.src][0])
	}

	// A run after a recorded end closes nothing.
	if _, err := ingest.Begin(ctx, e.db, "carol", e.src); err != nil {
		t.Fatal(err)
	}
	if es, _ := ingestEntries(t, e.db); len(es) != 5 || es[4].Action != ingest.ActionStart {
		t.Errorf("after a complete run, Begin wrote %d entries, want 1 start", len(es)-4)
	}
}
