package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"gabarit/internal/imageproc"
	"gabarit/internal/ingest"
	"gabarit/internal/pipeline"
	"gabarit/internal/search"
	"gabarit/internal/source"
	"gabarit/internal/source/folder"
	"gabarit/internal/store"
)

// evalSearchJSON is the report of `gabarit eval search --json`.
type evalSearchJSON struct {
	Identities       int     `json:"identities"`
	GalleryImages    int     `json:"gallery_images"`
	GalleryFaces     int     `json:"gallery_faces"`
	Probes           int     `json:"probes"`
	ProbesNoFace     int     `json:"probes_without_face"`
	Top1             float64 `json:"top1"`
	Top5             float64 `json:"top5"`
	NoMatch          int     `json:"probes_with_no_match"`
	Strangers        int     `json:"strangers_returned"`
	ProbesStrangers  int     `json:"probes_with_a_stranger_returned"`
	StrangerAtTop1   int     `json:"probes_with_a_stranger_first"`
	Threshold        float64 `json:"threshold"`
	PipelinePerSec   float64 `json:"pipeline_images_per_second"`
	IngestPerSec     float64 `json:"ingest_images_per_second"`
	IngestOfPipeline float64 `json:"ingest_of_pipeline"`
	SearchMeanMS     float64 `json:"search_mean_ms"`
}

