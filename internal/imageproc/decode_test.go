package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// WebP files made with cwebp 1.2.4 from decTestWebPSource: lossless
// (-lossless -exact), lossy (-q 90) and lossy with alpha (-q 90 -exact, where
// the source alpha is 17*x).
const (
	decTestWebPLossless = "\x52\x49\x46\x46\x2a\x00\x00\x00\x57\x45\x42\x50\x56\x50\x38\x4c\x1e\x00\x00\x00\x2f\x0f\xc0\x02" +
		"\x00\x99\x8c\xe8\x7f\x6c\x22\xa2\xff\x01\x21\x01\x61\x84\xff\x77\x35\x79\x20\x06\x21\x26\x00\xb8" +
		"\xea\x2e"
	decTestWebPLossy = "\x52\x49\x46\x46\x62\x00\x00\x00\x57\x45\x42\x50\x56\x50\x38\x20\x56\x00\x00\x00\xf0\x02\x00\x9d" +
		"\x01\x2a\x10\x00\x0c\x00\x00\xc0\x12\x25\xb0\x02\x74\xba\x01\x40\x02\xaf\xfd\xb6\x00\x26\xee\x5b" +
		"\x71\xac\x50\x00\x00\xfe\xff\xd4\xeb\x7e\x48\x21\x22\x9a\xe5\x36\x73\x2e\xd8\x2f\x14\xbe\x48\x37" +
		"\x6b\xdb\x14\x57\x81\xfa\x41\x3d\xa8\x04\x12\x17\xa9\xef\xb9\x7e\xdf\xf8\xd5\xbb\xf0\x02\xff\xfe" +
		"\x8b\x7d\x90\x7a\xb8\xf6\x41\xdf\xc0\x00"
	decTestWebPAlpha = "\x52\x49\x46\x46\x9e\x00\x00\x00\x57\x45\x42\x50\x56\x50\x38\x58\x0a\x00\x00\x00\x10\x00\x00\x00" +
		"\x0f\x00\x00\x0b\x00\x00\x41\x4c\x50\x48\x24\x00\x00\x00\x01\x7f\x20\x10\x48\x52\xd8\x1f\x78\x85" +
		"\x88\x48\x1d\x0c\x02\x40\xa2\x10\x4b\x2c\xb1\xc4\x12\x4b\x2c\xb1\x4c\x30\x40\x44\xff\x03\x94\xd3" +
		"\xdd\x5f\x56\x50\x38\x20\x54\x00\x00\x00\xb0\x02\x00\x9d\x01\x2a\x10\x00\x0c\x00\x00\xc0\x12\x25" +
		"\xb0\x02\x74\xba\x01\x40\x01\x18\x00\x26\xee\x5b\x71\xac\x50\x00\x00\xfe\xff\xd4\xeb\x7e\x48\x21" +
		"\x22\x9a\xe5\x36\x73\x2e\xd8\x2f\x14\xbe\x48\x37\x6b\xdb\x14\x57\x81\xfa\x41\x3c\xa3\x1a\x48\x16" +
		"\xbf\x7e\x9e\x7f\xf1\xab\x77\xcd\x6f\xfe\x82\x3d\x72\x70\xaf\xb7\x5e\x9c\x20\x80\x00\x00"
)

// decTestWebPSource is the 16×12 image the WebP fixtures were made from,
// with alpha 17*x when withAlpha.
func decTestWebPSource(withAlpha bool) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 16, 12))
	for y := range 12 {
		for x := range 16 {
			c := color.NRGBA{uint8(x * 16), uint8(y * 20), uint8((x + y) * 8), 255}
			if withAlpha {
				c.A = uint8(x * 17)
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

// decTestPhoto is a deterministic photo-like image: smooth gradients, a few
// soft discs and mild noise, so that JPEG sizes and speeds are realistic.
func decTestPhoto(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 42))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	type disc struct{ cx, cy, r, cr, cg, cb float64 }
	discs := make([]disc, 12)
	for i := range discs {
		discs[i] = disc{rng.Float64() * float64(w), rng.Float64() * float64(h), (0.05 + 0.2*rng.Float64()) * float64(min(w, h)),
			rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
	}
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r, g, b := 200*fx+30, 180*fy+40, 120*(1-fx*fy)+60
			for _, d := range discs {
				dx, dy := float64(x)-d.cx, float64(y)-d.cy
				if k := 1 - math.Sqrt(dx*dx+dy*dy)/d.r; k > 0 {
					k = math.Min(1, 3*k)
					r, g, b = r*(1-k)+d.cr*k, g*(1-k)+d.cg*k, b*(1-k)+d.cb*k
				}
			}
			n := rng.NormFloat64() * 6
			i := m.PixOffset(x, y)
			m.Pix[i+0] = decTestClamp(r + n)
			m.Pix[i+1] = decTestClamp(g + n)
			m.Pix[i+2] = decTestClamp(b + n)
			m.Pix[i+3] = 255
		}
	}
	return m
}

func decTestClamp(v float64) uint8 {
	return uint8(math.Max(0, math.Min(255, math.Round(v))))
}

// decTestRef converts m to RGB through At, the slow obvious way.
func decTestRef(m image.Image) *RGB {
	b := m.Bounds()
	out := NewRGB(b.Dx(), b.Dy())
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, g, bl, _ := m.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := 3 * (y*out.W + x)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = byte(r>>8), byte(g>>8), byte(bl>>8)
		}
	}
	return out
}

