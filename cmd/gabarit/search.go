package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"text/tabwriter"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/pipeline"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

func (e *cmdEnv) search(ctx context.Context, args []string) error {
	fs := e.flags("search", "usage: gabarit search --purpose TEXT [--case REF] [--k N | --all] [--threshold T --reason TEXT] [--face I] [--json] PHOTO\n\n"+
		"Finds the stored images of the person in PHOTO. A face is a match at or above the operating\n"+
		"point: the similarity at which a search for someone who is not held returns anything in at most\n"+
		"1% of searches (the FPIR), for this gallery's size. Every result shows its band and the number of\n"+
		"strangers expected at its similarity. A threshold below the operating point (an exploratory\n"+
		"search) needs the examiner role and --reason. Every search is audited (who, when, purpose,\n"+
		"case, the photo's SHA-256, the operating point, the results); the photo is not stored.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	var (
		purpose   = fs.String("purpose", "", "why this search is run (required; audited)")
		caseRef   = fs.String("case", "", "case reference (audited)")
		k         = fs.Int("k", 10, fmt.Sprintf("results to print (1..%d); every match is recorded and counted", search.MaxK))
		all       = fs.Bool("all", false, "print every match, not only the first --k")
		threshold = fs.Float64("threshold", math.NaN(), "least cosine similarity of a match (default: the operating point); lower needs --reason and the examiner role")
		reason    = fs.String("reason", "", "why an exploratory search goes below the operating point (audited)")
		faceNo    = fs.Int("face", -1, "which face of the photo to search, numbered from 0 as `gabarit faces` prints them (default: the best quality)")
		asJSON    = fs.Bool("json", false, "print JSON")
	)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one PHOTO")
	}
	if *purpose == "" {
		return usageErr(e, fs, "%v: give --purpose", search.ErrNoPurpose)
	}
	probe, err := imageproc.ReadFile(fs.Arg(0), 0) // regular files only, within the ingest limit
	if err != nil {
		return err
	}
	ff.minFaceFrac = -1 // a probe's face may be small in its photo

	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	var thr *float64
	if !math.IsNaN(*threshold) {
		thr = threshold
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
	eng, err := app.SearchEngine(ctx, dk, kit, v, h.Index)
	if err != nil {
		return err
	}
	who := actor()
	mayExplore := false
	if thr != nil {
		// Below the operating point only for an account holding the
		// examiner role (gabarit user add --roles examiner cli:NAME).
		u, err := dk.DB.User(ctx, who)
		mayExplore = err == nil && u.Has(store.RoleExaminer)
	}
	res, err := eng.Search(ctx, search.Request{Actor: who, Purpose: *purpose, Case: *caseRef, K: *k,
		Threshold: thr, Reason: *reason, MayExplore: mayExplore, Face: *faceNo, Probe: probe})
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
	if *all {
		res.Hits = res.All
	}
	out := app.NewSearchView(res)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	printSearch(e, out)
	return nil
}

// printSearch prints a search's decision and results as text.
func printSearch(e *cmdEnv, out app.SearchView) {
	if p := out.ProbeFace; p != nil {
		fmt.Fprintf(e.stdout, "searched face %d of %d (%s, quality %.2f)\n", p.Index, out.ProbeFaces, p.Chosen, p.Quality)
		if p.Warning != "" {
			fmt.Fprintf(e.stdout, "warning: %s\n", p.Warning)
		}
	}
	fmt.Fprintf(e.stdout, "operating point %.4f alone, %.4f with look-alikes: FPIR %g for %d stored faces",
		out.OperatingPoint, out.GroupPoint, out.FPIR, out.Gallery)
	if out.Exploratory {
		fmt.Fprintf(e.stdout, "; EXPLORATORY search at %.4f, below the operating point (%s): weak results are not matches",
			out.Threshold, out.ExploratoryReason)
	}
	fmt.Fprintln(e.stdout)
	if !out.Match {
		fmt.Fprintf(e.stdout, "no match: no stored face is a match (search %d, audit entry %d)\n", out.SearchID, out.AuditID)
		return
	}
	what := "match(es)"
	if out.Exploratory {
		what = "result(s): matches and weak leads"
	}
	fmt.Fprintf(e.stdout, "%d %s, showing %d (search %d, audit entry %d)\n",
		out.Above, what, len(out.Results), out.SearchID, out.AuditID)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIMILARITY\tBAND\tSTRANGERS\tLOOK-ALIKES\tFACE\tSOURCE\tBASIS\tBOX\tIMAGE")
	for _, j := range out.Results {
		loc := j.Locator
		if j.TimeCodeMS != nil {
			loc += " @ " + (time.Duration(*j.TimeCodeMS) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%.4f\t%s\t%.2g\t%d\t%d\t%d\t%s\t%.0f,%.0f %.0fx%.0f\t%s\n", j.Similarity, j.Band, j.Strangers, j.Support, j.FaceID,
			j.SourceID, j.LegalBasis, j.Box[0], j.Box[1], j.Box[2], j.Box[3], printable(loc))
	}
	_ = tw.Flush() // stdout; nothing to do on error
	if rest := out.Above - len(out.Results); rest > 0 {
		fmt.Fprintf(e.stdout, "%d more: --all prints every one (or --k N)\n", rest)
	}
	if out.Truncated {
		fmt.Fprintf(e.stdout, "more than %d faces reached the threshold: only the best %d were recorded\n", search.MaxResults, search.MaxResults)
	}
}
