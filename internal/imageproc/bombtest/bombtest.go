// Package bombtest writes decompression bombs for tests and measurements:
// small, valid image files that decode to very large pixel buffers (a
// 16-bit deflate TIFF, an interlaced 16-bit PNG, a lossless WebP). They are
// generated on demand and never committed.
package bombtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// TIFF16 returns a w×h RGB TIFF of 16-bit samples, all zero, in one
// deflate-compressed strip: about 1 KB per megapixel, decoded by
// golang.org/x/image/tiff into an 8-byte-per-pixel image.
func TIFF16(w, h int) []byte {
	strip := zeroZlib(int64(w) * int64(h) * 6)
	const nTags = 10
	ifdOff := uint32(8)
	ifdLen := uint32(2 + nTags*12 + 4)
	bpsOff := ifdOff + ifdLen
	stripOff := bpsOff + 6
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("II*\x00")
	_ = binary.Write(&b, le, ifdOff)
	_ = binary.Write(&b, le, uint16(nTags))
	tag := func(id, typ uint16, count, value uint32) {
		_ = binary.Write(&b, le, id)
		_ = binary.Write(&b, le, typ)
		_ = binary.Write(&b, le, count)
		if typ == 3 && count == 1 {
			_ = binary.Write(&b, le, uint16(value))
			_ = binary.Write(&b, le, uint16(0))
			return
		}
		_ = binary.Write(&b, le, value)
	}
	const short, long = 3, 4
	tag(256, long, 1, uint32(w))          // ImageWidth
	tag(257, long, 1, uint32(h))          // ImageLength
	tag(258, short, 3, bpsOff)            // BitsPerSample 16,16,16
	tag(259, short, 1, 8)                 // Compression: deflate
	tag(262, short, 1, 2)                 // Photometric: RGB
	tag(273, long, 1, stripOff)           // StripOffsets
	tag(277, short, 1, 3)                 // SamplesPerPixel
	tag(278, long, 1, uint32(h))          // RowsPerStrip
	tag(279, long, 1, uint32(len(strip))) // StripByteCounts
	tag(284, short, 1, 1)                 // PlanarConfiguration: chunky
	_ = binary.Write(&b, le, uint32(0))   // no next IFD
	_ = binary.Write(&b, le, [3]uint16{16, 16, 16})
	b.Write(strip)
	return b.Bytes()
}

// PNG16 returns a w×h RGBA PNG of 16-bit samples, all zero, Adam7
// interlaced when interlaced is set: about 1 KB per megapixel, decoded by
// image/png into an 8-byte-per-pixel image (plus a pass buffer when
// interlaced).
func PNG16(w, h int, interlaced bool) []byte {
	const bpp = 8 // RGBA, 16 bits a sample
	var raw int64 // filter byte and samples of every row (of every pass)
	if !interlaced {
		raw = int64(h) * (1 + int64(w)*bpp)
	} else {
		for _, p := range adam7 {
			pw := (w - p.x0 + p.dx - 1) / p.dx
			ph := (h - p.y0 + p.dy - 1) / p.dy
			if pw > 0 && ph > 0 {
				raw += int64(ph) * (1 + int64(pw)*bpp)
			}
		}
	}
	idat := zeroZlib(raw)
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, 6 // bit depth, colour type RGBA
	if interlaced {
		ihdr[12] = 1
	}
	pngChunk(&b, "IHDR", ihdr)
	pngChunk(&b, "IDAT", idat)
	pngChunk(&b, "IEND", nil)
	return b.Bytes()
}

var adam7 = []struct{ x0, dx, y0, dy int }{
	{0, 8, 0, 8}, {4, 8, 0, 8}, {0, 4, 4, 8}, {2, 4, 0, 4}, {0, 2, 2, 4}, {1, 2, 0, 2}, {0, 1, 1, 2},
}

func pngChunk(b *bytes.Buffer, typ string, data []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(data)))
	b.WriteString(typ)
	b.Write(data)
	crc := crc32.ChecksumIEEE(append([]byte(typ), data...))
	_ = binary.Write(b, binary.BigEndian, crc)
}

// WebPLossless returns a w×h lossless WebP (VP8L) of a single colour whose
// five prefix codes each have one symbol, so that no pixel costs a bit: a
// few dozen bytes whatever the size (w, h ≤ 16384), decoded by
// golang.org/x/image/webp into a 4-byte-per-pixel image.
func WebPLossless(w, h int) []byte {
	var bw bitWriter
	bw.write(0x2f, 8) // signature
	bw.write(uint32(w-1), 14)
	bw.write(uint32(h-1), 14)
	bw.write(0, 1) // alpha is not used
	bw.write(0, 3) // version
	bw.write(0, 1) // no transform
	bw.write(0, 1) // no colour cache
	bw.write(0, 1) // no meta prefix codes
	for range 5 {  // green, red, blue, alpha, distance
		bw.write(1, 1) // simple code
		bw.write(0, 1) // one symbol
		bw.write(0, 1) // of one bit
		bw.write(0, 1) // symbol 0
	}
	bw.write(0, 32) // padding the decoder may read ahead
	data := bw.bytes()
	var b bytes.Buffer
	b.WriteString("RIFF")
	size := 4 + 8 + len(data) + len(data)%2
	_ = binary.Write(&b, binary.LittleEndian, uint32(size))
	b.WriteString("WEBPVP8L")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	if len(data)%2 == 1 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint
}

// write appends the n low bits of v, least significant first.
func (w *bitWriter) write(v uint32, n uint) {
	w.acc |= uint64(v&(1<<n-1)) << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nbits > 0 {
		return append(w.buf, byte(w.acc))
	}
	return w.buf
}

// zeroZlib returns a zlib stream of n zero bytes (n > 0): one fixed-Huffman
// deflate block of a literal and copies of 258 bytes at distance 1, 13 bits
// each (about 6 KB per MB), written in a few milliseconds.
func zeroZlib(n int64) []byte {
	var bw bitWriter
	bw.write(0x78, 8)
	bw.write(0x01, 8)
	bw.write(1, 1)                           // final block
	bw.write(1, 2)                           // fixed Huffman codes
	lit0 := func() { bw.writeCode(0x30, 8) } // literal 0: 00110000
	lit0()
	rest := n - 1
	for ; rest >= 258; rest -= 258 {
		bw.writeCode(0xC5, 8) // length 258: symbol 285, 11000101
		bw.writeCode(0, 5)    // distance 1: code 0
	}
	for ; rest > 0; rest-- {
		lit0()
	}
	bw.writeCode(0, 7) // end of block: symbol 256
	data := bw.bytes()
	adler := uint32(n%65521)<<16 | 1 // a = 1, b = n: the sums over n zeros
	return binary.BigEndian.AppendUint32(data, adler)
}

// writeCode appends a Huffman code of n bits, most significant bit first.
func (w *bitWriter) writeCode(code uint32, n uint) {
	var r uint32
	for i := range n {
		r |= (code >> i & 1) << (n - 1 - i)
	}
	w.write(r, n)
}
