// Package protofield reads and writes protocol buffer messages one field at
// a time, without their schema: what the ONNX model rewriters (the model
// pack's input patch, the fp16 converter) need to change a few fields of a
// large message and copy every other byte verbatim.
package protofield

import "google.golang.org/protobuf/encoding/protowire"

// Field is one encoded field: Raw holds its tag and value verbatim, Val
// the payload of a length-delimited field, V the value of a scalar one.
type Field struct {
	Num protowire.Number
	Typ protowire.Type
	Raw []byte
	Val []byte
	V   uint64
}

// Parse splits an encoded message into its fields, in order.
func Parse(b []byte) ([]Field, error) {
	var fs []Field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		f := Field{Num: num, Typ: typ, Raw: b[:n+m]}
		v := b[n : n+m]
		switch typ {
		case protowire.BytesType:
			f.Val, _ = protowire.ConsumeBytes(v)
		case protowire.VarintType:
			f.V, _ = protowire.ConsumeVarint(v)
		case protowire.Fixed32Type:
			x, _ := protowire.ConsumeFixed32(v)
			f.V = uint64(x)
		case protowire.Fixed64Type:
			f.V, _ = protowire.ConsumeFixed64(v)
		}
		fs = append(fs, f)
		b = b[n+m:]
	}
	return fs, nil
}

// Bytes encodes a length-delimited field.
func Bytes(num protowire.Number, val []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), val)
}

// Varint encodes a varint field.
func Varint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}
