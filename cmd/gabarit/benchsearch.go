package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gabarit/internal/pipeline"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/hnsw"
	"gabarit/internal/vindex/kernel"
	"gabarit/internal/vindex/synth"
)

// matchThreshold is the deployed same-person threshold on the cosine of
// two templates (MobileFaceNet, default pack): recall-match counts only the
// exact top-k hits at or above it, the ones a face search shows.
const matchThreshold = 0.3566

// benchSearch is `gabarit bench search`: it generates n calibrated
// synthetic templates (package synth), builds the hnsw index on them,
// measures build time, recall@k against exact search, single-query
// latency, queries/s and RAM per face for each EfSearch, and runs FAISS
// (scripts/faiss_peer.py) on the same vectors as the peer.
func (e *cmdEnv) benchSearch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench search", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	n := fs.Int("n", 100_000, "faces in the index")
	nq := fs.Int("queries", 500, "queries (new faces of enrolled identities)")
	k := fs.Int("k", 10, "hits per query")
	perID := fs.Float64("faces-per-identity", 10, "mean faces per identity (Poisson)")
	m := fs.Int("m", 16, "hnsw Config.M")
	efC := fs.Int("efc", 200, "hnsw Config.EfConstruction")
	efList := fs.String("ef", "32,64,128,256", "hnsw EfSearch values to measure")
	seed := fs.Uint64("seed", 1, "seed of the synthetic data")
	dir := fs.String("dir", "", "folder for the vector files (default: a temporary folder, removed)")
	withFaiss := fs.Bool("faiss", false, "also run FAISS HNSW and IVF-PQ on the same vectors")
	python := fs.String("python", "/usr/bin/python3", "Python interpreter with faiss")
	peer := fs.String("faiss-script", "scripts/faiss_peer.py", "the FAISS peer script")
	faissArgs := fs.String("faiss-args", "", "extra arguments for the FAISS peer script, space-separated")
	asJSON := fs.Bool("json", false, "print one JSON object per measured configuration")
	calibrate := fs.String("calibrate", "", "embed the identity folders of this root and print the genuine/impostor cosine statistics (needs the onnx build), then exit")
	dump := fs.String("calibrate-dump", "", "with --calibrate: write the templates to this file")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *calibrate != "" {
		return e.calibrate(ctx, ff, *calibrate, *dump)
	}
	efs, err := intList(*efList)
	if err != nil || *n < *k || *nq < 1 || *k < 1 {
		fmt.Fprintln(e.stderr, "gabarit bench search: need --n ≥ --k ≥ 1, --queries ≥ 1 and --ef a list of integers")
		return exitError{2}
	}
	b, cleanup, err := e.prepareSearchBench(ctx, "search", *n, *nq, *k, *dir, *seed, *perID)
	defer cleanup()
	if err != nil {
		return err
	}
	results, err := b.runHNSW(ctx, hnsw.Config{M: *m, EfConstruction: *efC}, efs)
	if err != nil {
		return err
	}
	if *withFaiss {
		fr, err := b.runFaiss(ctx, *python, *peer, strings.Fields(*faissArgs))
		if err != nil {
			return err
		}
		results = append(results, fr...)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(e.stdout, "bench search: %d faces (%d identities), %d queries, k=%d, dim %d, %d CPUs (GOMAXPROCS %d), %s\n",
		b.n, b.nIDs, b.nq, b.k, b.dim, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(e.stdout, "%-7s %-16s %-22s %9s %8s %8s %8s %8s %9s %9s\n",
		"engine", "index", "params", "build_s", "recall", "r_match", "p50_ms", "p99_ms", "qps", "B/face")
	for _, r := range results {
		fmt.Fprintf(e.stdout, "%-7s %-16s %-22s %9.1f %8.4f %8.4f %8.3f %8.3f %9.0f %9.0f\n",
			r.Engine, r.Index, r.Params, r.BuildS, r.Recall, r.RecallMatch, r.P50ms, r.P99ms, r.QPS, r.BytesPerFace)
	}
	return nil
}

// prepareSearchBench makes the data of `bench NAME`: n calibrated
// synthetic faces, nq queries and their exact top k, in dir (a temporary
// folder when dir is "", which cleanup removes; cleanup is never nil).
func (e *cmdEnv) prepareSearchBench(ctx context.Context, name string, n, nq, k int, dir string, seed uint64, perID float64) (*searchBench, func(), error) {
	cleanup := func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "gabarit-bench-"+name+"-")
		if err != nil {
			return nil, cleanup, err
		}
		dir, cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	b := &searchBench{e: e, n: n, nq: nq, k: k, dir: dir}
	p := synth.Calibrated()
	b.dim = p.Dim
	e.progress("generating %d faces and %d queries (seed %d)", n, nq, seed)
	if err := b.generate(ctx, p, seed, perID); err != nil {
		return nil, cleanup, err
	}
	e.progress("exact top-%d of %d queries", k, nq)
	if err := b.groundTruth(ctx); err != nil {
		b.base.Close()
		return nil, cleanup, err
	}
	return b, cleanup, nil
}

