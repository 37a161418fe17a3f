package server

import (
	"context"
	"errors"
	"fmt"
	"gabarit/internal/vindex"
	"image/color"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/ingest"
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
	row, err := a.data.DB.IngestJob(ctx, started.ID)
	if err != nil || len(row.Parts) != defaultJobParts {
		t.Fatalf("row = %+v, %v; want %d parts", row, err, defaultJobParts)
	}
	for _, p := range row.Parts {
		if p.State.Final() && p.Claims <= 1 && (p.Owner == a.srv.instance || p.Owner == "" && p.Claims == 0) {
			continue
		}
		t.Errorf("part %+v; want ended, run by a at most once", p)
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

// TestJobTakenOverFromDeadInstance: an instance claimed every part of a
// job, committed some of the source and died (its leases expired): another
// instance takes the parts over, runs them again from their start and
// finishes the job, with every image once (no duplicate, no loss); the
// dead instance can no longer write to the job; the audit log shows one
// run, started by the dead instance, ended by the live one.
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
	for i := range x.PartCount {
		got, ok, _, err := dead.data.DB.ClaimIngestPart(ctx, dead.srv.instance, claimedAt, defaultJobLease)
		if err != nil || !ok || got.JobID != x.ID || got.Journal != (i == 0) {
			t.Fatalf("claim %d as the dead instance: %+v, %v, %v", i, got, ok, err)
		}
		if got.Journal {
			jr, err := ingest.Begin(ctx, dead.data.DB, "olga", id)
			if err != nil {
				t.Fatal(err)
			}
			if err := dead.data.DB.SetIngestJobJournal(ctx, x.ID, jr.StartID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := dead.srv.cfg
	if _, err := app.Ingest(ctx, cfg.Data, cfg.Model, cfg.Vault, cfg.Index, id, app.IngestOptions{Actor: "olga", Unjournaled: true}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"p1.png", "p2.png"} {
		if err := os.Rename(filepath.Join(aside, n), filepath.Join(dead.photos, n)); err != nil {
			t.Fatal(err)
		}
	}

	// Its leases (30 s from a minute ago) have expired: a live instance
	// takes the parts over as soon as it starts.
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
	if err != nil || !row.Started.Equal(claimedAt.Truncate(time.Millisecond)) {
		t.Errorf("row = %+v, %v; want started when first claimed", row, err)
	}
	for _, p := range row.Parts {
		if p.Owner != live.srv.instance || p.Claims != 2 || p.State != store.JobDone {
			t.Errorf("part %+v; want done by the live instance, claimed twice", p)
		}
	}
	runs := endedRuns(t, live)
	if len(runs) != 2 || runs[0].Action != ingest.ActionStart || runs[1].Action != ingest.ActionEnd ||
		!strings.Contains(string(runs[1].Detail), fmt.Sprintf(`"start":%d`, runs[0].ID)) || !strings.Contains(string(runs[1].Detail), `"images":2`) {
		t.Errorf("audited ingest runs = %+v; want the job's start and its end, with 2 images", runs)
	}
	counts, err := live.data.DB.SourceCounts(ctx)
	if err != nil || counts[id] != [2]int64{3, 3} {
		t.Errorf("source holds %v (images, faces), %v; want 3 and 3", counts[id], err)
	}
	if n := vindex.Count(live.srv.cfg.Index.Index); n != 3 {
		t.Errorf("%d faces indexed; want 3", n)
	}
	if _, err := dead.data.DB.HeartbeatIngestPart(ctx, x.ID, 0, dead.srv.instance, time.Now(), defaultJobLease, store.JobProgress{}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("the dead instance's heartbeat: %v; want ErrLeaseLost", err)
	}
	// Running it again changes nothing: the ingest is idempotent.
	if j := live.ingest(live.token("olga"), id); j.State != jobDone || j.Images != 0 || j.Skipped != 3 {
		t.Errorf("ingest again = %+v; want nothing new", j)
	}
}

// ingestRuns returns the audit entries of ingest runs, oldest first.
func ingestRuns(t *testing.T, e *testEnv) []store.AuditEntry {
	t.Helper()
	es, err := e.data.DB.QueryAudit(context.Background(), store.AuditFilter{Action: "source.ingest*", Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(es)
	return es
}

// endedRuns is ingestRuns once a run's end is in the audit log: the
// instance whose part ends last writes it just after the job is settled,
// which a waiter may see first.
func endedRuns(t *testing.T, e *testEnv) []store.AuditEntry {
	t.Helper()
	var runs []store.AuditEntry
	eventually(t, 30*time.Second, "the ingest run's end in the audit log", func() bool {
		runs = ingestRuns(t, e)
		return slices.ContainsFunc(runs, func(a store.AuditEntry) bool { return a.Action == ingest.ActionEnd })
	})
	return runs
}

// gateModel is fakeModel whose analyses of ingested photos wait until
// open is closed.
type gateModel struct {
	fakeModel
	open chan struct{}
}

func (m gateModel) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	select {
	case <-m.open:
	case <-ctx.Done():
		return face.Analysis{}, ctx.Err()
	}
	return m.fakeModel.Analyze(ctx, data)
}

// morePhotos adds photos to e's source, distinct, until every part of
// parts has some; it returns how many the source holds.
func morePhotos(t *testing.T, e *testEnv, parts int) int {
	t.Helper()
	n := 3
	for ; n < 24; n++ {
		c := color.RGBA{uint8(20 + 9*n), uint8(250 - 7*n), uint8(40 + 5*n), 0}
		if err := os.WriteFile(filepath.Join(e.photos, fmt.Sprintf("p%d.png", n)), testPNG(t, c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in := make([]int, parts)
	for i := range n {
		for p := range parts {
			if ingest.InPart(p, parts)(fmt.Sprintf("p%d.png", i)) {
				in[p]++
			}
		}
	}
	if slices.Contains(in, 0) {
		t.Fatalf("photos per part: %v; want some in each", in)
	}
	return n
}

// storedImages lists the images of the store as "locator sha256".
func storedImages(t *testing.T, e *testEnv) []string {
	t.Helper()
	var out []string
	for id := int64(1); id < 100; id++ {
		img, err := e.data.DB.Image(context.Background(), id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %x", img.Locator, img.SHA256))
	}
	slices.Sort(out)
	return out
}

// TestJobPartsOnTwoInstances: two servers over one store run parts of one
// job at the same time; the job is done when every part is, its counts are
// the sums of its parts', and the store holds what one instance alone
// stores from the same photos (every image once); the audit log shows the
// job as one run.
func TestJobPartsOnTwoInstances(t *testing.T) {
	m := gateModel{open: make(chan struct{})}
	a := newTestEnv(t, m)
	b := a.secondInstance(t, nil)
	n := morePhotos(t, a, defaultJobParts)
	a.addUser("olga", store.RoleOperator)
	op := a.token("olga")
	id := a.declareSource(op)

	st, body := op.json("POST", fmt.Sprintf("/api/v1/sources/%d/ingest", id), nil)
	if st != http.StatusAccepted {
		t.Fatalf("start ingest: %d %s", st, body)
	}
	started := decode[job](t, body)
	if len(started.Parts) != defaultJobParts {
		t.Fatalf("queued job = %+v; want %d parts", started, defaultJobParts)
	}
	ctx := context.Background()
	eventually(t, 30*time.Second, "a part running on each instance", func() bool {
		row, err := a.data.DB.IngestJob(ctx, started.ID)
		if err != nil {
			t.Fatal(err)
		}
		on := map[string]bool{}
		for _, p := range row.Parts {
			if p.State == store.JobRunning {
				on[p.Owner] = true
			}
		}
		return on[a.srv.instance] && on[b.srv.instance]
	})
	close(m.open)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	end, err := b.srv.jobs.wait(wctx, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	if end.State != jobDone || end.Total != n || end.Seen != n || end.Images != n || end.Faces != n || end.Skipped != 0 || end.Failed != 0 {
		t.Errorf("job = %+v; want done, %d files, images and faces", end, n)
	}
	var sum jobPart
	owners := map[string]int{}
	for _, p := range end.Parts {
		if p.State != jobDone || p.Claims != 1 {
			t.Errorf("part %+v; want done, claimed once", p)
		}
		owners[p.Instance]++
		sum.Total, sum.Seen, sum.Images, sum.Faces = sum.Total+p.Total, sum.Seen+p.Seen, sum.Images+p.Images, sum.Faces+p.Faces
	}
	if owners[a.srv.instance] == 0 || owners[b.srv.instance] == 0 || len(owners) != 2 {
		t.Errorf("parts run by %v; want both instances", owners)
	}
	if sum.Total != end.Total || sum.Seen != end.Seen || sum.Images != end.Images || sum.Faces != end.Faces {
		t.Errorf("parts sum to %+v; the job shows %+v", sum, end)
	}
	if got := vindex.Count(a.srv.cfg.Index.Index); got != n {
		t.Errorf("%d faces indexed; want %d", got, n)
	}
	runs := endedRuns(t, a)
	if len(runs) != 2 || runs[0].Action != ingest.ActionStart || runs[1].Action != ingest.ActionEnd ||
		!strings.Contains(string(runs[1].Detail), fmt.Sprintf(`"images":%d`, n)) {
		t.Errorf("audited ingest runs = %+v; want one run of %d images", runs, n)
	}

	// One instance alone, over another store, from the same photos.
	one := newTestEnvConfig(t, fakeModel{}, func(c *Config) { c.JobParts = 1 })
	if err := os.RemoveAll(one.photos); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(one.photos, os.DirFS(a.photos)); err != nil {
		t.Fatal(err)
	}
	one.addUser("olga", store.RoleOperator)
	oop := one.token("olga")
	if j := one.ingest(oop, one.declareSource(oop)); j.State != jobDone || j.Images != n || len(j.Parts) != 1 {
		t.Fatalf("single instance's job = %+v", j)
	}
	want, got := storedImages(t, one), storedImages(t, a)
	if !slices.Equal(got, want) {
		t.Errorf("two instances stored %v\none alone %v", got, want)
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
	if n := vindex.Count(b.srv.cfg.Index.Index); n != 0 {
		t.Errorf("%d faces left in the index", n)
	}
	// b released the lease: a third instance takes it at once.
	if ok, err := a.data.DB.TryLease(ctx, purgeLease, "third", clock.Now(), time.Minute); err != nil || !ok {
		t.Errorf("lease after b's purge: %v, %v; want it free", ok, err)
	}
}
