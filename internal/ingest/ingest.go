package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"runtime"
	"sync"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/source"
	"gabarit/internal/store"
	"gabarit/internal/vindex"
)

// Store records the outcome of ingestion; *store.DB implements it.
type Store interface {
	// Progress returns the recorded outcome of the entry at locator.
	Progress(ctx context.Context, sourceID int64, locator string) (state store.ProgressState, ok bool, err error)
	// SeenContent reports whether the source already gave this content.
	SeenContent(ctx context.Context, sourceID int64, sha [32]byte) (bool, error)
	// CommitIngest records a batch of entries atomically.
	CommitIngest(ctx context.Context, sourceID int64, recs []store.IngestRecord, seal store.TemplateSealer) ([]store.IngestResult, error)
}

// Keys seals templates under the source's data key; *keyring.Keyring
// implements it.
type Keys interface {
	// EnsureKey creates the source's data key if it has none.
	EnsureKey(ctx context.Context, sourceID int64) error
	// Seal encrypts a template bound to its source, face and model.
	Seal(ctx context.Context, sourceID, faceID int64, modelID string, template []float32) ([]byte, error)
}

// Config tunes one run.
type Config struct {
	SourceID int64
	ModelID  string // the embedder's model id, recorded with every face
	// Workers is the number of images analysed at once (default GOMAXPROCS).
	Workers int
	// Batch is the most images committed in one transaction (default 32).
	Batch int
	// MaxFileBytes refuses larger files before reading them (default
	// source.DefaultMaxFileBytes).
	MaxFileBytes int64
	// Progress, when set, is called by the writer after every commit with
	// the running totals. It must return quickly.
	Progress func(Stats)
	// Suppress, when set, is asked about every analysed face before
	// anything of its image is stored, with the face's template: a face for
	// which it returns true (it matches the suppression list, "never collect
	// me again") is dropped, neither sealed, stored nor indexed, and counted
	// in Stats.Suppressed. An image whose faces are all dropped is recorded
	// as an image without faces. An error stops the run, and nothing of the
	// image is stored: suppression fails closed. It must be safe for
	// concurrent use; nil checks nothing.
	Suppress func(ctx context.Context, t []float32) (bool, error)
	// Part, when set, limits the run to the entries for which it returns
	// true (a part of a job shared by instances, see InPart): the others
	// are passed over before they are read, and not counted at all.
	Part func(locator string) bool
}

// ResumeJournal returns the journal of the run whose ActionStart entry is
// start, written by Begin, possibly in another process: the run of a job
// whose parts several instances ran ends where its last part ended.
func ResumeJournal(a Auditor, actor string, sourceID, start int64) *Journal {
	return &Journal{a: a, actor: actor, sourceID: sourceID, start: start}
}

// InPart returns the filter of part part of parts (Config.Part): the
// entries whose locator's FNV-1a 32-bit hash is part modulo parts. Every
// entry is in exactly one part, whatever the order of the walk.
func InPart(part, parts int) func(locator string) bool {
	return func(locator string) bool {
		h := fnv.New32a()
		h.Write([]byte(locator)) //nolint:errcheck // a hash.Hash does not fail
		return int(h.Sum32()%uint32(parts)) == part
	}
}

// Stats are the running totals of a run.
type Stats struct {
	Seen    int           // entries listed so far
	Images  int           // images added
	Faces   int           // faces added
	Skipped int           // entries already ingested (by locator or content)
	Failed  int           // entries that could not be ingested
	Bytes   int64         // bytes read from the source
	Elapsed time.Duration // since the run started

	// Suppressed counts the faces dropped because Config.Suppress matched
	// them (for videos, the tracks: see RunVideos), in the images added.
	Suppressed int
}

// FileError is one entry that could not be ingested.
type FileError struct {
	File   string `json:"file"`   // the entry's locator in the source
	Reason string `json:"reason"` // what went wrong
}

// Summary is the outcome of a run.
type Summary struct {
	Stats
	Errors []FileError
	// MaxFaceID is the largest face id added to the index by the run (0 if
	// none): the index includes every face committed by the run (a remote
	// index whose engine refused some has them in the outbox instead: see
	// vstore.Handle.Deferred).
	MaxFaceID int64
}

