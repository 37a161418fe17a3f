package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// decTestNoBytes fails when msg quotes data: any 6-byte run of its first
// 64 bytes, raw or in hex.
func decTestNoBytes(t *testing.T, msg string, data []byte) {
	t.Helper()
	head := data[:min(len(data), 64)]
	for i := 0; i+6 <= len(head); i++ {
		w := head[i : i+6]
		for _, s := range []string{string(w), fmt.Sprintf("% x", w), fmt.Sprintf("%x", w), fmt.Sprintf("%q", w)} {
			if strings.Contains(msg, strings.Trim(s, `"`)) {
				t.Errorf("message %q quotes the file's bytes %q", msg, s)
				return
			}
		}
	}
}

// decTestFtyp is an ISO base media file header with these brands, followed
// by junk.
func decTestFtyp(major string, compatible ...string) []byte {
	n := 16 + 4*len(compatible)
	b := []byte{0, 0, 0, byte(n)}
	b = append(b, "ftyp"+major+"\x00\x00\x00\x00"...)
	for _, c := range compatible {
		b = append(b, c...)
	}
	return append(b, "\x00\x00\x00\x08free private data"...)
}

// TestDecodeErrorClasses checks that each kind of unreadable photo gets its
// own typed error and plain message, and that no message quotes the file.
func TestDecodeErrorClasses(t *testing.T) {
	jpg := decTestEncode(t, "jpeg", decTestPhoto(64, 48, 6))
	pngData := decTestEncode(t, "png", decTestPhoto(64, 48, 6))
	readable := "JPEG, PNG, GIF, WebP, BMP, TIFF, PGM/PPM"
	heicMsg := "HEIC photos are not supported by this build of gabarit; convert the photo to JPEG, or build gabarit with the heif tag"
	avifMsg := "AVIF photos are not supported by this build of gabarit; convert the photo to JPEG, or build gabarit with the heif tag"
	var heicWant, avifWant error = ErrUnsupportedFormat, ErrUnsupportedFormat
	if HEIF() {
		// A header alone is a damaged file for a build that reads HEIF.
		readable += ", HEIC"
		if heifCanDecode("avif") {
			readable += ", AVIF"
		}
		heicWant, heicMsg = ErrCorrupt, "the HEIC file is damaged or incomplete; it cannot be decoded"
		avifWant, avifMsg = ErrCorrupt, "the AVIF file is damaged or incomplete; it cannot be decoded"
	}
	tests := []struct {
		name   string
		data   []byte
		limits Limits
		want   error  // sentinel
		typ    any    // pointer to the typed error wanted
		format string // FormatError.Format or CorruptError.Format
		msg    string
		goOnly bool // libjpeg-turbo reads it
	}{
		{name: "120 megapixels", data: decTestHugePNG(12000, 10000), want: ErrTooLarge, typ: new(*PixelLimitError),
			msg: "the photo is 120 megapixels (12000×10000 pixels); the limit is 100 megapixels"},
		{name: "just over the limit", data: decTestHugePNG(10002, 10000), want: ErrTooLarge, typ: new(*PixelLimitError),
			msg: "the photo is 100.02 megapixels (10002×10000 pixels); the limit is 100 megapixels"},
		{name: "a 12 MP photo, limit 8", data: decTestHugePNG(4032, 3024), limits: Limits{MaxPixels: 8_000_000}, want: ErrTooLarge,
			typ: new(*PixelLimitError), msg: "the photo is 12.2 megapixels (4032×3024 pixels); the limit is 8 megapixels"},
		{name: "too many bytes", data: pngData, limits: Limits{MaxBytes: 100}, want: ErrTooLarge, typ: new(*SizeLimitError),
			msg: fmt.Sprintf("the file is %d bytes; the limit is 100 bytes", len(pngData))},
		{name: "empty", data: nil, want: ErrCorrupt, typ: new(*CorruptError), msg: "the file is empty"},
		{name: "truncated jpeg", data: jpg[:len(jpg)/2], want: ErrCorrupt, typ: new(*CorruptError), format: "jpeg",
			msg: "the JPEG file is damaged or incomplete; it cannot be decoded"},
		{name: "jpeg headers only", data: jpg[:300], want: ErrCorrupt, typ: new(*CorruptError), format: "jpeg",
			msg: "the JPEG file is damaged or incomplete; it cannot be decoded"},
		{name: "truncated png", data: pngData[:len(pngData)/2], want: ErrCorrupt, typ: new(*CorruptError), format: "png",
			msg: "the PNG file is damaged or incomplete; it cannot be decoded"},
		{name: "corrupt gif", data: []byte("GIF89a\x10\x00\x10\x00\xff\xff"), want: ErrCorrupt, typ: new(*CorruptError), format: "gif",
			msg: "the GIF file is damaged or incomplete; it cannot be decoded"},
		{name: "arithmetic-coded jpeg", data: []byte(decTestJPEGArithmetic), want: ErrUnsupportedFormat, typ: new(*FormatError),
			format: "jpeg", msg: "this JPEG file uses a feature gabarit cannot decode; convert the photo to a standard JPEG or PNG", goOnly: true},
		{name: "random bytes", data: []byte("\x00\x9f\x13\x88\xfe\x01\x02\x03\xe4\xb8\x00\x11\x22\x33\x44\x55"), want: ErrUnsupportedFormat,
			typ: new(*FormatError), msg: "the file is not an image gabarit reads (" + readable + ")"},
		{name: "pdf", data: []byte("%PDF-1.7\n1 0 obj << /Title (Dupont Jean) >>"), want: ErrUnsupportedFormat, typ: new(*FormatError),
			format: "pdf", msg: "the file is a PDF document, not a photo (gabarit reads " + readable + ")"},
		{name: "html", data: []byte("<!DOCTYPE html><html><body>jean.dupont@example.org</body></html>"), want: ErrUnsupportedFormat,
			typ: new(*FormatError), format: "html", msg: "the file is a web page (HTML), not a photo (gabarit reads " + readable + ")"},
		{name: "text", data: []byte("GIF? no: <script>alert(1)</script>"), want: ErrUnsupportedFormat, typ: new(*FormatError),
			format: "text", msg: "the file is a text file, not a photo (gabarit reads " + readable + ")"},
		{name: "zip", data: []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00photos/jean.jpg"), want: ErrUnsupportedFormat, typ: new(*FormatError),
			format: "zip", msg: "the file is a ZIP archive, not a photo (gabarit reads " + readable + ")"},
		{name: "mp4", data: decTestFtyp("isom", "isom", "iso2", "mp41"), want: ErrUnsupportedFormat, typ: new(*FormatError),
			format: "video", msg: "the file is a video or sound file (MP4, QuickTime), not a photo (gabarit reads " + readable + ")"},
		{name: "avi", data: []byte("RIFF\x10\x00\x00\x00AVI LIST"), want: ErrUnsupportedFormat, typ: new(*FormatError),
			format: "avi", msg: "the file is an AVI video, not a photo (gabarit reads " + readable + ")"},
		{name: "svg", data: []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`), want: ErrUnsupportedFormat,
			typ: new(*FormatError), format: "svg", msg: "SVG images are not supported; convert the photo to JPEG or PNG"},
		{name: "jpeg xl", data: []byte("\xff\x0a\xfa\x7f\x01\x90\x08\x06\x01\x00\x48\x00"), want: ErrUnsupportedFormat,
			typ: new(*FormatError), format: "jxl", msg: "JPEG XL images are not supported; convert the photo to JPEG or PNG"},
		{name: "heic", data: decTestFtyp("heic", "mif1", "heic"), want: heicWant, format: "heic", msg: heicMsg},
		{name: "heic as mif1", data: decTestFtyp("mif1", "mif1", "heic", "miaf"), want: heicWant, format: "heic", msg: heicMsg},
		{name: "avif", data: decTestFtyp("avif", "mif1", "avif", "miaf"), want: avifWant, format: "avif", msg: avifMsg},
	}
	for _, tt := range tests {
		for _, opt := range decTestPaths() {
			if tt.goOnly && !opt.PureGo {
				continue
			}
			t.Run(tt.name+"/path="+decTestPathName(opt), func(t *testing.T) {
				opt.Limits = tt.limits
				d, err := Decode(tt.data, opt)
				if !errors.Is(err, tt.want) || d != nil {
					t.Fatalf("Decode: %v, want %v", err, tt.want)
				}
				if tt.typ != nil && !errors.As(err, tt.typ) {
					t.Errorf("error %T, want %T", err, tt.typ)
				}
				var fe *FormatError
				var ce *CorruptError
				switch {
				case errors.As(err, &fe) && fe.Format != tt.format:
					t.Errorf("FormatError.Format %q, want %q", fe.Format, tt.format)
				case errors.As(err, &ce) && ce.Format != tt.format:
					t.Errorf("CorruptError.Format %q, want %q", ce.Format, tt.format)
				}
				if got := Message(err); got != tt.msg {
					t.Errorf("Message\n got %q\nwant %q", got, tt.msg)
				}
				if got := Message(fmt.Errorf("search: %w", err)); got != tt.msg {
					t.Errorf("Message of a wrapped error %q", got)
				}
				if !strings.HasPrefix(err.Error(), tt.msg) {
					t.Errorf("Error() %q does not start with the message", err)
				}
				decTestNoBytes(t, err.Error(), tt.data)
			})
		}
	}
	if got := Message(errors.New("disk full")); got != "" {
		t.Errorf("Message of another error = %q, want empty", got)
	}
}

// TestDecodeErrorMessagesDistinct checks that a 120 MP photo and a corrupt
// GIF no longer read alike, and that the classes never share a message.
func TestDecodeErrorMessagesDistinct(t *testing.T) {
	inputs := map[string][]byte{
		"pixels":  decTestHugePNG(12000, 10000),
		"corrupt": []byte("GIF89a\x10\x00\x10\x00\xff\xff"),
		"format":  []byte("%PDF-1.4"),
		"empty":   {},
	}
	seen := map[string]string{}
	for name, data := range inputs {
		_, err := Decode(data, DecodeOptions{})
		msg := Message(err)
		if msg == "" {
			t.Fatalf("%s: no message for %v", name, err)
		}
		if other, ok := seen[msg]; ok {
			t.Errorf("%s and %s share the message %q", name, other, msg)
		}
		seen[msg] = name
	}
}

// TestDecodeFileErrors checks that DecodeFile's errors name the path and
// keep their type, for the size checked before reading too.
func TestDecodeFileErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.png")
	bigData := decTestHugePNG(12000, 10000)
	if err := os.WriteFile(big, bigData, 0o600); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, "notes.jpg")
	if err := os.WriteFile(notes, []byte("meeting notes: Jean Dupont, 12 rue de la Paix"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		limits Limits
		typ    any
		msg    string
	}{
		{path: big, typ: new(*PixelLimitError), msg: "the photo is 120 megapixels (12000×10000 pixels); the limit is 100 megapixels"},
		{path: big, limits: Limits{MaxBytes: 10}, typ: new(*SizeLimitError), msg: fmt.Sprintf("the file is %d bytes; the limit is 10 bytes", len(bigData))},
		{path: notes, typ: new(*FormatError), msg: "the file is a text file, not a photo (gabarit reads " + Readable() + ")"},
	}
	for _, tt := range tests {
		_, err := DecodeFile(tt.path, DecodeOptions{Limits: tt.limits})
		if !errors.As(err, tt.typ) || !strings.HasPrefix(err.Error(), tt.path+": ") {
			t.Errorf("%s: error %v (%T), want a %T naming the path", tt.path, err, err, tt.typ)
		}
		if got := Message(err); got != tt.msg {
			t.Errorf("%s: Message %q, want %q", tt.path, got, tt.msg)
		}
		if data, _ := os.ReadFile(tt.path); bytes.Contains([]byte(err.Error()), data[:12]) {
			t.Errorf("error %q quotes the file", err)
		}
	}
}

// TestSizeLimitMessage checks the units of large sizes.
func TestSizeLimitMessage(t *testing.T) {
	for _, tt := range []struct {
		size, limit int64
		want        string
	}{
		{80<<20 + 512<<10, 64 << 20, "the file is 80.5 MiB; the limit is 64 MiB"},
		{64<<20 + 1, 64 << 20, "the file is 64.000001 MiB; the limit is 64 MiB"},
		{3 << 20, 1 << 20, "the file is 3 MiB; the limit is 1 MiB"},
	} {
		if got := Message(&SizeLimitError{Size: tt.size, Limit: tt.limit}); got != tt.want {
			t.Errorf("%d over %d: %q, want %q", tt.size, tt.limit, got, tt.want)
		}
	}
}

func TestIsImageNameHEIF(t *testing.T) {
	for _, name := range []string{"IMG_0001.HEIC", "a/b.heif", "x.hif", "y.avif"} {
		if !IsImageName(name) {
			t.Errorf("IsImageName(%q) = false", name)
		}
	}
	if got := Sniff(decTestFtyp("heic", "mif1", "heic")); got != "heic" {
		t.Errorf("Sniff(heic) = %q", got)
	}
	if got := Sniff(decTestFtyp("mp42", "isom")); got != "" {
		t.Errorf("Sniff(mp4) = %q, want \"\"", got)
	}
}
