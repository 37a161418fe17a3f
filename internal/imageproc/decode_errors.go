package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The errors of Decode and DecodeFile are one of the five types below, each
// matching one of the sentinels ErrTooLarge, ErrUnsupportedFormat or
// ErrCorrupt with errors.Is. Their Error text starts with a plain sentence
// for people, followed for some by the decoder's own words (for logs and
// the command line); Message returns the sentence alone. No text ever
// quotes the file's content.

// PixelLimitError reports an image whose header declares more pixels than
// Limits.MaxPixels. It is returned before any pixel is decoded.
type PixelLimitError struct {
	Width, Height int   // as declared by the header, after orientation
	Limit         int64 // Limits.MaxPixels
}

// Error returns the message.
func (e *PixelLimitError) Error() string { return e.message() }

// Is reports whether target is ErrTooLarge.
func (e *PixelLimitError) Is(target error) bool { return target == ErrTooLarge }

func (e *PixelLimitError) message() string {
	got, lim := decDistinct(float64(e.Width)*float64(e.Height)/1e6, float64(e.Limit)/1e6)
	return "the photo is " + got + " megapixels (" + strconv.Itoa(e.Width) + "×" + strconv.Itoa(e.Height) +
		" pixels); the limit is " + lim + " megapixels"
}

// MemoryLimitError reports an image that would take more memory to decode
// than Limits.MaxDecodedBytes, as Estimate reckons it from the header (a
// small file of many 16-bit pixels expands to gigabytes). It is returned
// before any pixel is decoded.
type MemoryLimitError struct {
	Width, Height int   // as declared by the header, after orientation
	Need          int64 // bytes, the estimate
	Limit         int64 // Limits.MaxDecodedBytes
}

// Error returns the message.
func (e *MemoryLimitError) Error() string { return e.message() }

// Is reports whether target is ErrTooLarge.
func (e *MemoryLimitError) Is(target error) bool { return target == ErrTooLarge }

func (e *MemoryLimitError) message() string {
	got, lim := decDistinct(float64(e.Need)/(1<<20), float64(e.Limit)/(1<<20))
	return "the photo (" + strconv.Itoa(e.Width) + "×" + strconv.Itoa(e.Height) + " pixels) would take " + got +
		" MiB of memory to decode; the limit is " + lim + " MiB: send it as an 8-bit JPEG, or smaller"
}

// SizeLimitError reports encoded data larger than Limits.MaxBytes. It is
// returned before the data is read (DecodeFile) or parsed (Decode).
type SizeLimitError struct {
	Size  int64 // bytes
	Limit int64 // Limits.MaxBytes
}

// Error returns the message.
func (e *SizeLimitError) Error() string { return e.message() }

// Is reports whether target is ErrTooLarge.
func (e *SizeLimitError) Is(target error) bool { return target == ErrTooLarge }

func (e *SizeLimitError) message() string {
	if e.Size < 1<<20 && e.Limit < 1<<20 {
		return "the file is " + strconv.FormatInt(e.Size, 10) + " bytes; the limit is " + strconv.FormatInt(e.Limit, 10) + " bytes"
	}
	got, lim := decDistinct(float64(e.Size)/(1<<20), float64(e.Limit)/(1<<20))
	return "the file is " + got + " MiB; the limit is " + lim + " MiB"
}

// FormatError reports data that is not an image Decode reads: no image at
// all, an image format that this build or gabarit cannot decode, or a
// variant of a known format that its decoder does not implement.
type FormatError struct {
	// Format names what the data was recognised as: one of the formats of
	// Decoded.Format, an image format gabarit does not read ("heic" and
	// "avif" without the heif build tag, "jxl", "jp2", "psd", "svg") or
	// another kind of file ("pdf", "zip", "gzip", "video", "html", "text"...);
	// "" when nothing was recognised.
	Format string
	// Err is the decoder's reason when Format is one that Decode reads
	// (a feature it lacks); nil otherwise.
	Err error
}

// Error returns the message, then the decoder's reason if any.
func (e *FormatError) Error() string {
	if e.Err != nil {
		return e.message() + ": " + e.Err.Error()
	}
	return e.message()
}

// Is reports whether target is ErrUnsupportedFormat.
func (e *FormatError) Is(target error) bool { return target == ErrUnsupportedFormat }

