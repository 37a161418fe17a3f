package server

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"gabarit/internal/store"
)

// handlerFunc serves one route for principal p (nil on a public route
// called without credentials). A returned error is answered by fail.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// route is one method and path, with who may call it.
type route struct {
	method string
	path   string // a net/http pattern path, e.g. /api/v1/sources/{id}
	// public routes need no account; the others need a signed-in user
	// holding one of roles (any role, when roles is empty).
	public bool
	roles  []store.Role
	// kind says how errors are answered and bodies limited.
	kind routeKind
	h    handlerFunc
}

// routeKind is what a route serves.
type routeKind int

const (
	apiJSON   routeKind = iota // JSON in, JSON out
	apiUpload                  // multipart photos in, JSON out
	apiFile                    // JSON or nothing in, a file out
	page                       // console or portal HTML
	pageForm                   // console or portal HTML, multipart photos in
)

// anyone marks a route every signed-in user may call.
var anyone = []store.Role(nil)

// Roles named in the access rules.
var (
	admin        = store.RoleAdmin
	operator     = store.RoleOperator
	investigator = store.RoleInvestigator
	verifier     = store.RoleVerifier
	dpo          = store.RoleDPO
	auditor      = store.RoleAuditor
)

func roles(rs ...store.Role) []store.Role { return rs }

// allowed reports whether p may call rt.
func (rt *route) allowed(p *principal) bool {
	if rt.public {
		return true
	}
	if p == nil {
		return false
	}
	if len(rt.roles) == 0 {
		return p.user.Disabled.IsZero()
	}
	return slices.ContainsFunc(rt.roles, p.user.Has)
}

// unsafe reports whether a method changes state, and so needs a CSRF token
// from a cookie session.
func unsafe(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// buildHandler registers every route on a mux, each path once with its
// methods, behind the middleware.
func (s *Server) buildHandler() http.Handler {
	s.routes = slices.Concat(s.apiRoutes(), s.rightsRoutes(), s.pageRoutes())
	byPath := map[string][]*route{}
	var paths []string
	for _, rt := range s.routes {
		if byPath[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		byPath[rt.path] = append(byPath[rt.path], rt)
	}
	mux := http.NewServeMux()
	for _, path := range paths {
		mux.Handle(path, s.dispatch(byPath[path]))
	}
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, apiJSON, errNotFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, page, errNotFound)
	})
	return s.middleware(mux)
}

// dispatch serves the routes of one path by method, answering others with
// 405 and the Allow header.
func (s *Server) dispatch(rts []*route) http.Handler {
	var allow []string
	for _, rt := range rts {
		allow = append(allow, rt.method)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range rts {
			if rt.method == r.Method || (rt.method == http.MethodGet && r.Method == http.MethodHead) {
				s.serve(rt, w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.fail(w, r, rts[0].kind, errMethod)
	})
}

// serve authenticates, authorises and limits a request, then runs the route.
func (s *Server) serve(rt *route, w http.ResponseWriter, r *http.Request) {
	setRoute(r, rt.method+" "+rt.path)
	p, err := s.authenticate(r)
	if err != nil && !rt.public {
		s.fail(w, r, rt.kind, err)
		return
	}
	if !rt.allowed(p) {
		if p == nil {
			s.fail(w, r, rt.kind, errUnauthenticated)
		} else {
			s.fail(w, r, rt.kind, errForbidden)
		}
		return
	}
	limit := int64(maxJSONBody)
	if rt.kind == apiUpload || rt.kind == pageForm {
		limit = s.cfg.MaxUpload
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if unsafe(r.Method) {
		if err := s.checkOrigin(r, p); err != nil {
			s.fail(w, r, rt.kind, err)
			return
		}
	}
	if err := rt.h(w, r, p); err != nil {
		s.fail(w, r, rt.kind, err)
	}
}

// checkOrigin defends state-changing requests against cross-site forgery: a
// browser's request must come from this site (Origin, Sec-Fetch-Site), and
// one made with a session cookie must carry the session's CSRF token, in
// the X-CSRF-Token header or the csrf_token form field. Bearer-token
// requests carry no ambient credential and need no token.
func (s *Server) checkOrigin(r *http.Request, p *principal) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return errCSRF
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errCSRF
		}
	}
	if p == nil || p.session == nil {
		return nil
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		var err error
		if tok, err = formValue(r, "csrf_token"); err != nil {
			return err // a body over the limit: say so, rather than blame the token
		}
	}
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(p.session.CSRF)) != 1 {
		return errCSRF
	}
	return nil
}

// formValue reads a field of a urlencoded or multipart form without
// consuming more than the route's body limit; the error is that of a body
// over the limit (an *http.MaxBytesError), a form that cannot be read is a
// blank value.
func formValue(r *http.Request, name string) (string, error) {
	ct := r.Header.Get("Content-Type")
	var err error
	switch {
	case strings.HasPrefix(ct, "multipart/form-data"):
		if r.MultipartForm == nil {
			err = r.ParseMultipartForm(8 << 20)
		}
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		err = r.ParseForm()
	default:
		return "", nil
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return "", err
	}
	if err != nil {
		return "", nil
	}
	return r.PostFormValue(name), nil
}
