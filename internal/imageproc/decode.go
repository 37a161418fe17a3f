package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/bits"
	"path/filepath"
	"strings"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// ErrTooLarge matches (errors.Is) the errors of Decode when the encoded data
// or the image dimensions exceed the Limits: a *SizeLimitError, a
// *PixelLimitError or a *MemoryLimitError.
var ErrTooLarge = errors.New("image too large")

// ErrUnsupportedFormat matches (errors.Is) the errors of Decode when the
// data is not in a format it reads, or uses a feature that the decoder does
// not implement: a *FormatError.
var ErrUnsupportedFormat = errors.New("unsupported image format")

// ErrCorrupt matches (errors.Is) the errors of Decode when the data looks
// like a known format but cannot be decoded (truncated, malformed, or
// empty): a *CorruptError.
var ErrCorrupt = errors.New("corrupt image")

// Limits bound what Decode accepts, checked before the pixels are decoded.
// A field that is zero or negative takes its value from DefaultLimits.
type Limits struct {
	MaxBytes  int64 // largest encoded file accepted (default 64 MiB)
	MaxPixels int64 // largest width*height accepted (default 100 megapixels)
	// MaxDecodedBytes is the most memory one image may take to decode, as
	// Estimate reckons it from the header (default 768 MiB: a 100-megapixel
	// 8-bit PNG fits, a 100-megapixel 16-bit one does not).
	MaxDecodedBytes int64
}

// DefaultLimits are the limits used for the zero fields of a Limits.
var DefaultLimits = Limits{MaxBytes: 64 << 20, MaxPixels: 100_000_000, MaxDecodedBytes: 768 << 20}

// decWithDefaults replaces the unset fields of l by DefaultLimits.
func (l Limits) decWithDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultLimits.MaxPixels
	}
	if l.MaxDecodedBytes <= 0 {
		l.MaxDecodedBytes = DefaultLimits.MaxDecodedBytes
	}
	return l
}

// DecodeOptions control Decode and DecodeFile. The zero value decodes at full
// resolution within DefaultLimits, using libjpeg-turbo when it is compiled in.
type DecodeOptions struct {
	Limits Limits
	// TargetSide, when > 0, lets the decoder return a smaller image whose
	// longer side is still >= min(TargetSide, original longer side): the
	// largest factor f in {1, 2, 4, 8} with f*TargetSide <= longer side is
	// chosen and the image is returned at ceil(W/f)×ceil(H/f). JPEGs are
	// scaled in the DCT domain by libjpeg-turbo; the pure-Go path box-filters
	// while converting to RGB.
	TargetSide int
	// PureGo forces the pure-Go decoders (for benchmarks and tests).
	PureGo bool
}

// Decoded is a decoded image with what was learnt from its headers.
type Decoded struct {
	Img         *RGB   // orientation applied; may be smaller than Width×Height when TargetSide allowed
	Width       int    // width of the full-resolution image after EXIF orientation
	Height      int    // height of the full-resolution image after EXIF orientation
	Format      string // "jpeg", "png", "gif", "webp", "bmp", "tiff", "pnm" (binary PGM/PPM), "heic", "avif"
	Orientation int    // EXIF orientation found and applied (1–8; 1 when none, and for HEIC and AVIF)
}

// Decode decodes an image held in memory. The format is sniffed from the
// content. The byte size, the dimensions read from the header and the memory
// decoding takes (see Estimate) are checked against opt.Limits before any
// pixel is decoded. The result is always 8-bit
// RGB: grayscale is replicated, CMYK and YCbCr converted, 16-bit samples
// truncated to their high byte, and alpha composited on black. GIFs yield
// their first frame, at its own size rather than the logical screen's. The
// EXIF orientation of JPEG and TIFF files is applied. HEIC and AVIF photos
// are decoded by libheif when the package is built with the heif tag (see
// HEIF), which applies their own rotation and mirroring (irot, imir): their
// EXIF orientation, which describes the same turn, is not applied again.
// Decode is safe for concurrent use.
//
// Errors are a *SizeLimitError, *PixelLimitError or *MemoryLimitError
// (matching ErrTooLarge), a
// *FormatError (ErrUnsupportedFormat) or a *CorruptError (ErrCorrupt); a
// panic in a third-party decoder is reported as a *CorruptError. Message
// explains any of them in plain words.
func Decode(data []byte, opt DecodeOptions) (*Decoded, error) {
	lim := opt.Limits.decWithDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, &SizeLimitError{Size: int64(len(data)), Limit: lim.MaxBytes}
	}
	if len(data) == 0 {
		return nil, &CorruptError{}
	}
	format := decSniff(data)
	if format == "" {
		return nil, &FormatError{Format: decSniffOther(data)}
	}
	return decDecode(data, format, lim, opt)
}

