package server

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
	"gabarit/internal/store"
)

//go:embed web/static web/templates
var webFS embed.FS

// pageRoutes are the console and the portal: server-rendered pages that
// follow the same access rules as the API (see routes.go). Forms post
// urlencoded or multipart bodies with the session's csrf_token; scripts
// only enhance them (drag and drop, face boxes, live job progress).
func (s *Server) pageRoutes() []*route {
	return []*route{
		{method: "GET", path: "/{$}", public: true, kind: page, h: s.pageHome},
		{method: "GET", path: "/login", public: true, kind: page, h: s.pageLogin},
		{method: "POST", path: "/login", public: true, kind: page, h: s.pageLoginPost},
		{method: "POST", path: "/logout", roles: anyone, kind: page, h: s.pageLogout},

		{method: "GET", path: "/search", roles: roles(investigator), kind: page, h: s.pageSearch},
		{method: "POST", path: "/search", roles: roles(investigator), kind: pageForm, h: s.pageSearchPost},
		{method: "GET", path: "/searches", roles: roles(investigator, verifier, auditor), kind: page, h: s.pageSearches},
		{method: "GET", path: "/searches/{id}", roles: roles(investigator, verifier, auditor), kind: page, h: s.pageSearchRecord},
		{method: "GET", path: "/searches/{id}/faces/{face}", roles: roles(investigator, verifier, auditor), kind: page, h: s.pageVerify},
		{method: "GET", path: "/searches/{id}/faces/{face}/confirm", roles: roles(verifier), kind: page, h: s.pageConfirmStep},
		{method: "POST", path: "/searches/{id}/confirm", roles: roles(verifier), kind: page, h: s.pageConfirm},
		{method: "POST", path: "/searches/{id}/reject", roles: roles(verifier), kind: page, h: s.pageReject},

		{method: "GET", path: "/sources", roles: roles(admin, operator, dpo, auditor), kind: page, h: s.pageSources},
		{method: "POST", path: "/sources", roles: roles(operator), kind: page, h: s.pageAddSource},
		{method: "POST", path: "/sources/{id}/suspend", roles: roles(operator), kind: page, h: s.pageSourceState(store.StateSuspended)},
		{method: "POST", path: "/sources/{id}/resume", roles: roles(operator), kind: page, h: s.pageSourceState(store.StateActive)},
		{method: "POST", path: "/sources/{id}/ingest", roles: roles(operator), kind: page, h: s.pageStartIngest},
		{method: "GET", path: "/sources/{id}/retire", roles: roles(operator), kind: page, h: s.pageRetireStep},
		{method: "POST", path: "/sources/{id}/retire", roles: roles(operator), kind: page, h: s.pageRetireSource},
		{method: "POST", path: "/jobs/{id}/cancel", roles: roles(operator), kind: page, h: s.pageCancelJob},
		{method: "POST", path: "/quarantine/{id}/release", roles: roles(admin, operator), kind: page, h: s.pageQuarantine(s.releaseFace, "released")},
		{method: "POST", path: "/quarantine/{id}/erase", roles: roles(admin, operator), kind: page, h: s.pageQuarantine(s.eraseQuarantined, "face-gone")},

		{method: "GET", path: "/rights", roles: roles(dpo, auditor), kind: page, h: s.pageRights},
		{method: "POST", path: "/rights", roles: roles(dpo), kind: pageForm, h: s.pageRegisterRights},
		{method: "GET", path: "/rights/{id}", roles: roles(dpo, auditor), kind: page, h: s.pageRightsRequest},
		{method: "POST", path: "/rights/{id}/candidates", roles: roles(dpo), kind: page, h: s.pageFindCandidates},
		{method: "POST", path: "/rights/{id}/review", roles: roles(dpo), kind: page, h: s.pageReviewRights},
		{method: "POST", path: "/rights/{id}/identity", roles: roles(dpo), kind: page, h: s.pageIdentifyRights},
		{method: "GET", path: "/rights/{id}/process", roles: roles(dpo), kind: page, h: s.pageProcessStep},
		{method: "POST", path: "/rights/{id}/process", roles: roles(dpo), kind: page, h: s.pageProcessRights},
		{method: "POST", path: "/rights/{id}/refuse", roles: roles(dpo), kind: page, h: s.pageRefuseRights},
		{method: "POST", path: "/rights/{id}/extend", roles: roles(dpo), kind: page, h: s.pageExtendRights},
		{method: "POST", path: "/rights/{id}/lift", roles: roles(dpo), kind: page, h: s.pageLiftRestriction},
		{method: "POST", path: "/rights/{id}/notices", roles: roles(dpo), kind: page, h: s.pageRightsNotice},
		{method: "GET", path: "/rights/{id}/record", roles: roles(dpo), kind: page, h: s.pageRightsRecord},

		{method: "GET", path: "/audit", roles: roles(auditor, dpo), kind: page, h: s.pageAudit},
		{method: "GET", path: "/records", roles: roles(admin, dpo, auditor), kind: page, h: s.pageRecords},
		{method: "POST", path: "/records", roles: roles(admin, dpo), kind: page, h: s.pageSaveRecords},
		{method: "POST", path: "/records/export", roles: roles(dpo, auditor), kind: page, h: s.pageAuthorityExport},

		{method: "GET", path: "/users", roles: roles(admin), kind: page, h: s.pageUsers},
		{method: "POST", path: "/users", roles: roles(admin), kind: page, h: s.pageAddUser},
		{method: "GET", path: "/users/{name}", roles: roles(admin), kind: page, h: s.pageUser},
		{method: "POST", path: "/users/{name}/roles", roles: roles(admin), kind: page, h: s.pageSetRoles},
		{method: "POST", path: "/users/{name}/password", roles: roles(admin), kind: page, h: s.pageSetPassword},
		{method: "GET", path: "/users/{name}/disable", roles: roles(admin), kind: page, h: s.pageDisableStep},
		{method: "POST", path: "/users/{name}/disable", roles: roles(admin), kind: page, h: s.pageDisableUser},
		{method: "POST", path: "/users/{name}/enable", roles: roles(admin), kind: page, h: s.pageEnableUser},
		{method: "GET", path: "/tokens", roles: anyone, kind: page, h: s.pageTokens},
		{method: "POST", path: "/tokens", roles: anyone, kind: page, h: s.pageCreateToken},
		{method: "POST", path: "/tokens/{id}/revoke", roles: anyone, kind: page, h: s.pageRevokeToken},

		{method: "GET", path: "/portal", public: true, kind: page, h: s.pagePortal},
		{method: "POST", path: "/portal", public: true, kind: pageForm, h: s.pagePortalPost},
		{method: "GET", path: "/portal/status", public: true, kind: page, h: s.pagePortalStatus},
	}
}

