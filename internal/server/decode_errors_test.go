package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image/color"
	"net/http"
	"strings"
	"testing"

	"gabarit/internal/imageproc"
	"gabarit/internal/store"
)

// pngHeader is a PNG declaring a w×h image, with a token IDAT: its header
// is valid, its pixels are not.
func pngHeader(w, h uint32) []byte {
	chunk := func(typ string, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		b = append(b, typ...)
		b = append(b, payload...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), payload...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	b := append([]byte("\x89PNG\r\n\x1a\n"), chunk("IHDR", ihdr)...)
	b = append(b, chunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01})...)
	return append(b, chunk("IEND", nil)...)
}

// TestDecodeErrorAnswers checks that a photo over the pixel limit, a damaged
// photo and a format this build does not read each get their own answer
// with a plain message, and that no answer quotes the file.
func TestDecodeErrorAnswers(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("ivan", store.RoleInvestigator)
	inv := e.token("ivan")
	photo := testPNG(t, color.RGBA{200, 10, 10, 255})
	heic := append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), "\x00\x00\x00\x10mdatJean Dupont"...)
	heicStatus, heicCode, heicMsg := 415, "not_an_image", "HEIC photos are not supported by this build of gabarit"
	if imageproc.HEIF() {
		heicStatus, heicCode, heicMsg = 422, "bad_image", "the HEIC file is damaged or incomplete; it cannot be decoded"
	}
	cases := []struct {
		name   string
		data   []byte
		status int
		code   string
		msg    string // the message starts with it
	}{
		{"120 megapixels", pngHeader(12000, 10000), 422, "bad_image",
			"the photo is 120 megapixels (12000×10000 pixels); the limit is 100 megapixels"},
		{"truncated png", photo[:len(photo)-20], 422, "bad_image", "the PNG file is damaged or incomplete; it cannot be decoded"},
		{"heic", heic, heicStatus, heicCode, heicMsg},
		{"pdf", []byte("%PDF-1.7\n(Jean Dupont)"), 415, "not_an_image", "the file is a PDF document, not a photo (gabarit reads " + imageproc.Readable() + ")"},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := inv.multipart("/api/v1/searches", map[string]string{"purpose": "p"}, map[string][][]byte{"photo": {tc.data}})
			ae := decode[apiError](t, body)
			if st != tc.status || ae.Code != tc.code || !strings.HasPrefix(ae.Message, tc.msg) {
				t.Fatalf("got %d %s, want %d %s %q", st, short(body), tc.status, tc.code, tc.msg)
			}
			if other, ok := seen[ae.Message]; ok {
				t.Errorf("same message as %s: %q", other, ae.Message)
			}
			seen[ae.Message] = tc.name
			for i := 0; i+6 <= min(len(tc.data), 64); i++ {
				w := tc.data[i : i+6]
				if bytes.Contains(body, w) || bytes.Contains(body, []byte(fmt.Sprintf("% x", w))) {
					t.Errorf("answer %s quotes the file's bytes %q", body, w)
					break
				}
			}
		})
	}
	// The console shows the same words on its search page.
	if ae := classify(fmt.Errorf("probe: %w", &imageproc.PixelLimitError{Width: 12000, Height: 10000, Limit: 100_000_000}), "r1"); ae.Code != "bad_image" ||
		ae.Message != "the photo is 120 megapixels (12000×10000 pixels); the limit is 100 megapixels" {
		t.Errorf("classify: %+v", ae)
	}
	if ae := classify(&imageproc.FormatError{Format: "pdf"}, "r1"); ae.Status != http.StatusUnsupportedMediaType || !strings.Contains(ae.Message, "PDF document") {
		t.Errorf("classify: %+v", ae)
	}
}
