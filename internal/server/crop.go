package server

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"net/http"
	"path/filepath"

	"golang.org/x/image/draw"

	"gabarit/internal/app"
	"gabarit/internal/dsr/access"
	"gabarit/internal/imageproc"
	"gabarit/internal/membudget"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
)

// cropSide is the longer side of a served crop, in pixels.
const cropSide = 256

// crop reads a face's image from its source (gabarit keeps no photos) and
// returns a JPEG of the face with a margin of a third of its size.
func (s *Server) crop(ctx context.Context, ref store.FaceRef) ([]byte, error) {
	img, err := s.faceImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	b, err := app.EncodeCrop(img, ref.Box, 1, 1, 1.0/3, cropSide)
	if errors.Is(err, app.ErrCropOutside) {
		return nil, newError(http.StatusNotFound, "image_gone", "the face lies outside its image as read now")
	}
	return b, err
}

// faceImage reads the picture a face was found in, from its source now: the
// image, or for a face of a video the frame at its time code, decoded and
// scaled as the ingest sampled it (so the stored box applies).
func (s *Server) faceImage(ctx context.Context, ref store.FaceRef) (*imageproc.RGB, error) {
	src, err := s.cfg.Data.DB.Source(ctx, ref.SourceID)
	if err != nil {
		return nil, err
	}
	if src.Kind == store.KindVideo {
		if ref.TimeCode == nil {
			return nil, newError(http.StatusNotFound, "no_still", "this face of a video has no time code to show")
		}
		// The frame comes back at the size the ingest sampled it (the
		// image's stored size): that, with its conversion, is held in
		// the memory budget while ffmpeg decodes it.
		if s.cfg.Budget != nil {
			im, err := s.cfg.Data.DB.Image(ctx, ref.ImageID)
			if err != nil {
				return nil, err
			}
			release, err := s.cfg.Budget.Acquire(membudget.WithMaxWait(ctx, s.cfg.BudgetWait), 6*int64(im.Width)*int64(im.Height))
			if err != nil {
				return nil, err
			}
			defer release()
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
	// Decoding a stored photo again takes memory like decoding an upload:
	// it waits for its share of the budget, like the analyses, and holds
	// it while it decodes (what it returns is the size of the RGB image,
	// which the caller only resamples).
	var dec *imageproc.Decoded
	err = s.reserve(ctx, data, func() error {
		var err error
		dec, err = imageproc.Decode(data, imageproc.DecodeOptions{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return dec.Img, nil
}

// contextSide is the longer side of a served whole image, in pixels.
const contextSide = 1280

// boxedImage reads a face's image from its source (for a face of a video,
// the frame at its time code) and returns a JPEG of the whole picture,
// at most contextSide pixels on its longer side, with the face boxed and
// every other face found in it pixelated: the verifier sees where the face
// is, not who else was there.
func (s *Server) boxedImage(ctx context.Context, ref store.FaceRef) ([]byte, error) {
	img, err := s.faceImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	faces, err := s.cfg.Data.DB.Faces(ctx, ref.ImageID)
	if err != nil {
		return nil, err
	}
	var others [][4]float64
	for _, f := range faces {
		sameFrame := (f.TimeCode == nil) == (ref.TimeCode == nil) && (f.TimeCode == nil || *f.TimeCode == *ref.TimeCode)
		if f.ID != ref.ID && sameFrame {
			others = append(others, [4]float64{f.Box.X, f.Box.Y, f.Box.W, f.Box.H})
		}
	}
	access.ObscureOthers(img, [][4]float64{{ref.Box.X, ref.Box.Y, ref.Box.W, ref.Box.H}}, others)
	scale := math.Min(1, float64(contextSide)/float64(max(img.W, img.H)))
	dst := image.NewRGBA(image.Rect(0, 0, max(1, int(float64(img.W)*scale)), max(1, int(float64(img.H)*scale))))
	draw.BiLinear.Scale(dst, dst.Bounds(), img.Image(), image.Rect(0, 0, img.W, img.H), draw.Src, nil)
	b := ref.Box
	r := image.Rect(int(b.X*scale), int(b.Y*scale), int(math.Ceil((b.X+b.W)*scale)), int(math.Ceil((b.Y+b.H)*scale)))
	t := max(2, max(dst.Bounds().Dx(), dst.Bounds().Dy())/300)
	frame(dst, r.Inset(-t-1), 1, color.RGBA{0, 0, 0, 255})
	frame(dst, r.Inset(-t), t, color.RGBA{255, 210, 63, 255})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// frame draws the outline of r, t pixels thick inwards, in c.
func frame(dst *image.RGBA, r image.Rectangle, t int, c color.RGBA) {
	u := image.NewUniform(c)
	for _, side := range []image.Rectangle{
		image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+t), image.Rect(r.Min.X, r.Max.Y-t, r.Max.X, r.Max.Y),
		image.Rect(r.Min.X, r.Min.Y, r.Min.X+t, r.Max.Y), image.Rect(r.Max.X-t, r.Min.Y, r.Max.X, r.Max.Y),
	} {
		draw.Draw(dst, side.Intersect(dst.Bounds()), u, image.Point{}, draw.Src)
	}
}
