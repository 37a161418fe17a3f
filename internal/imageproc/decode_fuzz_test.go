package imageproc

import (
	"errors"
	"image"
	"image/color/palette"
	"math/rand/v2"
	"runtime"
	"testing"

	"gabarit/internal/imageproc/bombtest"
)

// decFuzzSeeds are small valid images of every format and flavour (HEIC
// and AVIF ones made with libheif in a build with the heif tag).
func decFuzzSeeds(tb testing.TB) [][]byte {
	photo := decTestPhoto(24, 16, 9)
	pal := image.NewPaletted(photo.Bounds(), palette.Plan9)
	for i := range pal.Pix {
		pal.Pix[i] = byte(i * 7)
	}
	jpg := decTestEncode(tb, "jpeg", photo)
	return append([][]byte{
		jpg,
		exifTestSpliceAPP1(jpg, exifTestTIFF(false, 3, 6)),
		exifTestSpliceAPP1(jpg, exifTestTIFF(true, 3, 7)),
		decTestEncode(tb, "jpeg", image.NewGray(image.Rect(0, 0, 17, 9))),
		decTestEncode(tb, "jpeg", image.NewCMYK(image.Rect(0, 0, 9, 17))),
		decTestEncode(tb, "png", photo),
		decTestEncode(tb, "png", pal),
		decTestEncode(tb, "png", image.NewNRGBA64(image.Rect(0, 0, 5, 3))),
		decTestEncode(tb, "gif", pal),
		decTestEncode(tb, "bmp", photo),
		decTestEncode(tb, "tiff", photo),
		decTestEncode(tb, "tiff", image.NewGray16(image.Rect(0, 0, 4, 4))),
		[]byte(decTestWebPLossless),
		[]byte(decTestWebPLossy),
		[]byte(decTestWebPAlpha),
		decTestHugePNG(3000, 3000),
		exifTestJPEGHeader(16, 16),
	}, decTestHEIFSeeds(tb)...)
}

// TestDecodeMutations is a deterministic mini-fuzz run by every go test: the
// seeds with random bytes changed, inserted or cut, through every path.
func TestDecodeMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	n := 300
	if testing.Short() {
		n = 30
	}
	for _, seed := range decFuzzSeeds(t) {
		for range n {
			data := append([]byte{}, seed...)
			for range 1 + rng.IntN(4) {
				switch i := rng.IntN(len(data)); rng.IntN(4) {
				case 0, 1:
					data[i] = byte(rng.Uint32())
				case 2:
					data = append(data[:i:i], append([]byte{byte(rng.Uint32())}, data[i:]...)...)
				case 3:
					data = data[:max(i, 1)]
				}
			}
			for _, opt := range decTestPaths() {
				opt.Limits = Limits{MaxPixels: 1 << 22}
				opt.TargetSide = rng.IntN(3) * 8
				d, err := Decode(data, opt)
				switch {
				case err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) && !errors.Is(err, ErrTooLarge):
					t.Fatalf("error %v wraps no sentinel", err)
				case err == nil && d.Img.Validate() != nil:
					t.Fatalf("malformed image %d×%d, %d bytes", d.Img.W, d.Img.H, len(d.Img.Pix))
				}
			}
		}
	}
}

// fuzzAllocSlack is what FuzzDecode allows Decode to allocate beyond the
// memory limit, in all (the input's copies, tables, the result's header).
const fuzzAllocSlack = 64 << 20

// FuzzDecode checks that Decode never panics, that it fails only with one of
// its sentinels, and that what it returns is consistent with the limits. It
// runs at the real limits (DefaultLimits: 100 megapixels, 768 MiB decoded),
// so that an image small on disk but huge in memory is within its reach;
// what bounds one input's memory, and so keeps the fuzzing process alive,
// is that limit: an accepted image's estimate is within MaxDecodedBytes, and
// Decode must not allocate more than twice that (plus fuzzAllocSlack) in
// all, which a decompression bomb that fooled the estimate would.
func FuzzDecode(f *testing.F) {
	for _, s := range decFuzzSeeds(f) {
		f.Add(s, uint16(0), false)
		f.Add(s, uint16(7), true)
	}
	// Memory bombs, small enough to decode within the limit: the fuzzer
	// changes their sizes and depths.
	for _, s := range [][]byte{bombtest.TIFF16(1200, 1000), bombtest.PNG16(1000, 1200, true), bombtest.WebPLossless(3000, 2000)} {
		f.Add(s, uint16(0), true)
	}
	lim := DefaultLimits
	f.Fuzz(func(t *testing.T, data []byte, target uint16, pureGo bool) {
		opt := DecodeOptions{Limits: lim, TargetSide: int(target), PureGo: pureGo}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d, err := Decode(data, opt)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(2*lim.MaxDecodedBytes+fuzzAllocSlack) {
			t.Fatalf("Decode allocated %d MiB for a %d-byte input (limit %d MiB), error %v", alloc>>20, len(data), lim.MaxDecodedBytes>>20, err)
		}
		if err != nil {
			if d != nil {
				t.Fatalf("result %+v returned with error %v", d, err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if est, err := Estimate(data, opt); err != nil || est > lim.MaxDecodedBytes {
			t.Fatalf("decoded %d×%d %s, but Estimate says %d bytes, %v", d.Width, d.Height, d.Format, est, err)
		}
		if err := d.Img.Validate(); err != nil {
			t.Fatalf("decoded image %d×%d with %d bytes: %v", d.Img.W, d.Img.H, len(d.Img.Pix), err)
		}
		if d.Orientation < 1 || d.Orientation > 8 || d.Format == "" {
			t.Fatalf("orientation %d, format %q", d.Orientation, d.Format)
		}
		if int64(d.Width)*int64(d.Height) > lim.MaxPixels {
			t.Fatalf("%d×%d image accepted over the %d-pixel limit", d.Width, d.Height, lim.MaxPixels)
		}
		if d.Img.W > d.Width || d.Img.H > d.Height {
			t.Fatalf("image %d×%d larger than the declared %d×%d", d.Img.W, d.Img.H, d.Width, d.Height)
		}
		if longer := max(d.Img.W, d.Img.H); longer < min(int(target), max(d.Width, d.Height)) {
			t.Fatalf("longer side %d below target %d (full size %d×%d)", longer, target, d.Width, d.Height)
		}
		if target == 0 && (d.Img.W != d.Width || d.Img.H != d.Height) {
			t.Fatalf("image %d×%d without a target, want %d×%d", d.Img.W, d.Img.H, d.Width, d.Height)
		}
	})
}
