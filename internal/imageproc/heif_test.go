//go:build cgo && heif

package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/imageproc/heiftest"
)

// heifTestEncode encodes src with libheif. Without an encoder for the
// codec it fails under GABARIT_REQUIRE_MODELS (set by `make test`), and
// skips with the reason otherwise.
func heifTestEncode(tb testing.TB, src *RGB, o heiftest.Options) []byte {
	tb.Helper()
	if !heiftest.CanEncode(o.AVIF) {
		msg := "libheif has no HEVC encoder (Debian's libheif1 uses x265): HEIC decoding is untested"
		if o.AVIF {
			msg = "libheif has no AV1 encoder (Debian's libheif1 uses libaom): AVIF decoding is untested"
		}
		if os.Getenv("GABARIT_REQUIRE_MODELS") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	data, err := heiftest.Encode(src.Pix, src.W, src.H, o)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// decTestHEIFSeeds are small HEIC and AVIF files for the fuzz seeds: plain,
// rotated with an EXIF block, and AVIF.
func decTestHEIFSeeds(tb testing.TB) [][]byte {
	src := decTestRef(decTestPhoto(24, 16, 9))
	return [][]byte{
		heifTestEncode(tb, src, heiftest.Options{Quality: 50}),
		heifTestEncode(tb, src, heiftest.Options{Quality: 50, Orientation: 6, Exif: exifTestTIFF(false, 3, 6)}),
		heifTestEncode(tb, src, heiftest.Options{Quality: 50, AVIF: true}),
	}
}

func TestHEIFDecode(t *testing.T) {
	if !HEIF() {
		t.Fatal("HEIF() is false in a build with the heif tag")
	}
	const w, h = 301, 199 // odd sizes: chroma subsampling and scaling edges
	src := decTestRef(decTestPhoto(w, h, 4))
	tests := []struct {
		name    string
		opt     heiftest.Options
		format  string
		maxMean float64
	}{
		{name: "heic q90", opt: heiftest.Options{Quality: 90}, format: "heic", maxMean: 4},
		{name: "heic lossless", opt: heiftest.Options{Lossless: true}, format: "heic", maxMean: 2},
		{name: "avif q90", opt: heiftest.Options{Quality: 90, AVIF: true}, format: "avif", maxMean: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := heifTestEncode(t, src, tt.opt)
			if got := Sniff(data); got != tt.format {
				t.Fatalf("Sniff = %q, want %q", got, tt.format)
			}
			d, err := Decode(data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Format != tt.format || d.Width != w || d.Height != h || d.Orientation != 1 || d.Img.W != w || d.Img.H != h {
				t.Fatalf("decoded %s %d×%d (image %d×%d) orientation %d, want %s %d×%d", d.Format, d.Width, d.Height,
					d.Img.W, d.Img.H, d.Orientation, tt.format, w, h)
			}
			mean, maxd := decTestDiff(t, d.Img, src)
			t.Logf("%d bytes: mean difference %.2f, max %d", len(data), mean, maxd)
			if mean > tt.maxMean {
				t.Errorf("mean difference from the source %.2f > %.1f", mean, tt.maxMean)
			}

			// A target side lets the decoder return half the size,
			// box-filtered like the other formats.
			half, err := Decode(data, DecodeOptions{TargetSide: 150})
			if err != nil {
				t.Fatal(err)
			}
			if half.Width != w || half.Height != h || half.Img.W != (w+1)/2 || half.Img.H != (h+1)/2 {
				t.Fatalf("scaled: %d×%d image %d×%d, want %d×%d", half.Width, half.Height, half.Img.W, half.Img.H, (w+1)/2, (h+1)/2)
			}
			if mean, _ := decTestDiff(t, half.Img, decToRGB(src.Image(), 2)); mean > tt.maxMean {
				t.Errorf("scaled: mean difference from the box-filtered source %.2f > %.1f", mean, tt.maxMean)
			}

			// DecodeFile, through a listed file name.
			path := filepath.Join(t.TempDir(), "IMG_0001."+strings.ToUpper(tt.format))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if !IsImageName(path) {
				t.Errorf("IsImageName(%q) = false", path)
			}
			if f, err := DecodeFile(path, DecodeOptions{}); err != nil || !bytes.Equal(f.Img.Pix, d.Img.Pix) {
				t.Errorf("DecodeFile: %v, or pixels differ from Decode", err)
			}
		})
	}
}

// TestHEIFOrientation checks that the rotation and mirroring boxes are
// applied once: libheif applies irot/imir, and the EXIF orientation that
// phones write alongside (describing the same turn) is not applied again.
func TestHEIFOrientation(t *testing.T) {
	src := decTestRef(decTestQuadrants(48, 32))
	for o := 1; o <= 8; o++ {
		for _, withExif := range []bool{false, true} {
			opt := heiftest.Options{Quality: 95, Orientation: o}
			if withExif {
				opt.Exif = exifTestTIFF(false, 3, uint32(o))
			}
			d, err := Decode(heifTestEncode(t, src, opt), DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := decOrient(src, o)
			if d.Orientation != 1 || d.Width != want.W || d.Height != want.H {
				t.Fatalf("orientation %d (exif %v): decoded %d×%d orientation %d, want %d×%d and 1", o, withExif,
					d.Width, d.Height, d.Orientation, want.W, want.H)
			}
			if mean, _ := decTestDiff(t, d.Img, want); mean > 4 {
				t.Errorf("orientation %d (exif %v): mean difference %.2f from the source turned once", o, withExif, mean)
			}
		}
	}
	// An EXIF orientation without irot/imir is not applied either: in
	// HEIF, only the boxes turn the image.
	d, err := Decode(heifTestEncode(t, src, heiftest.Options{Quality: 95, Exif: exifTestTIFF(true, 3, 6)}), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mean, _ := decTestDiff(t, d.Img, src); d.Img.W != src.W || mean > 4 {
		t.Errorf("EXIF orientation 6 alone turned the image to %d×%d (mean difference %.2f)", d.Img.W, d.Img.H, mean)
	}
}

// heifTestSetISPE rewrites the size in every ispe box of a HEIF file.
func heifTestSetISPE(tb testing.TB, data []byte, w, h uint32) []byte {
	tb.Helper()
	out := bytes.Clone(data)
	n := 0
	for i := 4; i+16 <= len(out); i++ {
		if string(out[i:i+4]) == "ispe" {
			binary.BigEndian.PutUint32(out[i+8:], w)
			binary.BigEndian.PutUint32(out[i+12:], h)
			n++
		}
	}
	if n == 0 {
		tb.Fatal("no ispe box")
	}
	return out
}

// TestHEIFLimits checks that the pixel limit is applied to the size read
// from the image handle, before decoding.
func TestHEIFLimits(t *testing.T) {
	small := heifTestEncode(t, decTestRef(decTestPhoto(64, 48, 2)), heiftest.Options{Quality: 60})
	// The header claims 20000×15000 while the coded image is 64×48: only a
	// check made before decoding can report the claimed size.
	claimed := heifTestSetISPE(t, small, 20000, 15000)
	tests := []struct {
		name   string
		data   []byte
		limits Limits
		want   PixelLimitError
		msg    string
	}{
		{name: "claimed 300 megapixels", data: claimed, want: PixelLimitError{Width: 20000, Height: 15000, Limit: 100_000_000},
			msg: "the photo is 300 megapixels (20000×15000 pixels); the limit is 100 megapixels"},
		{name: "over a small limit", data: small, limits: Limits{MaxPixels: 3000}, want: PixelLimitError{Width: 64, Height: 48, Limit: 3000},
			msg: "the photo is 0.0031 megapixels (64×48 pixels); the limit is 0.003 megapixels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.data, DecodeOptions{Limits: tt.limits})
			var pe *PixelLimitError
			if !errors.As(err, &pe) || *pe != tt.want {
				t.Fatalf("error %v, want %+v", err, tt.want)
			}
			if got := Message(err); got != tt.msg {
				t.Errorf("Message %q, want %q", got, tt.msg)
			}
		})
	}
	if _, err := Decode(small, DecodeOptions{Limits: Limits{MaxPixels: 64 * 48}}); err != nil {
		t.Errorf("exactly at the limit: %v", err)
	}
	if _, err := Decode(small, DecodeOptions{Limits: Limits{MaxBytes: 100}}); !errors.As(err, new(*SizeLimitError)) {
		t.Errorf("over the byte limit: %v, want a *SizeLimitError", err)
	}
}

// TestHEIFDamaged checks that truncated and damaged files fail as corrupt,
// at every length, and never decode to a partial image.
func TestHEIFDamaged(t *testing.T) {
	data := heifTestEncode(t, decTestRef(decTestPhoto(96, 64, 3)), heiftest.Options{Quality: 80})
	step := 1
	if testing.Short() {
		step = 13
	}
	for n := 16; n < len(data); n += step { // 16 bytes: the ftyp brands
		d, err := Decode(data[:n], DecodeOptions{})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Format != "heic" || d != nil {
			t.Fatalf("cut at %d of %d bytes: %v, want a *CorruptError for heic", n, len(data), err)
		}
		if got, want := Message(err), "the HEIC file is damaged or incomplete; it cannot be decoded"; got != want {
			t.Fatalf("cut at %d: Message %q", n, got)
		}
	}
}

// TestHEIFConcurrent decodes one file from several goroutines (each call
// has its own libheif context): the results are identical.
func TestHEIFConcurrent(t *testing.T) {
	data := heifTestEncode(t, decTestRef(decTestPhoto(80, 60, 5)), heiftest.Options{Quality: 70})
	want, err := Decode(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			d, err := Decode(data, DecodeOptions{})
			if err == nil && !bytes.Equal(d.Img.Pix, want.Img.Pix) {
				err = errors.New("pixels differ between concurrent decodes")
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
