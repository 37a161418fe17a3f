package server

import (
	"context"
	"fmt"
	"image/color"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/store"
)

// slowModel is fakeModel taking a while per photo, so that requests and
// ingest jobs are in flight when the server is told to stop.
type slowModel struct {
	fakeModel
	delay time.Duration
}

func (m slowModel) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	select {
	case <-time.After(m.delay):
	case <-ctx.Done():
		return face.Analysis{}, ctx.Err()
	}
	return m.fakeModel.Analyze(ctx, data)
}

// TestGracefulShutdown: on stop, a search in flight finishes with its
// answer, the running ingest stops at a safe point (what it committed is
// kept, audited as interrupted) and Serve returns.
func TestGracefulShutdown(t *testing.T) {
	e := newTestEnv(t, slowModel{delay: 100 * time.Millisecond})
	for i := range 60 {
		if err := os.WriteFile(filepath.Join(e.photos, fmt.Sprintf("q%02d.png", i)), testPNG(t, color.RGBA{uint8(i + 1), 100, 50, 0}), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	op, inv := e.token("olga"), e.token("ivan")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	e.ts.URL = base // the helpers now talk to the served listener

	id := e.declareSource(op)
	if st, body := op.json("POST", fmt.Sprintf("/api/v1/sources/%d/ingest", id), nil); st != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", st, body)
	}
	time.Sleep(1500 * time.Millisecond) // some images committed, many left
	searched := make(chan int, 1)
	go func() {
		st, _ := inv.multipart("/api/v1/searches", map[string]string{"purpose": "in flight"}, map[string][][]byte{"photo": {testPNG(t, color.RGBA{5, 5, 5, 0})}})
		searched <- st
	}()
	time.Sleep(30 * time.Millisecond) // the search is being analysed
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("Serve did not return")
	}
	if st := <-searched; st != http.StatusOK {
		t.Errorf("search in flight: status %d, want 200", st)
	}
	jobs := e.srv.jobs.list()
	if len(jobs) != 1 || jobs[0].State != jobCancelled || jobs[0].Images == 0 || jobs[0].Images >= 63 {
		t.Fatalf("job after shutdown = %+v", jobs)
	}
	counts, err := e.data.DB.SourceCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := counts[id][0]; got != int64(jobs[0].Images) {
		t.Errorf("store holds %d images, the job reported %d", got, jobs[0].Images)
	}
	es, err := e.data.DB.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := es[len(es)-1]
	if last.Action != "source.ingest" || !strings.Contains(string(last.Detail), `"interrupted":true`) {
		t.Errorf("last audit entry %s %s, want the interrupted ingest", last.Action, last.Detail)
	}
	if resp, err := http.Get(base + "/api/v1/health"); err == nil {
		resp.Body.Close()
		t.Error("still serving after shutdown")
	}
}
