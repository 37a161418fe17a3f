package server

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
)

// --- the rights queue ---

// rightsBody is the DPO's queue: open requests first, soonest deadline
// first, then the closed ones, newest first.
type rightsBody struct {
	Requests []rightsRow
	Open     int
	Overdue  int
	Kinds    []dsr.Kind
	Form     portalForm // the form registering a request received otherwise
}

type rightsRow struct {
	app.RequestView
	Zone    string // the zone the deadlines are counted in
	Open    bool
	Package bool // a completed access request: its package can be downloaded
	Lift    bool // a completed restriction: it can be lifted
}

func (s *Server) rightsPage(w http.ResponseWriter, r *http.Request, p *principal, status int, f portalForm, msg string) error {
	reqs, err := s.cfg.Data.DB.RightsRequests(r.Context())
	if err != nil {
		return err
	}
	views, overdue := app.RegisterView(reqs, s.cfg.Now())
	b := rightsBody{Overdue: overdue, Kinds: dsr.Kinds(), Form: f}
	for i, v := range views {
		row := rightsRow{RequestView: v, Zone: cmp.Or(reqs[i].Zone, dsr.DefaultZone), Open: v.Closed == nil}
		row.Package = v.Kind == string(dsr.Access) && v.State == string(dsr.Completed)
		row.Lift = v.Kind == string(dsr.Restriction) && v.State == string(dsr.Completed)
		if row.Open {
			b.Open++
		}
		b.Requests = append(b.Requests, row)
	}
	slices.SortStableFunc(b.Requests, func(a, c rightsRow) int {
		switch {
		case a.Open && !c.Open:
			return -1
		case !a.Open && c.Open:
			return 1
		case a.Open:
			return a.Deadline.Compare(c.Deadline)
		}
		return cmp.Compare(c.ID, a.ID)
	})
	d := s.newPage(r, p, "Rights requests", b)
	d.Notice, d.Error = noticeOf(r), msg
	if q := r.URL.Query(); q.Get("notice") == "processed" {
		for _, row := range b.Requests {
			if strconv.FormatInt(row.ID, 10) == q.Get("id") {
				d.Notice = fmt.Sprintf("Request R-%d was processed: it is now %s, with %d matched face(s).", row.ID, row.State, row.MatchedFaces)
			}
		}
	}
	return s.render(w, status, "rights", d)
}

func (s *Server) pageRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.rightsPage(w, r, p, http.StatusOK, portalForm{}, "")
}

// pageRegisterRights registers a request the DPO received by post or
// e-mail: any kind, restriction included.
func (s *Server) pageRegisterRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	f := readPortalForm(r)
	req, err := s.registerPortal(r, p.actor(), dsr.Kinds())
	if err != nil {
		ae := s.pageError(r, err)
		return s.rightsPage(w, r, p, ae.Status, f, portalErrorMessage(ae))
	}
	seeOther(w, r, "/rights", "registered", req.ID)
	return nil
}

func (s *Server) pageProcessRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.processRights(r.Context(), id, p); err != nil {
		ae := s.pageError(r, err)
		if ae.Status == http.StatusNotFound {
			return ae
		}
		return s.rightsPage(w, r, p, ae.Status, portalForm{}, capitalize(ae.Message)+".")
	}
	seeOther(w, r, "/rights", "processed", id)
	return nil
}

// pageExtendRights extends a deadline by one or two months, once, after
// the person was told why (Art. 12(3)).
func (s *Server) pageExtendRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	months, err := strconv.Atoi(r.PostForm.Get("months"))
	if err != nil || months < 1 || months > 2 {
		return s.rightsPage(w, r, p, http.StatusBadRequest, portalForm{}, "Extend by one or two months.")
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		return s.rightsPage(w, r, p, http.StatusBadRequest, portalForm{}, "Give the reason for the extension: the person must be told it.")
	}
	if r.PostForm.Get("notice_sent") == "" {
		return s.rightsPage(w, r, p, http.StatusBadRequest, portalForm{},
			"Tell the person of the extension and its reason first, then tick “the person was told”.")
	}
	if _, err := app.ExtendRequest(r.Context(), s.cfg.Data.DB, id, months, reason, p.actor()); err != nil {
		ae := s.pageError(r, err)
		if ae.Status == http.StatusNotFound {
			return ae
		}
		return s.rightsPage(w, r, p, ae.Status, portalForm{}, capitalize(ae.Message)+".")
	}
	seeOther(w, r, "/rights", "extended", id)
	return nil
}

