// Package fp16 converts an ONNX model's float32 computation to float16
// while keeping float32 inputs and outputs, so that a converted embedder is
// a drop-in replacement for the original one (the GPU runs it at half the
// memory traffic; ONNX Runtime's CPU provider runs it through casts).
package fp16

import (
	"encoding/binary"
	"errors"
	"fmt"
	"gabarit/internal/protofield"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the ONNX protobuf messages (onnx/onnx.proto3) used here.
const (
	modelGraph = 7 // ModelProto.graph

	graphNode        = 1  // GraphProto.node
	graphInitializer = 5  // GraphProto.initializer
	graphInput       = 11 // GraphProto.input
	graphOutput      = 12 // GraphProto.output
	graphValueInfo   = 13 // GraphProto.value_info

	nodeInput     = 1 // NodeProto.input
	nodeOutput    = 2 // NodeProto.output
	nodeName      = 3 // NodeProto.name
	nodeOpType    = 4 // NodeProto.op_type
	nodeAttribute = 5 // NodeProto.attribute

	attrName = 1  // AttributeProto.name
	attrI    = 3  // AttributeProto.i
	attrT    = 5  // AttributeProto.t
	attrType = 20 // AttributeProto.type

	tensorDataType     = 2  // TensorProto.data_type
	tensorFloatData    = 4  // TensorProto.float_data
	tensorRawData      = 9  // TensorProto.raw_data
	tensorDataLocation = 14 // TensorProto.data_location

	valueInfoName = 1 // ValueInfoProto.name
	valueInfoType = 2 // ValueInfoProto.type

	typeTensor     = 1 // TypeProto.tensor_type
	tensorElemType = 1 // TypeProto.Tensor.elem_type

	attrTypeInt = 2 // AttributeProto.AttributeType.INT

	typeFloat   = 1  // TensorProto.DataType.FLOAT
	typeFloat16 = 10 // TensorProto.DataType.FLOAT16
)

// field is one encoded protobuf field (see protofield).
type field = protofield.Field

var (
	parse       = protofield.Parse
	bytesField  = protofield.Bytes
	varintField = protofield.Varint
)

func firstString(fs []field, num protowire.Number) string {
	for _, f := range fs {
		if f.Num == num && f.Typ == protowire.BytesType {
			return string(f.Val)
		}
	}
	return ""
}

// Convert returns a copy of an ONNX model that computes in float16: float
// initializers and Constant values become float16, every float tensor type
// in the graph becomes float16, Cast-to-float nodes cast to float16, and
// Cast nodes are added at the graph's float inputs and outputs so that
// callers still feed and read float32. Models with external data or
// subgraphs are refused.
func Convert(model []byte) ([]byte, error) {
	top, err := parse(model)
	if err != nil {
		return nil, fmt.Errorf("fp16: parse model: %w", err)
	}
	out := make([]byte, 0, len(model)/2+1024)
	found := false
	for _, f := range top {
		if f.Num == modelGraph && f.Typ == protowire.BytesType {
			if found {
				return nil, errors.New("fp16: model has more than one graph")
			}
			found = true
			g, err := convertGraph(f.Val)
			if err != nil {
				return nil, fmt.Errorf("fp16: %w", err)
			}
			out = append(out, bytesField(modelGraph, g)...)
			continue
		}
		out = append(out, f.Raw...)
	}
	if !found {
		return nil, errors.New("fp16: model has no graph")
	}
	return out, nil
}

func convertGraph(graph []byte) ([]byte, error) {
	fs, err := parse(graph)
	if err != nil {
		return nil, fmt.Errorf("parse graph: %w", err)
	}
	// Float graph inputs and outputs keep their float32 type; inside the
	// graph they are read (inputs) and written (outputs) under new names.
	rename := map[string]string{} // node input → new name
	outName := map[string]string{}
	var pre, post [][]byte // Cast nodes
	inits := map[string]bool{}
	for _, f := range fs {
		if f.Num == graphInitializer && f.Typ == protowire.BytesType {
			tf, err := parse(f.Val)
			if err != nil {
				return nil, err
			}
			inits[firstString(tf, 8)] = true
		}
	}
	for _, f := range fs {
		if f.Typ != protowire.BytesType || (f.Num != graphInput && f.Num != graphOutput) {
			continue
		}
		vf, err := parse(f.Val)
		if err != nil {
			return nil, err
		}
		name := firstString(vf, valueInfoName)
		if inits[name] || elemType(vf) != typeFloat {
			continue
		}
		if f.Num == graphInput {
			rename[name] = name + "_fp16"
			pre = append(pre, castNode(name, name+"_fp16", typeFloat16))
		} else {
			outName[name] = name + "_fp16"
			post = append(post, castNode(name+"_fp16", name, typeFloat))
		}
	}
	for k, v := range outName {
		rename[k] = v
	}
	out := make([]byte, 0, len(graph)/2+1024)
	nodesDone := false
	for _, f := range fs {
		if f.Typ != protowire.BytesType {
			out = append(out, f.Raw...)
			continue
		}
		switch f.Num {
		case graphNode:
			if !nodesDone {
				for _, c := range pre {
					out = append(out, bytesField(graphNode, c)...)
				}
				nodesDone = true
			}
			n, err := convertNode(f.Val, rename)
			if err != nil {
				return nil, err
			}
			out = append(out, bytesField(graphNode, n)...)
		case graphInitializer:
			t, err := convertTensor(f.Val)
			if err != nil {
				return nil, err
			}
			out = append(out, bytesField(graphInitializer, t)...)
		case graphValueInfo:
			v, err := setElemType(f.Val)
			if err != nil {
				return nil, err
			}
			out = append(out, bytesField(graphValueInfo, v)...)
		default:
			out = append(out, f.Raw...)
		}
	}
	for _, c := range post {
		out = append(out, bytesField(graphNode, c)...)
	}
	return out, nil
}

// elemType returns the element type of a tensor ValueInfoProto, or 0.
func elemType(vf []field) uint64 {
	for _, f := range vf {
		if f.Num != valueInfoType || f.Typ != protowire.BytesType {
			continue
		}
		tp, err := parse(f.Val)
		if err != nil {
			return 0
		}
		for _, g := range tp {
			if g.Num == typeTensor && g.Typ == protowire.BytesType {
				tt, err := parse(g.Val)
				if err != nil {
					return 0
				}
				for _, h := range tt {
					if h.Num == tensorElemType && h.Typ == protowire.VarintType {
						return h.V
					}
				}
			}
		}
	}
	return 0
}

// setElemType rewrites a float ValueInfoProto to float16.
func setElemType(vi []byte) ([]byte, error) {
	vf, err := parse(vi)
	if err != nil {
		return nil, err
	}
	if elemType(vf) != typeFloat {
		return vi, nil
	}
	var out []byte
	for _, f := range vf {
		if f.Num != valueInfoType || f.Typ != protowire.BytesType {
			out = append(out, f.Raw...)
			continue
		}
		tp, _ := parse(f.Val)
		var tpOut []byte
		for _, g := range tp {
			if g.Num != typeTensor || g.Typ != protowire.BytesType {
				tpOut = append(tpOut, g.Raw...)
				continue
			}
			tt, _ := parse(g.Val)
			var ttOut []byte
			for _, h := range tt {
				if h.Num == tensorElemType && h.Typ == protowire.VarintType {
					ttOut = append(ttOut, varintField(tensorElemType, typeFloat16)...)
					continue
				}
				ttOut = append(ttOut, h.Raw...)
			}
			tpOut = append(tpOut, bytesField(typeTensor, ttOut)...)
		}
		out = append(out, bytesField(valueInfoType, tpOut)...)
	}
	return out, nil
}

func castNode(in, out string, to uint64) []byte {
	var n []byte
	n = append(n, bytesField(nodeInput, []byte(in))...)
	n = append(n, bytesField(nodeOutput, []byte(out))...)
	n = append(n, bytesField(nodeName, []byte("fp16_cast_"+out))...)
	n = append(n, bytesField(nodeOpType, []byte("Cast"))...)
	var a []byte
	a = append(a, bytesField(attrName, []byte("to"))...)
	a = append(a, varintField(attrI, to)...)
	a = append(a, varintField(attrType, attrTypeInt)...)
	return append(n, bytesField(nodeAttribute, a)...)
}

// convertNode renames inputs and outputs, turns Cast-to-float into
// Cast-to-float16 and converts a Constant's float value.
func convertNode(node []byte, rename map[string]string) ([]byte, error) {
	nf, err := parse(node)
	if err != nil {
		return nil, err
	}
	op := firstString(nf, nodeOpType)
	var out []byte
	for _, f := range nf {
		switch {
		case (f.Num == nodeInput || f.Num == nodeOutput) && f.Typ == protowire.BytesType:
			if r, ok := rename[string(f.Val)]; ok {
				out = append(out, bytesField(f.Num, []byte(r))...)
				continue
			}
		case f.Num == nodeAttribute && f.Typ == protowire.BytesType:
			af, err := parse(f.Val)
			if err != nil {
				return nil, err
			}
			name := firstString(af, attrName)
			var aOut []byte
			for _, g := range af {
				switch {
				case op == "Cast" && name == "to" && g.Num == attrI && g.Typ == protowire.VarintType && g.V == typeFloat:
					aOut = append(aOut, varintField(attrI, typeFloat16)...)
				case g.Num == attrT && g.Typ == protowire.BytesType:
					t, err := convertTensor(g.Val)
					if err != nil {
						return nil, err
					}
					aOut = append(aOut, bytesField(attrT, t)...)
				case g.Num == 6 || g.Num == 11:
					// g / graphs: subgraphs (If, Loop, Scan) are not converted.
					return nil, fmt.Errorf("node %s has a subgraph: not supported", op)
				default:
					aOut = append(aOut, g.Raw...)
				}
			}
			out = append(out, bytesField(nodeAttribute, aOut)...)
			continue
		}
		out = append(out, f.Raw...)
	}
	return out, nil
}

// convertTensor re-encodes a float TensorProto as float16 (raw_data); other
// tensors are returned unchanged.
func convertTensor(t []byte) ([]byte, error) {
	tf, err := parse(t)
	if err != nil {
		return nil, err
	}
	var dt uint64
	var vals []float32
	for _, f := range tf {
		switch f.Num {
		case tensorDataType:
			dt = f.V
		case tensorDataLocation:
			if f.V != 0 {
				return nil, errors.New("tensor with external data: not supported")
			}
		}
	}
	if dt != typeFloat {
		return t, nil
	}
	for _, f := range tf {
		switch {
		case f.Num == tensorRawData && f.Typ == protowire.BytesType:
			if len(f.Val)%4 != 0 {
				return nil, errors.New("float tensor raw_data length is not a multiple of 4")
			}
			for i := 0; i < len(f.Val); i += 4 {
				vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(f.Val[i:])))
			}
		case f.Num == tensorFloatData && f.Typ == protowire.BytesType: // packed
			for i := 0; i+4 <= len(f.Val); i += 4 {
				vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(f.Val[i:])))
			}
		case f.Num == tensorFloatData && f.Typ == protowire.Fixed32Type:
			x, _ := protowire.ConsumeFixed32(f.Raw[protowire.SizeTag(f.Num):])
			vals = append(vals, math.Float32frombits(x))
		}
	}
	raw := make([]byte, 2*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(raw[2*i:], FromFloat32(v))
	}
	var out []byte
	wrote := false
	for _, f := range tf {
		switch f.Num {
		case tensorDataType:
			out = append(out, varintField(tensorDataType, typeFloat16)...)
		case tensorRawData, tensorFloatData:
			if !wrote {
				out = append(out, bytesField(tensorRawData, raw)...)
				wrote = true
			}
		default:
			out = append(out, f.Raw...)
		}
	}
	if !wrote {
		out = append(out, bytesField(tensorRawData, raw)...)
	}
	return out, nil
}

// FromFloat32 returns the IEEE 754 half-precision value nearest to f
// (ties to even); values beyond its range become ±Inf.
func FromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b >> 23) & 0xff)
	man := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): shift the mantissa with its implicit 1.
		if e < -10 {
			return sign
		}
		m := man | 0x800000
		shift := uint(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(h)
}

// ToFloat32 returns the float32 value of a half-precision number.
func ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}
