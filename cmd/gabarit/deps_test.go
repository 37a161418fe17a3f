package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goTool returns the go command of the toolchain running the tests, which
// need not be on PATH.
func goTool(t *testing.T) string {
	t.Helper()
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" { //nolint:staticcheck // GOROOT of this test binary's toolchain is what we want
		return p
	}
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	return p
}

// TestDeps keeps ONNX Runtime out of the pure-Go build, and the face
// pipeline free of databases and HTTP.
func TestDeps(t *testing.T) {
	list := func(env []string, pkg string, tags ...string) map[string]bool {
		t.Helper()
		args := []string{"list", "-deps"}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, " "))
		}
		cmd := exec.Command(goTool(t), append(args, pkg)...)
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
	// The use cases take their adapters as interfaces: they never import the
	// ONNX binding or an HTTP stack, and never talk SQL themselves (they use
	// the store's plain types, so database/sql is only a transitive dependency).
	for _, pkg := range []string{"gabarit/internal/ingest", "gabarit/internal/search", "gabarit/internal/retention", "gabarit/internal/vstore", "gabarit/internal/rights"} {
		deps := list([]string{"CGO_ENABLED=1"}, pkg, "onnx", "jpegturbo")
		for _, banned := range []string{ort, "gabarit/internal/onnx", "net/http"} {
			if deps[banned] {
				t.Errorf("%s imports %s", pkg, banned)
			}
		}
		cmd := exec.Command(goTool(t), "list", "-f", "{{join .Imports \" \"}}", pkg)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		if strings.Contains(" "+string(out)+" ", " database/sql ") {
			t.Errorf("%s imports database/sql directly", pkg)
		}
	}
	// The database drivers are linked by the command alone (through
	// internal/store/drivers): the store, the vault and every use case work
	// on the store's API, whichever database is behind it.
	const sqliteDriver, pgDriver = "modernc.org/sqlite", "github.com/jackc/pgx/v5"
	for _, pkg := range []string{"gabarit/internal/store", "gabarit/internal/vault", "gabarit/internal/ingest", "gabarit/internal/search",
		"gabarit/internal/retention", "gabarit/internal/vstore", "gabarit/internal/rights", "gabarit/internal/dsr",
		"gabarit/internal/app", "gabarit/internal/server"} {
		deps := list([]string{"CGO_ENABLED=1"}, pkg, "onnx", "jpegturbo")
		for _, banned := range []string{sqliteDriver, pgDriver} {
			if deps[banned] {
				t.Errorf("%s links the database driver %s", pkg, banned)
			}
		}
	}
	if deps := list([]string{"CGO_ENABLED=0"}, "gabarit/cmd/gabarit"); !deps[sqliteDriver] || !deps[pgDriver] {
		t.Errorf("cmd/gabarit does not link both database drivers (%s: %v, %s: %v)", sqliteDriver, deps[sqliteDriver], pgDriver, deps[pgDriver])
	}
	for _, pkg := range []string{"gabarit/internal/pipeline", "gabarit/internal/face", "gabarit/internal/imageproc", "gabarit/internal/eval"} {
		deps := list([]string{"CGO_ENABLED=1"}, pkg, "onnx", "jpegturbo")
		for _, banned := range []string{ort, "gabarit/internal/onnx", "database/sql", "net/http"} {
			if deps[banned] {
				t.Errorf("%s imports %s", pkg, banned)
			}
		}
	}
	// The wiring shared by the CLI and the server serves no HTTP: among the
	// project's packages it links, only the Weaviate index (an HTTP and
	// gRPC client of the remote engine) imports net/http. The server talks
	// to the face path and the store through app and the store's types,
	// never to ONNX Runtime or SQL itself.
	appDeps := exec.Command(goTool(t), "list", "-deps", "-tags", "onnx jpegturbo", "-f", "{{.ImportPath}} {{join .Imports \" \"}}",
		"gabarit/internal/app")
	appDeps.Env = append(appDeps.Environ(), "CGO_ENABLED=1")
	out, err := appDeps.Output()
	if err != nil {
		t.Fatalf("go list gabarit/internal/app: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if strings.HasPrefix(pkg, "gabarit/") && pkg != "gabarit/internal/vindex/weaviate" &&
			strings.Contains(" "+imports+" ", " net/http ") {
			t.Errorf("%s (linked by gabarit/internal/app) imports net/http", pkg)
		}
	}
	cmd := exec.Command(goTool(t), "list", "-f", "{{join .Imports \" \"}}", "gabarit/internal/server")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("go list gabarit/internal/server: %v", err)
	}
	for _, banned := range []string{ort, "gabarit/internal/onnx", "database/sql"} {
		if strings.Contains(" "+strings.TrimSpace(string(out))+" ", " "+banned+" ") {
			t.Errorf("gabarit/internal/server imports %s directly", banned)
		}
	}
}
