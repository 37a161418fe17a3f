package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"strings"

	"gabarit/internal/face"
	"gabarit/internal/pipeline"
)

// faceJSON is the shape of one face in `gabarit faces --json`.
type faceJSON struct {
	Box       [4]float64    `json:"box"` // x, y, w, h in original pixels
	Score     float64       `json:"score"`
	Landmarks [5][2]float64 `json:"landmarks"`
	Quality   float64       `json:"quality"`
}

// fileJSON is one output line of `gabarit faces --json`.
type fileJSON struct {
	File   string     `json:"file"`
	Width  int        `json:"width,omitempty"`
	Height int        `json:"height,omitempty"`
	Faces  []faceJSON `json:"faces"`
	Error  string     `json:"error,omitempty"`
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func toFaceJSON(r *pipeline.Result) []faceJSON {
	out := make([]faceJSON, 0, len(r.Faces))
	for _, f := range r.Faces {
		j := faceJSON{
			Box:     [4]float64{round2(f.Box.X), round2(f.Box.Y), round2(f.Box.W), round2(f.Box.H)},
			Score:   math.Round(f.Score*1e4) / 1e4,
			Quality: math.Round(f.Quality*1e4) / 1e4,
		}
		for k, p := range f.Landmarks {
			j.Landmarks[k] = [2]float64{round2(p.X), round2(p.Y)}
		}
		out = append(out, j)
	}
	return out
}

func (e *cmdEnv) faces(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("faces", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	asJSON := fs.Bool("json", false, "one JSON object per file per line")
	drawDir := fs.String("draw", "", "also write each image with its boxes and landmarks as PNG into this folder")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: gabarit faces [--json] [flags] FILE...")
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	files := fs.Args()
	if len(files) == 0 {
		fs.Usage()
		return exitError{2}
	}
	kit, err := ff.open(ctx, pipeline.Config{SkipEmbedding: true})
	if err != nil {
		return err
	}
	defer kit.Close()
	failed := 0
	enc := json.NewEncoder(e.stdout)
	pipeline.ForEach(ctx, len(files), ff.workers,
		func(ctx context.Context, i int) fileJSON {
			r, err := kit.Pipe.ProcessFile(ctx, files[i])
			if err != nil {
				return fileJSON{File: files[i], Faces: []faceJSON{}, Error: err.Error()}
			}
			face.ReadingOrder(r.Faces) // numbered as `gabarit search --face` and the console number them
			if *drawDir != "" {
				if err := drawFaces(*drawDir, files[i], r); err != nil {
					return fileJSON{File: files[i], Faces: []faceJSON{}, Error: "draw: " + err.Error()}
				}
			}
			return fileJSON{File: files[i], Width: r.Width, Height: r.Height, Faces: toFaceJSON(r)}
		},
		func(i int, v fileJSON) {
			if v.Error != "" {
				failed++
			}
			if *asJSON {
				_ = enc.Encode(v) // a broken stdout ends the command below through ctx or exit status
				return
			}
			if v.Error != "" {
				// The decoder's errors name the file already.
				fmt.Fprintf(e.stdout, "%s: error: %s\n", printable(v.File), printable(strings.TrimPrefix(v.Error, v.File+": ")))
				return
			}
			fmt.Fprintf(e.stdout, "%s: %d×%d, %d face(s)\n", printable(v.File), v.Width, v.Height, len(v.Faces))
			for k, f := range v.Faces {
				fmt.Fprintf(e.stdout, "  #%d box x=%.0f y=%.0f w=%.0f h=%.0f score=%.3f quality=%.2f\n",
					k, f.Box[0], f.Box[1], f.Box[2], f.Box[3], f.Score, f.Quality)
			}
		})
	if err := ctx.Err(); err != nil {
		return err
	}
	if failed > 0 {
		fmt.Fprintf(e.stderr, "gabarit: %d of %d file(s) could not be read\n", failed, len(files))
		return exitError{1}
	}
	return nil
}
