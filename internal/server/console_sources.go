package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"gabarit/internal/app"
	"gabarit/internal/source"
	"gabarit/internal/store"
)

// sourcesBody is the sources page: the declared sources, the ingest jobs
// and the form to declare a source.
type sourcesBody struct {
	Sources  []app.SourceView
	Jobs     []job
	ShowJobs bool // admins and operators see the jobs
	Active   bool // a job is queued or running: the page polls
	Form     app.Declaration
	Bases    []store.LegalBasis
	Art9     []art9Option
	// Quarantine lists the faces whose template cannot be opened, for
	// admins and operators (ShowJobs).
	Quarantine []store.QuarantinedFace
}

type art9Option struct{ Value, Label string }

func (s *Server) sourcesPage(w http.ResponseWriter, r *http.Request, p *principal, status int, f app.Declaration, msg string) error {
	views, err := s.sourceViews(r.Context())
	if err != nil {
		return err
	}
	if f.Kind == "" {
		// A legal basis, an Art. 9 condition and a retention period are
		// choices the controller makes and answers for: nothing is chosen
		// for them.
		f = app.Declaration{Kind: "folder"}
	}
	b := sourcesBody{Sources: views, Form: f, Bases: app.Bases,
		ShowJobs: p.user.Has(store.RoleAdmin) || p.user.Has(store.RoleOperator)}
	for _, c := range source.Art9Conditions {
		b.Art9 = append(b.Art9, art9Option{Value: c.Name, Label: fmt.Sprintf("9(2)(%s) %s", c.Letter, c.Text)})
	}
	if b.ShowJobs {
		if b.Quarantine, err = s.cfg.Data.DB.Quarantined(r.Context()); err != nil {
			return err
		}
		if b.Jobs, err = s.jobs.list(r.Context()); err != nil {
			return err
		}
		for _, j := range b.Jobs {
			if j.State == jobQueued || j.State == jobRunning {
				b.Active = true
			}
		}
	}
	d := s.newPage(r, p, "Sources", b)
	d.Notice, d.Error = noticeOf(r), msg
	if b.ShowJobs {
		d.Scripts = []string{"jobs.js"}
	}
	return s.render(w, status, "sources", d)
}

func (s *Server) pageSources(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.sourcesPage(w, r, p, http.StatusOK, app.Declaration{}, "")
}

// pageAddSource declares a source from the form; a declaration that does
// not validate is shown again with what is wrong.
func (s *Server) pageAddSource(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	v := func(k string) string { return strings.TrimSpace(r.PostForm.Get(k)) }
	f := app.Declaration{Kind: v("kind"), Path: v("path"), Controller: v("controller"), Purpose: v("purpose"),
		LegalBasis: v("legal_basis"), Art9: v("art9"), Jurisdiction: v("jurisdiction"), Retention: v("retention")}
	id, err := s.addSource(r.Context(), f, p)
	if err != nil {
		ae := s.pageError(r, err)
		return s.sourcesPage(w, r, p, ae.Status, f, capitalize(ae.Message)+".")
	}
	seeOther(w, r, "/sources", "declared", id)
	return nil
}

func (s *Server) pageSourceState(state store.SourceState) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		err = app.SetSourceState(r.Context(), s.cfg.Data.DB, id, state, p.actor())
		var re *app.RetiredError
		if errors.As(err, &re) {
			return s.sourcesPage(w, r, p, http.StatusConflict, app.Declaration{}, capitalize(re.Error())+".")
		}
		if err != nil {
			return err
		}
		notice := "resumed"
		if state == store.StateSuspended {
			notice = "suspended"
		}
		seeOther(w, r, "/sources", notice, id)
		return nil
	}
}

func (s *Server) pageStartIngest(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	j, err := s.jobs.start(r.Context(), id, p.actor())
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict {
			return s.sourcesPage(w, r, p, ae.Status, app.Declaration{}, capitalize(ae.Message)+".")
		}
		return err
	}
	seeOther(w, r, "/sources", "ingest", j.ID)
	return nil
}

func (s *Server) pageCancelJob(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.jobs.cancel(r.Context(), id, p.actor()); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict {
			return s.sourcesPage(w, r, p, ae.Status, app.Declaration{}, capitalize(ae.Message)+".")
		}
		return err
	}
	seeOther(w, r, "/sources", "cancelled", id)
	return nil
}

// retireBody is the confirmation step of retiring a source.
type retireBody struct {
	Source app.SourceView
	Left   bool   // a retired source still holds images or its key: retiring it again finishes
	Busy   bool   // an ingest of the source is queued or running: retiring cancels it
	Reason string // as typed, when the form is shown again
}

// retireStep shows what retiring source id destroys, and asks to confirm.
func (s *Server) retireStep(w http.ResponseWriter, r *http.Request, p *principal, status int, id int64, reason, msg string) error {
	v, err := s.apiSource(r.Context(), id, p)
	if err != nil {
		return err
	}
	h, err := s.cfg.Data.DB.SourceHoldings(r.Context(), id)
	if err != nil {
		return err
	}
	b := retireBody{Source: v, Left: h.Images > 0 || h.Key, Reason: reason}
	active, err := s.cfg.Data.DB.ActiveIngestJobs(r.Context(), id)
	if err != nil {
		return err
	}
	b.Busy = len(active) > 0
	d := s.newPage(r, p, fmt.Sprintf("Retire source %d", id), b)
	d.Error = msg
	return s.render(w, status, "source_retire", d)
}

func (s *Server) pageRetireStep(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.retireStep(w, r, p, http.StatusOK, id, "", "")
}

// pageRetireSource retires a source once the step has been confirmed
// (confirm=yes; without it, the step is shown).
func (s *Server) pageRetireSource(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if r.PostForm.Get("confirm") != "yes" {
		return s.retireStep(w, r, p, http.StatusOK, id, reason, "")
	}
	if _, err := s.retireSource(r.Context(), id, reason, p); err != nil {
		ae := s.pageError(r, err)
		if ae.Status >= http.StatusInternalServerError || ae.Status == http.StatusNotFound {
			return err
		}
		return s.retireStep(w, r, p, ae.Status, id, reason, capitalize(ae.Message)+".")
	}
	seeOther(w, r, "/sources", "retired", id)
	return nil
}
