package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/loadgen"
	"gabarit/internal/passwd"
	"gabarit/internal/pipeline"
	"gabarit/internal/server"
	"gabarit/internal/store"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/synth"
)

// benchServeJSON is the output of `gabarit bench serve --json`.
type benchServeJSON struct {
	Faces       int64          `json:"faces"`
	Index       string         `json:"index"`
	Store       string         `json:"store"` // sqlite or postgres
	CPUs        int            `json:"cpus"`
	FillSeconds float64        `json:"fill_seconds"`
	OpenSeconds float64        `json:"index_open_seconds"`
	Probe       string         `json:"probe"`
	Single      loadgen.Result `json:"single_client"`
	Loaded      loadgen.Result `json:"loaded"`
	Matches     int            `json:"matches_per_search"`
}

func (e *cmdEnv) benchServe(ctx context.Context, args []string) error {
	fs := e.flags("bench serve", "usage: gabarit bench serve [--n 100000] [--clients 32] [--duration 60s] [--single 20s] [--store URL] [--json]\n\n"+
		"Builds a store of N faces in a new data directory (the demo photos ingested with the real\n"+
		"models, the rest synthetic templates calibrated on real ones, sealed like any other), starts\n"+
		"`gabarit serve` on it in this process, and measures POST /api/v1/searches (a real photo:\n"+
		"detection, embedding, index, exact re-scoring, audit) with one client, then with --clients\n"+
		"concurrent clients for --duration. Every answer must be 200 with a match.")
	var ff faceFlags
	ff.register(fs)
	n := fs.Int64("n", 100_000, "faces in the store")
	clients := fs.Int("clients", 32, "concurrent clients of the loaded run")
	duration := fs.Duration("duration", 60*time.Second, "length of the loaded run")
	single := fs.Duration("single", 20*time.Second, "length of the single-client run")
	dataDir := fs.String("data", "", "data directory to create (default: a temporary one, removed after)")
	index := fs.String("index", app.IndexHNSW, "vector index: hnsw or flat")
	probeName := fs.String("probe", "sample2.jpg", "the search photo, among the installed demo photos")
	storeURL := fs.String("store", "", "an empty PostgreSQL database to fill, as a postgres:// URL (default: a new SQLite store in the data directory)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *n < 1 || *clients < 1 || *duration <= 0 || *single <= 0 {
		return usageErr(e, fs, "--n, --clients, --duration and --single must be positive")
	}
	ff.minFaceFrac = -1
	photos := ff.dirs().TestPhotos()
	probe, err := imageproc.ReadFile(filepath.Join(photos, *probeName), 0)
	if err != nil {
		return fmt.Errorf("%w (install the demo photos with: gabarit setup)", err)
	}
	dir := *dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "gabarit-bench-serve-*"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if _, err := os.Stat(dir); err == nil {
		return usageErr(e, fs, "--data %s exists: give a new directory", dir)
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	// A new SQLite store, or the empty database --store names: never
	// $GABARIT_STORE, which may name a deployment's database.
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if *storeURL != "" && !store.IsPostgres(*storeURL) {
		return usageErr(e, fs, "--store: want a postgres:// URL of an empty database")
	}
	d, err := app.OpenData(ctx, config.Config{DataDir: dir, Index: *index, Store: *storeURL}, true)
	if err != nil {
		return err
	}
	defer d.Close()
	if *storeURL != "" {
		if srcs, err := d.DB.Sources(ctx); err != nil {
			return err
		} else if len(srcs) > 0 {
			return fmt.Errorf("--store %s holds %d sources: bench serve fills an empty database only", store.RedactDSN(*storeURL), len(srcs))
		}
	}
	v, err := d.Vault(ctx)
	if err != nil {
		return err
	}
	out := benchServeJSON{Index: *index, Store: d.DB.Dialect(), CPUs: runtime.GOMAXPROCS(0), Probe: *probeName}

	// The store: synthetic faces first, then the demo photos through the
	// real face path, as a new collection arriving in a large store. (In
	// the other order, the 22 real templates, which lie outside the
	// synthetic population's subspace, were not found by the HNSW search
	// over 100,000 synthetic ones: see docs/PERFORMANCE.md.)
	fill := time.Now()
	src, err := app.Declaration{Kind: "folder", Path: photos, Controller: "Benchmark", Purpose: "load benchmark",
		LegalBasis: "legitimate-interests", Art9: "9(2)(a)", Jurisdiction: "FR", Retention: "1y"}.Validate("")
	if err != nil {
		return err
	}
	srcID, err := app.AddSource(ctx, d.DB, src, actor())
	if err != nil {
		return err
	}
	const realFaces = 22 // in the six demo photos
	if err := fillSynthetic(ctx, d, srcID, kit.ModelID(), *n-realFaces); err != nil {
		return err
	}
	h, err := d.OpenIndex(ctx, kit.ModelID(), kit.Dim())
	if err != nil {
		return err
	}
	sum, err := app.Ingest(ctx, d, kit, v, h, srcID, app.IngestOptions{Actor: actor()})
	if err != nil {
		return err
	}
	real := int64(sum.Faces)
	out.FillSeconds = time.Since(fill).Seconds()
	if out.Faces, err = d.DB.FaceCount(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "store: %d faces (%d from the demo photos) in %.0f s\n", out.Faces, real, out.FillSeconds)

	// The index as `gabarit serve` opens it: loaded from the file the
	// ingest saved.
	h.Close()
	open := time.Now()
	h, err = d.OpenIndex(ctx, kit.ModelID(), kit.Dim())
	if err != nil {
		return err
	}
	defer h.Close()
	out.OpenSeconds = time.Since(open).Seconds()
	fmt.Fprintf(e.stderr, "index: %s over %d faces opened in %.1f s\n", *index, vindex.Count(h.Index), out.OpenSeconds)

	// The server, and an investigator's API token.
	if err := d.DB.AddUser(ctx, "bench", []store.Role{store.RoleInvestigator}, actor()); err != nil {
		return err
	}
	token, hash, err := passwd.NewToken("gbt_")
	if err != nil {
		return err
	}
	if _, err := d.DB.CreateAPIToken(ctx, "bench", "load benchmark", hash, time.Now().Add(24*time.Hour), actor()); err != nil {
		return err
	}
	srv, err := server.New(server.Config{Data: d, Model: kit, Index: h, Vault: v, PurgeEvery: -1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()

	body, contentType, err := searchBody(probe)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String() + "/api/v1/searches"
	request := func(ctx context.Context, _ int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+token)
		return req, nil
	}
	matches := -1
	check := func(resp *http.Response, b []byte) error {
		if err := loadgen.CheckStatus(resp, b); err != nil {
			return err
		}
		var res app.SearchView
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
		if !res.Match {
			return fmt.Errorf("no match for the probe")
		}
		matches = len(res.Results)
		return nil
	}
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *clients + 1}}
	fmt.Fprintf(e.stderr, "single client for %s…\n", *single)
	out.Single, err = loadgen.Run(ctx, loadgen.Config{Clients: 1, Duration: *single, Warmup: 2 * time.Second,
		Request: request, Check: check, Client: client})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "  %s\n%d clients for %s…\n", out.Single, *clients, *duration)
	out.Loaded, err = loadgen.Run(ctx, loadgen.Config{Clients: *clients, Duration: *duration, Warmup: 5 * time.Second,
		Request: request, Check: check, Client: client})
	if err != nil {
		return err
	}
	out.Matches = matches
	fmt.Fprintf(e.stderr, "  %s\n", out.Loaded)
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "POST /api/v1/searches over %d faces (%s, %d CPUs, probe %s, %d matches per search)\n", out.Faces, out.Index, out.CPUs, out.Probe, out.Matches)
		fmt.Fprintf(e.stdout, "  1 client:   %s\n", out.Single)
		fmt.Fprintf(e.stdout, "  %d clients: %s\n", *clients, out.Loaded)
	}
	if out.Single.Errors+out.Loaded.Errors > 0 {
		return fmt.Errorf("bench serve: %d errors", out.Single.Errors+out.Loaded.Errors)
	}
	return nil
}

