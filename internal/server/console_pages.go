package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

// --- home, sign-in, sign-out ---

// homeBody is what the home page shows: the user's tasks, by role, and a
// few counts.
type homeBody struct {
	Sources      int
	Images       int64
	Faces        int
	Running      int // ingest jobs queued or running
	ShowRights   bool
	OpenRequests int
	Overdue      int
	// Recent are an investigator's latest searches, with the state of
	// their verification.
	Recent     []store.SearchSummary
	ShowRecent bool
	// Records warns admins and the DPO while the records of processing
	// are incomplete (nil: nothing to warn of).
	Records *recordsWarning
}

// recentSearches is how many of their searches the home page shows an
// investigator.
const recentSearches = 5

// pageHome is the console's home for a signed-in user, and for anyone else
// the way in: the staff sign-in and the public rights portal.
func (s *Server) pageHome(w http.ResponseWriter, r *http.Request, p *principal) error {
	if p == nil {
		return s.render(w, http.StatusOK, "welcome", s.newPage(r, nil, "Lawful face search", nil))
	}
	ctx := r.Context()
	views, err := s.sourceViews(ctx)
	if err != nil {
		return err
	}
	faces, err := s.cfg.Index.Index.Len(ctx)
	if err != nil {
		return fmt.Errorf("count the indexed faces: %w", err)
	}
	b := homeBody{Sources: len(views), Faces: faces}
	for _, v := range views {
		b.Images += v.Images
	}
	js, err := s.jobs.list(ctx)
	if err != nil {
		return err
	}
	for _, j := range js {
		if j.State == jobQueued || j.State == jobRunning {
			b.Running++
		}
	}
	if p.user.Has(store.RoleDPO) || p.user.Has(store.RoleAuditor) {
		reqs, err := s.cfg.Data.DB.RightsRequests(ctx)
		if err != nil {
			return err
		}
		out, overdue := app.RegisterView(reqs, s.cfg.Now())
		b.ShowRights, b.Overdue = true, overdue
		for _, v := range out {
			if v.Closed == nil {
				b.OpenRequests++
			}
		}
	}
	if p.user.Has(store.RoleInvestigator) {
		if b.Recent, err = s.cfg.Data.DB.ListSearches(ctx, store.SearchFilter{Actor: p.actor(), Limit: recentSearches}); err != nil {
			return err
		}
		b.ShowRecent = true
	}
	b.Records = s.homeRecordsWarning(p)
	d := s.newPage(r, p, "Home", b)
	d.Notice = noticeOf(r)
	return s.render(w, http.StatusOK, "home", d)
}

// loginBody is the sign-in form.
type loginBody struct {
	Name, Next string
	Error      string
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request, p *principal) error {
	next := safeNext(r.URL.Query().Get("next"))
	if p != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	d := s.newPage(r, nil, "Staff sign-in", loginBody{Next: next})
	d.Notice = noticeOf(r)
	return s.render(w, http.StatusOK, "login", d)
}

// pageLoginPost signs a user in from the form (name, password, next) and
// sends them on to next, when it is a page of this site.
func (s *Server) pageLoginPost(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	name, password := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	fail := func(status int, msg string) error {
		d := s.newPage(r, nil, "Staff sign-in", loginBody{Name: name, Next: next, Error: msg})
		return s.render(w, status, "login", d)
	}
	if name == "" || password == "" {
		return fail(http.StatusBadRequest, "Enter your account name and your password.")
	}
	if _, err := s.login(r.Context(), w, r, name, password); err != nil {
		var ae *apiError
		if errors.As(err, &ae) { // login set Retry-After on a 429
			return fail(ae.Status, capitalize(ae.Message)+".")
		}
		return err
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) pageLogout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := s.logout(r.Context(), w, p); err != nil {
		return err
	}
	seeOther(w, r, "/login", "signed-out", 0)
	return nil
}

// capitalize makes a message start with a capital letter.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// --- API tokens ---

// tokensBody is the list of API tokens, and a token just created, shown
// this once.
type tokensBody struct {
	Tokens   []tokenRow
	AllUsers bool // an admin sees everyone's tokens
	Created  string
	Label    string
	Days     int
}

type tokenRow struct {
	tokenJSON
	Status string // active, expired or revoked
}

func (s *Server) tokensPage(w http.ResponseWriter, r *http.Request, p *principal, status int, b tokensBody, msg string) error {
	user := p.user.Name
	if p.user.Has(store.RoleAdmin) {
		user, b.AllUsers = "", true
	}
	ts, err := s.cfg.Data.DB.APITokens(r.Context(), user)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	for i := len(ts) - 1; i >= 0; i-- {
		t := ts[i]
		row := tokenRow{tokenJSON: toTokenJSON(t), Status: "active"}
		switch {
		case !t.Revoked.IsZero():
			row.Status = "revoked"
		case !t.Expires.IsZero() && !now.Before(t.Expires):
			row.Status = "expired"
		}
		b.Tokens = append(b.Tokens, row)
	}
	if b.Days == 0 {
		b.Days = 90
	}
	d := s.newPage(r, p, "API tokens", b)
	d.Notice, d.Error = noticeOf(r), msg
	return s.render(w, status, "tokens", d)
}

func (s *Server) pageTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	var b tokensBody
	msg := ""
	if key := r.URL.Query().Get("show"); key != "" {
		tok, ok := s.once.take(p.user.Name, key, s.cfg.Now())
		if !ok {
			msg = "This token was shown once, when it was created, and cannot be shown again. If it was not copied, revoke it and create another."
		}
		b.Created = tok
	}
	return s.tokensPage(w, r, p, http.StatusOK, b, msg)
}

// pageCreateToken creates an API token and shows it once, after a
// redirect: only its hash is kept.
func (s *Server) pageCreateToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	b := tokensBody{Label: strings.TrimSpace(r.PostForm.Get("label"))}
	days, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("days")))
	b.Days = days
	switch {
	case b.Label == "" || len(b.Label) > 100:
		return s.tokensPage(w, r, p, http.StatusBadRequest, b, "Say what the token is for, in 1 to 100 characters.")
	case err != nil || days < 1 || days > maxTokenDays:
		return s.tokensPage(w, r, p, http.StatusBadRequest, b, "Give the token a life of 1 to "+strconv.Itoa(maxTokenDays)+" days.")
	}
	tok, err := s.createToken(r.Context(), p, b.Label, days)
	if err != nil {
		return err
	}
	// Shown by the page the browser is sent to, once: reloading it makes
	// no new token and shows this one no more.
	http.Redirect(w, r, "/tokens?show="+s.once.put(p.user.Name, tok.Token, s.cfg.Now()), http.StatusSeeOther)
	return nil
}

// pageRevokeToken revokes one of the user's tokens (an admin: anyone's);
// another user's token is "not found".
func (s *Server) pageRevokeToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.revokeToken(r.Context(), id, p); err != nil {
		return err
	}
	seeOther(w, r, "/tokens", "revoked", id)
	return nil
}
