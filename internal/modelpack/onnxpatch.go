package modelpack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"gabarit/internal/protofield"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// BatchDimParam is the symbolic name PatchDynamicBatch gives the batch dimension.
const BatchDimParam = "batch"

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
	nodeOpType    = 4 // NodeProto.op_type
	nodeAttribute = 5 // NodeProto.attribute

	attrName = 1 // AttributeProto.name
	attrI    = 3 // AttributeProto.i
	attrT    = 5 // AttributeProto.t

	tensorDims         = 1  // TensorProto.dims
	tensorDataType     = 2  // TensorProto.data_type
	tensorInt64Data    = 7  // TensorProto.int64_data
	tensorName         = 8  // TensorProto.name
	tensorRawData      = 9  // TensorProto.raw_data
	tensorDataLocation = 14 // TensorProto.data_location

	tensorTypeInt64 = 7 // TensorProto.DataType.INT64

	valueInfoName = 1 // ValueInfoProto.name
	valueInfoType = 2 // ValueInfoProto.type

	typeTensor  = 1 // TypeProto.tensor_type
	tensorShape = 2 // TypeProto.Tensor.shape
	shapeDim    = 1 // TensorShapeProto.dim
	dimValue    = 1 // TensorShapeProto.Dimension.dim_value
	dimParam    = 2 // TensorShapeProto.Dimension.dim_param
)

// pbField is one encoded protobuf field (see protofield).
type pbField = protofield.Field

var (
	parseMessage = protofield.Parse
	bytesField   = protofield.Bytes
)

// firstString returns the first length-delimited field num as a string.
func firstString(fs []pbField, num protowire.Number) string {
	for _, f := range fs {
		if f.Num == num && f.Typ == protowire.BytesType {
			return string(f.Val)
		}
	}
	return ""
}

// allStrings returns every length-delimited field num as strings, in order.
func allStrings(fs []pbField, num protowire.Number) []string {
	var out []string
	for _, f := range fs {
		if f.Num == num && f.Typ == protowire.BytesType {
			out = append(out, string(f.Val))
		}
	}
	return out
}

// joinFields concatenates the raw bytes of fields.
func joinFields(fs []pbField) []byte {
	n := 0
	for _, f := range fs {
		n += len(f.Raw)
	}
	out := make([]byte, 0, n)
	for _, f := range fs {
		out = append(out, f.Raw...)
	}
	return out
}

// PatchDynamicBatch returns a copy of an ONNX model whose batch dimension is
// dynamic. It renames a first dimension of 1 in the graph's inputs and
// outputs to the symbolic BatchDimParam, drops value_info entries whose
// first dimension is 1, and rewrites each Reshape whose target shape is a
// constant int64 vector starting with 1: [1,d…] becomes [-1,d…]; when the
// shape already holds a -1 ([1,-1]), it becomes the static shape of the
// graph output it produces with -1 first ([-1,512]), or else [0,-1] (copy
// the input's batch). Every other byte of the model is kept as it was.
// Reshapes whose shape is computed at run time are already batch-agnostic
// and are left alone.
func PatchDynamicBatch(model []byte) ([]byte, error) {
	top, err := parseMessage(model)
	if err != nil {
		return nil, fmt.Errorf("patch onnx: parse model: %w", err)
	}
	gi := -1
	for i, f := range top {
		if f.Num == modelGraph {
			if gi >= 0 || f.Typ != protowire.BytesType {
				return nil, errors.New("patch onnx: model has more than one graph field")
			}
			gi = i
		}
	}
	if gi < 0 {
		return nil, errors.New("patch onnx: model has no graph")
	}
	g, err := patchGraph(top[gi].Val)
	if err != nil {
		return nil, fmt.Errorf("patch onnx: %w", err)
	}
	top[gi].Raw = bytesField(modelGraph, g)
	return joinFields(top), nil
}

// constSource is where a tensor name's constant value lives.
type constSource struct {
	field  int    // index of the initializer or Constant node in the graph's fields
	tensor []byte // the encoded TensorProto
}

