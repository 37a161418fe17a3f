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

	"gabarit/internal/app"
	"gabarit/internal/ingest"
	"gabarit/internal/pipeline"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
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
	// IndexDeferred says why a remote vector index has not taken every
	// face yet: they are stored, and the next catch-up indexes them.
	IndexDeferred string `json:"index_deferred,omitempty"`
	// Error says why the ingest stopped before the end (the source
	// cannot be read or walked, the data directory cannot be opened…).
	Error string `json:"error,omitempty"`
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
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one SOURCE_ID (see gabarit source list)")
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id <= 0 {
		return usageErr(e, fs, "SOURCE_ID %q is not a source id", fs.Arg(0))
	}
	// With --json, the summary is printed whatever happens, with the
	// error that stopped the ingest and what was done before it.
	out := ingestJSON{SourceID: id, Errors: []ingest.FileError{}}
	fail := func(err error) error {
		if *asJSON {
			out.Error = err.Error()
			if jerr := json.NewEncoder(e.stdout).Encode(out); jerr != nil {
				return errors.Join(err, jerr)
			}
		}
		return err
	}

	k, err := df.open(ctx, true)
	if err != nil {
		return fail(err)
	}
	defer k.Close()
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return fail(err)
	}
	defer kit.Close()
	h, err := k.OpenIndex(ctx, kit.ModelID(), kit.Dim())
	if err != nil {
		return fail(err)
	}
	defer h.Close()
	v, err := k.Vault(ctx)
	if err != nil {
		return fail(err)
	}
	bar := newProgressBar(e.stderr, *quiet || *asJSON)
	o := app.IngestOptions{Actor: actor(), Workers: ff.workers, Batch: *batch, Every: *every}
	if bar != nil {
		o.Progress = bar.update
		o.Counted = func(n int) { bar.total = n }
	}
	sum, runErr := app.Ingest(ctx, k, kit, v, h, id, o)
	if bar != nil {
		bar.finish(sum.Stats)
	}
	interrupted := runErr != nil && ctx.Err() != nil
	out = ingestJSON{SourceID: id, Images: sum.Images, Faces: sum.Faces, Skipped: sum.Skipped, Suppressed: sum.Suppressed,
		Errors: sum.Errors, Seconds: sum.Elapsed.Seconds(), Interrupted: interrupted}
	if out.Errors == nil {
		out.Errors = []ingest.FileError{}
	}
	if s := sum.Elapsed.Seconds(); s > 0 {
		out.ImagesPerSec = float64(sum.Images+sum.Failed) / s
	}
	if d := h.Deferred(); d != nil {
		out.IndexDeferred = d.Error()
		fmt.Fprintf(e.stderr, "gabarit: warning: the vector index has not taken every face yet (%v); "+
			"they are stored, and the next catch-up indexes them (gabarit serve every 5 s, or any command that opens the index); "+
			"until then searches do not find them\n", d)
	}
	if errors.Is(runErr, store.ErrNotFound) {
		return fail(fmt.Errorf("%w (see gabarit source list)", runErr))
	}
	if runErr != nil && !interrupted {
		return fail(runErr)
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "source %d: %d images added (%d faces), %d skipped (already ingested), %d faces suppressed, %d errors, %.1f s (%.1f images/s)\n",
			id, out.Images, out.Faces, out.Skipped, out.Suppressed, len(out.Errors), out.Seconds, out.ImagesPerSec)
		for _, fe := range out.Errors {
			fmt.Fprintf(e.stdout, "  error: %s: %s\n", printable(fe.File), printable(fe.Reason))
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
