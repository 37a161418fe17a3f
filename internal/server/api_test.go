package server

import (
	"fmt"
	"image/color"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

func TestSmokeSearchFlow(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", store.RoleOperator)
	e.addUser("ivan", store.RoleInvestigator)
	op := e.login("olga")
	id := e.declareSource(op)
	j := e.ingest(op, id)
	if j.State != jobDone || j.Images != 3 || j.Faces != 3 {
		t.Fatalf("job = %+v", j)
	}
	probe, err := os.ReadFile(filepath.Join(e.photos, "p1.png"))
	if err != nil {
		t.Fatal(err)
	}
	inv := e.login("ivan")
	st, body := inv.multipart("/api/v1/searches", map[string]string{"purpose": "test case", "case": "C-1"}, map[string][][]byte{"photo": {probe}})
	if st != http.StatusOK {
		t.Fatalf("search: %d %s", st, body)
	}
	res := decode[app.SearchView](t, body)
	if !res.Match || len(res.Results) != 1 || res.Results[0].Locator != "p1.png" {
		t.Fatalf("search = %+v", res)
	}
	st, body = inv.do("GET", fmt.Sprintf("/api/v1/faces/%d/crop", res.Results[0].FaceID), "", nil)
	if st != http.StatusOK {
		t.Fatalf("crop: %d %s", st, body)
	}
	st, body = inv.multipart("/api/v1/searches", map[string]string{"purpose": "x"}, map[string][][]byte{"photo": {testPNG(t, color.RGBA{})}})
	if st != http.StatusUnprocessableEntity {
		t.Fatalf("no-face search: %d %s", st, body)
	}
}
