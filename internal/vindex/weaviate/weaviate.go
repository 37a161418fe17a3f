package weaviate

import (
	"cmp"
	"context"
	"crypto/sha1" //nolint:gosec // UUIDv5 is defined with SHA-1; it names objects, it protects nothing
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-openapi/strfmt"
	wv "github.com/weaviate/weaviate-go-client/v5/weaviate"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/fault"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/graphql"
	wvgrpc "github.com/weaviate/weaviate-go-client/v5/weaviate/grpc"
	"github.com/weaviate/weaviate/entities/models"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"gabarit/internal/vindex"
)

var _ vindex.Index = (*Index)(nil)

// Consistency levels for Config's WriteConsistency, ReadConsistency and
// DeleteConsistency.
const (
	One    = "ONE"
	Quorum = "QUORUM"
	All    = "ALL"
)

// Compression modes for Config.Compression: none keeps the float32
// vectors in memory; rq (rotational quantisation, 8 bits), pq (product
// quantisation) and bq (binary quantisation) keep compressed codes and
// rescore the candidates with the full vectors read from disk.
const (
	CompressionNone = "none"
	CompressionRQ   = "rq"
	CompressionPQ   = "pq"
	CompressionBQ   = "bq"
)

// Default HNSW parameters (see doc.go for how they were chosen).
const (
	DefaultEf             = 128
	DefaultEfConstruction = 128
	DefaultMaxConnections = 32
)

const (
	// chunkSize is how many objects one batch request carries.
	chunkSize = 500
	// tieMargin is how many more hits Search asks for than it returns, so
	// that equal scores at the cut are ordered by id (see Search).
	tieMargin = 8
	// maxID bounds the face ids: Weaviate's REST API carries integer
	// properties as JSON numbers, read back as float64.
	maxID = 1 << 53
	// descPrefix starts the description gabarit gives its collections.
	descPrefix = "gabarit face templates: "
	// faceIDProp is the property holding the face id.
	faceIDProp = "face_id"
	// defaultTimeout bounds one request when Config.Timeout is zero.
	defaultTimeout = 30 * time.Second
)

// Config describes the collection an Index works on.
type Config struct {
	// Endpoints are the cluster's nodes (see ParseURL). Required.
	Endpoints Endpoints

	// Collection names the data: the model id of the templates. One
	// collection per model; the Weaviate class name is derived from it
	// (ClassName). Required.
	Collection string

	// Dim is the dimension of the vectors. Required.
	Dim int

	// Shards is the number of shards of a new collection; zero means the
	// number of nodes in the cluster. Ignored for an existing collection.
	Shards int

	// Replicas is the replication factor of a new collection; zero means
	// min(2, nodes). Ignored for an existing collection.
	Replicas int

	// WriteConsistency and ReadConsistency are the consistency levels of
	// Add and of Search (One, Quorum or All; empty means Quorum).
	WriteConsistency, ReadConsistency string

	// DeleteConsistency is the consistency level of Delete; empty means
	// All: an erasure must reach every replica, and a Delete that cannot
	// returns an error so that the caller retries.
	DeleteConsistency string

	// Compression is the vector compression of a new collection
	// (CompressionNone, RQ, PQ or BQ; empty means none). An existing
	// collection created with another one is refused.
	Compression string

	// Transform, when not nil, is applied to every vector before it is
	// sent (stored vectors and queries alike): the secret rotation of
	// package rotate. It must preserve dot products. TransformID is a
	// public fingerprint of it, recorded in the collection so that a
	// collection built with another transform is refused instead of
	// giving wrong answers.
	Transform   func(dst, src []float32)
	TransformID string

	// HNSW parameters of a new collection; zero means the defaults above.
	Ef, EfConstruction, MaxConnections int

	// Timeout bounds each request to a node; zero means 30 s.
	Timeout time.Duration
}

// meta is what gabarit records in the description of its collections.
type meta struct {
	Model       string `json:"model"`
	Dim         int    `json:"dim"`
	Transform   string `json:"transform"`
	Compression string `json:"compression"`
}

