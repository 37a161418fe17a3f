package imageproc

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// exifTestTIFF builds a TIFF structure whose IFD0 holds a single entry: the
// orientation tag with the given type and value (and an unrelated tag before
// it, so the parser has to walk the directory).
func exifTestTIFF(bigEndian bool, typ uint16, value uint32) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	hdr := []byte("II*\x00")
	if bigEndian {
		bo, hdr = binary.BigEndian, []byte("MM\x00*")
	}
	b := append([]byte{}, hdr...)
	b = bo.AppendUint32(b, 8) // IFD0 right after the header
	b = bo.AppendUint16(b, 2) // two entries
	// ImageDescription-like filler entry (tag 0x010E, ASCII, 4 bytes inline).
	b = bo.AppendUint16(b, 0x010E)
	b = bo.AppendUint16(b, 2)
	b = bo.AppendUint32(b, 4)
	b = append(b, 'a', 'b', 'c', 0)
	// Orientation.
	b = bo.AppendUint16(b, exifTagOrientation)
	b = bo.AppendUint16(b, typ)
	b = bo.AppendUint32(b, 1)
	if typ == 3 {
		b = bo.AppendUint16(b, uint16(value))
		b = append(b, 0, 0)
	} else {
		b = bo.AppendUint32(b, value)
	}
	return bo.AppendUint32(b, 0) // no next IFD
}

// exifTestSpliceAPP1 inserts an APP1 Exif segment holding tiff right after
// the SOI marker of the JPEG jpg.
func exifTestSpliceAPP1(jpg, tiff []byte) []byte {
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestExifOrientation(t *testing.T) {
	tests := []struct {
		name string
		tiff []byte
		want int
	}{
		{name: "little endian short", tiff: exifTestTIFF(false, 3, 6), want: 6},
		{name: "big endian short", tiff: exifTestTIFF(true, 3, 8), want: 8},
		{name: "big endian long", tiff: exifTestTIFF(true, 4, 3), want: 3},
		{name: "little endian long", tiff: exifTestTIFF(false, 4, 5), want: 5},
		{name: "value 0", tiff: exifTestTIFF(false, 3, 0), want: 1},
		{name: "value 9", tiff: exifTestTIFF(true, 3, 9), want: 1},
		{name: "ascii type", tiff: exifTestTIFF(false, 2, 6), want: 1},
		{name: "empty", tiff: nil, want: 1},
		{name: "bad magic", tiff: append([]byte("XX*\x00"), exifTestTIFF(false, 3, 6)[4:]...), want: 1},
		{name: "ifd offset past end", tiff: []byte("II*\x00\xff\xff\xff\xff"), want: 1},
		{name: "ifd offset inside header", tiff: []byte("II*\x00\x02\x00\x00\x00\x00\x00"), want: 1},
		{name: "entry count past end", tiff: []byte("MM\x00*\x00\x00\x00\x08\xff\xff"), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exifOrientation(tt.tiff); got != tt.want {
				t.Errorf("exifOrientation = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestExifOrientationCount(t *testing.T) {
	b := exifTestTIFF(false, 3, 6)
	binary.LittleEndian.PutUint32(b[8+2+12+4:], 2) // count of the orientation entry
	if got := exifOrientation(b); got != 1 {
		t.Errorf("orientation with count 2 = %d, want 1", got)
	}
}

func TestExifOrientationTruncated(t *testing.T) {
	for _, bigEndian := range []bool{false, true} {
		full := exifTestTIFF(bigEndian, 3, 7)
		if got := exifOrientation(full); got != 7 {
			t.Fatalf("full structure: orientation %d, want 7", got)
		}
		// Every prefix must parse without panicking; those that still hold
		// the whole orientation entry must still find it.
		for n := range len(full) {
			got := exifOrientation(full[:n])
			if want := 1; n < 8+2+24 && got != want {
				t.Errorf("bigEndian=%v prefix %d: orientation %d, want %d", bigEndian, n, got, want)
			}
		}
	}
}

// exifTestJPEGHeader is a minimal JPEG header: SOI, APP0, SOF0 (w×h, 3
// components), SOS. Only the markers are meaningful.
func exifTestJPEGHeader(w, h int, extra ...[]byte) []byte {
	b := []byte{0xFF, 0xD8}
	b = append(b, 0xFF, 0xE0, 0x00, 0x07, 'J', 'F', 'I', 'F', 0)
	for _, e := range extra {
		b = append(b, e...)
	}
	sof := []byte{0xFF, 0xC0, 0x00, 17, 8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 3,
		1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	b = append(b, sof...)
	return append(b, 0xFF, 0xDA, 0x00, 0x02)
}

func TestExifScanJPEG(t *testing.T) {
	app1 := func(tiff []byte) []byte {
		return exifTestSpliceAPP1([]byte{0xFF, 0xD8}, tiff)[2:]
	}
	tests := []struct {
		name    string
		data    []byte
		want    exifJPEGInfo
		wantErr bool
	}{
		{name: "plain", data: exifTestJPEGHeader(640, 480),
			want: exifJPEGInfo{width: 640, height: 480, components: 3, orientation: 1}},
		{name: "exif", data: exifTestJPEGHeader(33, 65535, app1(exifTestTIFF(true, 3, 6))),
			want: exifJPEGInfo{width: 33, height: 65535, components: 3, orientation: 6}},
		{name: "first exif wins", data: exifTestJPEGHeader(8, 8, app1(exifTestTIFF(false, 3, 3)), app1(exifTestTIFF(false, 3, 5))),
			want: exifJPEGInfo{width: 8, height: 8, components: 3, orientation: 3}},
		{name: "fill bytes and RST", data: exifTestJPEGHeader(8, 8, []byte{0xFF, 0xFF, 0xFF, 0xD3}),
			want: exifJPEGInfo{width: 8, height: 8, components: 3, orientation: 1}},
		{name: "non-exif APP1", data: exifTestJPEGHeader(8, 8, []byte{0xFF, 0xE1, 0, 6, 'h', 't', 't', 'p'}),
			want: exifJPEGInfo{width: 8, height: 8, components: 3, orientation: 1}},
		{name: "zero height", data: exifTestJPEGHeader(8, 0), wantErr: true},
		{name: "no SOI", data: []byte{0xFF, 0xD9, 0xFF}, wantErr: true},
		{name: "SOS before SOF", data: []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2}, wantErr: true},
		{name: "EOI before SOS", data: []byte{0xFF, 0xD8, 0xFF, 0xD9}, wantErr: true},
		{name: "length overruns", data: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x10, 0x00, 0}, wantErr: true},
		{name: "length below 2", data: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0}, wantErr: true},
		{name: "garbage between segments", data: []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x42}, wantErr: true},
		{name: "two frames", data: exifTestJPEGHeader(8, 8, exifTestJPEGHeader(8, 8)[11:30]), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exifScanJPEG(tt.data)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("exifScanJPEG = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("exifScanJPEG: %v", err)
			}
			if got != tt.want {
				t.Errorf("exifScanJPEG = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExifScanJPEGPrefixes(t *testing.T) {
	full := exifTestJPEGHeader(100, 50, exifTestSpliceAPP1([]byte{0xFF, 0xD8}, exifTestTIFF(false, 3, 2))[2:])
	for n := range len(full) {
		if _, err := exifScanJPEG(full[:n]); err == nil {
			t.Errorf("prefix of %d/%d bytes: no error", n, len(full))
		}
	}
	if _, err := exifScanJPEG(full); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(full, []byte{0xFF, 0xD8, 0xFF}) {
		t.Fatal("header does not start with a JPEG signature")
	}
}
