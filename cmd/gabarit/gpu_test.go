//go:build cgo && onnx

package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/modeltest"
)

// exitStatus is the status main exits with for err.
func exitStatus(err error) int {
	var ee exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

// TestDeviceCUDAWithoutGPU checks that --device cuda, where the CUDA
// runtime or a GPU is missing, stops with an error that names what is
// missing and what to do, instead of crashing or running on the CPU.
func TestDeviceCUDAWithoutGPU(t *testing.T) {
	d := modeltest.Installed(t)
	photo := filepath.Join(d.TestPhotos(), "sample1.jpg")

	t.Run("runtime not installed", func(t *testing.T) {
		// An installation with the model pack but no CUDA runtime.
		cache := t.TempDir()
		if err := os.MkdirAll(filepath.Join(cache, "packs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(d.Pack("default"), filepath.Join(cache, "packs", "default")); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCLI(t, "faces", "--device", "cuda", "--cache", cache, "--json", photo)
		if got := exitStatus(err); got != 1 {
			t.Fatalf("exit status %d (%v), want 1", got, err)
		}
		if out != "" {
			t.Errorf("printed results without the GPU: %q", out)
		}
		msg := err.Error()
		for _, want := range []string{"CUDA build of ONNX Runtime is not installed", filepath.Join(cache, "ort"), "gabarit setup --gpu", "--device cpu"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		}
		if strings.Count(msg, "gabarit setup") != 1 {
			t.Errorf("error %q gives its advice more than once", msg)
		}
	})

	t.Run("runtime installed", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(d.GPULibraryDir(), "libonnxruntime_providers_cuda.so")); err != nil {
			t.Skipf("CUDA runtime not installed (gabarit setup --gpu): %v", err)
		}
		out, _, err := runCLI(t, "faces", "--device", "cuda", "--json", photo)
		if err == nil {
			t.Skip("a GPU is usable here; this test checks the error on a machine without one")
		}
		if got := exitStatus(err); got != 1 {
			t.Fatalf("exit status %d (%v), want 1", got, err)
		}
		if out != "" {
			t.Errorf("printed results without the GPU: %q", out)
		}
		msg := err.Error()
		if !strings.Contains(msg, "--device cpu") || !(strings.Contains(msg, "CUDA 13 and cuDNN 9") || strings.Contains(msg, "found no GPU")) {
			t.Errorf("error %q does not say what is missing and what to do", msg)
		}
	})
}
