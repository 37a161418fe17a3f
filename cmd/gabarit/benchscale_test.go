package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/vindex/weaviate"
	"gabarit/internal/vindex/weaviate/weaviatetest"
)

func TestVmRSS(t *testing.T) {
	status := "Name:\tweaviate-server\nVmPeak:\t 9999 kB\nVmRSS:\t  123456 kB\nRssAnon:\t 100 kB\n"
	if v, err := vmRSS(status); err != nil || v != 123456*1024 {
		t.Errorf("vmRSS = %d, %v; want %d", v, err, 123456*1024)
	}
	for _, bad := range []string{"", "Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n"} {
		if _, err := vmRSS(bad); err == nil {
			t.Errorf("vmRSS(%q) succeeded; want an error", bad)
		}
	}
	// This process's own status parses, to a plausible size.
	own, err := totalRSS([]int{os.Getpid()})
	if err != nil || own < 1<<20 {
		t.Errorf("totalRSS(self) = %d, %v; want at least 1 MiB", own, err)
	}
	if _, err := totalRSS([]int{1 << 30}); err == nil {
		t.Error("totalRSS of a process that does not exist succeeded")
	}
}

func TestNodePids(t *testing.T) {
	dir := t.TempDir()
	for i, pid := range []string{"101\n", "202", "303\n"} {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("node%d.pid", i)), []byte(pid), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "node0.log"), []byte("not a pid"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := nodePids("", dir)
	if err != nil || fmt.Sprint(got) != "[101 202 303]" {
		t.Errorf("nodePids(dir) = %v, %v; want [101 202 303]", got, err)
	}
	if got, err := nodePids("7, 8", ""); err != nil || fmt.Sprint(got) != "[7 8]" {
		t.Errorf("nodePids(list) = %v, %v; want [7 8]", got, err)
	}
	if got, err := nodePids("", ""); err != nil || got != nil {
		t.Errorf("nodePids(none) = %v, %v; want none", got, err)
	}
	for _, c := range [][2]string{{"7,x", ""}, {"7", dir}, {"", t.TempDir()}} {
		if _, err := nodePids(c[0], c[1]); err == nil {
			t.Errorf("nodePids(%q, %q) succeeded; want an error", c[0], c[1])
		}
	}
	// dirBytes counts the pid files (10 bytes), not the log.
	if got := dirBytes(dir); got != 4+3+4 {
		t.Errorf("dirBytes = %d; want 11", got)
	}
}

func TestCompressions(t *testing.T) {
	if got, err := compressions("none, RQ,bq"); err != nil || strings.Join(got, ",") != "none,rq,bq" {
		t.Errorf("compressions = %v, %v", got, err)
	}
	for _, bad := range []string{"", "none,none", "zip"} {
		if _, err := compressions(bad); err == nil {
			t.Errorf("compressions(%q) succeeded; want an error", bad)
		}
	}
}

func TestBenchScaleUsage(t *testing.T) {
	for _, args := range [][]string{
		{},                                // no --index
		{"--index", "http://127.0.0.1:1"}, // not a weaviate URL
		{"--index", "weaviate://h:1", "--compression", "zip"},
		{"--index", "weaviate://h:1", "--n", "5"}, // n < k
	} {
		var out, errb bytes.Buffer
		e := &cmdEnv{stdout: &out, stderr: &errb}
		err := e.benchScale(context.Background(), args)
		var ee exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(errb.String(), "bench scale") {
			t.Errorf("bench scale %q = %v, stderr %q; want exit 2 and a message", args, err, errb.String())
		}
	}
	// An unreachable cluster: a clear error naming the node, before any work.
	var out, errb bytes.Buffer
	e := &cmdEnv{stdout: &out, stderr: &errb}
	err := e.benchScale(context.Background(), []string{"--index", "weaviate://127.0.0.1:1", "--n", "100"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(errb.String(), "generating") {
		t.Errorf("bench scale on an unreachable cluster = %v (stderr %q); want an error naming the node, before generating", err, errb.String())
	}
}

// TestBenchScaleWeaviate runs bench scale at a tiny size against the
// cluster of GABARIT_TEST_WEAVIATE and checks its measurements and that it
// dropped its collections.
func TestBenchScaleWeaviate(t *testing.T) {
	u := weaviatetest.URL(t)
	ep, err := weaviate.ParseURL(u)
	if err != nil {
		t.Fatalf("GABARIT_TEST_WEAVIATE: %v", err)
	}
	prefix := fmt.Sprintf("bstest-%d", time.Now().UnixNano())
	var out, errb bytes.Buffer
	e := &cmdEnv{stdout: &out, stderr: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err = e.benchScale(ctx, []string{"--index", u, "--n", "600", "--queries", "20", "--compression", "none,rq",
		"--replicas", "2", "--shards", "2", "--collection", prefix, "--wv-pids", fmt.Sprint(os.Getpid()), "--json"})
	if err != nil {
		t.Fatalf("bench scale: %v\n%s", err, errb.String())
	}
	var rep scaleReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bench scale --json printed %q: %v", out.String(), err)
	}
	if rep.N != 600 || rep.Dim != 512 || len(rep.Results) != 3 {
		t.Fatalf("report: n %d, dim %d, %d results; want 600, 512, 3 (hnsw, weaviate none, weaviate rq)", rep.N, rep.Dim, len(rep.Results))
	}
	for i, want := range []string{"hnsw/int8", "weaviate/none", "weaviate/rq"} {
		r := rep.Results[i]
		if got := r.Engine + "/" + r.Compression; got != want {
			t.Errorf("result %d is %s; want %s", i, got, want)
		}
		// 600 faces: the graphs are nearly exact.
		if r.Recall < 0.9 || r.ImportRate <= 0 || r.QPS <= 0 || r.P99ms < r.P50ms || r.Clients != 8 {
			t.Errorf("%s: recall %.3f, %.0f faces/s, %.0f q/s, p50 %.2f p99 %.2f ms, %d clients", want, r.Recall, r.ImportRate, r.QPS, r.P50ms, r.P99ms, r.Clients)
		}
		if r.Engine == "weaviate" && (r.Shards != 2 || r.Replicas != 2 || r.RSSBefore <= 0 || r.RSSAfter <= 0) {
			t.Errorf("%s: shards %d, replicas %d, RSS %d → %d; want 2, 2 and the RSS read", want, r.Shards, r.Replicas, r.RSSBefore, r.RSSAfter)
		}
	}
	// The collections are gone.
	resp, err := http.Get("http://" + ep.REST[0] + "/v1/schema")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/schema: %d, %v", resp.StatusCode, err)
	}
	// ClassName("bstest-N-none-RUN") is "Gabarit_bstest_N_none_RUN_HASH".
	stem := "Gabarit_" + strings.ReplaceAll(prefix, "-", "_")
	if !strings.HasPrefix(weaviate.ClassName(prefix+"-none-1"), stem+"_") {
		t.Fatalf("ClassName(%q) = %q; the test expects it to start with %s_", prefix+"-none-1", weaviate.ClassName(prefix+"-none-1"), stem)
	}
	if strings.Contains(string(body), stem+"_") {
		t.Errorf("the schema still lists a collection %s_…: bench scale did not drop it", stem)
	}
}
