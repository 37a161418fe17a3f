package server

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"net/http"
	"path/filepath"

	"golang.org/x/image/draw"

	"gabarit/internal/app"
	"gabarit/internal/imageproc"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
)

// cropSide is the longer side of a served crop, in pixels.
const cropSide = 256

// crop reads a face's image from its source (gabarit keeps no photos) and
// returns a JPEG of the face with a margin of a third of its size.
func (s *Server) crop(ctx context.Context, ref store.FaceRef) ([]byte, error) {
	src, err := s.cfg.Data.DB.Source(ctx, ref.SourceID)
	if err != nil {
		return nil, err
	}
	img, err := s.faceImage(ctx, src, ref)
	if err != nil {
		return nil, err
	}
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

// faceImage reads the picture a face was found in, from its source now: the
// image, or for a face of a video the frame at its time code, decoded and
// scaled as the ingest sampled it (so the stored box applies).
func (s *Server) faceImage(ctx context.Context, src store.Source, ref store.FaceRef) (*imageproc.RGB, error) {
	if src.Kind == store.KindVideo {
		if ref.TimeCode == nil {
			return nil, newError(http.StatusNotFound, "no_still", "this face of a video has no time code to show")
		}
		vs, err := video.New(src.Locator, video.Options{})
		if err == nil {
			var img *imageproc.RGB
			if img, err = vs.FrameAt(ctx, filepath.Join(vs.Root(), filepath.FromSlash(ref.Locator)), *ref.TimeCode); err == nil {
				return img, nil
			}
		}
		s.log.Warn("read a video frame for a crop", "face", ref.ID, "err", err)
		return nil, newError(http.StatusNotFound, "image_gone", "the video can no longer be read from its source")
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
	return dec.Img, nil
}