func patchGraph(graph []byte) ([]byte, error) {
	fs, err := parseMessage(graph)
	if err != nil {
		return nil, fmt.Errorf("parse graph: %w", err)
	}

	consts := map[string]constSource{} // int64 constants by name
	inits := map[string]bool{}
	uses := map[string]int{}          // how many node inputs or graph outputs read each name
	outShapes := map[string][]int64{} // static graph output dims (-1 where symbolic)
	names := map[string]bool{}
	var reshapes []int
	for i, f := range fs {
		if f.Typ != protowire.BytesType {
			continue
		}
		switch f.Num {
		case graphInitializer:
			tf, err := parseMessage(f.Val)
			if err != nil {
				return nil, fmt.Errorf("parse initializer: %w", err)
			}
			name := firstString(tf, tensorName)
			inits[name] = true
			names[name] = true
			consts[name] = constSource{field: i, tensor: f.Val}
		case graphNode:
			nf, err := parseMessage(f.Val)
			if err != nil {
				return nil, fmt.Errorf("parse node: %w", err)
			}
			for _, in := range allStrings(nf, nodeInput) {
				uses[in]++
			}
			outs := allStrings(nf, nodeOutput)
			for _, o := range outs {
				names[o] = true
			}
			switch firstString(nf, nodeOpType) {
			case "Reshape":
				reshapes = append(reshapes, i)
			case "Constant":
				if len(outs) == 1 {
					if t := attrTensor(nf, "value"); t != nil {
						consts[outs[0]] = constSource{field: i, tensor: t}
					}
				}
			}
		case graphOutput:
			vf, err := parseMessage(f.Val)
			if err != nil {
				return nil, fmt.Errorf("parse output: %w", err)
			}
			name := firstString(vf, valueInfoName)
			uses[name]++
			dims, _ := valueInfoDims(f.Val)
			outShapes[name] = dims
		case graphInput, graphValueInfo:
			vf, err := parseMessage(f.Val)
			if err != nil {
				return nil, fmt.Errorf("parse value_info: %w", err)
			}
			names[firstString(vf, valueInfoName)] = true
		}
	}

	var added [][]byte // new initializers, appended after the graph's last field
	for _, i := range reshapes {
		nf, _ := parseMessage(fs[i].Val)
		ins := allStrings(nf, nodeInput)
		outs := allStrings(nf, nodeOutput)
		if len(ins) < 2 {
			continue // opset < 5: shape is an attribute; not handled
		}
		src, ok := consts[ins[1]]
		if !ok {
			continue // computed shape: already follows the input's batch
		}
		shape, ok := int64Vector(src.tensor)
		if !ok || len(shape) == 0 || shape[0] != 1 {
			continue
		}
		newShape := slices.Clone(shape)
		switch {
		case !slices.Contains(shape[1:], -1):
			newShape[0] = -1
		case len(outs) == 1 && staticTail(outShapes[outs[0]], len(shape)):
			newShape = slices.Clone(outShapes[outs[0]])
			newShape[0] = -1
		default:
			if attrInt(nf, "allowzero") == 1 {
				return nil, fmt.Errorf("reshape to %v with allowzero=1: cannot make its batch dynamic", shape)
			}
			newShape[0] = 0
		}
		newTensor, err := setInt64Vector(src.tensor, newShape)
		if err != nil {
			return nil, fmt.Errorf("reshape shape %q: %w", ins[1], err)
		}
		if uses[ins[1]] == 1 && !isGraphInput(fs, ins[1]) {
			// Sole reader: rewrite the constant in place.
			if inits[ins[1]] {
				fs[src.field].Raw = bytesField(graphInitializer, newTensor)
			} else {
				node, err := setConstantValue(fs[src.field].Val, newTensor)
				if err != nil {
					return nil, err
				}
				fs[src.field].Raw = bytesField(graphNode, node)
			}
			consts[ins[1]] = constSource{field: src.field, tensor: newTensor}
			continue
		}
		// Shared constant: give this Reshape its own initializer.
		name := ins[1] + "_dynamic_batch"
		for n := 2; names[name]; n++ {
			name = fmt.Sprintf("%s_dynamic_batch%d", ins[1], n)
		}
		names[name] = true
		renamed, err := setTensorName(newTensor, name)
		if err != nil {
			return nil, err
		}
		added = append(added, bytesField(graphInitializer, renamed))
		node := renameSecondInput(nf, name)
		fs[i].Raw = bytesField(graphNode, node)
	}

	out := make([]byte, 0, len(graph)+64)
	for _, f := range fs {
		if f.Typ == protowire.BytesType {
			switch f.Num {
			case graphInput:
				vf, _ := parseMessage(f.Val)
				if inits[firstString(vf, valueInfoName)] {
					break // an initializer listed as input (IR < 4): not batched
				}
				v, err := setBatchDim(f.Val)
				if err != nil {
					return nil, err
				}
				out = append(out, bytesField(f.Num, v)...)
				continue
			case graphOutput:
				v, err := setBatchDim(f.Val)
				if err != nil {
					return nil, err
				}
				out = append(out, bytesField(f.Num, v)...)
				continue
			case graphValueInfo:
				if dims, ok := valueInfoDims(f.Val); ok && len(dims) > 0 && dims[0] == 1 {
					continue // pins an intermediate batch to 1: drop the hint
				}
			}
		}
		out = append(out, f.Raw...)
	}
	for _, a := range added {
		out = append(out, a...)
	}
	return out, nil
}

