package imageproc

import (
	"fmt"
	"image"
)

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

// Image returns the image as an opaque *image.RGBA (for encoders).
func (m *RGB) Image() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i := range m.W * m.H {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = m.Pix[3*i], m.Pix[3*i+1], m.Pix[3*i+2], 255
	}
	return img
}
