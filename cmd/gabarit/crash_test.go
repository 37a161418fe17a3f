//go:build cgo && onnx

package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"gabarit/internal/vindex"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/dsr"
	"gabarit/internal/imageproc"
	"gabarit/internal/modeltest"
	"gabarit/internal/passwd"
	"gabarit/internal/store"
	"gabarit/internal/vault"
)

// envCrashSeed reproduces a run of TestCrashTrials: its seed.
const envCrashSeed = "GABARIT_CRASH_SEED"

// TestCrashTrials kills gabarit with SIGKILL at seeded random moments of an
// ingest, a purge, a rights erasure and a server under load (searches and
// an ingest job through the API): 24 kills in all (8, 6, 6 and 4). After each kill the
// database passes PRAGMA integrity_check, the vector index (as the next
// command opens it) holds exactly the stored faces, and audit verify finds
// the log and its witness intact; then the interrupted command, run again
// to completion, leaves the state an uninterrupted run leaves. What
// "the same state" means for each operation is said where it is checked.
// The moments come from a seed, logged; GABARIT_CRASH_SEED=N runs the same
// draws again.
func TestCrashTrials(t *testing.T) {
	modeltest.Installed(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envCrashSeed); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", envCrashSeed, v)
		}
		seed = s
	}
	t.Logf("crash trials seed %d (run again with %s=%d)", seed, envCrashSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))

	// Two folders of distinct photos: the first is ingested by the CLI
	// trials, the second by the server's ingest job.
	all := t.TempDir()
	crashPhotos(t, all, 64)
	photos, photos2 := t.TempDir(), t.TempDir()
	for i := range 64 {
		name := filepath.Join(fmt.Sprintf("d%d", i%4), fmt.Sprintf("c%03d.jpg", i))
		dst := photos
		if i >= 44 {
			dst = photos2
		}
		if err := copyFile(filepath.Join(all, name), filepath.Join(dst, name)); err != nil {
			t.Fatal(err)
		}
	}

	// The reference: everything uninterrupted.
	ref := t.TempDir()
	src := addSource(t, ref, photos)
	refIngest := runToEnd(t, ref, "ingest", "--quiet", "--batch", "4", fmt.Sprint(src))
	t.Logf("uninterrupted ingest: %s of work", refIngest.work.Round(time.Millisecond))
	nImages, nFaces := storeCounts(t, ref)
	if nImages < 15 || nFaces < 15 {
		t.Fatalf("reference ingest stored %d images and %d faces", nImages, nFaces)
	}

	var kills []trial
	kills = append(kills, crashIngest(t, rng, ref, photos, refIngest.work)...)
	kills = append(kills, crashPurge(t, rng, ref)...)
	// The person of the rights request, and the server's probe: the
	// largest face of the gallery.
	selfie := faceCrop(t, photos, filepath.Join(t.TempDir(), "selfie.jpg"))
	kills = append(kills, crashErasure(t, rng, ref, selfie)...)
	kills = append(kills, crashServe(t, rng, ref, photos2, selfie)...)

	per := map[string]int{}
	for _, k := range kills {
		per[k.op]++
	}
	t.Logf("%d kills: %v", len(kills), per)
	for _, k := range kills {
		t.Logf("  %s: %s", k.op, k.landed)
	}
	if len(kills) < 20 {
		t.Errorf("%d kills, want at least 20", len(kills))
	}
	for _, op := range []string{"ingest", "purge", "erasure", "serve"} {
		if per[op] < 4 {
			t.Errorf("%d kills of %s, want at least 4", per[op], op)
		}
	}
}

// trial is one kill: the operation and where it landed.
type trial struct {
	op, landed string
}

// finished is an uninterrupted command: its output and how long it
// held the data directory's writer lock (its work, after start-up).
type finished struct {
	stdout string
	work   time.Duration
}

