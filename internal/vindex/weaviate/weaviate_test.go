package weaviate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	mrand "math/rand/v2"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/google/go-cmp/cmp"
	wv "github.com/weaviate/weaviate-go-client/v5/weaviate"
	wvgrpc "github.com/weaviate/weaviate-go-client/v5/weaviate/grpc"

	"gabarit/internal/vindex"
	"gabarit/internal/vindex/flat"
	"gabarit/internal/vindex/rotate"
	"gabarit/internal/vindex/vindextest"
	"gabarit/internal/vindex/weaviate/weaviatetest"
)

// conformanceRecall is the recall@10 the suite requires (see doc.go for
// what it measured with the default HNSW parameters).
const conformanceRecall = 0.95

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Endpoints
		wantErr string // a part of the error; "" for success
	}{
		{name: "one node", in: "weaviate://127.0.0.1:8080", want: Endpoints{REST: []string{"127.0.0.1:8080"}}},
		{name: "trailing slash", in: "weaviate://db:8080/", want: Endpoints{REST: []string{"db:8080"}}},
		{name: "three nodes", in: "weaviate://a:1,b:2,c:3", want: Endpoints{REST: []string{"a:1", "b:2", "c:3"}}},
		{name: "with grpc", in: "weaviate://a:8080,b:8081?grpc=a:50051,b:50052",
			want: Endpoints{REST: []string{"a:8080", "b:8081"}, GRPC: []string{"a:50051", "b:50052"}}},
		{name: "ipv6", in: "weaviate://[::1]:8080", want: Endpoints{REST: []string{"[::1]:8080"}}},
		{name: "http scheme", in: "http://a:8080", wantErr: "does not start with weaviate://"},
		{name: "no scheme", in: "a:8080", wantErr: "does not start with weaviate://"},
		{name: "empty", in: "weaviate://", wantErr: "no address"},
		{name: "no port", in: "weaviate://a", wantErr: "not host:port"},
		{name: "bad port", in: "weaviate://a:http", wantErr: "not a number"},
		{name: "port zero", in: "weaviate://a:0", wantErr: "not a number in 1-65535"},
		{name: "port too big", in: "weaviate://a:70000", wantErr: "not a number in 1-65535"},
		{name: "no host", in: "weaviate://:8080", wantErr: "no host"},
		{name: "empty in list", in: "weaviate://a:1,,b:2", wantErr: "not host:port"},
		{name: "twice", in: "weaviate://a:1,a:1", wantErr: "given twice"},
		{name: "path", in: "weaviate://a:1/v1", wantErr: "no path"},
		{name: "user", in: "weaviate://u@a:1", wantErr: "no path, fragment or user name"},
		{name: "unknown param", in: "weaviate://a:1?tls=1", wantErr: `unknown parameter "tls"`},
		{name: "grpc count", in: "weaviate://a:1,b:2?grpc=a:3", wantErr: "1 gRPC addresses for 2 nodes"},
		{name: "grpc twice", in: "weaviate://a:1?grpc=a:3&grpc=a:4", wantErr: "grpc given 2 times"},
		{name: "grpc bad", in: "weaviate://a:1?grpc=a", wantErr: "grpc: address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURL(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("ParseURL(%q) (-want +got):\n%s", tt.in, diff)
			}
			if back, err := ParseURL(got.String()); err != nil || !cmp.Equal(back, got) {
				t.Errorf("ParseURL(%q.String()) = %v, %v; want %v", got.String(), back, err, got)
			}
		})
	}
}

