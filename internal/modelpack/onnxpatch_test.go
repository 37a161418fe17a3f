package modelpack

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"gabarit/internal/modeltest"

	"google.golang.org/protobuf/encoding/protowire"
)

// Hand-built ONNX messages for the tests.

func pbString(num protowire.Number, s string) []byte { return bytesField(num, []byte(s)) }

func pbVarint(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// testValueInfo encodes a float tensor value_info; params[i], when set, makes dim i symbolic.
func testValueInfo(name string, dims []int64, params ...string) []byte {
	var shape []byte
	for i, d := range dims {
		var dim []byte
		if i < len(params) && params[i] != "" {
			dim = pbString(dimParam, params[i])
		} else {
			dim = pbVarint(dimValue, uint64(d))
		}
		shape = append(shape, bytesField(shapeDim, dim)...)
	}
	tensorType := cat(pbVarint(1, 1), bytesField(tensorShape, shape)) // elem_type FLOAT
	return cat(pbString(valueInfoName, name), bytesField(valueInfoType, bytesField(typeTensor, tensorType)))
}

func testInt64Tensor(name string, vals []int64, raw bool) []byte {
	t := cat(pbVarint(tensorDims, uint64(len(vals))), pbVarint(tensorDataType, tensorTypeInt64))
	if raw {
		b := make([]byte, 8*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
		t = append(t, bytesField(tensorRawData, b)...)
	} else {
		var p []byte
		for _, v := range vals {
			p = protowire.AppendVarint(p, uint64(v))
		}
		t = append(t, bytesField(tensorInt64Data, p)...)
	}
	if name != "" {
		t = append(t, pbString(tensorName, name)...)
	}
	return t
}

func testNode(op, name string, ins, outs []string, attrs ...[]byte) []byte {
	var n []byte
	for _, in := range ins {
		n = append(n, pbString(nodeInput, in)...)
	}
	for _, o := range outs {
		n = append(n, pbString(nodeOutput, o)...)
	}
	n = append(n, pbString(3, name)...)
	n = append(n, pbString(nodeOpType, op)...)
	for _, a := range attrs {
		n = append(n, bytesField(nodeAttribute, a)...)
	}
	return n
}

func graphOf(fields ...[]byte) []byte { return cat(fields...) }

func modelOf(graph []byte) []byte {
	return cat(
		pbVarint(1, 7),         // ir_version
		pbString(2, "pytorch"), // producer_name
		bytesField(modelGraph, graph),
		bytesField(8, pbVarint(2, 9)), // opset_import { version: 9 }
	)
}

// graphView decodes the parts of a patched model the tests look at.
type graphView struct {
	inputs, outputs map[string][]string // dims as strings: "3", "batch"
	valueInfo       []string
	shapes          map[string][]int64 // int64 constants by name (initializers and Constant nodes)
	reshapeShape    map[string]string  // Reshape node name -> its shape input name
	other           [][]byte           // raw top-level model fields other than the graph
}

func dimsOf(t *testing.T, vi []byte) []string {
	t.Helper()
	shape := valueInfoShape(vi)
	sf, err := parseMessage(shape)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range sf {
		df, _ := parseMessage(f.Val)
		for _, d := range df {
			switch d.Num {
			case dimValue:
				out = append(out, strconv.FormatInt(int64(d.V), 10))
			case dimParam:
				out = append(out, string(d.Val))
			}
		}
	}
	return out
}

func view(t *testing.T, model []byte) graphView {
	t.Helper()
	top, err := parseMessage(model)
	if err != nil {
		t.Fatal(err)
	}
	v := graphView{inputs: map[string][]string{}, outputs: map[string][]string{}, shapes: map[string][]int64{}, reshapeShape: map[string]string{}}
	for _, f := range top {
		if f.Num != modelGraph {
			v.other = append(v.other, f.Raw)
			continue
		}
		g, err := parseMessage(f.Val)
		if err != nil {
			t.Fatal(err)
		}
		for _, gf := range g {
			switch gf.Num {
			case graphInput, graphOutput, graphValueInfo:
				vf, _ := parseMessage(gf.Val)
				name := firstString(vf, valueInfoName)
				switch gf.Num {
				case graphInput:
					v.inputs[name] = dimsOf(t, gf.Val)
				case graphOutput:
					v.outputs[name] = dimsOf(t, gf.Val)
				default:
					v.valueInfo = append(v.valueInfo, name)
				}
			case graphInitializer:
				tf, _ := parseMessage(gf.Val)
				if vals, ok := int64Vector(gf.Val); ok {
					v.shapes[firstString(tf, tensorName)] = vals
				}
			case graphNode:
				nf, _ := parseMessage(gf.Val)
				switch firstString(nf, nodeOpType) {
				case "Constant":
					if vals, ok := int64Vector(attrTensor(nf, "value")); ok {
						v.shapes[allStrings(nf, nodeOutput)[0]] = vals
					}
				case "Reshape":
					v.reshapeShape[firstString(nf, 3)] = allStrings(nf, nodeInput)[1]
				}
			}
		}
	}
	return v
}

func TestPatchDynamicBatchHandBuilt(t *testing.T) {
	constAttr := cat(pbString(attrName, "value"), bytesField(attrT, testInt64Tensor("", []int64{1, -1}, true)), pbVarint(20, 4))
	graph := graphOf(
		bytesField(graphNode, testNode("Conv", "conv", []string{"input", "w"}, []string{"c"})),
		bytesField(graphNode, testNode("Reshape", "final", []string{"c", "shape_final"}, []string{"output"})),
		bytesField(graphNode, testNode("Reshape", "static", []string{"c", "shape_static"}, []string{"r2"})),
		bytesField(graphNode, testNode("Constant", "k", nil, []string{"shape_const"}, constAttr)),
		bytesField(graphNode, testNode("Reshape", "inner", []string{"c", "shape_const"}, []string{"r3"})),
		bytesField(graphNode, testNode("Reshape", "sharedA", []string{"c", "shape_shared"}, []string{"r4"})),
		bytesField(graphNode, testNode("Reshape", "sharedB", []string{"c", "shape_shared"}, []string{"r5"})),
		bytesField(graphNode, testNode("Reshape", "notbatch", []string{"c", "shape_other"}, []string{"r6"})),
		pbString(2, "g"),
		bytesField(graphInitializer, testInt64Tensor("shape_final", []int64{1, -1}, true)),
		bytesField(graphInitializer, testInt64Tensor("shape_static", []int64{1, 512}, false)),
		bytesField(graphInitializer, testInt64Tensor("shape_shared", []int64{1, 8, 64}, true)),
		bytesField(graphInitializer, testInt64Tensor("shape_other", []int64{2, -1}, true)),
		bytesField(graphInput, testValueInfo("input", []int64{1, 3, 112, 112})),
		bytesField(graphOutput, testValueInfo("output", []int64{1, 512})),
		bytesField(graphOutput, testValueInfo("r2", []int64{0, 512}, "n")),
		bytesField(graphValueInfo, testValueInfo("c", []int64{1, 512, 1, 1})),
		bytesField(graphValueInfo, testValueInfo("r6", []int64{2, 256})),
	)
	model := modelOf(graph)
	patched, err := PatchDynamicBatch(model)
	if err != nil {
		t.Fatal(err)
	}
	v := view(t, patched)

	if got := v.inputs["input"]; !slices.Equal(got, []string{"batch", "3", "112", "112"}) {
		t.Errorf("input dims %v", got)
	}
	if got := v.outputs["output"]; !slices.Equal(got, []string{"batch", "512"}) {
		t.Errorf("output dims %v", got)
	}
	if got := v.outputs["r2"]; !slices.Equal(got, []string{"n", "512"}) {
		t.Errorf("symbolic output dims changed: %v", got)
	}
	if !slices.Equal(v.valueInfo, []string{"r6"}) {
		t.Errorf("value_info kept %v, want [r6]", v.valueInfo)
	}
	want := map[string][]int64{
		"final":    {-1, 512}, // [1,-1] feeding a [1,512] output
		"static":   {-1, 512},
		"inner":    {0, -1}, // [1,-1] elsewhere: copy the batch
		"sharedA":  {-1, 8, 64},
		"sharedB":  {-1, 8, 64},
		"notbatch": {2, -1},
	}
	for node, w := range want {
		name := v.reshapeShape[node]
		if got := v.shapes[name]; !slices.Equal(got, w) {
			t.Errorf("reshape %s: shape %s = %v, want %v", node, name, got, w)
		}
	}
	if v.reshapeShape["sharedA"] == "shape_shared" || v.reshapeShape["sharedA"] == v.reshapeShape["sharedB"] {
		t.Errorf("shared shape constant not split: %v", v.reshapeShape)
	}
	if v.reshapeShape["final"] != "shape_final" || v.reshapeShape["inner"] != "shape_const" {
		t.Errorf("sole-reader constants should be patched in place: %v", v.reshapeShape)
	}
	// Fields outside the graph are copied verbatim.
	orig := view(t, model)
	if len(orig.other) != len(v.other) {
		t.Fatalf("top-level fields: %d, want %d", len(v.other), len(orig.other))
	}
	for i := range orig.other {
		if !bytes.Equal(orig.other[i], v.other[i]) {
			t.Errorf("top-level field %d changed", i)
		}
	}
	// The Constant node's other attribute fields (type=20) survive.
	if !bytes.Contains(patched, pbVarint(20, 4)) {
		t.Error("Constant attribute type field lost")
	}
	// Patching again changes nothing more.
	again, err := PatchDynamicBatch(patched)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, patched) {
		t.Error("PatchDynamicBatch is not idempotent")
	}
}

func TestPatchDynamicBatchAllowZero(t *testing.T) {
	allowZero := cat(pbString(attrName, "allowzero"), pbVarint(attrI, 1))
	graph := graphOf(
		bytesField(graphNode, testNode("Reshape", "r", []string{"x", "s"}, []string{"y"}, allowZero)),
		bytesField(graphInitializer, testInt64Tensor("s", []int64{1, -1}, true)),
		bytesField(graphInput, testValueInfo("x", []int64{1, 4})),
		bytesField(graphOutput, testValueInfo("z", []int64{1, 4})),
	)
	if _, err := PatchDynamicBatch(modelOf(graph)); err == nil {
		t.Error("allowzero=1 reshape [1,-1] patched without error")
	}
}

func TestPatchDynamicBatchErrors(t *testing.T) {
	for name, model := range map[string][]byte{
		"garbage":   {0xff, 0xff, 0xff},
		"no graph":  pbVarint(1, 7),
		"bad graph": bytesField(modelGraph, []byte{0x0a, 0x05, 0x01}),
	} {
		if _, err := PatchDynamicBatch(model); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// defaultPackFile returns a file of the installed default pack; without an
// installation the test skips, or fails under GABARIT_REQUIRE_MODELS.
func defaultPackFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(modeltest.Installed(t).Pack("default"), name)
}

func TestPatchDynamicBatchRealEmbedder(t *testing.T) {
	b, err := os.ReadFile(defaultPackFile(t, "fr_feature.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	patched, err := PatchDynamicBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	v := view(t, patched)
	if got := v.inputs["input"]; !slices.Equal(got, []string{"batch", "3", "112", "112"}) {
		t.Errorf("input dims %v", got)
	}
	if got := v.outputs["output"]; !slices.Equal(got, []string{"batch", "512"}) {
		t.Errorf("output dims %v", got)
	}
	if len(v.reshapeShape) != 1 {
		t.Fatalf("reshapes: %v", v.reshapeShape)
	}
	for _, s := range v.reshapeShape {
		if got := v.shapes[s]; !slices.Equal(got, []int64{-1, 512}) {
			t.Errorf("reshape shape %v, want [-1 512]", got)
		}
	}
	if got := sha256Hex(patched); got != defaultBatchEmbedderSHA256 {
		t.Errorf("patched embedder sha256 %s, want %s (DefaultManifest)", got, defaultBatchEmbedderSHA256)
	}
	if d := len(patched) - len(b); d < -64 || d > 64 {
		t.Errorf("size changed by %d bytes", d)
	}
}

// TestPatchRealDetector patches the installed RFB-320 detector: its input
// and outputs get the batch dimension and the digest is DefaultManifest's.
func TestPatchRealDetector(t *testing.T) {
	b, err := os.ReadFile(defaultPackFile(t, DefaultDetectorFile))
	if err != nil {
		t.Fatal(err)
	}
	patched, err := PatchDynamicBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	v := view(t, patched)
	if got := v.inputs["input"]; !slices.Equal(got, []string{"batch", "3", "240", "320"}) {
		t.Errorf("input dims %v", got)
	}
	for name, want := range map[string][]string{"scores": {"batch", "4420", "2"}, "boxes": {"batch", "4420", "4"}} {
		if got := v.outputs[name]; !slices.Equal(got, want) {
			t.Errorf("output %s dims %v, want %v", name, got, want)
		}
	}
	if got := sha256Hex(patched); got != defaultBatchDetectorSHA256 {
		t.Errorf("patched detector sha256 %s, want %s (DefaultManifest)", got, defaultBatchDetectorSHA256)
	}
}