// navItems are the console's sections, shown to the users whose roles
// allow their page.
var navItems = []struct{ Path, Label string }{
	{"/search", "Search"},
	{"/searches", "Searches"},
	{"/sources", "Sources"},
	{"/rights", "Rights"},
	{"/audit", "Audit"},
	{"/records", "Records"},
	{"/users", "Users"},
	{"/tokens", "API tokens"},
}

// navLink is one entry of the top bar.
type navLink struct {
	Path, Label string
	Active      bool
}

// pageData is what the layout renders: the signed-in user, the
// navigation, a notice or an error, and the page's own data in Body.
type pageData struct {
	Title   string
	Public  bool // the portal and the sign-in page: no console navigation
	User    *store.User
	CSRF    string
	Nav     []navLink
	Notice  string
	Error   string
	Scripts []string
	Body    any

	s *Server
	p *principal
}

// Can reports whether the signed-in user may call method path (a route
// pattern such as "POST /sources/{id}/ingest"), for templates to show only
// the actions the server would allow.
func (d *pageData) Can(method, path string) bool {
	if d.s == nil {
		return false
	}
	for _, rt := range d.s.routes {
		if rt.method == method && rt.path == path {
			return rt.allowed(d.p)
		}
	}
	return false
}

// newPage builds the layout's data for p (nil: nobody signed in).
func (s *Server) newPage(r *http.Request, p *principal, title string, body any) *pageData {
	d := &pageData{Title: title, Body: body, s: s, p: p}
	if p == nil {
		d.Public = true
		return d
	}
	u := p.user
	d.User = &u
	if p.session != nil {
		d.CSRF = p.session.CSRF
	}
	for _, n := range navItems {
		if !d.Can("GET", n.Path) {
			continue
		}
		active := r.URL.Path == n.Path || strings.HasPrefix(r.URL.Path, n.Path+"/")
		d.Nav = append(d.Nav, navLink{Path: n.Path, Label: n.Label, Active: active})
	}
	return d
}

