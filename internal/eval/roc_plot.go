package eval

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Plot geometry and colours.
const (
	plotW, plotH = 800, 600
	plotLeft     = 100 // plot area, in pixels
	plotRight    = 770
	plotTop      = 84
	plotBottom   = 500
)

var (
	colAxis  = color.RGBA{0x20, 0x20, 0x20, 0xff}
	colMajor = color.RGBA{0xc8, 0xc8, 0xc8, 0xff}
	colMinor = color.RGBA{0xea, 0xea, 0xea, 0xff}
	colCurve = color.RGBA{0x1f, 0x5f, 0xbf, 0xff}
	colMark  = color.RGBA{0xd0, 0x30, 0x20, 0xff}
)

// WriteROCPNG draws TAR against FAR (log-scale FAR axis from 1e-4 or
// 1/negatives to 1) with a title, axis labels, grid lines and a legend line
// giving accuracy and TAR@FAR=1e-3, as an 800×600 PNG. The curve follows the
// conventions of Verify (failed negative pairs always accepted, failed
// positive pairs never); the FAR=1e-3 operating point is marked in red.
func WriteROCPNG(w io.Writer, title string, scores []Score, v Verification) error {
	r := rocCurve(scores)
	if r.pos == 0 || r.neg == 0 {
		return errors.New("write roc png: need both matched and mismatched pairs")
	}
	// X axis: whole decades from 10^lo (1e-4, or 1/negatives when there
	// are fewer than 10,000 negatives) to 1.
	lo := int(math.Floor(math.Log10(math.Max(1e-4, 1/float64(r.neg))) + 1e-9))
	lo = min(lo, -1)
	xOf := func(far float64) float64 {
		return plotLeft + (math.Log10(far)-float64(lo))/float64(-lo)*(plotRight-plotLeft)
	}
	yOf := func(tar float64) float64 {
		return plotBottom - tar*(plotBottom-plotTop)
	}

	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	// Grid.
	for d := lo; d < 0; d++ {
		for m := 2; m <= 9; m++ {
			x := xOf(float64(m) * math.Pow10(d))
			line(img, x, plotTop, x, plotBottom, 1, colMinor)
		}
	}
	for d := lo; d <= 0; d++ {
		x := xOf(math.Pow10(d))
		line(img, x, plotTop, x, plotBottom, 1, colMajor)
		label := fmt.Sprintf("1e%d", d)
		if d == 0 {
			label = "1"
		}
		text(img, label, int(x), plotBottom+8, 2, colAxis, 0.5, 0)
	}
	for i := 0; i <= 10; i++ {
		y := yOf(float64(i) / 10)
		c := colMinor
		if i%2 == 0 {
			c = colMajor
			text(img, fmt.Sprintf("%.1f", float64(i)/10), plotLeft-8, int(y), 2, colAxis, 1, 0.5)
		}
		line(img, plotLeft, y, plotRight, y, 1, c)
	}

	// Frame, below the curve so that a curve along TAR = 1 stays visible.
	line(img, plotLeft, plotTop, plotRight, plotTop, 1.5, colAxis)
	line(img, plotLeft, plotBottom, plotRight, plotBottom, 1.5, colAxis)
	line(img, plotLeft, plotTop, plotLeft, plotBottom, 1.5, colAxis)
	line(img, plotRight, plotTop, plotRight, plotBottom, 1.5, colAxis)

	// Curve: ROC points with FAR >= 10^lo, the first one interpolated at
	// the left edge.
	xmin := math.Pow10(lo)
	var px, py []float64
	prevFar, prevTar := r.rate(r.pts[0])
	for i, p := range r.pts {
		far, tar := r.rate(p)
		if far < xmin {
			prevFar, prevTar = far, tar
			continue
		}
		if len(px) == 0 {
			t0 := tar
			if i > 0 && far > prevFar {
				t0 = prevTar + (tar-prevTar)*(xmin-prevFar)/(far-prevFar)
			}
			if far > xmin {
				px, py = append(px, xOf(xmin)), append(py, yOf(t0))
			}
		}
		px, py = append(px, xOf(far)), append(py, yOf(tar))
	}
	for i := 1; i < len(px); i++ {
		line(img, px[i-1], py[i-1], px[i], py[i], 2.5, colCurve)
	}

	// FAR = 1e-3 operating point.
	tar3, ok := v.TARAtFAR["1e-3"]
	if ok && lo <= -3 {
		x := xOf(1e-3)
		for y := float64(plotTop); y < plotBottom; y += 12 {
			line(img, x, y, x, math.Min(y+6, plotBottom), 1, colMark)
		}
		disc(img, x, yOf(tar3), 5, colMark)
	}

	// Title and axis labels.
	text(img, title, plotW/2, 10, 2, colAxis, 0.5, 0)
	text(img, "False accept rate (FAR, log scale)", (plotLeft+plotRight)/2, plotBottom+48, 2, colAxis, 0.5, 0)
	textUp(img, "True accept rate (TAR)", 14, (plotTop+plotBottom)/2, 2, colAxis)

	// Legend line, centred between the title and the plot area.
	legend := fmt.Sprintf("accuracy %.2f%% +/- %.2f", 100*v.Accuracy, 100*v.AccuracyStd)
	if ok {
		legend += fmt.Sprintf("   TAR@FAR=1e-3: %.2f%%", 100*tar3)
	}
	lw := 50 + 10 + 2*textWidth(legend)
	lx, ly := (plotW-lw)/2, float64(plotTop-22)
	line(img, float64(lx), ly, float64(lx+50), ly, 2.5, colCurve)
	text(img, legend, lx+60, int(ly), 2, colAxis, 0, 0.5)

	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("write roc png: %w", err)
	}
	return nil
}