// Unwrap returns the decoder's reason, if any.
func (e *FormatError) Unwrap() error { return e.Err }

func (e *FormatError) message() string {
	if decFormats[e.Format] && (e.Err != nil || e.Format != "heic" && e.Format != "avif") {
		return "this " + decFormatName(e.Format) + " file uses a feature gabarit cannot decode; convert the photo to a standard JPEG or PNG"
	}
	switch e.Format {
	case "heic", "avif":
		if HEIF() && !heifCanDecode(e.Format) {
			codec := map[string]string{"heic": "HEVC", "avif": "AV1"}[e.Format]
			return decFormatName(e.Format) + " photos cannot be decoded here: libheif has no " + codec + " decoder; convert the photo to JPEG"
		}
		return decFormatName(e.Format) + " photos are not supported by this build of gabarit; convert the photo to JPEG, or build gabarit with the heif tag"
	case "jxl", "jp2", "psd", "svg", "cr3":
		return decFormatName(e.Format) + " images are not supported; convert the photo to JPEG or PNG"
	case "":
		return "the file is not an image gabarit reads (" + decReadable() + ")"
	}
	return "the file is " + decFormatName(e.Format) + ", not a photo (gabarit reads " + decReadable() + ")"
}

// CorruptError reports data in a known format that cannot be decoded: empty,
// truncated, malformed, or making the decoder fail.
type CorruptError struct {
	Format string // as in Decoded.Format; "" for empty data
	Err    error  // the decoder's reason; nil for empty data
}

