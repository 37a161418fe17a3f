package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image/color"
)

// The memory an image takes to decode is estimated from its header, before
// any pixel is decoded, so that a small file that would expand to gigabytes
// (a 600 KB 16-bit deflate TIFF of 100 megapixels needs 3 GB) is refused,
// or waits for memory to be free, instead of being decoded. The estimate is
// an upper bound of what the decoders allocate (checked by
// TestEstimateBoundsAllocations): the decoder's own image at its bytes per
// pixel (8 for 16-bit RGBA, 4 for 8-bit RGBA, 1 for grey or a palette), its
// working buffers (a TIFF strip read whole, a PNG interlace pass, the DCT
// coefficients of a progressive JPEG, a WebP transform), the 8-bit RGB
// result (at the reduced scale TargetSide allows, twice when the EXIF
// orientation turns it) and the encoded data itself.

// Estimate returns the bytes of memory that Decode(data, opt) needs at most,
// from the header alone. It returns the errors Decode would return for the
// header (size and pixel limits, format, damage), and a *MemoryLimitError
// with the estimate when it exceeds opt.Limits.MaxDecodedBytes.
func Estimate(data []byte, opt DecodeOptions) (int64, error) {
	lim := opt.Limits.decWithDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return 0, &SizeLimitError{Size: int64(len(data)), Limit: lim.MaxBytes}
	}
	if len(data) == 0 {
		return 0, &CorruptError{}
	}
	format := decSniff(data)
	if format == "" {
		return 0, &FormatError{Format: decSniffOther(data)}
	}
	if (format == "heic" || format == "avif") && !heifCanDecode(format) {
		return 0, &FormatError{Format: format}
	}
	hd, err := decReadHeader(format, data)
	if err != nil {
		return 0, err
	}
	if err := decCheckDims(format, hd.w, hd.h, lim); err != nil {
		return 0, err // for HEIF, from the size before cropping
	}
	need := decEstimate(format, data, hd, opt)
	if need > lim.MaxDecodedBytes {
		return need, decMemoryError(hd, need, lim)
	}
	return need, nil
}

// decHead is what the header of an image says before its pixels are decoded.
type decHead struct {
	w, h        int         // as stored (before the EXIF orientation)
	components  int         // JPEG: 1, 3 or 4
	progressive bool        // JPEG
	orientation int         // EXIF orientation (JPEG and TIFF), 1 otherwise
	model       color.Model // non-JPEG: the colour model of the decoder's image
}

// decReadHeader reads the header of data, known to be in format.
func decReadHeader(format string, data []byte) (decHead, error) {
	hd := decHead{orientation: 1}
	switch format {
	case "jpeg":
		info, err := exifScanJPEG(data)
		if err != nil {
			return hd, &CorruptError{Format: format, Err: err}
		}
		hd.w, hd.h, hd.components, hd.orientation, hd.progressive = info.width, info.height, info.components, info.orientation, info.progressive
		// Each progressive scan walks every block of the image, so a small
		// file of many tiny scans can take minutes. Real files have a few
		// to a few dozen (byte stuffing keeps FF DA out of scan data).
		if n := bytes.Count(data, []byte{0xFF, 0xDA}); n > decMaxJPEGScans {
			return hd, &CorruptError{Format: format, Err: fmt.Errorf("jpeg has %d scans, limit %d", n, decMaxJPEGScans)}
		}
		return hd, nil
	case "heic", "avif":
		w, h, ok := heifSize(data)
		if !ok {
			return hd, &CorruptError{Format: format, Err: errors.New("no image size (ispe) in the header")}
		}
		hd.w, hd.h = w, h
		return hd, nil
	}
	cfg, err := decConfig(format, data)
	if err != nil {
		return hd, decWrapErr(format, err)
	}
	hd.w, hd.h, hd.model = cfg.Width, cfg.Height, cfg.ColorModel
	if format == "tiff" {
		hd.orientation = exifOrientation(data)
	}
	return hd, nil
}

