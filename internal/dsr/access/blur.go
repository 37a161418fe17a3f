package access

import (
	"math"

	"gabarit/internal/imageproc"
)

const (
	// pixelCells is the most blocks, across and down, that an obscured face
	// keeps: each block is replaced by its mean colour, so at most 8×8 colours
	// of another person's face survive, too few to recognise anyone.
	pixelCells = 8
	// otherMargin enlarges each box to obscure by this fraction of its width
	// and height on every side (detector boxes are tight on the face).
	otherMargin = 0.10
	// cropMargin enlarges the person's own box by this fraction of its longer
	// side on every side when cropping their face.
	cropMargin = 0.25
	// sameFaceIoU is the intersection over union above which a box in Others
	// is taken to be one of the person's own boxes in the same image.
	sameFaceIoU = 0.5
)

// rect is a half-open pixel rectangle [x0, x1) × [y0, y1).
type rect struct{ x0, y0, x1, y1 int }

func (r rect) empty() bool { return r.x1 <= r.x0 || r.y1 <= r.y0 }

func (r rect) contains(x, y int) bool { return x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1 }

// pixelRect returns the pixels covered by the box (x, y, w, h), enlarged by
// margin×w and margin×h on each side, rounded outwards and clipped to a w×h
// image. Non-finite or non-positive boxes give an empty rect.
func pixelRect(b [4]float64, mx, my float64, imgW, imgH int) rect {
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return rect{}
		}
	}
	if b[2] <= 0 || b[3] <= 0 {
		return rect{}
	}
	x0 := math.Floor(b[0] - mx)
	y0 := math.Floor(b[1] - my)
	x1 := math.Ceil(b[0] + b[2] + mx)
	y1 := math.Ceil(b[1] + b[3] + my)
	clip := func(v float64, hi int) int { return int(math.Max(0, math.Min(v, float64(hi)))) }
	return rect{clip(x0, imgW), clip(y0, imgH), clip(x1, imgW), clip(y1, imgH)}
}

// iou returns the intersection over union of two boxes (x, y, w, h).
func iou(a, b [4]float64) float64 {
	ix := math.Min(a[0]+a[2], b[0]+b[2]) - math.Max(a[0], b[0])
	iy := math.Min(a[1]+a[3], b[1]+b[3]) - math.Max(a[1], b[1])
	if !(ix > 0 && iy > 0) {
		return 0
	}
	inter := ix * iy
	union := a[2]*a[3] + b[2]*b[3] - inter
	if !(union > 0) {
		return 0
	}
	return inter / union
}

// ObscureOthers irreversibly obscures other people's faces in img, as
// access packages and the verification screen show them: each box of
// others (x, y, w, h in img's pixels), widened by otherMargin on every side,
// is obscured, unless it is one of the boxes of own (IoU at least
// sameFaceIoU) or a box already obscured; the pixels inside own boxes stay
// as they are. It returns how many boxes it obscured.
func ObscureOthers(img *imageproc.RGB, own, others [][4]float64) int {
	var keep []rect
	for _, b := range own {
		keep = append(keep, pixelRect(b, 0, 0, img.W, img.H))
	}
	var done [][4]float64
others:
	for _, o := range others {
		for _, b := range own {
			if iou(o, b) >= sameFaceIoU {
				continue others
			}
		}
		for _, d := range done {
			if d == o {
				continue others
			}
		}
		done = append(done, o)
		obscure(img, pixelRect(o, otherMargin*o[2], otherMargin*o[3], img.W, img.H), keep)
	}
	return len(done)
}

// obscure irreversibly destroys the content of r in img: the region is cut
// into at most pixelCells×pixelCells blocks, each filled with its mean colour,
// and the result is box-blurred (within r) with a radius of half a block so
// that not even the block edges remain. Pixels inside any of keep are left as
// they were.
func obscure(img *imageproc.RGB, r rect, keep []rect) {
	if r.empty() {
		return
	}
	w, h := r.x1-r.x0, r.y1-r.y0
	nx, ny := min(pixelCells, w), min(pixelCells, h)
	buf := make([]float64, w*h*3)
	// Pixelate: block i spans columns [i*w/nx, (i+1)*w/nx).
	for j := range ny {
		by0, by1 := j*h/ny, (j+1)*h/ny
		for i := range nx {
			bx0, bx1 := i*w/nx, (i+1)*w/nx
			var sum [3]float64
			for y := by0; y < by1; y++ {
				row := ((r.y0+y)*img.W + r.x0) * 3
				for x := bx0; x < bx1; x++ {
					p := img.Pix[row+3*x : row+3*x+3]
					sum[0] += float64(p[0])
					sum[1] += float64(p[1])
					sum[2] += float64(p[2])
				}
			}
			n := float64((by1 - by0) * (bx1 - bx0))
			for y := by0; y < by1; y++ {
				for x := bx0; x < bx1; x++ {
					o := (y*w + x) * 3
					buf[o], buf[o+1], buf[o+2] = sum[0]/n, sum[1]/n, sum[2]/n
				}
			}
		}
	}
	// Blur: a separable box filter, clamped to the region.
	boxBlur(buf, w, h, max(1, w/nx/2), max(1, h/ny/2))
	for y := range h {
		for x := range w {
			px, py := r.x0+x, r.y0+y
			kept := false
			for _, k := range keep {
				if k.contains(px, py) {
					kept = true
					break
				}
			}
			if kept {
				continue
			}
			o := (y*w + x) * 3
			d := (py*img.W + px) * 3
			for c := range 3 {
				img.Pix[d+c] = uint8(math.Round(math.Max(0, math.Min(255, buf[o+c]))))
			}
		}
	}
}

// boxBlur replaces every value of the w×h, 3-channel buf by the mean of the
// (2rx+1)×(2ry+1) window around it, the window clipped to the buffer.
func boxBlur(buf []float64, w, h, rx, ry int) {
	line := make([]float64, max(w, h)*3)
	prefix := make([]float64, (max(w, h)+1)*3)
	pass := func(n, radius int, at func(i int) int) {
		for i := range n {
			o := at(i)
			for c := range 3 {
				prefix[(i+1)*3+c] = prefix[i*3+c] + buf[o+c]
			}
		}
		for i := range n {
			lo, hi := max(0, i-radius), min(n, i+radius+1)
			for c := range 3 {
				line[i*3+c] = (prefix[hi*3+c] - prefix[lo*3+c]) / float64(hi-lo)
			}
		}
		for i := range n {
			o := at(i)
			copy(buf[o:o+3], line[i*3:i*3+3])
		}
	}
	for y := range h {
		pass(w, rx, func(x int) int { return (y*w + x) * 3 })
	}
	for x := range w {
		pass(h, ry, func(y int) int { return (y*w + x) * 3 })
	}
}
