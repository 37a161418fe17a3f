package server

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"net/http"

	"golang.org/x/image/draw"

	"gabarit/internal/app"
	"gabarit/internal/imageproc"
	"gabarit/internal/store"
)

// cropSide is the longer side of a served crop, in pixels.
const cropSide = 256

// crop reads a face's image from its source (gabarit keeps no photos) and
// returns a JPEG of the face with a margin of a third of its size. Faces
// of videos have no still image to crop.
func (s *Server) crop(ctx context.Context, ref store.FaceRef) ([]byte, error) {
	src, err := s.cfg.Data.DB.Source(ctx, ref.SourceID)
	if err != nil {
		return nil, err
	}
	if src.Kind == store.KindVideo {
		return nil, newError(http.StatusNotFound, "no_still", "faces found in videos have no still image to show; see the time code")
	}
	data, err := app.ReadSourceImage(ctx, src, ref.Locator)
	if err != nil {
		s.log.Warn("read image for a crop", "face", ref.ID, "err", err)
		return nil, newError(http.StatusNotFound, "image_gone", "the image can no longer be read from its source")
	}
	dec, err := imageproc.Decode(data, imageproc.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	img := dec.Img
	b := ref.Box
	m := math.Max(b.W, b.H) / 3
	r := image.Rect(int(b.X-m), int(b.Y-m), int(math.Ceil(b.X+b.W+m)), int(math.Ceil(b.Y+b.H+m))).
		Intersect(image.Rect(0, 0, img.W, img.H))
	if r.Empty() {
		return nil, newError(http.StatusNotFound, "image_gone", "the face lies outside its image as read now")
	}
	full := img.Image()
	scale := math.Min(1, float64(cropSide)/float64(max(r.Dx(), r.Dy())))
	dst := image.NewRGBA(image.Rect(0, 0, max(1, int(float64(r.Dx())*scale)), max(1, int(float64(r.Dy())*scale))))
	draw.CatmullRom.Scale(dst, dst.Bounds(), full, r, draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