// DecodeFile reads the image file at path with ReadFile, within
// opt.Limits.MaxBytes (regular files only; the size is checked before the
// file is read), and decodes it. Errors name the path and wrap the same
// typed errors as Decode, or ErrNotRegular.
func DecodeFile(path string, opt DecodeOptions) (*Decoded, error) {
	data, err := ReadFile(path, opt.Limits.decWithDefaults().MaxBytes)
	if err != nil {
		return nil, err
	}
	d, err := Decode(data, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// decSniff names the format from the magic bytes at the start of data, or
// returns "" when none matches.
func decSniff(data []byte) string {
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		return "jpeg"
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "gif"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "webp"
	case bytes.HasPrefix(data, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(data, []byte("II*\x00")), bytes.HasPrefix(data, []byte("MM\x00*")):
		return "tiff"
	case pnmIsSignature(data):
		return "pnm"
	}
	return decSniffHEIF(data)
}

// imageExts are the extensions (lower case) of the formats Decode reads.
var imageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".webp": true, ".gif": true,
	".bmp": true, ".tif": true, ".tiff": true, ".pgm": true, ".ppm": true,
	// Listed in every build: without the heif tag, decoding them fails with
	// a *FormatError that says so, rather than skipping the photos silently.
	".heic": true, ".heif": true, ".hif": true, ".avif": true,
}

// IsImageName reports whether a file name has the extension of a format that
// Decode reads, and is not hidden (such as macOS "._x.jpg" forks). It is
// for listing folders; Decode itself recognises formats by content.
func IsImageName(name string) bool {
	base := filepath.Base(name)
	return !strings.HasPrefix(base, ".") && imageExts[strings.ToLower(filepath.Ext(base))]
}

// decMaxJPEGScans bounds the start-of-scan markers accepted in a JPEG (the
// C decoder enforces the same bound).
const decMaxJPEGScans = 1000

// decDecode decodes data known (from its signature) to be in format.
func decDecode(data []byte, format string, lim Limits, opt DecodeOptions) (d *Decoded, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, &CorruptError{Format: format, Err: fmt.Errorf("decoder panicked: %v", r)}
		}
	}()

	// Header: dimensions and orientation, without decoding pixels; then
	// the memory decoding takes, from them.
	if (format == "heic" || format == "avif") && !heifCanDecode(format) {
		return heifDecode(data, format, lim, opt) // says why
	}
	hd, err := decReadHeader(format, data)
	if err != nil {
		return nil, err
	}
	w, h, components, orientation := hd.w, hd.h, hd.components, hd.orientation
	heif := format == "heic" || format == "avif"
	dimErr := decCheckDims(format, w, h, lim)
	switch {
	case dimErr != nil && !heif:
		return nil, dimErr
	case dimErr != nil:
		// libheif checks the size of the primary image as displayed
		// (cropped), before decoding it.
	default:
		if need := decEstimate(format, data, hd, opt); need > lim.MaxDecodedBytes {
			return nil, decMemoryError(hd, need, lim)
		}
	}
	if heif {
		// libheif checks the size, and orients.
		return heifDecode(data, format, lim, opt)
	}
	factor := decScaleFactor(max(w, h), opt.TargetSide)

	// Pixels.
	var img *RGB
	if format == "jpeg" && !opt.PureGo && components != 4 {
		var fallback bool
		img, fallback, err = turboDecodeJPEG(data, w, h, factor, orientation) // orients too
		if err != nil {
			return nil, err
		}
		if fallback {
			img = nil
		}
	}
	if img == nil {
		m, err := decStd(format, data)
		if err != nil {
			return nil, decWrapErr(format, err)
		}
		b := m.Bounds()
		// A GIF's first frame may be smaller than its logical screen; every
		// other decoder returns exactly the size announced by the header.
		w, h = b.Dx(), b.Dy()
		if err := decCheckDims(format, w, h, lim); err != nil {
			return nil, err
		}
		factor = decScaleFactor(max(w, h), opt.TargetSide)
		img = decOrient(decToRGB(m, factor), orientation)
	}
	if orientation >= 5 {
		w, h = h, w
	}
	return &Decoded{Img: img, Width: w, Height: h, Format: format, Orientation: orientation}, nil
}

