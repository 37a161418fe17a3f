package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"text/tabwriter"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/pipeline"
	"gabarit/internal/search"
)

func (e *cmdEnv) search(ctx context.Context, args []string) error {
	fs := e.flags("search", "usage: gabarit search --purpose TEXT [--case REF] [--k N] [--threshold T] [--face I] [--json] PHOTO\n\n"+
		"Finds the stored images of the person in PHOTO. Every search is audited (who, when,\n"+
		"purpose, case, the photo's SHA-256, k, threshold, results); the photo is not stored.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	var (
		purpose   = fs.String("purpose", "", "why this search is run (required; audited)")
		caseRef   = fs.String("case", "", "case reference (audited)")
		k         = fs.Int("k", 10, fmt.Sprintf("most results (1..%d)", search.MaxK))
		threshold = fs.Float64("threshold", math.NaN(), "least cosine similarity of a match (default: the model pack's same-person threshold)")
		faceNo    = fs.Int("face", -1, "which face of the photo to search, numbered from 0 as `gabarit faces` prints them (default: the largest)")
		asJSON    = fs.Bool("json", false, "print JSON")
	)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one PHOTO")
	}
	if *purpose == "" {
		return usageErr(e, fs, "%v: give --purpose", search.ErrNoPurpose)
	}
	probe, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	ff.minFaceFrac = -1 // a probe's face may be small in its photo

	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	if math.IsNaN(*threshold) {
		*threshold = kit.Manifest.Thresholds.SamePerson
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	modelID := kit.Manifest.Embedder.ID()
	h, err := dk.OpenIndex(ctx, modelID, kit.Manifest.Embedder.Dim)
	if err != nil {
		return err
	}
	defer h.Close()

	v, err := dk.Vault(ctx)
	if err != nil {
		return err
	}
	eng := app.SearchEngine(dk, kit, v, h.Index)
	res, err := eng.Search(ctx, search.Request{Actor: actor(), Purpose: *purpose, Case: *caseRef, K: *k,
		Threshold: *threshold, Face: *faceNo, Probe: probe})
	if errors.Is(err, face.ErrNoFace) {
		return fmt.Errorf("%s: no face found in the photo (search %d audited)", fs.Arg(0), res.SearchID)
	}
	if errors.Is(err, search.ErrBadRequest) {
		return usageErr(e, fs, "%v", err)
	}
	if err != nil {
		return err
	}
	if len(res.Stale) > 0 {
		// Faces deleted by another process since this index was saved: drop
		// them here too (the next writer rebuilds the saved file).
		if err := h.Index.Delete(context.WithoutCancel(ctx), res.Stale); err != nil {
			e.logger.Warn("drop stale index entries", "err", err)
		}
	}

	out := app.NewSearchView(res, *threshold)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if !out.Match {
		fmt.Fprintf(e.stdout, "no match: no stored face reaches similarity %.4f (search %d, audit entry %d)\n",
			*threshold, res.SearchID, res.AuditID)
		return nil
	}
	fmt.Fprintf(e.stdout, "%d match(es) at similarity ≥ %.4f (search %d, audit entry %d)\n",
		len(out.Results), *threshold, res.SearchID, res.AuditID)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIMILARITY\tFACE\tSOURCE\tBASIS\tBOX\tIMAGE")
	for _, j := range out.Results {
		loc := j.Locator
		if j.TimeCodeMS != nil {
			loc += " @ " + (time.Duration(*j.TimeCodeMS) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%.4f\t%d\t%d\t%s\t%.0f,%.0f %.0fx%.0f\t%s\n", j.Similarity, j.FaceID, j.SourceID, j.LegalBasis,
			j.Box[0], j.Box[1], j.Box[2], j.Box[3], loc)
	}
	return tw.Flush()
}
