//go:build cgo && onnx

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/passwd"
	"gabarit/internal/store"
	"gabarit/internal/vindex/weaviate"
	"gabarit/internal/vindex/weaviate/weaviatetest"
)

// The Weaviate tests of the command line. The collection of a model is
// named after the model id (weaviate.ClassName), so every test here that
// uses the real model's collection on the shared cluster runs alone (none
// calls t.Parallel), drops a stale collection left by an aborted run first,
// and drops it at the end. Nothing else in the repository uses the real
// model's collection on the shared cluster (the other packages' tests use
// collections with random names).

// sharedWeaviate returns the index URL of the shared test cluster
// (GABARIT_TEST_WEAVIATE), skipping the test without it, failing instead
// when GABARIT_REQUIRE_WEAVIATE is set.
func sharedWeaviate(t *testing.T) string {
	t.Helper()
	u := weaviatetest.URL(t)
	if _, err := weaviate.ParseConfig(u); err != nil {
		t.Fatalf("GABARIT_TEST_WEAVIATE: %v", err)
	}
	return u
}

// wvScript returns the path of scripts/weaviate.sh (GABARIT_WEAVIATE_SCRIPT,
// else the repository's), skipping the test when the server is not built
// (failing instead when GABARIT_REQUIRE_WEAVIATE is set).
func wvScript(t *testing.T) string {
	t.Helper()
	s := os.Getenv("GABARIT_WEAVIATE_SCRIPT")
	if s == "" {
		abs, err := filepath.Abs(filepath.Join("..", "..", "scripts", "weaviate.sh"))
		if err != nil {
			t.Fatal(err)
		}
		s = abs
	}
	out, err := exec.Command(s, "path").Output()
	bin := strings.TrimSpace(string(out))
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		msg := fmt.Sprintf("no Weaviate server to start a private cluster with (%s path: %q, %v): run scripts/weaviate.sh build", s, bin, err)
		if os.Getenv("GABARIT_REQUIRE_WEAVIATE") != "" {
			t.Fatal(msg + " (GABARIT_REQUIRE_WEAVIATE is set)")
		}
		t.Skip(msg)
	}
	return s
}

// wvCluster is a private Weaviate cluster of a test, driven by
// scripts/weaviate.sh with its own directory and ports.
type wvCluster struct {
	script string
	env    []string
	url    string   // the index URL of every node
	rest   []string // REST address of each node
}

// privateCluster starts a 3-node cluster of its own for t (the fault tests
// kill its nodes; the shared cluster's are never touched) and removes it
// when t ends, even when it fails.
func privateCluster(t *testing.T) *wvCluster {
	t.Helper()
	script := wvScript(t)
	base := freePortBase(t)
	c := &wvCluster{script: script, env: []string{"GABARIT_WV_DIR=" + filepath.Join(t.TempDir(), "wv"),
		"GABARIT_WV_PORT=" + fmt.Sprint(base), "GABARIT_WV_NODES=3"}}
	t.Cleanup(func() {
		if out, err := c.cmd("clean").CombinedOutput(); err != nil {
			t.Errorf("weaviate.sh clean: %v\n%s", err, out)
		}
	})
	start := time.Now()
	c.run(t, "start")
	out, err := c.cmd("url").Output()
	if err != nil {
		t.Fatalf("weaviate.sh url: %v", err)
	}
	c.url = strings.TrimSpace(string(out))
	e, err := weaviate.ParseURL(c.url)
	if err != nil {
		t.Fatal(err)
	}
	c.rest = e.REST
	t.Logf("private cluster started in %v: %s", time.Since(start).Round(100*time.Millisecond), c.url)
	return c
}

func (c *wvCluster) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.script, args...)
	cmd.Env = append(os.Environ(), c.env...)
	return cmd
}

