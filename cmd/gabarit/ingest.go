package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gabarit/internal/ingest"
	"gabarit/internal/pipeline"
	"gabarit/internal/source"
	"gabarit/internal/source/archive"
	"gabarit/internal/source/folder"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
	"gabarit/internal/track"
	"gabarit/internal/vault"
)

// ingestJSON is the summary printed by `gabarit ingest --json`.
type ingestJSON struct {
	SourceID     int64              `json:"source_id"`
	Images       int                `json:"images"`
	Faces        int                `json:"faces"`
	Skipped      int                `json:"skipped"`
	Suppressed   int                `json:"suppressed"`
	Errors       []ingest.FileError `json:"errors"`
	Seconds      float64            `json:"seconds"`
	ImagesPerSec float64            `json:"images_per_second"`
	Interrupted  bool               `json:"interrupted,omitempty"`
}

func (e *cmdEnv) ingest(ctx context.Context, args []string) error {
	fs := e.flags("ingest", "usage: gabarit ingest [--json] [flags] SOURCE_ID\n\n"+
		"Detects, embeds, encrypts and indexes the faces of a declared source. Safe to interrupt\n"+
		"(Ctrl-C, kill -9) and to run again: what is done is kept, nothing is duplicated.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print a JSON summary (images, faces, skipped, errors) instead of text")
	batch := fs.Int("batch", 32, "most images committed in one transaction")
	quiet := fs.Bool("quiet", false, "no progress bar")
	every := fs.Duration("every", video.DefaultEvery, "videos: interval between sampled frames")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one SOURCE_ID (see gabarit source list)")
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id <= 0 {
		return usageErr(e, fs, "SOURCE_ID %q is not a source id", fs.Arg(0))
	}

	k, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer k.Close()
	src, err := k.db.Source(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no source %d (see gabarit source list)", id)
	}
	if err != nil {
		return err
	}
	if src.State != store.StateActive {
		return fmt.Errorf("source %d is %s: nothing is ingested from it", id, src.State)
	}
	var coll source.Source
	var vids *video.Source
	if src.Kind == store.KindVideo {
		vids, err = video.New(src.Locator, video.Options{})
	} else {
		coll, err = openCollection(src)
	}
	if err != nil {
		return fmt.Errorf("source %d: %w", id, err)
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	modelID, dim := kit.manifest.Embedder.ID(), kit.manifest.Embedder.Dim
	h, err := k.openIndex(ctx, modelID, dim)
	if err != nil {
		return err
	}
	defer h.Close()

	bar := newProgressBar(e.stderr, *quiet || *asJSON)
	if bar != nil && coll != nil {
		bar.total = countEntries(ctx, coll)
	}
	v, err := k.vault(ctx)
	if err != nil {
		return err
	}
	same := kit.manifest.Thresholds.SamePerson
	cfg := ingest.Config{SourceID: id, ModelID: modelID, Workers: ff.workers, Batch: *batch,
		// "Never collect me again": faces of people who objected are dropped
		// before anything is stored.
		Suppress: func(ctx context.Context, t []float32) (bool, error) {
			return v.Match(ctx, modelID, t, []vault.Kind{vault.Objection}, same)
		}}
	if bar != nil {
		cfg.Progress = bar.update
	}
	var sum ingest.Summary
	var runErr error
	if vids != nil {
		vc := ingest.VideoConfig{Every: *every, Track: track.Config{SamePerson: kit.manifest.Thresholds.SamePerson}}
		sum, runErr = ingest.RunVideos(ctx, vids, analyzer{kit.pipe}, k.db, k.keys, h.Index, cfg, vc)
	} else {
		sum, runErr = ingest.Run(ctx, coll, analyzer{kit.pipe}, k.db, k.keys, h.Index, cfg)
	}
	if bar != nil {
		bar.finish(sum.Stats)
	}
	interrupted := runErr != nil && ctx.Err() != nil
	// The run is recorded (who ingested which source, when, with what
	// outcome), whatever its outcome.
	detail, err := json.Marshal(map[string]any{"images": sum.Images, "faces": sum.Faces, "skipped": sum.Skipped, "suppressed": sum.Suppressed,
		"errors": sum.Failed, "interrupted": interrupted, "failed": runErr != nil && !interrupted})
	if err == nil {
		_, err = k.db.AppendAudit(context.WithoutCancel(ctx), nil, store.AuditEntry{Actor: actor(), Action: "source.ingest",
			Object: fmt.Sprintf("source/%d", id), Detail: detail})
	}
	if err != nil {
		return errors.Join(runErr, fmt.Errorf("audit the ingest: %w", err))
	}
	if runErr != nil && !interrupted {
		// What was committed is in the store; the next open of the index
		// catches up with it. Save what we have anyway.
		h.Added(sum.MaxFaceID)
		if err := h.Save(context.WithoutCancel(ctx)); err != nil {
			e.logger.Warn("save vector index", "err", err)
		}
		return runErr
	}
	h.Added(sum.MaxFaceID)
	if err := h.Save(context.WithoutCancel(ctx)); err != nil {
		return err
	}

	out := ingestJSON{SourceID: id, Images: sum.Images, Faces: sum.Faces, Skipped: sum.Skipped, Suppressed: sum.Suppressed,
		Errors: sum.Errors, Seconds: sum.Elapsed.Seconds(), Interrupted: interrupted}
	if out.Errors == nil {
		out.Errors = []ingest.FileError{}
	}
	if s := sum.Elapsed.Seconds(); s > 0 {
		out.ImagesPerSec = float64(sum.Images+sum.Failed) / s
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "source %d: %d images added (%d faces), %d skipped (already ingested), %d faces suppressed, %d errors, %.1f s (%.1f images/s)\n",
			id, out.Images, out.Faces, out.Skipped, out.Suppressed, len(out.Errors), out.Seconds, out.ImagesPerSec)
		for _, fe := range out.Errors {
			fmt.Fprintf(e.stdout, "  error: %s: %s\n", fe.File, fe.Reason)
		}
	}
	if interrupted {
		fmt.Fprintln(e.stderr, "gabarit: ingest interrupted; what was done is kept — run the same command again to resume")
		return exitError{130}
	}
	if len(out.Errors) > 0 {
		return exitError{1}
	}
	return nil
}

