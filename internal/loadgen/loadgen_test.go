package loadgen_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/loadgen"
)

// newServer starts a test server that counts its hits and answers with h.
func newServer(t *testing.T, h func(n int64, w http.ResponseWriter)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h(hits.Add(1), w)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// get returns a Config.Request that GETs url.
func get(url string) func(context.Context, int) (*http.Request, error) {
	return func(ctx context.Context, _ int) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}
}

// sleepy answers "ok" after about 2 ms.
func sleepy(_ int64, w http.ResponseWriter) {
	time.Sleep(2 * time.Millisecond)
	fmt.Fprint(w, "ok")
}

func TestRunCountsEveryRequest(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, sleepy)
	var seen [4]atomic.Bool
	req := get(srv.URL)
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Clients:  4,
		Duration: 300 * time.Millisecond,
		Request: func(ctx context.Context, client int) (*http.Request, error) {
			seen[client].Store(true)
			return req(ctx, client)
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Log(res)
	if res.Clients != 4 {
		t.Errorf("Clients = %d, want 4", res.Clients)
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Errorf("client %d never built a request", i)
		}
	}
	if res.Requests == 0 || res.Requests != hits.Load() {
		t.Errorf("Requests = %d, server saw %d; want equal and > 0", res.Requests, hits.Load())
	}
	if res.Errors != 0 || len(res.ErrorSamples) != 0 {
		t.Errorf("Errors = %d, samples %q; want none", res.Errors, res.ErrorSamples)
	}
	checkLatencies(t, res)
	if res.Elapsed < 300*time.Millisecond {
		t.Errorf("Elapsed = %v, want at least the duration", res.Elapsed)
	}
}

// checkLatencies checks the non-timing properties of a successful run.
func checkLatencies(t *testing.T, res loadgen.Result) {
	t.Helper()
	if res.P50 <= 0 || res.Mean <= 0 || res.Throughput <= 0 {
		t.Errorf("P50 = %v, Mean = %v, Throughput = %v; want all > 0", res.P50, res.Mean, res.Throughput)
	}
	if !(res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) {
		t.Errorf("percentiles out of order: p50=%v p90=%v p99=%v max=%v", res.P50, res.P90, res.P99, res.Max)
	}
	if res.Mean > res.Max {
		t.Errorf("Mean %v > Max %v", res.Mean, res.Max)
	}
}

func TestRunWarmupNotCounted(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, sleepy)
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Clients: 2,
		Warmup:  100 * time.Millisecond,
		// Long enough that a request is sent in it even on a loaded
		// machine (with 200 ms, a CI run under load saw none).
		Duration: time.Second,
		Request:  get(srv.URL),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The first request of each client is sent at once, during the warmup.
	if res.Requests == 0 || res.Requests > hits.Load()-2 {
		t.Errorf("Requests = %d, server saw %d; want warmup requests left out", res.Requests, hits.Load())
	}
	checkLatencies(t, res)
}

func TestRunCountsServerErrors(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, func(n int64, w http.ResponseWriter) {
		if n%3 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Clients:  3,
		Duration: 200 * time.Millisecond,
		Request:  get(srv.URL),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Log(res)
	if res.Errors == 0 || res.Errors >= res.Requests {
		t.Errorf("Errors = %d of %d requests, want some but not all", res.Errors, res.Requests)
	}
	if len(res.ErrorSamples) != 1 || !strings.Contains(res.ErrorSamples[0], "500") {
		t.Errorf("ErrorSamples = %q, want one message naming status 500", res.ErrorSamples)
	}
	checkLatencies(t, res)
}

func TestRunCountsCheckFailures(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, func(n int64, w http.ResponseWriter) {
		fmt.Fprintf(w, "answer %d", n%7) // seven distinct bodies, all 200
	})
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Clients:  2,
		Duration: 100 * time.Millisecond,
		Request:  get(srv.URL),
		Check: func(_ *http.Response, body []byte) error {
			return fmt.Errorf("unexpected body %q", body)
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Requests == 0 || res.Errors != res.Requests {
		t.Errorf("Errors = %d of %d requests, want all", res.Errors, res.Requests)
	}
	if res.Throughput != 0 || res.P50 != 0 {
		t.Errorf("Throughput = %v, P50 = %v; want 0 with no success", res.Throughput, res.P50)
	}
	if len(res.ErrorSamples) != 5 {
		t.Errorf("ErrorSamples = %q, want the first 5 distinct", res.ErrorSamples)
	}
	for _, s := range res.ErrorSamples {
		if !strings.Contains(s, "unexpected body") {
			t.Errorf("sample %q does not carry the check's message", s)
		}
	}
}

// failingTransport fails every round trip, as a refused connection would.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection refused")
}

func TestRunCountsTransportErrors(t *testing.T) {
	t.Parallel()
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Clients:  2,
		Duration: 50 * time.Millisecond,
		Request:  get("http://loadgen.invalid/"),
		Client:   &http.Client{Transport: failingTransport{}},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Requests == 0 || res.Errors != res.Requests {
		t.Errorf("got %d errors of %d requests, want all failed", res.Errors, res.Requests)
	}
	if len(res.ErrorSamples) != 1 || !strings.Contains(res.ErrorSamples[0], "connection refused") {
		t.Errorf("ErrorSamples = %q, want the transport error once", res.ErrorSamples)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, sleepy)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	var (
		res loadgen.Result
		err error
	)
	go func() {
		defer close(done)
		res, err = loadgen.Run(ctx, loadgen.Config{
			Clients:  4,
			Duration: time.Hour,
			Request:  get(srv.URL),
		})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after its context was cancelled")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run error = %v, want context.DeadlineExceeded", err)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("partial result %v: want requests and no errors from the interruption", res)
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	req := get("http://127.0.0.1:1/")
	tests := []struct {
		name string
		cfg  loadgen.Config
		want string
	}{
		{"no clients", loadgen.Config{Duration: time.Second, Request: req}, "clients"},
		{"negative clients", loadgen.Config{Clients: -1, Duration: time.Second, Request: req}, "clients"},
		{"no duration", loadgen.Config{Clients: 1, Request: req}, "duration"},
		{"negative warmup", loadgen.Config{Clients: 1, Duration: time.Second, Warmup: -time.Second, Request: req}, "warmup"},
		{"no request", loadgen.Config{Clients: 1, Duration: time.Second}, "request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadgen.Run(t.Context(), tt.cfg)
			if !errors.Is(err, loadgen.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestResultStringAndJSON(t *testing.T) {
	t.Parallel()
	res := loadgen.Result{
		Clients: 32, Requests: 100, Errors: 1, Elapsed: time.Second, Throughput: 99,
		P50: time.Millisecond, P90: 2 * time.Millisecond, P99: 3 * time.Millisecond,
		Max: 4 * time.Millisecond, Mean: time.Millisecond, ErrorSamples: []string{"status 500"},
	}
	s := res.String()
	for _, want := range []string{"clients=32", "requests=100", "errors=1", "throughput=99.0/s", "p99=3ms", `first_error="status 500"`} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, missing %q", s, want)
		}
	}
	if strings.Contains(s, "\n") {
		t.Errorf("String() = %q, want one line", s)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	for _, key := range []string{"clients", "requests", "errors", "elapsed_ns", "throughput", "p50_ns", "p90_ns", "p99_ns", "max_ns", "mean_ns", "error_samples"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON %s lacks key %q", b, key)
		}
	}
	if m["p99_ns"] != float64(3*time.Millisecond) {
		t.Errorf("p99_ns = %v, want %d", m["p99_ns"], 3*time.Millisecond)
	}
}