// item is one entry on its way from the walk to the writer.
type item struct {
	locator string
	sha     [32]byte
	size    int64
	mod     time.Time
	taken   time.Time // from EXIF; zero when unknown
	data    []byte
	result  face.Analysis
	tracks  []trackRef // videos: one per face of result
	err     error      // set when the entry failed; reason is its text
	reason  string
	// suppressed counts the faces dropped by Config.Suppress; fatal is the
	// error of a suppression check, which stops the run.
	suppressed int
	fatal      error
}

// Run ingests every entry of src into st and idx. It returns when the
// source has been walked and every analysed entry committed, or at the first
// error that stops the whole run (the store or the index failing, the source
// becoming unreadable, ctx cancelled); the Summary then counts what was
// committed before it. Entries that fail on their own are in Summary.Errors.
func Run(ctx context.Context, src source.Source, an face.Analyzer, st Store, keys Keys, idx vindex.Index, cfg Config) (Summary, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = source.DefaultMaxFileBytes
	}
	if cfg.ModelID == "" {
		return Summary{}, errors.New("ingest: model id required")
	}
	if err := keys.EnsureKey(ctx, cfg.SourceID); err != nil {
		return Summary{}, fmt.Errorf("ingest: data key of source %d: %w", cfg.SourceID, err)
	}

	r := &run{cfg: cfg, an: an, st: st, keys: keys, idx: idx, start: time.Now()}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The queues are long enough that the workers never wait: the walk reads
	// ahead (each queued item holds its file's bytes, at most MaxFileBytes),
	// and finished items wait for the writer while it syncs a commit.
	jobs := make(chan *item, cfg.Workers*4)
	done := make(chan *item, cfg.Batch*2)
	var walkErr error
	go func() {
		defer close(jobs)
		walkErr = src.Walk(ctx, func(it source.Item, err error) error {
			return r.produce(ctx, it, err, jobs, done)
		})
	}()
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				r.analyze(ctx, it)
				done <- it
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	writeErr := r.write(ctx, done)
	if writeErr != nil {
		cancel(writeErr)
		for range done { // let the workers finish and exit
		}
	}
	sum := r.summary()
	switch {
	case writeErr != nil:
		return sum, writeErr
	case walkErr != nil:
		if cause := context.Cause(ctx); cause != nil && errors.Is(walkErr, context.Canceled) {
			return sum, cause
		}
		return sum, fmt.Errorf("ingest: walk source %d: %w", cfg.SourceID, walkErr)
	}
	return sum, ctx.Err()
}

type run struct {
	cfg   Config
	an    face.Analyzer
	st    Store
	keys  Keys
	idx   vindex.Index
	start time.Time

	mu      sync.Mutex // guards stats and errors (the walk and the writer both count)
	stats   Stats
	errors  []FileError
	maxFace int64
}

func (r *run) count(fn func(*Stats)) {
	r.mu.Lock()
	fn(&r.stats)
	r.mu.Unlock()
}

func (r *run) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{Stats: r.stats, Errors: append([]FileError(nil), r.errors...), MaxFaceID: r.maxFace}
	s.Elapsed = time.Since(r.start)
	return s
}