// disc fills a disc of radius r centred on (cx, cy).
func disc(img *image.RGBA, cx, cy, r float64, c color.RGBA) {
	b := img.Bounds()
	for y := int(math.Floor(cy - r)); y <= int(math.Ceil(cy+r)); y++ {
		for x := int(math.Floor(cx - r)); x <= int(math.Ceil(cx+r)); x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			if dx*dx+dy*dy <= r*r && image.Pt(x, y).In(b) {
				img.SetRGBA(x, y, c)
			}
		}
	}
}

// line draws a segment of the given width by stamping discs along it.
func line(img *image.RGBA, x0, y0, x1, y1, width float64, c color.RGBA) {
	r := width / 2
	n := int(math.Ceil(math.Hypot(x1-x0, y1-y0)*2)) + 1
	if width <= 1 {
		// Hairline: one pixel per step.
		b := img.Bounds()
		for i := 0; i <= n; i++ {
			t := float64(i) / float64(n)
			p := image.Pt(int(x0+t*(x1-x0)), int(y0+t*(y1-y0)))
			if p.In(b) {
				img.SetRGBA(p.X, p.Y, c)
			}
		}
		return
	}
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		disc(img, x0+t*(x1-x0), y0+t*(y1-y0), r, c)
	}
}

// textWidth returns the width in pixels of s in basicfont.Face7x13.
func textWidth(s string) int {
	return font.MeasureString(basicfont.Face7x13, s).Ceil()
}

// textMask renders s in basicfont.Face7x13 as an alpha mask.
func textMask(s string) *image.Alpha {
	f := basicfont.Face7x13
	m := image.NewAlpha(image.Rect(0, 0, max(textWidth(s), 1), f.Height))
	d := font.Drawer{Dst: m, Src: image.Opaque, Face: f, Dot: fixed.P(0, f.Ascent)}
	d.DrawString(s)
	return m
}

// blit paints colour c through mask m, scaled by an integer factor, with its
// top-left corner at (x, y).
func blit(img *image.RGBA, m *image.Alpha, x, y, scale int, c color.RGBA) {
	b := m.Bounds()
	big := image.NewAlpha(image.Rect(0, 0, b.Dx()*scale, b.Dy()*scale))
	for yy := range big.Rect.Dy() {
		for xx := range big.Rect.Dx() {
			big.SetAlpha(xx, yy, m.AlphaAt(b.Min.X+xx/scale, b.Min.Y+yy/scale))
		}
	}
	r := big.Rect.Add(image.Pt(x, y))
	draw.DrawMask(img, r, image.NewUniform(c), image.Point{}, big, image.Point{}, draw.Over)
}

// text draws s at (x, y) scaled by scale; ax and ay (0..1) place the anchor:
// 0,0 = top-left corner of the text, 0.5,0.5 = centre, 1,0 = top-right.
func text(img *image.RGBA, s string, x, y, scale int, c color.RGBA, ax, ay float64) {
	m := textMask(s)
	w, h := m.Rect.Dx()*scale, m.Rect.Dy()*scale
	blit(img, m, x-int(ax*float64(w)), y-int(ay*float64(h)), scale, c)
}

// textUp draws s reading upwards (rotated 90° anticlockwise), its left edge
// at x and centred vertically on y.
func textUp(img *image.RGBA, s string, x, y, scale int, c color.RGBA) {
	m := textMask(s)
	w, h := m.Rect.Dx(), m.Rect.Dy()
	rot := image.NewAlpha(image.Rect(0, 0, h, w))
	for yy := range h {
		for xx := range w {
			rot.SetAlpha(yy, w-1-xx, m.AlphaAt(xx, yy))
		}
	}
	blit(img, rot, x, y-w*scale/2, scale, c)
}
