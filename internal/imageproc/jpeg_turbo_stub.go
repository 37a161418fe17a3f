//go:build !(cgo && jpegturbo)

package imageproc

// FastJPEG reports whether JPEGs are decoded by libjpeg-turbo. It is false in
// this build: build with cgo enabled and the jpegturbo tag to get the fast path.
func FastJPEG() bool { return false }

// turboDecodeJPEG always asks for the pure-Go fallback in this build.
func turboDecodeJPEG(data []byte, w, h, factor, orientation int) (img *RGB, fallback bool, err error) {
	return nil, true, nil
}
