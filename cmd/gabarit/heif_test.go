//go:build cgo && onnx && heif

package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/imageproc"
	"gabarit/internal/imageproc/heiftest"
	"gabarit/internal/modeltest"
)

// boxIoU is the intersection over union of two x, y, w, h boxes.
func boxIoU(a, b [4]float64) float64 {
	iw := math.Min(a[0]+a[2], b[0]+b[2]) - math.Max(a[0], b[0])
	ih := math.Min(a[1]+a[3], b[1]+b[3]) - math.Max(a[1], b[1])
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	return inter / (a[2]*a[3] + b[2]*b[3] - inter)
}

// TestFacesHEIC re-encodes test photos as HEIC (as an iPhone stores them,
// turned by an irot box with the matching EXIF orientation) and checks that
// `gabarit faces` finds the same faces in them as in the JPEGs.
func TestFacesHEIC(t *testing.T) {
	d := modeltest.Installed(t)
	if !heiftest.CanEncode(false) {
		msg := "libheif has no HEVC encoder (Debian's libheif1 uses x265): HEIC decoding is untested"
		if os.Getenv("GABARIT_REQUIRE_MODELS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	for _, name := range []string{"sample1.jpg", "sample2.jpg"} {
		jpg := filepath.Join(d.TestPhotos(), name)
		dec, err := imageproc.DecodeFile(jpg, imageproc.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		img := dec.Img
		// Stored turned a quarter counter-clockwise, shown upright: the
		// pixels are the photo turned back, and irot says turn 90° cw.
		stored := imageproc.NewRGB(img.H, img.W)
		for y := range img.H {
			for x := range img.W {
				// Displayed (x, y) comes from stored (y, W-1-x).
				copy(stored.Pix[3*((img.W-1-x)*stored.W+y):][:3], img.Pix[3*(y*img.W+x):][:3])
			}
		}
		exif := []byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00")
		data, err := heiftest.Encode(stored.Pix, stored.W, stored.H, heiftest.Options{Quality: 90, Orientation: 6, Exif: exif})
		if err != nil {
			t.Fatal(err)
		}
		heic := filepath.Join(dir, strings.TrimSuffix(name, ".jpg")+".heic")
		if err := os.WriteFile(heic, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, err := runCLI(t, "faces", "--json", jpg, heic)
		if err != nil {
			t.Fatalf("faces: %v\n%s", err, stderr)
		}
		var res []fileJSON
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var f fileJSON
			if err := json.Unmarshal([]byte(l), &f); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			res = append(res, f)
		}
		if len(res) != 2 {
			t.Fatalf("%d lines, want 2:\n%s", len(res), out)
		}
		want, got := res[0], res[1]
		t.Logf("%s: %d×%d, %d faces; HEIC (%d bytes) %d×%d, %d faces", name, want.Width, want.Height, len(want.Faces),
			len(data), got.Width, got.Height, len(got.Faces))
		if got.Error != "" || got.Width != want.Width || got.Height != want.Height {
			t.Fatalf("HEIC: %+v, want %d×%d", got, want.Width, want.Height)
		}
		if len(want.Faces) == 0 || len(got.Faces) != len(want.Faces) {
			t.Fatalf("%d faces in the HEIC, %d in the JPEG", len(got.Faces), len(want.Faces))
		}
		for i, wf := range want.Faces {
			best := 0.0
			for _, gf := range got.Faces {
				best = math.Max(best, boxIoU(wf.Box, gf.Box))
			}
			if best < 0.8 {
				t.Errorf("JPEG face %d %v: best overlap with a HEIC face %.2f, want ≥ 0.8", i, wf.Box, best)
			}
		}
	}
}
