package main

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"gabarit/internal/app"
	"gabarit/internal/eval"
	"gabarit/internal/face"
	"gabarit/internal/modelpack"
	"gabarit/internal/pipeline"
	"gabarit/internal/rights"
)

// evalOpenSet measures open-set identification of the search's decision
// rules on identity folders: see eval.OpenSet for the protocol.
func (e *cmdEnv) evalOpenSet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval openset", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	root := fs.String("root", "", "identity-per-folder set whose identities are split into mated and non-mated (e.g. ../shared/data/celeba-dev)")
	var distractors multiFlag
	fs.Var(&distractors, "distractors", "folder of other people's photos added to the gallery (repeatable)")
	templates := fs.String("templates", "", "keep the faces found in this file and reuse them on the next run (biometric data: keep it private)")
	sizesFlag := fs.String("sizes", "500,1000,0", "gallery sizes in faces, comma-separated (0: every face)")
	fpir := fs.Float64("fpir", 0.01, "target false-positive identification rate")
	folds := fs.Int("folds", 4, "folds of identities (each fold's identities are the non-mated searches once)")
	mated := fs.Int("mated", 3, "photos of each gallery identity searched as mated probes")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *root == "" || fs.NArg() > 0 {
		return usageErr(e, fs, "want --root DIR")
	}
	var sizes []int
	for _, f := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return usageErr(e, fs, "--sizes %q: want whole numbers ≥ 0, comma-separated", *sizesFlag)
		}
		sizes = append(sizes, n)
	}
	photos, err := e.openSetPhotos(ctx, &ff, *root, distractors, *templates)
	if err != nil {
		return err
	}
	photos, dropped := eval.DropCrossDuplicates(photos)
	for _, f := range dropped {
		fmt.Fprintf(e.stderr, "left out (the same picture under another identity): %s\n", printable(f))
	}
	dec, err := eval.BuildDecider(photos, eval.DefaultMinQuality)
	if err != nil {
		return err
	}
	rules := []eval.Rule{
		eval.Threshold("pairwise FAR 1e-3 (before)", modelpack.DefaultSamePerson),
		eval.Calibrated("calibrated for the gallery"),
	}
	rules = append(rules, eval.Levers()...)
	rows, err := eval.OpenSet(photos, eval.OpenSetConfig{Folds: *folds, MatedProbes: *mated, Sizes: sizes,
		FPIR: *fpir, Rules: rules, Seed: 1, Log: e.stderr})
	if err != nil {
		return err
	}
	type pointsJSON struct {
		Faces  int     `json:"gallery_faces"`
		Single float64 `json:"single"`
		Group  float64 `json:"group"`
	}
	var predicted []pointsJSON
	for _, n := range []int{1e3, 1e4, 1e5, 1e6, 1e7, 1e9} {
		p := dec.Points(n, *fpir)
		predicted = append(predicted, pointsJSON{n, p.Single, p.Group})
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"rows": rows, "dropped": dropped,
			"single_tail": dec.Single.Points(), "single_slope": dec.Single.Slope(),
			"group_tail": dec.Group.Points(), "group_slope": dec.Group.Slope(), "operating_points": predicted})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tFACES\tPEOPLE\tNON-MATED\tMATED\tFPIR\tFNIR\tRECALL\tSTRANGERS/MATED\tLOW-Q FPIR\tLOW-Q FNIR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.4f\t%.4f\t%.3f\t%.3f\t%.4f (%d)\t%.4f (%d)\n", r.Rule, r.Faces, r.People,
			r.NonMated, r.Mated, r.FPIR, r.FNIR, r.Recall, r.StrangersPerMated,
			r.LowQualityFPIR, r.LowQualityNonMated, r.LowQualityFNIR, r.LowQualityMated)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ns, ng := eval.TailCounts(photos, eval.DefaultMinQuality)
	fmt.Fprintf(e.stdout, "\nsingle-face impostor tail of every photo, %d comparisons (slope %.4f beyond the last point):\n", ns, dec.Single.Slope())
	for _, p := range dec.Single.Points() {
		fmt.Fprintf(e.stdout, "\t{Score: %.4f, FAR: %.4g},\n", p.Score, p.FAR)
	}
	fmt.Fprintf(e.stdout, "group (second-best) impostor tail, %d comparisons (slope %.4f beyond the last point):\n", ng, dec.Group.Slope())
	for _, p := range dec.Group.Points() {
		fmt.Fprintf(e.stdout, "\t{Score: %.4f, FAR: %.4g},\n", p.Score, p.FAR)
	}
	fmt.Fprintf(e.stdout, "operating points at FPIR %g (single face / group second-best):\n", *fpir)
	for _, p := range predicted {
		fmt.Fprintf(e.stdout, "\t%d faces: %.4f / %.4f\n", p.Faces, p.Single, p.Group)
	}
	return nil
}

