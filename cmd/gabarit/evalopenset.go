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
	"strings"

	"gabarit/internal/eval"
	"gabarit/internal/face"
	"gabarit/internal/pipeline"
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
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *root == "" || fs.NArg() > 0 {
		return usageErr(e, fs, "want --root DIR")
	}
	photos, err := e.openSetPhotos(ctx, &ff, *root, distractors, *templates)
	if err != nil {
		return err
	}
	_ = photos
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

var _ = json.Marshal
