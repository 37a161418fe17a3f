package app

import (
	"os"
	"path/filepath"
	"testing"

	"gabarit/internal/face"
	"gabarit/internal/modeltest"
)

// BenchmarkCropFace is the probe crop every search seals: a 250-pixel face
// of a 1920×1367 JPEG (sample2.jpg of the installed demo photos).
func BenchmarkCropFace(b *testing.B) {
	d := modeltest.Installed(b)
	data, err := os.ReadFile(filepath.Join(d.TestPhotos(), "sample2.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CropFace(data, face.Box{X: 800, Y: 300, W: 200, H: 250}, ProbeCropMargin, ProbeCropSide); err != nil {
			b.Fatal(err)
		}
	}
}
