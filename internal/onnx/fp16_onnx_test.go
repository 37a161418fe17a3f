//go:build cgo && onnx

package onnx_test

import (
	"context"
	"path/filepath"
	"testing"

	"gabarit/internal/imageproc"
	"gabarit/internal/modeltest"
	"gabarit/internal/onnx"
	"gabarit/internal/onnx/fp16"
	"gabarit/internal/pipeline"
)

// TestFP16Embedder converts the default pack's embedder to float16 and
// checks that ONNX Runtime runs it and that its templates of the demo
// photos' faces agree with the float32 ones (cosine ≥ 0.999), under a
// model id of their own.
func TestFP16Embedder(t *testing.T) {
	ms, p, photos := openDefault(t)
	d := modeltest.Installed(t)
	dir := filepath.Join(t.TempDir(), "default-fp16")
	m, err := fp16.MakePack(d.Pack("default"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Embedder.ID() == ms.Manifest.Embedder.ID() {
		t.Fatalf("the fp16 embedder has the fp32 model id %s", m.Embedder.ID())
	}
	half, err := onnx.Open(context.Background(), dir, onnx.Options{Library: d.ORTLibrary()})
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	var crops []*imageproc.RGB
	for _, name := range []string{"sample1.jpg", "sample4.jpg", "sample6.jpg"} {
		img, err := imageproc.DecodeFile(filepath.Join(photos, name), imageproc.DecodeOptions{Limits: imageproc.DefaultLimits})
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Process(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		s := float64(img.Img.W) / float64(img.Width)
		for _, f := range r.Faces {
			lm := f.Landmarks
			for k := range lm {
				lm[k].X *= s
				lm[k].Y *= s
			}
			c, _, err := pipeline.Align(img.Img, lm, 112, 112)
			if err != nil {
				t.Fatal(err)
			}
			crops = append(crops, c)
		}
	}
	if len(crops) < 5 {
		t.Fatalf("%d faces in the demo photos, want at least 5", len(crops))
	}
	a, err := ms.Embedder.Embed(context.Background(), crops)
	if err != nil {
		t.Fatal(err)
	}
	b, err := half.Embedder.Embed(context.Background(), crops)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		c, err := a[i].Cosine(b[i])
		if err != nil {
			t.Fatal(err)
		}
		if c < 0.999 {
			t.Errorf("face %d: cosine %.5f between the fp32 and fp16 templates, want ≥ 0.999", i, c)
		}
	}
	// And a template of another face stays far: the comparison is not trivial.
	if c, _ := a[0].Cosine(b[len(b)-1]); c > 0.9 {
		t.Errorf("templates of two different faces agree to %.3f", c)
	}
}
