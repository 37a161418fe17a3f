package main

import (
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"gabarit/internal/imageproc"
	"gabarit/internal/pipeline"
)

// landmarkColours tell the five points apart: eyes red and blue, nose
// yellow, mouth corners magenta and cyan.
var landmarkColours = []color.RGBA{{255, 0, 0, 255}, {0, 0, 255, 255}, {255, 255, 0, 255}, {255, 0, 255, 255}, {0, 255, 255, 255}}

// drawFaces writes a PNG of the decoded image with each face's box (green,
// brighter with quality) and landmarks, into dir, named after path.
func drawFaces(dir, path string, r *pipeline.Result) error {
	d, err := imageproc.DecodeFile(path, imageproc.DecodeOptions{Limits: imageproc.DefaultLimits, TargetSide: 1600})
	if err != nil {
		return err
	}
	m := d.Img
	img := m.Image()
	s := float64(m.W) / float64(d.Width)
	thick := max(1, m.W/400)
	rect := func(x0, y0, x1, y1 int, c color.RGBA) {
		for y := max(y0, 0); y <= min(y1, m.H-1); y++ {
			for x := max(x0, 0); x <= min(x1, m.W-1); x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	for _, f := range r.Faces {
		g := uint8(80 + 175*f.Quality)
		c := color.RGBA{0, g, 0, 255}
		x0, y0 := int(f.Box.X*s), int(f.Box.Y*s)
		x1, y1 := int((f.Box.X+f.Box.W)*s), int((f.Box.Y+f.Box.H)*s)
		rect(x0, y0, x1, y0+thick, c)
		rect(x0, y1-thick, x1, y1, c)
		rect(x0, y0, x0+thick, y1, c)
		rect(x1-thick, y0, x1, y1, c)
		for k, p := range f.Landmarks {
			px, py := int(p.X*s), int(p.Y*s)
			rect(px-2*thick, py-2*thick, px+2*thick, py+2*thick, landmarkColours[k])
		}
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)) + ".faces.png"
	out, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
