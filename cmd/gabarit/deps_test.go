package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps ONNX Runtime out of the pure-Go build, and the face
// pipeline free of databases and HTTP.
func TestDeps(t *testing.T) {
	list := func(env []string, pkg string, tags ...string) map[string]bool {
		t.Helper()
		args := []string{"list", "-deps"}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, " "))
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		m := map[string]bool{}
		for _, l := range strings.Fields(string(out)) {
			m[l] = true
		}
		return m
	}
	const ort = "github.com/yalue/onnxruntime_go"
	if list([]string{"CGO_ENABLED=0"}, "gabarit/cmd/gabarit")[ort] {
		t.Errorf("the pure-Go build of cmd/gabarit links %s", ort)
	}
	for _, pkg := range []string{"gabarit/internal/pipeline", "gabarit/internal/face", "gabarit/internal/imageproc", "gabarit/internal/eval"} {
		deps := list([]string{"CGO_ENABLED=1"}, pkg, "onnx", "jpegturbo")
		for _, banned := range []string{ort, "gabarit/internal/onnx", "database/sql", "net/http"} {
			if deps[banned] {
				t.Errorf("%s imports %s", pkg, banned)
			}
		}
	}
}