// decEstimate returns the bytes that decoding data (format, header hd) with
// opt needs at most; see Estimate.
func decEstimate(format string, data []byte, hd decHead, opt DecodeOptions) int64 {
	w, h := int64(hd.w), int64(hd.h)
	px := w * h
	f := int64(decScaleFactor(max(hd.w, hd.h), opt.TargetSide))
	out := 3 * ((w + f - 1) / f) * ((h + f - 1) / f)
	turns := hd.orientation >= 2 && hd.orientation <= 8 // decOrient copies the result
	var dec int64
	switch format {
	case "jpeg":
		// Planes padded to whole 16×16 MCUs.
		pw, ph := (w+15)/16*16, (h+15)/16*16
		comps := int64(hd.components)
		if FastJPEG() && !opt.PureGo && hd.components != 4 {
			// libjpeg-turbo writes the oriented result directly; it keeps
			// a few MCU rows, or every DCT coefficient (2 bytes) of a
			// progressive file.
			turns = false
			dec = 2*16*pw*comps + 1<<20
			if hd.progressive {
				dec += 2 * pw * ph * comps
			}
		} else {
			// image/jpeg: its planes (CMYK files twice: YCbCr+K, then
			// CMYK), and 4-byte coefficients for a progressive file.
			dec = 2 * pw * ph * comps
			if hd.progressive {
				dec += 4 * pw * ph * comps
			}
		}
	case "heic", "avif":
		// libheif: the codec's planes (up to 16 bits a sample, 4:4:4),
		// then interleaved 8-bit RGBA, in C memory; it orients itself.
		dec = 6*px + 4*px
		turns = false
	case "png":
		bpp := decModelBytes(hd.model)
		dec = bpp*px + 2*(bpp*w+1) + 256<<10 // rows and the inflater
		if len(data) > 28 && data[28] == 1 {
			// Adam7: each pass is decoded into its own image, then copied.
			dec += bpp * px
		}
	case "tiff":
		// The image, and each strip or tile decompressed whole into a
		// buffer that grows by doubling (one strip may hold the image).
		bpp := decModelBytes(hd.model)
		dec = bpp*px + 3*bpp*px + 10<<20
	case "webp":
		if len(data) >= 16 && string(data[12:16]) == "VP8 " {
			dec = 2 * px // lossy: 4:2:0 YCbCr
		} else {
			// Lossless (or extended, with alpha): 4-byte ARGB, and a
			// second buffer for a colour-indexing transform or the
			// alpha plane.
			dec = 8*px + 1<<20
		}
	default: // gif (first frame), bmp, pnm: the image and a row or two
		bpp := decModelBytes(hd.model)
		dec = bpp*px + 2*4*w + 64<<10
	}
	if turns {
		out *= 2
	}
	return int64(len(data)) + dec + out
}

// decModelBytes returns the bytes per pixel of the image a decoder with
// colour model m returns.
func decModelBytes(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		return 4
	case color.YCbCrModel:
		return 3
	case color.NYCbCrAModel:
		return 4
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8 // RGBA64, NRGBA64 and anything unknown
}

// heifSize returns the largest (by area) of the image spatial extents
// (ispe) of a HEIF file: that of its primary image (before cropping and
// rotation), larger than those of its tiles and thumbnails. libheif
// refuses an image without one.
func heifSize(data []byte) (w, h int, ok bool) {
	rest := data
	for {
		i := bytes.Index(rest, []byte("ispe"))
		if i < 0 {
			return w, h, ok
		}
		rest = rest[i+4:]
		// version and flags (4), width (4), height (4)
		if len(rest) < 12 {
			return w, h, ok
		}
		iw, ih := binary.BigEndian.Uint32(rest[4:]), binary.BigEndian.Uint32(rest[8:])
		if iw == 0 || ih == 0 || iw > 1<<20 || ih > 1<<20 {
			continue
		}
		if int64(iw)*int64(ih) > int64(w)*int64(h) {
			w, h, ok = int(iw), int(ih), true
		}
	}
}

// decMemoryError is the error for an image whose estimate, need, exceeds
// lim.MaxDecodedBytes.
func decMemoryError(hd decHead, need int64, lim Limits) error {
	w, h := hd.w, hd.h
	if hd.orientation >= 5 && hd.orientation <= 8 {
		w, h = h, w
	}
	return &MemoryLimitError{Width: w, Height: h, Need: need, Limit: lim.MaxDecodedBytes}
}
