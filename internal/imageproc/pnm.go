package imageproc

import (
	"errors"
	"fmt"
	"image"
	"image/color"
)

// pnmHeader is the header of a binary Netpbm image: P5 (grey) or P6 (RGB).
type pnmHeader struct {
	channels, w, h, maxval int
	offset                 int // first byte of the pixels
}

// pnmIsSignature reports whether data starts like a binary PGM or PPM file.
func pnmIsSignature(data []byte) bool {
	return len(data) >= 3 && data[0] == 'P' && (data[1] == '5' || data[1] == '6') && pnmSpace(data[2])
}

func pnmSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// pnmParseHeader reads the magic number, width, height and maxval, skipping
// comments; exactly one whitespace byte separates the header from the pixels.
func pnmParseHeader(data []byte) (pnmHeader, error) {
	h := pnmHeader{channels: 1}
	if !pnmIsSignature(data) {
		return h, &FormatError{Format: "pnm", Err: errors.New("not a binary PGM/PPM file")}
	}
	if data[1] == '6' {
		h.channels = 3
	}
	i := 2
	var vals [3]int
	for k := range vals {
		for i < len(data) && (pnmSpace(data[i]) || data[i] == '#') {
			if data[i] == '#' {
				for i < len(data) && data[i] != '\n' {
					i++
				}
				continue
			}
			i++
		}
		start := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' && i-start < 9 {
			vals[k] = vals[k]*10 + int(data[i]-'0')
			i++
		}
		if i == start || i >= len(data) || !pnmSpace(data[i]) {
			return h, errors.New("pnm header: bad or truncated number")
		}
	}
	h.w, h.h, h.maxval, h.offset = vals[0], vals[1], vals[2], i+1
	if h.w <= 0 || h.h <= 0 || h.maxval <= 0 || h.maxval > 65535 {
		return h, fmt.Errorf("pnm header: %d×%d, maxval %d", h.w, h.h, h.maxval)
	}
	return h, nil
}

// pnmConfig returns the dimensions of a binary PGM/PPM image.
func pnmConfig(data []byte) (image.Config, error) {
	h, err := pnmParseHeader(data)
	if err != nil {
		return image.Config{}, err
	}
	model := color.GrayModel
	if h.channels == 3 {
		model = color.RGBAModel
	}
	return image.Config{ColorModel: model, Width: h.w, Height: h.h}, nil
}

// pnmDecode decodes a binary PGM (to *image.Gray) or PPM (to *image.RGBA);
// 16-bit samples keep their high byte after scaling to 0–255.
func pnmDecode(data []byte) (image.Image, error) {
	h, err := pnmParseHeader(data)
	if err != nil {
		return nil, err
	}
	bps := 1
	if h.maxval > 255 {
		bps = 2
	}
	need := int64(h.w) * int64(h.h) * int64(h.channels) * int64(bps)
	if int64(len(data)-h.offset) < need {
		return nil, fmt.Errorf("pnm: %d bytes of pixels, want %d", len(data)-h.offset, need)
	}
	px := data[h.offset:]
	sample := func(i int) uint8 {
		v := int(px[i])
		if bps == 2 {
			v = int(px[2*i])<<8 | int(px[2*i+1])
		}
		return uint8(min(v, h.maxval) * 255 / h.maxval)
	}
	rect := image.Rect(0, 0, h.w, h.h)
	n := h.w * h.h
	if h.channels == 1 {
		m := image.NewGray(rect)
		for i := range n {
			m.Pix[i] = sample(i)
		}
		return m, nil
	}
	m := image.NewRGBA(rect)
	for i := range n {
		m.Pix[4*i], m.Pix[4*i+1], m.Pix[4*i+2], m.Pix[4*i+3] = sample(3*i), sample(3*i+1), sample(3*i+2), 255
	}
	return m, nil
}
