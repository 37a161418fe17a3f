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

// withoutRates is p with its rates zeroed: a job's rates are computed
// from the time since it started.
func withoutRates(p store.JobProgress) store.JobProgress {
	p.ImagesPerS, p.FacesPerS = 0, 0
	return p
}

// claim claims a part as owner at at, failing the test on error.
func claim(t *testing.T, db *store.DB, owner string, at time.Time) (store.PartClaim, bool) {
	t.Helper()
	c, ok, _, err := db.ClaimIngestPart(context.Background(), owner, at, lease)
	if err != nil {
		t.Fatal(err)
	}
	return c, ok
}

// TestIngestJobClaimLeaseTakeover: instance A claims a job's only part;
// while A's lease lives, B claims nothing; once it expired, B takes the
// part over, and A's heartbeat and finish are refused (it must stop
// without writing).
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
		if j.State != store.JobQueued || j.SourceID != src || j.StartedBy != "olga" || j.PartCount != 1 || len(j.Parts) != 1 ||
			j.Parts[0].State != store.JobQueued || j.AuditStart != 0 {
			t.Fatalf("queued job = %+v", j)
		}
		got, ok := claim(t, a, "A", t0)
		if !ok || got.JobID != j.ID || got.Part != 0 || got.Of != 1 || got.State != store.JobRunning || got.Owner != "A" || got.Claims != 1 ||
			!got.LeaseUntil.Equal(t0.Add(lease)) || !got.Started.Equal(t0) || got.SourceID != src || got.StartedBy != "olga" || !got.Journal {
			t.Fatalf("claim by A = %+v, %v", got, ok)
		}
		if err := a.SetIngestJobJournal(ctx, j.ID, 42); err != nil {
			t.Fatal(err)
		}
		if got, ok := claim(t, b, "B", t0.Add(10*time.Second)); ok {
			t.Fatalf("B claimed %+v while A's lease lives", got)
		}
		// A's heartbeat at +20 s renews the lease to +50 s and writes progress.
		p := store.JobProgress{Total: 10, Seen: 4, Images: 3, Faces: 5, Skipped: 1, ImagesPerS: 1.5}
		if c, err := a.HeartbeatIngestPart(ctx, j.ID, 0, "A", t0.Add(20*time.Second), lease, p); err != nil || c != "" {
			t.Fatalf("heartbeat: %q, %v", c, err)
		}
		got2, err := b.IngestJob(ctx, j.ID)
		if err != nil || withoutRates(got2.Progress) != withoutRates(p) || got2.Progress.ImagesPerS != 0.15 || got2.State != store.JobRunning ||
			got2.Parts[0].Progress != p || !got2.Parts[0].LeaseUntil.Equal(t0.Add(50*time.Second)) || got2.AuditStart != 42 {
			t.Fatalf("B sees %+v, %v", got2, err)
		}
		if _, ok := claim(t, b, "B", t0.Add(45*time.Second)); ok {
			t.Fatal("B claimed a renewed lease")
		}
		// A falls silent: at +51 s B takes the part over.
		got, ok = claim(t, b, "B", t0.Add(51*time.Second))
		if !ok || got.JobID != j.ID || got.Owner != "B" || got.State != store.JobRunning || got.Claims != 2 || !got.Started.Equal(t0) || got.Journal {
			t.Fatalf("takeover by B = %+v, %v", got, ok)
		}
		if _, err := a.HeartbeatIngestPart(ctx, j.ID, 0, "A", t0.Add(52*time.Second), lease, p); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("A's heartbeat after the takeover: %v; want ErrLeaseLost", err)
		}
		if _, _, err := a.FinishIngestPart(ctx, j.ID, 0, "A", t0.Add(52*time.Second), store.JobEnd{State: store.JobFailed, Error: "x"}); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("A's finish after the takeover: %v; want ErrLeaseLost", err)
		}
		errs := json.RawMessage(`[{"locator":"a.jpg","reason":"decode"}]`)
		end := store.JobEnd{State: store.JobDone, Progress: store.JobProgress{Total: 10, Seen: 10, Images: 9, Faces: 12, Failed: 1}, Errors: errs}
		fin, ended, err := b.FinishIngestPart(ctx, j.ID, 0, "B", t0.Add(60*time.Second), end)
		if err != nil || !ended || fin.State != store.JobDone {
			t.Fatalf("finish by B: %+v, %v, %v", fin, ended, err)
		}
		got2, err = a.IngestJob(ctx, j.ID)
		if err != nil || got2.State != store.JobDone || withoutRates(got2.Progress) != end.Progress || got2.Error != "" ||
			string(got2.Errors) != string(errs) || !got2.Finished.Equal(t0.Add(60*time.Second)) || got2.Parts[0].Owner != "B" ||
			!got2.Parts[0].LeaseUntil.IsZero() || got2.Parts[0].Claims != 2 {
			t.Fatalf("finished job = %+v, %v", got2, err)
		}
		if _, err := a.CancelIngestJob(ctx, j.ID, "olga", t0.Add(61*time.Second)); !errors.Is(err, store.ErrJobEnded) {
			t.Errorf("cancel a finished job: %v; want ErrJobEnded", err)
		}
		if _, ok := claim(t, a, "A", t0.Add(time.Hour)); ok {
			t.Error("a finished job was claimed again")
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
		if len(la) != 1 || len(lb) != 1 || la[0].ID != lb[0].ID || la[0].State != lb[0].State || len(la[0].Parts) != 1 {
			t.Errorf("A lists %+v, B lists %+v", la, lb)
		}
	})
}