// Index is a vindex.Index over one Weaviate collection. It is safe for
// concurrent use.
type Index struct {
	cfg      Config
	class    string
	replicas int64    // replication factor of the collection
	members  []string // names of the cluster's nodes at Open, sorted

	nodes   []*wv.Client // one client per endpoint, in cfg.Endpoints order
	http    []*http.Client
	cur     atomic.Int32 // index in nodes of the node in use
	closeMu sync.RWMutex // held for reading by operations, for writing by Close
	closed  bool
}

// ClassName returns the Weaviate class name of collection: "Gabarit_", the
// collection with every character outside [A-Za-z0-9] replaced by '_'
// (truncated to 64), '_' and 8 hex digits of its SHA-256, so that two
// collections never share a class.
func ClassName(collection string) string {
	var b strings.Builder
	b.WriteString("Gabarit_")
	for i, r := range collection {
		if i >= 64 {
			break
		}
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(collection))
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(sum[:4]))
	return b.String()
}

// uuidNamespace is the UUIDv5 namespace of face objects (itself the UUIDv5
// of "gabarit.face" in the URL namespace, fixed forever).
var uuidNamespace = [16]byte{0x4e, 0x1d, 0x8e, 0x3c, 0x2a, 0x0b, 0x5f, 0x61, 0x9b, 0x7d, 0x52, 0xc4, 0x0e, 0x93, 0xa8, 0x17}

// FaceUUID returns the object id of face id in collection: a UUIDv5
// (SHA-1 of a fixed namespace, the collection and the decimal id), so
// that adding a face twice replaces it and deleting needs no lookup.
func FaceUUID(collection string, id int64) strfmt.UUID {
	h := sha1.New() //nolint:gosec // see the import
	h.Write(uuidNamespace[:])
	h.Write([]byte(collection))
	h.Write([]byte{0})
	fmt.Fprintf(h, "%d", id)
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	x := hex.EncodeToString(u[:])
	return strfmt.UUID(x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:])
}

func (c *Config) fill() error {
	if len(c.Endpoints.REST) == 0 {
		return errors.New("weaviate: no node address")
	}
	if len(c.Endpoints.GRPC) != 0 && len(c.Endpoints.GRPC) != len(c.Endpoints.REST) {
		return fmt.Errorf("weaviate: %d gRPC addresses for %d nodes", len(c.Endpoints.GRPC), len(c.Endpoints.REST))
	}
	if c.Collection == "" {
		return errors.New("weaviate: no collection name")
	}
	if c.Dim < 1 || c.Dim > 65536 {
		return fmt.Errorf("weaviate: dimension %d not in [1, 65536]", c.Dim)
	}
	for _, p := range []*string{&c.WriteConsistency, &c.ReadConsistency, &c.DeleteConsistency} {
		*p = strings.ToUpper(*p)
	}
	c.WriteConsistency = cmp.Or(c.WriteConsistency, Quorum)
	c.ReadConsistency = cmp.Or(c.ReadConsistency, One) // see the package documentation
	c.DeleteConsistency = cmp.Or(c.DeleteConsistency, All)
	for _, l := range []string{c.WriteConsistency, c.ReadConsistency, c.DeleteConsistency} {
		if l != One && l != Quorum && l != All {
			return fmt.Errorf("weaviate: consistency level %q is not ONE, QUORUM or ALL", l)
		}
	}
	c.Compression = cmp.Or(strings.ToLower(c.Compression), CompressionNone)
	switch c.Compression {
	case CompressionNone, CompressionRQ, CompressionPQ, CompressionBQ:
	default:
		return fmt.Errorf("weaviate: compression %q is not none, rq, pq or bq", c.Compression)
	}
	if c.Shards < 0 || c.Replicas < 0 || c.Ef < 0 || c.EfConstruction < 0 || c.MaxConnections < 0 {
		return errors.New("weaviate: negative shard count, replication factor or HNSW parameter")
	}
	c.Ef = cmp.Or(c.Ef, DefaultEf)
	c.EfConstruction = cmp.Or(c.EfConstruction, DefaultEfConstruction)
	c.MaxConnections = cmp.Or(c.MaxConnections, DefaultMaxConnections)
	c.Timeout = cmp.Or(c.Timeout, defaultTimeout)
	return nil
}