// searchBody is a multipart search request with the probe photo.
func searchBody(probe []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("purpose", "load benchmark"); err != nil {
		return nil, "", err
	}
	fw, err := mw.CreateFormFile("photo", "probe.jpg")
	if err != nil {
		return nil, "", err
	}
	if _, err := fw.Write(probe); err != nil {
		return nil, "", err
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// fillSynthetic adds n faces to source srcID: templates drawn from the
// calibrated synthetic model (docs/PERFORMANCE.md), 4 faces an image,
// sealed under the source's key like ingested ones.
func fillSynthetic(ctx context.Context, d *app.Data, srcID int64, modelID string, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := d.Keys.EnsureKey(ctx, srcID); err != nil {
		return err
	}
	g := synth.New(synth.Calibrated(), 7)
	r := rand.New(rand.NewPCG(7, 11))
	const perImage, batch = 4, 250
	dim := g.Params().Dim
	for done, img := int64(0), 0; done < n; img += batch {
		recs := make([]store.IngestRecord, 0, batch)
		for i := 0; i < batch && done < n; i++ {
			var key [8]byte
			binary.LittleEndian.PutUint64(key[:], uint64(img+i))
			rec := store.IngestRecord{Locator: fmt.Sprintf("synthetic/%07d.jpg", img+i), SHA256: sha256.Sum256(key[:]),
				Image: store.Image{Width: 640, Height: 480}}
			for j := 0; j < perImage && done < n; j++ {
				t := make([]float32, dim)
				g.Face(r, g.Identity(r), t)
				rec.Faces = append(rec.Faces, store.Face{Box: face.Box{X: float64(10 + 150*j), Y: 20, W: 100, H: 100}, ModelID: modelID, Dim: dim})
				rec.Templates = append(rec.Templates, t)
				done++
			}
			recs = append(recs, rec)
		}
		if _, err := d.DB.CommitIngest(ctx, srcID, recs, func(f store.Face, t []float32) ([]byte, error) {
			return d.Keys.Seal(ctx, srcID, f.ID, f.ModelID, t)
		}); err != nil {
			return err
		}
	}
	return nil
}
