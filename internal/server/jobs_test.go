package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

// secondInstance starts another Server over e's store, index and vault,
// as a second gabarit instance over one database, behind its own
// httptest server; set, when not nil, changes its Config. The returned
// env shares e's data: its clients sign in with e's users.
func (e *testEnv) secondInstance(t *testing.T, set func(*Config)) *testEnv {
	t.Helper()
	cfg := e.srv.cfg
	if set != nil {
		set(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e2 := *e
	e2.t, e2.srv, e2.ts = t, srv, httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		e2.ts.Close()
		srv.jobs.stop()
	})
	return &e2
}

// TestJobsSharedByInstances: two servers over one store show the same
// jobs; a job started through one and running on it is cancelled through
// the other, and ends cancelled by who asked, with what it committed kept.
func TestJobsSharedByInstances(t *testing.T) {
	m := gatedModel{free: 1, analysed: new(atomic.Int64)}
	a := newTestEnv(t, m)
	b := a.secondInstance(t, nil)
	if a.srv.instance == b.srv.instance || a.srv.instance == "" {
		t.Fatalf("instance ids %q and %q", a.srv.instance, b.srv.instance)
	}
	b.srv.jobs.stop() // the job runs on a: b runs none
	b.srv.jobs = idleJobs(b.srv)
	a.addUser("olga", store.RoleOperator)
	a.addUser("paul", store.RoleOperator)
	opA, opB := a.token("olga"), b.token("paul")
	id := a.declareSource(opA)

	st, body := opA.json("POST", fmt.Sprintf("/api/v1/sources/%d/ingest", id), nil)
	if st != http.StatusAccepted {
		t.Fatalf("start ingest on a: %d %s", st, body)
	}
	started := decode[job](t, body)
	// b refuses a second job of the source: the rule is the store's.
	if st, body := opB.json("POST", fmt.Sprintf("/api/v1/sources/%d/ingest", id), nil); st != http.StatusConflict {
		t.Errorf("second ingest through b: %d %s; want 409", st, body)
	}
	eventually(t, 30*time.Second, "running on a, its first photo analysed", func() bool {
		st, body := opB.json("GET", fmt.Sprintf("/api/v1/jobs/%d", started.ID), nil)
		j := decode[job](t, body)
		return st == http.StatusOK && j.State == jobRunning && m.analysed.Load() > 1
	})
	if st, body := opB.json("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", started.ID), nil); st != http.StatusAccepted {
		t.Fatalf("cancel through b: %d %s", st, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	end, err := b.srv.jobs.wait(ctx, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	if end.State != jobCancelled || end.CancelledBy != "paul" || end.Finished == nil {
		t.Errorf("job cancelled through b = %+v", end)
	}
	if row, err := a.data.DB.IngestJob(ctx, started.ID); err != nil || row.Owner != a.srv.instance || row.Claims != 1 {
		t.Errorf("row = %+v, %v; want owned by a, claimed once", row, err)
	}
	counts, err := a.data.DB.SourceCounts(ctx)
	if err != nil || counts[id][0] != int64(end.Images) || end.Images > 1 {
		t.Errorf("store holds %v images of the source, %v; the job reported %d committed, of 1 analysed", counts[id], err, end.Images)
	}
	// Both instances list the same jobs, byte for byte.
	stA, listA := opA.json("GET", "/api/v1/jobs", nil)
	stB, listB := opB.json("GET", "/api/v1/jobs", nil)
	if stA != http.StatusOK || stB != http.StatusOK || string(listA) != string(listB) {
		t.Errorf("a lists %d %s\nb lists %d %s", stA, listA, stB, listB)
	}
	if js := decode[[]job](t, listA); len(js) != 1 || js[0].ID != started.ID {
		t.Errorf("jobs = %+v", js)
	}
}

// TestJobTakenOverFromDeadInstance: an instance claimed a job, committed
// part of the source and died (its lease expired): another instance takes
// the job over, runs it again from the start of the source and finishes
// it, with every image once (no duplicate, no loss); the dead instance
// can no longer write to the job.
func TestJobTakenOverFromDeadInstance(t *testing.T) {
	dead := newTestEnv(t, nil)
	dead.srv.jobs.stop() // it claims nothing more
	dead.addUser("olga", store.RoleOperator)
	op := dead.token("olga")
	id := dead.declareSource(op)
	ctx := context.Background()

	// What the dead instance committed: the first photo of three.
	aside := filepath.Join(dead.dir, "aside")
	if err := os.MkdirAll(aside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"p1.png", "p2.png"} {
		if err := os.Rename(filepath.Join(dead.photos, n), filepath.Join(aside, n)); err != nil {
			t.Fatal(err)
		}
	}
	x, err := dead.data.DB.EnqueueIngestJob(ctx, id, "olga")
	if err != nil {
		t.Fatal(err)
	}
	claimedAt := time.Now().Add(-time.Minute)
	if got, ok, err := dead.data.DB.ClaimIngestJob(ctx, dead.srv.instance, claimedAt, jobLease); err != nil || !ok || got.ID != x.ID {
		t.Fatalf("claim as the dead instance: %+v, %v, %v", got, ok, err)
	}
	cfg := dead.srv.cfg
	if _, err := app.Ingest(ctx, cfg.Data, cfg.Model, cfg.Vault, cfg.Index, id, app.IngestOptions{Actor: "olga"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"p1.png", "p2.png"} {
		if err := os.Rename(filepath.Join(aside, n), filepath.Join(dead.photos, n)); err != nil {
			t.Fatal(err)
		}
	}

	// Its lease (30 s from a minute ago) has expired: a live instance
	// takes the job as soon as it starts.
	live := dead.secondInstance(t, nil)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	end, err := live.srv.jobs.wait(wctx, x.ID)
	if err != nil {
		t.Fatal(err)
	}
	if end.State != jobDone || end.Seen != 3 || end.Images != 2 || end.Faces != 2 || end.Skipped != 1 || end.StartedBy != "olga" {
		t.Errorf("job taken over = %+v; want done, 2 new images and 1 skipped", end)
	}
	row, err := live.data.DB.IngestJob(ctx, x.ID)
	if err != nil || row.Owner != live.srv.instance || row.Claims != 2 || !row.Started.Equal(claimedAt.Truncate(time.Millisecond)) {
		t.Errorf("row = %+v, %v; want owned by the live instance, claimed twice, started when first claimed", row, err)
	}
	counts, err := live.data.DB.SourceCounts(ctx)
	if err != nil || counts[id] != [2]int64{3, 3} {
		t.Errorf("source holds %v (images, faces), %v; want 3 and 3", counts[id], err)
	}
	if n := live.srv.cfg.Index.Index.Len(); n != 3 {
		t.Errorf("%d faces indexed; want 3", n)
	}
	if _, err := dead.data.DB.HeartbeatIngestJob(ctx, x.ID, dead.srv.instance, time.Now(), jobLease, store.JobProgress{}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("the dead instance's heartbeat: %v; want ErrLeaseLost", err)
	}
	// Running it again changes nothing: the ingest is idempotent.
	if j := live.ingest(live.token("olga"), id); j.State != jobDone || j.Images != 0 || j.Skipped != 3 {
		t.Errorf("ingest again = %+v; want nothing new", j)
	}
}

// movableClock is a clock a test moves.
type movableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *movableClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestPurgeLeader: the retention purge runs on one instance at a time: an
// instance that does not get the purge's lease skips the round and purges
// nothing; once the holder's lease expired, it purges, and releases the
// lease afterwards.
func TestPurgeLeader(t *testing.T) {
	a := newTestEnv(t, nil)
	a.addUser("olga", store.RoleOperator)
	op := a.token("olga")
	id := a.declareSource(op)
	if j := a.ingest(op, id); j.Images != 3 {
		t.Fatalf("ingest = %+v", j)
	}
	ctx := context.Background()
	// Forty days on, past the source's 30-day retention.
	clock := &movableClock{now: time.Now().Add(40 * 24 * time.Hour)}
	b := a.secondInstance(t, func(c *Config) { c.Now = clock.Now })
	images := func() int64 {
		counts, err := a.data.DB.SourceCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return counts[id][0]
	}

	// Another instance holds the lease: b skips the round.
	if ok, err := a.data.DB.TryLease(ctx, purgeLease, "another", clock.Now(), time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	b.srv.housekeeping(ctx)
	if n := images(); n != 3 {
		t.Fatalf("b purged while another instance held the lease: %d images left", n)
	}
	// That instance died: its lease expires, and b purges.
	clock.Add(2 * time.Minute)
	b.srv.housekeeping(ctx)
	if n := images(); n != 0 {
		t.Errorf("%d images left after b's purge; want 0", n)
	}
	if n := b.srv.cfg.Index.Index.Len(); n != 0 {
		t.Errorf("%d faces left in the index", n)
	}
	// b released the lease: a third instance takes it at once.
	if ok, err := a.data.DB.TryLease(ctx, purgeLease, "third", clock.Now(), time.Minute); err != nil || !ok {
		t.Errorf("lease after b's purge: %v, %v; want it free", ok, err)
	}
}