// decConfig reads the header of a non-JPEG image.
func decConfig(format string, data []byte) (image.Config, error) {
	r := bytes.NewReader(data)
	switch format {
	case "png":
		return png.DecodeConfig(r)
	case "gif":
		return gif.DecodeConfig(r)
	case "webp":
		return webp.DecodeConfig(r)
	case "bmp":
		return bmp.DecodeConfig(r)
	case "tiff":
		return tiff.DecodeConfig(r)
	case "pnm":
		return pnmConfig(data)
	}
	return image.Config{}, &FormatError{Format: format, Err: errors.New("no header reader")}
}

// decStd decodes the pixels with the pure-Go decoder of format.
func decStd(format string, data []byte) (image.Image, error) {
	r := bytes.NewReader(data)
	switch format {
	case "jpeg":
		m, err := jpeg.Decode(r)
		if errors.Is(err, io.ErrUnexpectedEOF) && !bytes.HasSuffix(data, []byte{0xFF, 0xD9}) {
			// Files that lack only the final EOI marker are common, and
			// libjpeg accepts them: retry with the marker appended. Data cut
			// short inside the scan still fails.
			return jpeg.Decode(io.MultiReader(bytes.NewReader(data), bytes.NewReader([]byte{0xFF, 0xD9})))
		}
		return m, err
	case "png":
		return png.Decode(r)
	case "gif":
		return gif.Decode(r) // first frame only
	case "webp":
		return webp.Decode(r)
	case "bmp":
		return bmp.Decode(r)
	case "tiff":
		return tiff.Decode(r)
	case "pnm":
		return pnmDecode(data)
	}
	return nil, &FormatError{Format: format, Err: errors.New("no decoder")}
}

// decWrapErr classifies an error of the decoder of format as a *FormatError
// (a valid file using a feature the decoder lacks) or a *CorruptError
// (anything else); errors that are already classified are returned as they
// are.
func decWrapErr(format string, err error) error {
	var (
		jpegU jpeg.UnsupportedError
		pngU  png.UnsupportedError
		tiffU tiff.UnsupportedError
	)
	switch {
	case errors.Is(err, ErrUnsupportedFormat), errors.Is(err, ErrCorrupt), errors.Is(err, ErrTooLarge):
		return err
	case errors.As(err, &jpegU), errors.As(err, &pngU), errors.As(err, &tiffU), errors.Is(err, bmp.ErrUnsupported):
		return &FormatError{Format: format, Err: err}
	}
	return &CorruptError{Format: format, Err: err}
}

// decCheckDims refuses empty images and images over lim.MaxPixels.
func decCheckDims(format string, w, h int, lim Limits) error {
	if w <= 0 || h <= 0 {
		return &CorruptError{Format: format, Err: fmt.Errorf("header declares a %d×%d image", w, h)}
	}
	if int64(w) > lim.MaxPixels/int64(h) {
		return &PixelLimitError{Width: w, Height: h, Limit: lim.MaxPixels}
	}
	return nil
}

// decScaleFactor returns the largest f in {1, 2, 4, 8} with
// f*target <= longer, or 1 when target <= 0.
func decScaleFactor(longer, target int) int {
	f := 1
	if target <= 0 {
		return f
	}
	for f < 8 && 2*f*target <= longer {
		f *= 2
	}
	return f
}

// decRowFunc writes row y (0-based from the top of the image bounds) as packed
// RGB into dst, which holds exactly 3*width bytes.
type decRowFunc func(y int, dst []byte)

// decToRGB converts m to RGB, box-filtering by factor f (>= 1) on the way.
func decToRGB(m image.Image, f int) *RGB {
	b := m.Bounds()
	if y, ok := m.(*image.YCbCr); ok && f > 1 && b.Min == (image.Point{}) {
		if hs, vs, ok := decSubsample(y.SubsampleRatio); ok && f%(1<<hs) == 0 && f%(1<<vs) == 0 {
			return decYCbCrBox(y, f, hs, vs)
		}
	}
	return decConvert(b.Dx(), b.Dy(), f, decRows(m))
}

