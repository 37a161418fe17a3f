package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gabarit/internal/eval"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/pipeline"
)

func (e *cmdEnv) eval(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "eval", args,
		subcommand{"pairs", e.evalPairs},
		subcommand{"ident", e.evalIdent},
		subcommand{"makepairs", func(_ context.Context, a []string) error { return e.evalMakePairs(a) }},
		subcommand{"calibrate", e.evalCalibrate},
		subcommand{"search", e.evalSearch},
		subcommand{"openset", e.evalOpenSet},
		subcommand{"rights", e.evalRights})
}

// embedAll returns the primary face's template of every file (nil when the
// file has no face or cannot be read), computed in parallel, with a progress
// line on stderr.
func (e *cmdEnv) embedAll(ctx context.Context, kit *faceKit, workers int, files []string) []face.Embedding {
	out := make([]face.Embedding, len(files))
	done := 0
	pipeline.ForEach(ctx, len(files), workers,
		func(ctx context.Context, i int) face.Embedding {
			r, err := kit.Pipe.ProcessFile(ctx, files[i])
			if err != nil {
				return nil
			}
			k := face.Primary(r.Faces, r.Width, r.Height)
			if k < 0 {
				return nil
			}
			return r.Faces[k].Embedding
		},
		func(i int, v face.Embedding) {
			out[i] = v
			done++
			if done%200 == 0 || done == len(files) {
				fmt.Fprintf(e.stderr, "\rembedded %d/%d images", done, len(files))
				if done == len(files) {
					fmt.Fprintln(e.stderr)
				}
			}
		})
	return out
}

