//go:build cgo && onnx

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/modeltest"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vindex/weaviate"
)

// TestWeaviateFault runs gabarit serve over PostgreSQL and a private 3-node
// Weaviate cluster (replication factor 2) holding a few hundred faces, with
// a search load through the API from several clients for the whole test.
// One node is killed with SIGKILL and kept down while a source is retired
// (its faces erased) and another one ingested through the API, then started
// again. Then: searches kept answering during the outage (the share that
// failed is below half) and all answer after it; no search, before or
// after the restart, returned an erased face; every face stored during the
// outage is found by a search of its photo and held by every replica, none
// of the erased ones is; the collection holds exactly the stored faces;
// no pending delete is left.
func TestWeaviateFault(t *testing.T) {
	start := time.Now()
	modeltest.Installed(t)
	root := modeltest.SharedData(t, "celeba-dev")
	dsn := storetest.Postgres(t)
	raw := rawDB(t, dsn)
	raw.SetMaxOpenConns(2)
	c := privateCluster(t)
	wvURL := c.url + "&replicas=2"
	addr := c.rest[0]
	model, _ := realModel(t)
	class := weaviate.ClassName(model)

	dir := t.TempDir()
	key := filepath.Join(dir, "shared.key")
	env := []string{"GABARIT_STORE=" + dsn, "GABARIT_MASTER_KEY_FILE=" + key, "GABARIT_INDEX=" + wvURL}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}

	// The gallery: ten people, all but each one's first photo; the source
	// to erase: an eleventh person; the source ingested during the
	// outage: a twelfth. The probes of the load: the first photos of the
	// first and the eleventh person.
	names, files, err := identityFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	folder := func(name string, people []int, first, most int) string {
		d := filepath.Join(dir, name)
		for _, i := range people {
			for _, p := range files[i][first:min(len(files[i]), first+most)] {
				if err := copyFile(p, filepath.Join(d, names[i], filepath.Base(p))); err != nil {
					t.Fatal(err)
				}
			}
		}
		return d
	}
	admin := filepath.Join(dir, "admin")
	gallery := addSource(t, admin, folder("gallery", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 30))
	toErase := addSource(t, admin, folder("erase", []int{10}, 1, 30))
	fresh := addSource(t, admin, folder("fresh", []int{11}, 0, 8))
	for _, src := range []int64{gallery, toErase} {
		if _, stderr, err := cli(t, admin, "ingest", fmt.Sprint(src)); err != nil {
			t.Fatalf("ingest source %d: %v\n%s", src, err, stderr)
		}
	}
	var erased []int64
	for _, ids := range faceIDsOf(t, raw, toErase) {
		erased = append(erased, ids...)
	}
	stored := storeCount(t, raw, `SELECT count(*) FROM faces`)
	if stored < 150 || len(erased) < 5 {
		t.Fatalf("%d faces stored, %d in the source to erase; want a few hundred, and some", stored, len(erased))
	}
	t.Logf("%d faces ingested in %v", stored, time.Since(start).Round(time.Second))
	token := apiToken(t, filepath.Join(dir, "token"), dsn, key, "olga",
		store.RoleOperator, store.RoleInvestigator, store.RoleExaminer)
	srv := startServe(t, filepath.Join(dir, "serve"), env, "--purge-every", "0")

	var probes [][]byte
	for _, i := range []int{0, 10} {
		b, err := os.ReadFile(files[i][0])
		if err != nil {
			t.Fatal(err)
		}
		probes = append(probes, b)
	}
	isErased := map[int64]bool{}
	for _, id := range erased {
		isErased[id] = true
	}

	// The load: each client searches the probes in turn, at threshold 0,
	// until stopped; every answer is checked for erased faces.
	const (
		before = iota
		outage
		restart
		after
		phases
	)
	phaseNames := [phases]string{"before", "outage", "restart", "after"}
	var phase atomic.Int32
	var erasedAt atomic.Int64 // when the retirement was acknowledged (UnixNano); 0 before
	type sample struct {
		phase   int32
		latency time.Duration
		err     string
	}
	var (
		mu       sync.Mutex
		samples  []sample
		returned []string // erased faces returned
		hits     int      // results seen, over all searches
	)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	const clients = 3
	for cl := range clients {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second}
			for n := cl; loadCtx.Err() == nil; n++ {
				p := phase.Load()
				t0 := time.Now()
				after := erasedAt.Load() != 0 && t0.UnixNano() > erasedAt.Load()
				v, err := apiSearch(loadCtx, client, srv.addr, token, probes[n%len(probes)], "0", 50)
				lat := time.Since(t0)
				if loadCtx.Err() != nil {
					return
				}
				s := sample{phase: max(p, phase.Load()), latency: lat}
				if err != nil {
					s.err = err.Error()
				}
				mu.Lock()
				samples = append(samples, s)
				for _, h := range v.Results {
					hits++
					if after && isErased[h.FaceID] {
						returned = append(returned, fmt.Sprintf("face %d (%s, %s)", h.FaceID, h.Locator, phaseNames[s.phase]))
					}
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(6 * time.Second)

	// The outage.
	phase.Store(outage)
	c.run(t, "kill", "1")
	killed := time.Now()
	time.Sleep(3 * time.Second) // searches meet the dead node first
	code, body := apiCall(srv.addr, token, "POST", fmt.Sprintf("/api/v1/sources/%d/retire", toErase),
		map[string]any{"confirm": true, "reason": "fault test"})
	if code == http.StatusOK {
		erasedAt.Store(time.Now().UnixNano())
	} else {
		t.Errorf("retire source %d during the outage: %d %s\nserver errors:\n%s", toErase, code, body, serverErrors(srv))
	}
	if n := storeCount(t, raw, `SELECT count(*) FROM faces f JOIN images i ON i.id = f.image_id WHERE i.source_id = $1`, toErase); n != 0 {
		t.Errorf("after the retirement the store holds %d faces of the source", n)
	}
	pendingDuring := storeCount(t, raw, `SELECT count(*) FROM index_pending_deletes`)
	code, body = apiCall(srv.addr, token, "POST", fmt.Sprintf("/api/v1/sources/%d/ingest", fresh), nil)
	if code != http.StatusAccepted {
		t.Fatalf("ingest source %d during the outage: %d %s", fresh, code, body)
	}
	var job serveJob
	if err := json.Unmarshal(body, &job); err != nil {
		t.Fatal(err)
	}
	job = srv.waitJob(t, token, job.ID, 3*time.Minute)
	if job.State != "done" || job.Faces == 0 {
		t.Errorf("the ingest during the outage: %+v; want done, with faces\nserver errors:\n%s", job, serverErrors(srv))
	}
	pendingDuring = max(pendingDuring, storeCount(t, raw, `SELECT count(*) FROM index_pending_deletes`))
	if d := 15*time.Second - time.Since(killed); d > 0 {
		time.Sleep(d)
	}
	down := time.Since(killed)

	// The restart: wait until the pending deletes are gone and the
	// collection holds the stored faces.
	phase.Store(restart)
	c.run(t, "start-node", "1")
	restarted := time.Now()
	stored = storeCount(t, raw, `SELECT count(*) FROM faces`)
	var objects, pending int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		pending = storeCount(t, raw, `SELECT count(*) FROM index_pending_deletes`)
		objects, err = wvCount(t, addr, class)
		if pending == 0 && err == nil && objects == stored {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("a minute after the restart: %d pending deletes, %d objects (%v) for %d stored faces", pending, objects, err, stored)
			break
		}
	}
	converged := time.Since(restarted)
	phase.Store(after)
	time.Sleep(6 * time.Second)
	stopLoad()
	wg.Wait()

	// What the load saw.
	var failed [phases]int
	var lat [phases][]time.Duration
	var firstErr [phases]string
	for _, s := range samples {
		if s.err != "" {
			failed[s.phase]++
			if firstErr[s.phase] == "" {
				firstErr[s.phase] = s.err
			}
			continue
		}
		lat[s.phase] = append(lat[s.phase], s.latency)
	}
	for p := range phases {
		n := failed[p] + len(lat[p])
		slices.Sort(lat[p])
		t.Logf("%-7s %4d searches, %3d failed, p50 %v, p99 %v%s", phaseNames[p], n, failed[p],
			pct(lat[p], 50), pct(lat[p], 99), map[bool]string{true: " (first error: " + firstErr[p] + ")", false: ""}[failed[p] > 0])
	}
	t.Logf("node 1 down %v; %d pending deletes during the outage; converged %v after the restart", down.Round(100*time.Millisecond),
		pendingDuring, converged.Round(100*time.Millisecond))
	if n := failed[outage] + len(lat[outage]); n == 0 || failed[outage]*2 >= n {
		t.Errorf("during the outage %d of %d searches failed; want fewer than half", failed[outage], n)
	}
	if failed[after] > 0 || len(lat[after]) == 0 {
		t.Errorf("after the recovery %d of %d searches failed; want none (first error: %s)", failed[after], failed[after]+len(lat[after]), firstErr[after])
	}
	if len(returned) > 0 {
		t.Errorf("searches returned erased faces: %s", strings.Join(returned, "; "))
	}
	if hits == 0 {
		t.Error("the searches returned nothing at all: the check of erased faces proves nothing")
	}
	if pendingDuring == 0 {
		t.Error("no pending delete was recorded while node 1 was down: the retirement's deletes reached every replica?")
	}

	// After the restart: every replica holds every face stored during the
	// outage and none of the erased; each new photo finds its own face.
	if pending != 0 || objects != stored {
		t.Errorf("at the end: %d pending deletes, %d objects for %d stored faces", pending, objects, stored)
	}
	for _, id := range erased {
		if wvHolds(t, addr, model, id) {
			t.Errorf("erased face %d is still in the collection after the restart", id)
		}
	}
	added := faceIDsOf(t, raw, fresh)
	if len(added) == 0 {
		t.Fatal("no face of the source ingested during the outage was stored")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	for loc, ids := range added {
		for _, id := range ids {
			if !wvHolds(t, addr, model, id) {
				t.Errorf("face %d (%s), stored during the outage, is not on every replica", id, loc)
			}
		}
		photo, err := os.ReadFile(filepath.Join(dir, "fresh", filepath.FromSlash(loc)))
		if err != nil {
			t.Fatal(err)
		}
		v, err := apiSearch(context.Background(), client, srv.addr, token, photo, "0.5", 10)
		if err != nil {
			t.Fatalf("search %s: %v", loc, err)
		}
		if !slices.ContainsFunc(v.Results, func(h app.HitView) bool { return slices.Contains(ids, h.FaceID) }) {
			t.Errorf("a search of %s, stored during the outage, does not return its faces %v: %+v", loc, ids, v.Results)
		}
	}
	srv.stop(t)
	deferred := strings.Count(srv.stderr.String(), "the vector index has not taken every face yet")
	t.Logf("%d faces at the end, %d erased, %d added during the outage (%d of the job's %d parts left them to the catch-up: "+
		"the cluster refused their writes); the test took %v", stored, len(erased), job.Faces, deferred, len(job.Parts),
		time.Since(start).Round(time.Second))
}

// serverErrors returns the distinct errors in the server's log other than
// the searches' (the load's failures are counted apart), the first 10.
func serverErrors(p *serveProc) string {
	var out []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if !strings.Contains(l, "level=ERROR") || strings.Contains(l, `route="POST /api/v1/searches"`) {
			continue
		}
		if _, msg, ok := strings.Cut(l, "msg="); ok && !slices.Contains(out, msg) && len(out) < 10 {
			out = append(out, msg)
		}
	}
	return strings.Join(out, "\n")
}