// decConvert builds a ceil(w/f)×ceil(h/f) RGB image from the rows of a w×h
// image, averaging each f×f block (partial blocks at the edges included).
func decConvert(w, h, f int, row decRowFunc) *RGB {
	stride := 3 * w
	if f <= 1 {
		out := NewRGB(w, h)
		for y := range h {
			row(y, out.Pix[y*stride:(y+1)*stride:(y+1)*stride])
		}
		return out
	}
	ow, oh := (w+f-1)/f, (h+f-1)/f
	out := NewRGB(ow, oh)
	tmp := make([]byte, stride)
	acc := make([]uint32, 3*ow)
	for oy := range oh {
		clear(acc)
		y0, y1 := oy*f, min(oy*f+f, h)
		for y := y0; y < y1; y++ {
			row(y, tmp)
			for ox := range ow {
				x0, x1 := ox*f, min(ox*f+f, w)
				var r, g, bl uint32
				blk := tmp[3*x0 : 3*x1]
				for i := 0; i+2 < len(blk); i += 3 {
					r += uint32(blk[i])
					g += uint32(blk[i+1])
					bl += uint32(blk[i+2])
				}
				a := acc[3*ox : 3*ox+3 : 3*ox+3]
				a[0] += r
				a[1] += g
				a[2] += bl
			}
		}
		dst := out.Pix[oy*3*ow : (oy+1)*3*ow]
		for ox := range ow {
			n := uint32((y1 - y0) * (min(ox*f+f, w) - ox*f))
			a := acc[3*ox : 3*ox+3 : 3*ox+3]
			d := dst[3*ox : 3*ox+3 : 3*ox+3]
			d[0], d[1], d[2] = byte(decAvg(a[0], n)), byte(decAvg(a[1], n)), byte(decAvg(a[2], n))
		}
	}
	return out
}

