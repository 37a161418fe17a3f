//go:build cgo && jpegturbo

package imageproc

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

enum {
	TURBO_OK = 0,
	TURBO_ERROR = 1,    // libjpeg reported an error; message in msg
	TURBO_FALLBACK = 2, // colour space libjpeg will not convert to RGB (CMYK/YCCK)
	TURBO_MISMATCH = 3, // output size differs from what the caller allocated
	TURBO_DAMAGED = 4,  // data cut short or corrupt inside a scan; message in msg
};

// More scans than any real progressive JPEG uses; crafted files with many
// thousands of tiny scans make decoding quadratic.
#define TURBO_MAX_SCANS 1000

struct turbo_err {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	int damaged;
	char msg[JMSG_LENGTH_MAX];
};

struct turbo_progress {
	struct jpeg_progress_mgr pub;
	struct turbo_err *err;
};

// error_exit must not return: the default one calls exit(). Jump back to
// turbo_decode instead.
static void turbo_error_exit(j_common_ptr c) {
	struct turbo_err *e = (struct turbo_err *)c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jb, 1);
}

// emit_message would print warnings on stderr. Stay quiet, but remember the
// warnings by which libjpeg papers over missing or damaged scan data (with
// grey or repeated blocks): those make the image corrupt, as they do for
// image/jpeg. Harmless ones (extraneous bytes between markers) are ignored.
static void turbo_emit_message(j_common_ptr c, int level) {
	struct turbo_err *e = (struct turbo_err *)c->err;
	if (level >= 0) {
		return;
	}
	c->err->num_warnings++;
	int code = c->err->msg_code;
	if (!e->damaged && (code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC || code == JWRN_JPEG_EOF)) {
		e->damaged = 1;
		(*c->err->format_message)(c, e->msg);
	}
}

static void turbo_output_message(j_common_ptr c) { (void)c; }

static void turbo_progress_monitor(j_common_ptr c) {
	struct turbo_progress *p = (struct turbo_progress *)c->progress;
	j_decompress_ptr d = (j_decompress_ptr)c;
	if (d->progressive_mode && d->input_scan_number > TURBO_MAX_SCANS) {
		snprintf(p->err->msg, sizeof p->err->msg, "more than %d progressive scans", TURBO_MAX_SCANS);
		longjmp(p->err->jb, 1);
	}
}

// A memory source like jpeg_mem_src, except that running out of data yields
// an EOI marker without a warning. A file that lacks only its final EOI (a
// common defect) then decodes cleanly, while one cut short inside a scan
// still makes the entropy decoder warn JWRN_HIT_MARKER.
static const JOCTET turbo_eoi[2] = {0xFF, JPEG_EOI};

static void turbo_init_source(j_decompress_ptr c) { (void)c; }

static boolean turbo_fill_input_buffer(j_decompress_ptr c) {
	c->src->next_input_byte = turbo_eoi;
	c->src->bytes_in_buffer = 2;
	return TRUE;
}

static void turbo_skip_input_data(j_decompress_ptr c, long n) {
	struct jpeg_source_mgr *src = c->src;
	if (n <= 0) {
		return;
	}
	if ((unsigned long)n >= src->bytes_in_buffer) {
		turbo_fill_input_buffer(c);
		return;
	}
	src->next_input_byte += n;
	src->bytes_in_buffer -= (size_t)n;
}

static void turbo_term_source(j_decompress_ptr c) { (void)c; }

// turbo_put_rows writes rows y0..y0+n-1 (w pixels each) of a w×h image into
// out, the image as displayed under EXIF orientation orient (2–8).
static void turbo_put_rows(unsigned char *out, JSAMPARRAY rows, long n, long w, long h, long y0, int orient) {
	long dw = orient >= 5 ? h : w;
	if (orient <= 4) {
		// Rows stay rows: copy each, reversed for 2 and 3.
		for (long i = 0; i < n; i++) {
			long y = y0 + i;
			long dy = (orient == 3 || orient == 4) ? h - 1 - y : y;
			const unsigned char *s = rows[i];
			unsigned char *d = out + dy * dw * 3;
			if (orient == 4) {
				memcpy(d, s, (size_t)w * 3);
				continue;
			}
			d += (w - 1) * 3;
			for (long x = 0; x < w; x++, s += 3, d -= 3) {
				d[0] = s[0];
				d[1] = s[1];
				d[2] = s[2];
			}
		}
		return;
	}
	// Rows become columns: source column x is destination row dy(x), and
	// source row y lands at column dx(y), which moves by one (dir = ±1) per
	// row. Walking down the strip for each column keeps the writes
	// sequential; the reads stride over the strip, which stays in cache.
	long dir = (orient == 5 || orient == 8) ? 1 : -1;
	long dx0 = dir > 0 ? y0 : h - 1 - y0;
	for (long x = 0; x < w; x++) {
		long dy = (orient == 5 || orient == 6) ? x : w - 1 - x;
		unsigned char *d = out + (dy * dw + dx0) * 3;
		const long ds = dir * 3;
		const long sx = x * 3;
		for (long i = 0; i < n; i++, d += ds) {
			const unsigned char *s = rows[i] + sx;
			d[0] = s[0];
			d[1] = s[1];
			d[2] = s[2];
		}
	}
}

