package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gabarit/internal/face"
	"gabarit/internal/pipeline"
)

// templateFile is one photo's faces in a `bench templates` file.
type templateFile struct {
	File  string         `json:"file"` // relative to --photos
	Faces []templateFace `json:"faces"`
	Error string         `json:"error,omitempty"`
}

type templateFace struct {
	Box       [4]float64 `json:"box"`
	Embedding []float32  `json:"embedding"`
}

// benchTemplates writes the templates of a folder of photos on one device
// (--out), or compares two such files (--compare A B): the check that a GPU
// finds the same faces as the CPU and gives them the same templates.
func (e *cmdEnv) benchTemplates(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench templates", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	photos := fs.String("photos", "", "folder of photos (searched recursively)")
	out := fs.String("out", "", "write the faces and templates found, one JSON line per photo, to this file (evaluation photos only: templates are personal data)")
	compare := fs.Bool("compare", false, "compare the two template files given as arguments instead")
	minCos := fs.Float64("min-cosine", 0.999, "with --compare: the least cosine between the two templates of one face for the files to agree")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *compare {
		if fs.NArg() != 2 {
			fmt.Fprintln(e.stderr, "usage: gabarit bench templates --compare A.jsonl B.jsonl")
			return exitError{2}
		}
		res, err := compareTemplateFiles(fs.Arg(0), fs.Arg(1), *minCos)
		if err != nil {
			return err
		}
		if err := json.NewEncoder(e.stdout).Encode(res); err != nil {
			return err
		}
		if res["agree"] != true {
			return exitError{1}
		}
		return nil
	}
	if *photos == "" || *out == "" {
		fmt.Fprintln(e.stderr, "usage: gabarit bench templates --photos DIR --out FILE [--device cpu|cuda]")
		return exitError{2}
	}
	files, err := imageFiles(*photos)
	if err != nil || len(files) == 0 {
		return fmt.Errorf("bench templates: no photos in %s: %v", *photos, err)
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	var werr error
	pipeline.ForEach(ctx, len(files), ff.workers, func(ctx context.Context, i int) templateFile {
		rel, _ := filepath.Rel(*photos, files[i])
		tf := templateFile{File: rel, Faces: []templateFace{}}
		r, err := kit.Pipe.ProcessFile(ctx, files[i])
		if err != nil {
			tf.Error = err.Error()
			return tf
		}
		for _, fc := range r.Faces {
			tf.Faces = append(tf.Faces, templateFace{Box: [4]float64{fc.Box.X, fc.Box.Y, fc.Box.W, fc.Box.H}, Embedding: fc.Embedding})
		}
		return tf
	}, func(_ int, tf templateFile) {
		if werr == nil {
			werr = enc.Encode(tf)
		}
	})
	if werr == nil {
		werr = w.Flush()
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = ctx.Err()
	}
	return werr
}

func readTemplateFile(path string) (map[string]templateFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]templateFile{}
	dec := json.NewDecoder(f)
	for dec.More() {
		var tf templateFile
		if err := dec.Decode(&tf); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[tf.File] = tf
	}
	return out, nil
}

// compareTemplateFiles matches the faces of each photo in a and b (by box
// overlap, IoU ≥ 0.5) and measures the cosine between matched templates.
func compareTemplateFiles(pa, pb string, minCos float64) (map[string]any, error) {
	a, err := readTemplateFile(pa)
	if err != nil {
		return nil, err
	}
	b, err := readTemplateFile(pb)
	if err != nil {
		return nil, err
	}
	var cos []float64
	facesA, facesB, onlyA, onlyB, missing, errs := 0, 0, 0, 0, 0, 0
	for name, fa := range a {
		fb, ok := b[name]
		if !ok {
			missing++
			continue
		}
		if fa.Error != "" || fb.Error != "" {
			errs++
			continue
		}
		facesA += len(fa.Faces)
		facesB += len(fb.Faces)
		used := make([]bool, len(fb.Faces))
		for _, x := range fa.Faces {
			best, bi := 0.5, -1
			for j, y := range fb.Faces {
				if iou := templateBoxIoU(x.Box, y.Box); !used[j] && iou >= best {
					best, bi = iou, j
				}
			}
			if bi < 0 {
				onlyA++
				continue
			}
			used[bi] = true
			c, err := face.Embedding(x.Embedding).Cosine(fb.Faces[bi].Embedding)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			cos = append(cos, c)
		}
		for _, u := range used {
			if !u {
				onlyB++
			}
		}
	}
	missing += len(b) - (len(a) - missing)
	sort.Float64s(cos)
	res := map[string]any{
		"photos": len(a), "photos_missing": missing, "photos_with_errors": errs,
		"faces_a": facesA, "faces_b": facesB, "matched": len(cos), "only_a": onlyA, "only_b": onlyB,
		"min_cosine_required": minCos,
	}
	under := 0
	if len(cos) > 0 {
		sum := 0.0
		for _, c := range cos {
			sum += c
			if c < minCos {
				under++
			}
		}
		res["cosine_min"] = math.Round(cos[0]*1e6) / 1e6
		res["cosine_p01"] = math.Round(cos[len(cos)/100]*1e6) / 1e6
		res["cosine_mean"] = math.Round(sum/float64(len(cos))*1e6) / 1e6
	}
	res["under_min_cosine"] = under
	res["agree"] = len(cos) > 0 && onlyA == 0 && onlyB == 0 && missing == 0 && under == 0
	return res, nil
}

func templateBoxIoU(a, b [4]float64) float64 {
	x0, y0 := math.Max(a[0], b[0]), math.Max(a[1], b[1])
	x1, y1 := math.Min(a[0]+a[2], b[0]+b[2]), math.Min(a[1]+a[3], b[1]+b[3])
	inter := math.Max(x1-x0, 0) * math.Max(y1-y0, 0)
	union := a[2]*a[3] + b[2]*b[3] - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}