// evalSearch holds back the first photo of every identity of an
// identity-per-folder set, ingests the others as a folder source through
// the real ingest path (store, encryption, index) into a fresh data
// directory, then searches each held-back photo and reports how often the
// person comes first or in the first five, and how many strangers come back
// above the threshold. It also times the face pipeline alone on the same
// gallery, to show what the store and index cost.
func (e *cmdEnv) evalSearch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval search", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	root := fs.String("root", "", "identity-per-folder photo set, e.g. ../shared/data/celeba-dev")
	k := fs.Int("k", 5, "results per search")
	threshold := fs.Float64("threshold", 0, "least similarity of a match (default: the operating point for the gallery)")
	asJSON := fs.Bool("json", false, "print JSON")
	noPipe := fs.Bool("no-pipeline-pass", false, "skip timing the pipeline alone")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the ingest phase to this file")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *root == "" || fs.NArg() > 0 {
		return usageErr(e, fs, "want --root DIR")
	}
	names, files, err := identityFolders(*root)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "gabarit-eval-search-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	gallery := filepath.Join(work, "gallery")
	var probes []string
	var probeOf []string
	nGallery := 0
	for i, name := range names {
		if len(files[i]) < 2 {
			continue
		}
		probes = append(probes, files[i][0])
		probeOf = append(probeOf, name)
		for _, f := range files[i][1:] {
			if err := copyFile(f, filepath.Join(gallery, name, filepath.Base(f))); err != nil {
				return err
			}
			nGallery++
		}
	}
	if df.dir == "" {
		df.dir = filepath.Join(work, "data")
	}
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	var thr *float64 // nil: the operating point
	if *threshold != 0 {
		thr = threshold
	}
	cal, err := kit.OpenSet()
	if err != nil {
		return err
	}
	rep := evalSearchJSON{Identities: len(probes), Probes: len(probes), Threshold: *threshold}
	src, err := folder.Open(gallery, source.Limits{})
	if err != nil {
		return err
	}

	if !*noPipe {
		// The face pipeline alone on the same files, same workers.
		var datas [][]byte
		err := src.Walk(ctx, func(it source.Item, err error) error {
			if err != nil {
				return err
			}
			rc, err := it.Open()
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			datas = append(datas, b)
			return err
		})
		if err != nil {
			return err
		}
		start := time.Now()
		pipeline.ForEach(ctx, len(datas), ff.workers, func(ctx context.Context, i int) error {
			_, err := kit.Pipe.ProcessBytes(ctx, datas[i])
			return err
		}, func(int, error) {})
		rep.PipelinePerSec = float64(len(datas)) / time.Since(start).Seconds()
		fmt.Fprintf(e.stderr, "pipeline alone: %d images, %.1f images/s\n", len(datas), rep.PipelinePerSec)
	}

	dk, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer dk.Close()
	id, err := dk.DB.CreateSource(ctx, store.Source{Kind: store.KindFolder, Locator: gallery, Controller: "gabarit evaluation",
		Purpose: "accuracy evaluation", LegalBasis: store.BasisLegitimateInterests, Art9Condition: "9(2)(j) research",
		Jurisdiction: "FR", Retention: 24 * time.Hour, CreatedBy: actor()})
	if err != nil {
		return err
	}
	modelID, dim := kit.Manifest.Embedder.ID(), kit.Manifest.Embedder.Dim
	h, err := dk.OpenIndex(ctx, modelID, dim)
	if err != nil {
		return err
	}
	defer h.Close()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
	}
	sum, err := ingest.Run(ctx, src, kit.Analyzer(), dk.DB, dk.Keys, h.Index,
		ingest.Config{SourceID: id, ModelID: modelID, Workers: ff.workers})
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	rep.GalleryImages, rep.GalleryFaces = sum.Images, sum.Faces
	rep.IngestPerSec = float64(sum.Images+sum.Failed) / sum.Elapsed.Seconds()
	if rep.PipelinePerSec > 0 {
		rep.IngestOfPipeline = rep.IngestPerSec / rep.PipelinePerSec
	}
	fmt.Fprintf(e.stderr, "ingest: %d of %d images, %d faces, %d errors, %.1f images/s\n",
		sum.Images, nGallery, sum.Faces, sum.Failed, rep.IngestPerSec)

	eng := &search.Engine{An: kit.Analyzer(), Store: dk.DB, Keys: dk.Keys, Index: h.Index, ModelID: modelID, Decider: cal}
	var top1, top5 int
	var searchTime time.Duration
	for i, p := range probes {
		data, err := imageproc.ReadFile(p, 0)
		if err != nil {
			return err
		}
		t0 := time.Now()
		res, err := eng.Search(ctx, search.Request{Actor: actor(), Purpose: "accuracy evaluation", K: *k,
			Threshold: thr, MayExplore: true, Reason: "accuracy evaluation at a set threshold", Face: -1, Probe: data})
		searchTime += time.Since(t0)
		if err != nil {
			rep.ProbesNoFace++
			continue
		}
		rep.Threshold = res.Threshold
		if len(res.Hits) == 0 {
			rep.NoMatch++
		}
		strangers := 0
		for j, hit := range res.All { // every result, not only the first page
			own := strings.SplitN(hit.Locator, "/", 2)[0] == probeOf[i]
			switch {
			case own && j == 0:
				top1++
				top5++
			case own && j < 5 && !hasOwnBefore(res.Hits[:j], probeOf[i]):
				top5++
			case !own:
				strangers++
				if j == 0 {
					rep.StrangerAtTop1++
				}
			}
		}
		rep.Strangers += strangers
		if strangers > 0 {
			rep.ProbesStrangers++
		}
	}
	rep.Top1 = float64(top1) / float64(len(probes))
	rep.Top5 = float64(top5) / float64(len(probes))
	rep.SearchMeanMS = float64(searchTime.Microseconds()) / 1000 / float64(len(probes))
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(rep)
	}
	fmt.Fprintf(e.stdout, "%d identities, gallery %d images / %d faces, threshold %.4f, k %d\n",
		rep.Identities, rep.GalleryImages, rep.GalleryFaces, rep.Threshold, *k)
	fmt.Fprintf(e.stdout, "top-1 %.3f  top-5 %.3f  no match %d  probes without a face %d\n", rep.Top1, rep.Top5, rep.NoMatch, rep.ProbesNoFace)
	fmt.Fprintf(e.stdout, "strangers returned: %d results over %d probes (a stranger first: %d)\n",
		rep.Strangers, rep.ProbesStrangers, rep.StrangerAtTop1)
	fmt.Fprintf(e.stdout, "ingest %.1f images/s = %.0f%% of the pipeline alone (%.1f images/s); search %.1f ms per probe\n",
		rep.IngestPerSec, 100*rep.IngestOfPipeline, rep.PipelinePerSec, rep.SearchMeanMS)
	return nil
}

func hasOwnBefore(hits []search.Hit, who string) bool {
	for _, h := range hits {
		if strings.SplitN(h.Locator, "/", 2)[0] == who {
			return true
		}
	}
	return false
}

// copyFile copies src to dst, creating dst's directory.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
