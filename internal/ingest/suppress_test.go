package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"gabarit/internal/vindex"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/ingest"
	"gabarit/internal/source"
	"gabarit/internal/source/folder"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vault"
)

// newVault opens a vault holding one objection entry with template t.
func newVault(t *testing.T, tmpl []float32) *vault.Vault {
	t.Helper()
	ctx := context.Background()
	db, kr := storetest.Open(t) // the vault's own store
	v, err := vault.Open(ctx, db, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if _, err := v.Add(ctx, vault.Objection, 1, "fake", [][]float32{tmpl}); err != nil {
		t.Fatal(err)
	}
	return v
}

// suppressor asks v about objections at cosine 0.9 and counts the calls.
func suppressor(v *vault.Vault, calls *atomic.Int64) func(context.Context, []float32) (bool, error) {
	return func(ctx context.Context, t []float32) (bool, error) {
		calls.Add(1)
		return v.Match(ctx, "fake", t, []vault.Kind{vault.Objection}, 0.9)
	}
}

// withObjector adds the objector's face (a slightly different template)
// to files whose content starts with "group".
type withObjector struct {
	fakeAnalyzer
	objector []float32
}

func (a *withObjector) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	res, err := a.fakeAnalyzer.Analyze(ctx, data)
	if err == nil && bytes.HasPrefix(data, []byte("group")) {
		o := slices.Clone(a.objector)
		o[0] += 0.05
		res.Faces = append(res.Faces, face.Face{Box: face.Box{X: 50, Y: 2, W: 30, H: 40}, Score: 0.8, Quality: 0.7,
			Embedding: face.Normalize(o)})
	}
	return res, err
}

