package imageproc

import "fmt"

// RGB is an 8-bit, 3-channel image in R,G,B order, rows packed without padding.
type RGB struct {
	W, H int
	Pix  []byte // len(Pix) == W*H*3
}

// NewRGB allocates a black w×h image.
func NewRGB(w, h int) *RGB {
	return &RGB{W: w, H: h, Pix: make([]byte, w*h*3)}
}

// Validate reports whether the image's buffer matches its dimensions.
func (m *RGB) Validate() error {
	if m == nil || m.W <= 0 || m.H <= 0 || len(m.Pix) != m.W*m.H*3 {
		return fmt.Errorf("imageproc: malformed RGB image")
	}
	return nil
}