// openSetPhotos finds and embeds every face of every photo of root and the
// distractor folders, or reads them from the templates file when it exists.
func (e *cmdEnv) openSetPhotos(ctx context.Context, ff *faceFlags, root string, distractors []string, templates string) ([]eval.Photo, error) {
	if templates != "" {
		f, err := os.Open(templates)
		if err == nil {
			defer f.Close()
			var photos []eval.Photo
			if err := gob.NewDecoder(f).Decode(&photos); err != nil {
				return nil, fmt.Errorf("%s: %w", templates, err)
			}
			return photos, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	var photos []eval.Photo
	names, files, err := identityFolders(root)
	if err != nil {
		return nil, err
	}
	for i, fl := range files {
		for _, f := range fl {
			photos = append(photos, eval.Photo{Set: filepath.Base(root), Identity: names[i], File: f})
		}
	}
	for _, d := range distractors {
		fl, err := imageFiles(d)
		if err != nil {
			return nil, err
		}
		for _, f := range fl {
			rel, _ := filepath.Rel(d, f)
			id := filepath.Base(d) + "/" + strings.SplitN(rel, string(filepath.Separator), 2)[0]
			if !strings.Contains(rel, string(filepath.Separator)) || strings.Contains(id, "/_") {
				id = "" // a photo of people without a label
			}
			photos = append(photos, eval.Photo{Set: filepath.Base(d), Identity: id, File: f, Distractor: true})
		}
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return nil, err
	}
	defer kit.Close()
	done := 0
	pipeline.ForEach(ctx, len(photos), ff.workers,
		func(ctx context.Context, i int) []face.Face {
			r, err := kit.Pipe.ProcessFile(ctx, photos[i].File)
			if err != nil {
				return nil
			}
			photos[i].Subject = face.Primary(r.Faces, r.Width, r.Height)
			return r.Faces
		},
		func(i int, faces []face.Face) {
			for _, f := range faces {
				photos[i].Faces = append(photos[i].Faces, eval.PhotoFace{Emb: f.Embedding, Quality: f.Quality, Size: f.Box.H})
			}
			if len(faces) == 0 {
				photos[i].Subject = -1
			}
			done++
			if done%200 == 0 || done == len(photos) {
				fmt.Fprintf(e.stderr, "\ranalysed %d/%d images", done, len(photos))
				if done == len(photos) {
					fmt.Fprintln(e.stderr)
				}
			}
		})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if templates != "" {
		f, err := os.OpenFile(templates, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, err
		}
		if err := gob.NewEncoder(f).Encode(photos); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", templates, err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	}
	return photos, nil
}

// evalRights measures the candidate sets of rights requests (see
// eval.Rights): how many of a person's faces the candidate set finds and
// the strict pre-selection takes, and how many strangers' faces come with
// them, for 1, 2 and 3 selfies.
func (e *cmdEnv) evalRights(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval rights", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	root := fs.String("root", "", "identity-per-folder set (e.g. ../shared/data/celeba-dev)")
	var distractors multiFlag
	fs.Var(&distractors, "distractors", "folder of other people's photos added to the gallery (repeatable)")
	templates := fs.String("templates", "", "keep the faces found in this file and reuse them on the next run (biometric data: keep it private)")
	selfiesFlag := fs.String("selfies", "1,2,3", "numbers of selfies per request, comma-separated")
	fpir := fs.Float64("fpir", rights.StrictFPIR, "target FPIR of the pre-selection")
	selfieMatch := fs.Float64("selfie-match", app.SelfieMatch, "least similarity of two selfies of one request")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *root == "" || fs.NArg() > 0 {
		return usageErr(e, fs, "want --root DIR")
	}
	var ks []int
	for _, f := range strings.Split(*selfiesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return usageErr(e, fs, "--selfies %q: want whole numbers ≥ 1, comma-separated", *selfiesFlag)
		}
		ks = append(ks, n)
	}
	photos, err := e.openSetPhotos(ctx, &ff, *root, distractors, *templates)
	if err != nil {
		return err
	}
	photos, _ = eval.DropCrossDuplicates(photos)
	dec, err := modelpack.DefaultOpenSet().Decider()
	if err != nil {
		return err
	}
	rows, err := eval.Rights(photos, dec, eval.RightsConfig{Selfies: ks, FPIR: *fpir, SelfieMatch: *selfieMatch})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SELFIES\tREQUESTS\tREFUSED\tGALLERY\tSTRICT/GROUP\tCANDIDATES\tCAND. RECALL\tPRESEL. RECALL\tSTRANGERS/REQ\tSTRANGERS PRESEL.\tREQ. WITH ONE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.4f/%.4f\t%.1f\t%.3f\t%.3f\t%.2f\t%d\t%.4f\n", r.Selfies, r.Requests, r.Refused, r.Gallery,
			r.Strict, r.Group, r.Candidates, r.CandidateRecall, r.PreselectedRecall, r.Strangers, r.StrangersPreselected, r.RequestsWithStranger)
	}
	return tw.Flush()
}