// render writes page name with d at status. The page is rendered to a
// buffer first, so that a template error is a clean 500.
func (s *Server) render(w http.ResponseWriter, status int, name string, d *pageData) error {
	pages, err := pageTemplates()
	if err != nil {
		return err
	}
	t, ok := pages[name]
	if !ok {
		return fmt.Errorf("no page template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err = w.Write(buf.Bytes())
	return err
}

// notices are the messages a redirect after a successful form may ask
// for (?notice=NAME&id=N); only these texts are ever shown, so that a
// link cannot put words in the console's mouth.
var notices = map[string]string{
	"signed-out": "You are signed out.",
	"declared":   "Source %d is declared. Start an ingest to index its faces.",
	"suspended":  "Source %d is suspended: nothing more is ingested from it.",
	"resumed":    "Source %d is active again.",
	"retired":    "Source %d is retired: its data key is destroyed and its images and faces are deleted. Its declaration stays, for the records.",
	"ingest":     "Ingest job %d started; its progress shows below.",
	"cancelled":  "Job %d is being cancelled; what it committed is kept.",
	"released":   "Face %d left quarantine: its template opens again, and searches find it again.",
	"face-gone":  "Face %d is erased, with its image if no other face was left in it.",
	"processed":  "Request R-%d was acted on: its outcome is below.",
	"extended":   "The deadline of request R-%d is extended.",
	"lifted":     "The restriction of request R-%d is lifted: the person's faces are shown by searches again.",
	"registered": "Request R-%d is registered.",
	"user-added": "User %s is added.",
	"disabled":   "User %s is disabled: their sessions ended and their API tokens are revoked.",
	"revoked":    "API token %d is revoked.",
	"confirmed":  "Your confirmation of face %d is recorded: a second, different verifier must confirm it.",
	"rejected":   "Your rejection of face %d is recorded, with its reason: it will never count as an identification.",
	"identified": "Your confirmation of face %d is recorded: two verifiers confirmed it, the person is identified.",

	// The users page.
	"enabled":      "User %s is enabled again: they sign in with their password; their old API tokens stay revoked.",
	"roles-saved":  "The roles of %s are saved.",
	"password-set": "The password of %s is changed: tell them in person or by another safe channel.",

	// The steps of a rights request's page.
	"candidates-found": "The candidates of request R-%d are found: review them, then save the review.",
	"selfies-refused":  "Request R-%d is refused: its selfies do not show one and the same person clearly enough. The person may send new selfies with a new request.",
	"reviewed":         "Your review of request R-%d is saved: exactly the faces ticked will be acted on.",
	"identity":         "The identity check of request R-%d is recorded.",
	"refused":          "Request R-%d is refused, with its reason.",
	"notified":         "The notice to the users of search %d is recorded.",

	"records-saved":     "Records of processing are saved.",
	"records-unchanged": "Nothing was changed: the records of processing are as they were.",
}

// noticeOf reads the notice a redirect asked for.
func noticeOf(r *http.Request) string {
	q := r.URL.Query()
	msg := notices[q.Get("notice")]
	if strings.Contains(msg, "%s") {
		if q.Get("name") == "" {
			return ""
		}
		return fmt.Sprintf(msg, q.Get("name"))
	}
	if strings.Contains(msg, "%d") {
		id, err := strconv.ParseInt(q.Get("id"), 10, 64)
		if err != nil || id <= 0 {
			return ""
		}
		return fmt.Sprintf(msg, id)
	}
	return msg
}

// seeOther redirects a form's browser to path with a notice.
func seeOther(w http.ResponseWriter, r *http.Request, path, notice string, id int64) {
	if notice != "" {
		v := url.Values{"notice": {notice}}
		if id != 0 {
			v.Set("id", strconv.FormatInt(id, 10))
		}
		path += "?" + v.Encode()
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// safeNext returns next when it is a path of this site, else "/": the
// sign-in page never redirects elsewhere.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "/"
	}
	return next
}

// errorPage answers a failed page request: a page in the layout, the
// status kept. A request without a valid session is sent to the sign-in
// page instead, coming back to the page asked for.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.Code == "unauthenticated" || e.Code == "session_expired" {
		if e.Code == "session_expired" {
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
				HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
		}
		target := "/login"
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if next := safeNext(r.URL.RequestURI()); next != "/" {
				target += "?" + url.Values{"next": {next}}.Encode()
			}
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	p, err := s.authenticate(r)
	if err != nil {
		p = nil
	}
	title := map[int]string{
		http.StatusBadRequest: "The request is not valid", http.StatusUnauthorized: "Sign-in needed",
		http.StatusForbidden: "Not allowed", http.StatusNotFound: "Not found", http.StatusMethodNotAllowed: "Not allowed here",
		http.StatusConflict: "Not possible now", http.StatusRequestEntityTooLarge: "Too large",
		http.StatusTooManyRequests: "Too many requests",
	}[e.Status]
	if title == "" {
		title = http.StatusText(e.Status)
	}
	d := s.newPage(r, p, title, e)
	if rerr := s.render(w, e.Status, "error", d); rerr != nil {
		s.log.Error("render error page", "request_id", requestID(r), "err", rerr)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(e.Status)
		_, _ = fmt.Fprintf(w, "%s: %s\n", e.Code, e.Message) // the client went away: nothing to do
	}
}

// staticFiles maps each embedded static file to the hash of its content,
// which its URL carries, so that a changed file is never served from a
// stale cache. Computed on first use, not when any command starts.
var staticFiles = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	err := fs.WalkDir(webFS, "web/static", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[strings.TrimPrefix(p, "web/static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		panic(err)
	}
	return m
})

// staticURL is the content-hashed URL of a static file; it panics on a file
// that is not embedded, so that a template naming one fails at startup.
func staticURL(name string) string {
	h, ok := staticFiles()[name]
	if !ok {
		panic(fmt.Sprintf("static file %q is not embedded", name))
	}
	return "/static/" + name + "?v=" + h
}

// staticHandler serves the embedded CSS, scripts and images, and nothing
// else: a directory (/static/, /static/img/) is a 404, never a listing. A
// URL with the file's current hash may be cached for good.
func staticHandler() http.Handler {
	sub, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err)
	}
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/static/")
		h, ok := staticFiles()[name]
		if !ok || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == h {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		fsrv.ServeHTTP(w, r)
	})
}

