package bombtest

import (
	"bytes"
	"compress/zlib"
	"image"
	"io"
	"os"
	"path/filepath"
	"testing"

	_ "image/png"

	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// TestBombs checks that every bomb is a valid image of the size asked for,
// and decodes (at a small size) with the decoder it targets.
func TestBombs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		data   []byte
		format string
		model  string
	}{
		{"tiff16", TIFF16(300, 200), "tiff", "*image.RGBA64"},
		{"png16", PNG16(300, 200, false), "png", "*image.NRGBA64"},
		{"png16-interlaced", PNG16(300, 200, true), "png", "*image.NRGBA64"},
		{"webp-lossless", WebPLossless(300, 200), "webp", "*image.NRGBA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, format, err := image.Decode(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if format != tc.format || m.Bounds() != image.Rect(0, 0, 300, 200) {
				t.Fatalf("decoded a %s of %v, want a %s of 300×200", format, m.Bounds(), tc.format)
			}
			if got := typeName(m); got != tc.model {
				t.Errorf("decoded into %s, want %s", got, tc.model)
			}
		})
	}
}

func typeName(m image.Image) string {
	switch m.(type) {
	case *image.RGBA64:
		return "*image.RGBA64"
	case *image.NRGBA64:
		return "*image.NRGBA64"
	case *image.NRGBA:
		return "*image.NRGBA"
	}
	return "other"
}

// TestWriteBombs writes full-size bombs (100 megapixels) into the folder
// named by GABARIT_WRITE_BOMBS, for the measurements of
// docs/RELIABILITY.md; without it, it only checks the small sizes above.
func TestWriteBombs(t *testing.T) {
	dir := os.Getenv("GABARIT_WRITE_BOMBS")
	if dir == "" {
		t.Skip("set GABARIT_WRITE_BOMBS to a folder to write the full-size bombs")
	}
	files := map[string][]byte{
		"tiff16.tif":           TIFF16(10000, 10000),
		"png16-interlaced.png": PNG16(10000, 10000, true),
		"webp-lossless.webp":   WebPLossless(10000, 10000),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", name, len(data))
	}
}

// TestZeroZlib checks the hand-written deflate stream against
// compress/zlib, at lengths around the 258-byte copies.
func TestZeroZlib(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{1, 2, 258, 259, 260, 517, 100_000, 1 << 20} {
		zr, err := zlib.NewReader(bytes.NewReader(zeroZlib(n)))
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if int64(len(got)) != n || bytes.ContainsFunc(got, func(r rune) bool { return r != 0 }) {
			t.Errorf("n=%d: inflated %d bytes, not all zero", n, len(got))
		}
	}
}
