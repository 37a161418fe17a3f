//go:build onnx

package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/modeltest"
	"gabarit/internal/pipeline"
	"gabarit/internal/store"
)

// realModel opens the installed default pack (ONNX Runtime) as the server
// opens it; the test fails under GABARIT_REQUIRE_MODELS when it is missing.
func realModel(t testing.TB) (*app.Faces, string) {
	t.Helper()
	dirs := modeltest.Installed(t)
	f, err := app.OpenFaces(context.Background(), app.FaceOptions{Cache: dirs.Root, MinFaceFraction: -1}, pipeline.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, dirs.TestPhotos()
}

// TestRealSearchThroughTheAPI: with the real models, the demo photos are
// ingested by an ingest job, a photo with several faces is analysed for
// the investigator to choose one, and each face searched finds its own
// photo first, at similarity 1, with a crop.
func TestRealSearchThroughTheAPI(t *testing.T) {
	model, photos := realModel(t)
	e := newTestEnv(t, model)
	e.photos = photos
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	op, inv := e.token("olga"), e.token("ivan")
	j := e.ingest(op, e.declareSource(op))
	if j.State != jobDone || j.Images != 6 || j.Faces < 18 {
		t.Fatalf("ingest job = %+v", j)
	}
	probe, err := os.ReadFile(filepath.Join(photos, "sample3.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	st, body := inv.multipart("/api/v1/detect", nil, map[string][][]byte{"photo": {probe}})
	det := decode[detectJSON](t, body)
	if st != http.StatusOK || len(det.Faces) < 2 || det.Width != 1920 {
		t.Fatalf("detect: %d %s", st, body)
	}
	for _, f := range det.Faces {
		st, body := inv.multipart("/api/v1/searches", map[string]string{"purpose": "real search", "face": fmt.Sprint(f.Index)},
			map[string][][]byte{"photo": {probe}})
		res := decode[app.SearchView](t, body)
		if st != http.StatusOK || !res.Match || res.Results[0].Locator != "sample3.jpg" || res.Results[0].Similarity < 0.99 {
			t.Fatalf("search face %d: %d %s", f.Index, st, body)
		}
		top := res.Results[0]
		if d := top.Box[0] - f.Box[0]; d*d > 4 {
			t.Errorf("face %d: the best match is at x=%.0f, the face chosen at x=%.0f", f.Index, top.Box[0], f.Box[0])
		}
		if st, body := inv.do("GET", fmt.Sprintf("/api/v1/faces/%d/crop", top.FaceID), "", nil); st != http.StatusOK || len(body) < 1000 {
			t.Errorf("crop of face %d: %d, %d bytes", top.FaceID, st, len(body))
		}
	}
	// A selfie from the portal is registered whatever it shows.
	st, body = e.anon().multipart("/api/v1/portal/requests", map[string]string{"kind": "access", "contact": "someone@example.org"},
		map[string][][]byte{"selfie": {probe}})
	if st != http.StatusCreated {
		t.Fatalf("portal: %d %s", st, body)
	}
}
