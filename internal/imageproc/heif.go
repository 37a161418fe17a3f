//go:build cgo && heif

package imageproc

/*
#cgo LDFLAGS: -lheif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libheif/heif.h>

enum {
	HEIFGO_OK = 0,
	HEIFGO_ERROR = 1,       // libheif could not read or decode the file; message in msg
	HEIFGO_UNSUPPORTED = 2, // a feature or codec libheif lacks; message in msg
	HEIFGO_LIMIT = 3,       // the primary image is empty or over max_pixels: not decoded
};

struct heifgo_result {
	int width, height;      // primary image as displayed (transformations applied)
	int alpha, premultiplied;
	struct heif_image *img; // the decoded image, interleaved 8-bit RGB or RGBA
	const uint8_t *plane;
	int stride;
	char msg[256];
};

static int heifgo_fail(struct heifgo_result *r, struct heif_error err) {
	snprintf(r->msg, sizeof r->msg, "libheif: %s", err.message ? err.message : "unknown error");
	if (err.code == heif_error_Unsupported_feature || err.code == heif_error_Unsupported_filetype) {
		return HEIFGO_UNSUPPORTED;
	}
	return HEIFGO_ERROR;
}

// heifgo_has_decoder reports whether libheif has the decoder id for format.
static int heifgo_has_decoder(enum heif_compression_format format, const char *id) {
	const struct heif_decoder_descriptor *d[16];
	int n = heif_get_decoder_descriptors(format, d, 16);
	for (int i = 0; i < n; i++) {
		if (strcmp(heif_decoder_descriptor_get_id_name(d[i]), id) == 0) {
			return 1;
		}
	}
	return 0;
}

// heifgo_decode decodes the primary image of the HEIF file data. The size of
// the primary image is read from its handle and checked against max_pixels
// before anything is decoded. libheif applies the file's transformations
// (clap, irot, imir) and converts to 8-bit RGB (RGBA when the image has an
// alpha channel). data is only read during the call. decoder_id names the
// decoder plugin to use, or is NULL for libheif's choice.
static int heifgo_decode(const void *data, size_t len, long long max_pixels, const char *decoder_id,
                         struct heifgo_result *r) {
	struct heif_context *ctx = heif_context_alloc();
	struct heif_image_handle *h = NULL;
	struct heif_decoding_options *opt = NULL;
	struct heif_error err;
	int rc = HEIFGO_OK, bpp = 0;
	if (ctx == NULL) {
		snprintf(r->msg, sizeof r->msg, "libheif: cannot allocate a context");
		return HEIFGO_ERROR;
	}
	err = heif_context_read_from_memory_without_copy(ctx, data, len, NULL);
	if (err.code == heif_error_Ok) {
		err = heif_context_get_primary_image_handle(ctx, &h);
	}
	if (err.code != heif_error_Ok) {
		rc = heifgo_fail(r, err);
		goto out;
	}
	r->width = heif_image_handle_get_width(h);
	r->height = heif_image_handle_get_height(h);
	if (r->width <= 0 || r->height <= 0 || (long long)r->width * (long long)r->height > max_pixels) {
		rc = HEIFGO_LIMIT;
		goto out;
	}
	r->alpha = heif_image_handle_has_alpha_channel(h);
	r->premultiplied = heif_image_handle_is_premultiplied_alpha(h);
	opt = heif_decoding_options_alloc();
	if (opt == NULL) {
		snprintf(r->msg, sizeof r->msg, "libheif: cannot allocate decoding options");
		rc = HEIFGO_ERROR;
		goto out;
	}
	opt->ignore_transformations = 0; // apply irot/imir: the EXIF orientation is not applied after
	opt->convert_hdr_to_8bit = 1;
	// strict_decoding stays 0: it refuses photos over colour metadata with
	// reserved values, while data cut short fails either way.
	opt->decoder_id = decoder_id;
	err = heif_decode_image(h, &r->img, heif_colorspace_RGB,
	                        r->alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, opt);
	heif_decoding_options_free(opt);
	if (err.code != heif_error_Ok) {
		rc = heifgo_fail(r, err);
		goto out;
	}
	r->width = heif_image_get_width(r->img, heif_channel_interleaved);
	r->height = heif_image_get_height(r->img, heif_channel_interleaved);
	r->plane = heif_image_get_plane_readonly(r->img, heif_channel_interleaved, &r->stride);
	bpp = heif_image_get_bits_per_pixel(r->img, heif_channel_interleaved);
	if (r->plane == NULL || r->width <= 0 || r->height <= 0 || bpp != (r->alpha ? 32 : 24) ||
	    r->stride < r->width * bpp / 8) {
		snprintf(r->msg, sizeof r->msg, "libheif returned a %dx%d image of %d bits per pixel", r->width, r->height, bpp);
		rc = HEIFGO_ERROR;
	}
out:
	if (rc != HEIFGO_OK && r->img != NULL) {
		heif_image_release(r->img);
		r->img = NULL;
	}
	if (h != NULL) {
		heif_image_handle_release(h);
	}
	heif_context_free(ctx);
	return rc;
}
*/
import "C"