func TestClassNameAndUUID(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[A-Z][_0-9A-Za-z]*$`)
	names := map[string]bool{}
	for _, c := range []string{"arcface-r100@1", "arcface_r100_1", "Ünïcode model", "", strings.Repeat("x", 300)} {
		n := ClassName(c)
		if !valid.MatchString(n) || len(n) > 100 {
			t.Errorf("ClassName(%q) = %q, not a valid Weaviate class name", c, n)
		}
		if names[n] {
			t.Errorf("ClassName(%q) = %q, shared with another collection", c, n)
		}
		names[n] = true
		if ClassName(c) != n {
			t.Errorf("ClassName(%q) is not deterministic", c)
		}
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, c := range []string{"m1", "m2"} {
		for _, id := range []int64{0, 1, -1, 42, 1 << 53} {
			u := string(FaceUUID(c, id))
			if !uuid.MatchString(u) {
				t.Errorf("FaceUUID(%q, %d) = %q, not a version-5 UUID", c, id, u)
			}
			if seen[u] {
				t.Errorf("FaceUUID(%q, %d) = %q, given twice", c, id, u)
			}
			seen[u] = true
			if FaceUUID(c, id) != strfmt.UUID(u) {
				t.Errorf("FaceUUID(%q, %d) is not deterministic", c, id)
			}
		}
	}
}

// TestUnreachable needs no server: nothing listens on port 1 of the
// loopback, and 192.0.2.1 (TEST-NET-1) is not routed.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:1", "192.0.2.1:8080"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		ix, err := Open(ctx, Config{
			Endpoints:  Endpoints{REST: []string{addr}},
			Collection: "unreachable",
			Dim:        8,
			Timeout:    2 * time.Second,
		})
		cancel()
		if err == nil {
			ix.Close()
			t.Fatalf("Open(%s) succeeded, want an error", addr)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "unreachable") {
			t.Errorf("Open(%s) = %v; want an error naming the node and saying it is unreachable", addr, err)
		}
		t.Logf("Open(%s) failed after %v: %v", addr, time.Since(start).Round(time.Millisecond), err)
	}
}

// cluster returns the endpoints of the test cluster named by
// GABARIT_TEST_WEAVIATE, skipping the test without it (failing instead
// when GABARIT_REQUIRE_WEAVIATE is set).
func cluster(t *testing.T) Endpoints {
	t.Helper()
	u := weaviatetest.URL(t)
	e, err := ParseURL(u)
	if err != nil {
		t.Fatalf("GABARIT_TEST_WEAVIATE: %v", err)
	}
	return e
}

// testCollection returns a fresh collection name.
func testCollection(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails
	return prefix + "-" + hex.EncodeToString(b)
}

// open opens cfg and drops the collection when t ends (through a second
// handle, since the caller may close this one).
func open(t *testing.T, cfg Config) *Index {
	t.Helper()
	ctx := context.Background()
	ix, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	cfg = ix.Config() // as opened (a test may change ix's afterwards)
	t.Cleanup(func() {
		admin, err := Open(ctx, cfg)
		if err != nil {
			t.Errorf("Open to drop %s: %v", ix.Class(), err)
			return
		}
		defer admin.Close()
		if err := admin.Drop(ctx); err != nil {
			t.Errorf("Drop %s: %v", ix.Class(), err)
		}
	})
	return ix
}

func TestConformance(t *testing.T) {
	e := cluster(t)
	start := time.Now()
	vindextest.Run(t, vindextest.Factory{
		New: func(t *testing.T, dim int) vindex.Index {
			return open(t, Config{Endpoints: e, Collection: testCollection("conformance"), Dim: dim})
		},
		Reopen: func(t *testing.T, ix vindex.Index) vindex.Index {
			re, err := Open(context.Background(), ix.(*Index).Config())
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			return re
		},
		MinRecall: conformanceRecall,
	})
	t.Logf("the suite took %v against %s", time.Since(start).Round(time.Second), e)
}

// TestRotation checks that with a rotation the vectors Weaviate stores are
// not the templates, while searches find what exact search on the
// templates finds, as well as without the rotation.
func TestRotation(t *testing.T) {
	e := cluster(t)
	const (
		dim      = 64
		n        = 3000
		nQueries = 100
		k        = 10
	)
	ctx := context.Background()
	rot, err := rotate.New(rotate.NewSecret(), dim)
	if err != nil {
		t.Fatal(err)
	}
	rotated := open(t, Config{Endpoints: e, Collection: testCollection("rotated"), Dim: dim, Transform: rot.Apply, TransformID: "test"})
	defer rotated.Close()
	plain := open(t, Config{Endpoints: e, Collection: testCollection("plain"), Dim: dim})
	defer plain.Close()
	exact := flat.New(dim)
	defer exact.Close()

	r := mrand.New(mrand.NewPCG(7, 8))
	ids := make([]int64, n)
	vecs := make([][]float32, n)
	for i := range ids {
		ids[i] = int64(i + 1)
		vecs[i] = vindextest.RandUnit(r, dim)
	}
	for _, ix := range []vindex.Index{rotated, plain, exact} {
		if err := ix.Add(ctx, ids, vecs); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}

	// What Weaviate stores is R·v, not v.
	c := rotated.nodes[rotated.cur.Load()]
	match, same := 0, 0
	for i := range 20 {
		objs, err := c.Data().ObjectsGetter().WithClassName(rotated.Class()).WithID(string(FaceUUID(rotated.Config().Collection, ids[i]))).WithVector().Do(ctx)
		if err != nil || len(objs) != 1 {
			t.Fatalf("read back object %d: %d objects, %v", ids[i], len(objs), err)
		}
		stored := []float32(objs[0].Vector)
		if len(stored) != dim {
			t.Fatalf("stored vector of %d has length %d", ids[i], len(stored))
		}
		want := make([]float32, dim)
		rot.Apply(want, vecs[i])
		for j := range dim {
			if math.Abs(float64(stored[j]-vecs[i][j])) < 1e-3 {
				same++
			}
			if math.Abs(float64(stored[j]-want[j])) < 1e-4 {
				match++
			}
		}
	}
	if same > 20*dim/20 {
		t.Errorf("%d of %d stored coordinates within 1e-3 of the template's", same, 20*dim)
	}
	if match != 20*dim {
		t.Errorf("only %d of %d stored coordinates are those of the rotated template", match, 20*dim)
	}

	// Recall against exact search on the templates, with and without rotation.
	recall := func(ix vindex.Index) float64 {
		r := mrand.New(mrand.NewPCG(9, 10))
		found := 0
		for range nQueries {
			q := vindextest.RandUnit(r, dim)
			want, err := exact.Search(ctx, q, k, -2)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ix.Search(ctx, q, k, -2)
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			score := map[int64]float32{}
			for _, h := range want {
				score[h.ID] = h.Score
			}
			for _, h := range got {
				if s, ok := score[h.ID]; ok {
					found++
					if math.Abs(float64(s-h.Score)) > 1e-4 {
						t.Errorf("id %d scored %.6f, exact search gives %.6f", h.ID, h.Score, s)
					}
				}
			}
		}
		return float64(found) / (nQueries * k)
	}
	rr, rp := recall(rotated), recall(plain)
	t.Logf("recall@%d on %d vectors of dimension %d: %.4f with the rotation, %.4f without", k, n, dim, rr, rp)
	if rr < conformanceRecall || math.Abs(rr-rp) > 0.02 {
		t.Errorf("recall@%d %.4f with the rotation, %.4f without: want ≥ %.2f and about the same", k, rr, rp, conformanceRecall)
	}
	// A query equal to a template finds it first, with score ≈ 1.
	for i := range 20 {
		got, err := rotated.Search(ctx, vecs[i], 1, 0.99)
		if err != nil || len(got) != 1 || got[0].ID != ids[i] {
			t.Fatalf("Search(template of %d) = %v, %v", ids[i], got, err)
		}
	}
}

// TestRefusesOtherCollection opens a collection with another dimension,
// model record, transform or compression, and a class gabarit did not
// create.
func TestRefusesOtherCollection(t *testing.T) {
	e := cluster(t)
	ctx := context.Background()
	name := testCollection("refuse")
	base := Config{Endpoints: e, Collection: name, Dim: 16, TransformID: "k1"}
	ix := open(t, base)
	defer ix.Close()
	if err := ix.Add(ctx, []int64{1}, [][]float32{vindextest.RandUnit(mrand.New(mrand.NewPCG(1, 1)), 16)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"dimension", func(c *Config) { c.Dim = 32 }, "was created for model"},
		{"transform", func(c *Config) { c.TransformID = "k2" }, "another vector rotation key"},
		{"no transform", func(c *Config) { c.TransformID = "" }, "another vector rotation key"},
		{"compression", func(c *Config) { c.Compression = CompressionBQ }, `uses compression "none"`},
	}
	for _, tt := range tests {
		cfg := base
		tt.edit(&cfg)
		other, err := Open(ctx, cfg)
		if err == nil {
			other.Close()
			t.Errorf("%s: Open succeeded, want an error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), ix.Class()) {
			t.Errorf("%s: Open = %v; want an error naming %s and containing %q", tt.name, err, ix.Class(), tt.want)
		}
	}
	// The same configuration opens it again, with its data.
	again, err := Open(ctx, base)
	if err != nil {
		t.Fatalf("Open with the same configuration: %v", err)
	}
	defer again.Close()
	if n, err := again.Len(ctx); err != nil || n != 1 {
		t.Errorf("Len of the reopened collection = %d, %v; want 1", n, err)
	}

	// A class with the same name that gabarit did not create.
	foreign := testCollection("foreign")
	c := ix.nodes[ix.cur.Load()]
	cls := ix.newClass(meta{}, 1)
	cls.Class = ClassName(foreign)
	cls.Description = "someone else's"
	if err := c.Schema().ClassCreator().WithClass(cls).Do(ctx); err != nil {
		t.Fatalf("create a foreign class: %v", clientCause(err))
	}
	t.Cleanup(func() {
		if err := c.Schema().ClassDeleter().WithClassName(cls.Class).Do(ctx); err != nil {
			t.Errorf("drop %s: %v", cls.Class, clientCause(err))
		}
	})
	if other, err := Open(ctx, Config{Endpoints: e, Collection: foreign, Dim: 16}); err == nil {
		other.Close()
		t.Error("Open of a class gabarit did not create succeeded")
	} else if !strings.Contains(err.Error(), "not created by gabarit") {
		t.Errorf("Open of a foreign class = %v; want 'not created by gabarit'", err)
	}
}

// TestFailover lists a dead address before the live ones: Open refuses it
// (a node missing at start), and an index whose current node dies moves on
// to the next one.
func TestFailover(t *testing.T) {
	e := cluster(t)
	ctx := context.Background()
	dead := Endpoints{REST: append([]string{"127.0.0.1:1"}, e.REST...)}
	if len(e.GRPC) > 0 {
		dead.GRPC = append([]string{"127.0.0.1:2"}, e.GRPC...)
	}
	_, err := Open(ctx, Config{Endpoints: dead, Collection: testCollection("failover"), Dim: 8, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Open with a dead node = %v; want an error naming 127.0.0.1:1", err)
	}

	ix := open(t, Config{Endpoints: e, Collection: testCollection("failover"), Dim: 8, Timeout: 5 * time.Second})
	defer ix.Close()
	// Put a client of a dead node first, as the current one.
	wc := wv.Config{Host: "127.0.0.1:1", Scheme: "http", Timeout: 5 * time.Second}
	if len(e.GRPC) > 0 {
		wc.GrpcConfig = &wvgrpc.Config{Host: "127.0.0.1:2"}
	}
	deadClient, err := newClient(wc)
	if err != nil {
		t.Fatal(err)
	}
	ix.nodes = append([]*wv.Client{deadClient}, ix.nodes...)
	ix.cfg.Endpoints.REST = append([]string{"127.0.0.1:1"}, ix.cfg.Endpoints.REST...)
	if len(ix.cfg.Endpoints.GRPC) > 0 {
		ix.cfg.Endpoints.GRPC = append([]string{"127.0.0.1:2"}, ix.cfg.Endpoints.GRPC...)
	}
	ix.cur.Store(0)
	r := mrand.New(mrand.NewPCG(3, 3))
	v := vindextest.RandUnit(r, 8)
	if err := ix.Add(ctx, []int64{5}, [][]float32{v}); err != nil {
		t.Fatalf("Add with the current node dead: %v", err)
	}
	if got := ix.cur.Load(); got != 1 {
		t.Errorf("after a connection error the index uses node %d, want 1", got)
	}
	hits, err := ix.Search(ctx, v, 1, 0.5)
	if err != nil || !slices.Equal(hits, []vindex.Hit{{ID: 5, Score: hits0(hits)}}) {
		t.Errorf("Search after failover = %v, %v; want id 5", hits, err)
	}
}

func hits0(h []vindex.Hit) float32 {
	if len(h) == 0 {
		return 0
	}
	return h[0].Score
}

// TestDeleteRefusedWhenNodeMissing: Weaviate resolves ALL against the
// nodes it can reach, so a delete while a node is gone would succeed
// without reaching that node's replicas. Delete must refuse instead (here
// the index is told of a node the cluster does not list).
func TestDeleteRefusedWhenNodeMissing(t *testing.T) {
	e := cluster(t)
	ctx := context.Background()
	ix := open(t, Config{Endpoints: e, Collection: testCollection("missing"), Dim: 8})
	defer ix.Close()
	v := vindextest.RandUnit(mrand.New(mrand.NewPCG(4, 4)), 8)
	if err := ix.Add(ctx, []int64{1}, [][]float32{v}); err != nil {
		t.Fatal(err)
	}
	ix.members = append(slices.Clone(ix.members), "node-gone")
	err := ix.Delete(ctx, []int64{1})
	if err == nil || !strings.Contains(err.Error(), "cluster node missing: node-gone") || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("Delete with a node missing = %v; want an error naming node-gone and asking to retry", err)
	}
	if hits, err := ix.Search(ctx, v, 1, 0.5); err != nil || len(hits) != 1 {
		t.Fatalf("Search after the refused Delete = %v, %v; want the face still there (nothing deleted)", hits, err)
	}
	// At a lower DeleteConsistency the operator chose otherwise: no check.
	ix.cfg.DeleteConsistency = Quorum
	if err := ix.Delete(ctx, []int64{1}); err != nil {
		t.Fatalf("Delete at QUORUM: %v", err)
	}
	if hits, err := ix.Search(ctx, v, 1, 0.5); err != nil || len(hits) != 0 {
		t.Fatalf("Search after Delete = %v, %v; want no hits", hits, err)
	}
}

// TestFinalizersStillRun: the clients Open creates, used or not, must not
// stop the process's finalizers (see liveClients).
func TestFinalizersStillRun(t *testing.T) {
	for range 3 {
		if ix, err := Open(context.Background(), Config{Endpoints: Endpoints{REST: []string{"127.0.0.1:1"}}, Collection: "x", Dim: 8}); err == nil {
			ix.Close()
			t.Fatal("Open(127.0.0.1:1) succeeded")
		}
	}
	runtime.GC()
	runtime.GC()
	done := make(chan bool, 1)
	x := new([64]byte)
	runtime.SetFinalizer(x, func(*[64]byte) { done <- true })
	x = nil
	_ = x
	runtime.GC()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a finalizer did not run within 10 s of a GC: the finalizer goroutine is blocked")
	}
}