// decTestDiff returns the mean and maximum absolute difference of two
// same-sized images.
func decTestDiff(t *testing.T, got, want *RGB) (mean float64, maxd int) {
	t.Helper()
	if got.W != want.W || got.H != want.H {
		t.Fatalf("size %d×%d, want %d×%d", got.W, got.H, want.W, want.H)
	}
	var sum int
	for i := range got.Pix {
		d := int(got.Pix[i]) - int(want.Pix[i])
		if d < 0 {
			d = -d
		}
		sum += d
		maxd = max(maxd, d)
	}
	return float64(sum) / float64(len(got.Pix)), maxd
}

func decTestEncode(t testing.TB, format string, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, m)
	case "jpeg":
		err = jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&buf, m, nil)
	case "bmp":
		err = bmp.Encode(&buf, m)
	case "tiff":
		err = tiff.Encode(&buf, m, &tiff.Options{Compression: tiff.Deflate, Predictor: true})
	default:
		t.Fatalf("no encoder for %s", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decTestPaths lists the decoding paths available in this build.
func decTestPaths() []DecodeOptions {
	if FastJPEG() {
		return []DecodeOptions{{PureGo: true}, {}}
	}
	return []DecodeOptions{{PureGo: true}}
}

func decTestPathName(o DecodeOptions) string {
	if o.PureGo || !FastJPEG() {
		return "go"
	}
	return "turbo"
}

func TestDecodeRoundTrip(t *testing.T) {
	photo := decTestPhoto(67, 45, 1)
	gray := image.NewGray(photo.Bounds())
	gray16 := image.NewGray16(photo.Bounds())
	rgba64 := image.NewRGBA64(photo.Bounds())
	nrgba := image.NewNRGBA(photo.Bounds())
	paletted := image.NewPaletted(photo.Bounds(), palette.WebSafe)
	for y := range 45 {
		for x := range 67 {
			c := photo.RGBAAt(x, y)
			gray.SetGray(x, y, color.Gray{c.G})
			gray16.SetGray16(x, y, color.Gray16{uint16(c.G)<<8 | uint16(x)})
			rgba64.SetRGBA64(x, y, color.RGBA64{uint16(c.R) << 8, uint16(c.G)<<8 | 0xFF, uint16(c.B) << 8, 0xFFFF})
			nrgba.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, uint8(x * 3)})
			paletted.SetColorIndex(x, y, uint8((x+y)%len(palette.WebSafe)))
		}
	}
	tests := []struct {
		name   string
		data   []byte
		format string
		src    image.Image // the encoded image
		lossy  bool        // compare with the standard decoder's output rather than src
	}{
		{name: "png rgba", data: decTestEncode(t, "png", photo), format: "png", src: photo},
		{name: "png gray", data: decTestEncode(t, "png", gray), format: "png", src: gray},
		{name: "png gray16", data: decTestEncode(t, "png", gray16), format: "png", src: gray16},
		{name: "png rgba64", data: decTestEncode(t, "png", rgba64), format: "png", src: rgba64},
		{name: "png alpha on black", data: decTestEncode(t, "png", nrgba), format: "png", src: nrgba},
		{name: "png paletted", data: decTestEncode(t, "png", paletted), format: "png", src: paletted},
		{name: "gif paletted", data: decTestEncode(t, "gif", paletted), format: "gif", src: paletted},
		{name: "bmp", data: decTestEncode(t, "bmp", photo), format: "bmp", src: photo},
		{name: "tiff rgba", data: decTestEncode(t, "tiff", photo), format: "tiff", src: photo},
		{name: "tiff gray", data: decTestEncode(t, "tiff", gray), format: "tiff", src: gray},
		{name: "jpeg color", data: decTestEncode(t, "jpeg", photo), format: "jpeg", src: photo, lossy: true},
		{name: "jpeg gray", data: decTestEncode(t, "jpeg", gray), format: "jpeg", src: gray, lossy: true},
		{name: "webp lossless", data: []byte(decTestWebPLossless), format: "webp", src: decTestWebPSource(false)},
		{name: "webp lossy", data: []byte(decTestWebPLossy), format: "webp", src: decTestWebPSource(false), lossy: true},
		{name: "webp alpha on black", data: []byte(decTestWebPAlpha), format: "webp", src: decTestWebPSource(true), lossy: true},
	}
	for _, tt := range tests {
		for _, opt := range decTestPaths() {
			t.Run(tt.name+"/path="+decTestPathName(opt), func(t *testing.T) {
				d, err := Decode(tt.data, opt)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if err := d.Img.Validate(); err != nil {
					t.Fatal(err)
				}
				b := tt.src.Bounds()
				if d.Format != tt.format || d.Orientation != 1 || d.Width != b.Dx() || d.Height != b.Dy() {
					t.Errorf("got format %q orientation %d size %d×%d, want %q 1 %d×%d",
						d.Format, d.Orientation, d.Width, d.Height, tt.format, b.Dx(), b.Dy())
				}
				// Against the source: exact for lossless formats (within
				// rounding of non-premultiplied alpha), loosely for lossy ones.
				mean, maxd := decTestDiff(t, d.Img, decTestRef(tt.src))
				if lim := 0.5; tt.lossy {
					if mean > 12 {
						t.Errorf("mean difference from the source %.3f > 12", mean)
					}
				} else if mean > lim || maxd > 1 {
					t.Errorf("differs from the source: mean %.3f, max %d", mean, maxd)
				}
				if !tt.lossy {
					return
				}
				// Against the standard decoder: exact for the pure-Go path
				// (but for the rounding of alpha), close for libjpeg-turbo,
				// whose chroma upsampling is smoother.
				m, _, err := image.Decode(bytes.NewReader(tt.data))
				if err != nil {
					t.Fatal(err)
				}
				mean, maxd = decTestDiff(t, d.Img, decTestRef(m))
				if decTestPathName(opt) == "go" && maxd > 1 || mean > 4 {
					t.Errorf("differs from the standard decoder: mean %.3f, max %d", mean, maxd)
				}
			})
		}
	}
}

