package imageproc

import (
	"errors"
	"testing"
)

func TestPNM(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		w, h    int
		pix     []byte // RGB of the decoded image
		wantErr error
	}{
		{name: "pgm", data: "P5\n2 1\n255\n\x00\xff", w: 2, h: 1, pix: []byte{0, 0, 0, 255, 255, 255}},
		{name: "pgm with comment", data: "P5 # made by hand\n# another\n1 1 15\n\x0f", w: 1, h: 1, pix: []byte{255, 255, 255}},
		{name: "ppm", data: "P6\n1 1\n255\n\x01\x02\x03", w: 1, h: 1, pix: []byte{1, 2, 3}},
		{name: "16-bit pgm", data: "P5\n1 1\n65535\n\x80\x00", w: 1, h: 1, pix: []byte{127, 127, 127}},
		{name: "truncated pixels", data: "P5\n2 2\n255\n\x00", wantErr: ErrCorrupt},
		{name: "truncated header", data: "P5\n2 ", wantErr: ErrCorrupt},
		{name: "zero width", data: "P5\n0 2\n255\n", wantErr: ErrCorrupt},
		{name: "maxval too big", data: "P5\n1 1\n70000\n\x00\x00", wantErr: ErrCorrupt},
		{name: "huge declared size", data: "P5\n99999 99999\n255\n\x00", wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := Decode([]byte(tt.data), DecodeOptions{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Format != "pnm" || d.Width != tt.w || d.Height != tt.h || string(d.Img.Pix) != string(tt.pix) {
				t.Errorf("got %s %d×%d %v, want pnm %d×%d %v", d.Format, d.Width, d.Height, d.Img.Pix, tt.w, tt.h, tt.pix)
			}
		})
	}
}