func cosine(t *testing.T, a, b []float32) float64 {
	t.Helper()
	c, err := face.Embedding(face.Normalize(slices.Clone(a))).Cosine(face.Normalize(slices.Clone(b)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIngestSuppressed: the faces of a person who objected are dropped
// before anything is stored, sealed or indexed; an image whose only face is
// theirs is recorded without faces and not analysed again.
func TestIngestSuppressed(t *testing.T) {
	files := photos(10)
	files["group.jpg"] = "group photo"
	e := newEnv(t, files)
	ctx := context.Background()
	objector := func() []float32 {
		res, err := (&fakeAnalyzer{}).Analyze(ctx, []byte("photo 3"))
		if err != nil {
			t.Fatal(err)
		}
		return res.Faces[0].Embedding
	}()
	v := newVault(t, objector)
	var calls atomic.Int64
	an := &withObjector{objector: objector}
	cfg := ingest.Config{SourceID: e.src, ModelID: "fake", Workers: 3, Batch: 4, Suppress: suppressor(v, &calls)}
	run := func() ingest.Summary {
		t.Helper()
		src, err := folder.Open(e.dir, source.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := ingest.Run(ctx, src, an, e.db, e.keys, e.idx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}

	sum := run()
	// 11 images, 12 faces analysed: photo 3's and the objector's in the group dropped.
	if sum.Images != 11 || sum.Faces != 10 || sum.Suppressed != 2 || sum.Failed != 0 {
		t.Fatalf("first run: %+v", sum.Stats)
	}
	if calls.Load() != 12 {
		t.Errorf("Suppress asked about %d faces, want every one of the 12", calls.Load())
	}
	if n, _ := e.db.FaceCount(ctx); n != 10 || vindex.Count(e.idx) != 10 {
		t.Errorf("faces stored %d, indexed %d; want 10", n, vindex.Count(e.idx))
	}
	// No stored template is the objector's.
	err := e.db.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, blob []byte) error {
		tmpl, err := e.keys.Open(ctx, sourceID, faceID, modelID, blob)
		if err != nil {
			return err
		}
		if c := cosine(t, tmpl, objector); c >= 0.9 {
			t.Errorf("face %d stored with cosine %.3f to the objector", faceID, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	hits, err := e.idx.Search(ctx, objector, 100, 0.9)
	if err != nil || len(hits) != 0 {
		t.Errorf("index holds the objector: %v, %v", hits, err)
	}
	// photo 3 is an image without faces; the group photo kept the other face.
	for name, want := range map[string]int{"photo 3": 0, "group photo": 1} {
		img, err := e.db.ImageBySHA(ctx, e.src, sha256.Sum256([]byte(name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fs, err := e.db.Faces(ctx, img.ID); err != nil || len(fs) != want {
			t.Errorf("%s: %d faces, %v; want %d", name, len(fs), err, want)
		}
	}

	// Not analysed again.
	before := an.calls.Load()
	sum = run()
	if sum.Images != 0 || sum.Skipped != 11 || an.calls.Load() != before {
		t.Errorf("second run: %+v, %d analyses", sum.Stats, an.calls.Load()-before)
	}
}

// TestIngestSuppressFailsClosed: when the suppression list cannot be
// asked, the run stops and nothing of the image is stored.
func TestIngestSuppressFailsClosed(t *testing.T) {
	e := newEnv(t, photos(6))
	ctx := context.Background()
	broken, err := (&fakeAnalyzer{}).Analyze(ctx, []byte("photo 5"))
	if err != nil {
		t.Fatal(err)
	}
	errVault := errors.New("vault unreadable")
	cfg := ingest.Config{SourceID: e.src, ModelID: "fake", Workers: 2, Batch: 1,
		Suppress: func(_ context.Context, t []float32) (bool, error) {
			if slices.Equal(t, broken.Faces[0].Embedding) {
				return false, errVault
			}
			return false, nil
		}}
	src, err := folder.Open(e.dir, source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.Run(ctx, src, &fakeAnalyzer{}, e.db, e.keys, e.idx, cfg); !errors.Is(err, errVault) {
		t.Fatalf("Run = %v, want the suppression error", err)
	}
	if _, err := e.db.ImageBySHA(ctx, e.src, sha256.Sum256([]byte("photo 5"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("image of the failed check: %v, want ErrNotFound", err)
	}
	if _, ok, err := e.db.Progress(ctx, e.src, "d2/p005.jpg"); ok || err != nil {
		t.Errorf("progress of the failed check recorded: %v, %v", ok, err)
	}
}

// fakeVideos is a collection of videos whose frames carry their video and
// frame numbers in their first two pixels' bytes.
type fakeVideos struct {
	dir    string
	frames map[string]int // frames by locator
}

func (s *fakeVideos) Walk(ctx context.Context, fn func(v video.Video, err error) error) error {
	names := make([]string, 0, len(s.frames))
	for n := range s.frames {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := filepath.Join(s.dir, n)
		if err := os.WriteFile(p, []byte("video "+n), 0o600); err != nil {
			return err
		}
		if err := fn(video.Video{Locator: n, Size: int64(len(n) + 6), Path: p}, nil); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeVideos) Frames(ctx context.Context, path string, every time.Duration, fn func(f video.Frame) error) error {
	name := filepath.Base(path)
	for i := range s.frames[name] {
		img := imageproc.NewRGB(64, 48)
		img.Pix[0], img.Pix[1] = name[0], byte(i)
		if err := fn(video.Frame{Index: i, Time: time.Duration(i) * every, Image: img}); err != nil {
			return err
		}
	}
	return nil
}

func axis(i int, cos float64) face.Embedding {
	v := make([]float32, dim)
	v[i] = float32(cos)
	v[(i+1)%dim] = float32(math.Sqrt(1 - cos*cos))
	return face.Normalize(v)
}

// scene: in video "a", the objector (box left) is in frames 0-2 but matches
// the suppression list only in frame 1; another person (box right) is in
// every frame. Video "b" shows the other person only.
type scene struct{}

func (scene) AnalyzeFrame(_ context.Context, img *imageproc.RGB) (face.Analysis, error) {
	other := face.Face{Box: face.Box{X: 40, Y: 5, W: 20, H: 20}, Score: 0.9, Quality: 0.6, Embedding: axis(4, 1)}
	if img.Pix[0] == 'b' {
		return face.Analysis{Width: img.W, Height: img.H, Faces: []face.Face{other}}, nil
	}
	obj := face.Face{Box: face.Box{X: 2, Y: 5, W: 20, H: 20}, Score: 0.9, Quality: 0.5, Embedding: axis(0, 0.8)}
	if img.Pix[1] == 1 {
		obj.Embedding = axis(0, 1)
		obj.Quality = 0.2
	}
	return face.Analysis{Width: img.W, Height: img.H, Faces: []face.Face{obj, other}}, nil
}

// TestRunVideosSuppressed: a track one of whose faces matches the
// suppression list is dropped whole, and the kept tracks are numbered
// without a gap.
func TestRunVideosSuppressed(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	v := newVault(t, axis(0, 1))
	var calls atomic.Int64
	src := &fakeVideos{dir: t.TempDir(), frames: map[string]int{"a.mp4": 3, "b.mp4": 2}}
	cfg := ingest.Config{SourceID: e.src, ModelID: "fake", Workers: 2, Suppress: suppressor(v, &calls)}
	sum, err := ingest.RunVideos(ctx, src, scene{}, e.db, e.keys, e.idx, cfg, ingest.VideoConfig{Every: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images != 2 || sum.Faces != 2 || sum.Suppressed != 1 || sum.Failed != 0 {
		t.Fatalf("run: %+v %v", sum.Stats, sum.Errors)
	}
	if calls.Load() != 8 {
		t.Errorf("Suppress asked about %d faces, want every one of the 8", calls.Load())
	}
	img, err := e.db.ImageBySHA(ctx, e.src, sha256.Sum256([]byte("video a.mp4")))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := e.db.Faces(ctx, img.ID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("faces of video a: %d, %v; want the other person's only", len(fs), err)
	}
	if f := fs[0]; f.TrackID != 1 || f.Box.X != 40 || f.Quality != 0.6 {
		t.Errorf("stored face: track %d, box %+v, quality %v; want track 1 (renumbered), the other person", f.TrackID, f.Box, f.Quality)
	}
	if hits, err := e.idx.Search(ctx, axis(0, 1), 10, 0.3); err != nil || len(hits) != 0 {
		t.Errorf("index holds the objector: %v, %v", hits, err)
	}

	// Without suppression the objector's track is stored (the test sees what it tests).
	e2 := newEnv(t, nil)
	cfg.SourceID, cfg.Suppress = e2.src, nil
	src.dir = t.TempDir()
	sum, err = ingest.RunVideos(ctx, src, scene{}, e2.db, e2.keys, e2.idx, cfg, ingest.VideoConfig{Every: time.Second})
	if err != nil || sum.Faces != 3 || sum.Suppressed != 0 {
		t.Errorf("without Suppress: %+v, %v; want 3 faces", sum.Stats, err)
	}

	// A failing check stops the run; nothing of the video is stored.
	e3 := newEnv(t, nil)
	cfg.SourceID = e3.src
	cfg.Suppress = func(context.Context, []float32) (bool, error) { return false, errors.New("vault unreadable") }
	src.dir = t.TempDir()
	if _, err := ingest.RunVideos(ctx, src, scene{}, e3.db, e3.keys, e3.idx, cfg, ingest.VideoConfig{Every: time.Second}); err == nil ||
		!strings.Contains(err.Error(), "vault unreadable") {
		t.Errorf("RunVideos with a failing check: %v", err)
	}
	if n, _ := e3.db.FaceCount(ctx); n != 0 {
		t.Errorf("%d faces stored despite the failing check", n)
	}
	if _, ok, _ := e3.db.Progress(ctx, e3.src, "a.mp4"); ok {
		t.Error("progress recorded despite the failing check")
	}
}
