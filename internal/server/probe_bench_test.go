//go:build onnx

package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/modeltest"
	"gabarit/internal/pipeline"
	"gabarit/internal/store"
)

// BenchmarkDetectThenSearch is the console's two steps on one photo
// (sample2.jpg, 1920×1367, three faces), through the API with the real
// models: find its faces (POST /api/v1/detect), then search one of them
// (POST /api/v1/searches), sending the photo again (search=photo, as the
// console did) or the detect step's handle (search=handle).
func BenchmarkDetectThenSearch(b *testing.B) {
	dirs := modeltest.Installed(b)
	model, err := app.OpenFaces(context.Background(), app.FaceOptions{Cache: dirs.Root, MinFaceFraction: -1}, pipeline.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { model.Close() })
	e := newTestEnv(b, model)
	e.addUser("ivan", store.RoleInvestigator)
	inv := e.token("ivan")
	photo, err := os.ReadFile(filepath.Join(dirs.TestPhotos(), "sample2.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"photo", "handle"} {
		b.Run("search="+mode, func(b *testing.B) {
			b.SetBytes(int64(len(photo)))
			for b.Loop() {
				st, body := inv.multipart("/api/v1/detect", nil, map[string][][]byte{"photo": {photo}})
				if st != http.StatusOK {
					b.Fatalf("detect: %d %s", st, body)
				}
				d := decode[detectJSON](b, body)
				fields := map[string]string{"purpose": "benchmark", "face": "0"}
				files := map[string][][]byte{"photo": {photo}}
				if mode == "handle" {
					fields["probe"], files = d.Probe, nil
				}
				if st, body := inv.multipart("/api/v1/searches", fields, files); st != http.StatusOK {
					b.Fatalf("search: %d %s", st, body)
				}
			}
		})
	}
}
