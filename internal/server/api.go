package server

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/membudget"
	"gabarit/internal/passwd"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

// apiRoutes is the REST API. Each route says who may call it; openapi.json
// documents each one (TestOpenAPIMatchesRoutes keeps them in step).
func (s *Server) apiRoutes() []*route {
	const v1 = "/api/v1"
	return []*route{
		{method: "GET", path: v1 + "/openapi.json", public: true, kind: apiFile, h: s.openAPI},
		{method: "GET", path: v1 + "/health", public: true, h: s.health},
		{method: "GET", path: v1 + "/ready", public: true, h: s.readiness},
		{method: "GET", path: "/metrics", roles: roles(admin, auditor), kind: apiFile, h: s.metricsPage},

		{method: "POST", path: v1 + "/session", public: true, h: s.apiLogin},
		{method: "GET", path: v1 + "/session", roles: anyone, h: s.apiSession},
		{method: "DELETE", path: v1 + "/session", roles: anyone, h: s.apiLogout},

		{method: "GET", path: v1 + "/users", roles: roles(admin), h: s.apiUsers},
		{method: "POST", path: v1 + "/users", roles: roles(admin), h: s.apiAddUser},
		{method: "PUT", path: v1 + "/users/{name}/roles", roles: roles(admin), h: s.apiSetRoles},
		{method: "PUT", path: v1 + "/users/{name}/password", roles: roles(admin), h: s.apiSetPassword},
		{method: "POST", path: v1 + "/users/{name}/disable", roles: roles(admin), h: s.apiDisableUser},
		{method: "POST", path: v1 + "/users/{name}/enable", roles: roles(admin), h: s.apiEnableUser},

		{method: "GET", path: v1 + "/tokens", roles: anyone, h: s.apiTokens},
		{method: "POST", path: v1 + "/tokens", roles: anyone, h: s.apiCreateToken},
		{method: "DELETE", path: v1 + "/tokens/{id}", roles: anyone, h: byID(http.StatusNoContent, s.apiRevokeToken)},

		{method: "GET", path: v1 + "/sources", roles: roles(admin, operator, dpo, auditor), h: s.apiSources},
		{method: "POST", path: v1 + "/sources", roles: roles(operator), h: s.apiAddSource},
		{method: "GET", path: v1 + "/sources/{id}", roles: roles(admin, operator, dpo, auditor), h: byID(http.StatusOK, s.apiSource)},
		{method: "POST", path: v1 + "/sources/{id}/suspend", roles: roles(operator), h: s.apiSourceState(store.StateSuspended)},
		{method: "POST", path: v1 + "/sources/{id}/resume", roles: roles(operator), h: s.apiSourceState(store.StateActive)},
		{method: "POST", path: v1 + "/sources/{id}/ingest", roles: roles(operator), h: byID(http.StatusAccepted, s.apiStartIngest)},
		{method: "POST", path: v1 + "/sources/{id}/retire", roles: roles(operator), h: s.apiRetireSource},
		{method: "GET", path: v1 + "/quarantine", roles: roles(admin, operator), h: s.apiQuarantine},
		{method: "POST", path: v1 + "/quarantine/{id}/release", roles: roles(admin, operator), h: byID(http.StatusOK, s.releaseFace)},
		{method: "POST", path: v1 + "/quarantine/{id}/erase", roles: roles(admin, operator), h: byID(http.StatusOK, s.eraseQuarantined)},

		{method: "GET", path: v1 + "/jobs", roles: roles(admin, operator), h: s.apiJobs},
		{method: "GET", path: v1 + "/jobs/{id}", roles: roles(admin, operator), h: byID(http.StatusOK, s.apiJob)},
		{method: "POST", path: v1 + "/jobs/{id}/cancel", roles: roles(operator), h: byID(http.StatusAccepted, s.apiCancelJob)},

		{method: "POST", path: v1 + "/detect", roles: roles(investigator), kind: apiUpload, h: s.apiDetect},
		{method: "POST", path: v1 + "/searches", roles: roles(investigator), kind: apiUpload, h: s.apiSearch},
		{method: "GET", path: v1 + "/searches", roles: roles(investigator, verifier, auditor), h: s.apiSearches},
		{method: "GET", path: v1 + "/searches/{id}", roles: roles(investigator, verifier, auditor), h: byID(http.StatusOK, s.searchRecord)},
		{method: "GET", path: v1 + "/searches/{id}/results", roles: roles(investigator, verifier, auditor), h: s.apiSearchResults},
		{method: "GET", path: v1 + "/searches/{id}/probe.jpg", roles: roles(investigator, verifier, auditor), kind: apiFile, h: s.apiProbeCrop},
		{method: "POST", path: v1 + "/searches/{id}/confirmations", roles: roles(verifier), h: s.apiConfirm},
		{method: "POST", path: v1 + "/searches/{id}/reject", roles: roles(verifier), h: s.apiReject},
		{method: "GET", path: v1 + "/faces/{id}", roles: roles(investigator, verifier), h: byID(http.StatusOK, s.apiFace)},
		{method: "GET", path: v1 + "/faces/{id}/crop", roles: roles(investigator, verifier), kind: apiFile, h: s.apiFaceCrop},
		{method: "GET", path: v1 + "/faces/{id}/image.jpg", roles: roles(investigator, verifier), kind: apiFile, h: s.apiFaceImage},
		{method: "GET", path: v1 + "/images/{id}", roles: roles(investigator, verifier), h: s.apiImage},

		{method: "POST", path: v1 + "/portal/requests", public: true, kind: apiUpload, h: s.apiPortalRequest},
		{method: "GET", path: v1 + "/portal/requests/{ref}", public: true, h: s.apiPortalStatus},
		{method: "POST", path: v1 + "/portal/face-check", public: true, kind: apiUpload, h: s.apiFaceCheck},
		{method: "POST", path: v1 + "/portal/selfies-check", public: true, kind: apiUpload, h: s.apiSelfiesCheck},
		// The DPO's side of rights requests: rightsRoutes (api_rights.go).

		{method: "GET", path: v1 + "/audit", roles: roles(auditor, dpo), h: s.apiAudit},
		{method: "GET", path: v1 + "/audit/verify", roles: roles(auditor, dpo, admin), h: s.apiAuditVerify},
		{method: "GET", path: v1 + "/records", roles: roles(admin, dpo, auditor), h: s.apiDeclaration},
		{method: "PUT", path: v1 + "/records", roles: roles(admin, dpo), h: s.apiSaveRecords},
		{method: "GET", path: v1 + "/exports/records", roles: roles(dpo, auditor), kind: apiFile, h: s.apiRecords},
		{method: "POST", path: v1 + "/exports/authority", roles: roles(dpo, auditor), kind: apiFile, h: s.apiAuthorityExport},
	}
}

