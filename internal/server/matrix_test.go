package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/store"
)

// matrixPath fills a route's path parameters.
func matrixPath(path string) string {
	r := strings.NewReplacer("{id}", "999999", "{face}", "999999", "{name}", "nobody", "{ref}", "R-999999") // ids that do not exist: allowed calls change nothing
	return r.Replace(path)
}

// allRoles are the six roles of the access rules.
var allRoles = []store.Role{store.RoleAdmin, store.RoleOperator, store.RoleInvestigator, store.RoleVerifier, store.RoleDPO, store.RoleAuditor}

// TestRoleMatrix calls every route of the API, the console and the portal
// as each role (one user holding only that role, with an API token) and
// anonymously, and checks the route's access rule: an allowed call gets
// past the access check (whatever the handler then answers for the empty
// request), a refused one gets 403 "forbidden" (401 "unauthenticated", or
// a redirect to the sign-in page for console pages, when anonymous).
func TestRoleMatrix(t *testing.T) {
	e := newTestEnv(t, nil)
	callers := map[string]*client{"anonymous": e.anon()}
	// An examiner holds no route of their own: with investigator, they may
	// search below the operating point.
	for _, r := range append(slices.Clone(allRoles), store.RoleExaminer) {
		name := "u-" + string(r)
		e.addUser(name, r)
		callers[string(r)] = e.token(name)
	}
	routes := e.srv.routes
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		for who, c := range callers {
			var p *principal
			if who != "anonymous" {
				p = &principal{user: store.User{Name: "u-" + who, Roles: []store.Role{store.Role(who)}}}
			}
			want := rt.allowed(p)
			st, body := matrixCall(c, rt)
			var ae apiError
			_ = json.Unmarshal(body, &ae)
			redirect := st == http.StatusSeeOther || st == http.StatusFound
			denied := (st == http.StatusForbidden && ae.Code == "forbidden") || (st == http.StatusUnauthorized && ae.Code == "unauthenticated")
			if isPage(rt) {
				// Pages answer with HTML: a 403 page, or the sign-in page
				// for anonymous callers (a console form that acted also
				// redirects, but only for allowed callers).
				denied = st == http.StatusForbidden || st == http.StatusUnauthorized || (who == "anonymous" && redirect && !rt.public)
			}
			if want && denied {
				t.Errorf("%s %s as %s: refused (%d %s), want allowed", rt.method, rt.path, who, st, short(body))
			}
			if !want && !denied {
				t.Errorf("%s %s as %s: %d %s, want refused", rt.method, rt.path, who, st, short(body))
			}
		}
	}
	// The matrix above is what the table says; check the table against the
	// issue's rules for the routes they name.
	rule := func(method, path string, roles ...store.Role) {
		t.Helper()
		i := slices.IndexFunc(routes, func(rt *route) bool { return rt.method == method && rt.path == path })
		if i < 0 {
			t.Errorf("no route %s %s", method, path)
			return
		}
		rt := routes[i]
		for _, r := range allRoles {
			got := rt.allowed(&principal{user: store.User{Name: "x", Roles: []store.Role{r}}})
			if got != slices.Contains(roles, r) {
				t.Errorf("%s %s: role %s allowed=%v, want %v", method, path, r, got, !got)
			}
		}
	}
	rule("POST", "/api/v1/sources", store.RoleOperator)
	rule("POST", "/api/v1/sources/{id}/ingest", store.RoleOperator)
	rule("POST", "/api/v1/searches", store.RoleInvestigator)
	rule("POST", "/api/v1/searches/{id}/confirmations", store.RoleVerifier)
	rule("POST", "/api/v1/rights/{id}/process", store.RoleDPO)
	rule("GET", "/api/v1/audit", store.RoleAuditor, store.RoleDPO)
	rule("POST", "/api/v1/exports/authority", store.RoleDPO, store.RoleAuditor)
	rule("POST", "/api/v1/users", store.RoleAdmin)
	rule("GET", "/api/v1/faces/{id}/crop", store.RoleInvestigator, store.RoleVerifier)
	rule("GET", "/api/v1/faces/{id}/image.jpg", store.RoleInvestigator, store.RoleVerifier)
	rule("GET", "/api/v1/searches", store.RoleInvestigator, store.RoleVerifier, store.RoleAuditor)
	rule("GET", "/api/v1/searches/{id}/results", store.RoleInvestigator, store.RoleVerifier, store.RoleAuditor)
	rule("GET", "/api/v1/searches/{id}/probe.jpg", store.RoleInvestigator, store.RoleVerifier, store.RoleAuditor)
	rule("POST", "/api/v1/searches/{id}/reject", store.RoleVerifier)
	rule("GET", "/searches", store.RoleInvestigator, store.RoleVerifier, store.RoleAuditor)
	rule("GET", "/searches/{id}/faces/{face}", store.RoleInvestigator, store.RoleVerifier, store.RoleAuditor)
	rule("GET", "/searches/{id}/faces/{face}/confirm", store.RoleVerifier)
	rule("POST", "/searches/{id}/confirm", store.RoleVerifier)
	rule("POST", "/searches/{id}/reject", store.RoleVerifier)
}

func isPage(rt *route) bool { return rt.kind == page || rt.kind == pageForm }

// matrixCall sends the emptiest plausible request to a route.
func matrixCall(c *client, rt *route) (int, []byte) {
	path := matrixPath(rt.path)
	switch {
	case rt.method == "GET" || rt.method == "DELETE":
		return c.do(rt.method, path, "", nil)
	case rt.kind == apiUpload || rt.kind == pageForm:
		return c.multipart(path, map[string]string{}, nil)
	case isPage(rt):
		return c.do(rt.method, path, "application/x-www-form-urlencoded", strings.NewReader(""))
	}
	return c.do(rt.method, path, "application/json", bytes.NewReader([]byte("{}")))
}

func short(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// TestDisabledUserLosesAccess: disabling a user ends their sessions and
// revokes their tokens at once.
func TestDisabledUserLosesAccess(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("ada", store.RoleAdmin)
	e.addUser("dora", store.RoleDPO)
	sess := e.login("dora")
	tok := e.token("dora")
	for _, c := range []*client{sess, tok} {
		if st, body := c.json("GET", "/api/v1/rights", nil); st != http.StatusOK {
			t.Fatalf("before: %d %s", st, body)
		}
	}
	if st, body := e.login("ada").json("POST", "/api/v1/users/dora/disable", nil); st != http.StatusNoContent {
		t.Fatalf("disable: %d %s", st, body)
	}
	for _, c := range []*client{sess, tok} {
		if st, body := c.json("GET", "/api/v1/rights", nil); st != http.StatusUnauthorized {
			t.Errorf("after disable: %d %s, want 401", st, body)
		}
	}
	st, body := e.anon().json("POST", "/api/v1/session", map[string]string{"name": "dora", "password": testPassword})
	if st != http.StatusUnauthorized {
		t.Errorf("disabled login: %d %s", st, body)
	}
}
