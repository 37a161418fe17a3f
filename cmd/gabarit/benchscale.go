package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/vindex/hnsw"
	"gabarit/internal/vindex/rotate"
	"gabarit/internal/vindex/synth"
	"gabarit/internal/vindex/weaviate"
)

// scaleResult is one engine configuration measured by bench scale.
type scaleResult struct {
	Engine      string `json:"engine"`      // "hnsw" (embedded) or "weaviate"
	Compression string `json:"compression"` // none, rq, pq, bq; "int8" for the embedded index
	Params      string `json:"params"`
	Shards      int    `json:"shards,omitempty"`
	Replicas    int    `json:"replicas,omitempty"`

	ImportS     float64 `json:"import_s"`     // wall time of the build or import
	ImportRate  float64 `json:"faces_per_s"`  // faces / ImportS
	Recall      float64 `json:"recall"`       // recall@k against exact search
	RecallMatch float64 `json:"recall_match"` // of the exact top-k hits at or above the match threshold
	P50ms       float64 `json:"p50_ms"`       // single-query latency
	P99ms       float64 `json:"p99_ms"`
	QPS         float64 `json:"qps"` // with Clients concurrent clients
	Clients     int     `json:"clients"`

	// RAM per face: heap growth (embedded) or growth of the nodes' summed
	// resident memory (Weaviate), divided by the faces; RAMPerCopy divides
	// by the stored copies instead (faces × replicas).
	Retries    int     `json:"import_retries,omitempty"` // import batches sent again
	RAMPerFace float64 `json:"ram_bytes_per_face"`
	RAMPerCopy float64 `json:"ram_bytes_per_copy"`
	RSSBefore  int64   `json:"rss_before_bytes,omitempty"` // summed over the nodes
	RSSAfter   int64   `json:"rss_after_bytes,omitempty"`
	// DiskPerFace is the growth of the cluster folder (--wv-dir) per face,
	// all replicas included; zero when unknown.
	DiskPerFace float64 `json:"disk_bytes_per_face,omitempty"`
}

// scaleReport is what bench scale prints with --json.
type scaleReport struct {
	N          int           `json:"n"`
	Identities int           `json:"identities"`
	Queries    int           `json:"queries"`
	K          int           `json:"k"`
	Dim        int           `json:"dim"`
	CPUs       int           `json:"cpus"`
	LoadBefore string        `json:"load_before"` // /proc/loadavg
	LoadAfter  string        `json:"load_after"`
	Results    []scaleResult `json:"results"`
}

