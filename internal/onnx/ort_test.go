//go:build cgo && onnx

package onnx_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/modelpack"
	"gabarit/internal/modeltest"
	"gabarit/internal/onnx"
	"gabarit/internal/pipeline"
)

// Compile-time checks that the ONNX networks fit the pipeline.
var (
	_ pipeline.Detector   = (*onnx.Detector)(nil)
	_ pipeline.Landmarker = (*onnx.Landmarker)(nil)
	_ pipeline.Embedder   = (*onnx.Embedder)(nil)
)

func openDefault(t *testing.T) (*onnx.Models, *pipeline.Pipeline, string) {
	t.Helper()
	d := modeltest.Installed(t)
	ms, err := onnx.Open(context.Background(), d.Pack("default"), onnx.Options{Library: d.ORTLibrary()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ms.Close(); err != nil {
			t.Error(err)
		}
	})
	p, err := pipeline.New(ms.Detector, ms.Landmarker, ms.Embedder, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return ms, p, d.TestPhotos()
}

// TestDemoPhotos runs the real models on the npm demo photos (group photos
// of 3–5 people): every person is found, every landmark lies in its box.
func TestDemoPhotos(t *testing.T) {
	_, p, photos := openDefault(t)
	// People in each photo, counted by eye; the detector must not miss one.
	want := map[string]int{"sample1.jpg": 3, "sample2.jpg": 3, "sample3.jpg": 3, "sample4.jpg": 4, "sample5.jpg": 5, "sample6.jpg": 4}
	const extra = 1 // a background face or a false positive tolerated per photo
	for name, n := range want {
		r, err := p.ProcessFile(context.Background(), filepath.Join(photos, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(r.Faces) < n || len(r.Faces) > n+extra {
			t.Errorf("%s: %d faces, want %d (at most %d more)", name, len(r.Faces), n, extra)
		}
		for i, f := range r.Faces {
			if f.Score < 0.6 || f.Quality < 0 || f.Quality > 1 {
				t.Errorf("%s face %d: score %.3f quality %.3f out of range", name, i, f.Score, f.Quality)
			}
			if len(f.Embedding) != 512 {
				t.Errorf("%s face %d: template length %d, want 512", name, i, len(f.Embedding))
			}
			var norm float64
			for _, v := range f.Embedding {
				norm += float64(v) * float64(v)
			}
			if math.Abs(norm-1) > 1e-3 {
				t.Errorf("%s face %d: template norm² %.4f, want 1", name, i, norm)
			}
			b := f.Box
			slack := 0.15 * b.H
			for k, q := range f.Landmarks {
				if q.X < b.X-slack || q.X > b.X+b.W+slack || q.Y < b.Y-slack || q.Y > b.Y+b.H+slack {
					t.Errorf("%s face %d: landmark %d (%.0f,%.0f) outside box %+v", name, i, k, q.X, q.Y, b)
				}
			}
		}
	}
}

// TestSamePersonCloser checks that a face seen again in a mirrored,
// smaller, recompressed copy of the photo is closer to itself than to every
// other person of the demo photos.
func TestSamePersonCloser(t *testing.T) {
	_, p, photos := openDefault(t)
	ctx := context.Background()
	var all []face.Face
	for _, name := range []string{"sample1.jpg", "sample4.jpg", "sample6.jpg"} {
		r, err := p.ProcessFile(ctx, filepath.Join(photos, name))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r.Faces...)
	}
	d, err := imageproc.DecodeFile(filepath.Join(photos, "sample6.jpg"), imageproc.DecodeOptions{Limits: imageproc.DefaultLimits})
	if err != nil {
		t.Fatal(err)
	}
	small := imageproc.ResizeArea(d.Img, d.Img.W*7/10, d.Img.H*7/10)
	mirror := imageproc.NewRGB(small.W, small.H)
	for y := range small.H {
		for x := range small.W {
			copy(mirror.Pix[(y*small.W+x)*3:(y*small.W+x)*3+3], small.Pix[(y*small.W+small.W-1-x)*3:])
		}
	}
	data := encode(t, mirror, 75)
	r, err := p.ProcessBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := p.ProcessFile(ctx, filepath.Join(photos, "sample6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	matched := 0
	for _, f := range r.Faces {
		// Where this face was in the original photo.
		cx := (float64(mirror.W) - (f.Box.X + f.Box.W/2)) / 0.7
		cy := (f.Box.Y + f.Box.H/2) / 0.7
		self := -1
		for i, o := range orig.Faces {
			if math.Abs(o.Box.X+o.Box.W/2-cx) < o.Box.W/3 && math.Abs(o.Box.Y+o.Box.H/2-cy) < o.Box.H/3 {
				self = i
			}
		}
		if self < 0 || orig.Faces[self].Quality < 0.3 {
			continue
		}
		same, _ := f.Embedding.Cosine(orig.Faces[self].Embedding)
		for _, o := range all {
			if o.Box == orig.Faces[self].Box {
				continue
			}
			if other, _ := f.Embedding.Cosine(o.Embedding); other >= same {
				t.Errorf("face at %+v: another person is as close (%.3f) as itself (%.3f)", orig.Faces[self].Box, other, same)
			}
		}
		if same < 0.5 {
			t.Errorf("face at %+v: similarity to itself after mirror+resize+JPEG is %.3f, want ≥ 0.5", orig.Faces[self].Box, same)
		}
		matched++
	}
	if matched < 3 {
		t.Fatalf("only %d faces of sample6 were found again in its mirrored copy, want ≥ 3", matched)
	}
}

// TestSmallFaceInLargePhoto pastes a face scaled to 60 pixels into a
// 4000×3000 photo: the pyramid must find it.
func TestSmallFaceInLargePhoto(t *testing.T) {
	_, p, photos := openDefault(t)
	ctx := context.Background()
	d, err := imageproc.DecodeFile(filepath.Join(photos, "sample6.jpg"), imageproc.DecodeOptions{Limits: imageproc.DefaultLimits})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Process(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	best := -1
	for i, f := range r.Faces {
		if best < 0 || f.Quality > r.Faces[best].Quality {
			best = i
		}
	}
	f := r.Faces[best]
	// Crop 2× the face box and scale it so the face box is 60 px high.
	k := 60 / f.Box.H
	side := int(2 * f.Box.H * k)
	cx, cy := f.Box.X+f.Box.W/2, f.Box.Y+f.Box.H/2
	patch, err := imageproc.Warp(d.Img, imageproc.Affine{k, 0, -(cx - f.Box.H) * k, 0, k, -(cy - f.Box.H) * k}, side, side)
	if err != nil {
		t.Fatal(err)
	}
	big := imageproc.NewRGB(4000, 3000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big.Pix {
		big.Pix[i] = byte(100 + rng.IntN(40))
	}
	const px, py = 2900, 2100
	for y := range side {
		copy(big.Pix[((py+y)*4000+px)*3:((py+y)*4000+px+side)*3], patch.Pix[y*side*3:(y+1)*side*3])
	}
	res, err := p.ProcessBytes(ctx, encode(t, big, 90))
	if err != nil {
		t.Fatal(err)
	}
	wantX, wantY := float64(px+side/2), float64(py+side/2)
	for _, g := range res.Faces {
		if math.Abs(g.Box.X+g.Box.W/2-wantX) < 20 && math.Abs(g.Box.Y+g.Box.H/2-wantY) < 20 {
			if g.Box.H < 40 || g.Box.H > 90 {
				t.Errorf("found the 60 px face with a box %.0f px high", g.Box.H)
			}
			return
		}
	}
	t.Fatalf("the 60 px face at (%v,%v) in a 4000×3000 photo was not found; found %d faces: %+v", wantX, wantY, len(res.Faces), res.Faces)
}

// TestEmbedBatchMatchesSingle checks the batched embedder against one crop
// at a time.
func TestEmbedBatchMatchesSingle(t *testing.T) {
	ms, _, _ := openDefault(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	crops := make([]*imageproc.RGB, 5)
	for i := range crops {
		crops[i] = imageproc.NewRGB(112, 112)
		for j := range crops[i].Pix {
			crops[i].Pix[j] = byte(rng.IntN(256))
		}
	}
	batch, err := ms.Embedder.Embed(ctx, crops)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range crops {
		one, err := ms.Embedder.Embed(ctx, []*imageproc.RGB{c})
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := one[0].Cosine(batch[i]); s < 0.9999 {
			t.Errorf("crop %d: batch and single templates differ (cosine %.6f)", i, s)
		}
	}
}

// TestCancelledContext checks that a cancelled call returns promptly with the context's error.
func TestCancelledContext(t *testing.T) {
	ms, _, _ := openDefault(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ms.Embedder.Embed(ctx, []*imageproc.RGB{imageproc.NewRGB(112, 112)}); err == nil {
		t.Fatal("Embed on a cancelled context succeeded")
	}
	if _, err := ms.Detector.Detect(ctx, imageproc.NewRGB(320, 240)); err == nil {
		t.Fatal("Detect on a cancelled context succeeded")
	}
}

func encode(t *testing.T, m *imageproc.RGB, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m.Image(), &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDetectBatchMatchesSingle checks batched detection of tiles against one
// tile at a time.
func TestDetectBatchMatchesSingle(t *testing.T) {
	ms, _, photos := openDefault(t)
	ctx := context.Background()
	d, err := imageproc.DecodeFile(filepath.Join(photos, "sample4.jpg"), imageproc.DecodeOptions{Limits: imageproc.DefaultLimits})
	if err != nil {
		t.Fatal(err)
	}
	var tiles []*imageproc.RGB
	for y := 0; y+240 <= d.Img.H && len(tiles) < 20; y += 200 {
		for x := 0; x+320 <= d.Img.W && len(tiles) < 20; x += 300 {
			tiles = append(tiles, imageproc.Crop(d.Img, x, y, 320, 240))
		}
	}
	batch, err := ms.Detector.DetectBatch(ctx, tiles)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for i, tile := range tiles {
		one, err := ms.Detector.Detect(ctx, tile)
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != len(batch[i]) {
			t.Fatalf("tile %d: %d detections alone, %d in a batch", i, len(one), len(batch[i]))
		}
		for k := range one {
			if one[k].Box.IoU(batch[i][k].Box) < 0.999 || math.Abs(one[k].Score-batch[i][k].Score) > 1e-4 {
				t.Errorf("tile %d detection %d: %+v alone, %+v in a batch", i, k, one[k], batch[i][k])
			}
		}
		found += len(one)
	}
	if found == 0 {
		t.Fatal("no detection in any tile: the comparison proves nothing")
	}
}

// TestYuNetPack installs the optional YuNet pack from ../shared/models and
// runs it on the demo photos: every person is found, and each face's
// template matches the default pack's template of the same face.
func TestYuNetPack(t *testing.T) {
	d := modeltest.Installed(t)
	from := modeltest.SharedModel(t, "yunet-2026may")
	ctx := context.Background()
	dir := t.TempDir()
	if err := modelpack.InstallYuNet(ctx, dir, from, d.Pack("default")); err != nil {
		t.Fatal(err)
	}
	ms, err := onnx.Open(ctx, dir, onnx.Options{Library: d.ORTLibrary()})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	yp, err := pipeline.New(ms.Detector, ms.Landmarker, ms.Embedder, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, dp, photos := openDefault(t)
	want := map[string]int{"sample1.jpg": 3, "sample4.jpg": 4, "sample5.jpg": 5, "sample6.jpg": 4}
	for name, n := range want {
		path := filepath.Join(photos, name)
		yr, err := yp.ProcessFile(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if len(yr.Faces) < n || len(yr.Faces) > n+1 {
			t.Errorf("%s: YuNet found %d faces, want %d (at most 1 more)", name, len(yr.Faces), n)
		}
		dr, err := dp.ProcessFile(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		for _, df := range dr.Faces {
			best := -1.0
			for _, yf := range yr.Faces {
				if df.Box.IoU(yf.Box) > 0.3 {
					s, _ := df.Embedding.Cosine(yf.Embedding)
					best = math.Max(best, s)
				}
			}
			if best < 0.7 {
				t.Errorf("%s: face at %+v: best match in the YuNet pack %.3f, want ≥ 0.7", name, df.Box, best)
			}
		}
	}
}