// decRows returns a row writer for m, specialised for the concrete image
// types produced by the standard and x/image decoders. Alpha is composited on
// black (premultiplied values are kept; non-premultiplied ones multiplied).
func decRows(m image.Image) decRowFunc {
	b := m.Bounds()
	w := b.Dx()
	switch m := m.(type) {
	case *image.YCbCr:
		if hs, vs, ok := decSubsample(m.SubsampleRatio); ok && b.Min == (image.Point{}) {
			cw := (w + (1 << hs) - 1) >> hs
			return func(y int, dst []byte) {
				yi, ci := y*m.YStride, (y>>vs)*m.CStride
				decYCbCrRow(dst, m.Y[yi:yi+w], m.Cb[ci:ci+cw], m.Cr[ci:ci+cw], hs)
			}
		}
	case *image.NYCbCrA:
		if hs, vs, ok := decSubsample(m.SubsampleRatio); ok && b.Min == (image.Point{}) {
			cw := (w + (1 << hs) - 1) >> hs
			return func(y int, dst []byte) {
				yi, ci, ai := y*m.YStride, (y>>vs)*m.CStride, y*m.AStride
				decYCbCrRow(dst, m.Y[yi:yi+w], m.Cb[ci:ci+cw], m.Cr[ci:ci+cw], hs)
				for x, a := range m.A[ai : ai+w] {
					if a != 0xFF {
						d := dst[3*x : 3*x+3 : 3*x+3]
						d[0] = decMulAlpha(d[0], a)
						d[1] = decMulAlpha(d[1], a)
						d[2] = decMulAlpha(d[2], a)
					}
				}
			}
		}
	case *image.Gray:
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			for x, v := range m.Pix[i : i+w] {
				d := dst[3*x : 3*x+3 : 3*x+3]
				d[0], d[1], d[2] = v, v, v
			}
		}
	case *image.Gray16:
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			src := m.Pix[i : i+2*w]
			for x := range w {
				v := src[2*x]
				d := dst[3*x : 3*x+3 : 3*x+3]
				d[0], d[1], d[2] = v, v, v
			}
		}
	case *image.RGBA: // premultiplied: dropping alpha composites on black
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			src := m.Pix[i : i+4*w]
			for x := range w {
				p := src[4*x : 4*x+4 : 4*x+4]
				d := dst[3*x : 3*x+3 : 3*x+3]
				d[0], d[1], d[2] = p[0], p[1], p[2]
			}
		}
	case *image.NRGBA:
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			src := m.Pix[i : i+4*w]
			for x := range w {
				p := src[4*x : 4*x+4 : 4*x+4]
				d := dst[3*x : 3*x+3 : 3*x+3]
				if a := p[3]; a == 0xFF {
					d[0], d[1], d[2] = p[0], p[1], p[2]
				} else {
					d[0], d[1], d[2] = decMulAlpha(p[0], a), decMulAlpha(p[1], a), decMulAlpha(p[2], a)
				}
			}
		}
	case *image.RGBA64: // premultiplied, big-endian
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			src := m.Pix[i : i+8*w]
			for x := range w {
				s := src[8*x : 8*x+8 : 8*x+8]
				d := dst[3*x : 3*x+3 : 3*x+3]
				d[0], d[1], d[2] = s[0], s[2], s[4]
			}
		}
	case *image.NRGBA64:
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			src := m.Pix[i : i+8*w]
			for x := range w {
				s := src[8*x : 8*x+8 : 8*x+8]
				a := uint32(s[6])<<8 | uint32(s[7])
				d := dst[3*x : 3*x+3 : 3*x+3]
				for c := range 3 {
					v := uint32(s[2*c])<<8 | uint32(s[2*c+1])
					d[c] = byte(v * a / 0xFFFF >> 8)
				}
			}
		}
	case *image.Paletted:
		var lut [256][3]byte // indices past the palette stay black
		for i, c := range m.Palette {
			if i >= len(lut) {
				break
			}
			r, g, bl, _ := c.RGBA()
			lut[i] = [3]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8)}
		}
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			for x, v := range m.Pix[i : i+w] {
				p := lut[v]
				d := dst[3*x : 3*x+3 : 3*x+3]
				d[0], d[1], d[2] = p[0], p[1], p[2]
			}
		}
	case *image.CMYK: // same arithmetic as color.CMYKToRGB
		return func(y int, dst []byte) {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			src := m.Pix[i : i+4*w]
			for x := range w {
				p := src[4*x : 4*x+4 : 4*x+4]
				k := 0xFFFF - uint32(p[3])*0x101
				d := dst[3*x : 3*x+3 : 3*x+3]
				d[0] = byte((0xFFFF - uint32(p[0])*0x101) * k / 0xFFFF >> 8)
				d[1] = byte((0xFFFF - uint32(p[1])*0x101) * k / 0xFFFF >> 8)
				d[2] = byte((0xFFFF - uint32(p[2])*0x101) * k / 0xFFFF >> 8)
			}
		}
	}
	// Anything else (including YCbCr with unusual bounds) goes through At,
	// whose RGBA is premultiplied, i.e. composited on black.
	return func(y int, dst []byte) {
		for x := range w {
			r, g, bl, _ := m.At(b.Min.X+x, b.Min.Y+y).RGBA()
			d := dst[3*x : 3*x+3 : 3*x+3]
			d[0], d[1], d[2] = byte(r>>8), byte(g>>8), byte(bl>>8)
		}
	}
}