// gabaritCmd returns the test binary running as gabarit with args, the data
// directory data given after the command's words.
func gabaritCmd(data string, words int, args ...string) *exec.Cmd {
	full := append(slices.Clone(args[:words]), "--data", data)
	full = append(full, args[words:]...)
	cmd := exec.Command(os.Args[0], full...)
	cmd.Env = append(os.Environ(), "GABARIT_TEST_MAIN=1")
	return cmd
}

// words is how many words of args name the command (rights process: 2).
func words(args []string) int {
	if args[0] == "rights" {
		return 2
	}
	return 1
}

// runToEnd runs gabarit args on data as a process, uninterrupted, and
// measures its work: from when it holds the writer lock to its exit.
func runToEnd(t *testing.T, data string, args ...string) finished {
	t.Helper()
	return runUntil(t, data, lockHeld(data), args...)
}

// started says whether process pid has started the work a trial kills.
type started func(pid int) bool

// lockHeld: the process holds the data directory's writer lock (its store
// and index are open or being opened).
func lockHeld(data string) started { return func(pid int) bool { return holdsLock(data, pid) } }

// acting: the process holds the lock and rights request id is no longer
// verified (it is acting on the reviewed set, or done).
func acting(t *testing.T, data string, id int64) started {
	return func(pid int) bool {
		if !holdsLock(data, pid) {
			return false
		}
		db, err := sql.Open("sqlite", filepath.Join(data, "gabarit.db")+"?mode=ro")
		if err != nil {
			t.Error(err)
			return true
		}
		defer db.Close()
		var state string
		if err := db.QueryRow(`SELECT state FROM rights_requests WHERE id = ?`, id).Scan(&state); err != nil {
			return false // busy: look again
		}
		return state != string(dsr.Verified)
	}
}

// runUntil is runToEnd with the work's start said by ready.
func runUntil(t *testing.T, data string, ready started, args ...string) finished {
	t.Helper()
	cmd := gabaritCmd(data, words(args), args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := waitChan(cmd)
	start, ok := untilStarted(ready, cmd, done)
	var err error
	if ok {
		err = <-done
	} else {
		err = start.err
	}
	// It succeeds; only a closed rights request is answered with status
	// 1 (the run that closed it was killed right after).
	if err != nil && !(args[0] == "rights" && strings.Contains(stderr.String(), "is already completed")) {
		t.Fatalf("gabarit %v: %v\n%s", args, err, stderr.String())
	}
	r := finished{stdout: out.String()}
	if ok {
		r.work = time.Since(start.at)
	}
	return r
}

// exited is a process's end.
type exited struct {
	at  time.Time
	err error
}

func waitChan(cmd *exec.Cmd) chan error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}