// Open connects to the cluster cfg.Endpoints names, checks that every node
// answers and is healthy, and opens cfg.Collection, creating it if absent.
// An existing collection created for another model, dimension, transform
// or compression, or not by gabarit, is refused with an error that says so.
func Open(ctx context.Context, cfg Config) (*Index, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	ix, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	n, err := ix.checkCluster(ctx)
	if err != nil {
		ix.release()
		return nil, err
	}
	if err := ix.openClass(ctx, n); err != nil {
		ix.release()
		return nil, err
	}
	return ix, nil
}

// connect makes the clients of cfg's nodes (filled), sending no request yet.
func connect(cfg Config) (*Index, error) {
	ix := &Index{cfg: cfg, class: ClassName(cfg.Collection)}
	for i, addr := range cfg.Endpoints.REST {
		hc := &http.Client{Timeout: cfg.Timeout}
		wc := wv.Config{Host: addr, Scheme: "http", ConnectionClient: hc, Timeout: cfg.Timeout}
		if len(cfg.Endpoints.GRPC) > 0 {
			wc.GrpcConfig = &wvgrpc.Config{Host: cfg.Endpoints.GRPC[i]}
		}
		c, err := newClient(wc) // StartupTimeout 0: no request yet
		if err != nil {
			ix.release()
			return nil, fmt.Errorf("weaviate node %s: %w", addr, err)
		}
		ix.nodes = append(ix.nodes, c)
		ix.http = append(ix.http, hc)
	}
	return ix, nil
}

// liveClients keeps every client this package creates reachable for the
// life of the process. The client library (v5.5.0) puts a finalizer on its
// REST connection that sends on a channel nobody reads: once a connection
// is garbage-collected, that finalizer blocks the runtime's finalizer
// goroutine for good, and no finalizer of the process runs again (see
// TestFinalizersStillRun). A client that is never collected never runs
// it; the cost is a few kilobytes per Open.
var liveClients struct {
	sync.Mutex
	c []*wv.Client
}

// newClient returns a client for cfg, kept in liveClients.
func newClient(cfg wv.Config) (*wv.Client, error) {
	c, err := wv.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	liveClients.Lock()
	liveClients.c = append(liveClients.c, c)
	liveClients.Unlock()
	return c, nil
}

