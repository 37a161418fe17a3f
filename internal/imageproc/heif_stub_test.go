//go:build !(cgo && heif)

package imageproc

import (
	"errors"
	"testing"
)

// decTestHEIFSeeds are, without libheif, HEIC and AVIF headers: Decode must
// refuse them with a *FormatError.
func decTestHEIFSeeds(testing.TB) [][]byte {
	return [][]byte{decTestFtyp("heic", "mif1", "heic"), decTestFtyp("avif", "mif1", "avif", "miaf")}
}

func TestHEIFStub(t *testing.T) {
	if HEIF() {
		t.Fatal("HEIF() is true without the heif tag")
	}
	for _, data := range decTestHEIFSeeds(t) {
		if _, err := Decode(data, DecodeOptions{}); !errors.As(err, new(*FormatError)) {
			t.Errorf("%q: %v, want a *FormatError", data[8:12], err)
		}
	}
}