// benchScale is `gabarit bench scale`: the embedded hnsw index against a
// Weaviate cluster on the same calibrated synthetic faces as bench search.
func (e *cmdEnv) benchScale(ctx context.Context, args []string) error {
	fs := e.flags("bench scale", "usage: gabarit bench scale --index weaviate://HOST:PORT[,…] [--n N] [--compression none,rq] [--replicas 2] [--shards 3] [--wv-dir DIR | --wv-pids PID,…] [--json]\n\n"+
		"Generates n calibrated synthetic faces (as bench search does), builds the embedded hnsw index and,\n"+
		"for each compression, a new Weaviate collection (vectors rotated as gabarit sends them), then\n"+
		"measures import rate, recall@k against exact search, single-query p50/p99, queries/s with\n"+
		"concurrent clients and memory per face. The collections are dropped at the end unless --keep.")
	n := fs.Int("n", 100_000, "faces")
	nq := fs.Int("queries", 500, "queries (new faces of enrolled identities)")
	k := fs.Int("k", 10, "hits per query")
	perID := fs.Float64("faces-per-identity", 10, "mean faces per identity")
	seed := fs.Uint64("seed", 1, "seed of the synthetic data")
	index := fs.String("index", "", "the Weaviate cluster: weaviate://host:port[,host:port…][?grpc=…] (required)")
	comps := fs.String("compression", "none,rq", "Weaviate vector compressions to measure, comma-separated (none, rq, pq, bq)")
	replicas := fs.Int("replicas", 2, "replication factor of the Weaviate collections")
	shards := fs.Int("shards", 3, "shards of the Weaviate collections")
	wvEf := fs.Int("wv-ef", 0, "Weaviate search ef (default: the weaviate package's)")
	clients := fs.Int("clients", 8, "concurrent clients of the throughput measurement")
	workers := fs.Int("import-workers", 4, "goroutines sending import batches")
	batch := fs.Int("batch", 500, "faces per import batch")
	inflight := fs.Int("inflight", 8, "import batches queued or in flight at most (back-pressure)")
	embedded := fs.Bool("embedded", true, "also build and measure the embedded hnsw index")
	wvDir := fs.String("wv-dir", "", "the cluster folder of scripts/weaviate.sh (GABARIT_WV_DIR): node process ids from its node*.pid files, and its disk use")
	wvPids := fs.String("wv-pids", "", "the Weaviate nodes' process ids, comma-separated (instead of --wv-dir)")
	prefix := fs.String("collection", "bench-scale", "prefix of the collection names")
	keep := fs.Bool("keep", false, "keep the Weaviate collections")
	dir := fs.String("dir", "", "folder for the vector files (default: a temporary folder, removed)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	usage := func(format string, args ...any) error {
		fmt.Fprintf(e.stderr, "gabarit bench scale: "+format+"\n", args...)
		return exitError{2}
	}
	if *index == "" {
		return usage("--index is required: the Weaviate cluster, such as --index \"$(scripts/weaviate.sh url)\"")
	}
	wcfg, err := weaviate.ParseConfig(*index)
	if err != nil {
		return usage("%v", err)
	}
	compList, err := compressions(*comps)
	if err != nil {
		return usage("--compression: %v", err)
	}
	if *n < *k || *nq < 1 || *k < 1 || *replicas < 1 || *shards < 1 || *clients < 1 || *workers < 1 || *batch < 1 || *inflight < 1 {
		return usage("need --n ≥ --k ≥ 1, and --queries, --replicas, --shards, --clients, --import-workers, --batch, --inflight ≥ 1")
	}
	pids, err := nodePids(*wvPids, *wvDir)
	if err != nil {
		return usage("%v", err)
	}
	if _, err := totalRSS(pids); err != nil {
		return usage("%v", err)
	}

	// Reach the cluster before generating anything: a bad address fails fast.
	rot, err := rotate.New(rotate.NewSecret(), synth.Calibrated().Dim)
	if err != nil {
		return err
	}
	rotID := sha256.Sum256([]byte(fmt.Sprint("bench scale ", time.Now().UnixNano())))
	run := time.Now().Unix()
	open := func(comp string) (*weaviate.Index, error) {
		c := wcfg
		c.Collection = fmt.Sprintf("%s-%s-%d", *prefix, comp, run)
		c.Dim = rot.Dim()
		c.Shards, c.Replicas, c.Compression = *shards, *replicas, comp
		c.Transform, c.TransformID = rot.Apply, hex.EncodeToString(rotID[:8])
		if *wvEf > 0 {
			c.Ef = *wvEf
		}
		ix, err := weaviate.Open(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("gabarit bench scale: %w (is the cluster running? scripts/weaviate.sh status)", err)
		}
		return ix, nil
	}
	var opened []*weaviate.Index
	defer func() {
		for _, ix := range opened {
			if !*keep {
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				if err := ix.Drop(dctx); err != nil {
					e.progress("could not drop collection %s: %v", ix.Class(), err)
				}
				cancel()
			}
			ix.Close()
		}
	}()
	first, err := open(compList[0])
	if err != nil {
		return err
	}
	opened = append(opened, first)

	rep := scaleReport{N: *n, Queries: *nq, K: *k, CPUs: runtime.NumCPU(), LoadBefore: loadAvg()}
	b, cleanup, err := e.prepareSearchBench(ctx, "scale", *n, *nq, *k, *dir, *seed, *perID)
	defer cleanup()
	if err != nil {
		return err
	}
	defer b.base.Close()
	rep.Dim = b.dim
	rep.Identities = b.nIDs

	if *embedded {
		// The deployed configuration (internal/app): default M and
		// efConstruction, EfSearch app.EfSearch.
		cfg := hnsw.Config{M: 16, EfConstruction: 200, EfSearch: app.EfSearch}
		x, build, perFace, err := b.buildHNSW(ctx, cfg)
		if err != nil {
			return err
		}
		r, err := b.measureWith(ctx, x, *clients)
		x.Close()
		if err != nil {
			return err
		}
		rr := scaleResult{Engine: "hnsw", Compression: "int8",
			Params:  fmt.Sprintf("M=%d efC=%d ef=%d", cfg.M, cfg.EfConstruction, cfg.EfSearch),
			ImportS: build.Seconds(), RAMPerFace: perFace, RAMPerCopy: perFace, Clients: *clients}
		rr.fill(r, *n)
		e.progress("  hnsw: recall %.4f, p99 %.2f ms, %.0f q/s", rr.Recall, rr.P99ms, rr.QPS)
		rep.Results = append(rep.Results, rr)
		runtime.GC()
	}

	for i, comp := range compList {
		ix := first
		if i > 0 {
			if ix, err = open(comp); err != nil {
				return err
			}
			opened = append(opened, ix)
		}
		rr := scaleResult{Engine: "weaviate", Compression: comp, Shards: *shards, Replicas: *replicas, Clients: *clients,
			Params: fmt.Sprintf("maxConn=%d efC=%d ef=%d", ix.Config().MaxConnections, ix.Config().EfConstruction, ix.Config().Ef)}
		disk0 := dirBytes(*wvDir)
		if rr.RSSBefore, err = totalRSS(pids); err != nil {
			return err
		}
		e.progress("importing %d faces into %s (compression %s, %d shards, %d replicas)", *n, ix.Class(), comp, *shards, *replicas)
		took, err := b.importInto(ctx, ix, *workers, *batch, *inflight)
		if err != nil {
			return err
		}
		rr.ImportS = took.Seconds()
		rr.Retries = b.retries
		if got, err := ix.Len(ctx); err != nil {
			return err
		} else if got != *n {
			e.progress("  warning: the collection counts %d faces after importing %d", got, *n)
		}
		if rr.RSSAfter, err = totalRSS(pids); err != nil {
			return err
		}
		if len(pids) > 0 {
			rr.RAMPerFace = float64(rr.RSSAfter-rr.RSSBefore) / float64(*n)
			rr.RAMPerCopy = rr.RAMPerFace / float64(*replicas)
		}
		if *wvDir != "" {
			rr.DiskPerFace = float64(dirBytes(*wvDir)-disk0) / float64(*n)
		}
		r, err := b.measureWith(ctx, ix, *clients)
		if err != nil {
			return fmt.Errorf("gabarit bench scale: search: %w", err)
		}
		rr.fill(r, *n)
		e.progress("  weaviate %s: %.0f faces/s, recall %.4f, p99 %.2f ms, %.0f q/s, %.0f B/face RSS", comp, rr.ImportRate, rr.Recall, rr.P99ms, rr.QPS, rr.RAMPerFace)
		rep.Results = append(rep.Results, rr)
	}
	rep.LoadAfter = loadAvg()

	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(e.stdout, "bench scale: %d faces (%d identities), %d queries, k=%d, dim %d, %d CPUs, %d clients; load %s before, %s after\n",
		rep.N, rep.Identities, rep.Queries, rep.K, rep.Dim, rep.CPUs, *clients, rep.LoadBefore, rep.LoadAfter)
	fmt.Fprintf(e.stdout, "%-8s %-5s %-6s %-26s %9s %8s %7s %7s %8s %8s %7s %8s %8s %8s\n",
		"engine", "comp", "sh×rep", "params", "import_s", "faces/s", "recall", "r_match", "p50_ms", "p99_ms", "qps", "RAM/face", "RAM/copy", "disk/face")
	for _, r := range rep.Results {
		shape := "-"
		if r.Shards > 0 {
			shape = fmt.Sprintf("%d×%d", r.Shards, r.Replicas)
		}
		disk := "-"
		if r.DiskPerFace != 0 {
			disk = fmt.Sprintf("%.0f", r.DiskPerFace)
		}
		ram, copyRAM := fmt.Sprintf("%.0f", r.RAMPerFace), fmt.Sprintf("%.0f", r.RAMPerCopy)
		if r.Engine == "weaviate" && len(pids) == 0 {
			ram, copyRAM = "-", "-"
		}
		fmt.Fprintf(e.stdout, "%-8s %-5s %-6s %-26s %9.1f %8.0f %7.4f %7.4f %8.2f %8.2f %7.0f %8s %8s %8s\n",
			r.Engine, r.Compression, shape, r.Params, r.ImportS, r.ImportRate, r.Recall, r.RecallMatch,
			r.P50ms, r.P99ms, r.QPS, ram, copyRAM, disk)
	}
	if len(pids) == 0 {
		fmt.Fprintln(e.stdout, "Weaviate RAM not measured: give --wv-dir or --wv-pids.")
	}
	return nil
}