// produce reads one listed entry, skips it if it is known, and queues it
// for analysis, or straight for the writer when it failed. It runs on the
// walk goroutine, where archive entries can be opened.
func (r *run) produce(ctx context.Context, it source.Item, listErr error, jobs, done chan<- *item) error {
	if r.cfg.Part != nil && !r.cfg.Part(it.Locator) {
		return nil // another part's
	}
	r.count(func(s *Stats) { s.Seen++ })
	x := &item{locator: it.Locator, size: it.Size, mod: it.ModTime}
	send := func(ch chan<- *item) error {
		select {
		case ch <- x:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if listErr != nil {
		var ie *source.ItemError
		if !errors.As(listErr, &ie) {
			return listErr // the collection itself is unreadable
		}
		x.err = ie.Err
		return send(done)
	}
	state, ok, err := r.st.Progress(ctx, r.cfg.SourceID, it.Locator)
	if err != nil {
		return err
	}
	if ok && state == store.ProgressDone {
		r.count(func(s *Stats) { s.Skipped++ })
		return nil
	}
	if it.Size > r.cfg.MaxFileBytes {
		x.err = fmt.Errorf("%d bytes, over the limit of %d: %w", it.Size, r.cfg.MaxFileBytes, source.ErrTooLarge)
		return send(done)
	}
	x.data, x.err = read(it, r.cfg.MaxFileBytes)
	if x.err != nil {
		return send(done)
	}
	r.count(func(s *Stats) { s.Bytes += int64(len(x.data)) })
	x.sha = sha256.Sum256(x.data)
	x.taken, _ = imageproc.TakenAt(x.data)
	seen, err := r.st.SeenContent(ctx, r.cfg.SourceID, x.sha)
	if err != nil {
		return err
	}
	if seen {
		r.count(func(s *Stats) { s.Skipped++ })
		return nil
	}
	return send(jobs)
}

// read reads an entry's bytes, refusing more than limit.
func read(it source.Item, limit int64) ([]byte, error) {
	rc, err := it.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, 0, max(0, min(it.Size, limit))+1)
	for {
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("over the limit of %d bytes: %w", limit, source.ErrTooLarge)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(buf)) > limit {
				return nil, fmt.Errorf("over the limit of %d bytes: %w", limit, source.ErrTooLarge)
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// analyze runs the face path on one entry.
func (r *run) analyze(ctx context.Context, x *item) {
	if ctx.Err() != nil {
		x.err = ctx.Err()
		return
	}
	x.result, x.err = r.an.Analyze(ctx, x.data)
	x.data = nil
	if x.err == nil {
		for i, f := range x.result.Faces {
			if len(f.Embedding) == 0 {
				x.err = fmt.Errorf("face %d has no template", i)
				break
			}
		}
	}
	if x.err == nil && r.cfg.Suppress != nil {
		var err error
		x.result.Faces, x.suppressed, err = r.suppress(ctx, x.result.Faces)
		switch {
		case err != nil && ctx.Err() != nil:
			x.err = ctx.Err() // interrupted: the next run does it again
		case err != nil:
			x.fatal = err
		}
		if err != nil {
			x.result = face.Analysis{}
		}
	}
}

// suppress returns the faces that Config.Suppress does not match, in
// order, and how many it dropped. The templates of dropped faces are
// zeroed. On error nothing is kept.
func (r *run) suppress(ctx context.Context, faces []face.Face) (kept []face.Face, dropped int, err error) {
	kept = faces[:0:0]
	for _, f := range faces {
		hit, err := r.cfg.Suppress(ctx, f.Embedding)
		if err != nil {
			return nil, 0, fmt.Errorf("suppression check: %w", err)
		}
		if hit {
			clear(f.Embedding)
			dropped++
			continue
		}
		kept = append(kept, f)
	}
	return kept, dropped, nil
}

// write commits finished entries in batches until done is closed.
func (r *run) write(ctx context.Context, done <-chan *item) error {
	batch := make([]*item, 0, r.cfg.Batch)
	for x := range done {
		batch = append(batch[:0], x)
	fill:
		for len(batch) < r.cfg.Batch {
			select {
			case y, ok := <-done:
				if !ok {
					break fill
				}
				batch = append(batch, y)
			default:
				break fill
			}
		}
		if err := r.commit(ctx, batch); err != nil {
			return err
		}
		if r.cfg.Progress != nil {
			s := r.summary().Stats
			r.cfg.Progress(s)
		}
	}
	return nil
}

// commit records a batch; if the batch fails as a whole it retries the
// entries one by one, so that one entry the store refuses is recorded as
// failed and the others land.
func (r *run) commit(ctx context.Context, batch []*item) error {
	var live []*item
	for _, x := range batch {
		if x.fatal != nil {
			// Nothing of this batch is stored: the next run does it again.
			return fmt.Errorf("ingest: %w", x.fatal)
		}
		if x.err != nil && ctx.Err() != nil && errors.Is(x.err, ctx.Err()) {
			continue // interrupted, not failed: the next run does it
		}
		live = append(live, x)
	}
	if len(live) == 0 {
		return ctx.Err()
	}
	err := r.commitAll(ctx, live)
	if err == nil || ctx.Err() != nil || !errors.Is(err, store.ErrInvalid) && len(live) == 1 {
		return err
	}
	for _, x := range live {
		err := r.commitAll(ctx, []*item{x})
		if err == nil {
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, store.ErrInvalid) {
			return err // interrupted, or the store itself is failing
		}
		x.err, x.result, x.tracks = err, face.Analysis{}, nil
		if err := r.commitAll(ctx, []*item{x}); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) commitAll(ctx context.Context, xs []*item) error {
	recs := make([]store.IngestRecord, len(xs))
	for i, x := range xs {
		rec := store.IngestRecord{Locator: x.locator, SHA256: x.sha}
		if x.err != nil {
			rec.Failed = reasonCode(x.err)
			recs[i] = rec
			continue
		}
		rec.Image = store.Image{SizeBytes: x.size, Width: x.result.Width, Height: x.result.Height, TakenAt: x.taken}
		rec.Faces = make([]store.Face, len(x.result.Faces))
		rec.Templates = make([][]float32, len(x.result.Faces))
		for j, f := range x.result.Faces {
			rec.Faces[j] = store.Face{Box: f.Box, Landmarks: f.Landmarks, Score: f.Score, Quality: f.Quality,
				ModelID: r.cfg.ModelID, Dim: len(f.Embedding)}
			if j < len(x.tracks) {
				at := x.tracks[j].at
				rec.Faces[j].TrackID, rec.Faces[j].TimeCode = x.tracks[j].id, &at
			}
			rec.Templates[j] = f.Embedding
		}
		recs[i] = rec
	}
	seal := func(f store.Face, t []float32) ([]byte, error) {
		return r.keys.Seal(ctx, r.cfg.SourceID, f.ID, r.cfg.ModelID, t)
	}
	res, err := r.st.CommitIngest(ctx, r.cfg.SourceID, recs, seal)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	var ids []int64
	var vecs [][]float32
	for i, x := range xs {
		if x.err != nil {
			continue
		}
		for j, id := range res[i].FaceIDs {
			ids = append(ids, id)
			vecs = append(vecs, recs[i].Templates[j])
		}
	}
	if len(ids) > 0 {
		// The faces are committed: index them even if the run is being
		// interrupted, so that the index in memory matches the store.
		if err := r.idx.Add(context.WithoutCancel(ctx), ids, vecs); err != nil {
			return fmt.Errorf("ingest: index %d faces: %w", len(ids), err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.maxFace = max(r.maxFace, id)
	}
	for i, x := range xs {
		switch {
		case x.err != nil:
			r.stats.Failed++
			r.errors = append(r.errors, FileError{File: x.locator, Reason: x.err.Error()})
		case res[i].Existing:
			r.stats.Skipped++
		default:
			// An image whose faces were all suppressed is recorded like an
			// image without faces (its size, dimensions and date, no face),
			// so that it is not analysed again by every run, and so that the
			// store, like an image without faces, says nothing about whom
			// it showed: a mark "suppressed here" would itself be data about
			// the person who objected.
			r.stats.Images++
			r.stats.Faces += len(res[i].FaceIDs)
			r.stats.Suppressed += x.suppressed
		}
	}
	return nil
}

// reasonCode is the short cause recorded in the store for a failed entry:
// a class, never a name or a path.
func reasonCode(err error) string {
	switch {
	case errors.Is(err, source.ErrTooLarge), errors.Is(err, imageproc.ErrTooLarge):
		return "too-large"
	case errors.Is(err, source.ErrEscape):
		return "escape"
	case errors.Is(err, imageproc.ErrUnsupportedFormat):
		return "format"
	case errors.Is(err, imageproc.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	case errors.Is(err, store.ErrInvalid):
		return "invalid"
	}
	return "error"
}