// templateFuncs are the helpers of the page templates.
var templateFuncs = template.FuncMap{
	"static":   staticURL,
	"datetime": func(t time.Time) string { return fmtTime(t, "2006-01-02 15:04 MST") },
	// zoned writes a time (time.Time or *time.Time) in the IANA zone named
	// (a rights request's), so that one page does not mix zones.
	"zoned": func(zone string, v any) string {
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case *time.Time:
			if x != nil {
				t = *x
			}
		}
		loc, err := dsr.Location(zone)
		if t.IsZero() || err != nil {
			return fmtTime(t, "2006-01-02 15:04 MST")
		}
		return t.In(loc).Format("2006-01-02 15:04 MST")
	},
	"date": func(t time.Time) string { return fmtTime(t, "2 Jan 2006") },
	"ptime": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return fmtTime(*t, "2006-01-02 15:04:05 MST")
	},
	"days": func(ms int64) string {
		d := time.Duration(ms) * time.Millisecond
		if n := d.Hours() / 24; n >= 1 && n == math.Trunc(n) {
			if n == 1 {
				return "1 day"
			}
			return fmt.Sprintf("%.0f days", n)
		}
		return d.String()
	},
	"pct": func(a, b int) int {
		if b <= 0 {
			return 0
		}
		return min(100, a*100/b)
	},
	"short": func(s string, n int) string {
		r := []rune(s)
		if len(r) <= n {
			return s
		}
		return string(r[:n]) + "…"
	},
	"stamp": func(t time.Time) string { return fmtTime(t, "2006-01-02 15:04:05") },
	"datein": func(t time.Time, zone string) string {
		loc, err := dsr.Location(zone)
		if err != nil {
			loc = time.UTC
		}
		return t.In(loc).Format("2 Jan 2006")
	},
	"add":        func(a, b int) int { return a + b },
	"pair":       func(a, b string) struct{ A, B string } { return struct{ A, B string }{a, b} },
	"capitalize": capitalize,
	"detail":     detailText,
	"sim":        func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) },
	"strangers":  strangersText,
	"count":      thousands,
	"rate":       func(v float64) string { return strconv.FormatFloat(v*100, 'g', 3, 64) + "%" },
	"stateLabel": stateLabel,
	"strength": func(h app.HitView, gallery int) strengthView {
		return strengthView{Band: h.Band, Similarity: h.Similarity, Strangers: h.Strangers, Gallery: gallery}
	},
	"span": func(first, last int) string {
		if first == last {
			return "showing " + strconv.Itoa(first)
		}
		return "showing " + strconv.Itoa(first) + "–" + strconv.Itoa(last)
	},
	"roleList": func(rs []store.Role) string { return joinRoles(rs) },
	"timecode": func(ms *int64) string {
		if ms == nil {
			return ""
		}
		d := time.Duration(*ms) * time.Millisecond
		return fmt.Sprintf("%d:%02d.%d", int(d.Minutes()), int(d.Seconds())%60, (d.Milliseconds()%1000)/100)
	},
}

