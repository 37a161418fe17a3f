package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"

	"gabarit/internal/face"
	"gabarit/internal/pipeline"
)

func (e *cmdEnv) compare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	threshold := fs.Float64("threshold", math.NaN(), "same-person threshold (default: the pack's calibrated value)")
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: gabarit compare [--json] [flags] PHOTO_A PHOTO_B")
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitError{2}
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	var embs [2]face.Embedding
	for i, path := range fs.Args() {
		r, err := kit.Pipe.ProcessFile(ctx, path)
		if err != nil {
			return err
		}
		k := face.Largest(r.Faces)
		if k < 0 {
			return fmt.Errorf("%s: %w", path, face.ErrNoFace)
		}
		embs[i] = r.Faces[k].Embedding
	}
	sim, err := embs[0].Cosine(embs[1])
	if err != nil {
		return err
	}
	t := *threshold
	if math.IsNaN(t) {
		t = kit.Manifest.Thresholds.SamePerson
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(struct {
			Similarity float64 `json:"similarity"`
			SamePerson bool    `json:"same_person"`
			Threshold  float64 `json:"threshold"`
		}{math.Round(sim*1e4) / 1e4, sim >= t, t})
	}
	verdict := "not the same person"
	if sim >= t {
		verdict = "the same person"
	}
	_, err = fmt.Fprintf(e.stdout, "similarity %.4f: %s (threshold %.4f, one comparison)\n", sim, verdict, t)
	return err
}