// fill copies the search measurements of r and derives the import rate.
func (rr *scaleResult) fill(r searchResult, n int) {
	rr.Recall, rr.RecallMatch, rr.P50ms, rr.P99ms, rr.QPS = r.Recall, r.RecallMatch, r.P50ms, r.P99ms, r.QPS
	if rr.ImportS > 0 {
		rr.ImportRate = float64(n) / rr.ImportS
	}
}

// addTries is how many times bench scale sends an import batch before it
// gives up.
const addTries = 5

// importInto sends the faces of base.f32 to ix in batches of batch faces
// from workers goroutines, with at most inflight batches read ahead or
// being sent (the reader blocks when they are all taken), and returns the
// wall time.
func (b *searchBench) importInto(ctx context.Context, ix *weaviate.Index, workers, batch, inflight int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		ids  []int64
		vecs [][]float32
	}
	jobs := make(chan job, max(0, inflight-workers))
	var (
		mu       sync.Mutex
		firstErr error
		sent     int
		retries  int
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	start := time.Now()
	lastReport := start
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				// A batch that fails (a replica's commit timing out on a
				// loaded machine) is sent again, as the index outbox
				// does: adding a face again replaces it.
				var err error
				for try := range addTries {
					if err = ix.Add(ctx, j.ids, j.vecs); err == nil || ctx.Err() != nil {
						break
					}
					mu.Lock()
					retries++
					mu.Unlock()
					b.e.progress("  a batch failed (try %d of %d), sent again: %v", try+1, addTries, err)
					select {
					case <-time.After(time.Duration(1<<try) * time.Second):
					case <-ctx.Done():
					}
				}
				if err != nil {
					fail(err)
					continue // drain
				}
				mu.Lock()
				sent += len(j.ids)
				if time.Since(lastReport) > 30*time.Second {
					lastReport = time.Now()
					el := time.Since(start).Seconds()
					b.e.progress("  %d/%d faces, %.0f s, %.0f faces/s", sent, b.n, el, float64(sent)/el)
				}
				mu.Unlock()
			}
		}()
	}
	err := b.scan(ctx, func(lo int, vecs [][]float32) error {
		for off := 0; off < len(vecs); off += batch {
			cnt := min(batch, len(vecs)-off)
			j := job{ids: make([]int64, cnt), vecs: make([][]float32, cnt)}
			flat := make([]float32, cnt*b.dim)
			for i := range cnt {
				j.ids[i] = int64(lo + off + i)
				j.vecs[i] = flat[i*b.dim : (i+1)*b.dim : (i+1)*b.dim]
				copy(j.vecs[i], vecs[off+i])
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	b.retries = retries
	if firstErr != nil {
		return 0, fmt.Errorf("gabarit bench scale: import: %w", firstErr)
	}
	if err != nil {
		return 0, err
	}
	return took, nil
}

// compressions parses the --compression list.
func compressions(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		c := strings.ToLower(strings.TrimSpace(f))
		switch c {
		case weaviate.CompressionNone, weaviate.CompressionRQ, weaviate.CompressionPQ, weaviate.CompressionBQ:
		default:
			return nil, fmt.Errorf("%q is not none, rq, pq or bq", f)
		}
		if slices.Contains(out, c) {
			return nil, fmt.Errorf("%s given twice", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// nodePids returns the Weaviate nodes' process ids: those of list
// (comma-separated), else those of the node*.pid files of dir (the cluster
// folder of scripts/weaviate.sh), else none.
func nodePids(list, dir string) ([]int, error) {
	if list != "" && dir != "" {
		return nil, errors.New("give --wv-pids or --wv-dir, not both")
	}
	var pids []int
	if list != "" {
		for _, f := range strings.Split(list, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || p < 1 {
				return nil, fmt.Errorf("--wv-pids: %q is not a process id", f)
			}
			pids = append(pids, p)
		}
		return pids, nil
	}
	if dir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "node*.pid"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || p < 1 {
			return nil, fmt.Errorf("--wv-dir: %s does not hold a process id", f)
		}
		pids = append(pids, p)
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("--wv-dir: no node*.pid file in %s: is the cluster running there? (scripts/weaviate.sh status)", dir)
	}
	return pids, nil
}

// totalRSS sums the resident memory of pids.
func totalRSS(pids []int) (int64, error) {
	var sum int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			return 0, fmt.Errorf("process %d (a Weaviate node?) is not readable: %v", p, err)
		}
		v, err := vmRSS(string(b))
		if err != nil {
			return 0, fmt.Errorf("process %d: %v", p, err)
		}
		sum += v
	}
	return sum, nil
}

// vmRSS reads the VmRSS line of a /proc/PID/status text, in bytes.
func vmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return v * 1024, nil
	}
	return 0, errors.New("no VmRSS line in its status")
}

// dirBytes is the size of the regular files under dir, logs left out;
// zero for an empty dir.
func dirBytes(dir string) int64 {
	if dir == "" {
		return 0
	}
	var sum int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(d.Name(), ".log") {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			sum += info.Size()
		}
		return nil
	})
	return sum
}

// loadAvg is the first three fields of /proc/loadavg, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