// TestToRGBMatchesAt checks every specialised row converter against At.
func TestToRGBMatchesAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	fill := func(p []byte) {
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
	}
	r := image.Rect(0, 0, 37, 23)
	var imgs []struct {
		name string
		m    image.Image
	}
	add := func(name string, m image.Image) {
		imgs = append(imgs, struct {
			name string
			m    image.Image
		}{name, m})
	}
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(r, ratio)
		fill(m.Y)
		fill(m.Cb)
		fill(m.Cr)
		add("ycbcr "+ratio.String(), m)
		a := image.NewNYCbCrA(r, ratio)
		fill(a.Y)
		fill(a.Cb)
		fill(a.Cr)
		fill(a.A)
		add("nycbcra "+ratio.String(), a)
		add("ycbcr offset "+ratio.String(), m.SubImage(image.Rect(3, 5, 30, 20)))
	}
	gray := image.NewGray(r)
	fill(gray.Pix)
	add("gray", gray)
	add("gray offset", gray.SubImage(image.Rect(1, 2, 20, 20)))
	gray16 := image.NewGray16(r)
	fill(gray16.Pix)
	add("gray16", gray16)
	rgba := image.NewRGBA(r)
	fill(rgba.Pix)
	add("rgba", rgba)
	nrgba := image.NewNRGBA(r)
	fill(nrgba.Pix)
	add("nrgba", nrgba)
	rgba64 := image.NewRGBA64(r)
	fill(rgba64.Pix)
	add("rgba64", rgba64)
	nrgba64 := image.NewNRGBA64(r)
	fill(nrgba64.Pix)
	add("nrgba64", nrgba64)
	cmyk := image.NewCMYK(r)
	fill(cmyk.Pix)
	add("cmyk", cmyk)
	pal := image.NewPaletted(r, palette.Plan9[:100])
	for i := range pal.Pix {
		pal.Pix[i] = byte(rng.IntN(100))
	}
	add("paletted", pal)
	alpha := image.NewAlpha(r)
	fill(alpha.Pix)
	add("alpha (generic)", alpha)

	for _, tt := range imgs {
		t.Run(tt.name, func(t *testing.T) {
			// Non-premultiplied alpha is rounded rather than truncated.
			_, maxd := decTestDiff(t, decToRGB(tt.m, 1), decTestRef(tt.m))
			if maxd > 1 {
				t.Errorf("max difference from At: %d", maxd)
			}
		})
	}
}

func TestBoxDownscale(t *testing.T) {
	m := image.NewGray(image.Rect(0, 0, 5, 3))
	for i := range m.Pix {
		m.Pix[i] = byte(10 * i)
	}
	got := decToRGB(m, 2)
	// Blocks: {0,10,50,60} {20,30,70,80} {40,90} {100,110} {120,130} {140}.
	want := []byte{30, 50, 65, 105, 125, 140}
	if got.W != 3 || got.H != 2 {
		t.Fatalf("size %d×%d, want 3×2", got.W, got.H)
	}
	for i, v := range want {
		if got.Pix[3*i] != v || got.Pix[3*i+1] != v || got.Pix[3*i+2] != v {
			t.Errorf("pixel %d = %v, want %d", i, got.Pix[3*i:3*i+3], v)
		}
	}
}