// Error returns the message, then the decoder's reason if any.
func (e *CorruptError) Error() string {
	if e.Err != nil {
		return e.message() + ": " + e.Err.Error()
	}
	return e.message()
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the decoder's reason, if any.
func (e *CorruptError) Unwrap() error { return e.Err }

func (e *CorruptError) message() string {
	if e.Format == "" {
		return "the file is empty"
	}
	return "the " + decFormatName(e.Format) + " file is damaged or incomplete; it cannot be decoded"
}

// Message returns the plain sentence (lower case, no final period) that
// explains the first decode error in err's chain to people, without the
// decoder's details: "the photo is 120 megapixels (12000×10000 pixels); the
// limit is 100 megapixels". It returns "" when err holds no decode error.
func Message(err error) string {
	var (
		pe *PixelLimitError
		me *MemoryLimitError
		se *SizeLimitError
		fe *FormatError
		ce *CorruptError
	)
	switch {
	case errors.As(err, &pe):
		return pe.message()
	case errors.As(err, &me):
		return me.message()
	case errors.As(err, &se):
		return se.message()
	case errors.As(err, &fe):
		return fe.message()
	case errors.As(err, &ce):
		return ce.message()
	}
	return ""
}

// decFormats are the formats Decode may read (HEIC and AVIF depending on
// the build; see HEIF).
var decFormats = map[string]bool{
	"jpeg": true, "png": true, "gif": true, "webp": true, "bmp": true, "tiff": true, "pnm": true,
	"heic": true, "avif": true,
}

// decNames are the names shown to people for the formats recognised.
var decNames = map[string]string{
	"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP", "bmp": "BMP", "tiff": "TIFF", "pnm": "PGM/PPM",
	"heic": "HEIC", "avif": "AVIF", "jxl": "JPEG XL", "jp2": "JPEG 2000", "psd": "Photoshop (PSD)", "svg": "SVG",
	"cr3": "Canon raw (CR3)",
	"pdf": "a PDF document", "zip": "a ZIP archive", "gzip": "a gzip archive", "video": "a video or sound file (MP4, QuickTime)",
	"avi": "an AVI video", "wav": "a WAV sound file", "mkv": "a Matroska or WebM video", "html": "a web page (HTML)",
	"xml": "an XML document", "text": "a text file",
}

func decFormatName(format string) string {
	if n, ok := decNames[format]; ok {
		return n
	}
	return format
}

// decReadable lists the formats this build decodes, for people.
func decReadable() string {
	s := "JPEG, PNG, GIF, WebP, BMP, TIFF, PGM/PPM"
	switch {
	case HEIF() && heifAV1():
		s += ", HEIC, AVIF"
	case HEIF():
		s += ", HEIC"
	}
	return s
}

// Readable lists, for people, the image formats that this build decodes:
// "JPEG, PNG, GIF, WebP, BMP, TIFF, PGM/PPM" and HEIC (and AVIF) when it is
// built with the heif tag.
func Readable() string { return decReadable() }

// decDistinct formats a and b (a > b) with the fewest decimals, from one to
// six, that tell them apart, so that "100.02 megapixels, limit 100" never
// reads "100, limit 100".
func decDistinct(a, b float64) (string, string) {
	var sa, sb string
	for prec := 1; prec <= 6; prec++ {
		sa, sb = decTrim(strconv.FormatFloat(a, 'f', prec, 64)), decTrim(strconv.FormatFloat(b, 'f', prec, 64))
		if sa != sb {
			break
		}
	}
	return sa, sb
}

// decTrim drops the trailing zeros of a decimal number.
func decTrim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// decSniffOther names what data is when it is no format Decode reads, or
// returns "": image formats gabarit does not decode and common files sent
// by mistake. It only looks at signatures and, for text, at the character
// set.
func decSniffOther(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return "pdf"
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return "zip"
	case bytes.HasPrefix(data, []byte("\x1f\x8b")):
		return "gzip"
	case bytes.HasPrefix(data, []byte("\xff\x0a")), bytes.HasPrefix(data, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")):
		return "jxl"
	case bytes.HasPrefix(data, []byte("\x00\x00\x00\x0cjP  \r\n\x87\n")), bytes.HasPrefix(data, []byte("\xff\x4f\xff\x51")):
		return "jp2"
	case bytes.HasPrefix(data, []byte("8BPS")):
		return "psd"
	case bytes.HasPrefix(data, []byte("\x1a\x45\xdf\xa3")):
		return "mkv"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "AVI ":
		return "avi"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WAVE":
		return "wav"
	}
	if brands := decFtypBrands(data); brands != nil {
		if brands["crx "] {
			return "cr3"
		}
		return "video"
	}
	return decSniffText(data)
}

// decSniffText recognises text: HTML, SVG, other XML, or plain text.
func decSniffText(data []byte) string {
	head := data[:min(len(data), 1024)]
	if !utf8.Valid(head) && len(data) > len(head) {
		// The last character may be cut by the 1024-byte window.
		for i := 0; i < utf8.UTFMax-1 && len(head) > 0 && !utf8.Valid(head); i++ {
			head = head[:len(head)-1]
		}
	}
	if len(head) == 0 || !utf8.Valid(head) {
		return ""
	}
	for _, r := range string(head) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' {
			return ""
		}
	}
	lower := strings.ToLower(strings.TrimLeft(strings.TrimPrefix(string(head), "\ufeff"), " \t\r\n"))
	switch {
	case strings.Contains(lower, "<svg"):
		return "svg"
	case strings.HasPrefix(lower, "<!doctype html"), strings.HasPrefix(lower, "<html"), strings.Contains(lower, "<body"):
		return "html"
	case strings.HasPrefix(lower, "<?xml"):
		return "xml"
	}
	return "text"
}

// decFtypBrands returns the major and compatible brands of an ISO base
// media file (HEIF, AVIF, MP4, QuickTime...), or nil when data does not
// start with an ftyp box.
func decFtypBrands(data []byte) map[string]bool {
	if len(data) < 16 || string(data[4:8]) != "ftyp" {
		return nil
	}
	size := int(min(binary.BigEndian.Uint32(data), uint32(len(data))))
	if size < 16 {
		return nil
	}
	brands := map[string]bool{string(data[8:12]): true}
	for i := 16; i+4 <= size; i += 4 {
		brands[string(data[i:i+4])] = true
	}
	return brands
}

// decSniffHEIF returns "avif" or "heic" for an ISO base media file whose
// brands announce a HEIF still image, or "".
func decSniffHEIF(data []byte) string {
	brands := decFtypBrands(data)
	switch {
	case brands == nil:
		return ""
	case brands["avif"] || brands["avis"]:
		return "avif"
	}
	for _, b := range []string{"heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "mif1", "msf1"} {
		if brands[b] {
			return "heic"
		}
	}
	return ""
}
