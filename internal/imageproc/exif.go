package imageproc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file holds the small, allocation-free parsers that read what Decode
// needs from a file before any pixel is decoded: the JPEG frame header (size,
// components) and the EXIF orientation of JPEG and TIFF files. Every read is
// bounds-checked; malformed input yields an error or "no orientation", never a
// panic.

// exifTagOrientation is the TIFF/EXIF tag that holds the orientation (1–8).
const exifTagOrientation = 0x0112

// exifJPEGInfo is what exifScanJPEG learns from the markers before the first scan.
type exifJPEGInfo struct {
	width, height int
	components    int // 1 (gray), 3 (YCbCr/RGB) or 4 (CMYK/YCCK)
	orientation   int // 1–8; 1 when there is no (valid) EXIF orientation
	progressive   bool
}

// exifScanJPEG walks the JPEG marker segments from SOI up to the first SOS
// and returns the frame size from the SOFn segment and the orientation from
// the first APP1 "Exif" segment. It reads no entropy-coded data.
func exifScanJPEG(data []byte) (exifJPEGInfo, error) {
	info := exifJPEGInfo{orientation: 1}
	if len(data) < 3 || data[0] != 0xFF || data[1] != 0xD8 {
		return info, errors.New("jpeg: missing SOI marker")
	}
	gotExif, gotFrame := false, false
	pos := 2
	for {
		// Each segment starts with one or more 0xFF fill bytes and a marker code.
		if pos >= len(data) {
			return info, errors.New("jpeg: truncated before start of scan")
		}
		if data[pos] != 0xFF {
			return info, fmt.Errorf("jpeg: expected marker at offset %d, found 0x%02x", pos, data[pos])
		}
		for pos < len(data) && data[pos] == 0xFF {
			pos++
		}
		if pos >= len(data) {
			return info, errors.New("jpeg: truncated before start of scan")
		}
		marker := data[pos]
		pos++
		switch {
		case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			continue // TEM and RSTn have no payload
		case marker == 0xD8:
			return info, errors.New("jpeg: unexpected second SOI marker")
		case marker == 0xD9:
			return info, errors.New("jpeg: end of image before start of scan")
		case marker == 0x00:
			return info, fmt.Errorf("jpeg: invalid marker 0x00 at offset %d", pos-1)
		}
		if pos+2 > len(data) {
			return info, errors.New("jpeg: truncated segment length")
		}
		segLen := int(binary.BigEndian.Uint16(data[pos:]))
		if segLen < 2 || pos+segLen > len(data) {
			return info, fmt.Errorf("jpeg: segment 0x%02x of length %d at offset %d overruns the %d-byte file", marker, segLen, pos, len(data))
		}
		seg := data[pos+2 : pos+segLen]
		pos += segLen
		switch {
		case marker == 0xDA: // SOS: headers are over
			if !gotFrame {
				return info, errors.New("jpeg: start of scan before frame header")
			}
			return info, nil
		case marker == 0xE1 && !gotExif && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00":
			gotExif = true
			info.orientation = exifOrientation(seg[6:])
		case marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC:
			if gotFrame {
				return info, errors.New("jpeg: more than one frame header")
			}
			// SOFn: precision(1) height(2) width(2) components(1) ...
			if len(seg) < 6 {
				return info, errors.New("jpeg: short frame header")
			}
			gotFrame = true
			info.height = int(binary.BigEndian.Uint16(seg[1:]))
			info.width = int(binary.BigEndian.Uint16(seg[3:]))
			info.components = int(seg[5])
			info.progressive = marker&3 == 2 // SOF2, SOF6, SOF10, SOF14
			if info.width == 0 || info.height == 0 {
				return info, fmt.Errorf("jpeg: frame header declares a %d×%d image", info.width, info.height)
			}
			if info.components != 1 && info.components != 3 && info.components != 4 {
				return info, fmt.Errorf("jpeg: frame header declares %d components", info.components)
			}
		}
	}
}

// exifOrientation returns the orientation (1–8) stored in IFD0 of the TIFF
// structure tiff (an EXIF payload after "Exif\0\0", or a whole TIFF file),
// or 1 when it is absent or malformed.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := uint64(bo.Uint32(tiff[4:]))
	if ifd < 8 || ifd+2 > uint64(len(tiff)) {
		return 1
	}
	n := uint64(bo.Uint16(tiff[ifd:]))
	entries := ifd + 2
	for i := uint64(0); i < n; i++ {
		e := entries + 12*i
		if e+12 > uint64(len(tiff)) {
			return 1
		}
		entry := tiff[e : e+12]
		if bo.Uint16(entry) != exifTagOrientation {
			continue
		}
		typ, count := bo.Uint16(entry[2:]), bo.Uint32(entry[4:])
		if count != 1 {
			return 1
		}
		var v uint32
		switch typ {
		case 3: // SHORT, left-justified in the 4-byte value field
			v = uint32(bo.Uint16(entry[8:]))
		case 4: // LONG, written by a few non-conforming tools
			v = bo.Uint32(entry[8:])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}
