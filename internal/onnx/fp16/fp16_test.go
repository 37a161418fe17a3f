package fp16

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"gabarit/internal/setup"
)

func TestFromFloat32(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"max half", 65504, 0x7bff},
		{"overflow", 65520, 0x7c00},
		{"smallest normal", 6.103515625e-05, 0x0400},
		{"smallest subnormal", 5.960464477539063e-08, 0x0001},
		{"below half the smallest subnormal", 2e-08, 0x0000},
		{"tie to even down", 1 + 1.0/2048, 0x3c00},
		{"tie to even up", 1 + 3.0/2048, 0x3c02},
		{"one third", 1.0 / 3, 0x3555},
		{"inf", float32(math.Inf(1)), 0x7c00},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromFloat32(tt.in); got != tt.want {
				t.Errorf("FromFloat32(%g) = %#04x, want %#04x", tt.in, got, tt.want)
			}
		})
	}
}

// TestRoundTrip checks every finite half value survives the trip through
// float32, and that rounding a float32 lands within half a unit.
func TestRoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := FromFloat32(f); got != uint16(h) {
			t.Fatalf("half %#04x → %g → %#04x", h, f, got)
		}
	}
	for _, v := range []float32{0.1, -0.7, 3.14159, 1234.5678, 1e-3, -5e-6} {
		back := ToFloat32(FromFloat32(v))
		if rel := math.Abs(float64(back-v)) / math.Abs(float64(v)); rel > 1.0/2048+1e-9 && math.Abs(float64(v)) > 6.2e-5 {
			t.Errorf("%g → %g: relative error %g", v, back, rel)
		}
	}
}

// TestConvertEmbedder converts the installed default embedder and checks
// the result's structure: half the weight bytes, Cast nodes at the float
// input and output, and no float initializer left.
func TestConvertEmbedder(t *testing.T) {
	path := filepath.Join(setup.DefaultDirs().Pack("default"), "fr_feature_batch.onnx")
	src, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("GABARIT_REQUIRE_MODELS") != "" {
			t.Fatal(err)
		}
		t.Skipf("default pack not installed (run gabarit setup): %v", err)
	}
	out, err := Convert(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > len(src)*6/10 {
		t.Errorf("converted model is %d bytes, want about half of %d", len(out), len(src))
	}
	top, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	var g []field
	for _, f := range top {
		if f.Num == modelGraph {
			g, _ = parse(f.Val)
		}
	}
	casts := 0
	for _, f := range g {
		switch f.Num {
		case graphInitializer:
			tf, _ := parse(f.Val)
			for _, x := range tf {
				if x.Num == tensorDataType && x.V == typeFloat {
					t.Fatalf("float initializer %q left", firstString(tf, 8))
				}
			}
		case graphNode:
			nf, _ := parse(f.Val)
			if len(firstString(nf, nodeName)) > 10 && firstString(nf, nodeName)[:10] == "fp16_cast_" {
				casts++
			}
		}
	}
	if casts != 2 {
		t.Errorf("%d boundary Cast nodes, want 2 (input and output)", casts)
	}
}
