package server

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/store"
)

// gatedModel is fakeModel under the test's control, so that an ingest job
// and a search are in flight when the server is told to stop: the first
// free photos of the ingest are analysed at once and the others wait until
// the ingest is cancelled; the probe's analysis announces itself (probing)
// and then waits for release.
type gatedModel struct {
	fakeModel
	free             int64
	analysed         *atomic.Int64
	probe            []byte
	probing, release chan struct{}
}

func (m gatedModel) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	if bytes.Equal(data, m.probe) {
		close(m.probing)
		<-m.release
	} else if m.analysed.Add(1) > m.free {
		<-ctx.Done()
		return face.Analysis{}, ctx.Err()
	}
	return m.fakeModel.Analyze(ctx, data)
}

// announcer is a log handler that closes stopping when the server logs
// that it is shutting down.
type announcer struct {
	slog.Handler
	stopping chan struct{}
	once     *sync.Once
}

func (a announcer) Enabled(context.Context, slog.Level) bool { return true }

func (a announcer) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "shutting down") {
		a.once.Do(func() { close(a.stopping) })
	}
	return nil
}

// TestGracefulShutdown: on stop, a search in flight finishes with its
// answer, the running ingest stops at a safe point (what it committed is
// kept, audited as interrupted) and Serve returns.
func TestGracefulShutdown(t *testing.T) {
	probe := testPNG(t, color.RGBA{5, 5, 5, 0})
	m := gatedModel{free: 10, analysed: new(atomic.Int64), probe: probe, probing: make(chan struct{}), release: make(chan struct{})}
	e := newTestEnv(t, m)
	stopping := make(chan struct{})
	e.srv.log = slog.New(announcer{Handler: slog.DiscardHandler, stopping: stopping, once: new(sync.Once)})
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
	eventually(t, 30*time.Second, "committing images", func() bool { j, _ := e.srv.jobs.get(t.Context(), 1); return j.Images > 0 })
	searched := make(chan int, 1)
	go func() {
		st, _ := inv.multipart("/api/v1/searches", map[string]string{"purpose": "in flight"}, map[string][][]byte{"photo": {probe}})
		searched <- st
	}()
	<-m.probing // the search is being analysed
	stop()
	<-stopping // the server is shutting down, the search still in flight
	close(m.release)
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
	jobs, err := e.srv.jobs.list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].State != jobCancelled || jobs[0].Images == 0 || jobs[0].Images > int(m.free) {
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
