package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"gabarit/internal/vindex"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/ingest"
	"gabarit/internal/keyring"
	"gabarit/internal/source"
	"gabarit/internal/source/folder"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vindex/flat"
)

const dim = 8

// fakeAnalyzer finds one face per file whose template is derived from the
// bytes; a file starting with "bad" is corrupt, one starting with "zero"
// gives an image of width 0 (which the store refuses), one starting with
// "none" has no face. calls counts analyses; block, when set, is closed
// to let analyses past the n-th proceed.
type fakeAnalyzer struct {
	calls atomic.Int64
}

func (a *fakeAnalyzer) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	a.calls.Add(1)
	switch {
	case bytes.HasPrefix(data, []byte("bad")):
		return face.Analysis{}, errors.New("corrupt image")
	case bytes.HasPrefix(data, []byte("zero")):
		return face.Analysis{Width: 0, Height: 10}, nil
	case bytes.HasPrefix(data, []byte("none")):
		return face.Analysis{Width: 10, Height: 10}, nil
	}
	h := sha256.Sum256(data)
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(h[i]) - 127.5
	}
	return face.Analysis{Width: 100, Height: 80, Faces: []face.Face{{
		Box: face.Box{X: 1, Y: 2, W: 30, H: 40}, Score: 0.9, Quality: 0.5, Embedding: face.Normalize(v),
	}}}, nil
}

type env struct {
	db   *store.DB
	keys *keyring.Keyring
	idx  *flat.Index
	src  int64
	dir  string
}

