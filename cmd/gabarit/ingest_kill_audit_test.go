//go:build cgo && onnx

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gabarit/internal/ingest"
	"gabarit/internal/store"
)

// ingestAudit returns the ingest audit entries of a data directory, oldest
// first, with their details decoded, and the images and faces stored.
func ingestAudit(t *testing.T, data string) (es []store.AuditEntry, ds []map[string]any, images, faces int64) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	page, err := db.QueryAudit(ctx, store.AuditFilter{Action: "source.ingest*", Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(page) - 1; i >= 0; i-- {
		var d map[string]any
		if err := json.Unmarshal(page[i].Detail, &d); err != nil {
			t.Fatal(err)
		}
		es, ds = append(es, page[i]), append(ds, d)
	}
	counts, err := db.SourceCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		images, faces = images+c[0], faces+c[1]
	}
	return es, ds, images, faces
}

// TestIngestKillAudited kills an ingest with SIGKILL after it committed
// some batches, then runs it again: the killed run's start is in the audit
// log before anything it committed, the next run records the killed run's
// end with the images and faces it committed, and the ingest entries
// account for every image and face in the store.
func TestIngestKillAudited(t *testing.T) {
	photos := t.TempDir()
	crashPhotos(t, photos, 48)
	data := t.TempDir()
	id := addSource(t, data, photos)

	cmd := exec.Command(os.Args[0], "ingest", "--data", data, "--quiet", "--batch", "4", fmt.Sprint(id))
	cmd.Env = append(os.Environ(), "GABARIT_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Minute)
	for imagesIn(t, data) < 8 {
		select {
		case err := <-done:
			t.Fatalf("ingest ended before the kill (%v): %s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill() //nolint:errcheck // the test fails anyway
			t.Fatalf("ingest made no progress: %s", stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done

	es, _, killedImages, killedFaces := ingestAudit(t, data)
	if len(es) != 1 || es[0].Action != ingest.ActionStart {
		t.Fatalf("after the kill: ingest audit entries %+v, want the killed run's start only", es)
	}
	if killedImages == 0 || killedImages == 48 {
		t.Fatalf("the killed run committed %d of 48 images", killedImages)
	}

	if _, stderr, err := cli(t, data, "ingest", "--json", fmt.Sprint(id)); exitCode(err) > 1 {
		t.Fatalf("ingest after the kill: %v\n%s", err, stderr)
	}
	es, ds, images, faces := ingestAudit(t, data)
	if len(es) != 4 || es[1].Action != ingest.ActionEnd || es[3].Action != ingest.ActionEnd {
		t.Fatalf("ingest audit entries %+v; want start, end of the killed run, start, end", es)
	}
	if ds[1]["killed"] != true || ds[1]["start"] != float64(es[0].ID) ||
		ds[1]["images"] != float64(killedImages) || ds[1]["faces"] != float64(killedFaces) {
		t.Errorf("end of the killed run: %v; want killed, start %d, %d images, %d faces", ds[1], es[0].ID, killedImages, killedFaces)
	}
	ai := ds[1]["images"].(float64) + ds[3]["images"].(float64)
	af := ds[1]["faces"].(float64) + ds[3]["faces"].(float64)
	if int64(ai) != images || int64(af) != faces || images != 48 {
		t.Errorf("the audit log accounts for %v images and %v faces; the store holds %d and %d (want 48 images)", ai, af, images, faces)
	}
	if out, stderr, err := cli(t, data, "audit", "verify"); err != nil {
		t.Errorf("audit verify after the kill: %v\n%s%s", err, out, stderr)
	}
	t.Logf("killed after %d images (%d faces); the next run added %v; audit log intact", killedImages, killedFaces, ds[3]["images"])
}