// openCollection opens the declared collection of a source.
func openCollection(src store.Source) (source.Source, error) {
	switch src.Kind {
	case store.KindFolder:
		return folder.Open(src.Locator, source.Limits{})
	case store.KindArchive:
		return archive.Open(src.Locator, source.Limits{})
	}
	return nil, fmt.Errorf("%s sources cannot be ingested yet", src.Kind)
}

// countEntries counts the entries of a collection for the progress bar's
// ETA; 0 (unknown) if listing fails.
func countEntries(ctx context.Context, src source.Source) int {
	n := 0
	err := src.Walk(ctx, func(source.Item, error) error { n++; return nil })
	if err != nil {
		return 0
	}
	return n
}

// progressBar draws one line on a terminal, at most five times a second.
type progressBar struct {
	w     io.Writer
	total int
	mu    sync.Mutex
	last  time.Time
}

// newProgressBar returns a bar on w if w is a terminal and the bar is
// wanted, else nil.
func newProgressBar(w io.Writer, off bool) *progressBar {
	f, ok := w.(*os.File)
	if off || !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progressBar{w: w}
}

func (b *progressBar) update(s ingest.Stats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	b.draw(s)
}

func (b *progressBar) finish(s ingest.Stats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(s)
	fmt.Fprintln(b.w)
}

func (b *progressBar) draw(s ingest.Stats) {
	done := s.Images + s.Skipped + s.Failed
	rate := 0.0
	if sec := s.Elapsed.Seconds(); sec > 0 {
		rate = float64(s.Images+s.Failed) / sec
	}
	line := fmt.Sprintf("%d files  %d faces  %d skipped  %d errors  %.1f images/s", done, s.Faces, s.Skipped, s.Failed, rate)
	if b.total > 0 {
		const width = 24
		frac := min(1, float64(done)/float64(b.total))
		n := int(frac * width)
		eta := "?"
		if rate > 0 {
			eta = time.Duration(float64(b.total-done) / rate * float64(time.Second)).Round(time.Second).String()
		}
		line = fmt.Sprintf("[%s%s] %d/%d files  %d faces  %.1f images/s  ETA %s", strings.Repeat("=", n),
			strings.Repeat(" ", width-n), done, b.total, s.Faces, rate, eta)
	}
	fmt.Fprintf(b.w, "\r%-100s", line)
}
