//go:build cgo && onnx

package modelpack

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"gabarit/internal/modeltest"

	ort "github.com/yalue/onnxruntime_go"
)

var ortOnce struct {
	sync.Once
	err error
}

// initORT initialises ONNX Runtime from $GABARIT_ORT_LIB or the installed
// library, or skips the test.
func initORT(t *testing.T) {
	t.Helper()
	lib := os.Getenv("GABARIT_ORT_LIB")
	if lib == "" {
		lib = modeltest.Installed(t).ORTLibrary()
	}
	ortOnce.Do(func() {
		ort.SetSharedLibraryPath(lib)
		ortOnce.err = ort.InitializeEnvironment()
	})
	if ortOnce.err != nil {
		t.Fatalf("initialise ONNX Runtime %s: %v", lib, ortOnce.err)
	}
}

// runModel runs a float32 model on one input and returns its outputs' data and shapes.
func runModel(t *testing.T, path string, input []float32, shape []int64, outputs []string) ([][]float32, []ort.Shape) {
	t.Helper()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	opts.SetIntraOpNumThreads(2)
	s, err := ort.NewDynamicAdvancedSession(path, []string{"input"}, outputs, opts)
	if err != nil {
		t.Fatalf("session %s: %v", filepath.Base(path), err)
	}
	defer s.Destroy()
	in, err := ort.NewTensor(ort.NewShape(shape...), input)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	outs := make([]ort.Value, len(outputs))
	if err := s.Run([]ort.Value{in}, outs); err != nil {
		t.Fatalf("run %s at batch %d: %v", filepath.Base(path), shape[0], err)
	}
	data := make([][]float32, len(outs))
	shapes := make([]ort.Shape, len(outs))
	for i, o := range outs {
		tt, ok := o.(*ort.Tensor[float32])
		if !ok {
			t.Fatalf("output %s is %T", outputs[i], o)
		}
		data[i] = append([]float32(nil), tt.GetData()...)
		shapes[i] = tt.GetShape()
		o.Destroy()
	}
	return data, shapes
}

// TestPatchedModelsRunBatched runs the patched models at batch 8 and checks
// every row against the original model at batch 1.
func TestPatchedModelsRunBatched(t *testing.T) {
	initORT(t)
	tests := []struct {
		name    string
		file    string
		chw     []int64
		outputs []string
	}{
		{"embedder", DefaultEmbedderFile, []int64{3, 112, 112}, []string{"output"}},
		{"detector", DefaultDetectorFile, []int64{3, 240, 320}, []string{"scores", "boxes"}},
		{"landmarks", DefaultLandmarksFile, []int64{1, 64, 64}, []string{"output"}},
	}
	const batch = 8
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := defaultPackFile(t, tc.file)
			b, err := os.ReadFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			patched, err := PatchDynamicBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			pp := filepath.Join(t.TempDir(), "batch.onnx")
			if err := os.WriteFile(pp, patched, 0o644); err != nil {
				t.Fatal(err)
			}
			row := int(tc.chw[0] * tc.chw[1] * tc.chw[2])
			rng := rand.New(rand.NewPCG(1, 2))
			input := make([]float32, batch*row)
			for i := range input {
				input[i] = rng.Float32()*2 - 1
			}
			shape := append([]int64{batch}, tc.chw...)
			got, gotShapes := runModel(t, pp, input, shape, tc.outputs)
			for k, s := range gotShapes {
				if s[0] != batch {
					t.Fatalf("output %s shape %v, want batch %d", tc.outputs[k], s, batch)
				}
			}
			if n := len(got[0]) / batch; slices.Equal(got[0][:n], got[0][n:2*n]) {
				t.Fatalf("rows 0 and 1 of %s are equal: the test input does not exercise the model", tc.outputs[0])
			}
			worst := 0.0
			for r := 0; r < batch; r++ {
				want, _ := runModel(t, orig, input[r*row:(r+1)*row], append([]int64{1}, tc.chw...), tc.outputs)
				for k := range tc.outputs {
					n := len(want[k])
					if len(got[k]) != batch*n {
						t.Fatalf("output %s: %d values, want %d×%d", tc.outputs[k], len(got[k]), batch, n)
					}
					for i, w := range want[k] {
						d := math.Abs(float64(got[k][r*n+i]-w)) / math.Max(1, math.Abs(float64(w)))
						worst = math.Max(worst, d)
					}
				}
			}
			t.Logf("%s: batch %d vs batch 1, largest relative difference %.2g", tc.name, batch, worst)
			if worst > 1e-4 {
				t.Errorf("batch %d differs from batch 1 by up to %g", batch, worst)
			}
		})
	}
}