func TestDecodeTargetSide(t *testing.T) {
	jpg := decTestEncode(t, "jpeg", decTestPhoto(1001, 601, 2))
	pngData := decTestEncode(t, "png", decTestPhoto(301, 97, 3))
	// A GIF whose only frame (24×16) is much smaller than its logical screen
	// (found by FuzzDecode: the scale factor came from the screen size).
	frame := image.NewPaletted(image.Rect(100, 50, 124, 66), palette.Plan9)
	var gifBuf bytes.Buffer
	if err := gif.EncodeAll(&gifBuf, &gif.GIF{Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{ColorModel: frame.Palette, Width: 4000, Height: 3000}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		data         []byte
		target       int
		wantW, wantH int
	}{
		{name: "jpeg no target", data: jpg, target: 0, wantW: 1001, wantH: 601},
		{name: "jpeg target above size", data: jpg, target: 5000, wantW: 1001, wantH: 601},
		{name: "jpeg target 1001", data: jpg, target: 1001, wantW: 1001, wantH: 601},
		{name: "jpeg half", data: jpg, target: 500, wantW: 501, wantH: 301},
		{name: "jpeg just over half", data: jpg, target: 501, wantW: 1001, wantH: 601},
		{name: "jpeg quarter", data: jpg, target: 250, wantW: 251, wantH: 151},
		{name: "jpeg eighth", data: jpg, target: 125, wantW: 126, wantH: 76},
		{name: "jpeg eighth is the floor", data: jpg, target: 10, wantW: 126, wantH: 76},
		{name: "png quarter", data: pngData, target: 75, wantW: 76, wantH: 25},
		{name: "gif frame smaller than screen", data: gifBuf.Bytes(), target: 4, wantW: 6, wantH: 4},
	}
	for _, tt := range tests {
		for _, opt := range decTestPaths() {
			t.Run(tt.name+"/path="+decTestPathName(opt), func(t *testing.T) {
				opt.TargetSide = tt.target
				d, err := Decode(tt.data, opt)
				if err != nil {
					t.Fatal(err)
				}
				if d.Img.W != tt.wantW || d.Img.H != tt.wantH {
					t.Errorf("image %d×%d, want %d×%d", d.Img.W, d.Img.H, tt.wantW, tt.wantH)
				}
				if err := d.Img.Validate(); err != nil {
					t.Fatal(err)
				}
				if longer := max(d.Img.W, d.Img.H); longer < min(tt.target, max(d.Width, d.Height)) {
					t.Errorf("longer side %d below target %d", longer, tt.target)
				}
			})
		}
	}
}

// TestTurboMatchesGo decodes the same JPEGs with libjpeg-turbo and image/jpeg.
func TestTurboMatchesGo(t *testing.T) {
	if !FastJPEG() {
		t.Skip("built without libjpeg-turbo (needs cgo and -tags jpegturbo): the second pass of `make test` runs it")
	}
	color420 := decTestEncode(t, "jpeg", decTestPhoto(640, 480, 4))
	var gbuf bytes.Buffer
	gray := image.NewGray(image.Rect(0, 0, 333, 250))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i*7/333 + i%5)
	}
	if err := jpeg.Encode(&gbuf, gray, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		target  int
		maxMean float64
	}{
		{name: "color full", data: color420, maxMean: 3},
		{name: "color 1/2", data: color420, target: 320, maxMean: 3},
		{name: "color 1/4", data: color420, target: 160, maxMean: 3},
		{name: "color 1/8", data: color420, target: 80, maxMean: 3},
		{name: "gray full", data: gbuf.Bytes(), maxMean: 3},
		{name: "gray 1/2", data: gbuf.Bytes(), target: 160, maxMean: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fast, err := Decode(tt.data, DecodeOptions{TargetSide: tt.target})
			if err != nil {
				t.Fatal(err)
			}
			slow, err := Decode(tt.data, DecodeOptions{TargetSide: tt.target, PureGo: true})
			if err != nil {
				t.Fatal(err)
			}
			mean, maxd := decTestDiff(t, fast.Img, slow.Img)
			t.Logf("turbo vs go: mean %.3f, max %d", mean, maxd)
			if mean > tt.maxMean {
				t.Errorf("mean absolute difference %.3f > %.1f", mean, tt.maxMean)
			}
		})
	}
}

// decTestQuadrants is a w×h image whose quadrants are red (top left), green
// (top right), blue (bottom left) and white (bottom right).
func decTestQuadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := [2][2]color.RGBA{
				{{255, 0, 0, 255}, {0, 255, 0, 255}},
				{{0, 0, 255, 255}, {255, 255, 255, 255}},
			}[y*2/h][x*2/w]
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func TestDecodeEXIFOrientation(t *testing.T) {
	const w, h = 48, 32
	base := decTestEncode(t, "jpeg", decTestQuadrants(w, h))
	const (
		red = iota
		green
		blue
		white
	)
	colors := [][3]byte{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}}
	// Displayed corners (top left, top right, bottom left, bottom right) for
	// each orientation, per the EXIF 2.3 definition of tag 0x0112.
	tests := []struct {
		name    string
		orient  int
		corners [4]int
	}{
		{name: "1 normal", orient: 1, corners: [4]int{red, green, blue, white}},
		{name: "2 mirror horizontal", orient: 2, corners: [4]int{green, red, white, blue}},
		{name: "3 rotate 180", orient: 3, corners: [4]int{white, blue, green, red}},
		{name: "4 mirror vertical", orient: 4, corners: [4]int{blue, white, red, green}},
		{name: "5 transpose", orient: 5, corners: [4]int{red, blue, green, white}},
		{name: "6 rotate 90 cw", orient: 6, corners: [4]int{blue, red, white, green}},
		{name: "7 transverse", orient: 7, corners: [4]int{white, green, blue, red}},
		{name: "8 rotate 90 ccw", orient: 8, corners: [4]int{green, white, red, blue}},
	}
	for _, tt := range tests {
		for _, bigEndian := range []bool{false, true} {
			for _, opt := range decTestPaths() {
				for _, target := range []int{0, 24} {
					name := tt.name + "/path=" + decTestPathName(opt)
					if bigEndian {
						name += "/MM"
					}
					if target > 0 {
						name += "/scaled"
					}
					t.Run(name, func(t *testing.T) {
						data := exifTestSpliceAPP1(base, exifTestTIFF(bigEndian, 3, uint32(tt.orient)))
						opt.TargetSide = target
						d, err := Decode(data, opt)
						if err != nil {
							t.Fatal(err)
						}
						wantW, wantH := w, h
						if tt.orient >= 5 {
							wantW, wantH = h, w
						}
						if d.Orientation != tt.orient || d.Width != wantW || d.Height != wantH {
							t.Fatalf("orientation %d size %d×%d, want %d %d×%d", d.Orientation, d.Width, d.Height, tt.orient, wantW, wantH)
						}
						f := 1
						if target > 0 {
							f = 2
						}
						if d.Img.W != wantW/f || d.Img.H != wantH/f {
							t.Fatalf("image %d×%d, want %d×%d", d.Img.W, d.Img.H, wantW/f, wantH/f)
						}
						in := 4 / f // stay clear of the quadrant edges
						pts := [4][2]int{{in, in}, {d.Img.W - 1 - in, in}, {in, d.Img.H - 1 - in}, {d.Img.W - 1 - in, d.Img.H - 1 - in}}
						for i, p := range pts {
							j := 3 * (p[1]*d.Img.W + p[0])
							got := d.Img.Pix[j : j+3]
							want := colors[tt.corners[i]]
							for c := range 3 {
								if diff := int(got[c]) - int(want[c]); diff < -24 || diff > 24 {
									t.Errorf("corner %d at %v = %v, want %v", i, p, got, want)
									break
								}
							}
						}
					})
				}
			}
		}
	}
}