// pct is the p-th percentile (nearest rank) of sorted, 0 when empty.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))].Round(time.Millisecond)
}

// apiSearch searches photo through the API of the server at base, at
// threshold (an examiner's exploratory search below the operating point),
// and returns its answer.
func apiSearch(ctx context.Context, client *http.Client, base, token string, photo []byte, threshold string, k int) (app.SearchView, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range [][2]string{{"purpose", "fault test"}, {"k", fmt.Sprint(k)}, {"threshold", threshold}, {"reason", "fault test: every face"}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return app.SearchView{}, err
		}
	}
	fw, err := mw.CreateFormFile("photo", "probe.jpg")
	if err != nil {
		return app.SearchView{}, err
	}
	if _, err := fw.Write(photo); err != nil {
		return app.SearchView{}, err
	}
	if err := mw.Close(); err != nil {
		return app.SearchView{}, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/searches", &buf)
	if err != nil {
		return app.SearchView{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return app.SearchView{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return app.SearchView{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return app.SearchView{}, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	var v app.SearchView
	if err := json.Unmarshal(b, &v); err != nil {
		return app.SearchView{}, fmt.Errorf("%v: %.200s", err, b)
	}
	return v, nil
}

// apiCall sends a request with a JSON body (none when nil) and token.
func apiCall(base, token, method, path string, body any) (int, []byte) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, []byte(err.Error())
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
