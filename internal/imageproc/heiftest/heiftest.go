//go:build cgo && heif

// Package heiftest encodes HEIC and AVIF files with libheif for the tests
// of the HEIF decoder: the test photos are re-encoded at test time, so that
// no HEIC file is committed.
package heiftest

/*
#cgo LDFLAGS: -lheif
#include <stdlib.h>
#include <string.h>
#include <libheif/heif.h>

struct heiftest_buf {
	unsigned char *p;
	size_t n;
};

static struct heif_error heiftest_write(struct heif_context *ctx, const void *data, size_t size, void *userdata) {
	struct heiftest_buf *b = userdata;
	struct heif_error ok = {heif_error_Ok, heif_suberror_Unspecified, "ok"};
	struct heif_error oom = {heif_error_Memory_allocation_error, heif_suberror_Unspecified, "out of memory"};
	(void)ctx;
	b->p = malloc(size ? size : 1);
	if (b->p == NULL) {
		return oom;
	}
	memcpy(b->p, data, size);
	b->n = size;
	return ok;
}

// heiftest_encode encodes the w×h packed RGB image pix with the encoder
// of format at quality (0-100, or lossless when < 0), tagged with
// orientation (1-8: irot/imir boxes) and, when exif_len > 0, the EXIF
// payload exif. The file is returned in out (malloc'd).
static struct heif_error heiftest_encode(const unsigned char *pix, int w, int h, int format, int quality,
                                         int orientation, const unsigned char *exif, int exif_len,
                                         struct heiftest_buf *out) {
	struct heif_context *ctx = heif_context_alloc();
	struct heif_encoder *enc = NULL;
	struct heif_image *img = NULL;
	struct heif_image_handle *handle = NULL;
	struct heif_encoding_options *opt = NULL;
	struct heif_writer writer = {1, heiftest_write};
	struct heif_error err = heif_context_get_encoder_for_format(ctx, (enum heif_compression_format)format, &enc);
	if (err.code != heif_error_Ok) {
		goto out;
	}
	err = quality < 0 ? heif_encoder_set_lossless(enc, 1) : heif_encoder_set_lossy_quality(enc, quality);
	if (err.code != heif_error_Ok) {
		goto out;
	}
	// The fastest x265 preset: tests encode whole photos on small machines.
	// Other encoders have no such parameter, which is not an error here.
	(void)heif_encoder_set_parameter_string(enc, "preset", "ultrafast");
	(void)heif_encoder_set_parameter_integer(enc, "speed", 9); // libaom: fastest
	err = heif_image_create(w, h, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &img);
	if (err.code != heif_error_Ok) {
		goto out;
	}
	err = heif_image_add_plane(img, heif_channel_interleaved, w, h, 8);
	if (err.code != heif_error_Ok) {
		goto out;
	}
	int stride = 0;
	unsigned char *plane = heif_image_get_plane(img, heif_channel_interleaved, &stride);
	for (int y = 0; y < h; y++) {
		memcpy(plane + (size_t)y * stride, pix + (size_t)y * w * 3, (size_t)w * 3);
	}
	opt = heif_encoding_options_alloc();
	opt->image_orientation = (enum heif_orientation)orientation;
	err = heif_context_encode_image(ctx, img, enc, opt, &handle);
	if (err.code != heif_error_Ok) {
		goto out;
	}
	if (exif_len > 0) {
		err = heif_context_add_exif_metadata(ctx, handle, exif, exif_len);
		if (err.code != heif_error_Ok) {
			goto out;
		}
	}
	err = heif_context_write(ctx, &writer, out);
out:
	if (opt != NULL) {
		heif_encoding_options_free(opt);
	}
	if (handle != NULL) {
		heif_image_handle_release(handle);
	}
	if (img != NULL) {
		heif_image_release(img);
	}
	if (enc != NULL) {
		heif_encoder_release(enc);
	}
	heif_context_free(ctx);
	return err;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Options control Encode.
type Options struct {
	AVIF        bool   // encode AV1 (AVIF) instead of HEVC (HEIC)
	Quality     int    // 1–100; 0 means 90; Lossless overrides it
	Lossless    bool   // lossless coding
	Orientation int    // 1–8 (0 means 1): written as irot/imir boxes, as phones do
	Exif        []byte // an EXIF payload (TIFF structure, with its 4-byte offset prefix) to attach, or nil
}

func compression(avif bool) C.enum_heif_compression_format {
	if avif {
		return C.heif_compression_AV1
	}
	return C.heif_compression_HEVC
}

// CanEncode reports whether libheif has an encoder for HEVC (avif false) or
// AV1 (avif true).
func CanEncode(avif bool) bool {
	C.heif_init(nil)
	return C.heif_have_encoder_for_format(compression(avif)) != 0
}

// Encode returns a HEIC (or AVIF) file of the w×h image pix, packed 8-bit RGB
// rows.
func Encode(pix []byte, w, h int, o Options) ([]byte, error) {
	if w <= 0 || h <= 0 || len(pix) != 3*w*h {
		return nil, fmt.Errorf("heiftest: %d bytes for a %d×%d RGB image", len(pix), w, h)
	}
	q := o.Quality
	switch {
	case o.Lossless:
		q = -1
	case q <= 0:
		q = 90
	}
	orient := o.Orientation
	if orient == 0 {
		orient = 1
	}
	var exif *C.uchar
	if len(o.Exif) > 0 {
		exif = (*C.uchar)(unsafe.Pointer(unsafe.SliceData(o.Exif)))
	}
	C.heif_init(nil)
	var out C.struct_heiftest_buf
	err := C.heiftest_encode((*C.uchar)(unsafe.Pointer(unsafe.SliceData(pix))), C.int(w), C.int(h),
		C.int(compression(o.AVIF)), C.int(q), C.int(orient), exif, C.int(len(o.Exif)), &out)
	if err.code != C.heif_error_Ok {
		return nil, fmt.Errorf("heiftest: encode: %s", C.GoString(err.message))
	}
	defer C.free(unsafe.Pointer(out.p))
	return C.GoBytes(unsafe.Pointer(out.p), C.int(out.n)), nil
}