// checkCluster probes every endpoint, then asks the first one for the
// cluster's node list; it returns the number of nodes, or an error naming
// the node that is unreachable or unhealthy.
func (ix *Index) checkCluster(ctx context.Context) (int, error) {
	first := -1
	var down []string
	for i, addr := range ix.cfg.Endpoints.REST {
		if err := ix.ready(ctx, i); err != nil {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("weaviate node %s: %w", addr, ctx.Err())
			}
			down = append(down, fmt.Sprintf("%s (%v)", addr, err))
			continue
		}
		if first < 0 {
			first = i
		}
	}
	if len(down) > 0 {
		return 0, fmt.Errorf("weaviate: node unreachable or not ready: %s; start it, or remove it from the URL", strings.Join(down, "; "))
	}
	ix.cur.Store(int32(first))
	var names []string
	err := ix.do(ctx, "read the cluster's nodes", func(ctx context.Context, c *wv.Client) error {
		var err error
		names, err = nodeNames(ctx, c)
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(names) < len(ix.cfg.Endpoints.REST) {
		return 0, fmt.Errorf("weaviate %s: the cluster has %d nodes (%s), the URL names %d: a node has not joined",
			ix.cfg.Endpoints.REST[first], len(names), strings.Join(names, ", "), len(ix.cfg.Endpoints.REST))
	}
	ix.members = names
	return len(names), nil
}

// nodeNames returns the names of the cluster's nodes, or an error naming
// those that are not healthy.
func nodeNames(ctx context.Context, c *wv.Client) ([]string, error) {
	st, err := c.Cluster().NodesStatusGetter().WithOutput("minimal").Do(ctx)
	if err != nil {
		return nil, err
	}
	var names, bad []string
	for _, n := range st.Nodes {
		names = append(names, n.Name)
		if n.Status == nil || *n.Status != models.NodeStatusStatusHEALTHY {
			s := "no status"
			if n.Status != nil {
				s = *n.Status
			}
			bad = append(bad, fmt.Sprintf("%s is %s", n.Name, s))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("cluster node not healthy: %s", strings.Join(bad, ", "))
	}
	slices.Sort(names)
	return names, nil
}

// checkMembers returns an error unless every node seen at Open is listed
// and healthy. Weaviate resolves a consistency level against the replicas
// it can reach: with a node gone, ALL means all the others. A delete must
// reach the replicas on every node, so Delete checks this before and after.
func (ix *Index) checkMembers(ctx context.Context) error {
	return ix.do(ctx, "check the cluster's nodes", func(ctx context.Context, c *wv.Client) error {
		names, err := nodeNames(ctx, c)
		if err != nil {
			return err
		}
		var missing []string
		for _, m := range ix.members {
			if !slices.Contains(names, m) {
				missing = append(missing, m)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("cluster node missing: %s", strings.Join(missing, ", "))
		}
		return nil
	})
}

// ready checks that node i answers /v1/.well-known/ready.
func (ix *Index) ready(ctx context.Context, i int) error {
	rctx, cancel := context.WithTimeout(ctx, ix.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+ix.cfg.Endpoints.REST[i]+"/v1/.well-known/ready", nil)
	if err != nil {
		return err
	}
	resp, err := ix.http[i].Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // drain for reuse; the body says nothing more
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// openClass checks the class if it exists, else creates it.
func (ix *Index) openClass(ctx context.Context, nodes int) error {
	want := meta{Model: ix.cfg.Collection, Dim: ix.cfg.Dim, Transform: ix.cfg.TransformID, Compression: ix.cfg.Compression}
	exists := false
	err := ix.do(ctx, "look up the collection", func(ctx context.Context, c *wv.Client) error {
		var err error
		exists, err = c.Schema().ClassExistenceChecker().WithClassName(ix.class).Do(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if !exists {
		err := ix.do(ctx, "create the collection", func(ctx context.Context, c *wv.Client) error {
			return c.Schema().ClassCreator().WithClass(ix.newClass(want, nodes)).Do(ctx)
		})
		if err == nil {
			return nil
		}
		// Another instance may have created it meanwhile: check it below.
		if ctx.Err() != nil {
			return err
		}
		createErr := err
		err = ix.do(ctx, "look up the collection", func(ctx context.Context, c *wv.Client) error {
			var err error
			exists, err = c.Schema().ClassExistenceChecker().WithClassName(ix.class).Do(ctx)
			return err
		})
		if err != nil || !exists {
			return createErr
		}
	}
	var class *models.Class
	err = ix.do(ctx, "read the collection", func(ctx context.Context, c *wv.Client) error {
		var err error
		class, err = c.Schema().ClassGetter().WithClassName(ix.class).Do(ctx)
		return err
	})
	if err != nil {
		return err
	}
	if class.ReplicationConfig != nil {
		ix.replicas = class.ReplicationConfig.Factor
	}
	return ix.checkClass(class, want)
}

// newClass returns the definition of a new collection.
func (ix *Index) newClass(m meta, nodes int) *models.Class {
	desc, err := json.Marshal(m)
	if err != nil {
		panic(err) // a struct of strings and ints always marshals
	}
	vic := map[string]any{
		"distance":       "cosine",
		"ef":             ix.cfg.Ef,
		"efConstruction": ix.cfg.EfConstruction,
		"maxConnections": ix.cfg.MaxConnections,
	}
	switch ix.cfg.Compression {
	case CompressionNone:
		// Whatever default quantisation the server is configured with.
		vic["skipDefaultQuantization"] = true
	case CompressionRQ:
		vic["rq"] = map[string]any{"enabled": true, "bits": 8}
	case CompressionPQ:
		vic["pq"] = map[string]any{"enabled": true}
	case CompressionBQ:
		vic["bq"] = map[string]any{"enabled": true}
	}
	shards := cmp.Or(ix.cfg.Shards, nodes)
	replicas := cmp.Or(ix.cfg.Replicas, min(2, nodes))
	no := false
	yes := true
	return &models.Class{
		Class:             ix.class,
		Description:       descPrefix + string(desc),
		Vectorizer:        "none",
		VectorIndexType:   "hnsw",
		VectorIndexConfig: vic,
		ShardingConfig:    map[string]any{"desiredCount": shards},
		ReplicationConfig: &models.ReplicationConfig{
			Factor:           int64(replicas),
			AsyncEnabled:     true,
			DeletionStrategy: models.ReplicationConfigDeletionStrategyDeleteOnConflict,
		},
		Properties: []*models.Property{{
			Name:              faceIDProp,
			Description:       "gabarit face id",
			DataType:          []string{"int"},
			IndexFilterable:   &yes,
			IndexSearchable:   &no,
			IndexRangeFilters: &no,
		}},
	}
}

// checkClass refuses a collection that gabarit did not create for this
// model, dimension, transform and compression.
func (ix *Index) checkClass(class *models.Class, want meta) error {
	where := fmt.Sprintf("weaviate collection %s", ix.class)
	raw, ok := strings.CutPrefix(class.Description, descPrefix)
	var got meta
	if !ok || json.Unmarshal([]byte(raw), &got) != nil {
		return fmt.Errorf("%s exists but was not created by gabarit: drop it or choose another model id", where)
	}
	if got.Model != want.Model || got.Dim != want.Dim {
		return fmt.Errorf("%s was created for model %q / dimension %d, not model %q / dimension %d: it cannot be reused", where, got.Model, got.Dim, want.Model, want.Dim)
	}
	if got.Transform != want.Transform {
		return fmt.Errorf("%s was created with another vector rotation key (by another store sharing this cluster, or before "+
			"the store was restored from a copy): give this store another cluster, or run `gabarit reindex --new-rotation` with this "+
			"store to drop the collection and refill it", where)
	}
	if got.Compression != want.Compression {
		return fmt.Errorf("%s uses compression %q, the configuration asks for %q: set it back, or drop the collection and reindex", where, got.Compression, want.Compression)
	}
	if vic, ok := class.VectorIndexConfig.(map[string]any); ok {
		if d, _ := vic["distance"].(string); d != "" && d != "cosine" {
			return fmt.Errorf("%s uses distance %q, not cosine", where, d)
		}
	}
	hasID := false
	for _, p := range class.Properties {
		if p.Name == faceIDProp && slices.Equal(p.DataType, []string{"int"}) {
			hasID = true
		}
	}
	if !hasID {
		return fmt.Errorf("%s has no int property %s", where, faceIDProp)
	}
	return nil
}

// Class returns the Weaviate class name of the collection.
func (ix *Index) Class() string { return ix.class }

// Config returns the configuration the index was opened with, defaults
// filled in.
func (ix *Index) Config() Config { return ix.cfg }

// Dim returns the dimension of the vectors.
func (ix *Index) Dim() int { return ix.cfg.Dim }

// enter checks that the index is open and holds it open until the
// returned function is called.
func (ix *Index) enter() (func(), error) {
	ix.closeMu.RLock()
	if ix.closed {
		ix.closeMu.RUnlock()
		return nil, fmt.Errorf("weaviate collection %s: %w", ix.class, vindex.ErrClosed)
	}
	return ix.closeMu.RUnlock, nil
}

// do runs fn against the current node, with the request timeout. On a
// connection error it moves on to the next node and runs fn once more.
func (ix *Index) do(ctx context.Context, what string, fn func(ctx context.Context, c *wv.Client) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("weaviate collection %s: %s: %w", ix.class, what, err)
	}
	i := int(ix.cur.Load())
	err := ix.try(ctx, i, fn)
	if err != nil && ctx.Err() == nil && len(ix.nodes) > 1 && isConnErr(err) {
		next := (i + 1) % len(ix.nodes)
		ix.cur.CompareAndSwap(int32(i), int32(next))
		first := ix.wrap(i, what, ctx, err)
		if err = ix.try(ctx, next, fn); err == nil {
			return nil
		}
		return fmt.Errorf("%w (after %v)", ix.wrap(next, what, ctx, err), first)
	}
	if err != nil {
		return ix.wrap(i, what, ctx, err)
	}
	return nil
}

func (ix *Index) try(ctx context.Context, i int, fn func(ctx context.Context, c *wv.Client) error) error {
	rctx, cancel := context.WithTimeout(ctx, ix.cfg.Timeout)
	defer cancel()
	return fn(rctx, ix.nodes[i])
}

// wrap names the node and the collection in err, turns the client's error
// type into one that unwraps to its cause, and wraps ctx.Err() when the
// context ended.
func (ix *Index) wrap(i int, what string, ctx context.Context, err error) error {
	err = clientCause(err)
	prefix := fmt.Sprintf("weaviate %s, collection %s: %s", ix.cfg.Endpoints.REST[i], ix.class, what)
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w (%v)", prefix, ctx.Err(), err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// clientCause returns the cause a *fault.WeaviateClientError carries (it
// has no Unwrap method), or the status and message of an unexpected reply.
func clientCause(err error) error {
	var ce *fault.WeaviateClientError
	if !errors.As(err, &ce) {
		return err
	}
	if ce.DerivedFromError != nil {
		return ce.DerivedFromError
	}
	msg := ce.Msg
	if len(msg) > 400 {
		msg = msg[:400] + "…"
	}
	return fmt.Errorf("status %d: %s", ce.StatusCode, strings.TrimSpace(msg))
}

// isConnErr reports whether err means the node could not be reached (as
// opposed to a reply saying no).
func isConnErr(err error) bool {
	err = clientCause(err)
	if errors.Is(err, context.Canceled) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if s, ok := status.FromError(err); ok && (s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded) {
		return true
	}
	return false
}

// transform returns the vector to send for v.
func (ix *Index) transform(v []float32) []float32 {
	out := make([]float32, len(v))
	if ix.cfg.Transform == nil {
		copy(out, v)
	} else {
		ix.cfg.Transform(out, v)
	}
	return out
}

// Add stores vecs[i] under ids[i], replacing any vector the id had, in
// batches of 500 sent one after the other at WriteConsistency. The vectors
// go through Transform. Ids must lie within ±2^53.
func (ix *Index) Add(ctx context.Context, ids []int64, vecs [][]float32) error {
	done, err := ix.enter()
	if err != nil {
		return err
	}
	defer done()
	if len(ids) != len(vecs) {
		return fmt.Errorf("weaviate collection %s: add: %d ids for %d vectors", ix.class, len(ids), len(vecs))
	}
	for i, v := range vecs {
		if len(v) != ix.cfg.Dim {
			return fmt.Errorf("weaviate collection %s: add: vector %d: %w: %d, want %d", ix.class, i, vindex.ErrDim, len(v), ix.cfg.Dim)
		}
		if ids[i] > maxID || ids[i] < -maxID {
			return fmt.Errorf("weaviate collection %s: add: id %d outside ±2^53", ix.class, ids[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("weaviate collection %s: add: %w", ix.class, err)
	}
	// The later vector of an id given twice wins: send only that one (a
	// batch's objects are written in no particular order).
	last := make(map[int64]int, len(ids))
	for i, id := range ids {
		last[id] = i
	}
	objs := make([]*models.Object, 0, len(last))
	for i, id := range ids {
		if last[id] != i {
			continue
		}
		objs = append(objs, &models.Object{
			Class:      ix.class,
			ID:         FaceUUID(ix.cfg.Collection, id),
			Vector:     models.C11yVector(ix.transform(vecs[i])),
			Properties: map[string]any{faceIDProp: id},
		})
	}
	for chunk := range slices.Chunk(objs, chunkSize) {
		var res []models.ObjectsGetResponse
		err := ix.do(ctx, "add", func(ctx context.Context, c *wv.Client) error {
			var err error
			res, err = c.Batch().ObjectsBatcher().WithObjects(chunk...).WithConsistencyLevel(ix.cfg.WriteConsistency).Do(ctx)
			return err
		})
		if err != nil {
			return err
		}
		failed, firstErr := 0, ""
		for _, r := range res {
			if r.Result != nil && r.Result.Errors != nil && len(r.Result.Errors.Error) > 0 {
				if failed == 0 {
					firstErr = r.Result.Errors.Error[0].Message
				}
				failed++
			}
		}
		if failed > 0 {
			return fmt.Errorf("weaviate collection %s: add: %d of %d objects failed (first: %s); retry the call", ix.class, failed, len(chunk), firstErr)
		}
		if len(res) != len(chunk) {
			return fmt.Errorf("weaviate collection %s: add: %d results for %d objects; retry the call", ix.class, len(res), len(chunk))
		}
	}
	return nil
}

// Delete removes ids, in batches of 500, at DeleteConsistency (All by
// default). It returns an error when any object could not be deleted on
// every replica the level requires; the caller retries.
func (ix *Index) Delete(ctx context.Context, ids []int64) error {
	return ix.deleteAt(ctx, ids, ix.cfg.DeleteConsistency)
}

// deleteAt is Delete at consistency level.
func (ix *Index) deleteAt(ctx context.Context, ids []int64, level string) error {
	done, err := ix.enter()
	if err != nil {
		return err
	}
	defer done()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("weaviate collection %s: delete: %w", ix.class, err)
	}
	seen := make(map[int64]bool, len(ids))
	keep := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id <= maxID && id >= -maxID && !seen[id] { // others were never added
			seen[id] = true
			keep = append(keep, id)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	all := level == All
	if all {
		if err := ix.checkMembers(ctx); err != nil {
			return fmt.Errorf("delete at consistency ALL: %w; retry once every node runs", err)
		}
	}
	for chunk := range slices.Chunk(keep, chunkSize) {
		where := filters.Where().WithPath([]string{faceIDProp}).WithOperator(filters.ContainsAny).WithValueInt(chunk...)
		var res *models.BatchDeleteResponse
		err := ix.do(ctx, "delete", func(ctx context.Context, c *wv.Client) error {
			var err error
			res, err = c.Batch().ObjectsBatchDeleter().WithClassName(ix.class).WithWhere(where).
				WithOutput("minimal").WithConsistencyLevel(level).Do(ctx)
			return err
		})
		if err != nil {
			return err
		}
		if res == nil || res.Results == nil {
			return fmt.Errorf("weaviate collection %s: delete: empty reply; retry", ix.class)
		}
		if r := res.Results; r.Failed > 0 || r.Matches > r.Limit && r.Limit > 0 {
			return fmt.Errorf("weaviate collection %s: delete: %d of %d matching objects not deleted at consistency %s; retry", ix.class, r.Failed+max(r.Matches-r.Limit, 0), r.Matches, level)
		}
	}
	if all {
		// A node lost during the delete may have been left out of it.
		if err := ix.checkMembers(ctx); err != nil {
			return fmt.Errorf("delete at consistency ALL: %w; retry once every node runs", err)
		}
	}
	return nil
}

// Search returns up to k hits at least minScore, best first, ties by
// smaller id. It asks Weaviate for k+8 neighbours of the transformed query
// within the cosine distance 1-minScore, at ReadConsistency, and keeps the
// best k after sorting, so that equal scores at the cut are ordered by id.
func (ix *Index) Search(ctx context.Context, q []float32, k int, minScore float32) ([]vindex.Hit, error) {
	done, err := ix.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	if len(q) != ix.cfg.Dim {
		return nil, fmt.Errorf("weaviate collection %s: search: %w: %d, want %d", ix.class, vindex.ErrDim, len(q), ix.cfg.Dim)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("weaviate collection %s: search: %w", ix.class, err)
	}
	if k <= 0 || minScore > 1 {
		return nil, nil
	}
	tq := ix.transform(q)
	nv := (&graphql.NearVectorArgumentBuilder{}).WithVector(tq)
	if minScore > -1 {
		// A little slack: Weaviate compares in float32; the exact bound is
		// applied below to the scores it returns.
		nv = nv.WithDistance(1 - minScore + 1e-5)
	}
	limit := k + tieMargin
	var hits []vindex.Hit
	err = ix.do(ctx, "search", func(ctx context.Context, c *wv.Client) error {
		hits = hits[:0]
		if len(ix.cfg.Endpoints.GRPC) > 0 {
			res, err := c.Experimental().Search().WithCollection(ix.class).WithLimit(limit).WithNearVector(nv).
				WithConsistencyLevel(ix.cfg.ReadConsistency).WithProperties(faceIDProp).
				WithMetadata(&graphql.Metadata{Distance: true}).Do(ctx)
			if err != nil {
				return err
			}
			for _, r := range res {
				id, err := propID(r.Properties[faceIDProp])
				if err != nil {
					return err
				}
				hits = append(hits, vindex.Hit{ID: id, Score: 1 - r.Metadata.Distance})
			}
			return nil
		}
		get := c.GraphQL().Get().WithClassName(ix.class).WithLimit(limit).WithNearVector(nv).
			WithFields(graphql.Field{Name: faceIDProp}, graphql.Field{Name: "_additional", Fields: []graphql.Field{{Name: "distance"}}})
		if ix.replicas > 1 { // GraphQL knows the argument only for replicated collections
			get = get.WithConsistencyLevel(ix.cfg.ReadConsistency)
		}
		resp, err := get.Do(ctx)
		if err != nil {
			return err
		}
		if err := gqlErr(resp); err != nil {
			return err
		}
		data, _ := resp.Data["Get"].(map[string]any)
		list, _ := data[ix.class].([]any)
		for _, o := range list {
			m, _ := o.(map[string]any)
			id, err := propID(m[faceIDProp])
			if err != nil {
				return err
			}
			add, _ := m["_additional"].(map[string]any)
			d, ok := add["distance"].(float64)
			if !ok {
				return errors.New("reply without distance")
			}
			hits = append(hits, vindex.Hit{ID: id, Score: 1 - float32(d)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(hits, func(a, b vindex.Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	out := hits[:0]
	seen := make(map[int64]bool, len(hits))
	for _, h := range hits {
		if seen[h.ID] || (minScore > -1 && h.Score < minScore) {
			continue
		}
		seen[h.ID] = true
		out = append(out, h)
		if len(out) == k {
			break
		}
	}
	return out, nil
}

// propID reads a face id property as Weaviate returns it: an int64 over
// gRPC, a float64 (JSON number) over GraphQL.
func propID(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > maxID {
			return 0, fmt.Errorf("reply with face id %v, not an integer within ±2^53", x)
		}
		return int64(x), nil
	case json.Number:
		return x.Int64()
	}
	return 0, fmt.Errorf("reply with a face id of type %T", v)
}

// gqlErr returns the errors of a GraphQL reply as one error.
func gqlErr(resp *models.GraphQLResponse) error {
	if resp == nil {
		return errors.New("empty GraphQL reply")
	}
	if len(resp.Errors) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(resp.Errors))
	for _, e := range resp.Errors {
		if e != nil {
			msgs = append(msgs, e.Message)
		}
	}
	return fmt.Errorf("GraphQL: %s", strings.Join(msgs, "; "))
}

// Len returns the number of objects in the collection (an aggregate
// count, which may lag while replicas converge).
func (ix *Index) Len(ctx context.Context) (int, error) {
	done, err := ix.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	var n int
	err = ix.do(ctx, "count", func(ctx context.Context, c *wv.Client) error {
		resp, err := c.GraphQL().Aggregate().WithClassName(ix.class).
			WithFields(graphql.Field{Name: "meta", Fields: []graphql.Field{{Name: "count"}}}).Do(ctx)
		if err != nil {
			return err
		}
		if err := gqlErr(resp); err != nil {
			return err
		}
		agg, _ := resp.Data["Aggregate"].(map[string]any)
		list, _ := agg[ix.class].([]any)
		if len(list) != 1 {
			return fmt.Errorf("aggregate reply with %d groups", len(list))
		}
		m, _ := list[0].(map[string]any)
		mt, _ := m["meta"].(map[string]any)
		cnt, ok := mt["count"].(float64)
		if !ok {
			return errors.New("aggregate reply without a count")
		}
		n = int(cnt)
		return nil
	})
	return n, err
}

// Save returns an error wrapping errors.ErrUnsupported: Weaviate persists
// the collection itself.
func (ix *Index) Save(ctx context.Context, w io.Writer) error {
	return fmt.Errorf("weaviate collection %s: save: the cluster persists the index itself: %w", ix.class, errors.ErrUnsupported)
}

// Drop deletes the whole collection from the cluster (tests, reindexing
// into a new collection). The index stays open; later calls fail or find
// nothing.
func (ix *Index) Drop(ctx context.Context) error {
	done, err := ix.enter()
	if err != nil {
		return err
	}
	defer done()
	return ix.do(ctx, "drop the collection", func(ctx context.Context, c *wv.Client) error {
		return c.Schema().ClassDeleter().WithClassName(ix.class).Do(ctx)
	})
}

// Close releases the clients. It waits for the calls in progress; later
// calls return an error wrapping vindex.ErrClosed. A second Close returns
// nil.
func (ix *Index) Close() error {
	ix.closeMu.Lock()
	defer ix.closeMu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	ix.release()
	return nil
}

// release drops the clients and their idle connections. (The client
// library gives no way to close its gRPC connection; it goes with the
// client.)
func (ix *Index) release() {
	for _, hc := range ix.http {
		hc.CloseIdleConnections()
	}
	ix.nodes, ix.http = nil, nil
}