// progress writes a progress line on stderr.
func (e *cmdEnv) progress(format string, args ...any) {
	fmt.Fprintf(e.stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// searchResult is one measured configuration.
type searchResult struct {
	Engine       string  `json:"engine"`
	Index        string  `json:"index"`
	Params       string  `json:"params"`
	BuildS       float64 `json:"build_s"`
	Recall       float64 `json:"recall"`
	RecallMatch  float64 `json:"recall_match"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	QPS          float64 `json:"qps"`
	BytesPerFace float64 `json:"bytes_per_face"`
}

// searchBench holds the data of one run: the faces live in a file of
// float32 rows (base.f32, id = row), which also serves as the index's
// VectorSource.
type searchBench struct {
	e         *cmdEnv
	n, nq, k  int
	dim, nIDs int
	dir       string
	queries   [][]float32
	gt        [][]int64   // exact top-k ids per query
	kth       []float32   // exact k-th score per query
	gtScores  [][]float32 // exact top-k scores per query
	base      *os.File
	retries   int // import batches sent again (bench scale)
}

func (b *searchBench) basePath() string { return filepath.Join(b.dir, "base.f32") }

// generate writes n faces of about n/perID identities to base.f32 (each
// face of a random identity) and draws the queries: new faces of random
// identities. Faces are generated in parallel, in blocks with their own
// seeded generator, so the data depends on the seed only.
func (b *searchBench) generate(ctx context.Context, p synth.Params, seed uint64, perID float64) error {
	g := synth.New(p, seed)
	r := rand.New(rand.NewPCG(seed, 1))
	b.nIDs = max(1, int(float64(b.n)/perID))
	centres := make([][]float64, b.nIDs)
	pipeline.ForEach(ctx, b.nIDs, runtime.GOMAXPROCS(0),
		func(_ context.Context, i int) []float64 {
			return g.Identity(rand.New(rand.NewPCG(seed, uint64(i)+2)))
		},
		func(i int, c []float64) { centres[i] = c })
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Create(b.basePath())
	if err != nil {
		return err
	}
	const block = 4096
	type rows struct{ buf []byte }
	blocks := (b.n + block - 1) / block
	w := bufio.NewWriterSize(f, 1<<20)
	var werr error
	pipeline.ForEach(ctx, blocks, runtime.GOMAXPROCS(0),
		func(_ context.Context, i int) rows {
			br := rand.New(rand.NewPCG(seed, uint64(b.nIDs+i)+2))
			cnt := min(block, b.n-i*block)
			buf := make([]byte, 0, cnt*b.dim*4)
			v := make([]float32, b.dim)
			for range cnt {
				g.Face(br, centres[br.IntN(b.nIDs)], v)
				for _, x := range v {
					buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
				}
			}
			return rows{buf}
		},
		func(_ int, rw rows) {
			if werr == nil {
				_, werr = w.Write(rw.buf)
			}
		})
	if werr == nil {
		werr = w.Flush()
	}
	if werr != nil {
		f.Close()
		return werr
	}
	if err := ctx.Err(); err != nil {
		f.Close()
		return err
	}
	b.base = f
	b.queries = make([][]float32, b.nq)
	for i := range b.queries {
		b.queries[i] = make([]float32, b.dim)
		g.Face(r, centres[r.IntN(b.nIDs)], b.queries[i])
	}
	return writeRows(filepath.Join(b.dir, "queries.f32"), b.queries)
}

// writeRows writes float32 rows to path, little-endian.
func writeRows(path string, rows [][]float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, v := range rows {
		if err := binary.Write(w, binary.LittleEndian, v); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// scan calls fn for every face of base.f32, in blocks read sequentially.
func (b *searchBench) scan(ctx context.Context, fn func(lo int, vecs [][]float32) error) error {
	const block = 8192
	buf := make([]byte, block*b.dim*4)
	flat := make([]float32, block*b.dim)
	vecs := make([][]float32, block)
	for lo := 0; lo < b.n; lo += block {
		if err := ctx.Err(); err != nil {
			return err
		}
		cnt := min(block, b.n-lo)
		if _, err := b.base.ReadAt(buf[:cnt*b.dim*4], int64(lo)*int64(b.dim)*4); err != nil {
			return err
		}
		for i := range cnt * b.dim {
			flat[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		for i := range cnt {
			vecs[i] = flat[i*b.dim : (i+1)*b.dim : (i+1)*b.dim]
		}
		if err := fn(lo, vecs[:cnt]); err != nil {
			return err
		}
	}
	return nil
}

// groundTruth computes the exact top-k of every query by brute force, the
// queries split over GOMAXPROCS goroutines for each block of faces, and
// writes the ids to gt.i64 for the FAISS peer.
func (b *searchBench) groundTruth(ctx context.Context) error {
	tops := make([]topK, b.nq)
	for i := range tops {
		tops[i] = topK{k: b.k}
	}
	workers := runtime.GOMAXPROCS(0)
	err := b.scan(ctx, func(lo int, vecs [][]float32) error {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for qi := w; qi < b.nq; qi += workers {
					q := b.queries[qi]
					for i, v := range vecs {
						tops[qi].offer(int64(lo+i), kernel.Dot(q, v))
					}
				}
			}()
		}
		wg.Wait()
		return nil
	})
	if err != nil {
		return err
	}
	b.gt = make([][]int64, b.nq)
	b.gtScores = make([][]float32, b.nq)
	b.kth = make([]float32, b.nq)
	f, err := os.Create(filepath.Join(b.dir, "gt.i64"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for qi := range tops {
		hits := tops[qi].sorted()
		for _, h := range hits {
			b.gt[qi] = append(b.gt[qi], h.ID)
			b.gtScores[qi] = append(b.gtScores[qi], h.Score)
			if err := binary.Write(w, binary.LittleEndian, h.ID); err != nil {
				f.Close()
				return err
			}
		}
		b.kth[qi] = hits[len(hits)-1].Score
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// topK keeps the k best hits offered (a small sorted slice: k is small).
type topK struct {
	k    int
	hits []vindex.Hit // best first
}

func (t *topK) offer(id int64, s float32) {
	if len(t.hits) == t.k && s <= t.hits[len(t.hits)-1].Score {
		return
	}
	i := len(t.hits)
	for i > 0 && t.hits[i-1].Score < s {
		i--
	}
	t.hits = slices.Insert(t.hits, i, vindex.Hit{ID: id, Score: s})
	if len(t.hits) > t.k {
		t.hits = t.hits[:t.k]
	}
}

func (t *topK) sorted() []vindex.Hit { return t.hits }

// fileSource is the bench's VectorSource: the float32 rows of base.f32,
// read with ReadAt (from the page cache once warm).
type fileSource struct {
	f   *os.File
	dim int
	n   int
}

var _ hnsw.VectorSource = (*fileSource)(nil)

func (s *fileSource) Vectors(_ context.Context, ids []int64, dst [][]float32, ok []bool) error {
	buf := make([]byte, 4*s.dim)
	for i, id := range ids {
		if id < 0 || id >= int64(s.n) {
			ok[i] = false
			continue
		}
		if _, err := s.f.ReadAt(buf, id*int64(s.dim)*4); err != nil {
			return err
		}
		for j := range dst[i] {
			dst[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
		ok[i] = true
	}
	return nil
}

// runHNSW builds the index from base.f32 and measures every EfSearch.
func (b *searchBench) runHNSW(ctx context.Context, cfg hnsw.Config, efs []int) ([]searchResult, error) {
	x, build, perFace, err := b.buildHNSW(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	var out []searchResult
	for _, ef := range efs {
		x.SetEfSearch(ef)
		r := b.measure(ctx, x)
		r.Engine, r.Index = "gabarit", fmt.Sprintf("hnsw M%d", cfg.M)
		r.Params = fmt.Sprintf("efC=%d ef=%d", cfg.EfConstruction, ef)
		r.BuildS = build.Seconds()
		r.BytesPerFace = perFace
		b.e.progress("  ef %d: recall %.4f, p99 %.2f ms, %.0f q/s", ef, r.Recall, r.P99ms, r.QPS)
		out = append(out, r)
	}
	return out, nil
}

// buildHNSW builds the hnsw index of base.f32 (its Source the file) and
// returns it with the time its Adds took and its heap growth per face.
func (b *searchBench) buildHNSW(ctx context.Context, cfg hnsw.Config) (*hnsw.Index, time.Duration, float64, error) {
	cfg.Source = &fileSource{f: b.base, dim: b.dim, n: b.n}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := hnsw.New(b.dim, cfg)
	b.e.progress("building hnsw (M %d, efConstruction %d, %d workers)", cfg.M, cfg.EfConstruction, runtime.GOMAXPROCS(0))
	start := time.Now()
	var build time.Duration
	ids := make([]int64, 8192)
	err := b.scan(ctx, func(lo int, vecs [][]float32) error {
		for i := range vecs {
			ids[i] = int64(lo + i)
		}
		t0 := time.Now()
		err := x.Add(ctx, ids[:len(vecs)], vecs)
		build += time.Since(t0)
		if lo/8192%16 == 15 {
			b.e.progress("  %d/%d faces, %.0f s", lo+len(vecs), b.n, time.Since(start).Seconds())
		}
		return err
	})
	if err != nil {
		x.Close()
		return nil, 0, 0, err
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	used, _ := x.MemBytes()
	b.e.progress("built in %.1f s; heap %+.0f B/face, index accounting %.0f B/face", build.Seconds(),
		float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.n), float64(used)/float64(b.n))
	perFace := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(b.n)
	return x, build, perFace, nil
}

// measure runs every query once alone (latency) and then all of them on
// GOMAXPROCS goroutines for about 2 s (throughput).
func (b *searchBench) measure(ctx context.Context, x vindex.Index) searchResult {
	r, _ := b.measureWith(ctx, x, runtime.GOMAXPROCS(0))
	return r
}

// measureWith is measure with the throughput measured on clients
// goroutines; it returns the first search error.
func (b *searchBench) measureWith(ctx context.Context, x vindex.Index, clients int) (searchResult, error) {
	lat := make([]time.Duration, b.nq)
	found, foundMatch, matches := 0, 0, 0
	for qi, q := range b.queries {
		t0 := time.Now()
		hits, err := x.Search(ctx, q, b.k, -2)
		lat[qi] = time.Since(t0)
		if err != nil {
			return searchResult{}, err
		}
		exact := make(map[int64]float32, b.k)
		for i, id := range b.gt[qi] {
			exact[id] = b.gtScores[qi][i]
			if b.gtScores[qi][i] >= matchThreshold {
				matches++
			}
		}
		for _, h := range hits {
			s, ok := exact[h.ID]
			if !ok {
				// Not in the exact top k: its exact score, from the file
				// (an engine's own score may be that of compressed codes).
				var err error
				if s, err = b.exactScore(q, h.ID); err != nil {
					return searchResult{}, err
				}
			}
			if s >= b.kth[qi]-1e-6 {
				found++
				if s >= matchThreshold {
					foundMatch++
				}
			}
		}
	}
	slices.Sort(lat)
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	deadline := time.Now().Add(2 * time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				if _, err := x.Search(ctx, b.queries[i%b.nq], b.k, -2); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return searchResult{}, firstErr
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return searchResult{
		Recall:      float64(found) / float64(b.nq*b.k),
		RecallMatch: float64(foundMatch) / float64(max(matches, 1)),
		P50ms:       ms(lat[b.nq/2]),
		P99ms:       ms(lat[min(b.nq-1, b.nq*99/100)]),
		QPS:         float64(done.Load()) / time.Since(start).Seconds(),
	}, nil
}

// exactScore is the dot product of q with face id of base.f32 (its cosine:
// the faces are unit vectors); an id outside the file scores -2.
func (b *searchBench) exactScore(q []float32, id int64) (float32, error) {
	if id < 0 || id >= int64(b.n) {
		return -2, nil
	}
	v := make([]float32, b.dim)
	ok := []bool{false}
	if err := (&fileSource{f: b.base, dim: b.dim, n: b.n}).Vectors(context.Background(), []int64{id}, [][]float32{v}, ok); err != nil {
		return 0, err
	}
	return kernel.Dot(q, v), nil
}

// runFaiss runs the FAISS peer on the same files and parses its JSON lines.
func (b *searchBench) runFaiss(ctx context.Context, python, script string, extra []string) ([]searchResult, error) {
	args := append([]string{script,
		"--base", b.basePath(), "--queries", filepath.Join(b.dir, "queries.f32"), "--gt", filepath.Join(b.dir, "gt.i64"),
		"--dim", strconv.Itoa(b.dim), "--k", strconv.Itoa(b.k), "--threads", strconv.Itoa(runtime.GOMAXPROCS(0)),
		"--threshold", strconv.FormatFloat(matchThreshold, 'f', -1, 64)}, extra...)
	b.e.progress("running FAISS: %s %s", python, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Stderr = b.e.stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("faiss peer: %w", err)
	}
	var res []searchResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r searchResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("faiss peer output %q: %w", line, err)
		}
		res = append(res, r)
	}
	return res, nil
}

// intList parses a comma-separated list of positive integers.
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad integer %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// calibrate embeds the identity folders under root and prints the mean and
// standard deviation of the genuine (same folder) and impostor (different
// folders) cosines, the numbers the synthetic generator is fitted to. When
// dump is not empty it also writes the templates there: per face, the
// identity number as a uint32 then the template as float32, little-endian.
func (e *cmdEnv) calibrate(ctx context.Context, ff faceFlags, root, dump string) error {
	names, files, err := identityFolders(root)
	if err != nil {
		return err
	}
	var ids []int
	var all []string
	for i, fl := range files {
		for _, f := range fl {
			ids = append(ids, i)
			all = append(all, f)
		}
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	embs := e.embedAll(ctx, kit, ff.workers, all)
	if err := ctx.Err(); err != nil {
		return err
	}
	var gen, imp moments
	for i := range embs {
		if embs[i] == nil {
			continue
		}
		for j := i + 1; j < len(embs); j++ {
			if embs[j] == nil {
				continue
			}
			s, _ := embs[i].Cosine(embs[j]) // same pack, same length
			if ids[i] == ids[j] {
				gen.add(s)
			} else {
				imp.add(s)
			}
		}
	}
	if dump != "" {
		f, err := os.Create(dump)
		if err != nil {
			return err
		}
		for i, v := range embs {
			if v == nil {
				continue
			}
			if err := binary.Write(f, binary.LittleEndian, uint32(ids[i])); err != nil {
				f.Close()
				return err
			}
			if err := binary.Write(f, binary.LittleEndian, []float32(v)); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	templates := 0
	for _, v := range embs {
		if v != nil {
			templates++
		}
	}
	fmt.Fprintf(e.stdout, "calibration on %s: %d identities, %d images, %d templates\n", root, len(names), len(all), templates)
	fmt.Fprintf(e.stdout, "genuine  cosine: n=%d mean=%.4f std=%.4f\n", gen.n, gen.mean(), gen.std())
	fmt.Fprintf(e.stdout, "impostor cosine: n=%d mean=%.4f std=%.4f\n", imp.n, imp.mean(), imp.std())
	return nil
}

// moments accumulates the count, sum and sum of squares of a sample.
type moments struct {
	n     int
	s, ss float64
}

func (m *moments) add(x float64) { m.n++; m.s += x; m.ss += x * x }
func (m *moments) mean() float64 { return m.s / float64(max(m.n, 1)) }
func (m *moments) std() float64 {
	mu := m.mean()
	return math.Sqrt(max(0, m.ss/float64(max(m.n, 1))-mu*mu))
}
