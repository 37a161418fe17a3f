package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"gabarit/internal/store"
)

// FuzzAPIRequestBodies sends arbitrary bodies to every JSON route of the API
// that takes one (through the real handler, authenticated as a user with
// every role, on the fake model) and checks that no body makes the server
// fail: never a 5xx, and every error is the stable {code, message} JSON.
func FuzzAPIRequestBodies(f *testing.F) {
	e := newTestEnv(f, nil)
	e.addUser("fuzz-admin", store.RoleAdmin, store.RoleOperator, store.RoleInvestigator, store.RoleVerifier,
		store.RoleDPO, store.RoleAuditor, store.RoleExaminer)
	e.addUser("fuzz-other", store.RoleInvestigator)
	bearer := e.token("fuzz-admin").bearer
	var routes []*route
	for _, rt := range e.srv.routes {
		if strings.HasPrefix(rt.path, "/api/") && rt.kind != apiUpload && (rt.method == "POST" || rt.method == "PUT" || rt.method == "PATCH") {
			routes = append(routes, rt)
		}
	}
	if len(routes) == 0 {
		f.Fatal("no JSON routes with a body")
	}
	bodies := []string{
		`{}`, `null`, `[]`, `"x"`, `{"unknown":1}`, `{} {}`, `{"name":`,
		`{"name":"fuzz-new","roles":["investigator"],"password":"a long enough password"}`,
		`{"roles":["nonsense"]}`, `{"label":"t","expires_in_days":-1}`,
		`{"kind":"folder","path":"/","controller":"c","purpose":"p","legal_basis":"consent"}`,
		`{"reason":"` + strings.Repeat("é", 300) + `"}`, `{"selected":[1,2,-3]}`,
		`{"face_ids":[9223372036854775807]}`, `{"days":1e400}`,
	}
	for i := range routes { // each route gets two of the bodies, each body a few routes
		for _, b := range []string{bodies[i%len(bodies)], bodies[(i+7)%len(bodies)]} {
			f.Add(uint8(i), uint16(1), []byte(b))
		}
	}
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, which uint8, id uint16, body []byte) {
		rt := routes[int(which)%len(routes)]
		p := strings.ReplaceAll(rt.path, "{id}", strconv.Itoa(int(id)))
		p = strings.ReplaceAll(p, "{name}", "fuzz-other")
		req := httptest.NewRequest(rt.method, p, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+bearer)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with body %q: %d %s", rt.method, p, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var ae struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &ae); err != nil || ae.Code == "" || ae.Message == "" {
				t.Fatalf("%s %s: %d with body %q, not {code, message}", rt.method, p, rec.Code, rec.Body)
			}
			if ae.Code == errUnauthenticated.Code || ae.Code == errForbidden.Code {
				t.Fatalf("%s %s: the fuzzing user lost its access: %s", rt.method, p, rec.Body)
			}
		}
	})
}
