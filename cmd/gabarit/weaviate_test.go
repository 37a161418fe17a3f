//go:build cgo && onnx

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/modeltest"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vindex/weaviate"
)

// TestWeaviateEndToEnd runs gabarit as two instances (two data directories,
// one master key file) over one PostgreSQL store and the shared Weaviate
// cluster: instance A ingests a gallery of celeba-dev people, instance B
// finds one of them; the person's faces are erased by a rights request on
// the command line; then a search at threshold 0 returns none of them, on
// both instances, the collection no longer holds them (read on every
// replica), the audit log verifies, and gabarit reindex on B empties the
// collection (a stray object goes) and fills it again with exactly the
// stored faces.
func TestWeaviateEndToEnd(t *testing.T) {
	start := time.Now()
	modeltest.Installed(t)
	root := modeltest.SharedData(t, "celeba-dev")
	wvURL := sharedWeaviate(t)
	dsn := storetest.Postgres(t)
	raw := rawDB(t, dsn)
	raw.SetMaxOpenConns(2)
	addr := restAddr(t, wvURL)
	model, dim, class := freshRealCollection(t, addr)
	ctx := context.Background()

	dir := t.TempDir()
	t.Setenv("GABARIT_STORE", dsn)
	t.Setenv("GABARIT_MASTER_KEY_FILE", filepath.Join(dir, "shared.key"))
	t.Setenv("GABARIT_INDEX", wvURL)
	dataA, dataB := filepath.Join(dir, "a"), filepath.Join(dir, "b")

	// Four people, eight photos each; the person's first photo is the
	// selfie, kept out of the gallery.
	names, files, err := identityFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	person := names[0]
	own := func(locator string) bool { return strings.HasPrefix(locator, person+"/") }
	gallery := filepath.Join(dir, "gallery")
	for i := range 4 {
		first := 0
		if i == 0 {
			first = 1
		}
		for _, p := range files[i][first:min(len(files[i]), first+8)] {
			if err := copyFile(p, filepath.Join(gallery, names[i], filepath.Base(p))); err != nil {
				t.Fatal(err)
			}
		}
	}
	selfie := filepath.Join(dir, "selfie.jpg")
	if err := copyFile(files[0][0], selfie); err != nil {
		t.Fatal(err)
	}
	selfie2 := cropJPEG(t, selfie, filepath.Join(dir, "selfie2.jpg"))

	src := addSource(t, dataA, gallery)
	if _, stderr, err := cli(t, dataA, "ingest", "--json", fmt.Sprint(src)); err != nil {
		t.Fatalf("ingest on A: %v\n%s", err, stderr)
	}
	if _, stderr, err := cli(t, dataA, "user", "add", "--roles", "admin,examiner", actor()); err != nil {
		t.Fatalf("user add: %v\n%s", err, stderr)
	}
	stored := storeCount(t, raw, `SELECT count(*) FROM faces`)
	if n, err := wvCount(t, addr, class); err != nil || n != stored || stored < 25 {
		t.Fatalf("after the ingest on A: the collection holds %d objects (%v), the store %d faces (want about 31)", n, err, stored)
	}

	// B finds the person A ingested.
	found := searchCLI(t, dataB, selfie)
	if len(found.Results) == 0 || !own(found.Results[0].Locator) {
		t.Fatalf("search on B: %+v; want the person's photos first", found.Results)
	}

	// The person asks for erasure; the DPO reviews on A.
	out, stderr, err := cli(t, dataA, "rights", "request", "--kind", "erasure", "--selfie", selfie, "--selfie", selfie2,
		"--contact", "person@example.org", "--json")
	if err != nil {
		t.Fatalf("rights request: %v\n%s", err, stderr)
	}
	var req app.RequestView
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.ID <= 0 {
		t.Fatalf("rights request printed %q: %v", out, err)
	}
	id := fmt.Sprint(req.ID)
	out, stderr, err = cli(t, dataA, "rights", "candidates", "--json", id)
	if err != nil {
		t.Fatalf("rights candidates: %v\n%s", err, stderr)
	}
	var rv app.ReviewView
	if err := json.Unmarshal([]byte(out), &rv); err != nil || rv.Total == 0 {
		t.Fatalf("rights candidates printed %q: %v", out, err)
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, c := range rv.Candidates {
		ids = append(ids, c.FaceID)
	}
	refs, err := db.FaceRefs(ctx, ids)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	erased := map[int64]bool{}
	for _, c := range rv.Candidates {
		if own(refs[c.FaceID].Locator) {
			mine = append(mine, fmt.Sprint(c.FaceID))
			erased[c.FaceID] = true
		}
	}
	if len(mine) < 5 {
		t.Fatalf("the rights request found %d of the person's 7 faces among %d candidates", len(mine), len(rv.Candidates))
	}
	if _, stderr, err := cli(t, dataA, "rights", "review", "--none", "--select", strings.Join(mine, ","), id); err != nil {
		t.Fatalf("rights review: %v\n%s", err, stderr)
	}
	if _, stderr, err := cli(t, dataA, "rights", "identity", "--method", "in-person", id); err != nil {
		t.Fatalf("rights identity: %v\n%s", err, stderr)
	}
	out, stderr, err = cli(t, dataA, "rights", "process", "--json", "--confirm", fmt.Sprint(len(mine)), id)
	if err != nil {
		t.Fatalf("rights process: %v\n%s", err, stderr)
	}
	var res struct {
		State  string `json:"state"`
		Erased int    `json:"erased"`
		Proof  struct {
			OK bool `json:"ok"`
		} `json:"proof"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.State != "completed" || res.Erased != len(mine) || !res.Proof.OK {
		t.Fatalf("rights process printed %s (%v); want completed, %d faces erased, proof ok", out, err, len(mine))
	}

	// Searches at threshold 0 on both instances: none of the erased faces.
	for _, data := range []string{dataA, dataB} {
		out, stderr, err := cli(t, data, "search", "--purpose", "test", "--all", "--threshold", "0",
			"--reason", "weaviate test: every face at threshold 0", "--json", selfie)
		if err != nil {
			t.Fatalf("search on %s: %v\n%s", filepath.Base(data), err, stderr)
		}
		var v app.SearchView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if len(v.Results) == 0 {
			t.Errorf("search at threshold 0 on %s returned nothing: the check proves nothing", filepath.Base(data))
		}
		for _, h := range v.Results {
			if erased[h.FaceID] {
				t.Errorf("search at threshold 0 on %s returned erased face %d (%s)", filepath.Base(data), h.FaceID, h.Locator)
			}
		}
		t.Logf("search at threshold 0 on %s: %d results, none erased", filepath.Base(data), len(v.Results))
	}
	// The collection no longer holds them, on any replica.
	stored = storeCount(t, raw, `SELECT count(*) FROM faces`)
	if n, err := wvCount(t, addr, class); err != nil || n != stored {
		t.Errorf("after the erasure: the collection holds %d objects (%v), the store %d faces", n, err, stored)
	}
	for fid := range erased {
		if wvHolds(t, addr, model, fid) {
			t.Errorf("erased face %d is still in the collection", fid)
		}
	}
	for _, data := range []string{dataA, dataB} {
		if out, stderr, err := cli(t, data, "audit", "verify"); err != nil || !strings.HasPrefix(out, "audit log intact") {
			t.Errorf("audit verify on %s: %v %q\n%s", filepath.Base(data), err, out, stderr)
		}
	}

	// A stray object (a face the store does not hold), then reindex on B:
	// the collection holds exactly the stored faces again.
	const stray = int64(1) << 40
	vec := make([]float32, dim)
	for i := range vec {
		vec[i] = rand.Float32() - 0.5
	}
	if code, body := wvRequest(addr, "POST", "/v1/objects?consistency_level=ALL", map[string]any{
		"class": class, "id": weaviate.FaceUUID(model, stray), "properties": map[string]any{"face_id": stray}, "vector": vec,
	}); code != http.StatusOK {
		t.Fatalf("add a stray object: %d %s", code, body)
	}
	if n, err := wvCount(t, addr, class); err != nil || n != stored+1 {
		t.Fatalf("with the stray object: %d objects (%v), want %d", n, err, stored+1)
	}
	if out, stderr, err := cli(t, dataB, "reindex"); err != nil || !strings.Contains(out, fmt.Sprintf("indexed %d faces", stored)) {
		t.Fatalf("reindex on B: %v %q\n%s", err, out, stderr)
	}
	if n, err := wvCount(t, addr, class); err != nil || n != stored {
		t.Errorf("after reindex: %d objects (%v), want the %d stored faces", n, err, stored)
	}
	if wvHolds(t, addr, model, stray) {
		t.Error("after reindex the stray object is still in the collection")
	}
	rows, err := raw.Query(`SELECT id FROM faces`)
	if err != nil {
		t.Fatal(err)
	}
	var missing []int64
	for rows.Next() {
		var fid int64
		if err := rows.Scan(&fid); err != nil {
			t.Fatal(err)
		}
		if !wvHolds(t, addr, model, fid) {
			missing = append(missing, fid)
		}
	}
	rows.Close()
	if len(missing) > 0 {
		t.Errorf("after reindex, stored faces %v are not in the collection", missing)
	}
	// Still found through the refilled collection (the same rotation).
	if got := searchCLI(t, dataA, files[1][0]); len(got.Results) == 0 || !strings.HasPrefix(got.Results[0].Locator, names[1]+"/") {
		t.Errorf("search on A after reindex: %+v; want the second person first", got.Results)
	}
	t.Logf("%d faces stored, %d erased; the test took %v", stored+len(erased), len(erased), time.Since(start).Round(time.Second))
}

// TestWeaviateBadInput: gabarit's commands against a Weaviate cluster that
// cannot serve them end with a clear error and keep the store whole:
//
//   - an unreachable cluster (a closed port): ingest fails (exit 1 or 2)
//     naming the address; what it stored is kept, and an ingest with a
//     working URL brings the collection up to every stored face;
//   - a collection made with another rotation (another store), or for
//     another dimension: refused, saying so;
//   - a cluster with a node down at start: refused, naming the node.
func TestWeaviateBadInput(t *testing.T) {
	start := time.Now()
	modeltest.Installed(t)
	d := modeltest.Installed(t)
	wvURL := sharedWeaviate(t)
	dsn := storetest.Postgres(t)
	raw := rawDB(t, dsn)
	raw.SetMaxOpenConns(2)
	addr := restAddr(t, wvURL)
	model, _, class := freshRealCollection(t, addr)
	ctx := context.Background()

	dir := t.TempDir()
	key := filepath.Join(dir, "shared.key")
	t.Setenv("GABARIT_STORE", dsn)
	t.Setenv("GABARIT_MASTER_KEY_FILE", key)
	photos := filepath.Join(dir, "photos")
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("sample%d.jpg", i)
		if err := copyFile(filepath.Join(d.TestPhotos(), name), filepath.Join(photos, name)); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "a")

	// Unreachable: a port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	t.Setenv("GABARIT_INDEX", "weaviate://"+closed)
	src := addSource(t, data, photos)
	_, stderr, err := cli(t, data, "ingest", fmt.Sprint(src))
	if c := exitCode(err); (c != 1 && c != 2) || !strings.Contains(stderr+fmt.Sprint(err), closed) {
		t.Errorf("ingest with an unreachable cluster: exit %d (%v); want 1 or 2 and a message naming %s:\n%s", c, err, closed, stderr)
	}
	t.Logf("unreachable cluster: %v %s", err, strings.TrimSpace(stderr))
	kept := storeCount(t, raw, `SELECT count(*) FROM images`)
	t.Setenv("GABARIT_INDEX", wvURL)
	if _, stderr, err := cli(t, data, "ingest", fmt.Sprint(src)); err != nil {
		t.Fatalf("ingest with the cluster: %v\n%s", err, stderr)
	}
	images, faces := storeCount(t, raw, `SELECT count(*) FROM images`), storeCount(t, raw, `SELECT count(*) FROM faces`)
	if n, err := wvCount(t, addr, class); err != nil || n != faces || faces < 4 || images < kept || images != 4 {
		t.Errorf("after the ingest with the cluster: %d objects (%v), %d faces and %d images stored (%d after the failed one); "+
			"want every face of the 4 photos in the collection", n, err, faces, images, kept)
	}

	// Another store, hence another rotation, on the same collection.
	other := storetest.Postgres(t)
	t.Setenv("GABARIT_STORE", other)
	data2 := filepath.Join(dir, "b")
	src2 := addSource(t, data2, photos)
	_, stderr, err = cli(t, data2, "ingest", fmt.Sprint(src2))
	if c := exitCode(err); c == 0 || !strings.Contains(stderr+fmt.Sprint(err), "created with another vector rotation key") {
		t.Errorf("ingest into a collection of another rotation: exit %d (%v); want an error saying so:\n%s", c, err, stderr)
	}
	t.Logf("another rotation: %v %s", err, strings.TrimSpace(stderr))
	if n, err := wvCount(t, addr, class); err != nil || n != faces {
		t.Errorf("after the refused ingest the collection holds %d objects (%v), want the first store's %d", n, err, faces)
	}
	// The operator's way out: a new rotation drops that collection and
	// fills it again from this store.
	if out, stderr, err := cli(t, data2, "reindex", "--new-rotation"); err != nil {
		t.Errorf("reindex --new-rotation over another store's collection: %v\n%s%s", err, out, stderr)
	}
	if n, err := wvCount(t, addr, class); err != nil || n != storeCount(t, rawDB(t, other), `SELECT count(*) FROM faces`) {
		t.Errorf("after reindex --new-rotation the collection holds %d objects (%v), want the second store's faces", n, err)
	}

	// gabarit index status shows the collection's place in the outbox;
	// index forget drops the collection and forgets the place, audited.
	name := "weaviate/" + class
	out, stderr, err := cli(t, data2, "index", "status", "--json")
	if err != nil {
		t.Fatalf("index status: %v\n%s", err, stderr)
	}
	var status indexStatusJSON
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatalf("index status --json: %v: %s", err, out)
	}
	if len(status.Remote) != 1 || status.Remote[0].Name != name || status.Remote[0].Behind != 0 ||
		status.Remote[0].PendingDeletes != 0 || status.Remote[0].Applied != status.Outbox.Head {
		t.Errorf("index status: %s; want %s caught up with the outbox's head", out, name)
	}
	if out, _, err := cli(t, data2, "index", "status"); err != nil || !strings.Contains(out, name+": model "+model) {
		t.Errorf("index status (text): %v %q", err, out)
	}
	if _, _, err := cli(t, data2, "index", "forget", name); exitCode(err) != 2 {
		t.Errorf("index forget without --confirm: %v, want exit 2", err)
	}
	t.Setenv("GABARIT_INDEX", "")
	if _, stderr, err := cli(t, data2, "index", "forget", "--confirm", name); exitCode(err) != 1 ||
		!strings.Contains(stderr+fmt.Sprint(err), "--collection-gone") {
		t.Errorf("index forget with no cluster to drop it from: %v\n%s; want exit 1 and the way out", err, stderr)
	}
	t.Setenv("GABARIT_INDEX", wvURL)
	if out, stderr, err := cli(t, data2, "index", "forget", "--confirm", name); err != nil || !strings.Contains(out, "collection dropped") {
		t.Errorf("index forget: %v %q\n%s", err, out, stderr)
	}
	if n, err := wvCount(t, addr, class); err == nil {
		t.Errorf("after index forget the collection still holds %d objects", n)
	}
	otherDB := rawDB(t, other)
	if n := storeCount(t, otherDB, `SELECT count(*) FROM index_cursors`); n != 0 {
		t.Errorf("after index forget the store holds %d index cursors", n)
	}
	if n := storeCount(t, otherDB, `SELECT count(*) FROM audit WHERE action = 'index.forget' AND object = $1`, name); n != 1 {
		t.Errorf("%d audit entries index.forget of %s, want 1", n, name)
	}
	if _, stderr, err := cli(t, data2, "index", "forget", "--confirm", name); exitCode(err) != 1 ||
		!strings.Contains(stderr+fmt.Sprint(err), "index status") {
		t.Errorf("index forget of a forgotten index: %v\n%s; want exit 1 pointing at index status", err, stderr)
	}
	if _, stderr, err := cli(t, data2, "audit", "verify"); err != nil {
		t.Errorf("audit verify after index forget: %v\n%s", err, stderr)
	}

	// A collection of the same name made for another dimension.
	wvDrop(t, addr, class)
	cfg, err := weaviate.ParseConfig(wvURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Collection, cfg.Dim, cfg.TransformID = model, 64, "another"
	ix, err := weaviate.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	t.Setenv("GABARIT_STORE", dsn)
	_, stderr, err = cli(t, data, "ingest", fmt.Sprint(src))
	if c := exitCode(err); c == 0 || !strings.Contains(stderr+fmt.Sprint(err), "dimension 64") {
		t.Errorf("ingest into a collection of another dimension: exit %d (%v); want an error saying so:\n%s", c, err, stderr)
	}
	t.Logf("another dimension: %v %s", err, strings.TrimSpace(stderr))

	// A node down at start.
	c := privateCluster(t)
	c.run(t, "kill", "2")
	t.Setenv("GABARIT_INDEX", c.url)
	third := storetest.Postgres(t)
	t.Setenv("GABARIT_STORE", third)
	data3 := filepath.Join(dir, "c")
	src3 := addSource(t, data3, photos)
	_, stderr, err = cli(t, data3, "ingest", fmt.Sprint(src3))
	if code := exitCode(err); code == 0 || !strings.Contains(stderr+fmt.Sprint(err), c.rest[2]) {
		t.Errorf("ingest with node 2 down: exit %d (%v); want an error naming %s:\n%s", code, err, c.rest[2], stderr)
	}
	t.Logf("node down: %v %s", err, strings.TrimSpace(stderr))
	t.Logf("the test took %v", time.Since(start).Round(time.Second))
}