import (
	"errors"
	"sync"
	"unsafe"
)

// heifLib is what libheif offers, learnt once.
type heifLib struct {
	hevc, av1 bool
	// av1Decoder is the AV1 decoder asked for: "aom" where libheif has it,
	// as dav1d writes its diagnostics of damaged files on stderr; nil for
	// libheif's choice.
	av1Decoder *C.char
}

var heifInit = sync.OnceValue(func() heifLib {
	// Loads libheif's plugins where it has any; never undone, as libheif
	// may be used until the process exits.
	C.heif_init(nil)
	lib := heifLib{
		hevc: C.heif_have_decoder_for_format(C.heif_compression_HEVC) != 0,
		av1:  C.heif_have_decoder_for_format(C.heif_compression_AV1) != 0,
	}
	aom := C.CString("aom") // kept for the life of the process
	if C.heifgo_has_decoder(C.heif_compression_AV1, aom) != 0 {
		lib.av1Decoder = aom
	}
	return lib
})

// HEIF reports whether HEIC photos are decoded (with libheif). It is true in
// this build (cgo with the heif tag); AVIF photos are decoded as well when
// libheif has an AV1 decoder.
func HEIF() bool { return true }

// heifCanDecode reports whether libheif has a decoder for the codec of
// format ("heic": HEVC, "avif": AV1).
func heifCanDecode(format string) bool {
	lib := heifInit()
	if format == "avif" {
		return lib.av1
	}
	return lib.hevc
}

func heifAV1() bool { return heifCanDecode("avif") }

// heifDecode decodes a HEIC or AVIF file with libheif, box-filtering by the
// factor that opt.TargetSide allows.
func heifDecode(data []byte, format string, lim Limits, opt DecodeOptions) (*Decoded, error) {
	if !heifCanDecode(format) {
		return nil, &FormatError{Format: format}
	}
	var decoder *C.char
	if format == "avif" {
		decoder = heifInit().av1Decoder
	}
	var r C.struct_heifgo_result
	rc := C.heifgo_decode(unsafe.Pointer(unsafe.SliceData(data)), C.size_t(len(data)), C.longlong(lim.MaxPixels), decoder, &r)
	w, h := int(r.width), int(r.height)
	switch rc {
	case C.HEIFGO_OK:
	case C.HEIFGO_LIMIT:
		if err := decCheckDims(format, w, h, lim); err != nil {
			return nil, err
		}
		return nil, &CorruptError{Format: format, Err: errors.New("libheif: image size out of range")}
	case C.HEIFGO_UNSUPPORTED:
		return nil, &FormatError{Format: format, Err: errors.New(C.GoString(&r.msg[0]))}
	default:
		return nil, &CorruptError{Format: format, Err: errors.New(C.GoString(&r.msg[0]))}
	}
	defer C.heif_image_release(r.img)
	// The decoded size may differ from the handle's (a clean aperture
	// rounded differently): check it again.
	if err := decCheckDims(format, w, h, lim); err != nil {
		return nil, err
	}
	bpp, stride := 3, int(r.stride)
	if r.alpha != 0 {
		bpp = 4
	}
	plane := unsafe.Slice((*byte)(unsafe.Pointer(r.plane)), stride*(h-1)+bpp*w)
	var row decRowFunc
	switch {
	case bpp == 3:
		row = func(y int, dst []byte) { copy(dst, plane[y*stride:y*stride+3*w]) }
	default: // alpha composited on black, as for the other formats
		premul := r.premultiplied != 0
		row = func(y int, dst []byte) {
			src := plane[y*stride : y*stride+4*w]
			for x := range w {
				p := src[4*x : 4*x+4 : 4*x+4]
				d := dst[3*x : 3*x+3 : 3*x+3]
				if a := p[3]; a == 0xFF || premul {
					d[0], d[1], d[2] = p[0], p[1], p[2]
				} else {
					d[0], d[1], d[2] = decMulAlpha(p[0], a), decMulAlpha(p[1], a), decMulAlpha(p[2], a)
				}
			}
		}
	}
	img := decConvert(w, h, decScaleFactor(max(w, h), opt.TargetSide), row)
	return &Decoded{Img: img, Width: w, Height: h, Format: format, Orientation: 1}, nil
}