func TestDecodeTIFFOrientation(t *testing.T) {
	// x/image/tiff writes no orientation tag: append one to IFD0 by hand.
	m := decTestQuadrants(6, 4)
	var buf bytes.Buffer
	if err := tiff.Encode(&buf, m, nil); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	ifd := binary.LittleEndian.Uint32(data[4:])
	n := binary.LittleEndian.Uint16(data[ifd:])
	// Rewrite IFD0 at the end of the file with the extra entry (tags stay
	// sorted: 0x0112 goes after the lower-numbered ones).
	entries := data[ifd+2 : ifd+2+12*uint32(n)]
	newIFD := binary.LittleEndian.AppendUint16(nil, n+1)
	inserted := false
	for i := range int(n) {
		e := entries[12*i : 12*i+12]
		if !inserted && binary.LittleEndian.Uint16(e) > exifTagOrientation {
			newIFD = append(newIFD, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0)
			inserted = true
		}
		newIFD = append(newIFD, e...)
	}
	if !inserted {
		newIFD = append(newIFD, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0)
	}
	newIFD = append(newIFD, 0, 0, 0, 0)
	if len(data)%2 == 1 {
		data = append(data, 0)
	}
	binary.LittleEndian.PutUint32(data[4:], uint32(len(data)))
	data = append(data, newIFD...)

	d, err := Decode(data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "tiff" || d.Orientation != 6 || d.Width != 4 || d.Height != 6 {
		t.Fatalf("got %s orientation %d size %d×%d, want tiff 6 4×6", d.Format, d.Orientation, d.Width, d.Height)
	}
	// Rotated 90° clockwise: the top-left pixel is the source's bottom left (blue).
	if got := d.Img.Pix[:3]; !bytes.Equal(got, []byte{0, 0, 255}) {
		t.Errorf("top-left pixel %v, want blue", got)
	}
}

// decTestMeasure runs f once and returns its duration and the bytes it
// allocated.
func decTestMeasure(f func()) (time.Duration, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return elapsed, after.TotalAlloc - before.TotalAlloc
}

// decTestHugePNG is a valid PNG signature and IHDR chunk declaring a w×h RGB
// image, followed by a small IDAT and IEND.
func decTestHugePNG(w, h uint32) []byte {
	chunk := func(typ string, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		b = append(b, typ...)
		b = append(b, payload...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), payload...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit truecolour, deflate, no interlace
	b := []byte("\x89PNG\r\n\x1a\n")
	b = append(b, chunk("IHDR", ihdr)...)
	b = append(b, chunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01})...)
	return append(b, chunk("IEND", nil)...)
}

