//go:build cgo && onnx

package onnx

import (
	"context"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"gabarit/internal/modeltest"
)

// TestEpSelectionPolicy exercises the C shim behind --device cuda on the CPU
// runtime: it sets the device policy (PREFER_CPU) by the function's index in
// the OrtApi table, then a session made with those options must load and run.
// A wrong index would call another function and fail or crash here.
func TestEpSelectionPolicy(t *testing.T) {
	d := modeltest.Installed(t)
	ms, err := Open(context.Background(), d.Pack("default"), Options{Library: d.ORTLibrary()})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := setPolicy(opts, policyPreferCPU); err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewDynamicAdvancedSession(d.Pack("default")+"/fr_landmark.onnx", []string{"input"}, []string{"output"}, opts)
	if err != nil {
		t.Fatalf("session with the CPU policy: %v", err)
	}
	defer s.Destroy()
	in, err := ort.NewTensor(ort.NewShape(1, 1, 64, 64), make([]float32, 64*64))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	out := []ort.Value{nil}
	if err := s.Run([]ort.Value{in}, out); err != nil {
		t.Fatal(err)
	}
	out[0].Destroy()
}