// isGraphInput reports whether name is one of the graph's inputs.
func isGraphInput(fs []pbField, name string) bool {
	for _, f := range fs {
		if f.Num == graphInput && f.Typ == protowire.BytesType {
			vf, err := parseMessage(f.Val)
			if err == nil && firstString(vf, valueInfoName) == name {
				return true
			}
		}
	}
	return false
}

// staticTail reports whether dims has rank n and static sizes after the first.
func staticTail(dims []int64, n int) bool {
	if len(dims) != n || n == 0 {
		return false
	}
	for _, d := range dims[1:] {
		if d <= 0 {
			return false
		}
	}
	return true
}

// attr returns the fields of the node attribute called name.
func attr(node []pbField, name string) []pbField {
	for _, f := range node {
		if f.Num == nodeAttribute && f.Typ == protowire.BytesType {
			af, err := parseMessage(f.Val)
			if err == nil && firstString(af, attrName) == name {
				return af
			}
		}
	}
	return nil
}

// attrTensor returns the encoded tensor of attribute name, or nil.
func attrTensor(node []pbField, name string) []byte {
	for _, f := range attr(node, name) {
		if f.Num == attrT && f.Typ == protowire.BytesType {
			return f.Val
		}
	}
	return nil
}

// attrInt returns the integer attribute name, or 0.
func attrInt(node []pbField, name string) int64 {
	for _, f := range attr(node, name) {
		if f.Num == attrI && f.Typ == protowire.VarintType {
			return int64(f.V)
		}
	}
	return 0
}

// int64Vector decodes a 1-D int64 tensor stored inline.
func int64Vector(tensor []byte) ([]int64, bool) {
	tf, err := parseMessage(tensor)
	if err != nil {
		return nil, false
	}
	var dims, vals []int64
	var raw []byte
	var dt uint64
	for _, f := range tf {
		switch f.Num {
		case tensorDims:
			d, err := varints(f)
			if err != nil {
				return nil, false
			}
			dims = append(dims, d...)
		case tensorDataType:
			dt = f.V
		case tensorInt64Data:
			d, err := varints(f)
			if err != nil {
				return nil, false
			}
			vals = append(vals, d...)
		case tensorRawData:
			raw = f.Val
		case tensorDataLocation:
			if f.V != 0 {
				return nil, false // external data
			}
		}
	}
	if dt != tensorTypeInt64 || len(dims) != 1 {
		return nil, false
	}
	if raw != nil {
		if len(raw)%8 != 0 {
			return nil, false
		}
		vals = vals[:0]
		for i := 0; i < len(raw); i += 8 {
			vals = append(vals, int64(binary.LittleEndian.Uint64(raw[i:])))
		}
	}
	if int64(len(vals)) != dims[0] {
		return nil, false
	}
	return vals, true
}

// varints decodes a packed or unpacked repeated int64 field.
func varints(f pbField) ([]int64, error) {
	switch f.Typ {
	case protowire.VarintType:
		return []int64{int64(f.V)}, nil
	case protowire.BytesType:
		var out []int64
		b := f.Val
		for len(b) > 0 {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			out = append(out, int64(v))
			b = b[n:]
		}
		return out, nil
	}
	return nil, fmt.Errorf("field %d: unexpected wire type %d", f.Num, f.Typ)
}

// setInt64Vector re-encodes an int64 tensor with new values of the same
// length, keeping its other fields and the storage (raw_data or int64_data)
// it used.
func setInt64Vector(tensor []byte, vals []int64) ([]byte, error) {
	tf, err := parseMessage(tensor)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	var packed []byte
	for _, v := range vals {
		packed = protowire.AppendVarint(packed, uint64(v))
	}
	var out []byte
	wrote := false
	for _, f := range tf {
		switch f.Num {
		case tensorRawData:
			if !wrote {
				out = append(out, bytesField(tensorRawData, raw)...)
				wrote = true
			}
		case tensorInt64Data:
			if !wrote {
				out = append(out, bytesField(tensorInt64Data, packed)...)
				wrote = true
			}
		default:
			out = append(out, f.Raw...)
		}
	}
	if !wrote {
		return nil, errors.New("tensor holds no int64 data")
	}
	return out, nil
}

// setTensorName re-encodes a tensor under a new name.
func setTensorName(tensor []byte, name string) ([]byte, error) {
	tf, err := parseMessage(tensor)
	if err != nil {
		return nil, err
	}
	out := bytesField(tensorName, []byte(name))
	for _, f := range tf {
		if f.Num != tensorName {
			out = append(out, f.Raw...)
		}
	}
	return out, nil
}