// byID makes the handler of a route on one resource, /…/{id}: it reads the
// id, calls fn and answers its result as JSON with status (a noContent
// result: no body).
func byID[T any](status int, fn func(ctx context.Context, id int64, p *principal) (T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		v, err := fn(r.Context(), id, p)
		if err != nil {
			return err
		}
		if _, ok := any(v).(noContent); ok {
			w.WriteHeader(status)
			return nil
		}
		writeJSON(w, status, v)
		return nil
	}
}

// noContent is the result of an action answered with no body.
type noContent struct{}

// pathID reads the {name} path value as a positive id.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, badRequest("%s %q is not an id", name, r.PathValue(name))
	}
	return id, nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ *principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readiness says whether the server can serve: the store answers and it
// is not shutting down. It is public, for load balancers, so it says
// nothing else (the counts are in /metrics, for admins and auditors).
func (s *Server) readiness(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if err := s.ready(); err != nil {
		s.log.Warn("not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// --- sessions, users, tokens ---

type loginJSON struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

type sessionJSON struct {
	User    string       `json:"user"`
	Roles   []store.Role `json:"roles"`
	CSRF    string       `json:"csrf_token,omitempty"`
	Expires *time.Time   `json:"expires,omitempty"`
}

func (s *Server) apiLogin(w http.ResponseWriter, r *http.Request, _ *principal) error {
	var in loginJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	sess, err := s.login(r.Context(), w, r, in.Name, in.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sessionJSON{User: sess.User.Name, Roles: sess.User.Roles, CSRF: sess.CSRF, Expires: &sess.Expires})
	return nil
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request, p *principal) error {
	out := sessionJSON{User: p.user.Name, Roles: p.user.Roles}
	if p.session != nil {
		out.CSRF, out.Expires = p.session.CSRF, &p.session.Expires
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiLogout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := s.logout(r.Context(), w, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type userJSON struct {
	Name        string       `json:"name"`
	Roles       []store.Role `json:"roles"`
	Created     time.Time    `json:"created"`
	CreatedBy   string       `json:"created_by"`
	Disabled    bool         `json:"disabled"`
	HasPassword bool         `json:"has_password"`
}

func (s *Server) apiUsers(w http.ResponseWriter, r *http.Request, _ *principal) error {
	users, err := s.cfg.Data.DB.Users(r.Context())
	if err != nil {
		return err
	}
	out := make([]userJSON, len(users))
	for i, u := range users {
		out[i] = toUserJSON(u)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func toUserJSON(u store.User) userJSON {
	return userJSON{u.Name, u.Roles, u.Created, u.CreatedBy, !u.Disabled.IsZero(), u.HasPassword}
}

type newUserJSON struct {
	Name     string       `json:"name"`
	Roles    []store.Role `json:"roles"`
	Password string       `json:"password"`
}

// addUser registers a console and API user with roles and a password; a
// name that exists already is a 409.
func (s *Server) addUser(ctx context.Context, name string, roles []store.Role, password string, p *principal) error {
	if !userName.MatchString(name) {
		return badRequest("a user's name has 1 to 64 letters, digits, dots, dashes, underscores or @, and no space")
	}
	if err := checkRoles(roles); err != nil {
		return err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	err = s.cfg.Data.DB.AddConsoleUser(ctx, name, roles, hash, p.actor())
	if errors.Is(err, store.ErrExists) {
		return newError(http.StatusConflict, "exists", "a user named %q already exists (disabled users keep their name)", name)
	}
	return err
}

func (s *Server) apiAddUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in newUserJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.addUser(r.Context(), in.Name, in.Roles, in.Password, p); err != nil {
		return err
	}
	u, err := s.cfg.Data.DB.User(r.Context(), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
	return nil
}

// hashPassword hashes a new password, refusing weak ones with a 400.
// userName is the form of a console or API user's name.
var userName = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N}._@-]{0,63}$`)

func hashPassword(pw string) (string, error) {
	h, err := passwd.Hash(pw)
	switch {
	case errors.Is(err, passwd.ErrTooShort):
		return "", badRequest("the password must have at least %d characters", passwd.MinLength)
	case errors.Is(err, passwd.ErrTooLong):
		return "", badRequest("the password must have at most %d characters", passwd.MaxLength)
	}
	return h, err
}

func (s *Server) apiSetRoles(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Roles []store.Role `json:"roles"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.setUserRoles(r.Context(), r.PathValue("name"), in.Roles, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiSetPassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.setUserPassword(r.Context(), r.PathValue("name"), in.Password, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiDisableUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := s.disableUser(r.Context(), r.PathValue("name"), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiEnableUser enables a disabled user again; their API tokens stay
// revoked.
func (s *Server) apiEnableUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := s.enableUser(r.Context(), r.PathValue("name"), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type tokenJSON struct {
	ID       int64      `json:"id"`
	User     string     `json:"user"`
	Label    string     `json:"label"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	Revoked  *time.Time `json:"revoked,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Token    string     `json:"token,omitempty"` // only in the answer that creates it
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toTokenJSON(t store.APIToken) tokenJSON {
	return tokenJSON{ID: t.ID, User: t.User, Label: t.Label, Created: t.Created, Expires: timePtr(t.Expires),
		Revoked: timePtr(t.Revoked), LastUsed: timePtr(t.LastUsed)}
}

// apiTokens lists the caller's API tokens; an admin sees everyone's.
func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	user := p.user.Name
	if p.user.Has(store.RoleAdmin) {
		user = ""
	}
	ts, err := s.cfg.Data.DB.APITokens(r.Context(), user)
	if err != nil {
		return err
	}
	out := make([]tokenJSON, len(ts))
	for i, t := range ts {
		out[i] = toTokenJSON(t)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// maxTokenDays bounds an API token's life.
const maxTokenDays = 366

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Label string `json:"label"`
		Days  int    `json:"expires_in_days"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Label) == "" || len(in.Label) > 100 {
		return badRequest("label: say what the token is for, in 1 to 100 characters")
	}
	if in.Days < 1 || in.Days > maxTokenDays {
		return badRequest("expires_in_days: 1 to %d", maxTokenDays)
	}
	tok, err := s.createToken(r.Context(), p, in.Label, in.Days)
	if err != nil {
		return err
	}
	expires := tok.Expires
	out := tokenJSON{ID: tok.ID, User: p.user.Name, Label: in.Label, Created: tok.Created, Expires: &expires, Token: tok.Token}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// apiRevokeToken revokes one of the caller's tokens; an admin may revoke
// anyone's. Another user's token is "not found", so ids reveal nothing.
func (s *Server) apiRevokeToken(ctx context.Context, id int64, p *principal) (noContent, error) {
	return noContent{}, s.revokeToken(ctx, id, p)
}

// createdToken is a token just made: the secret is shown this once.
type createdToken struct {
	ID               int64
	Token            string
	Created, Expires time.Time
}

// createToken makes a bearer token for p, valid for days.
func (s *Server) createToken(ctx context.Context, p *principal, label string, days int) (createdToken, error) {
	tok, hash, err := passwd.NewToken(tokenPrefix)
	if err != nil {
		return createdToken{}, err
	}
	now := s.cfg.Now()
	expires := now.Add(time.Duration(days) * 24 * time.Hour)
	id, err := s.cfg.Data.DB.CreateAPIToken(ctx, p.user.Name, label, hash, expires, p.actor())
	if err != nil {
		return createdToken{}, err
	}
	return createdToken{ID: id, Token: tok, Created: now, Expires: expires}, nil
}

// revokeToken revokes one of p's tokens; an admin may revoke anyone's.
// Another user's token is "not found", so ids reveal nothing.
func (s *Server) revokeToken(ctx context.Context, id int64, p *principal) error {
	if !p.user.Has(store.RoleAdmin) {
		ts, err := s.cfg.Data.DB.APITokens(ctx, p.user.Name)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(ts, func(t store.APIToken) bool { return t.ID == id }) {
			return errNotFound
		}
	}
	return s.cfg.Data.DB.RevokeAPIToken(ctx, id, p.actor())
}

// --- sources and ingest ---

func (s *Server) sourceViews(ctx context.Context) ([]app.SourceView, error) {
	srcs, err := s.cfg.Data.DB.Sources(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := s.cfg.Data.DB.SourceCounts(ctx)
	if err != nil {
		return nil, err
	}
	return app.SourceViews(srcs, counts), nil
}

func (s *Server) apiSources(w http.ResponseWriter, r *http.Request, _ *principal) error {
	out, err := s.sourceViews(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiSource(ctx context.Context, id int64, _ *principal) (app.SourceView, error) {
	out, err := s.sourceViews(ctx)
	if err != nil {
		return app.SourceView{}, err
	}
	for _, v := range out {
		if v.ID == id {
			return v, nil
		}
	}
	return app.SourceView{}, errNotFound
}

func (s *Server) apiAddSource(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in app.Declaration
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	id, err := s.addSource(r.Context(), in, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"id": id})
	return nil
}

// addSource validates and records a declaration.
func (s *Server) addSource(ctx context.Context, d app.Declaration, p *principal) (int64, error) {
	d.DataDir = s.cfg.Data.Dir // a source may not hold the data directory, nor lie inside it
	src, err := d.Validate("")
	if err != nil {
		return 0, badRequest("%v", err)
	}
	return app.AddSource(ctx, s.cfg.Data.DB, src, p.actor())
}

func (s *Server) apiSourceState(state store.SourceState) handlerFunc {
	return byID(http.StatusOK, func(ctx context.Context, id int64, p *principal) (map[string]any, error) {
		err := app.SetSourceState(ctx, s.cfg.Data.DB, id, state, p.actor())
		return map[string]any{"id": id, "state": state}, retiredConflict(err)
	})
}

func (s *Server) apiStartIngest(ctx context.Context, id int64, p *principal) (job, error) {
	return s.jobs.start(ctx, id, p.actor())
}

func (s *Server) apiJobs(w http.ResponseWriter, r *http.Request, _ *principal) error {
	js, err := s.jobs.list(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, js)
	return nil
}

func (s *Server) apiJob(ctx context.Context, id int64, _ *principal) (job, error) {
	return s.jobs.get(ctx, id)
}

func (s *Server) apiCancelJob(ctx context.Context, id int64, p *principal) (job, error) {
	return s.jobs.cancel(ctx, id, p.actor())
}

// --- search, faces, verification ---

// photos reads the image files of a multipart form's field, checked by
// their content (never by their name or declared type), at most max.
func photos(r *http.Request, field string, max int) ([][]byte, error) {
	if err := parseMultipart(r); err != nil {
		return nil, err
	}
	fhs := r.MultipartForm.File[field]
	if len(fhs) == 0 {
		return nil, badRequest("%s: attach a photo (multipart/form-data)", field)
	}
	if len(fhs) > max {
		return nil, badRequest("%s: at most %d photos", field, max)
	}
	out := make([][]byte, 0, len(fhs))
	for _, fh := range fhs {
		b, err := readPart(fh)
		if err != nil {
			return nil, err
		}
		if err := imageproc.CheckFormat(b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// parseMultipart parses a multipart body (already limited by the route).
func parseMultipart(r *http.Request) error {
	if r.MultipartForm != nil {
		return nil
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return newError(http.StatusUnsupportedMediaType, "want_multipart", "send multipart/form-data")
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(r, mbe.Limit)
		}
		return badRequest("the multipart body cannot be read")
	}
	return nil
}

func readPart(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// analyse runs fn while holding one of the analysis slots, so that at most
// Config.Analyses photos are analysed at once; the others queue. fn's
// context bounds the wait for the memory budget (see pipeline.Config.Budget)
// to Config.BudgetWait: a photo whose memory is not free by then is refused
// (503 busy) rather than queued past the request's deadline.
func (s *Server) analyse(ctx context.Context, fn func(ctx context.Context) error) error {
	s.metrics.queued.Inc()
	select {
	case s.slots <- struct{}{}:
		s.metrics.queued.Dec()
	case <-ctx.Done():
		s.metrics.queued.Dec()
		return ctx.Err()
	}
	defer func() { <-s.slots }()
	return fn(membudget.WithMaxWait(ctx, s.cfg.BudgetWait))
}

// reserve runs fn, which decodes photo once more (after its analysis),
// while holding in the memory budget what decoding it at full size takes,
// waiting at most Config.BudgetWait.
func (s *Server) reserve(ctx context.Context, photo []byte, fn func() error) error {
	return app.Reserve(membudget.WithMaxWait(ctx, s.cfg.BudgetWait), s.cfg.Budget, photo, fn)
}

type detectJSON struct {
	Width  int       `json:"width"`
	Height int       `json:"height"`
	Faces  []boxJSON `json:"faces"` // in reading order (face.ReadingOrder)
	// Probe is a handle on the photo and its analysis, held in memory for
	// its owner for a few minutes: a search that sends it instead of the
	// photo does not analyse the photo again (probecache.go).
	Probe string `json:"probe,omitempty"`
}

type boxJSON struct {
	Index   int        `json:"index"`
	Box     [4]float64 `json:"box"`
	Quality float64    `json:"quality"`
	Thumb   string     `json:"thumb,omitempty"` // the face's crop, a data: URL of a small JPEG
}

// apiDetect finds the faces of a photo, so that the investigator can
// choose which to search: their boxes and thumbnails, numbered in reading
// order as the search numbers them, and a handle on the photo for that
// search. Nothing is stored or searched.
func (s *Server) apiDetect(w http.ResponseWriter, r *http.Request, p *principal) error {
	ps, err := photos(r, "photo", 1)
	if err != nil {
		return err
	}
	var an face.Analysis
	err = s.analyse(r.Context(), func(ctx context.Context) error {
		var err error
		an, err = s.cfg.Model.Analyze(ctx, ps[0])
		return err
	})
	if err != nil {
		return err
	}
	face.ReadingOrder(an.Faces)
	out := detectJSON{Width: an.Width, Height: an.Height, Faces: make([]boxJSON, len(an.Faces))}
	var thumbs []string
	err = s.reserve(r.Context(), ps[0], func() error {
		var err error
		thumbs, err = faceThumbs(ps[0], an)
		return err
	})
	if err != nil {
		s.log.Warn("face thumbnails", "err", err, "faces", len(an.Faces))
	}
	for i, f := range an.Faces {
		out.Faces[i] = boxJSON{Index: i, Box: [4]float64{round2(f.Box.X), round2(f.Box.Y), round2(f.Box.W), round2(f.Box.H)},
			Quality: math.Round(f.Quality*1e3) / 1e3}
		if i < len(thumbs) {
			out.Faces[i].Thumb = thumbs[i]
		}
	}
	if len(an.Faces) > 0 {
		out.Probe = s.probes.put(p.actor(), ps[0], an)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// searchForm is a search request read from a multipart form.
type searchForm struct {
	purpose, caseRef string
	k, face          int
	threshold        *float64 // nil: the operating point
	reason           string   // why an exploratory search goes below it
	probe            []byte
	held             *heldProbe // the photo of a detect step, when its handle was sent
}

// errProbeGone answers a search sent with the handle of a photo no longer
// held (used, expired or evicted) and without the photo: the console sends
// it again with the photo.
var errProbeGone = newError(http.StatusGone, "probe_gone",
	"the photo is no longer held on the server (it is kept for one search, a few minutes): send the photo again")

// readSearchForm reads a search request for p: the photo, or the handle
// (probe) of a photo whose faces p found with /detect, with the photo as
// a fallback for a handle no longer held.
func (s *Server) readSearchForm(r *http.Request, p *principal) (searchForm, error) {
	if err := parseMultipart(r); err != nil {
		return searchForm{}, err
	}
	handle := strings.TrimSpace(r.FormValue("probe"))
	var ps [][]byte
	var err error
	if handle == "" || len(r.MultipartForm.File["photo"]) > 0 {
		if ps, err = photos(r, "photo", 1); err != nil {
			return searchForm{}, err
		}
	}
	f := searchForm{purpose: strings.TrimSpace(r.FormValue("purpose")), caseRef: strings.TrimSpace(r.FormValue("case")),
		k: 10, face: -1, reason: strings.TrimSpace(r.FormValue("reason"))}
	if f.purpose == "" {
		return f, search.ErrNoPurpose
	}
	if len(f.purpose) > 500 || len(f.caseRef) > 200 {
		return f, badRequest("purpose (500) or case (200) is too long")
	}
	if v := r.FormValue("k"); v != "" {
		if f.k, err = strconv.Atoi(v); err != nil {
			return f, badRequest("k %q: want a whole number from 1 to %d", v, search.MaxK)
		}
	}
	if v := r.FormValue("face"); v != "" {
		if f.face, err = strconv.Atoi(v); err != nil {
			return f, badRequest("face %q: want the number of a face of the photo, from 0", v)
		}
	}
	if v := r.FormValue("threshold"); v != "" {
		t, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(t) || t < -1 || t > 1 {
			// One text for every bad threshold, from the API or the form.
			return f, badRequest("the threshold %q is not a number from -1 to 1: give one, or leave it empty to use the operating point", v)
		}
		f.threshold = &t
	}
	// The handle is taken last, so that a form refused above keeps it.
	if handle != "" {
		if h, ok := s.probes.take(p.actor(), handle); ok {
			f.probe, f.held = h.photo, h
			return f, nil
		}
		if ps == nil {
			return f, errProbeGone
		}
	}
	f.probe = ps[0]
	return f, nil
}

// runSearch runs an audited search for p. A photo held since its detect
// step is not analysed again, and is zeroed after the search.
func (s *Server) runSearch(ctx context.Context, f searchForm, p *principal) (app.SearchView, error) {
	req := search.Request{Actor: p.actor(), Purpose: f.purpose, Case: f.caseRef, K: f.k,
		Threshold: f.threshold, Reason: f.reason, MayExplore: p.user.Has(store.RoleExaminer), Face: f.face, Probe: f.probe}
	if f.held != nil {
		defer f.held.wipe()
		req.Analysis = &f.held.an
	}
	var res search.Result
	start := time.Now()
	err := s.analyse(ctx, func(ctx context.Context) error {
		var err error
		res, err = s.search.Search(ctx, req)
		return err
	})
	if len(res.Stale) > 0 {
		if derr := s.cfg.Index.Index.Delete(context.WithoutCancel(ctx), res.Stale); derr != nil {
			s.log.Warn("drop stale index entries", "err", derr)
		}
	}
	outcome := "ok"
	if err != nil {
		outcome = classify(err, "").Code
	}
	s.metrics.searches.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if err != nil {
		return app.SearchView{}, err
	}
	return app.NewSearchView(res), nil
}

func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request, p *principal) error {
	f, err := s.readSearchForm(r, p)
	if err != nil {
		return err
	}
	out, err := s.runSearch(r.Context(), f, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// visibleFace returns a stored face if p may see it: it must have been
// returned by a search p ran, or, for a verifier, by any search. Crops
// and face details are never browsable by id alone.
func (s *Server) visibleFace(ctx context.Context, p *principal, id int64) (store.FaceRef, error) {
	refs, err := s.cfg.Data.DB.FaceRefs(ctx, []int64{id})
	if err != nil {
		return store.FaceRef{}, err
	}
	ref, ok := refs[id]
	if !ok {
		return store.FaceRef{}, errNotFound
	}
	if p.user.Has(store.RoleVerifier) {
		if ss, err := s.cfg.Data.DB.SearchesReturning(ctx, []int64{id}); err != nil || len(ss) == 0 {
			return store.FaceRef{}, errors.Join(err, errNotFound)
		}
		return ref, nil
	}
	ss, err := s.cfg.Data.DB.SearchesReturning(ctx, []int64{id})
	if err != nil {
		return store.FaceRef{}, err
	}
	if !slices.ContainsFunc(ss, func(sr store.Search) bool { return sr.Actor == p.actor() }) {
		return store.FaceRef{}, errNotFound
	}
	return ref, nil
}

type faceJSON struct {
	ID         int64      `json:"id"`
	ImageID    int64      `json:"image_id"`
	SourceID   int64      `json:"source_id"`
	Locator    string     `json:"locator"`
	LegalBasis string     `json:"legal_basis"`
	Controller string     `json:"controller"`
	Box        [4]float64 `json:"box"`
	Score      float64    `json:"score"`
	Quality    float64    `json:"quality"`
	TimeCodeMS *int64     `json:"time_code_ms,omitempty"`
}

func toFaceJSON(ref store.FaceRef) faceJSON {
	f := faceJSON{ID: ref.ID, ImageID: ref.ImageID, SourceID: ref.SourceID, Locator: ref.Locator, LegalBasis: string(ref.LegalBasis),
		Controller: ref.Controller, Box: [4]float64{round2(ref.Box.X), round2(ref.Box.Y), round2(ref.Box.W), round2(ref.Box.H)},
		Score: math.Round(ref.Score*1e3) / 1e3, Quality: math.Round(ref.Quality*1e3) / 1e3, TimeCodeMS: app.Millis(ref.TimeCode)}
	return f
}

func (s *Server) apiFace(ctx context.Context, id int64, p *principal) (faceJSON, error) {
	ref, err := s.visibleFace(ctx, p, id)
	return toFaceJSON(ref), err
}

// apiFaceCrop serves a JPEG of the face with a margin, read from its
// source now (gabarit keeps templates, not photos). Never cached.
func (s *Server) apiFaceCrop(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.serveFaceJPEG(w, r, p, s.crop)
}

// serveFaceJPEG serves the JPEG that render makes of the face named by the
// path's id, when p may see that face.
func (s *Server) serveFaceJPEG(w http.ResponseWriter, r *http.Request, p *principal,
	render func(context.Context, store.FaceRef) ([]byte, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ref, err := s.visibleFace(r.Context(), p, id)
	if err != nil {
		return err
	}
	b, err := render(r.Context(), ref)
	if err != nil {
		return err
	}
	return writeJPEG(w, b)
}

func (s *Server) apiImage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	img, err := s.cfg.Data.DB.Image(ctx, id)
	if err != nil {
		return err
	}
	faces, err := s.cfg.Data.DB.Faces(ctx, id)
	if err != nil {
		return err
	}
	var visible []faceJSON
	for _, f := range faces {
		if ref, err := s.visibleFace(ctx, p, f.ID); err == nil {
			visible = append(visible, toFaceJSON(ref))
		}
	}
	if len(visible) == 0 {
		return errNotFound
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": img.ID, "source_id": img.SourceID, "locator": img.Locator,
		"width": img.Width, "height": img.Height, "taken_at": timePtr(img.TakenAt), "ingested_at": img.IngestedAt,
		"retention_deadline": img.RetentionDeadline, "faces": visible, "faces_in_image": len(faces)})
	return nil
}

// --- rights ---

// portalKinds are the requests the public portal takes: every kind.
var portalKinds = []dsr.Kind{dsr.Access, dsr.Erasure, dsr.Objection, dsr.Restriction}

type portalAnswer struct {
	Reference string    `json:"reference"`
	Kind      string    `json:"kind"`
	Received  time.Time `json:"received"`
	Due       time.Time `json:"due"`
	Message   string    `json:"message"`
	// StatusCode goes with Reference to see how the request stands (GET
	// /portal/status): references are sequential, so they alone are not
	// enough.
	StatusCode string `json:"status_code"`
}

// portalMessage is the same for everyone: the answer never says whether
// the person is in the database.
const portalMessage = "Your request is registered. The controller will answer at the contact you gave by the due date. " +
	"Before answering, the controller may ask you to confirm that you are the person in the photos. " +
	"This answer says nothing about whether any data about you is held; the response to your request will."

// portalStatusNote goes with the status code in the portal's answer.
const portalStatusNote = "Keep your status code: with your reference it shows how your request stands at /portal/status."

// registerPortal registers a public request: selfies, a contact and a kind.
func (s *Server) registerPortal(r *http.Request, actor string, kinds []dsr.Kind) (dsr.Request, error) {
	if err := parseMultipart(r); err != nil {
		return dsr.Request{}, err
	}
	kind, err := dsr.ParseKind(r.FormValue("kind"))
	if err != nil || !slices.Contains(kinds, kind) {
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
		}
		return dsr.Request{}, badRequest("kind: want %s", strings.Join(names, ", "))
	}
	contact := strings.TrimSpace(r.FormValue("contact"))
	if contact == "" || len(contact) > 300 {
		return dsr.Request{}, badRequest("contact: say where the answer should go (an e-mail or postal address), at most 300 characters")
	}
	selfies, err := photos(r, "selfie", maxSelfies)
	if err != nil {
		return dsr.Request{}, err
	}
	var req dsr.Request
	err = s.analyse(r.Context(), func(ctx context.Context) error {
		req, err = s.rights.Register(ctx, kind, selfies, contact, actor)
		return err
	})
	if err == nil {
		s.metrics.rightsReceived.WithLabelValues(string(kind)).Inc()
	}
	return req, err
}

func (s *Server) apiPortalRequest(w http.ResponseWriter, r *http.Request, _ *principal) error {
	req, err := s.limitedPortalRequest(w, r)
	if err != nil {
		return err
	}
	a, err := s.toPortalAnswer(req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) toPortalAnswer(req dsr.Request) (portalAnswer, error) {
	code, err := s.statusCode(req.ID)
	if err != nil {
		return portalAnswer{}, err
	}
	return portalAnswer{Reference: reference(req.ID), Kind: string(req.Kind), Received: req.Received,
		Due: req.Deadline(), Message: portalMessage + " " + portalStatusNote, StatusCode: groupCode(code)}, nil
}

// --- audit and exports ---

// auditListJSON is one page of the audit log.
type auditListJSON struct {
	Entries []app.AuditView `json:"entries"`
	Next    string          `json:"next"` // URL of the page of older entries; "" after the last
}

// apiAudit is the audit log, filtered (see auditQuery), newest first, a
// page at a time.
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, _ *principal) error {
	_, f, err := auditQuery(r, store.DefaultAuditLimit, store.MaxAuditLimit)
	if err != nil {
		return err
	}
	pg, err := s.queryAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := auditListJSON{Entries: make([]app.AuditView, len(pg.Entries))}
	for i, e := range pg.Entries {
		out.Entries[i] = app.NewAuditView(e)
	}
	if pg.Older > 0 {
		q := r.URL.Query()
		q.Del("after")
		q.Set("before", strconv.FormatInt(pg.Older, 10))
		out.Next = r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiAuditVerify(w http.ResponseWriter, r *http.Request, _ *principal) error {
	v, err := app.VerifyAudit(r.Context(), s.cfg.Data.DB, "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) apiRecords(w http.ResponseWriter, r *http.Request, p *principal) error {
	rec, err := app.BuildRecords(r.Context(), s.cfg.Data, s.cfg.Now())
	if err != nil {
		return err
	}
	if err := app.AuditExport(r.Context(), s.cfg.Data.DB, p.actor(), "export.records", "api", nil); err != nil {
		return err
	}
	if r.URL.Query().Get("format") == "md" {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		return rec.Markdown(w)
	}
	writeJSON(w, http.StatusOK, rec)
	return nil
}

// apiAuthorityExport builds the package for a supervisory authority (the
// same files as `gabarit export authority`) and sends it as a zip.
func (s *Server) apiAuthorityExport(w http.ResponseWriter, r *http.Request, p *principal) error {
	x, err := app.AuthorityExport(r.Context(), s.cfg.Data, s.cfg.Now(), p.actor())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range x.Files {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: s.cfg.Now()})
		if err != nil {
			return err
		}
		if _, err := fw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := app.AuditExport(r.Context(), s.cfg.Data.DB, p.actor(), "export.authority", "api", x.Digests); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="gabarit-authority-export.zip"`)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, err = w.Write(buf.Bytes())
	return err
}
