package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"

	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/keyring"
	"gabarit/internal/membudget"
	"gabarit/internal/store"
)

// Probe crops: the face a search searched, cut from the probe photo and
// kept sealed with the search record, so that verifiers compare the
// candidates with what was searched. The photo itself is never kept.
const (
	// ProbeCropSide is the longer side of a probe crop, in pixels.
	ProbeCropSide = 256
	// ProbeCropMargin widens the face's box by this fraction of its longer
	// side on every side.
	ProbeCropMargin = 0.25
)

// ErrNoProbeCrop reports a search that keeps no probe crop: its probe had
// no face, or it was recorded before crops were kept.
var ErrNoProbeCrop = errors.New("this search keeps no crop of its probe face")

// Reserve runs fn, which decodes photo, while holding in the memory budget
// b what decoding photo at full size takes (nothing when b is nil): a photo
// decoded again after its analysis (a crop, a thumbnail) counts like one
// being analysed. ctx bounds the wait (membudget.WithMaxWait).
func Reserve(ctx context.Context, b *membudget.Budget, photo []byte, fn func() error) error {
	if b == nil {
		return fn()
	}
	need, err := imageproc.Estimate(photo, imageproc.DecodeOptions{Limits: imageproc.Limits{MaxDecodedBytes: b.Size()}})
	if err != nil {
		return err
	}
	release, err := b.Acquire(ctx, need)
	if err != nil {
		return err
	}
	defer release()
	return fn()
}

// budgetOf is the memory budget of model m, when it has one.
func budgetOf(m any) *membudget.Budget {
	if b, ok := m.(interface{ Budget() *membudget.Budget }); ok {
		return b.Budget()
	}
	return nil
}

// budgetedCrop is CropFace within budget b.
func budgetedCrop(ctx context.Context, b *membudget.Budget, photo []byte, box face.Box) (crop []byte, err error) {
	err = Reserve(ctx, b, photo, func() error {
		crop, err = CropFace(photo, box, ProbeCropMargin, ProbeCropSide)
		return err
	})
	return crop, err
}

// CropFace returns a JPEG of the box b of the encoded photo data (in the
// pixels of the photo after EXIF orientation, as the analyzer reports
// them), widened by margin times its longer side on every side, clipped
// to the photo and scaled so that its longer side is at most side. The
// photo is decoded at the coarsest scale that keeps at least 5/8 of side
// pixels across the crop (a JPEG is scaled in the DCT domain), and only
// the crop is resampled: a search pays a few milliseconds for it, not a
// full-size decode and conversion.
func CropFace(data []byte, b face.Box, margin float64, side int) ([]byte, error) {
	if !(b.W > 0 && b.H > 0) || math.IsInf(b.X+b.Y+b.W+b.H, 0) || math.IsNaN(b.X+b.Y+b.W+b.H) {
		return nil, fmt.Errorf("crop face: empty box %v", b)
	}
	m := math.Max(b.W, b.H) * margin
	regionSide := math.Max(b.W, b.H) + 2*m
	// The decoder may return the photo smaller, as long as the region
	// keeps at least 5/8 of side pixels.
	target := 0
	if least := float64(side) * 5 / 8; regionSide > least {
		// JPEG headers are read without decoding (image/jpeg is linked);
		// other formats are decoded at full size.
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
			target = int(math.Ceil(float64(max(cfg.Width, cfg.Height)) * least / regionSide))
		}
	}
	dec, err := imageproc.Decode(data, imageproc.DecodeOptions{TargetSide: target})
	if err != nil {
		return nil, fmt.Errorf("crop face: %w", err)
	}
	return EncodeCrop(dec.Img, b, float64(dec.Img.W)/float64(dec.Width), float64(dec.Img.H)/float64(dec.Height), margin, side)
}

// ErrCropOutside reports a face box that lies outside the picture it is
// cut from.
var ErrCropOutside = errors.New("the face lies outside its picture")

// EncodeCrop returns a JPEG of the box b of a picture (in the picture's
// pixels; img is the picture scaled by sx, sy), widened by margin times its
// longer side on every side, clipped to the picture and resampled so that
// its longer side is at most side pixels. Only the crop is resampled.
func EncodeCrop(img *imageproc.RGB, b face.Box, sx, sy, margin float64, side int) ([]byte, error) {
	m := math.Max(b.W, b.H) * margin
	r := image.Rect(int(math.Floor((b.X-m)*sx)), int(math.Floor((b.Y-m)*sy)),
		int(math.Ceil((b.X+b.W+m)*sx)), int(math.Ceil((b.Y+b.H+m)*sy))).
		Intersect(image.Rect(0, 0, img.W, img.H))
	if r.Empty() {
		return nil, fmt.Errorf("crop face: box %v: %w", b, ErrCropOutside)
	}
	scale := math.Min(1, float64(side)/float64(max(r.Dx(), r.Dy())))
	w, h := max(1, int(math.Round(float64(r.Dx())*scale))), max(1, int(math.Round(float64(r.Dy())*scale)))
	crop, err := imageproc.Warp(img, imageproc.Affine{scale, 0, -float64(r.Min.X) * scale, 0, scale, -float64(r.Min.Y) * scale}, w, h)
	if err != nil {
		return nil, fmt.Errorf("crop face: %w", err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, crop.Image(), &jpeg.Options{Quality: 88}); err != nil {
		return nil, fmt.Errorf("crop face: %w", err)
	}
	return buf.Bytes(), nil
}

// SealProbeCrop crops the face f from the probe photo (within the memory
// budget b, nil for none) and seals the crop with the search records' data
// key, bound to the probe's SHA-256 (which the search record keeps): the
// search.Engine's SealProbe.
func SealProbeCrop(ctx context.Context, b *membudget.Budget, keys *keyring.Keyring, probe []byte, f face.Face) ([]byte, error) {
	jpg, err := budgetedCrop(ctx, b, probe, f.Box)
	if err != nil {
		return nil, err
	}
	defer clear(jpg)
	sum := sha256.Sum256(probe)
	return keys.SealBytes(keyring.PurposeSearchRecord, sum[:], jpg)
}

// OpenProbeCrop returns the JPEG crop of the face sr searched, for its
// verifiers, or ErrNoProbeCrop when sr keeps none. Never log it: it is
// biometric data.
func OpenProbeCrop(_ context.Context, keys *keyring.Keyring, sr store.Search) ([]byte, error) {
	if len(sr.ProbeCrop) == 0 {
		return nil, ErrNoProbeCrop
	}
	jpg, err := keys.OpenBytes(keyring.PurposeSearchRecord, sr.ProbeSHA256[:], sr.ProbeCrop)
	if err != nil {
		return nil, fmt.Errorf("probe crop of search %d: %w", sr.ID, err)
	}
	return jpg, nil
}