func (s *Server) pageLiftRestriction(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := app.LiftRestriction(r.Context(), s.cfg.Data.DB, s.cfg.Vault, id, p.actor()); err != nil {
		ae := s.pageError(r, err)
		if ae.Status == http.StatusNotFound {
			return ae
		}
		return s.rightsPage(w, r, p, ae.Status, portalForm{}, capitalize(ae.Message)+".")
	}
	seeOther(w, r, "/rights", "lifted", id)
	return nil
}

// --- the public portal ---

// portalForm is what the person filled in, shown again on error (the
// photos must be chosen again: a browser cannot be given them back).
type portalForm struct {
	Kind, Contact string
}

// portalBody is the portal page: the form, or the answer to a request.
type portalBody struct {
	Form     portalForm
	Max      int
	Answer   *portalAnswer
	Due      string // the due date in the request's zone
	Received string
	Kind     string // what was asked, in plain words
	Error    string // why the request was refused
}

// portalKindLabels name the portal's requests in plain words.
var portalKindLabels = map[string]string{
	string(dsr.Access):    "see my data (access)",
	string(dsr.Erasure):   "erase my data (erasure)",
	string(dsr.Objection): "erase my data and never collect me again (objection)",
}

func readPortalForm(r *http.Request) portalForm {
	if err := parseMultipart(r); err != nil {
		return portalForm{}
	}
	return portalForm{Kind: r.FormValue("kind"), Contact: r.FormValue("contact")}
}

// portalErrorMessage explains a refused request in plain words.
func portalErrorMessage(ae *apiError) string {
	switch ae.Code {
	case "no_face":
		return "We found no face in one of your photos. Send photos where your face is clearly visible, facing the camera, and not too small."
	case "not_an_image", "bad_image":
		return "One of the files is not a photo we can read. Send JPEG or PNG photos."
	case "too_large":
		return "The photos are too large together. Send fewer or smaller photos."
	case "rate_limited":
		return "Too many requests came from your network. Try again in an hour."
	}
	return capitalize(ae.Message) + "."
}

func (s *Server) portalPage(w http.ResponseWriter, r *http.Request, status int, b portalBody, msg string) error {
	b.Max, b.Error = maxSelfies, msg
	d := s.newPage(r, nil, "Your rights", b)
	// A member of staff signed in on this browser posts with their
	// session, so the form carries its token.
	if p, err := s.authenticate(r); err == nil && p != nil && p.session != nil {
		d.CSRF = p.session.CSRF
	}
	return s.render(w, status, "portal", d)
}

// pagePortal explains what gabarit is and what anyone may ask of it, and
// takes a request: no account needed.
func (s *Server) pagePortal(w http.ResponseWriter, r *http.Request, _ *principal) error {
	return s.portalPage(w, r, http.StatusOK, portalBody{}, "")
}

// pagePortalPost registers a request from the portal. The answer is the
// same whatever the store holds: it never says whether the person is in
// it.
func (s *Server) pagePortalPost(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if !s.portal.allow(clientIP(r)) {
		retryAfter(w, time.Hour)
		return s.portalPage(w, r, http.StatusTooManyRequests, portalBody{}, portalErrorMessage(errRateLimited))
	}
	f := readPortalForm(r)
	req, err := s.registerPortal(r, "portal", portalKinds)
	if err != nil {
		ae := s.pageError(r, err)
		return s.portalPage(w, r, ae.Status, portalBody{Form: f}, portalErrorMessage(ae))
	}
	a := toPortalAnswer(req)
	loc, err := dsr.Location(req.Zone)
	if err != nil {
		loc = time.UTC
	}
	b := portalBody{Answer: &a, Due: a.Due.In(loc).Format("Monday 2 January 2006") + " (" + loc.String() + ")",
		Received: a.Received.In(loc).Format("2 January 2006"), Kind: cmp.Or(portalKindLabels[a.Kind], a.Kind)}
	return s.portalPage(w, r, http.StatusCreated, b, "")
}
