package imageproc

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// decBenchPhoto returns a photo-like 4000×3000 image: sample1.jpg from the
// folder named by GABARIT_TESTPHOTOS mirror-tiled to size when available,
// synthetic gradients and noise otherwise.
func decBenchPhoto(b *testing.B) (*image.RGBA, string) {
	const w, h = 4000, 3000
	dir := os.Getenv("GABARIT_TESTPHOTOS")
	if dir == "" {
		return decTestPhoto(w, h, 11), "synthetic"
	}
	path := filepath.Join(dir, "sample1.jpg")
	d, err := DecodeFile(path, DecodeOptions{PureGo: true})
	if err != nil {
		b.Fatalf("GABARIT_TESTPHOTOS: %v", err)
	}
	src := d.Img
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		// Mirror tiling keeps the content continuous across tile edges.
		sy := y % (2 * src.H)
		if sy >= src.H {
			sy = 2*src.H - 1 - sy
		}
		for x := range w {
			sx := x % (2 * src.W)
			if sx >= src.W {
				sx = 2*src.W - 1 - sx
			}
			s := src.Pix[3*(sy*src.W+sx):]
			o := out.PixOffset(x, y)
			out.Pix[o], out.Pix[o+1], out.Pix[o+2], out.Pix[o+3] = s[0], s[1], s[2], 0xFF
		}
	}
	return out, path
}

// decBenchRGBA wraps an RGB image for the standard encoders.
func decBenchRGBA(m *RGB) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i := range m.W * m.H {
		copy(out.Pix[4*i:4*i+3], m.Pix[3*i:3*i+3])
		out.Pix[4*i+3] = 0xFF
	}
	return out
}

func decBenchJPEG(b *testing.B, m image.Image) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecodeJPEG decodes a 12-megapixel photo at full and reduced sizes
// and a 250×250 face crop, with image/jpeg and with libjpeg-turbo.
func BenchmarkDecodeJPEG(b *testing.B) {
	photo, source := decBenchPhoto(b)
	big := decBenchJPEG(b, photo)
	// A 250×250 face-crop-sized image: the central 3000×3000 square /12.
	small := decBenchJPEG(b, decBenchRGBA(decToRGB(photo.SubImage(image.Rect(500, 0, 3500, 3000)), 12)))
	b.Logf("source %s: 12MP JPEG %d bytes, 250×250 JPEG %d bytes", source, len(big), len(small))

	rotated := exifTestSpliceAPP1(big, exifTestTIFF(false, 3, 6))
	cases := []struct {
		name string
		data []byte
		opt  DecodeOptions
	}{
		{name: "size=12MP/path=go", data: big, opt: DecodeOptions{PureGo: true}},
		{name: "size=12MP/path=go-scale=1_2", data: big, opt: DecodeOptions{PureGo: true, TargetSide: 2000}},
		{name: "size=12MP/path=go-scale=1_4", data: big, opt: DecodeOptions{PureGo: true, TargetSide: 1000}},
		{name: "size=12MP/path=turbo", data: big},
		{name: "size=12MP/path=turbo-scale=1_2", data: big, opt: DecodeOptions{TargetSide: 2000}},
		{name: "size=12MP/path=turbo-scale=1_4", data: big, opt: DecodeOptions{TargetSide: 1000}},
		{name: "size=12MP/path=turbo-scale=1_8", data: big, opt: DecodeOptions{TargetSide: 500}},
		{name: "size=12MP/path=turbo-orient=6", data: rotated},
		{name: "size=250x250/path=go", data: small, opt: DecodeOptions{PureGo: true}},
		{name: "size=250x250/path=turbo", data: small},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if !c.opt.PureGo && !FastJPEG() {
				b.Skip("built without libjpeg-turbo (needs cgo and -tags jpegturbo)")
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, err := Decode(c.data, c.opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