func TestDecodeLimits(t *testing.T) {
	random := make([]byte, 40<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(random); i += 8 {
		binary.LittleEndian.PutUint64(random[i:], rng.Uint64())
	}
	random[0] = 0x00 // no accidental signature
	jpegPrefixed := append([]byte{0xFF, 0xD8, 0xFF}, random[3:]...)
	small := decTestEncode(t, "png", decTestPhoto(100, 80, 5))

	tests := []struct {
		name    string
		data    []byte
		limits  Limits
		want    error
		wantMsg string
	}{
		{name: "50000x50000 png header", data: decTestHugePNG(50000, 50000), want: ErrTooLarge,
			wantMsg: "the photo is 2500 megapixels (50000×50000 pixels); the limit is 100 megapixels"},
		{name: "65536x65536 png header", data: decTestHugePNG(1<<16, 1<<16), want: ErrTooLarge},
		{name: "40 MB random", data: random, want: ErrUnsupportedFormat},
		{name: "40 MB jpeg-prefixed random", data: jpegPrefixed, want: ErrCorrupt},
		{name: "max bytes", data: small, limits: Limits{MaxBytes: 100}, want: ErrTooLarge,
			wantMsg: "; the limit is 100 bytes"},
		{name: "max pixels", data: small, limits: Limits{MaxPixels: 7999}, want: ErrTooLarge,
			wantMsg: "the photo is 0.008 megapixels (100×80 pixels); the limit is 0.007999 megapixels"},
		{name: "max pixels exact", data: small, limits: Limits{MaxPixels: 8000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, opt := range decTestPaths() {
				opt.Limits = tt.limits
				var err error
				elapsed, alloc := decTestMeasure(func() { _, err = Decode(tt.data, opt) })
				t.Logf("path=%s: %v in %v, %d bytes allocated", decTestPathName(opt), err, elapsed, alloc)
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Fatalf("error %v, want %v", err, tt.want)
				}
				if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not contain %q", err, tt.wantMsg)
				}
				if tt.want != nil && (elapsed > 250*time.Millisecond || alloc > 1<<20) {
					t.Errorf("refusal took %v and %d bytes, want milliseconds and no large allocation", elapsed, alloc)
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	jpg := decTestEncode(t, "jpeg", decTestPhoto(64, 48, 6))
	pngData := decTestEncode(t, "png", decTestPhoto(64, 48, 6))
	gifData := decTestEncode(t, "gif", decTestPhoto(32, 32, 6))
	bmpData := decTestEncode(t, "bmp", decTestPhoto(32, 32, 6))
	tiffData := decTestEncode(t, "tiff", decTestPhoto(32, 32, 6))
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{name: "nil", data: nil, want: ErrCorrupt},
		{name: "empty", data: []byte{}, want: ErrCorrupt},
		{name: "one byte", data: []byte{0xFF}, want: ErrUnsupportedFormat},
		{name: "text", data: []byte("<html><body>not an image</body></html>"), want: ErrUnsupportedFormat},
		{name: "jpeg signature only", data: []byte{0xFF, 0xD8, 0xFF}, want: ErrCorrupt},
		{name: "jpeg headers only", data: jpg[:600], want: ErrCorrupt},
		{name: "jpeg truncated in half", data: jpg[:len(jpg)/2], want: ErrCorrupt},
		{name: "jpeg missing EOI", data: jpg[:len(jpg)-2], want: nil},
		{name: "jpeg missing last bytes", data: jpg[:len(jpg)-20], want: ErrCorrupt},
		{name: "png signature only", data: pngData[:8], want: ErrCorrupt},
		{name: "png truncated", data: pngData[:len(pngData)/2], want: ErrCorrupt},
		{name: "png bad crc", data: func() []byte {
			b := bytes.Clone(pngData)
			b[29] ^= 0xFF // IHDR CRC
			return b
		}(), want: ErrCorrupt},
		{name: "gif truncated", data: gifData[:len(gifData)/2], want: ErrCorrupt},
		{name: "bmp truncated", data: bmpData[:len(bmpData)/2], want: ErrCorrupt},
		{name: "tiff truncated", data: tiffData[:len(tiffData)/2], want: ErrCorrupt},
		{name: "tiff header only", data: []byte("II*\x00\x08\x00\x00\x00"), want: ErrCorrupt},
		{name: "riff without webp", data: []byte("RIFF\x10\x00\x00\x00AVI LIST"), want: ErrUnsupportedFormat},
		{name: "webp header only", data: []byte("RIFF\x10\x00\x00\x00WEBP"), want: ErrCorrupt},
		{name: "webp truncated", data: []byte(decTestWebPLossy)[:40], want: ErrCorrupt},
		{name: "webp truncated header", data: []byte(decTestWebPAlpha)[:20], want: ErrCorrupt},
	}
	for _, tt := range tests {
		for _, opt := range decTestPaths() {
			t.Run(tt.name+"/path="+decTestPathName(opt), func(t *testing.T) {
				d, err := Decode(tt.data, opt)
				if tt.want == nil {
					if err != nil {
						t.Fatalf("Decode: %v", err)
					}
					return
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("error %v, want %v", err, tt.want)
				}
				if d != nil {
					t.Errorf("non-nil result with error")
				}
				if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] || strings.Contains(msg, "failed to") {
					t.Errorf("badly worded error %q", msg)
				}
			})
		}
	}
}

func TestDecodeFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "photo.png")
	if err := os.WriteFile(good, decTestEncode(t, "png", decTestPhoto(40, 30, 8)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A sparse file over the limit: refused from its size without reading it.
	huge := filepath.Join(dir, "huge.jpg")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(DefaultLimits.MaxBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	misnamed := filepath.Join(dir, "photo.jpg") // PNG content, JPEG name
	if err := os.Link(good, misnamed); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.png")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		path       string
		want       error
		wantFormat string
	}{
		{name: "good", path: good, wantFormat: "png"},
		{name: "sniffed not named", path: misnamed, wantFormat: "png"},
		{name: "over the size limit", path: huge, want: ErrTooLarge},
		{name: "empty", path: empty, want: ErrCorrupt},
		{name: "missing", path: filepath.Join(dir, "missing.png"), want: os.ErrNotExist},
		{name: "directory", path: dir, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d *Decoded
			var err error
			elapsed, alloc := decTestMeasure(func() { d, err = DecodeFile(tt.path, DecodeOptions{}) })
			switch {
			case tt.wantFormat != "":
				if err != nil {
					t.Fatal(err)
				}
				if d.Format != tt.wantFormat || d.Width != 40 || d.Height != 30 {
					t.Errorf("got %s %d×%d, want %s 40×30", d.Format, d.Width, d.Height, tt.wantFormat)
				}
				return
			case err == nil:
				t.Fatal("no error")
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the path", err)
			}
			if tt.want == ErrTooLarge && alloc > 1<<20 {
				t.Errorf("refusing an oversized file allocated %d bytes in %v", alloc, elapsed)
			}
		})
	}
}

// Small JPEG fixtures made with Pillow 9.4 and jpegtran (libjpeg-turbo 2.1.5),
// which the Go encoder cannot produce: an Adobe CMYK JPEG (16×8, C=16x,
// M=32y, Y=128 left half, K=40 top half), and the same 16×8 RGB gradient
// as a progressive and as an arithmetic-coded JPEG.
const (
	decTestJPEGCMYK = "\xff\xd8\xff\xee\x00\x0e\x41\x64\x6f\x62\x65\x00\x64\x00\x00\x00\x00\x00\xff\xdb\x00\x43\x00\x02" +
		"\x01\x01\x01\x01\x01\x02\x01\x01\x01\x02\x02\x02\x02\x02\x04\x03\x02\x02\x02\x02\x05\x04\x04\x03" +
		"\x04\x06\x05\x06\x06\x06\x05\x06\x06\x06\x07\x09\x08\x06\x07\x09\x07\x06\x06\x08\x0b\x08\x09\x0a" +
		"\x0a\x0a\x0a\x0a\x06\x08\x0b\x0c\x0b\x0a\x0c\x09\x0a\x0a\x0a\xff\xc0\x00\x14\x08\x00\x08\x00\x10" +
		"\x04\x43\x11\x00\x4d\x11\x00\x59\x11\x00\x4b\x11\x00\xff\xc4\x00\x18\x00\x00\x03\x01\x01\x00\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x0a\x03\x06\xff\xc4\x00\x1e\x10\x00\x01\x01\x09" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x66\x09\x18\x1a\x44\x82\xa4\xa5\xe1\xe3\xff" +
		"\xda\x00\x0e\x04\x43\x00\x4d\x00\x59\x00\x4b\x00\x00\x3f\x00\x63\x8d\x24\x9f\xa8\xef\x22\x47\x5e" +
		"\xdc\xec\xcc\x75\x8e\xdc\xb3\xc7\x74\x27\xfd\xa4\x93\xf5\x04\x48\xeb\xdb\x9d\x94\x00\x0e\xdc\xb3" +
		"\xc7\x74\x3f\xff\xd9"
	decTestJPEGProgressive = "\xff\xd8\xff\xe0\x00\x10\x4a\x46\x49\x46\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00\x43" +
		"\x00\x03\x02\x02\x03\x02\x02\x03\x03\x03\x03\x04\x03\x03\x04\x05\x08\x05\x05\x04\x04\x05\x0a\x07" +
		"\x07\x06\x08\x0c\x0a\x0c\x0c\x0b\x0a\x0b\x0b\x0d\x0e\x12\x10\x0d\x0e\x11\x0e\x0b\x0b\x10\x16\x10" +
		"\x11\x13\x14\x15\x15\x15\x0c\x0f\x17\x18\x16\x14\x18\x12\x14\x15\x14\xff\xdb\x00\x43\x01\x03\x04" +
		"\x04\x05\x04\x05\x09\x05\x05\x09\x14\x0d\x0b\x0d\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14" +
		"\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14" +
		"\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\xff\xc2\x00\x11\x08\x00\x08\x00\x10\x03" +
		"\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xc4\x00\x15\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x06\xff\xc4\x00\x14\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
		"\x00\x00\x00\x00\x00\x05\xff\xda\x00\x0c\x03\x01\x00\x02\x10\x03\x10\x00\x00\x01\x8b\xbc\x00\x2f" +
		"\xff\xc4\x00\x16\x10\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x06" +
		"\xff\xda\x00\x08\x01\x01\x00\x01\x05\x02\x4a\x48\x4a\x48\xff\xc4\x00\x19\x11\x00\x01\x05\x00\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x05\x06\x21\x22\xff\xda\x00\x08\x01\x03\x01" +
		"\x01\x3f\x01\x8f\x3c\xac\xad\x1f\xff\xc4\x00\x17\x11\x01\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00" +
		"\x00\x00\x00\x00\x00\x03\x00\x04\x51\xff\xda\x00\x08\x01\x02\x01\x01\x3f\x01\x1b\x8d\xb3\xff\xc4" +
		"\x00\x16\x10\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x22\xff\xda" +
		"\x00\x08\x01\x01\x00\x06\x3f\x02\x50\x28\x3f\xff\xc4\x00\x15\x10\x01\x01\x00\x00\x00\x00\x00\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf1\xff\xda\x00\x08\x01\x01\x00\x01\x3f\x21\x80\x80\xff\xda" +
		"\x00\x0c\x03\x01\x00\x02\x00\x03\x00\x00\x00\x10\x73\xff\xc4\x00\x16\x11\x00\x03\x00\x00\x00\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xd1\xf0\xff\xda\x00\x08\x01\x03\x01\x01\x3f\x10\xbe" +
		"\xcf\xff\xc4\x00\x15\x11\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x21" +
		"\xff\xda\x00\x08\x01\x02\x01\x01\x3f\x10\x80\xff\xc4\x00\x14\x10\x01\x00\x00\x00\x00\x00\x00\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x00\x10\xff\xda\x00\x08\x01\x01\x00\x01\x3f\x10\x04\x2f\xff\xd9"
	decTestJPEGArithmetic = "\xff\xd8\xff\xe0\x00\x10\x4a\x46\x49\x46\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00\x43" +
		"\x00\x03\x02\x02\x03\x02\x02\x03\x03\x03\x03\x04\x03\x03\x04\x05\x08\x05\x05\x04\x04\x05\x0a\x07" +
		"\x07\x06\x08\x0c\x0a\x0c\x0c\x0b\x0a\x0b\x0b\x0d\x0e\x12\x10\x0d\x0e\x11\x0e\x0b\x0b\x10\x16\x10" +
		"\x11\x13\x14\x15\x15\x15\x0c\x0f\x17\x18\x16\x14\x18\x12\x14\x15\x14\xff\xdb\x00\x43\x01\x03\x04" +
		"\x04\x05\x04\x05\x09\x05\x05\x09\x14\x0d\x0b\x0d\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14" +
		"\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14" +
		"\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\xff\xc9\x00\x11\x08\x00\x08\x00\x10\x03" +
		"\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xcc\x00\x0a\x00\x10\x10\x05\x01\x10\x11\x05\xff\xda\x00" +
		"\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00\xff\x00\xcf\xf0\x8b\xde\x4d\x68\x9d\xba\x0a\xbb\xce" +
		"\xc7\x28\x6d\x01\xa5\xac\xb1\x1f\x98\x50\x56\x97\x1f\x1a\x7f\xfb\xfa\xcc\x0f\x46\xf2\xdd\x53\xb3" +
		"\x53\x97\xa6\x00\x70\xff\xd9"
)

func TestDecodeJPEGVariants(t *testing.T) {
	prog := []byte(decTestJPEGProgressive)
	tests := []struct {
		name   string
		data   []byte
		target int
		wantW  int
		wantH  int
		want   map[string]error // by path; absent means success
		pixels map[[2]int][3]byte
	}{
		{name: "cmyk", data: []byte(decTestJPEGCMYK), wantW: 16, wantH: 8,
			pixels: map[[2]int][3]byte{{0, 0}: {215, 215, 107}, {15, 7}: {15, 31, 255}}},
		{name: "cmyk scaled", data: []byte(decTestJPEGCMYK), target: 8, wantW: 8, wantH: 4},
		{name: "progressive", data: prog, wantW: 16, wantH: 8},
		{name: "progressive scaled", data: prog, target: 4, wantW: 4, wantH: 2},
		{name: "progressive missing EOI", data: prog[:len(prog)-2], wantW: 16, wantH: 8},
		{name: "progressive missing last scan", data: prog[:537], wantW: 16, wantH: 8},
		{name: "progressive cut inside a scan", data: prog[:238], want: map[string]error{"go": ErrCorrupt, "turbo": ErrCorrupt}},
		{name: "arithmetic", data: []byte(decTestJPEGArithmetic), wantW: 16, wantH: 8,
			want: map[string]error{"go": ErrUnsupportedFormat}},
	}
	for _, tt := range tests {
		for _, opt := range decTestPaths() {
			path := decTestPathName(opt)
			t.Run(tt.name+"/path="+path, func(t *testing.T) {
				opt.TargetSide = tt.target
				d, err := Decode(tt.data, opt)
				if want := tt.want[path]; want != nil {
					if !errors.Is(err, want) {
						t.Fatalf("error %v, want %v", err, want)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if d.Img.W != tt.wantW || d.Img.H != tt.wantH || d.Width != 16 || d.Height != 8 {
					t.Fatalf("image %d×%d of %d×%d, want %d×%d of 16×8", d.Img.W, d.Img.H, d.Width, d.Height, tt.wantW, tt.wantH)
				}
				for p, want := range tt.pixels {
					i := 3 * (p[1]*d.Img.W + p[0])
					if got := [3]byte(d.Img.Pix[i : i+3]); got != want {
						t.Errorf("pixel %v = %v, want %v", p, got, want)
					}
				}
			})
		}
	}
}

// TestYCbCrBoxMatchesRGBBox checks the fused YCbCr box filter against
// converting every pixel and then averaging.
func TestYCbCrBoxMatchesRGBBox(t *testing.T) {
	photo := decTestPhoto(77, 45, 12)
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440} {
		m := image.NewYCbCr(photo.Bounds(), ratio)
		for y := range 45 {
			for x := range 77 {
				c := photo.RGBAAt(x, y)
				yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
				m.Y[m.YOffset(x, y)] = yy
				m.Cb[m.COffset(x, y)], m.Cr[m.COffset(x, y)] = cb, cr
			}
		}
		for _, f := range []int{2, 4, 8} {
			t.Run(fmt.Sprintf("ratio=%v/f=%d", ratio, f), func(t *testing.T) {
				hs, vs, _ := decSubsample(ratio)
				got := decYCbCrBox(m, f, hs, vs)
				want := decConvert(77, 45, f, decRows(m))
				mean, maxd := decTestDiff(t, got, want)
				// Pixels whose colours clip in RGB differ more.
				if mean > 1 || maxd > 16 {
					t.Errorf("fused box differs from RGB box: mean %.3f, max %d", mean, maxd)
				}
			})
		}
	}
}

func TestDecodeTooManyScans(t *testing.T) {
	// A progressive header followed by many empty scans.
	prog := []byte(decTestJPEGProgressive)
	sos := bytes.Index(prog, []byte{0xFF, 0xDA})
	data := append([]byte{}, prog[:sos]...)
	for range decMaxJPEGScans + 1 {
		data = append(data, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x01, 0x3F, 0x10)
	}
	data = append(data, 0xFF, 0xD9)
	for _, opt := range decTestPaths() {
		t.Run("path="+decTestPathName(opt), func(t *testing.T) {
			_, err := Decode(data, opt)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "scans") {
				t.Fatalf("error %v, want too many scans: %v", err, ErrCorrupt)
			}
		})
	}
}