func (e *cmdEnv) evalPairs(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval pairs", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	pairsFile := fs.String("pairs", "", "pairs file in the LFW pairs.txt format")
	csvFile := fs.String("csv", "", "pairs as CSV: file_x,file_y,Yes|No (file names looked up under --root); folds are assigned round-robin")
	root := fs.String("root", "", "folder of identity folders the pairs refer to")
	plot := fs.String("plot", "", "write the ROC curve to this PNG file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if (*pairsFile == "") == (*csvFile == "") || *root == "" {
		fmt.Fprintln(e.stderr, "gabarit eval pairs: --root and one of --pairs or --csv are required")
		return exitError{2}
	}
	var pairs []eval.Pair
	var err error
	if *csvFile != "" {
		pairs, err = csvPairs(*csvFile, *root, 10)
		*pairsFile = *csvFile
	} else {
		pairs, err = lfwPairs(*pairsFile, *root)
	}
	if err != nil {
		return err
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	index := map[string]int{}
	var files []string
	for _, p := range pairs {
		for _, name := range []string{p.A, p.B} {
			if _, ok := index[name]; !ok {
				index[name] = len(files)
				files = append(files, name)
			}
		}
	}
	embs := e.embedAll(ctx, kit, ff.workers, files)
	if err := ctx.Err(); err != nil {
		return err
	}
	scores := make([]eval.Score, len(pairs))
	for i, p := range pairs {
		a, b := embs[index[p.A]], embs[index[p.B]]
		s := eval.Score{Fold: p.Fold, Same: p.Same, Failed: a == nil || b == nil}
		if !s.Failed {
			s.Sim, _ = a.Cosine(b) // same pack, same length
		}
		scores[i] = s
	}
	v, err := eval.Verify(scores)
	if err != nil {
		return err
	}
	failedImages := 0
	for _, em := range embs {
		if em == nil {
			failedImages++
		}
	}
	if *plot != "" {
		pf, err := os.Create(*plot)
		if err != nil {
			return err
		}
		title := fmt.Sprintf("ROC - %s, pack %s", filepath.Base(*pairsFile), kit.Manifest.Name)
		if err := eval.WriteROCPNG(pf, title, scores, v); err != nil {
			pf.Close()
			return err
		}
		if err := pf.Close(); err != nil {
			return err
		}
	}
	return printResult(e.stdout, *asJSON, struct {
		eval.Verification
		FailedImages int    `json:"failed_images"`
		Pack         string `json:"pack"`
	}{v, failedImages, kit.Manifest.Name})
}

func lfwPairs(path, root string) ([]eval.Pair, error) {
	b, err := imageproc.ReadFile(path, 0) // a regular file, never a FIFO waited on
	if err != nil {
		return nil, err
	}
	_, pairs, err := eval.ParsePairs(bytes.NewReader(b), root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pairs, nil
}

// csvPairs reads pairs written as CSV rows file_x,file_y,decision (a header
// row first; decision Yes or No, any case), finding each file by its base
// name anywhere under root. Pair i goes to fold i mod folds.
func csvPairs(path, root string, folds int) ([]eval.Pair, error) {
	b, err := imageproc.ReadFile(path, 0)
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	files, err := imageFiles(root)
	if err != nil {
		return nil, err
	}
	byName := map[string]string{}
	for _, p := range files {
		b := filepath.Base(p)
		if _, dup := byName[b]; dup {
			byName[b] = "" // ambiguous
			continue
		}
		byName[b] = p
	}
	var pairs []eval.Pair
	for i, r := range rows {
		if i == 0 || len(r) < 3 {
			if i > 0 {
				return nil, fmt.Errorf("%s line %d: want file_x,file_y,decision", path, i+1)
			}
			continue
		}
		var ab [2]string
		for k := range 2 {
			p, ok := byName[filepath.Base(r[k])]
			if !ok || p == "" {
				return nil, fmt.Errorf("%s line %d: %s is missing or ambiguous under %s", path, i+1, filepath.Base(r[k]), root)
			}
			ab[k] = p
		}
		var same bool
		switch strings.ToLower(strings.TrimSpace(r[2])) {
		case "yes", "1", "true", "same":
			same = true
		case "no", "0", "false", "different":
		default:
			return nil, fmt.Errorf("%s line %d: decision %q is not Yes or No", path, i+1, r[2])
		}
		pairs = append(pairs, eval.Pair{Fold: len(pairs) % folds, Same: same, A: ab[0], B: ab[1]})
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%s: no pairs", path)
	}
	return pairs, nil
}

// identityFolders lists root's identity folders (names starting with "_"
// are skipped) and their image files, sorted.
func identityFolders(root string) (names []string, files [][]string, err error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, err
	}
	for _, en := range entries {
		if !en.IsDir() || strings.HasPrefix(en.Name(), "_") || strings.HasPrefix(en.Name(), ".") {
			continue
		}
		imgs, err := imageFiles(filepath.Join(root, en.Name()))
		if err != nil {
			return nil, nil, err
		}
		if len(imgs) == 0 {
			continue
		}
		names = append(names, en.Name())
		files = append(files, imgs)
	}
	return names, files, nil
}

// imageFiles lists the image files under dir, recursively, sorted.
func imageFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && imageproc.IsImageName(p) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func (e *cmdEnv) evalIdent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval ident", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	root := fs.String("root", "", "folder of identity folders: the first photo of each is the gallery, the rest are probes")
	distractors := fs.String("distractors", "", "folder of images of other people added to the gallery")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *root == "" {
		fmt.Fprintln(e.stderr, "gabarit eval ident: --root is required")
		return exitError{2}
	}
	names, files, err := identityFolders(*root)
	if err != nil {
		return err
	}
	var distFiles []string
	if *distractors != "" {
		if distFiles, err = imageFiles(*distractors); err != nil {
			return err
		}
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	var all []string
	for _, fl := range files {
		all = append(all, fl...)
	}
	all = append(all, distFiles...)
	embs := e.embedAll(ctx, kit, ff.workers, all)
	if err := ctx.Err(); err != nil {
		return err
	}
	var gallery, probes, dist []eval.Sample
	k := 0
	for i, fl := range files {
		for j := range fl {
			s := eval.Sample{Identity: names[i], Emb: embs[k], Failed: embs[k] == nil}
			if j == 0 {
				gallery = append(gallery, s)
			} else {
				probes = append(probes, s)
			}
			k++
		}
	}
	for range distFiles {
		dist = append(dist, eval.Sample{Identity: "", Emb: embs[k], Failed: embs[k] == nil})
		k++
	}
	res, err := eval.Identify(gallery, probes, dist)
	if err != nil {
		return err
	}
	return printResult(e.stdout, *asJSON, struct {
		eval.Identification
		Pack string `json:"pack"`
	}{res, kit.Manifest.Name})
}

func (e *cmdEnv) evalMakePairs(args []string) error {
	fs := flag.NewFlagSet("eval makepairs", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	root := fs.String("root", "", "folder of identity folders")
	folds := fs.Int("folds", 10, "number of folds")
	n := fs.Int("n", 300, "matched and mismatched pairs per fold")
	seed := fs.Int64("seed", 1, "random seed")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *root == "" {
		fmt.Fprintln(e.stderr, "gabarit eval makepairs: --root is required")
		return exitError{2}
	}
	return eval.MakePairs(*root, *folds, *n, *seed, e.stdout)
}

// evalCalibrate chooses the same-person threshold for a false-accept rate
// from every impostor pair of the identity folders under root.
func (e *cmdEnv) evalCalibrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval calibrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	var roots multiFlag
	fs.Var(&roots, "root", "folder of identity folders (repeatable)")
	far := fs.Float64("far", 1e-3, "false-accept rate to calibrate for")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if len(roots) == 0 {
		fmt.Fprintln(e.stderr, "gabarit eval calibrate: --root is required")
		return exitError{2}
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	var ids []string
	var all []string
	for _, r := range roots {
		names, files, err := identityFolders(r)
		if err != nil {
			return err
		}
		for i, fl := range files {
			for _, f := range fl {
				ids = append(ids, r+"/"+names[i])
				all = append(all, f)
			}
		}
	}
	embs := e.embedAll(ctx, kit, ff.workers, all)
	if err := ctx.Err(); err != nil {
		return err
	}
	var genuine, impostor []float64
	failures := 0
	for i := range embs {
		if embs[i] == nil {
			failures++
			continue
		}
		for j := i + 1; j < len(embs); j++ {
			if embs[j] == nil {
				continue
			}
			s, _ := embs[i].Cosine(embs[j]) // same pack, same length
			if ids[i] == ids[j] {
				genuine = append(genuine, s)
			} else {
				impostor = append(impostor, s)
			}
		}
	}
	t, achieved := eval.ThresholdForFAR(impostor, *far)
	accepted := 0
	for _, s := range genuine {
		if s >= t {
			accepted++
		}
	}
	tar := math.NaN()
	if len(genuine) > 0 {
		tar = float64(accepted) / float64(len(genuine))
	}
	return printResult(e.stdout, *asJSON, struct {
		FARTarget     float64 `json:"far_target"`
		Threshold     float64 `json:"threshold"`
		FAR           float64 `json:"far"`
		TAR           float64 `json:"tar"`
		GenuinePairs  int     `json:"genuine_pairs"`
		ImpostorPairs int     `json:"impostor_pairs"`
		Images        int     `json:"images"`
		Failures      int     `json:"failures"`
		Pack          string  `json:"pack"`
	}{*far, math.Round(t*1e4) / 1e4, achieved, tar, len(genuine), len(impostor), len(all), failures, kit.Manifest.Name})
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