// decSubsample returns the horizontal and vertical chroma shifts of r.
func decSubsample(r image.YCbCrSubsampleRatio) (hs, vs uint, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// decYCbCrRow converts one row of full-range JFIF YCbCr to RGB with the same
// fixed-point arithmetic as color.YCbCrToRGB; pixel x uses chroma sample
// x>>hs. The chroma terms are computed once per chroma sample.
func decYCbCrRow(dst, ys, cbs, crs []byte, hs uint) {
	n := len(ys)
	dst = dst[:3*n]
	switch hs {
	case 0:
		cbs, crs = cbs[:n], crs[:n]
		for x, yv := range ys {
			cb1, cr1 := int32(cbs[x])-128, int32(crs[x])-128
			yy1 := int32(yv) * 0x10101
			p := dst[3*x : 3*x+3 : 3*x+3]
			p[0] = decClamp16(yy1 + 91881*cr1)
			p[1] = decClamp16(yy1 - 22554*cb1 - 46802*cr1)
			p[2] = decClamp16(yy1 + 116130*cb1)
		}
	case 1:
		pairs := n / 2
		cbs, crs = cbs[:(n+1)/2], crs[:(n+1)/2]
		for c := range pairs {
			cb1, cr1 := int32(cbs[c])-128, int32(crs[c])-128
			rc, gc, bc := 91881*cr1, -22554*cb1-46802*cr1, 116130*cb1
			yp := ys[2*c : 2*c+2 : 2*c+2]
			y0, y1 := int32(yp[0])*0x10101, int32(yp[1])*0x10101
			p := dst[6*c : 6*c+6 : 6*c+6]
			p[0] = decClamp16(y0 + rc)
			p[1] = decClamp16(y0 + gc)
			p[2] = decClamp16(y0 + bc)
			p[3] = decClamp16(y1 + rc)
			p[4] = decClamp16(y1 + gc)
			p[5] = decClamp16(y1 + bc)
		}
		if n%2 == 1 {
			cb1, cr1 := int32(cbs[pairs])-128, int32(crs[pairs])-128
			yy1 := int32(ys[n-1]) * 0x10101
			p := dst[3*n-3 : 3*n : 3*n]
			p[0] = decClamp16(yy1 + 91881*cr1)
			p[1] = decClamp16(yy1 - 22554*cb1 - 46802*cr1)
			p[2] = decClamp16(yy1 + 116130*cb1)
		}
	default:
		for x, yv := range ys {
			c := x >> hs
			cb1, cr1 := int32(cbs[c])-128, int32(crs[c])-128
			yy1 := int32(yv) * 0x10101
			p := dst[3*x : 3*x+3 : 3*x+3]
			p[0] = decClamp16(yy1 + 91881*cr1)
			p[1] = decClamp16(yy1 - 22554*cb1 - 46802*cr1)
			p[2] = decClamp16(yy1 + 116130*cb1)
		}
	}
}

// decClamp16 returns v>>16 clamped to [0, 255], as color.YCbCrToRGB does.
func decClamp16(v int32) byte {
	return byte(min(max(v>>16, 0), 255)) // branch-free (CMOV) on amd64 and arm64
}

// decYCbCrBox converts m to RGB while averaging each f×f block, working in
// YCbCr: luma is averaged over the block and chroma over the matching,
// subsampled block, and each average is converted once. Since the colour
// transform is affine this equals averaging the RGB pixels except where
// they clip, and costs a fraction of converting every pixel. f must be a
// multiple of the chroma subsampling factors and m.Rect.Min must be 0.
func decYCbCrBox(m *image.YCbCr, f int, hs, vs uint) *RGB {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := (w+(1<<hs)-1)>>hs, (h+(1<<vs)-1)>>vs
	fcx, fcy := f>>hs, f>>vs
	ow, oh := (w+f-1)/f, (h+f-1)/f
	out := NewRGB(ow, oh)
	accY := make([]uint32, ow)
	accCb := make([]uint32, ow)
	accCr := make([]uint32, ow)
	for oy := range oh {
		clear(accY)
		clear(accCb)
		clear(accCr)
		y0, y1 := oy*f, min(oy*f+f, h)
		for y := y0; y < y1; y++ {
			decBoxRow(accY, m.Y[y*m.YStride:y*m.YStride+w], f)
		}
		cy0, cy1 := oy*fcy, min(oy*fcy+fcy, ch)
		for cy := cy0; cy < cy1; cy++ {
			decBoxRow(accCb, m.Cb[cy*m.CStride:cy*m.CStride+cw], fcx)
			decBoxRow(accCr, m.Cr[cy*m.CStride:cy*m.CStride+cw], fcx)
		}
		row := out.Pix[3*ow*oy : 3*ow*(oy+1)]
		for ox := range ow {
			ny := uint32((y1 - y0) * (min(ox*f+f, w) - ox*f))
			nc := uint32((cy1 - cy0) * (min(ox*fcx+fcx, cw) - ox*fcx))
			decPutYCbCr(row[3*ox:3*ox+3:3*ox+3], decAvg(accY[ox], ny), decAvg(accCb[ox], nc), decAvg(accCr[ox], nc))
		}
	}
	return out
}

// decPutYCbCr converts one YCbCr sample to RGB into p[0:3].
func decPutYCbCr(p []byte, y, cb, cr uint32) {
	cb1, cr1 := int32(cb)-128, int32(cr)-128
	yy1 := int32(y) * 0x10101
	p[0] = decClamp16(yy1 + 91881*cr1)
	p[1] = decClamp16(yy1 - 22554*cb1 - 46802*cr1)
	p[2] = decClamp16(yy1 + 116130*cb1)
}

// decAvg returns sum/n rounded to nearest; n > 0. Full blocks have a
// power-of-two n, for which a shift replaces the slow division.
func decAvg(sum, n uint32) uint32 {
	if n&(n-1) == 0 {
		k := bits.TrailingZeros32(n)
		return (sum + n>>1) >> k
	}
	return (sum + n/2) / n
}

// decBoxRow adds the sums of consecutive runs of f samples of src to acc
// (the last run may be shorter).
func decBoxRow(acc []uint32, src []byte, f int) {
	switch f {
	case 1:
		for i, v := range src {
			acc[i] += uint32(v)
		}
		return
	case 2:
		full := len(src) / 2
		for i := range full {
			p := src[2*i : 2*i+2 : 2*i+2]
			acc[i] += uint32(p[0]) + uint32(p[1])
		}
		if len(src)%2 == 1 {
			acc[full] += uint32(src[len(src)-1])
		}
		return
	}
	for i := 0; i*f < len(src); i++ {
		var s uint32
		for _, v := range src[i*f : min(i*f+f, len(src))] {
			s += uint32(v)
		}
		acc[i] += s
	}
}

// decMulAlpha composites a non-premultiplied 8-bit sample on black.
func decMulAlpha(v, a byte) byte {
	return byte((uint32(v)*uint32(a) + 127) / 255)
}

// decOrient returns src transformed for display according to the EXIF
// orientation o (1–8); src itself for 1 or an unknown value.
func decOrient(src *RGB, o int) *RGB {
	if o < 2 || o > 8 {
		return src
	}
	w, h := src.W, src.H
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := NewRGB(dw, dh)
	// Source pixel (sx, sy) lands at destination pixel index base(sy) + sx*step.
	var step int
	base := func(sy int) int { return 0 }
	switch o {
	case 2: // mirror horizontally
		step, base = -1, func(sy int) int { return sy*dw + w - 1 }
	case 3: // rotate 180°
		step, base = -1, func(sy int) int { return (h-1-sy)*dw + w - 1 }
	case 4: // mirror vertically
		step, base = 1, func(sy int) int { return (h - 1 - sy) * dw }
	case 5: // transpose
		step, base = dw, func(sy int) int { return sy }
	case 6: // rotate 90° clockwise
		step, base = dw, func(sy int) int { return h - 1 - sy }
	case 7: // transverse
		step, base = -dw, func(sy int) int { return (w-1)*dw + h - 1 - sy }
	case 8: // rotate 90° counter-clockwise
		step, base = -dw, func(sy int) int { return (w-1)*dw + sy }
	}
	// Tiles keep the strided writes of the transposing cases in cache.
	const tile = 64
	sp, dp := src.Pix, dst.Pix
	for ty := 0; ty < h; ty += tile {
		for tx := 0; tx < w; tx += tile {
			x1 := min(tx+tile, w)
			for sy := ty; sy < min(ty+tile, h); sy++ {
				row := sp[3*(sy*w+tx) : 3*(sy*w+x1)]
				di, ds := 3*(base(sy)+tx*step), 3*step
				for i := 0; i+3 <= len(row); i += 3 {
					*(*[3]byte)(dp[di : di+3]) = *(*[3]byte)(row[i : i+3])
					di += ds
				}
			}
		}
	}
	return dst
}

// Sniff names the image format of data from its first bytes ("jpeg", "png",
// "gif", "webp", "bmp", "tiff", "pnm", "heic", "avif"), or returns "" when it
// is none that Decode recognises: uploads are checked by their content,
// never by their name. HEIC and AVIF are named even by a build that cannot
// decode them, so that Decode's *FormatError can say so.
func Sniff(data []byte) string { return decSniff(data) }

// CheckFormat returns nil when data starts as an image Sniff names, and
// otherwise a *FormatError naming what it is (a PDF, a video, text…), for
// uploads to be refused before they are decoded with the message Decode
// would give.
func CheckFormat(data []byte) error {
	if decSniff(data) != "" {
		return nil
	}
	return &FormatError{Format: decSniffOther(data)}
}
