package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// twoHandles opens target twice, as two instances over one database do.
func twoHandles(t *testing.T, target string) (a, b *store.DB) {
	t.Helper()
	ctx := context.Background()
	var err error
	if a, err = store.Open(ctx, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = store.Open(ctx, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// onBothDialects runs fn with two handles on one SQLite file, and on one
// PostgreSQL database when the tests have one.
func onBothDialects(t *testing.T, fn func(t *testing.T, a, b *store.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		a, b := twoHandles(t, filepath.Join(t.TempDir(), "gabarit.db"))
		fn(t, a, b)
	})
	t.Run("postgres", func(t *testing.T) {
		a, b := twoHandles(t, storetest.Postgres(t))
		fn(t, a, b)
	})
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const lease = 30 * time.Second

// TestIngestJobClaimLeaseTakeover: instance A claims a job; while A's lease
// lives, B claims nothing; once it expired, B takes the job over, and A's
// heartbeat and finish are refused (it must stop without writing).
func TestIngestJobClaimLeaseTakeover(t *testing.T) {
	onBothDialects(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		src, err := a.CreateSource(ctx, pgSource())
		if err != nil {
			t.Fatal(err)
		}
		j, err := a.EnqueueIngestJob(ctx, src, "olga")
		if err != nil {
			t.Fatal(err)
		}
		if j.State != store.JobQueued || j.SourceID != src || j.StartedBy != "olga" || j.Owner != "" {
			t.Fatalf("queued job = %+v", j)
		}
		got, ok, err := a.ClaimIngestJob(ctx, "A", t0, lease)
		if err != nil || !ok || got.ID != j.ID || got.State != store.JobRunning || got.Owner != "A" || got.Claims != 1 ||
			!got.LeaseUntil.Equal(t0.Add(lease)) || !got.Started.Equal(t0) {
			t.Fatalf("claim by A = %+v, %v, %v", got, ok, err)
		}
		if got, ok, err := b.ClaimIngestJob(ctx, "B", t0.Add(10*time.Second), lease); err != nil || ok {
			t.Fatalf("B claimed %+v (%v, %v) while A's lease lives", got, ok, err)
		}
		// A's heartbeat at +20 s renews the lease to +50 s and writes progress.
		p := store.JobProgress{Total: 10, Seen: 4, Images: 3, Faces: 5, Skipped: 1, ImagesPerS: 1.5}
		if c, err := a.HeartbeatIngestJob(ctx, j.ID, "A", t0.Add(20*time.Second), lease, p); err != nil || c != "" {
			t.Fatalf("heartbeat: %q, %v", c, err)
		}
		if got, err := b.IngestJob(ctx, j.ID); err != nil || got.Progress != p || !got.LeaseUntil.Equal(t0.Add(50*time.Second)) {
			t.Fatalf("B sees %+v, %v", got, err)
		}
		if _, ok, err := b.ClaimIngestJob(ctx, "B", t0.Add(45*time.Second), lease); err != nil || ok {
			t.Fatalf("B claimed a renewed lease (%v, %v)", ok, err)
		}
		// A falls silent: at +51 s B takes the job over.
		got, ok, err = b.ClaimIngestJob(ctx, "B", t0.Add(51*time.Second), lease)
		if err != nil || !ok || got.ID != j.ID || got.Owner != "B" || got.State != store.JobRunning || got.Claims != 2 || !got.Started.Equal(t0) {
			t.Fatalf("takeover by B = %+v, %v, %v", got, ok, err)
		}
		if _, err := a.HeartbeatIngestJob(ctx, j.ID, "A", t0.Add(52*time.Second), lease, p); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("A's heartbeat after the takeover: %v; want ErrLeaseLost", err)
		}
		if err := a.FinishIngestJob(ctx, j.ID, "A", t0.Add(52*time.Second), store.JobEnd{State: store.JobFailed, Error: "x"}); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("A's finish after the takeover: %v; want ErrLeaseLost", err)
		}
		errs := json.RawMessage(`[{"locator":"a.jpg","reason":"decode"}]`)
		end := store.JobEnd{State: store.JobDone, Progress: store.JobProgress{Total: 10, Seen: 10, Images: 9, Faces: 12, Failed: 1}, Errors: errs}
		if err := b.FinishIngestJob(ctx, j.ID, "B", t0.Add(60*time.Second), end); err != nil {
			t.Fatal(err)
		}
		got, err = a.IngestJob(ctx, j.ID)
		if err != nil || got.State != store.JobDone || got.Owner != "B" || got.Progress != end.Progress || got.Error != "" ||
			string(got.Errors) != string(errs) || !got.Finished.Equal(t0.Add(60*time.Second)) || !got.LeaseUntil.IsZero() {
			t.Fatalf("finished job = %+v, %v", got, err)
		}
		if _, err := a.CancelIngestJob(ctx, j.ID, "olga", t0.Add(61*time.Second)); !errors.Is(err, store.ErrJobEnded) {
			t.Errorf("cancel a finished job: %v; want ErrJobEnded", err)
		}
		if _, ok, err := a.ClaimIngestJob(ctx, "A", t0.Add(time.Hour), lease); err != nil || ok {
			t.Errorf("a finished job was claimed again (%v, %v)", ok, err)
		}
		// Both handles list the same jobs.
		la, err := a.IngestJobs(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := b.IngestJobs(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(la) != 1 || len(lb) != 1 || la[0].ID != lb[0].ID || la[0].State != lb[0].State {
			t.Errorf("A lists %+v, B lists %+v", la, lb)
		}
	})
}

// TestIngestJobOnePerSource: a source has at most one queued or running
// job, even when instances queue one at the same moment; once it ended,
// another may be queued.
func TestIngestJobOnePerSource(t *testing.T) {
	onBothDialects(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		src, err := a.CreateSource(ctx, pgSource())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.EnqueueIngestJob(ctx, src+100, "olga"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("queue an ingest of an unknown source: %v; want ErrNotFound", err)
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     []int64
			refused []error
		)
		for i := range 8 {
			db := a
			if i%2 == 1 {
				db = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, err := db.EnqueueIngestJob(ctx, src, fmt.Sprintf("user%d", i))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won = append(won, j.ID)
				} else {
					refused = append(refused, err)
				}
			}()
		}
		wg.Wait()
		if len(won) != 1 || len(refused) != 7 {
			t.Fatalf("%d jobs queued, %d refused (%v); want 1 and 7", len(won), len(refused), refused)
		}
		for _, err := range refused {
			var ae *store.ActiveJobError
			if !errors.As(err, &ae) || ae.JobID != won[0] || ae.SourceID != src || !errors.Is(err, store.ErrExists) {
				t.Errorf("refusal: %v; want an ActiveJobError naming job %d", err, won[0])
			}
		}
		// Running, it still blocks a second one.
		if _, ok, err := b.ClaimIngestJob(ctx, "B", t0, lease); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if _, err := a.EnqueueIngestJob(ctx, src, "olga"); !errors.Is(err, store.ErrExists) {
			t.Errorf("queue while running: %v; want ErrExists", err)
		}
		if err := b.FinishIngestJob(ctx, won[0], "B", t0.Add(time.Second), store.JobEnd{State: store.JobFailed, Error: "the source was suspended"}); err != nil {
			t.Fatal(err)
		}
		j, err := a.EnqueueIngestJob(ctx, src, "olga")
		if err != nil || j.ID == won[0] {
			t.Fatalf("queue after the job ended: %+v, %v", j, err)
		}
		if act, err := b.ActiveIngestJobs(ctx, src); err != nil || len(act) != 1 || act[0].ID != j.ID {
			t.Errorf("active jobs = %+v, %v", act, err)
		}
	})
}

