package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"path/filepath"
	"testing"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// photoWithFace is a grey w×h PNG with a red square where the "face" is.
func photoWithFace(t *testing.T, w, h int, b face.Box) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{90, 90, 90, 255}
			if float64(x) >= b.X && float64(x) < b.X+b.W && float64(y) >= b.Y && float64(y) < b.Y+b.H {
				c = color.RGBA{220, 20, 20, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCropFace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		w, h         int
		box          face.Box
		wantW, wantH int
	}{
		// 100 px face, 25 px margin each side: 150×150, not scaled.
		{"small face", 640, 480, face.Box{X: 200, Y: 100, W: 100, H: 100}, 150, 150},
		// 400 px face: 600×600 region scaled to 256.
		{"large face", 1600, 1200, face.Box{X: 500, Y: 300, W: 400, H: 400}, 256, 256},
		// A face at the corner: the margin is clipped to the photo.
		{"at the corner", 640, 480, face.Box{X: 0, Y: 0, W: 100, H: 100}, 125, 125},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			jpg, err := CropFace(photoWithFace(t, tt.w, tt.h, tt.box), tt.box, ProbeCropMargin, ProbeCropSide)
			if err != nil {
				t.Fatal(err)
			}
			img, err := jpeg.Decode(bytes.NewReader(jpg))
			if err != nil {
				t.Fatalf("not a JPEG: %v", err)
			}
			if b := img.Bounds(); b.Dx() != tt.wantW || b.Dy() != tt.wantH {
				t.Errorf("crop %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.wantW, tt.wantH)
			}
			// The face's centre is in the crop, red.
			fx := (tt.box.X + tt.box.W/2 - max(0, tt.box.X-tt.box.W*ProbeCropMargin)) * float64(tt.wantW) /
				(min(float64(tt.w), tt.box.X+tt.box.W*(1+ProbeCropMargin)) - max(0, tt.box.X-tt.box.W*ProbeCropMargin))
			r, g, _, _ := img.At(int(fx), tt.wantH/2).RGBA()
			if r>>8 < 180 || g>>8 > 70 {
				t.Errorf("the face's centre is not in the crop: colour %d,%d", r>>8, g>>8)
			}
		})
	}
	if _, err := CropFace(photoWithFace(t, 64, 64, face.Box{}), face.Box{X: 100, Y: 100, W: 10, H: 10}, 0.25, 256); err == nil {
		t.Error("a box outside the photo was cropped")
	}
	if _, err := CropFace([]byte("not an image"), face.Box{W: 10, H: 10}, 0.25, 256); err == nil {
		t.Error("a non-image was cropped")
	}
}

func TestProbeCropSealed(t *testing.T) {
	t.Parallel()
	m, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	keys := keyring.New(m, nil) // sealed bytes need no key store
	t.Cleanup(func() { _ = keys.Close() })
	box := face.Box{X: 40, Y: 40, W: 60, H: 60}
	probe := photoWithFace(t, 200, 160, box)
	sealed, err := SealProbeCrop(context.Background(), nil, keys, probe, face.Face{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	want, err := CropFace(probe, box, ProbeCropMargin, ProbeCropSide)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, want[:32]) {
		t.Error("the sealed crop holds the JPEG in clear")
	}
	sr := store.Search{ID: 7, ProbeSHA256: sha256.Sum256(probe), ProbeCrop: sealed}
	got, err := OpenProbeCrop(t.Context(), keys, sr)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("OpenProbeCrop = %d bytes, %v; want the %d-byte crop", len(got), err, len(want))
	}
	// Moved to another search record (another probe), it does not open.
	other := sr
	other.ProbeSHA256 = sha256.Sum256([]byte("another probe"))
	if _, err := OpenProbeCrop(t.Context(), keys, other); !errors.Is(err, keyring.ErrTampered) {
		t.Errorf("crop of another record: %v, want ErrTampered", err)
	}
	if _, err := OpenProbeCrop(t.Context(), keys, store.Search{ID: 8}); !errors.Is(err, ErrNoProbeCrop) {
		t.Errorf("search without a crop: %v, want ErrNoProbeCrop", err)
	}
}
