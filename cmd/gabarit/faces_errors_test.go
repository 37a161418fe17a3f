//go:build cgo && onnx

package main

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/imageproc"
	"gabarit/internal/modeltest"
)

// TestFacesDecodeErrors checks that `gabarit faces` tells a photo over the
// pixel limit, a file that is no photo and a damaged photo apart, with
// their own words and without quoting the files.
func TestFacesDecodeErrors(t *testing.T) {
	d := modeltest.Installed(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A PNG whose header declares 12000×10000 pixels.
	chunk := func(typ string, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		b = append(append(b, typ...), payload...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), payload...)))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 12000), 10000)
	bigPNG := append([]byte("\x89PNG\r\n\x1a\n"), chunk("IHDR", append(ihdr, 8, 2, 0, 0, 0))...)
	bigPNG = append(bigPNG, chunk("IEND", nil)...)
	jpg, err := os.ReadFile(filepath.Join(d.TestPhotos(), "sample1.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	heicMsg := "HEIC photos are not supported by this build of gabarit"
	if imageproc.HEIF() {
		heicMsg = "the HEIC file is damaged or incomplete; it cannot be decoded"
	}
	files := []struct {
		path, msg string
		data      []byte
	}{
		{write("big.png", bigPNG), "the photo is 120 megapixels (12000×10000 pixels); the limit is 100 megapixels", bigPNG},
		{write("notes.jpg", []byte("Notes about Jean Dupont")), "the file is a text file, not a photo", []byte("Notes about Jean Dupont")},
		{write("cut.jpg", jpg[:len(jpg)/3]), "the JPEG file is damaged or incomplete; it cannot be decoded", jpg},
		{write("IMG_0001.HEIC", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")), heicMsg, nil},
	}
	args := []string{"faces"}
	for _, f := range files {
		args = append(args, f.path)
	}
	out, stderr, err := runCLI(t, args...)
	if exitCode(err) != 1 {
		t.Fatalf("exit %v, want 1", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(files) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(files), out)
	}
	for i, f := range files {
		if !strings.HasPrefix(lines[i], f.path+": error: ") || !strings.Contains(lines[i], f.msg) {
			t.Errorf("line %q, want %s: error: …%s", lines[i], f.path, f.msg)
		}
		head := f.data[:min(len(f.data), 64)]
		for j := 0; j+6 <= len(head); j++ {
			if w := head[j : j+6]; strings.Contains(lines[i], string(w)) || strings.Contains(lines[i], fmt.Sprintf("% x", w)) {
				t.Errorf("line %q quotes the file's bytes %q", lines[i], w)
				break
			}
		}
	}
	if !strings.Contains(stderr, fmt.Sprintf("%d of %d file(s) could not be read", len(files), len(files))) {
		t.Errorf("stderr %q lacks the summary", stderr)
	}
}
