package imageproc

import (
	"encoding/binary"
	"time"
)

// EXIF tags read by TakenAt.
const (
	exifTagDateTime         = 0x0132 // IFD0: when the file was last changed
	exifTagExifIFD          = 0x8769 // IFD0: offset of the Exif sub-IFD
	exifTagDateTimeOriginal = 0x9003 // Exif IFD: when the picture was taken
)

// TakenAt returns when a JPEG or TIFF picture was taken, from its EXIF
// DateTimeOriginal (or, failing that, DateTime), or false when it says
// nothing usable. EXIF gives the camera's local time without a zone; it is
// returned as if it were UTC. Only the headers are read; malformed input
// gives false, never a panic.
func TakenAt(data []byte) (time.Time, bool) {
	var tiff []byte
	switch {
	case len(data) >= 4 && (string(data[:4]) == "II*\x00" || string(data[:4]) == "MM\x00*"):
		tiff = data
	case len(data) >= 2 && data[0] == 0xFF && data[1] == 0xD8:
		tiff = jpegExif(data)
	}
	if len(tiff) < 8 {
		return time.Time{}, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if tiff[0] == 'M' {
		bo = binary.BigEndian
	}
	ifd0 := uint64(bo.Uint32(tiff[4:]))
	if sub, ok := ifdEntry(tiff, bo, ifd0, exifTagExifIFD); ok && bo.Uint16(sub[2:]) == 4 {
		if e, ok := ifdEntry(tiff, bo, uint64(bo.Uint32(sub[8:])), exifTagDateTimeOriginal); ok {
			if t, ok := exifTime(tiff, bo, e); ok {
				return t, true
			}
		}
	}
	if e, ok := ifdEntry(tiff, bo, ifd0, exifTagDateTime); ok {
		return exifTime(tiff, bo, e)
	}
	return time.Time{}, false
}

// jpegExif returns the TIFF payload of the first APP1 "Exif" segment before
// the first scan, or nil.
func jpegExif(data []byte) []byte {
	pos := 2
	for pos+4 <= len(data) && data[pos] == 0xFF {
		marker := data[pos+1]
		if marker == 0xDA || marker == 0xD9 {
			return nil
		}
		n := int(binary.BigEndian.Uint16(data[pos+2:]))
		if n < 2 || pos+2+n > len(data) {
			return nil
		}
		seg := data[pos+4 : pos+2+n]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return seg[6:]
		}
		pos += 2 + n
	}
	return nil
}

// ifdEntry returns the 12-byte entry of tag in the IFD at offset off.
func ifdEntry(tiff []byte, bo binary.ByteOrder, off uint64, tag uint16) ([]byte, bool) {
	if off < 8 || off+2 > uint64(len(tiff)) {
		return nil, false
	}
	n := uint64(bo.Uint16(tiff[off:]))
	for i := uint64(0); i < n; i++ {
		e := off + 2 + 12*i
		if e+12 > uint64(len(tiff)) {
			return nil, false
		}
		if bo.Uint16(tiff[e:]) == tag {
			return tiff[e : e+12], true
		}
	}
	return nil, false
}

// exifTime parses an ASCII entry "YYYY:MM:DD HH:MM:SS".
func exifTime(tiff []byte, bo binary.ByteOrder, e []byte) (time.Time, bool) {
	const layout = "2006:01:02 15:04:05"
	if bo.Uint16(e[2:]) != 2 || bo.Uint32(e[4:]) < uint32(len(layout)) {
		return time.Time{}, false
	}
	off := uint64(bo.Uint32(e[8:]))
	if off+uint64(len(layout)) > uint64(len(tiff)) {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, string(tiff[off:off+uint64(len(layout))]))
	if err != nil || t.Year() < 1826 { // the first photograph; zeros mean "unknown"
		return time.Time{}, false
	}
	return t, true
}
