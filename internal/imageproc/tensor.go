package imageproc

import "fmt"

// ChannelOrder is how pixels are laid out in a network input tensor.
type ChannelOrder string

// Channel orders accepted by ToTensor.
const (
	OrderRGB  ChannelOrder = "RGB"
	OrderBGR  ChannelOrder = "BGR"
	OrderGray ChannelOrder = "GRAY" // ITU-R BT.601 luma: 0.299 R + 0.587 G + 0.114 B
)

// ToTensor writes src into dst as a planar (CHW) float32 tensor with each
// value v mapped to (v-mean)/std. dst must hold W*H*C values, where C is 1
// for OrderGray and 3 otherwise.
func ToTensor(src *RGB, order ChannelOrder, mean, std float32, dst []float32) error {
	n := src.W * src.H
	ch := 3
	if order == OrderGray {
		ch = 1
	}
	if len(dst) != n*ch {
		return fmt.Errorf("imageproc: tensor holds %d values, want %d", len(dst), n*ch)
	}
	inv := 1 / std
	p := src.Pix
	switch order {
	case OrderRGB, OrderBGR:
		r, g, b := dst[:n], dst[n:2*n], dst[2*n:]
		if order == OrderBGR {
			r, b = b, r
		}
		for i := range n {
			r[i] = (float32(p[3*i]) - mean) * inv
			g[i] = (float32(p[3*i+1]) - mean) * inv
			b[i] = (float32(p[3*i+2]) - mean) * inv
		}
	case OrderGray:
		for i := range n {
			y := 0.299*float32(p[3*i]) + 0.587*float32(p[3*i+1]) + 0.114*float32(p[3*i+2])
			dst[i] = (y - mean) * inv
		}
	default:
		return fmt.Errorf("imageproc: unknown channel order %q", order)
	}
	return nil
}

// Gray returns the BT.601 luma of every pixel, row-major.
func Gray(src *RGB) []float32 {
	out := make([]float32, src.W*src.H)
	_ = ToTensor(src, OrderGray, 0, 1, out) // cannot fail: sizes match and the order is known
	return out
}