// run runs weaviate.sh args on the cluster, failing t when it fails.
func (c *wvCluster) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := c.cmd(args...).CombinedOutput(); err != nil {
		t.Fatalf("weaviate.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// freePortBase returns a base port for a private cluster whose 3 nodes'
// ports (base to base+25) are all free.
func freePortBase(t *testing.T) int {
	t.Helper()
	for base := 55780; base < 60000; base += 100 {
		free := true
		for p := base; p <= base+25 && free; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free ports for a private Weaviate cluster between 55780 and 60000")
	return 0
}

// restAddr is the REST address of the first node of the index URL u.
func restAddr(t *testing.T, u string) string {
	t.Helper()
	c, err := weaviate.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	return c.Endpoints.REST[0]
}

// wvRequest sends a REST request to the node at addr and returns the
// status and body (status 0 when the node did not answer).
func wvRequest(addr, method, path string, body any) (int, []byte) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, []byte(err.Error())
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, r)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// wvCount returns the number of objects of class on the cluster at addr.
func wvCount(t *testing.T, addr, class string) (int, error) {
	t.Helper()
	code, body := wvRequest(addr, "POST", "/v1/graphql", map[string]string{"query": "{Aggregate{" + class + "{meta{count}}}}"})
	if code != http.StatusOK {
		return 0, fmt.Errorf("count the objects of %s: %d %s", class, code, body)
	}
	var v struct {
		Data struct {
			Aggregate map[string][]struct {
				Meta struct {
					Count int `json:"count"`
				} `json:"meta"`
			} `json:"Aggregate"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, fmt.Errorf("count the objects of %s: %v: %s", class, err, body)
	}
	if len(v.Errors) > 0 || len(v.Data.Aggregate[class]) != 1 {
		return 0, fmt.Errorf("count the objects of %s: %s", class, body)
	}
	return v.Data.Aggregate[class][0].Meta.Count, nil
}

// wvHolds says whether the collection of model holds face id on every
// replica (a read at consistency ALL): true when found, false when absent.
func wvHolds(t *testing.T, addr, model string, id int64) bool {
	t.Helper()
	path := fmt.Sprintf("/v1/objects/%s/%s?consistency_level=ALL", weaviate.ClassName(model), weaviate.FaceUUID(model, id))
	switch code, body := wvRequest(addr, "GET", path, nil); code {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	default:
		t.Fatalf("GET face %d from the collection: %d %s", id, code, body)
		return false
	}
}

// wvDrop drops class on the cluster at addr if it exists.
func wvDrop(t *testing.T, addr, class string) {
	t.Helper()
	if code, body := wvRequest(addr, "DELETE", "/v1/schema/"+class, nil); code != http.StatusOK && code != http.StatusNotFound {
		t.Errorf("drop the collection %s: %d %s", class, code, body)
	}
}

// realModel returns the default pack's embedder id and dimension.
func realModel(t *testing.T) (string, int) {
	t.Helper()
	m, err := (&faceFlags{pack: "default"}).manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Embedder.ID(), m.Embedder.Dim
}

// freshRealCollection drops the real model's collection on the cluster at
// addr now (a stale one from an aborted run would hold another rotation)
// and when t ends.
func freshRealCollection(t *testing.T, addr string) (model string, dim int, class string) {
	t.Helper()
	model, dim = realModel(t)
	class = weaviate.ClassName(model)
	wvDrop(t, addr, class)
	t.Cleanup(func() { wvDrop(t, addr, class) })
	return model, dim, class
}

// storeCount runs a count query on a PostgreSQL database.
func storeCount(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// faceIDsOf returns the face ids of source src in the store db, by the
// locator of their image.
func faceIDsOf(t *testing.T, db *sql.DB, src int64) map[string][]int64 {
	t.Helper()
	rows, err := db.Query(`SELECT i.locator, f.id FROM faces f JOIN images i ON i.id = f.image_id WHERE i.source_id = $1`, src)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]int64{}
	for rows.Next() {
		var loc string
		var id int64
		if err := rows.Scan(&loc, &id); err != nil {
			t.Fatal(err)
		}
		out[loc] = append(out[loc], id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// apiToken adds a user with roles to the store dsn and returns an API token
// of theirs, written through an instance on data.
func apiToken(t *testing.T, data, dsn, keyFile, name string, roles ...store.Role) string {
	t.Helper()
	ctx := context.Background()
	token, hash, err := passwd.NewToken("gbt_")
	if err != nil {
		t.Fatal(err)
	}
	d, err := app.OpenData(ctx, config.Config{DataDir: data, Store: dsn, Index: app.IndexFlat, MasterKeyFile: keyFile}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.DB.AddUser(ctx, name, roles, actor()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.CreateAPIToken(ctx, name, "test instances", hash, time.Time{}, actor()); err != nil {
		t.Fatal(err)
	}
	return token
}