// TestIngestJobParts: a job in four parts is run by two instances at once:
// its first part is claimed alone until its start is audited, then every
// part is claimed exactly once, each instance holding one; the job's
// progress is the sum of its parts'; it runs while a part does, and ends
// when the last part ends: failed, naming the part, when one failed, with
// the errors of every part. A part whose instance died is taken over.
func TestIngestJobParts(t *testing.T) {
	onBothDialects(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		src, err := a.CreateSource(ctx, pgSource())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.EnqueueIngestParts(ctx, src, "olga", 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("a job of 0 parts: %v; want ErrInvalid", err)
		}
		j, err := a.EnqueueIngestParts(ctx, src, "olga", 4)
		if err != nil {
			t.Fatal(err)
		}
		if j.PartCount != 4 || len(j.Parts) != 4 {
			t.Fatalf("queued job = %+v", j)
		}
		first, ok := claim(t, a, "A", t0)
		if !ok || first.Part != 0 || !first.Journal || first.Of != 4 {
			t.Fatalf("first claim = %+v, %v", first, ok)
		}
		if c, ok := claim(t, b, "B", t0); ok {
			t.Fatalf("B claimed %+v before the job's start was audited", c)
		}
		if err := a.SetIngestJobJournal(ctx, j.ID, 7); err != nil {
			t.Fatal(err)
		}
		// The three other parts, claimed by four claimers at once.
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got = map[int]string{0: "A"}
		)
		for i, db := range []*store.DB{a, b, a, b} {
			owner := fmt.Sprintf("i%d", i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, ok, _, err := db.ClaimIngestPart(ctx, owner, t0.Add(time.Second), lease)
				if err != nil || !ok {
					return // no part left for this one
				}
				mu.Lock()
				defer mu.Unlock()
				if c.Journal || c.JobID != j.ID {
					t.Errorf("claim by %s = %+v", owner, c)
				}
				if prev, dup := got[c.Part]; dup {
					t.Errorf("part %d claimed by %s and %s", c.Part, prev, owner)
				}
				got[c.Part] = owner
			}()
		}
		wg.Wait()
		if len(got) != 4 {
			t.Fatalf("parts claimed: %v; want all 4", got)
		}
		// Progress of each part: the job shows the sums.
		for p, owner := range got {
			prog := store.JobProgress{Total: 10, Seen: 5 + p, Images: 2 + p, Faces: 3, Skipped: 1, Failed: p % 2}
			if _, err := b.HeartbeatIngestPart(ctx, j.ID, p, owner, t0.Add(10*time.Second), lease, prog); err != nil {
				t.Fatal(err)
			}
		}
		run, err := b.IngestJob(ctx, j.ID)
		want := store.JobProgress{Total: 40, Seen: 26, Images: 14, Faces: 12, Skipped: 4, Failed: 2}
		if err != nil || withoutRates(run.Progress) != want || run.State != store.JobRunning || run.Progress.ImagesPerS != 1.6 {
			t.Fatalf("job while its parts run = %+v, %v; want progress %+v", run, err, want)
		}
		// The owner of part 3 dies: the others renew their leases at +30 s,
		// and part 3 is taken over at +41 s by B.
		for p := range 3 {
			if _, err := a.HeartbeatIngestPart(ctx, j.ID, p, got[p], t0.Add(30*time.Second), lease, store.JobProgress{}); err != nil {
				t.Fatal(err)
			}
		}
		dead := got[3]
		if c, ok := claim(t, b, "B", t0.Add(41*time.Second)); !ok || c.Part != 3 || c.Claims != 2 {
			t.Fatalf("claimed %+v, %v; want part 3, whose lease expired", c, ok)
		}
		if _, err := a.HeartbeatIngestPart(ctx, j.ID, 3, dead, t0.Add(42*time.Second), lease, store.JobProgress{}); !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("the dead owner's heartbeat: %v; want ErrLeaseLost", err)
		}
		got[3] = "B"
		// The parts end: the job runs until the last one has.
		ends := map[int]store.JobEnd{
			0: {State: store.JobDone, Progress: store.JobProgress{Total: 10, Seen: 10, Images: 9, Faces: 9, Skipped: 1}},
			1: {State: store.JobDone, Progress: store.JobProgress{Total: 10, Seen: 10, Images: 8, Faces: 8, Failed: 2},
				Errors: json.RawMessage(`[{"file":"x","reason":"corrupt"},{"file":"y","reason":"corrupt"}]`)},
			2: {State: store.JobFailed, Progress: store.JobProgress{Total: 10, Seen: 4, Images: 4, Faces: 4}, Error: "the source was suspended"},
			3: {State: store.JobDone, Progress: store.JobProgress{Total: 10, Seen: 10, Images: 10, Faces: 11, Failed: 1},
				Errors: json.RawMessage(`[{"file":"z","reason":"format"}]`)},
		}
		for p := range 4 {
			end, ended, err := a.FinishIngestPart(ctx, j.ID, p, got[p], t0.Add(50*time.Second), ends[p])
			if err != nil {
				t.Fatal(err)
			}
			if ended != (p == 3) {
				t.Fatalf("part %d finished: the job ended %v (%+v)", p, ended, end)
			}
		}
		fin, err := b.IngestJob(ctx, j.ID)
		want = store.JobProgress{Total: 40, Seen: 34, Images: 31, Faces: 32, Skipped: 1, Failed: 3}
		if err != nil || fin.State != store.JobFailed || fin.Error != "part 2 of 4: the source was suspended" || withoutRates(fin.Progress) != want ||
			!fin.Finished.Equal(t0.Add(50*time.Second)) || fin.AuditStart != 7 {
			t.Fatalf("job after its parts = %+v, %v; want failed by part 2, progress %+v", fin, err, want)
		}
		var errs []map[string]string
		if err := json.Unmarshal(fin.Errors, &errs); err != nil || len(errs) != 3 || errs[2]["file"] != "z" {
			t.Errorf("job errors = %s, %v; want the 3 of its parts", fin.Errors, err)
		}
		if fin.Parts[3].Claims != 2 || fin.Parts[3].Owner != "B" {
			t.Errorf("part 3 = %+v; want taken over by B", fin.Parts[3])
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
				j, err := db.EnqueueIngestParts(ctx, src, fmt.Sprintf("user%d", i), 3)
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
		if _, ok := claim(t, b, "B", t0); !ok {
			t.Fatal("nothing claimed")
		}
		if _, err := a.EnqueueIngestJob(ctx, src, "olga"); !errors.Is(err, store.ErrExists) {
			t.Errorf("queue while running: %v; want ErrExists", err)
		}
		// A shutdown of its instance cancels the job: its queued parts at once.
		if j, ended, err := b.FinishIngestPart(ctx, won[0], 0, "B", t0.Add(time.Second), store.JobEnd{State: store.JobCancelled, CancelledBy: "shutdown"}); err != nil ||
			!ended || j.State != store.JobCancelled || j.CancelledBy != "shutdown" {
			t.Fatalf("cancelled by a shutdown: %+v, %v, %v", j, ended, err)
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
// different parts, oldest job first, and every part is claimed exactly once.
func TestIngestJobConcurrentClaims(t *testing.T) {
	onBothDialects(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		var want []string
		for range 6 {
			src, err := a.CreateSource(ctx, pgSource())
			if err != nil {
				t.Fatal(err)
			}
			j, err := a.EnqueueIngestParts(ctx, src, "olga", 2)
			if err != nil {
				t.Fatal(err)
			}
			// The start is audited: both parts may be claimed at once.
			if err := a.SetIngestJobJournal(ctx, j.ID, 1); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%d/0", j.ID), fmt.Sprintf("%d/1", j.ID))
		}
		if n, err := b.QueuedIngestJobs(ctx); err != nil || n != 6 {
			t.Fatalf("queued = %d, %v", n, err)
		}
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			got = map[string]string{}
		)
		for i, db := range []*store.DB{a, b, a, b} {
			owner := fmt.Sprintf("i%d", i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, ok, _, err := db.ClaimIngestPart(ctx, owner, t0, lease)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					k := fmt.Sprintf("%d/%d", c.JobID, c.Part)
					mu.Lock()
					if prev, dup := got[k]; dup {
						t.Errorf("part %s claimed by %s and %s", k, prev, owner)
					}
					got[k] = owner
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		var ks []string
		for k := range got {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		sort.Strings(want)
		if fmt.Sprint(ks) != fmt.Sprint(want) {
			t.Errorf("claimed %v; want %v", ks, want)
		}
	})
}

// TestIngestJobCancel: a queued job is cancelled at once and never
// claimed; a running one is marked, its queued parts are cancelled at once,
// its owner learns it at its next heartbeat and ends its part as cancelled
// by the user who asked, which ends the job; a running part whose owner
// died after a cancel was asked is cancelled, not taken over.
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
		queued, err := a.EnqueueIngestParts(ctx, srcs[0], "olga", 2)
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.CancelIngestJob(ctx, queued.ID, "paul", t0)
		if err != nil || c.State != store.JobCancelled || c.CancelledBy != "paul" || !c.Finished.Equal(t0) ||
			c.Parts[1].State != store.JobCancelled || c.Parts[1].CancelledBy != "paul" {
			t.Fatalf("cancel a queued job = %+v, %v", c, err)
		}
		if j, ok := claim(t, a, "A", t0); ok {
			t.Fatalf("a cancelled job was claimed: %+v", j)
		}
		if _, err := a.CancelIngestJob(ctx, queued.ID+100, "paul", t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("cancel an unknown job: %v; want ErrNotFound", err)
		}

		running, err := a.EnqueueIngestParts(ctx, srcs[1], "olga", 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, a, "A", t0); !ok {
			t.Fatal("nothing claimed")
		}
		c, err = b.CancelIngestJob(ctx, running.ID, "paul", t0.Add(time.Second))
		if err != nil || c.State != store.JobRunning || c.CancelledBy != "paul" || c.Parts[0].State != store.JobRunning || c.Parts[1].State != store.JobCancelled {
			t.Fatalf("cancel a running job = %+v, %v", c, err)
		}
		if by, err := a.HeartbeatIngestPart(ctx, running.ID, 0, "A", t0.Add(2*time.Second), lease, store.JobProgress{Images: 2}); err != nil || by != "paul" {
			t.Fatalf("heartbeat after the cancel: %q, %v; want paul", by, err)
		}
		j, ended, err := a.FinishIngestPart(ctx, running.ID, 0, "A", t0.Add(3*time.Second),
			store.JobEnd{State: store.JobCancelled, Progress: store.JobProgress{Images: 2}, CancelledBy: "shutdown"})
		if err != nil || !ended || j.State != store.JobCancelled || j.CancelledBy != "paul" || j.Progress.Images != 2 || j.Parts[0].CancelledBy != "paul" {
			t.Errorf("job cancelled by its owner = %+v, %v, %v", j, ended, err)
		}

		orphan, err := a.EnqueueIngestJob(ctx, srcs[2], "olga")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := claim(t, a, "A", t0); !ok {
			t.Fatal("nothing claimed")
		}
		if _, err := b.CancelIngestJob(ctx, orphan.ID, "paul", t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		c2, ok, ended2, err := b.ClaimIngestPart(ctx, "B", t0.Add(time.Minute), lease)
		if err != nil || ok {
			t.Fatalf("B took over a part whose job's cancel was asked: %+v (%v, %v)", c2, ok, err)
		}
		if len(ended2) != 1 || ended2[0].ID != orphan.ID || ended2[0].State != store.JobCancelled || ended2[0].CancelledBy != "paul" ||
			!ended2[0].Finished.Equal(t0.Add(time.Minute)) {
			t.Errorf("jobs ended by the claim = %+v; want the orphan, cancelled by paul", ended2)
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
