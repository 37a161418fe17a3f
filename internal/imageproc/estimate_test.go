package imageproc

import (
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"

	"gabarit/internal/imageproc/bombtest"
)

// TestEstimateBoundsAllocations checks, format by format, that the estimate
// read from the header bounds every byte the decoder allocates (TotalAlloc,
// which counts garbage too, so it bounds the live peak), and is not wildly
// above it: the bombs (16-bit TIFF and PNG, lossless WebP) and ordinary
// files of every format, on both JPEG paths, at full size and reduced.
func TestEstimateBoundsAllocations(t *testing.T) {
	const w, h = 640, 480
	photo := decTestPhoto(w, h, 3)
	gray := image.NewGray(photo.Bounds())
	gray16 := image.NewGray16(photo.Bounds())
	for y := range h {
		for x := range w {
			v := photo.Pix[photo.PixOffset(x, y)]
			gray.SetGray(x, y, color.Gray{Y: v})
			gray16.SetGray16(x, y, color.Gray16{Y: uint16(v) * 257})
		}
	}
	tests := []struct {
		name string
		data []byte
		opt  DecodeOptions
	}{
		{name: "tiff16 bomb", data: bombtest.TIFF16(w, h)},
		{name: "png16 bomb", data: bombtest.PNG16(w, h, false)},
		{name: "png16 interlaced bomb", data: bombtest.PNG16(w, h, true)},
		{name: "webp lossless bomb", data: bombtest.WebPLossless(w, h)},
		{name: "png rgb", data: decTestEncode(t, "png", photo)},
		{name: "png gray", data: decTestEncode(t, "png", gray)},
		{name: "png gray16", data: decTestEncode(t, "png", gray16)},
		{name: "tiff rgb", data: decTestEncode(t, "tiff", photo)},
		{name: "gif", data: decTestEncode(t, "gif", photo)},
		{name: "bmp", data: decTestEncode(t, "bmp", photo)},
		{name: "jpeg go", data: decTestEncode(t, "jpeg", photo), opt: DecodeOptions{PureGo: true}},
		{name: "jpeg go gray", data: decTestEncode(t, "jpeg", gray), opt: DecodeOptions{PureGo: true}},
		{name: "jpeg go reduced", data: decTestEncode(t, "jpeg", photo), opt: DecodeOptions{PureGo: true, TargetSide: 300}},
		{name: "jpeg default", data: decTestEncode(t, "jpeg", photo)},
		{name: "jpeg default reduced", data: decTestEncode(t, "jpeg", photo), opt: DecodeOptions{TargetSide: 300}},
		{name: "png reduced", data: decTestEncode(t, "png", photo), opt: DecodeOptions{TargetSide: 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			est, err := Estimate(tt.data, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			var d *Decoded
			_, alloc := decTestMeasure(func() { d, err = Decode(tt.data, tt.opt) })
			if err != nil {
				t.Fatal(err)
			}
			if d.Width != w || d.Height != h {
				t.Fatalf("decoded %d×%d, want %d×%d", d.Width, d.Height, w, h)
			}
			dec := est - int64(len(tt.data)) // the data is allocated already
			t.Logf("estimate %d bytes (%.1f per pixel) for %d allocated (%.1f per pixel)",
				dec, float64(dec)/(w*h), alloc, float64(alloc)/(w*h))
			if uint64(dec) < alloc {
				t.Errorf("estimate %d bytes, but decoding allocated %d", dec, alloc)
			}
			// Not so generous that ordinary photos are refused: libjpeg-turbo
			// allocates in C, where TotalAlloc does not see it.
			if tt.opt.PureGo || !strings.HasPrefix(tt.name, "jpeg") {
				if uint64(dec) > 6*alloc+4<<20 {
					t.Errorf("estimate %d bytes, more than 6× the %d allocated", dec, alloc)
				}
			}
		})
	}
}

// TestEstimateRefusesBombs checks that 100-megapixel bombs are refused from
// their header, before any pixel is decoded, with a message that says how
// much memory they would take, while a 100-megapixel 8-bit PNG and a
// 24-megapixel 16-bit TIFF are accepted by the same limit.
func TestEstimateRefusesBombs(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		limits  Limits
		wantMiB int64 // the estimate, in MiB, rounded down
		refused bool
	}{
		// 8 B/px image + 24 B/px strip buffers, RGB at 1/4 scale.
		{name: "tiff16 100 MP", data: bombtest.TIFF16(10000, 10000), wantMiB: 3083, refused: true},
		// 8 B/px image + 8 B/px passes.
		{name: "png16 interlaced 100 MP", data: bombtest.PNG16(10000, 10000, true), wantMiB: 1548, refused: true},
		// 8 B/px ARGB and transform.
		{name: "webp lossless 100 MP", data: bombtest.WebPLossless(10000, 10000), wantMiB: 781, refused: true},
		// 4 B/px RGBA.
		{name: "png 8-bit 100 MP", data: decTestHugePNG(10000, 10000), wantMiB: 399},
		{name: "tiff16 24 MP", data: bombtest.TIFF16(6000, 4000), wantMiB: 760},
		{name: "tiff16 24 MP, lower limit", data: bombtest.TIFF16(6000, 4000), limits: Limits{MaxDecodedBytes: 256 << 20},
			wantMiB: 760, refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := DecodeOptions{Limits: tt.limits, TargetSide: 1600}
			est, err := Estimate(tt.data, opt)
			if got := est >> 20; got < tt.wantMiB-2 || got > tt.wantMiB+2 {
				t.Errorf("estimate %d MiB, want about %d", got, tt.wantMiB)
			}
			var me *MemoryLimitError
			if tt.refused != errors.As(err, &me) {
				t.Fatalf("Estimate: %v, want refused=%v", err, tt.refused)
			}
			if !tt.refused {
				return
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%v does not match ErrTooLarge", err)
			}
			var derr error
			_, alloc := decTestMeasure(func() { _, derr = Decode(tt.data, opt) })
			if !errors.As(derr, &me) || me.Need != est {
				t.Fatalf("Decode: %v, want the *MemoryLimitError of Estimate", derr)
			}
			if alloc > 1<<20 {
				t.Errorf("the refusal allocated %d bytes: pixels were decoded", alloc)
			}
			msg := Message(derr)
			if !strings.Contains(msg, "MiB of memory to decode; the limit is ") || !strings.Contains(msg, "pixels)") {
				t.Errorf("message %q", msg)
			}
		})
	}
}