// setConstantValue re-encodes a Constant node with a new "value" tensor.
func setConstantValue(node, tensor []byte) ([]byte, error) {
	nf, err := parseMessage(node)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, f := range nf {
		if f.Num == nodeAttribute && f.Typ == protowire.BytesType {
			af, err := parseMessage(f.Val)
			if err != nil {
				return nil, err
			}
			if firstString(af, attrName) == "value" {
				var a []byte
				for _, x := range af {
					if x.Num == attrT {
						a = append(a, bytesField(attrT, tensor)...)
					} else {
						a = append(a, x.Raw...)
					}
				}
				out = append(out, bytesField(nodeAttribute, a)...)
				continue
			}
		}
		out = append(out, f.Raw...)
	}
	return out, nil
}

// renameSecondInput re-encodes a node with its second input renamed.
func renameSecondInput(nf []pbField, name string) []byte {
	var out []byte
	k := 0
	for _, f := range nf {
		if f.Num == nodeInput {
			k++
			if k == 2 {
				out = append(out, bytesField(nodeInput, []byte(name))...)
				continue
			}
		}
		out = append(out, f.Raw...)
	}
	return out
}

// valueInfoDims returns a tensor value_info's dims, -1 for symbolic or unknown ones.
func valueInfoDims(vi []byte) ([]int64, bool) {
	shape := valueInfoShape(vi)
	if shape == nil {
		return nil, false
	}
	sf, err := parseMessage(shape)
	if err != nil {
		return nil, false
	}
	var dims []int64
	for _, f := range sf {
		if f.Num != shapeDim || f.Typ != protowire.BytesType {
			continue
		}
		df, err := parseMessage(f.Val)
		if err != nil {
			return nil, false
		}
		d := int64(-1)
		for _, x := range df {
			if x.Num == dimValue && x.Typ == protowire.VarintType {
				d = int64(x.V)
			}
		}
		dims = append(dims, d)
	}
	return dims, true
}

// valueInfoShape returns the encoded TensorShapeProto of a tensor value_info, or nil.
func valueInfoShape(vi []byte) []byte {
	fs, err := parseMessage(vi)
	if err != nil {
		return nil
	}
	for _, f := range fs {
		if f.Num != valueInfoType || f.Typ != protowire.BytesType {
			continue
		}
		tf, err := parseMessage(f.Val)
		if err != nil {
			return nil
		}
		for _, t := range tf {
			if t.Num != typeTensor || t.Typ != protowire.BytesType {
				continue
			}
			xf, err := parseMessage(t.Val)
			if err != nil {
				return nil
			}
			for _, x := range xf {
				if x.Num == tensorShape && x.Typ == protowire.BytesType {
					return x.Val
				}
			}
		}
	}
	return nil
}

// setBatchDim re-encodes a value_info with a first dimension of 1 made
// symbolic; other value_infos are returned unchanged.
func setBatchDim(vi []byte) ([]byte, error) {
	return rewrite(vi, valueInfoType, func(tp []byte) ([]byte, error) {
		return rewrite(tp, typeTensor, func(tt []byte) ([]byte, error) {
			return rewrite(tt, tensorShape, func(shape []byte) ([]byte, error) {
				sf, err := parseMessage(shape)
				if err != nil {
					return nil, err
				}
				var out []byte
				first := true
				for _, f := range sf {
					if f.Num == shapeDim && f.Typ == protowire.BytesType && first {
						first = false
						d, err := batchDim(f.Val)
						if err != nil {
							return nil, err
						}
						out = append(out, bytesField(shapeDim, d)...)
						continue
					}
					out = append(out, f.Raw...)
				}
				return out, nil
			})
		})
	})
}

// batchDim turns a Dimension with dim_value 1 into dim_param BatchDimParam.
func batchDim(dim []byte) ([]byte, error) {
	df, err := parseMessage(dim)
	if err != nil {
		return nil, err
	}
	isOne := false
	for _, f := range df {
		if f.Num == dimValue && f.Typ == protowire.VarintType && f.V == 1 {
			isOne = true
		}
	}
	if !isOne {
		return dim, nil
	}
	var out []byte
	for _, f := range df {
		switch f.Num {
		case dimValue:
			out = append(out, bytesField(dimParam, []byte(BatchDimParam))...)
		case dimParam:
		default:
			out = append(out, f.Raw...)
		}
	}
	return out, nil
}

// rewrite re-encodes msg with every length-delimited field num replaced by fn's result.
func rewrite(msg []byte, num protowire.Number, fn func([]byte) ([]byte, error)) ([]byte, error) {
	fs, err := parseMessage(msg)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, f := range fs {
		if f.Num == num && f.Typ == protowire.BytesType {
			v, err := fn(f.Val)
			if err != nil {
				return nil, err
			}
			out = append(out, bytesField(num, v)...)
			continue
		}
		out = append(out, f.Raw...)
	}
	return out, nil
}