// TestIngestJobConcurrentClaims: instances claiming at once each get
// different jobs, oldest first, and every job is claimed exactly once.
func TestIngestJobConcurrentClaims(t *testing.T) {
	onBothDialects(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		var want []int64
		for range 6 {
			src, err := a.CreateSource(ctx, pgSource())
			if err != nil {
				t.Fatal(err)
			}
			j, err := a.EnqueueIngestJob(ctx, src, "olga")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, j.ID)
		}
		if n, err := b.QueuedIngestJobs(ctx); err != nil || n != 6 {
			t.Fatalf("queued = %d, %v", n, err)
		}
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got = map[int64]string{}
		)
		for i, db := range []*store.DB{a, b, a, b} {
			owner := fmt.Sprintf("i%d", i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					j, ok, err := db.ClaimIngestJob(ctx, owner, t0, lease)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					mu.Lock()
					if prev, dup := got[j.ID]; dup {
						t.Errorf("job %d claimed by %s and %s", j.ID, prev, owner)
					}
					got[j.ID] = owner
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		var ids []int64
		for id := range got {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		if fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("claimed %v; want %v", ids, want)
		}
	})
}

// TestIngestJobCancel: a queued job is cancelled at once and never
// claimed; a running one is marked, its owner learns it at its next
// heartbeat and ends it as cancelled by the user who asked; a running job
// whose owner died after a cancel was asked is cancelled, not taken over.
func TestIngestJobCancel(t *testing.T) {
	onBothDialects(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		var srcs [3]int64
		for i := range srcs {
			var err error
			if srcs[i], err = a.CreateSource(ctx, pgSource()); err != nil {
				t.Fatal(err)
			}
		}
		queued, err := a.EnqueueIngestJob(ctx, srcs[0], "olga")
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.CancelIngestJob(ctx, queued.ID, "paul", t0)
		if err != nil || c.State != store.JobCancelled || c.CancelledBy != "paul" || !c.Finished.Equal(t0) {
			t.Fatalf("cancel a queued job = %+v, %v", c, err)
		}
		if j, ok, err := a.ClaimIngestJob(ctx, "A", t0, lease); err != nil || ok {
			t.Fatalf("a cancelled job was claimed: %+v (%v, %v)", j, ok, err)
		}
		if _, err := a.CancelIngestJob(ctx, queued.ID+100, "paul", t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cancel an unknown job: %v; want ErrNotFound", err)
		}

		running, err := a.EnqueueIngestJob(ctx, srcs[1], "olga")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := a.ClaimIngestJob(ctx, "A", t0, lease); err != nil || !ok {
			t.Fatal(ok, err)
		}
		c, err = b.CancelIngestJob(ctx, running.ID, "paul", t0.Add(time.Second))
		if err != nil || c.State != store.JobRunning || c.CancelledBy != "paul" {
			t.Fatalf("cancel a running job = %+v, %v", c, err)
		}
		if by, err := a.HeartbeatIngestJob(ctx, running.ID, "A", t0.Add(2*time.Second), lease, store.JobProgress{Images: 2}); err != nil || by != "paul" {
			t.Fatalf("heartbeat after the cancel: %q, %v; want paul", by, err)
		}
		if err := a.FinishIngestJob(ctx, running.ID, "A", t0.Add(3*time.Second),
			store.JobEnd{State: store.JobCancelled, Progress: store.JobProgress{Images: 2}, CancelledBy: "shutdown"}); err != nil {
			t.Fatal(err)
		}
		if j, err := b.IngestJob(ctx, running.ID); err != nil || j.State != store.JobCancelled || j.CancelledBy != "paul" || j.Progress.Images != 2 {
			t.Errorf("job cancelled by its owner = %+v, %v", j, err)
		}

		orphan, err := a.EnqueueIngestJob(ctx, srcs[2], "olga")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := a.ClaimIngestJob(ctx, "A", t0, lease); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if _, err := b.CancelIngestJob(ctx, orphan.ID, "paul", t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if j, ok, err := b.ClaimIngestJob(ctx, "B", t0.Add(time.Minute), lease); err != nil || ok {
			t.Fatalf("B took over a job whose cancel was asked: %+v (%v, %v)", j, ok, err)
		}
		if j, err := b.IngestJob(ctx, orphan.ID); err != nil || j.State != store.JobCancelled || j.CancelledBy != "paul" || !j.Finished.Equal(t0.Add(time.Minute)) {
			t.Errorf("orphan after the cancel = %+v, %v", j, err)
		}
	})
}