// strengthView is what the "strength" template shows of a result.
type strengthView struct {
	Band       string
	Similarity float64
	Strangers  float64
	Gallery    int
}

// strangersText says how many faces of other people a result's score is
// expected to reach in the gallery, for people: "about 0.003", "fewer than
// 0.001", "about 12".
func strangersText(v float64) string {
	switch {
	case math.IsNaN(v) || v < 0:
		return "an unknown number of"
	case v < 0.001:
		return "fewer than 0.001"
	case v < 10:
		return "about " + strconv.FormatFloat(v, 'g', 2, 64)
	}
	return "about " + thousands(int(math.Round(v)))
}

// thousands writes n with thousands separators: 12,345.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// stateLabel names a search's verification state for people.
func stateLabel(v store.Verification) string {
	switch v {
	case store.VerifyConfirmed:
		return "identified"
	case store.VerifyPending:
		return "awaiting a 2nd verifier"
	case store.VerifyRejected:
		return "rejected"
	case store.VerifyUnverified:
		return "to verify"
	case store.VerifyNoMatch:
		return "no match"
	case store.VerifyErased:
		return "results erased, nothing to verify"
	}
	return string(v)
}

// detailText renders an audit entry's JSON detail as "key: value · …",
// keys in order, for people to read.
func detailText(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return string(raw)
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := string(m[k])
		var s string
		if json.Unmarshal(m[k], &s) == nil {
			v = s
		}
		parts = append(parts, k+": "+v)
	}
	return strings.Join(parts, " · ")
}

// fmtTime formats t in UTC; the zero time is blank.
func fmtTime(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(layout)
}

func joinRoles(rs []store.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// pageTemplates are the pages, each parsed with the layout and the shared
// partials, once: New parses them, so that a template that does not parse
// stops the server before it serves anything, and commands that never
// serve do not pay for them.
var pageTemplates = sync.OnceValues(func() (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(templateFuncs).
		ParseFS(webFS, "web/templates/layout.html", "web/templates/partials.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(webFS, "web/templates/*.html")
	if err != nil {
		return nil, err
	}
	m := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(webFS, n)
		}
		if err != nil {
			return nil, fmt.Errorf("page template %s: %w", n, err)
		}
		m[name] = t
	}
	return m, nil
})