// untilStarted waits until process pid has started its work and returns
// when; ok is false if the process ended first.
// A process that neither starts nor ends in 5 minutes is killed.
func untilStarted(ready started, cmd *exec.Cmd, done chan error) (exited, bool) {
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Minute)
	for {
		select {
		case err := <-done:
			return exited{time.Now(), err}, false
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill() // it is stuck; its end is reported below
			err := <-done
			return exited{time.Now(), fmt.Errorf("did not start its work in 5 minutes (%v)", err)}, false
		}
		if ready(pid) {
			return exited{at: time.Now()}, true
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// holdsLock reports whether process pid holds the flock of data/lock, as
// /proc/locks shows it (taking the lock to see would make the process's own
// attempt fail). Where there is no /proc/locks (not Linux), a process
// counts as holding the lock once the lock file exists.
func holdsLock(data string, pid int) bool {
	fi, err := os.Stat(filepath.Join(data, "lock"))
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return true
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[1] == "FLOCK" && f[4] == strconv.Itoa(pid) && strings.HasSuffix(f[5], ":"+strconv.FormatUint(st.Ino, 10)) {
			return true
		}
	}
	return false
}

// killAfter starts gabarit args on data, waits until it has started its
// work (ready), then a random delay in [0, window), and kills it with
// SIGKILL. It reports whether the kill came before the process ended.
func killAfter(t *testing.T, rng *rand.Rand, data string, ready started, window time.Duration, args ...string) bool {
	t.Helper()
	cmd := gabaritCmd(data, words(args), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := waitChan(cmd)
	delay := time.Duration(rng.Int64N(int64(max(window, time.Millisecond))))
	if st, ok := untilStarted(ready, cmd, done); !ok {
		if st.err != nil {
			t.Errorf("gabarit %v: %v\n%s", args, st.err, stderr.String())
		}
		return false // it ended before it started the work a kill was for
	}
	return killIn(t, cmd, done, delay)
}

// killIn kills cmd with SIGKILL after delay, unless it ends first.
func killIn(t *testing.T, cmd *exec.Cmd, done chan error, delay time.Duration) bool {
	t.Helper()
	select {
	case <-done:
		return false
	case <-time.After(delay):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		<-done
		return false // it had just ended
	}
	err := <-done
	ee, ok := err.(*exec.ExitError)
	return ok && ee.Sys().(syscall.WaitStatus).Signaled()
}

// checkAfterKill runs the three checks every kill is followed by, and
// returns the number of faces stored.
func checkAfterKill(t *testing.T, data, what string) int {
	t.Helper()
	ctx := context.Background()
	// 1. SQLite's own check of the database and the vault.
	for _, name := range []string{"gabarit.db", "vault.db"} {
		path := filepath.Join(data, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		var res []string
		rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
		if err == nil {
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				res = append(res, s)
			}
			err = rows.Err()
			rows.Close()
		}
		db.Close()
		if err != nil || len(res) != 1 || res[0] != "ok" {
			t.Errorf("%s: integrity_check of %s = %v, %v", what, name, res, err)
		}
	}
	// 2. The index, as the next command opens it (loaded and caught up,
	// or rebuilt), holds every stored face and nothing else.
	n := checkIndex(t, data, what)
	// 3. The audit log and its witness: no false alarm after a crash.
	if out, stderr, err := cli(t, data, "audit", "verify"); err != nil || !strings.HasPrefix(out, "audit log intact") {
		t.Errorf("%s: audit verify: %v %q %q", what, err, out, stderr)
	}
	return n
}

// checkIndex opens the vector index of data as a command would and checks
// it against the store: the same number of faces, and each stored face
// found under its own id with its own template. It returns that number.
func checkIndex(t *testing.T, data, what string) int {
	t.Helper()
	ctx := context.Background()
	m, err := (&faceFlags{pack: "default"}).manifest()
	if err != nil {
		t.Fatal(err)
	}
	dd, err := app.OpenData(ctx, config.Config{DataDir: data, Index: app.IndexHNSW}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	h, err := dd.OpenIndex(ctx, m.Embedder.ID(), m.Embedder.Dim)
	if err != nil {
		t.Fatalf("%s: open the index: %v", what, err)
	}
	defer h.Close()
	stored := map[int64][]float32{}
	err = dd.DB.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, blob []byte) error {
		v, err := dd.Keys.Open(ctx, sourceID, faceID, modelID, blob)
		if err != nil {
			return fmt.Errorf("face %d: %w", faceID, err)
		}
		stored[faceID] = v
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if vindex.Count(h.Index) != len(stored) {
		t.Errorf("%s: the index holds %d faces, the store %d", what, vindex.Count(h.Index), len(stored))
	}
	missing := 0
	for id, v := range stored {
		hits, err := h.Index.Search(ctx, v, 10, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(hits, func(h vindex.Hit) bool { return h.ID == id }) {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d stored faces are not in the index", what, missing)
	}
	return len(stored)
}

// storeCounts returns the images and faces stored in data.
func storeCounts(t *testing.T, data string) (images, faces int64) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.SourceCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range c {
		images += v[0]
		faces += v[1]
	}
	return images, faces
}

// auditSums returns, for data's audit log, the number of entries of each
// action and the sum of each numeric detail field per action
// ("faces.erase/faces"; a list counts its length), and the number of
// distinct objects per action ("image.purge/objects").
func auditSums(t *testing.T, data string) (counts map[string]int, sums map[string]float64) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	es, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	counts, sums = map[string]int{}, map[string]float64{}
	objects := map[string]bool{}
	for _, e := range es {
		counts[e.Action]++
		if !objects[e.Action+" "+e.Object] {
			objects[e.Action+" "+e.Object] = true
			sums[e.Action+"/objects"]++
		}
		var d map[string]any
		if json.Unmarshal(e.Detail, &d) == nil {
			for k, v := range d {
				switch x := v.(type) {
				case float64:
					sums[e.Action+"/"+k] += x
				case []any:
					sums[e.Action+"/"+k] += float64(len(x))
				}
			}
		}
	}
	return counts, sums
}

// copyData copies a data directory that no process has open.
func copyData(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if de.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if !de.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// crashIngest: eight kills of ingests of the same source, each when the
// store holds a random number of images plus a random delay of up to three
// images' worth of the uninterrupted run's work (so in detection,
// embedding or a commit), each round then run to its end. A round is one
// data directory: when its ingest ends before the next kill, it is
// checked and a fresh round starts, until eight kills have landed (at most
// four rounds). The same as uninterrupted means, for every round: the
// same images, each with the same faces and the same template bytes
// (decrypted); and in the audit log, the same entries but the ingest runs'
// own (source.ingest*: one per run, killed or not), whose counts of images
// and faces added never exceed the uninterrupted run's.
func crashIngest(t *testing.T, rng *rand.Rand, ref, photos string, refWork time.Duration) []trial {
	t.Helper()
	total, _ := storeCounts(t, ref)
	perImage := refWork / time.Duration(max(1, total))
	var kills []trial
	for round := 1; len(kills) < 8 && round <= 4; round++ {
		kills = append(kills, crashIngestRound(t, rng, ref, photos, round, 8-len(kills), perImage)...)
	}
	return kills
}

// crashIngestRound is one round of crashIngest: up to n kills in a fresh
// data directory, then the ingest run to its end and checked.
func crashIngestRound(t *testing.T, rng *rand.Rand, ref, photos string, round, n int, perImage time.Duration) []trial {
	t.Helper()
	total, _ := storeCounts(t, ref)
	data := t.TempDir()
	id := addSource(t, data, photos)
	args := []string{"ingest", "--quiet", "--batch", "4", fmt.Sprint(id)}
	var kills []trial
	for i := range n {
		left := total - imagesIn(t, data)
		at := imagesIn(t, data) + 1 + rng.Int64N(max(1, left/int64(n-i+1)))
		extra := time.Duration(rng.Int64N(int64(max(time.Millisecond, 3*perImage))))
		cmd := gabaritCmd(data, 1, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := waitChan(cmd)
		ended := false
		for imagesIn(t, data) < at && !ended {
			select {
			case <-done:
				ended = true
			case <-time.After(20 * time.Millisecond):
			}
		}
		if ended || !killIn(t, cmd, done, extra) {
			t.Logf("ingest round %d trial %d: the ingest ended before the kill", round, i+1)
			break
		}
		stored, _ := storeCounts(t, data)
		kills = append(kills, trial{"ingest", fmt.Sprintf("%d of %d images stored", stored, total)})
		what := fmt.Sprintf("ingest round %d kill %d", round, i+1)
		t.Logf("%s: at ≥%d images + %s: %d images stored", what, at, extra.Round(time.Millisecond), stored)
		checkAfterKill(t, data, what)
	}
	runToEnd(t, data, args...)

	want, got := templatesByImage(t, ref), templatesByImage(t, data)
	if len(got) != len(want) {
		t.Errorf("ingest round %d: %d images with faces after the kills, %d uninterrupted", round, len(got), len(want))
	}
	for sha, w := range want {
		g := got[sha]
		if len(g) != len(w) {
			t.Errorf("ingest round %d: image %x: %d faces, uninterrupted %d", round, sha[:4], len(g), len(w))
			continue
		}
		for i := range w {
			if !bytes.Equal(g[i], w[i]) {
				t.Errorf("ingest round %d: image %x face %d: template bytes differ", round, sha[:4], i)
			}
		}
	}
	wi, wf := storeCounts(t, ref)
	gi, gf := storeCounts(t, data)
	if gi != wi || gf != wf {
		t.Errorf("ingest round %d: %d images, %d faces after the kills; uninterrupted %d, %d", round, gi, gf, wi, wf)
	}
	checkAfterKill(t, data, fmt.Sprintf("ingest round %d, resumed", round))
	wc, ws := auditSums(t, ref)
	gc, gs := auditSums(t, data)
	for a, n := range wc {
		if !strings.HasPrefix(a, "source.ingest") && gc[a] != n {
			t.Errorf("ingest round %d: %d %s audit entries, uninterrupted %d", round, gc[a], a, n)
		}
	}
	if gc["source.ingest"] < 1 || gs["source.ingest/images"] > ws["source.ingest/images"] || gs["source.ingest/faces"] > ws["source.ingest/faces"] {
		t.Errorf("ingest round %d: audited runs %d adding %v images, %v faces; uninterrupted %v, %v", round, gc["source.ingest"],
			gs["source.ingest/images"], gs["source.ingest/faces"], ws["source.ingest/images"], ws["source.ingest/faces"])
	}
	return kills
}

// crashPurge: six copies of the ingested reference purged as if the
// retention period had passed (purge --now), each killed at a random
// moment of its work, then purged again to the end. The same as
// uninterrupted means: nothing stored, and one image.purge audit entry
// per image (each image purged exactly once, its entry in the same
// transaction as its deletion) whose face counts add up to the faces the
// store held.
func crashPurge(t *testing.T, rng *rand.Rand, ref string) []trial {
	t.Helper()
	now := time.Now().Add(31 * 24 * time.Hour).Format(time.RFC3339)
	args := []string{"purge", "--json", "--now", now}
	wantImages, wantFaces := storeCounts(t, ref)
	refRun := runToEnd(t, copyData(t, ref), args...)
	t.Logf("uninterrupted purge: %s of work: %s", refRun.work.Round(time.Millisecond), strings.TrimSpace(refRun.stdout))
	var kills []trial
	for i := 0; len(kills) < 6 && i < 12; i++ {
		data := copyData(t, ref)
		if !killAfter(t, rng, data, lockHeld(data), refRun.work, args...) {
			t.Logf("purge trial %d: the purge ended before the kill", i+1)
			continue
		}
		n, _ := storeCounts(t, data)
		kills = append(kills, trial{"purge", fmt.Sprintf("%d of %d images purged", wantImages-n, wantImages)})
		t.Logf("purge kill %d: %d of %d images purged", len(kills), wantImages-n, wantImages)
		checkAfterKill(t, data, fmt.Sprintf("purge kill %d", len(kills)))
		runToEnd(t, data, args...)
		if n := checkAfterKill(t, data, fmt.Sprintf("purge kill %d, purged again", len(kills))); n != 0 {
			t.Errorf("purge kill %d: %d faces left after the purge", len(kills), n)
		}
		gi, gf := storeCounts(t, data)
		c, s := auditSums(t, data)
		if gi != 0 || gf != 0 || c["image.purge"] != int(wantImages) || s["image.purge/objects"] != float64(wantImages) ||
			s["image.purge/faces"] != float64(wantFaces) {
			t.Errorf("purge kill %d: %d images and %d faces left, %d image.purge entries for %v images and %v faces; want 0, 0, %d, %d, %d",
				len(kills), gi, gf, c["image.purge"], s["image.purge/objects"], s["image.purge/faces"], wantImages, wantImages, wantFaces)
		}
	}
	return kills
}

// crashErasure: a reviewed, identity-checked erasure request, processed
// on six copies and killed at a random moment of `rights process` (half
// from when it holds the lock, half from when it acts on the set), then
// processed again with the same command (on a request the killed run had
// completed, that run says so and removes the selfies' templates). The
// same as uninterrupted means: the same faces left in the store (so the
// same erased set), the request completed, no selfie template left in the
// vault, the same audit entries (each state change and the sealed record
// once), but for faces.erase, whose face and image counts add up to the
// uninterrupted run's (a resumed run records a second entry, erasing what
// its killed run had not).
func crashErasure(t *testing.T, rng *rand.Rand, ref, selfie string) []trial {
	t.Helper()
	base := copyData(t, ref)
	if _, stderr, err := cli(t, base, "user", "add", "--roles", "admin,dpo", actor()); err != nil {
		t.Fatalf("user add: %v\n%s", err, stderr)
	}
	out, stderr, err := cli(t, base, "rights", "request", "--kind", "erasure", "--selfie", selfie, "--contact", "person@example.org", "--json")
	if err != nil {
		t.Fatalf("rights request: %v\n%s", err, stderr)
	}
	var r app.RequestView
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprint(r.ID)
	if _, stderr, err := cli(t, base, "rights", "candidates", req); err != nil {
		t.Fatalf("rights candidates: %v\n%s", err, stderr)
	}
	out, stderr, err = cli(t, base, "rights", "review", "--json", req)
	if err != nil {
		t.Fatalf("rights review: %v\n%s", err, stderr)
	}
	var rv app.ReviewView
	if err := json.Unmarshal([]byte(out), &rv); err != nil || rv.Selected == 0 {
		t.Fatalf("rights review: %q, %v (no face selected)", out, err)
	}
	if _, stderr, err := cli(t, base, "rights", "identity", "--method", "in-person", req); err != nil {
		t.Fatalf("rights identity: %v\n%s", err, stderr)
	}
	args := []string{"rights", "process", "--confirm", fmt.Sprint(rv.Selected), req}

	want := copyData(t, base)
	refRun := runToEnd(t, want, args...)
	t.Logf("uninterrupted erasure of %d faces: %s of work (models loaded): %s", rv.Selected, refRun.work.Round(time.Millisecond), strings.TrimSpace(refRun.stdout))
	// The act itself is short: half the kills come in it.
	actRef := copyData(t, base)
	refAct := runUntil(t, actRef, acting(t, actRef, r.ID), args...)
	t.Logf("of which acting on the reviewed set and after: %s", refAct.work.Round(time.Millisecond))
	wantFaces := faceIDs(t, want)
	wc, ws := auditSums(t, want)
	if ws["faces.erase/faces"] != float64(rv.Selected) {
		t.Fatalf("uninterrupted erasure erased %v faces, %d selected", ws["faces.erase/faces"], rv.Selected)
	}

	var kills []trial
	for i := 0; len(kills) < 6 && i < 12; i++ {
		data := copyData(t, base)
		ready, window := lockHeld(data), refRun.work
		if i%2 == 1 {
			ready, window = acting(t, data, r.ID), refAct.work
		}
		if !killAfter(t, rng, data, ready, window, args...) {
			t.Logf("erasure trial %d: the process ended before the kill", i+1)
			continue
		}
		state := requestState(t, data, r.ID)
		_, s := auditSums(t, data)
		landed := fmt.Sprintf("request %s, %v faces erased", state, s["faces.erase/faces"])
		kills = append(kills, trial{"erasure", landed})
		t.Logf("erasure kill %d: %s", len(kills), landed)
		what := fmt.Sprintf("erasure kill %d", len(kills))
		checkAfterKill(t, data, what)
		// Run again even when completed: that run says so and removes
		// the selfies' templates a run killed right after closing left.
		runToEnd(t, data, args...)
		checkAfterKill(t, data, what+", processed again")
		if st := requestState(t, data, r.ID); st != dsr.Completed {
			t.Errorf("%s: request %s after processing again", what, st)
		}
		if n := selfiesKept(t, data, r.ID); n != 0 {
			t.Errorf("%s: %d selfie templates of the completed request kept in the vault", what, n)
		}
		if got := faceIDs(t, data); !slices.Equal(got, wantFaces) {
			t.Errorf("%s: %d faces left, uninterrupted %d (or other ones)", what, len(got), len(wantFaces))
		}
		c, gs := auditSums(t, data)
		if gs["faces.erase/faces"] != ws["faces.erase/faces"] || gs["faces.erase/images"] != ws["faces.erase/images"] {
			t.Errorf("%s: faces.erase entries add up to %v faces and %v images; uninterrupted %v, %v",
				what, gs["faces.erase/faces"], gs["faces.erase/images"], ws["faces.erase/faces"], ws["faces.erase/images"])
		}
		for a, n := range wc {
			if a != "faces.erase" && c[a] != n {
				t.Errorf("%s: %d %s audit entries, uninterrupted %d", what, c[a], a, n)
			}
		}
	}
	return kills
}

// faceCrop writes the largest face of the photos in dir, with a margin,
// as a JPEG: a selfie with one face.
func faceCrop(t *testing.T, dir, dst string) string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, append([]string{"faces", "--json"}, files...)...)
	if err != nil {
		t.Fatal(err)
	}
	var src string
	var best faceJSON
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var f fileJSON
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("faces: %q: %v", l, err)
		}
		for _, x := range f.Faces {
			if x.Box[2]*x.Box[3] > best.Box[2]*best.Box[3] {
				src, best = f.File, x
			}
		}
	}
	if src == "" {
		t.Fatalf("no face in %s", dir)
	}
	dec, err := imageproc.DecodeFile(src, imageproc.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := dec.Img
	b := best.Box
	x0, y0 := max(0, int(b[0]-b[2]/2)), max(0, int(b[1]-b[3]/2))
	w, h := min(m.W-x0, int(b[2]*2)), min(m.H-y0, int(b[3]*2))
	jb, err := encodeJPEG(imageproc.Crop(m, x0, y0, w, h))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, jb, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// requestState is the state of rights request id in data.
func requestState(t *testing.T, data string, id int64) dsr.State {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.RightsRequest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

// selfiesKept counts the selfie templates of request id in data's vault.
func selfiesKept(t *testing.T, data string, id int64) int {
	t.Helper()
	ctx := context.Background()
	dd, err := app.OpenData(ctx, config.Config{DataDir: data, Index: app.IndexHNSW}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	v, err := dd.Vault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := v.Templates(ctx, id, vault.Selfie)
	if err != nil {
		t.Fatal(err)
	}
	return len(ts)
}

// faceIDs lists the face ids stored in data, in order.
func faceIDs(t *testing.T, data string) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM faces ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// crashServe: four copies of the reference with a second source
// declared, each served by `gabarit serve` under load (two clients
// searching without pause, and an ingest job of the second source started
// through the API), killed at a random moment of the job. Then the
// second source is ingested to the end from the command line. The same as
// uninterrupted means: the second source's images, faces and template
// bytes are those of an uninterrupted ingest of it, and every search the
// server answered is in the audit log (recorded before it was answered).
func crashServe(t *testing.T, rng *rand.Rand, ref, photos2, probePath string) []trial {
	t.Helper()
	ctx := context.Background()
	base := copyData(t, ref)
	src2 := addSource(t, base, photos2)
	if _, stderr, err := cli(t, base, "user", "add", "--roles", "admin,operator,investigator", actor()); err != nil {
		t.Fatalf("user add: %v\n%s", err, stderr)
	}
	token, hash, err := passwd.NewToken("gbt_")
	if err != nil {
		t.Fatal(err)
	}
	// Through OpenData, as gabarit writes: the token's audit entry moves
	// the witness.
	dd, err := app.OpenData(ctx, config.Config{DataDir: base, Index: app.IndexHNSW}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dd.DB.CreateAPIToken(ctx, actor(), "crash trials", hash, time.Time{}, actor()); err != nil {
		t.Fatal(err)
	}
	dd.Close()
	probe, err := os.ReadFile(probePath)
	if err != nil {
		t.Fatal(err)
	}
	want := copyData(t, base)
	work := runToEnd(t, want, "ingest", "--quiet", fmt.Sprint(src2)).work
	wantT := templatesByImage(t, want)
	t.Logf("uninterrupted ingest of the second source: %s of work", work.Round(time.Millisecond))

	var kills []trial
	for i := 0; len(kills) < 4 && i < 8; i++ {
		data := copyData(t, base)
		cmd := gabaritCmd(data, 1, "serve", "--addr", "127.0.0.1:0", "--purge-every", "0")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		go io.Copy(io.Discard, stdout) //nolint:errcheck // drained until the process dies
		done := waitChan(cmd)
		var addr string
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "http://") {
				addr = strings.TrimSuffix(f, "/")
			}
		}
		if err != nil || addr == "" {
			cmd.Process.Kill()
			<-done
			t.Fatalf("serve printed %q (%v)\n%s", line, err, stderr.String())
		}
		call := func(method, path, ctype string, body io.Reader) (int, []byte) {
			req, err := http.NewRequest(method, addr+path, body)
			if err != nil {
				t.Error(err)
				return 0, nil
			}
			req.Header.Set("Authorization", "Bearer "+token)
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, nil // the server was killed
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body) // a body cut by the kill is as good as none
			return resp.StatusCode, b
		}
		// Load: two clients search without pause.
		var answered atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var body bytes.Buffer
					mw := multipart.NewWriter(&body)
					fw, _ := mw.CreateFormFile("photo", "probe.jpg")
					fw.Write(probe) //nolint:errcheck // a bytes.Buffer does not fail
					mw.WriteField("purpose", "crash trial")
					mw.WriteField("face", "0")
					mw.Close()
					code, b := call("POST", "/api/v1/searches", mw.FormDataContentType(), &body)
					switch {
					case code == http.StatusOK:
						answered.Add(1)
					case code == 0:
						return
					case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
						time.Sleep(50 * time.Millisecond) // busy: try again
					default:
						t.Errorf("search answered %d: %s", code, b)
						return
					}
				}
			}()
		}
		code, b := call("POST", fmt.Sprintf("/api/v1/sources/%d/ingest", src2), "", nil)
		if code != http.StatusAccepted {
			close(stop)
			cmd.Process.Kill()
			<-done
			wg.Wait()
			t.Fatalf("start the ingest job: %d %s\n%s", code, b, stderr.String())
		}
		// Over the job's length and a little after: some kills come
		// when only searches run.
		delay := time.Duration(rng.Int64N(int64(max(work*5/4, time.Second))))
		killed := killIn(t, cmd, done, delay)
		close(stop)
		wg.Wait()
		if !killed {
			t.Logf("serve trial %d: the server ended before the kill: %s", i+1, stderr.String())
			continue
		}
		n2 := imagesOf(t, data, src2)
		landed := fmt.Sprintf("%d searches answered, %d images of the job stored", answered.Load(), n2)
		kills = append(kills, trial{"serve", landed})
		what := fmt.Sprintf("serve kill %d", len(kills))
		t.Logf("%s after %s: %s", what, delay.Round(time.Millisecond), landed)
		checkAfterKill(t, data, what)
		c, _ := auditSums(t, data)
		if int64(c["search"]) < answered.Load() {
			t.Errorf("%s: %d searches answered, %d in the audit log", what, answered.Load(), c["search"])
		}
		runToEnd(t, data, "ingest", "--quiet", fmt.Sprint(src2))
		checkAfterKill(t, data, what+", ingested again")
		got := templatesByImage(t, data)
		if len(got) != len(wantT) {
			t.Errorf("%s: %d images with faces, uninterrupted %d", what, len(got), len(wantT))
		}
		for sha, w := range wantT {
			if g := got[sha]; len(g) != len(w) || !slices.EqualFunc(g, w, bytes.Equal) {
				t.Errorf("%s: image %x: %d faces or their templates differ from the uninterrupted ingest's %d", what, sha[:4], len(g), len(w))
			}
		}
	}
	return kills
}

// imagesOf counts the images of source id stored in data.
func imagesOf(t *testing.T, data string, id int64) int64 {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.SourceCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c[id][0]
}