// turbo_decode decodes data scaled by 1/denom into out, a caller-allocated
// out_w*out_h*3 RGB buffer (out_w×out_h being the scaled size before
// orientation), applying EXIF orientation orient (1–8) on the way. It never
// exits and never writes outside out.
static int turbo_decode(const unsigned char *data, size_t len, int denom, int fast, int orient,
                        unsigned char *out, int out_w, int out_h, char *msg, int msg_len) {
	struct jpeg_decompress_struct cinfo;
	struct turbo_err jerr;
	struct turbo_progress prog;
	struct jpeg_source_mgr src;

	memset(&cinfo, 0, sizeof cinfo);
	jerr.damaged = 0;
	jerr.msg[0] = 0;
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = turbo_error_exit;
	jerr.pub.emit_message = turbo_emit_message;
	jerr.pub.output_message = turbo_output_message;
	prog.pub.progress_monitor = turbo_progress_monitor;
	prog.err = &jerr;
	src.next_input_byte = data;
	src.bytes_in_buffer = len;
	src.init_source = turbo_init_source;
	src.fill_input_buffer = turbo_fill_input_buffer;
	src.skip_input_data = turbo_skip_input_data;
	src.resync_to_restart = jpeg_resync_to_restart;
	src.term_source = turbo_term_source;
	if (setjmp(jerr.jb)) {
		snprintf(msg, msg_len, "%s", jerr.msg);
		jpeg_destroy_decompress(&cinfo);
		return TURBO_ERROR;
	}
	jpeg_create_decompress(&cinfo);
	cinfo.progress = &prog.pub;
	cinfo.src = &src;
	jpeg_read_header(&cinfo, TRUE);
	if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
		jpeg_destroy_decompress(&cinfo);
		return TURBO_FALLBACK;
	}
	cinfo.out_color_space = JCS_RGB;
	cinfo.scale_num = 1;
	cinfo.scale_denom = denom;
	cinfo.dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
	jpeg_calc_output_dimensions(&cinfo);
	if ((int)cinfo.output_width != out_w || (int)cinfo.output_height != out_h ||
	    cinfo.output_components != 3) {
		snprintf(msg, msg_len, "output would be %ux%ux%d, header said %dx%dx3",
		         cinfo.output_width, cinfo.output_height, cinfo.output_components, out_w, out_h);
		jpeg_destroy_decompress(&cinfo);
		return TURBO_MISMATCH;
	}
	jpeg_start_decompress(&cinfo);
	if (orient >= 2 && orient <= 8) {
		// Decode strips of rows, then scatter them to their displayed place.
		enum { STRIP = 64 };
		JSAMPARRAY strip = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE,
		                                              (JDIMENSION)out_w * 3, STRIP);
		while (cinfo.output_scanline < cinfo.output_height && !jerr.damaged) {
			long y0 = cinfo.output_scanline;
			JDIMENSION got = 0;
			while (got < STRIP && cinfo.output_scanline < cinfo.output_height && !jerr.damaged) {
				JDIMENSION n = jpeg_read_scanlines(&cinfo, strip + got, STRIP - got);
				if (n == 0) {
					break;
				}
				got += n;
			}
			if (got == 0) {
				break;
			}
			turbo_put_rows(out, strip, got, out_w, out_h, y0, orient);
		}
	} else {
		while (cinfo.output_scanline < cinfo.output_height && !jerr.damaged) {
			JSAMPROW rows[4];
			int n = 0;
			for (; n < 4 && cinfo.output_scanline + n < cinfo.output_height; n++) {
				rows[n] = out + (size_t)(cinfo.output_scanline + n) * (size_t)out_w * 3;
			}
			if (jpeg_read_scanlines(&cinfo, rows, n) == 0) {
				break;
			}
		}
	}
	int complete = cinfo.output_scanline == cinfo.output_height;
	if (complete && !jerr.damaged) {
		jpeg_finish_decompress(&cinfo);
	}
	jpeg_destroy_decompress(&cinfo);
	if (jerr.damaged || !complete) {
		snprintf(msg, msg_len, "%s", jerr.damaged ? jerr.msg : "data ends before the last scanline");
		return TURBO_DAMAGED;
	}
	return TURBO_OK;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// turboFastDCT selects JDCT_IFAST instead of JDCT_ISLOW. Measured on a 12 MP
// photo, IFAST was about 15% faster at full size and no faster when scaling,
// but tripled the mean difference from image/jpeg (1.1 against 0.34 levels),
// so the accurate ISLOW is used.
const turboFastDCT = false

// FastJPEG reports whether JPEGs are decoded by libjpeg-turbo. It is true in
// this build (cgo with the jpegturbo tag).
func FastJPEG() bool { return true }

// turboDecodeJPEG decodes a w×h JPEG scaled by 1/factor with libjpeg-turbo
// and applies the EXIF orientation. fallback is true when the pure-Go
// decoder must be used instead (CMYK).
func turboDecodeJPEG(data []byte, w, h, factor, orientation int) (img *RGB, fallback bool, err error) {
	ow, oh := (w+factor-1)/factor, (h+factor-1)/factor
	if orientation >= 5 && orientation <= 8 {
		img = NewRGB(oh, ow)
	} else {
		img = NewRGB(ow, oh)
	}
	var msg [C.JMSG_LENGTH_MAX + 64]C.char
	fast := C.int(0)
	if turboFastDCT {
		fast = 1
	}
	rc := C.turbo_decode((*C.uchar)(unsafe.Pointer(unsafe.SliceData(data))), C.size_t(len(data)),
		C.int(factor), fast, C.int(orientation), (*C.uchar)(unsafe.Pointer(unsafe.SliceData(img.Pix))),
		C.int(ow), C.int(oh), &msg[0], C.int(len(msg)))
	switch rc {
	case C.TURBO_OK:
		return img, false, nil
	case C.TURBO_FALLBACK:
		return nil, true, nil
	case C.TURBO_MISMATCH:
		return nil, false, &CorruptError{Format: "jpeg", Err: fmt.Errorf("libjpeg: %s", C.GoString(&msg[0]))}
	default:
		return nil, false, &CorruptError{Format: "jpeg", Err: fmt.Errorf("libjpeg: %s", C.GoString(&msg[0]))}
	}
}