func newEnv(t *testing.T, files map[string]string) *env {
	t.Helper()
	photos := filepath.Join(t.TempDir(), "photos")
	for name, body := range files {
		p := filepath.Join(photos, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, kr := storetest.Open(t)
	id := storetest.Source(t, db, store.BasisConsent, time.Hour)
	return &env{db: db, keys: kr, idx: flat.New(dim), src: id, dir: photos}
}

func (e *env) run(t *testing.T, ctx context.Context, an face.Analyzer) (ingest.Summary, error) {
	t.Helper()
	src, err := folder.Open(e.dir, source.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return ingest.Run(ctx, src, an, e.db, e.keys, e.idx, ingest.Config{SourceID: e.src, ModelID: "fake", Workers: 2, Batch: 4})
}

func photos(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("d%d/p%03d.jpg", i%3, i)] = fmt.Sprintf("photo %d", i)
	}
	return m
}

func TestIngestIdempotentAndErrors(t *testing.T) {
	files := photos(20)
	files["bad1.jpg"] = "bad bytes"
	files["zero.jpg"] = "zero width"
	files["empty.jpg"] = "none here"
	files["copy.jpg"] = "photo 3" // same content as another file
	e := newEnv(t, files)
	ctx := context.Background()
	an := &fakeAnalyzer{}

	sum, err := e.run(t, ctx, an)
	if err != nil {
		t.Fatal(err)
	}
	// 20 photos + empty.jpg are images; copy.jpg is skipped or the original is (whichever lands second).
	if sum.Images != 21 || sum.Faces != 20 || sum.Skipped != 1 || sum.Failed != 2 || sum.Seen != 24 {
		t.Fatalf("first run: %+v", sum.Stats)
	}
	got := map[string]bool{}
	for _, fe := range sum.Errors {
		got[fe.File] = true
		if fe.Reason == "" {
			t.Errorf("error for %s has no reason", fe.File)
		}
	}
	if !got["bad1.jpg"] || !got["zero.jpg"] {
		t.Errorf("errors = %+v, want bad1.jpg and zero.jpg", sum.Errors)
	}
	if n, _ := e.db.FaceCount(ctx); n != 20 || vindex.Count(e.idx) != 20 {
		t.Errorf("faces stored %d, indexed %d; want 20", n, vindex.Count(e.idx))
	}
	st, ok, err := e.db.Progress(ctx, e.src, "bad1.jpg")
	if err != nil || !ok || st != store.ProgressFailed {
		t.Errorf("progress of bad1.jpg = %v %v %v", st, ok, err)
	}

	// Again: nothing new; the failed ones are tried again and fail again.
	before := an.calls.Load()
	sum, err = e.run(t, ctx, an)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images != 0 || sum.Faces != 0 || sum.Failed != 2 || sum.Skipped != 22 {
		t.Fatalf("second run: %+v", sum.Stats)
	}
	if calls := an.calls.Load() - before; calls != 2 {
		t.Errorf("second run analysed %d files, want only the 2 failed ones", calls)
	}

	// Every template opens with the keyring, bound to its face.
	err = e.db.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, blob []byte) error {
		v, err := e.keys.Open(ctx, sourceID, faceID, modelID, blob)
		if err != nil {
			return err
		}
		if len(v) != dim {
			return fmt.Errorf("face %d: dim %d", faceID, len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIngestPurgedNotBroughtBack: content whose image was deleted (purge,
// erasure) is not ingested again, even under a new name.
func TestIngestPurgedNotBroughtBack(t *testing.T) {
	e := newEnv(t, photos(3))
	ctx := context.Background()
	if _, err := e.run(t, ctx, &fakeAnalyzer{}); err != nil {
		t.Fatal(err)
	}
	img, err := e.db.ImageBySHA(ctx, e.src, sha256.Sum256([]byte("photo 1")))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.DeleteImage(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "renamed.jpg"), []byte("photo 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := e.run(t, ctx, &fakeAnalyzer{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Images != 0 || sum.Skipped != 4 {
		t.Fatalf("after purge: %+v", sum.Stats)
	}
	if n, _ := e.db.FaceCount(ctx); n != 2 {
		t.Errorf("faces = %d, want 2", n)
	}
}

// cancelAfter cancels the run's context after n analyses.
type cancelAfter struct {
	fakeAnalyzer
	n      int64
	cancel context.CancelFunc
}

func (a *cancelAfter) Analyze(ctx context.Context, data []byte) (face.Analysis, error) {
	if a.calls.Load() == a.n {
		a.cancel()
	}
	return a.fakeAnalyzer.Analyze(ctx, data)
}

// TestIngestInterruptedThenResumed: runs interrupted at several points,
// then completed, end with the same faces as one uninterrupted run.
func TestIngestInterruptedThenResumed(t *testing.T) {
	files := photos(40)
	ref := newEnv(t, files)
	if _, err := ref.run(t, context.Background(), &fakeAnalyzer{}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, files)
	for _, n := range []int64{0, 3, 11, 25} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := e.run(t, ctx, &cancelAfter{n: n, cancel: cancel})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted after %d: err = %v, want context.Canceled", n, err)
		}
	}
	sum, err := e.run(t, context.Background(), &fakeAnalyzer{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 {
		t.Fatalf("errors after resume: %+v", sum.Errors)
	}
	want, got := templates(t, ref), templates(t, e)
	if len(got) != 40 || len(got) != len(want) {
		t.Fatalf("faces: %d, uninterrupted %d", len(got), len(want))
	}
	for sha, v := range want {
		if fmt.Sprint(got[sha]) != fmt.Sprint(v) {
			t.Errorf("image %x: template differs", sha[:4])
		}
	}
	if vindex.Count(e.idx) != 40 {
		t.Errorf("index holds %d faces, want 40", vindex.Count(e.idx))
	}
}

// templates returns the decrypted template of every face by its image's hash.
func templates(t *testing.T, e *env) map[[32]byte][]float32 {
	t.Helper()
	ctx := context.Background()
	out := map[[32]byte][]float32{}
	err := e.db.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, blob []byte) error {
		f, err := e.db.Face(ctx, faceID)
		if err != nil {
			return err
		}
		img, err := e.db.Image(ctx, f.ImageID)
		if err != nil {
			return err
		}
		v, err := e.keys.Open(ctx, sourceID, faceID, modelID, blob)
		if err != nil {
			return err
		}
		if _, dup := out[img.SHA256]; dup {
			return fmt.Errorf("image %d has two faces", img.ID)
		}
		out[img.SHA256] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