// TestLease: one owner at a time holds a named lease; it renews it, gives
// it up, and another takes it once it expired.
func TestLease(t *testing.T) {
	onBothDialects(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		const name = "retention-purge"
		steps := []struct {
			db    *store.DB
			owner string
			at    time.Duration
			want  bool
		}{
			{a, "A", 0, true},
			{b, "B", time.Second, false},               // A holds it
			{a, "A", 50 * time.Second, true},           // A renews until +110 s
			{b, "B", 100 * time.Second, false},         // still A's
			{b, "B", 111 * time.Second, true},          // expired: B takes it
			{a, "A", 112 * time.Second, false},         // now B's
			{b, "B", 113 * time.Second, true},          // B renews
			{a, "other", 200 * time.Second, true},      // expired again
			{b, "B", 201 * time.Second, false},         // other's
			{a, "A", 201*time.Second + lease/2, false}, // still other's
			{b, "B", 200*time.Second + 2*lease, true},  // expired
			{b, "B", 200*time.Second + 2*lease, true},  // idempotent renewal
			{a, "A", 200*time.Second + 5*lease/2, false},
		}
		for i, s := range steps {
			ttl := lease
			if i < 7 {
				ttl = time.Minute
			}
			if got, err := s.db.TryLease(ctx, name, s.owner, t0.Add(s.at), ttl); err != nil || got != s.want {
				t.Fatalf("step %d: TryLease(%s at +%v) = %v, %v; want %v", i, s.owner, s.at, got, err, s.want)
			}
		}
		// Released by someone who does not hold it: nothing changes.
		if err := a.ReleaseLease(ctx, name, "A"); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.TryLease(ctx, name, "A", t0.Add(200*time.Second+5*lease/2), lease); got {
			t.Error("A took B's lease after releasing a lease it did not hold")
		}
		if err := b.ReleaseLease(ctx, name, "B"); err != nil {
			t.Fatal(err)
		}
		if got, err := a.TryLease(ctx, name, "A", t0.Add(200*time.Second+5*lease/2), lease); err != nil || !got {
			t.Errorf("A could not take a released lease: %v, %v", got, err)
		}
	})
}
