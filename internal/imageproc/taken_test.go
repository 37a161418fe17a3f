package imageproc

import (
	"encoding/binary"
	"testing"
	"time"
)

// exifJPEG builds a minimal JPEG header whose EXIF holds DateTime in IFD0
// and, when original is set, DateTimeOriginal in the Exif sub-IFD.
func exifJPEG(bo binary.ByteOrder, dateTime, original string) []byte {
	tiff := make([]byte, 8, 256)
	if bo == binary.LittleEndian {
		copy(tiff, "II*\x00")
	} else {
		copy(tiff, "MM\x00*")
	}
	bo.PutUint32(tiff[4:], 8)
	// IFD0 at 8 with 2 entries (DateTime, ExifIFD), then next-IFD 0: 2+24+4 = 30 bytes.
	ifd0 := make([]byte, 30)
	bo.PutUint16(ifd0, 2)
	dtOff, subOff := uint32(8+30), uint32(8+30+20)
	bo.PutUint16(ifd0[2:], exifTagDateTime)
	bo.PutUint16(ifd0[4:], 2)
	bo.PutUint32(ifd0[6:], 20)
	bo.PutUint32(ifd0[10:], dtOff)
	bo.PutUint16(ifd0[14:], exifTagExifIFD)
	bo.PutUint16(ifd0[16:], 4)
	bo.PutUint32(ifd0[18:], 1)
	bo.PutUint32(ifd0[22:], subOff)
	tiff = append(tiff, ifd0...)
	tiff = append(tiff, append([]byte(dateTime), 0)...)
	sub := make([]byte, 18)
	if original != "" {
		bo.PutUint16(sub, 1)
		bo.PutUint16(sub[2:], exifTagDateTimeOriginal)
		bo.PutUint16(sub[4:], 2)
		bo.PutUint32(sub[6:], 20)
		bo.PutUint32(sub[10:], subOff+18)
	}
	tiff = append(tiff, sub...)
	tiff = append(tiff, append([]byte(original), 0)...)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := []byte{0xFF, 0xD8, 0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(out[4:], uint16(len(seg)+2))
	out = append(out, seg...)
	return append(out, 0xFF, 0xDA, 0, 2)
}

func TestTakenAt(t *testing.T) {
	want := time.Date(2019, 7, 14, 16, 30, 5, 0, time.UTC)
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		got, ok := TakenAt(exifJPEG(bo, "2020:01:01 00:00:00", "2019:07:14 16:30:05"))
		if !ok || !got.Equal(want) {
			t.Errorf("%v: DateTimeOriginal: %v %v, want %v", bo, got, ok, want)
		}
		got, ok = TakenAt(exifJPEG(bo, "2019:07:14 16:30:05", ""))
		if !ok || !got.Equal(want) {
			t.Errorf("%v: DateTime fallback: %v %v", bo, got, ok)
		}
		if _, ok := TakenAt(exifJPEG(bo, "0000:00:00 00:00:00", "")); ok {
			t.Errorf("%v: zero date accepted", bo)
		}
	}
	full := exifJPEG(binary.LittleEndian, "2020:01:01 00:00:00", "2019:07:14 16:30:05")
	for i := range full { // every truncation: no panic
		TakenAt(full[:i])
	}
	for _, b := range [][]byte{nil, []byte("not an image"), {0xFF, 0xD8}} {
		if _, ok := TakenAt(b); ok {
			t.Errorf("TakenAt(%q) = ok", b)
		}
	}
}

func FuzzTakenAt(f *testing.F) {
	f.Add(exifJPEG(binary.LittleEndian, "2020:01:01 00:00:00", "2019:07:14 16:30:05"))
	f.Add(exifJPEG(binary.BigEndian, "2020:01:01 00:00:00", ""))
	f.Fuzz(func(t *testing.T, data []byte) { TakenAt(data) })
}
