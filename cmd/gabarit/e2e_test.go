//go:build cgo && onnx

package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/imageproc"
	"gabarit/internal/keyring"
	"gabarit/internal/modeltest"
	"gabarit/internal/setup"
	"gabarit/internal/store"
)

// TestMain lets the tests run the test binary as the gabarit command (to
// kill it with SIGKILL): with GABARIT_TEST_MAIN=1 it is main().
func TestMain(m *testing.M) {
	if os.Getenv("GABARIT_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cli runs the command line in-process with the data directory data.
func cli(t *testing.T, data string, args ...string) (string, string, error) {
	t.Helper()
	if len(args) > 1 && (args[0] == "source" || args[0] == "audit" || args[0] == "export" || args[0] == "rights" || args[0] == "user" || args[0] == "policy" || args[0] == "index") {
		args = append([]string{args[0], args[1], "--data", data}, args[2:]...)
	} else {
		args = append([]string{args[0], "--data", data}, args[1:]...)
	}
	return runCLI(t, args...)
}

// addSource declares a folder source and returns its id.
func addSource(t *testing.T, data, path string, extra ...string) int64 {
	t.Helper()
	args := []string{"source", "add", "--kind", "folder", "--path", path, "--controller", "Example Org",
		"--purpose", "tests", "--legal-basis", "consent", "--art9", "9(2)(a)", "--jurisdiction", "FR",
		"--retention", "30d", "--json"}
	out, stderr, err := cli(t, data, append(args, extra...)...)
	if err != nil {
		t.Fatalf("source add: %v\n%s", err, stderr)
	}
	var v struct{ ID int64 }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID <= 0 {
		t.Fatalf("source add printed %q: %v", out, err)
	}
	return v.ID
}

// ingestedSamples declares a folder source of the first n npm test photos
// (sample1.jpg…) and ingests it, returning the data directory and the
// source's id.
func ingestedSamples(t *testing.T, d setup.Dirs, n int) (data string, id int64) {
	t.Helper()
	data, photos := t.TempDir(), t.TempDir()
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("sample%d.jpg", i)
		if err := copyFile(filepath.Join(d.TestPhotos(), name), filepath.Join(photos, name)); err != nil {
			t.Fatal(err)
		}
	}
	id = addSource(t, data, photos)
	if _, stderr, err := cli(t, data, "ingest", fmt.Sprint(id)); err != nil {
		t.Fatalf("ingest: %v\n%s", err, stderr)
	}
	return data, id
}

// searchCLI runs gabarit search --json of probe on data and reads its answer.
func searchCLI(t *testing.T, data, probe string) app.SearchView {
	t.Helper()
	out, stderr, err := cli(t, data, "search", "--purpose", "test", "--json", probe)
	if err != nil {
		t.Fatalf("search: %v\n%s", err, stderr)
	}
	var v app.SearchView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestSourceAddValidation(t *testing.T) {
	data := t.TempDir()
	photos := t.TempDir()
	good := []string{"source", "add", "--kind", "folder", "--path", photos, "--controller", "C", "--purpose", "P",
		"--legal-basis", "consent", "--art9", "a", "--jurisdiction", "FR", "--retention", "30d"}
	with := func(flag, v string) []string {
		out := slices.Clone(good)
		i := slices.Index(out, flag)
		out[i+1] = v
		return out
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{good[:len(good)-2], "--retention"},
		{with("--controller", " "), "--controller"},
		{with("--legal-basis", "because"), "legal-basis"},
		{with("--art9", "none"), "Art. 9"},
		{with("--jurisdiction", "France"), "jurisdiction"},
		{with("--retention", "0d"), "retention"},
		{with("--retention", "-3d"), "retention"},
		{with("--kind", "crawler"), "--kind"},
		{with("--path", filepath.Join(photos, "missing")), "--path"},
		{with("--kind", "archive"), "--path"},
	} {
		_, stderr, err := cli(t, data, c.args...)
		if exitCode(err) != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want status 2 naming %s", c.args[2:], exitCode(err), stderr, c.want)
		}
	}
	out, _, err := cli(t, data, good...)
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("good source: %q, %v", out, err)
	}
	for _, verb := range []string{"suspend", "resume"} {
		if out, _, err := cli(t, data, "source", verb, "1"); err != nil {
			t.Fatalf("source %s: %q, %v", verb, out, err)
		}
	}
	out, _, err = cli(t, data, "source", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []app.SourceView
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("source list: %q, %v", out, err)
	}
	s := list[0]
	if s.Kind != "folder" || s.Path != photos || s.LegalBasis != "consent" || !strings.HasPrefix(s.Art9, "9(2)(a)") ||
		s.Jurisdiction != "FR" || s.RetentionMS != 30*24*3600*1000 || s.State != "active" || !strings.HasPrefix(s.CreatedBy, "cli:") {
		t.Errorf("listed source = %+v", s)
	}
	// The declaration is audited.
	db, err := store.Open(context.Background(), filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	es, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil || len(es) != 3 || es[0].Action != "source.add" || es[0].Object != "source/1" ||
		es[1].Action != "source.suspend" || es[2].Action != "source.resume" {
		t.Errorf("audit = %+v, %v", es, err)
	}
}

// TestIngestSearchPurge runs the engine end to end with the real models on
// the npm demo photos.
func TestIngestSearchPurge(t *testing.T) {
	d := modeltest.Installed(t)
	data := t.TempDir()
	photos := t.TempDir()
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("sample%d.jpg", i)
		if err := copyFile(filepath.Join(d.TestPhotos(), name), filepath.Join(photos, "group", name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(photos, "broken.jpg"), []byte("\xff\xd8\xff\xe0 not really a jpeg"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := addSource(t, data, photos)

	out, _, err := cli(t, data, "ingest", "--json", fmt.Sprint(id))
	if exitCode(err) != 1 {
		t.Fatalf("ingest with one broken file: %v, want exit status 1", err)
	}
	var sum ingestJSON
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("ingest --json printed %q: %v", out, err)
	}
	if sum.SourceID != id || sum.Images != 5 || sum.Faces < 15 || sum.Skipped != 0 || len(sum.Errors) != 1 ||
		sum.Errors[0].File != "broken.jpg" || sum.Errors[0].Reason == "" {
		t.Fatalf("ingest summary = %+v", sum)
	}
	// Again: nothing new.
	out, _, _ = cli(t, data, "ingest", "--json", fmt.Sprint(id))
	var again ingestJSON
	if err := json.Unmarshal([]byte(out), &again); err != nil || again.Images != 0 || again.Skipped != 5 {
		t.Fatalf("second ingest = %+v, %v", again, err)
	}

	// Search: the same photo finds itself first, at similarity 1.
	probe := filepath.Join(d.TestPhotos(), "sample1.jpg")
	out, _, err = cli(t, data, "search", "--purpose", "test", "--case", "T-1", "--json", probe)
	if err != nil {
		t.Fatal(err)
	}
	var res app.SearchView
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Match || res.AuditID <= 0 || len(res.Results) == 0 || res.Results[0].Locator != "group/sample1.jpg" ||
		res.Results[0].Similarity < 0.99 || res.Results[0].SourceID != id || res.Results[0].LegalBasis != "consent" {
		t.Fatalf("search = %s", out)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	first := raw["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"face_id", "locator", "source_id", "similarity", "box"} {
		if _, ok := first[k]; !ok {
			t.Errorf("result key %q missing: %s", k, out)
		}
	}
	// The photo of a person, re-taken (a crop, scaled): found again, but
	// not at a threshold no re-take reaches: "no match" is an answer.
	crop := cropJPEG(t, probe, filepath.Join(t.TempDir(), "crop.jpg"))
	out, _, err = cli(t, data, "search", "--purpose", "test", "--threshold", "0.9999", crop)
	if err != nil || !strings.Contains(out, "\nno match: ") {
		t.Errorf("search above any re-take's similarity: %q, %v", out, err)
	}
	// No purpose: refused, nothing recorded.
	_, stderr, err := cli(t, data, "search", crop)
	if exitCode(err) != 2 || !strings.Contains(stderr, "purpose") {
		t.Errorf("search without a purpose: %v, %q", err, stderr)
	}
	// A photo without a face.
	blank := filepath.Join(t.TempDir(), "blank.png")
	writePNG(t, blank, image.NewGray(image.Rect(0, 0, 200, 200)))
	if _, _, err := cli(t, data, "search", "--purpose", "test", blank); err == nil || !strings.Contains(err.Error(), "no face") {
		t.Errorf("search with a blank photo: %v", err)
	}

	db, err := store.Open(context.Background(), filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	es, err := db.AuditEntries(context.Background(), 1, 0)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var searches int
	for _, e := range es {
		if e.Action == "search" {
			searches++
			if bytes.Contains(e.Detail, []byte("sample1")) {
				t.Errorf("audit entry names the probe file: %s", e.Detail)
			}
		}
	}
	if searches != 3 {
		t.Errorf("%d searches audited, want 3 (match, no match, no face)", searches)
	}
	var ingests int
	for _, e := range es {
		if e.Action == "source.ingest" && e.Object == fmt.Sprint("source/", id) {
			ingests++
		}
	}
	if ingests != 2 {
		t.Errorf("%d ingest runs audited, want 2", ingests)
	}

	// Purge as if the retention period had passed: everything goes, the
	// index forgets it at once, and ingesting again brings nothing back.
	out, _, err = cli(t, data, "purge", "--json", "--now", time.Now().Add(31*24*time.Hour).Format(time.RFC3339))
	if err != nil || !strings.Contains(out, `"images":5`) {
		t.Fatalf("purge: %q, %v", out, err)
	}
	out, _, err = cli(t, data, "search", "--purpose", "test", "--json", probe)
	if err != nil || !strings.Contains(out, `"results":[]`) {
		t.Errorf("search after purge: %q, %v", out, err)
	}
	out, _, _ = cli(t, data, "ingest", "--json", fmt.Sprint(id))
	if err := json.Unmarshal([]byte(out), &again); err != nil || again.Images != 0 || again.Faces != 0 {
		t.Errorf("ingest after purge brought back %+v, %v", again, err)
	}
	// reindex rebuilds from the (now empty) store.
	out, _, err = cli(t, data, "reindex")
	if err != nil || !strings.HasPrefix(out, "indexed 0 faces") {
		t.Errorf("reindex: %q, %v", out, err)
	}
	// The embedded index follows the outbox from its file: no remote index.
	out, _, err = cli(t, data, "index", "status", "--json")
	var ist indexStatusJSON
	if err != nil || json.Unmarshal([]byte(out), &ist) != nil || ist.Outbox.Head == 0 || ist.Remote == nil || len(ist.Remote) != 0 {
		t.Errorf("index status: %q, %v; want the outbox's head and no remote index", out, err)
	}
	if _, stderr, err := cli(t, data, "index", "forget", "--confirm", "weaviate/Gabarit_none"); exitCode(err) != 1 ||
		!strings.Contains(stderr+fmt.Sprint(err), "not found") {
		t.Errorf("index forget of an unknown index: %v %s; want exit 1, not found", err, stderr)
	}

	// The authority export holds it all, with digests, and is audited.
	exp := filepath.Join(t.TempDir(), "export")
	if _, stderr, err := cli(t, data, "export", "authority", "--out", exp); err != nil {
		t.Fatalf("export authority: %v\n%s", err, stderr)
	}
	manifest, err := os.ReadFile(filepath.Join(exp, "MANIFEST.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"records.json", "records.md", "sources.json", "rights-register.json", "searches-by-purpose.json", "audit.jsonl", "audit-verification.json"} {
		b, err := os.ReadFile(filepath.Join(exp, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(manifest), fmt.Sprintf("%x  %s", sha256.Sum256(b), name)) {
			t.Errorf("MANIFEST.md lacks the digest of %s", name)
		}
	}
	var stats []struct {
		Purpose  string
		Searches int
	}
	b, _ := os.ReadFile(filepath.Join(exp, "searches-by-purpose.json"))
	if err := json.Unmarshal(b, &stats); err != nil || len(stats) != 1 || stats[0].Purpose != "test" || stats[0].Searches != 4 {
		t.Errorf("searches-by-purpose.json = %s, %v", b, err)
	}
	b, _ = os.ReadFile(filepath.Join(exp, "audit-verification.json"))
	if !strings.Contains(string(b), `"ok": true`) {
		t.Errorf("audit-verification.json = %s", b)
	}
	if _, _, err := cli(t, data, "export", "authority", "--out", exp); exitCode(err) != 2 {
		t.Errorf("export onto an existing folder: %v", err)
	}
	out, _, err = cli(t, data, "audit", "list", "--json")
	if err != nil || !strings.Contains(out, `"action":"export.authority"`) {
		t.Errorf("export not audited: %v", err)
	}
}

func writePNG(t *testing.T, path string, m image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cropJPEG writes the central 80% of a photo as a JPEG and returns dst.
func cropJPEG(t *testing.T, src, dst string) string {
	t.Helper()
	d, err := imageproc.DecodeFile(src, imageproc.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, h := d.Img.W, d.Img.H
	b, err := encodeJPEG(imageproc.Crop(d.Img, w/10, h/10, w*8/10, h*8/10))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// crashPhotos writes n JPEG crops of the demo photos (640×480 windows on a
// grid), distinct images with faces in most of them.
func crashPhotos(t *testing.T, dir string, n int) {
	t.Helper()
	d := modeltest.Installed(t)
	var srcs []*imageproc.RGB
	for i := 1; i <= 6; i++ {
		dec, err := imageproc.DecodeFile(filepath.Join(d.TestPhotos(), fmt.Sprintf("sample%d.jpg", i)), imageproc.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, dec.Img)
	}
	for i := range n {
		m := srcs[i%len(srcs)]
		step := i / len(srcs)
		x := (step * 157) % max(1, m.W-640)
		y := (step * 89) % max(1, m.H-480)
		b, err := encodeJPEG(imageproc.Crop(m, x, y, 640, 480))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("c%03d.jpg", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIngestKillResume kills `gabarit ingest` with SIGKILL at several
// points, runs it again to completion, and compares the result with an
// uninterrupted run: the same images, the same faces, the same template
// bytes (decrypted), and an index that finds them.
func TestIngestKillResume(t *testing.T) {
	modeltest.Installed(t)
	photos := t.TempDir()
	crashPhotos(t, photos, 48)
	killResume(t, photos, []int64{2, 12, 30}, "d1/c001.jpg")
}

// TestIngestKillResumeCeleba is the same on ../shared/data/celeba-dev, the
// issue's crash test: about 2,400 photos, killed at four points.
func TestIngestKillResumeCeleba(t *testing.T) {
	modeltest.Installed(t)
	photos := modeltest.SharedData(t, "celeba-dev")
	if testing.Short() {
		t.Skip("celeba-dev crash test (about 3 minutes) skipped in -short mode; make test and CI do not use -short")
	}
	killResume(t, photos, []int64{40, 400, 1000, 1900}, "")
}

// killResume ingests photos once without interruption, then in a second
// data directory with a kill -9 each time the store holds killAt[i]
// images, then to completion, and compares the two. probe, when set, is a
// locator whose search must find it first.
func killResume(t *testing.T, photos string, killAt []int64, probe string) {
	t.Helper()
	ref := t.TempDir()
	id := addSource(t, ref, photos)
	if _, stderr, err := cli(t, ref, "ingest", "--json", fmt.Sprint(id)); exitCode(err) > 1 {
		t.Fatalf("uninterrupted ingest: %v\n%s", err, stderr)
	}

	data := t.TempDir()
	id = addSource(t, data, photos)
	killed := 0
	for _, at := range killAt {
		cmd := exec.Command(os.Args[0], "ingest", "--data", data, "--quiet", "--batch", "4", fmt.Sprint(id))
		cmd.Env = append(os.Environ(), "GABARIT_TEST_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.Now().Add(10 * time.Minute)
	poll:
		for {
			select {
			case err := <-done:
				t.Logf("ingest ended before %d images (%v)", at, err)
				break poll
			case <-time.After(20 * time.Millisecond):
			}
			if imagesIn(t, data) >= at {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				<-done
				killed++
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("ingest made no progress: %s", stderr.String())
			}
		}
	}
	if killed == 0 {
		t.Fatal("ingest was never killed mid-run")
	}
	out, stderr, err := cli(t, data, "ingest", "--json", fmt.Sprint(id))
	if exitCode(err) > 1 {
		t.Fatalf("resumed ingest: %v\n%s", err, stderr)
	}
	t.Logf("killed %d times; resumed run: %.300s", killed, out)

	want, got := templatesByImage(t, ref), templatesByImage(t, data)
	if len(got) != len(want) {
		t.Fatalf("%d images with faces after kills, %d uninterrupted", len(got), len(want))
	}
	nf := 0
	for sha, w := range want {
		g := got[sha]
		if len(g) != len(w) {
			t.Errorf("image %x: %d faces, uninterrupted %d", sha[:4], len(g), len(w))
			continue
		}
		for i := range w {
			nf++
			if !bytes.Equal(g[i], w[i]) {
				t.Errorf("image %x face %d: template bytes differ", sha[:4], i)
			}
		}
	}
	if nf == 0 {
		t.Fatal("no faces compared")
	}
	t.Logf("%d images, %d faces: identical", len(want), nf)
	if probe == "" {
		return
	}
	// The index, saved or caught up, holds the stored faces: a search for
	// a photo finds its own image first.
	out, _, err = cli(t, data, "search", "--purpose", "test", "--json", filepath.Join(photos, filepath.FromSlash(probe)))
	if err != nil {
		t.Fatal(err)
	}
	var res app.SearchView
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) == 0 || res.Results[0].Locator != probe {
		t.Errorf("search after kills: %s, %v", out, err)
	}
}

// imagesIn counts the images stored in a data directory (0 before the
// store exists).
func imagesIn(t *testing.T, data string) int64 {
	t.Helper()
	path := filepath.Join(data, "gabarit.db")
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.SourceCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, v := range c {
		n += v[0]
	}
	return n
}

// templatesByImage opens every template of a data directory and returns
// them by image hash, as little-endian bytes, in face order.
func templatesByImage(t *testing.T, data string) map[[32]byte][][]byte {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	master, err := keyring.LoadOrCreateMaster(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(master, db.KeyStore())
	defer kr.Close()
	out := map[[32]byte][][]byte{}
	err = db.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, blob []byte) error {
		v, err := kr.Open(ctx, sourceID, faceID, modelID, blob)
		if err != nil {
			return err
		}
		f, err := db.Face(ctx, faceID)
		if err != nil {
			return err
		}
		img, err := db.Image(ctx, f.ImageID)
		if err != nil {
			return err
		}
		b := make([]byte, 0, 4*len(v))
		for _, x := range v {
			b = fmt.Appendf(b, "%08x", math.Float32bits(x))
		}
		out[img.SHA256] = append(out[img.SHA256], b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIngestVideo ingests a video made of two demo photos shown two
// seconds each: every face is tracked across the sampled frames and stored
// once, with its time code, and a search finds it.
func TestIngestVideo(t *testing.T) {
	d := modeltest.Installed(t)
	ffmpeg := modeltest.FFmpeg(t)
	vids := t.TempDir()
	clip := filepath.Join(vids, "clip.mp4")
	p1, p2 := filepath.Join(d.TestPhotos(), "sample1.jpg"), filepath.Join(d.TestPhotos(), "sample2.jpg")
	cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-y", "-loop", "1", "-t", "2", "-i", p1, "-loop", "1", "-t", "2", "-i", p2,
		"-filter_complex", "[0:v]scale=1280:854,setsar=1,fps=10[a];[1:v]scale=1280:854,setsar=1,fps=10[b];[a][b]concat=n=2:v=1[v]",
		"-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", clip)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make the video: %v\n%s", err, out)
	}
	// Each photo's faces, for comparison.
	out, _, err := runCLI(t, "faces", "--json", p1, p2)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var f fileJSON
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatal(err)
		}
		want += len(f.Faces)
	}

	data := t.TempDir()
	out, stderr, err := cli(t, data, "source", "add", "--kind", "video", "--path", vids, "--controller", "C", "--purpose", "P",
		"--legal-basis", "consent", "--art9", "a", "--jurisdiction", "FR", "--retention", "1d")
	if err != nil {
		t.Fatalf("source add: %v\n%s", err, stderr)
	}
	id := strings.TrimSpace(out)
	out, stderr, err = cli(t, data, "ingest", "--json", id)
	if err != nil {
		t.Fatalf("ingest: %v\n%s", err, stderr)
	}
	var sum ingestJSON
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	// 8 sampled frames show each face 4 times: one track per face.
	if sum.Images != 1 || sum.Faces != want {
		t.Fatalf("ingest = %+v; want 1 video and %d faces (one per track)", sum, want)
	}
	out, _, err = cli(t, data, "search", "--purpose", "test", "--json", p1)
	if err != nil {
		t.Fatal(err)
	}
	var res app.SearchView
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) == 0 {
		t.Fatalf("search: %s, %v", out, err)
	}
	h := res.Results[0]
	if h.Locator != "clip.mp4" || h.TimeCodeMS == nil || *h.TimeCodeMS < 0 || *h.TimeCodeMS >= 2000 {
		t.Errorf("first hit = %+v, want clip.mp4 in the first two seconds", h)
	}
	// Again: the video is known.
	out, _, _ = cli(t, data, "ingest", "--json", id)
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Images != 0 || sum.Skipped != 1 {
		t.Errorf("second ingest = %+v, %v", sum, err)
	}
}

// TestIngestArchive ingests a zip of demo photos holding one entry that
// would escape the archive: the photos land, the hostile entry is refused
// and reported, the batch goes on.
func TestIngestArchive(t *testing.T) {
	d := modeltest.Installed(t)
	dir := t.TempDir()
	zpath := filepath.Join(dir, "photos.zip")
	f, err := os.Create(zpath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, e := range [][2]string{{"a/sample1.jpg", "sample1.jpg"}, {"b/sample2.jpg", "sample2.jpg"}, {"../evil.jpg", "sample3.jpg"}} {
		name := e[0]
		data, err := os.ReadFile(filepath.Join(d.TestPhotos(), e[1]))
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	out, stderr, err := cli(t, data, "source", "add", "--kind", "archive", "--path", zpath, "--controller", "C", "--purpose", "P",
		"--legal-basis", "contract", "--art9", "a", "--jurisdiction", "DE", "--retention", "1y")
	if err != nil {
		t.Fatalf("source add: %v\n%s", err, stderr)
	}
	out, _, err = cli(t, data, "ingest", "--json", strings.TrimSpace(out))
	if exitCode(err) != 1 {
		t.Fatalf("ingest: %v, want status 1 (one refused entry)", err)
	}
	var sum ingestJSON
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Images != 2 || sum.Faces < 4 || len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0].File, "evil") ||
		!strings.Contains(sum.Errors[0].Reason, "escape") {
		t.Errorf("ingest = %+v", sum)
	}
}

// TestAuditVerify: `gabarit audit verify` passes on an intact log and
// exits 1 naming the entry when a row is changed or the last one deleted
// directly in SQLite.
func TestAuditVerify(t *testing.T) {
	photos := t.TempDir()
	for _, tamper := range []struct {
		name, sql, want string
	}{
		{"changed", `UPDATE audit SET detail = '{"kind":"archive"}' WHERE id = 2`, "entry 2"},
		{"reordered", `UPDATE audit SET id = -id WHERE id IN (1, 2); UPDATE audit SET id = CASE id WHEN -1 THEN 2 ELSE 1 END WHERE id IN (-1, -2)`, "entry 1"},
		{"last removed", `DELETE FROM audit WHERE id = 3`, "entries 3 to 3 were removed"},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			data := t.TempDir()
			for range 3 {
				addSource(t, data, photos)
			}
			out, _, err := cli(t, data, "audit", "verify")
			if err != nil || !strings.HasPrefix(out, "audit log intact: 3 entries") {
				t.Fatalf("intact: %q, %v", out, err)
			}
			db, err := sql.Open("sqlite", filepath.Join(data, "gabarit.db"))
			if err != nil {
				t.Fatal(err)
			}
			for _, stmt := range []string{`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`, tamper.sql} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			db.Close()
			_, stderr, err := cli(t, data, "audit", "verify")
			if exitCode(err) != 1 || !strings.Contains(stderr, tamper.want) {
				t.Errorf("after %s: exit %d, %q; want 1 naming %s", tamper.name, exitCode(err), stderr, tamper.want)
			}
		})
	}
}

// TestTwoPersonVerification: a result becomes an identification only
// after two different verifiers confirm it; nobody confirms their own
// search or confirms twice; only admins manage users. The command line
// acts as the operating-system account (cli:NAME); the second verifier
// acts through the store, as another account would.
func TestTwoPersonVerification(t *testing.T) {
	d := modeltest.Installed(t)
	ctx := context.Background()
	data, photos := t.TempDir(), t.TempDir()
	if err := copyFile(filepath.Join(d.TestPhotos(), "sample1.jpg"), filepath.Join(photos, "s1.jpg")); err != nil {
		t.Fatal(err)
	}
	id := addSource(t, data, photos)
	if _, _, err := cli(t, data, "ingest", fmt.Sprint(id)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, data, "user", "add", "--roles", "verifier", "someone"); err == nil {
		t.Error("the first user was not an admin, and was accepted")
	}
	if out, stderr, err := cli(t, data, "user", "add", "--roles", "admin,verifier", actor()); err != nil {
		t.Fatalf("user add: %q %q %v", out, stderr, err)
	}
	out, _, err := cli(t, data, "search", "--purpose", "test", "--json", filepath.Join(photos, "s1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	var res app.SearchView
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Results) == 0 {
		t.Fatalf("search: %s, %v", out, err)
	}
	face := res.Results[0].FaceID
	if _, _, err := cli(t, data, "confirm", fmt.Sprint(res.SearchID), fmt.Sprint(face)); err == nil || !strings.Contains(err.Error(), "own search") {
		t.Errorf("confirming one's own search: %v", err)
	}

	// Another investigator's search of the same face.
	dd, err := app.OpenData(ctx, config.Config{DataDir: data, Index: app.IndexHNSW}, false)
	if err != nil {
		t.Fatal(err)
	}
	db := dd.DB
	other, _, err := db.RecordSearch(ctx, store.Search{Actor: "cli:investigator", Purpose: "case", ProbeSHA256: [32]byte{1}, K: 5, Threshold: 0.4, Returned: []int64{face}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddUser(ctx, "cli:second", []store.Role{store.RoleVerifier}, actor()); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, data, "confirm", "--json", fmt.Sprint(other), fmt.Sprint(face))
	if err != nil || !strings.Contains(out, `"identified":false`) {
		t.Fatalf("first confirmation: %q, %v", out, err)
	}
	if _, _, err := cli(t, data, "confirm", fmt.Sprint(other), fmt.Sprint(face)); err == nil || !strings.Contains(err.Error(), "already confirmed") {
		t.Errorf("confirming twice: %v", err)
	}
	c, err := db.Confirm(ctx, other, face, "cli:second")
	if err != nil || !c.Identified || len(c.Verifiers) != 2 {
		t.Errorf("second verifier: %+v, %v", c, err)
	}
	dd.Close()
	out, _, err = cli(t, data, "audit", "list", "--json")
	if err != nil || strings.Count(out, `"action":"search.confirm"`) != 2 {
		t.Errorf("confirmations audited: %d", strings.Count(out, `"action":"search.confirm"`))
	}
	if out, _, err := cli(t, data, "audit", "verify"); err != nil {
		t.Errorf("audit verify: %q %v", out, err)
	}
}
