//go:build !(cgo && heif)

package imageproc

// HEIF reports whether HEIC photos are decoded (with libheif). It is false
// in this build: build with cgo enabled and the heif tag to decode them.
// Without it, HEIC and AVIF files are recognised and refused with a
// *FormatError that says so.
func HEIF() bool { return false }

func heifCanDecode(format string) bool { return false }

func heifAV1() bool { return false }

// heifDecode refuses HEIC and AVIF in this build.
func heifDecode(data []byte, format string, lim Limits, opt DecodeOptions) (*Decoded, error) {
	return nil, &FormatError{Format: format}
}
