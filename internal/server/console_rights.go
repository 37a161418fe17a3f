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
	"gabarit/internal/rights"
	"gabarit/internal/store"
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
	Next    string // an open request: what the DPO must do next
	Package bool   // a completed access request: its package can be downloaded
	Lift    bool   // a completed restriction still in force: it can be lifted
}

func (s *Server) rightsPage(w http.ResponseWriter, r *http.Request, p *principal, status int, f portalForm, msg string) error {
	ctx := r.Context()
	reqs, err := s.cfg.Data.DB.RightsRequests(ctx)
	if err != nil {
		return err
	}
	views, overdue := app.RegisterView(reqs, s.cfg.Now())
	b := rightsBody{Overdue: overdue, Kinds: dsr.Kinds(), Form: f}
	for i, v := range views {
		row := rightsRow{RequestView: v, Zone: cmp.Or(reqs[i].Zone, dsr.DefaultZone), Open: v.Closed == nil}
		row.Package = v.Kind == string(dsr.Access) && v.State == string(dsr.Completed)
		restricted := v.Kind == string(dsr.Restriction) && v.State == string(dsr.Completed)
		if row.Open || restricted {
			// What is next, and whether a restriction is in force, need
			// the request's review, identity check and vault entries.
			d, err := app.RequestDetails(ctx, s.cfg.Data.DB, s.cfg.Vault, s.rights.Methods, v.ID, s.cfg.Now(), false)
			if err != nil {
				return err
			}
			row.Next = d.Next
			row.Lift = d.RestrictionInForce != nil && *d.RestrictionInForce
		}
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
	d.Scripts = []string{"app.js"} // the selfies' size is checked before sending
	d.Notice, d.Error = noticeOf(r), msg
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
	seeOther(w, r, fmt.Sprintf("/rights/%d", req.ID), "registered", req.ID)
	return nil
}

// --- a request's page ---

// requestBody is a rights request's page: for the DPO, the worksheet that
// takes it from its candidates to its answer; for auditors, the same page
// without the contact, the selfies, the candidates, the identity note and
// the forms.
type requestBody struct {
	app.RequestDetail
	DPO      bool      // the DPO's page: selfies, candidates and forms
	Open     bool      // not answered yet
	Acting   bool      // an earlier run stopped while acting on the reviewed set
	ZoneName string    // the zone the dates are counted in
	Local    localDays // the request's dates, in the zone
	Outcome  *requestOutcome
	InForce  bool // a completed restriction still in force
	Form     requestForm
	// Quarantined counts the stored faces in quarantine (their template
	// cannot be opened): not compared with the selfies, for the DPO.
	Quarantined int
}

// localDays are a request's dates for people, in its zone.
type localDays struct {
	Received string
	Due      string // the original due date
	Deadline string // the due date now, extended or not
	Told     string // when the person was told of the extension
}

// requestForm is what the DPO typed, shown again when a form fails.
type requestForm struct {
	Method, Note, Refusal, Add string
}

// requestOutcome is what acting on a request did, read back from its
// result for people.
type requestOutcome struct {
	ActedOn      int
	Access       bool // the package's figures
	Faces        int
	Images       int
	Unreadable   int
	Searches     int
	PackageSHA   string
	Erasure      bool // erased faces, with the proof
	Erased       int
	ErasedImages int // images erased with the faces (left without any face)
	Proof        *rights.Proof
	Restriction  bool
	Restricted   int
	// UnreadableFaces were in quarantine when the request was acted on.
	UnreadableFaces int
}

// newOutcome reads a completed request's result (nil when it has none).
func newOutcome(r dsr.Request) *requestOutcome {
	res, ok := rights.ResultOf(r)
	if !ok {
		return nil
	}
	o := &requestOutcome{ActedOn: *res.ActedOn, PackageSHA: res.PackageSHA, Proof: res.Proof, UnreadableFaces: res.UnreadableFaces}
	if res.Faces != nil {
		o.Access, o.Faces, o.Images, o.Unreadable, o.Searches = true, *res.Faces, res.Images, res.Unreadable, res.Searches
	}
	if res.Erased != nil {
		o.Erasure, o.Erased, o.ErasedImages = true, *res.Erased, res.ErasedImages
	}
	if res.Restricted != nil {
		o.Restriction, o.Restricted = true, *res.Restricted
	}
	return o
}

// zoneDate writes t for people, in loc.
func zoneDate(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Monday 2 January 2006")
}

// requestPage renders request id's page for p at status, with msg as its
// error and f as what was typed.
func (s *Server) requestPage(w http.ResponseWriter, r *http.Request, p *principal, id int64, status int, f requestForm, msg string) error {
	ctx := r.Context()
	req, err := s.cfg.Data.DB.RightsRequest(ctx, id)
	if err != nil {
		return err
	}
	det, err := s.requestDetail(ctx, id, p)
	if err != nil {
		return err
	}
	loc := requestLocation(req)
	b := requestBody{RequestDetail: det, DPO: p.user.Has(store.RoleDPO), Open: !req.State.Final(), Acting: req.Acting(),
		ZoneName: loc.String(), Form: f, Local: localDays{Received: req.Received.In(loc).Format("Monday 2 January 2006, 15:04"),
			Due: zoneDate(req.Due, loc), Deadline: zoneDate(req.Deadline(), loc)}}
	if det.NoticeSent != nil {
		b.Local.Told = det.NoticeSent.In(loc).Format("2 January 2006, 15:04")
	}
	if req.State == dsr.Completed {
		b.Outcome = newOutcome(req)
	}
	if b.DPO && b.Open {
		if b.Quarantined, err = s.cfg.Data.DB.QuarantineCount(r.Context()); err != nil {
			return err
		}
	}
	b.InForce = det.RestrictionInForce != nil && *det.RestrictionInForce
	if b.Form.Method == "" && len(det.Methods) > 0 {
		b.Form.Method = det.Methods[0].ID
	}
	d := s.newPage(r, p, fmt.Sprintf("Rights request R-%d", id), b)
	d.Notice, d.Error = noticeOf(r), msg
	return s.render(w, status, "rights_request", d)
}

// pageRightsRequest is a request's page.
func (s *Server) pageRightsRequest(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.requestPage(w, r, p, id, http.StatusOK, requestForm{}, "")
}

// requestFailed answers a request's form that failed: its page again with
// the reason, or the error page when the request does not exist.
func (s *Server) requestFailed(w http.ResponseWriter, r *http.Request, p *principal, id int64, f requestForm, err error) error {
	ae := s.pageError(r, err)
	if ae.Status == http.StatusNotFound || ae.Status >= 500 {
		return ae
	}
	return s.requestPage(w, r, p, id, ae.Status, f, capitalize(ae.Message)+".")
}

// requestFormID reads the id of a request's form and parses its body.
func requestFormID(r *http.Request) (int64, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, err
	}
	if err := r.ParseForm(); err != nil {
		return 0, badRequest("the form cannot be read")
	}
	return id, nil
}

// pageFindCandidates finds (again) the faces that may be the requester's;
// a set found again must be reviewed again.
func (s *Server) pageFindCandidates(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := requestFormID(r)
	if err != nil {
		return err
	}
	found, err := s.findCandidates(r.Context(), id, p)
	if err != nil {
		return s.requestFailed(w, r, p, id, requestForm{}, err)
	}
	notice := "candidates-found"
	if found.Refused {
		notice = "selfies-refused"
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), notice, id)
	return nil
}

// parseFaceIDs reads the face ids a DPO typed.
func parseFaceIDs(s string) ([]int64, error) {
	ids, err := app.ParseFaceIDs(s)
	if err != nil {
		return nil, badRequest("add faces by their ids, separated by commas or spaces: %v", err)
	}
	return ids, nil
}

// pageReviewRights saves the DPO's review: exactly the faces ticked, and
// those added by id, will be acted on.
func (s *Server) pageReviewRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := requestFormID(r)
	if err != nil {
		return err
	}
	f := requestForm{Add: r.PostForm.Get("add")}
	selected := []int64{}
	for _, v := range r.PostForm["face"] {
		fid, err := strconv.ParseInt(v, 10, 64)
		if err != nil || fid <= 0 {
			return s.requestFailed(w, r, p, id, f, badRequest("face %q is not a face id", v))
		}
		selected = append(selected, fid)
	}
	added, err := parseFaceIDs(f.Add)
	if err != nil {
		return s.requestFailed(w, r, p, id, f, err)
	}
	selected = append(selected, added...)
	if _, err := s.rights.Review(r.Context(), id, selected, p.actor()); err != nil {
		return s.requestFailed(w, r, p, id, f, err)
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), "reviewed", id)
	return nil
}

// pageIdentifyRights records how the requester's identity was established.
func (s *Server) pageIdentifyRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := requestFormID(r)
	if err != nil {
		return err
	}
	f := requestForm{Method: r.PostForm.Get("method"), Note: r.PostForm.Get("note")}
	if _, err := s.rights.Identify(r.Context(), id, f.Method, f.Note, p.actor()); err != nil {
		return s.requestFailed(w, r, p, id, f, err)
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), "identity", id)
	return nil
}

// processBody is the confirmation step before acting on a request: what
// will happen, in plain words, or what must be done first.
type processBody struct {
	app.RequestView
	Missing   []string // what must be done before acting
	Closed    bool
	Finish    bool // an earlier run stopped: finish it on the set it froze
	Faces     int  // the faces acted on, the number confirmed
	Statement string
	Warning   string // what cannot be undone
	Button    string
}

// plural writes n and noun, in the plural when n is not 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ch") || strings.HasSuffix(noun, "sh") || strings.HasSuffix(noun, "s") {
		return strconv.Itoa(n) + " " + noun + "es"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// actStatement says what acting on faces (in images, returned by
// searches) will do for a request of kind, and names the button.
func actStatement(kind dsr.Kind, faces, images, searches int) (statement, warning, button string) {
	in := fmt.Sprintf("%s (in %s)", plural(faces, "face"), plural(images, "image"))
	art19 := ""
	if searches > 0 {
		art19 = fmt.Sprintf(" %s returned some of them: their users must then be told (GDPR Art. 19).", plural(searches, "search"))
	}
	none := faces == 0
	switch kind {
	case dsr.Access:
		if none {
			return "No face is selected: the answer will say no data is held about the person.", "", "Answer: no data held"
		}
		return "Build the access package with " + in + "; other people's faces in the same images stay blurred.", "",
			"Build the access package"
	case dsr.Erasure:
		if none {
			return "No face is selected: nothing is erased, and the answer will say no data is held about the person.", "", "Answer: no data held"
		}
		return "Erase " + in + " from the store and the index, then check with a search of the selfies that none comes back." + art19,
			"This cannot be undone.", "Erase " + plural(faces, "face")
	case dsr.Objection:
		if none {
			return "No face is selected: nothing is erased, and the answer will say no data is held about the person. " +
				"The person is kept out of every later ingest and search all the same.", "", "Answer the objection"
		}
		return "Erase " + in + " from the store and the index, and keep the person out of every later ingest and search." + art19,
			"This cannot be undone.", "Erase " + plural(faces, "face")
	case dsr.Restriction:
		if none {
			return "No face is selected: no stored face is hidden now, but later faces that resemble the selfies taken together are kept out of searches until the restriction is lifted.",
				"", "Restrict"
		}
		return "Hide " + in + " from every search until the restriction is lifted; later faces that resemble the selfies taken together are hidden too.",
			"", "Hide " + plural(faces, "face")
	}
	return "Act on " + in + ".", "", "Act"
}

// pageProcessStep is the confirmation step before acting on a request.
func (s *Server) pageProcessStep(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	req, err := s.cfg.Data.DB.RightsRequest(ctx, id)
	if err != nil {
		return err
	}
	det, err := s.requestDetail(ctx, id, p)
	if err != nil {
		return err
	}
	b := processBody{RequestView: det.RequestView, Closed: req.State.Final(), Finish: req.Acting()}
	var ids []int64
	switch {
	case b.Closed:
	case b.Finish:
		ids = req.Matches
	default:
		if det.Review == nil {
			b.Missing = append(b.Missing, "find the candidates, then review them and save the review")
		} else if det.Review.ReviewedBy == "" {
			b.Missing = append(b.Missing, "review the candidates and save the review (the pre-selection is only a proposal)")
		}
		if det.Identity == nil {
			b.Missing = append(b.Missing, "record how the requester's identity was established")
		}
		if det.Review != nil {
			for _, c := range det.Review.Candidates {
				if c.Selected {
					ids = append(ids, c.FaceID)
				}
			}
		}
	}
	if !b.Closed && len(b.Missing) == 0 {
		refs, err := s.cfg.Data.DB.FaceRefs(ctx, ids)
		if err != nil {
			return err
		}
		images := map[int64]bool{}
		for _, ref := range refs {
			images[ref.ImageID] = true
		}
		var searches []store.Search
		if req.Kind == dsr.Erasure || req.Kind == dsr.Objection {
			if searches, err = s.cfg.Data.DB.SearchesReturning(ctx, ids); err != nil {
				return err
			}
		}
		b.Faces = len(ids)
		b.Statement, b.Warning, b.Button = actStatement(req.Kind, len(ids), len(images), len(searches))
		if b.Finish {
			b.Statement = fmt.Sprintf("An earlier run stopped while acting on this request's reviewed set of %s: finish it, on that same set. ",
				plural(len(ids), "face")) + b.Statement
			b.Button = "Finish: " + b.Button
		}
	}
	d := s.newPage(r, p, fmt.Sprintf("Act on request R-%d", id), b)
	return s.render(w, http.StatusOK, "rights_process", d)
}

// pageProcessRights acts on a request's reviewed set, once the DPO
// confirmed the number of faces on the confirmation step (confirm_faces;
// -1 only finishes a run that stopped).
func (s *Server) pageProcessRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := requestFormID(r)
	if err != nil {
		return err
	}
	req, err := s.cfg.Data.DB.RightsRequest(r.Context(), id)
	if err != nil {
		return err
	}
	confirm, err := strconv.Atoi(r.PostForm.Get("confirm_faces"))
	if err != nil || confirm < -1 || confirm == -1 && !req.Acting() {
		return s.requestFailed(w, r, p, id, requestForm{},
			badRequest("act from the confirmation step (“Act on the reviewed set…”), which says how many faces are acted on"))
	}
	if _, err := s.processRights(r.Context(), id, confirm, p); err != nil {
		return s.requestFailed(w, r, p, id, requestForm{}, err)
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), "processed", id)
	return nil
}

// pageRefuseRights closes a request with the reason the person is given.
func (s *Server) pageRefuseRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := requestFormID(r)
	if err != nil {
		return err
	}
	f := requestForm{Refusal: strings.TrimSpace(r.PostForm.Get("reason"))}
	if f.Refusal == "" {
		return s.requestFailed(w, r, p, id, f, badRequest("give the reason for the refusal: the person is told it"))
	}
	if _, err := s.rights.Refuse(r.Context(), id, f.Refusal, p.actor()); err != nil {
		return s.requestFailed(w, r, p, id, f, err)
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), "refused", id)
	return nil
}

// pageRightsNotice records that the users of a search that returned
// erased faces were told of the erasure (GDPR Art. 19).
func (s *Server) pageRightsNotice(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := requestFormID(r)
	if err != nil {
		return err
	}
	sid, err := strconv.ParseInt(r.PostForm.Get("search_id"), 10, 64)
	if err != nil || sid <= 0 {
		return s.requestFailed(w, r, p, id, requestForm{}, badRequest("search_id: say which search's users were told"))
	}
	if err := s.rights.Notified(r.Context(), id, sid, p.actor()); err != nil {
		return s.requestFailed(w, r, p, id, requestForm{}, err)
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), "notified", sid)
	return nil
}

// rightsRecordBody is the sealed record of what was done for a request.
type rightsRecordBody struct {
	rights.Record
	RequestID     int64
	SHA256        string
	IdentityLabel string // the identity check's method, in words
}

// pageRightsRecord opens a request's sealed record for the DPO; each
// reading is audited.
func (s *Server) pageRightsRecord(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rec, err := s.rights.OpenRecord(r.Context(), id, p.actor())
	if err != nil {
		return err
	}
	b := rightsRecordBody{Record: rec, RequestID: id}
	if rec.Identity != nil {
		b.IdentityLabel = rec.Identity.Method
		if m, ok := dsr.FindIdentityMethod(s.rights.Methods, rec.Identity.Method); ok {
			b.IdentityLabel = m.Label
		}
	}
	if sr, err := s.cfg.Data.DB.RightsRecordOf(r.Context(), id); err == nil {
		b.SHA256 = sr.SHA256
	}
	d := s.newPage(r, p, fmt.Sprintf("Record of request R-%d", id), b)
	return s.render(w, http.StatusOK, "rights_record", d)
}

// pageExtendRights extends a deadline by one or two months, once, after
// the person was told why (Art. 12(3)).
func (s *Server) pageExtendRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := requestFormID(r)
	if err != nil {
		return err
	}
	months, err := strconv.Atoi(r.PostForm.Get("months"))
	if err != nil || months < 1 || months > 2 {
		return s.requestFailed(w, r, p, id, requestForm{}, badRequest("extend by one or two months"))
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		return s.requestFailed(w, r, p, id, requestForm{}, badRequest("give the reason for the extension: the person must be told it"))
	}
	if r.PostForm.Get("notice_sent") == "" {
		return s.requestFailed(w, r, p, id, requestForm{},
			badRequest("tell the person of the extension and its reason first, then tick “the person was told”"))
	}
	if _, err := app.ExtendRequest(r.Context(), s.cfg.Data.DB, id, months, reason, p.actor()); err != nil {
		return s.requestFailed(w, r, p, id, requestForm{}, err)
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), "extended", id)
	return nil
}

func (s *Server) pageLiftRestriction(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := app.LiftRestriction(r.Context(), s.cfg.Data.DB, s.cfg.Vault, id, p.actor()); err != nil {
		return s.requestFailed(w, r, p, id, requestForm{}, err)
	}
	seeOther(w, r, fmt.Sprintf("/rights/%d", id), "lifted", id)
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
	Message  string // portalMessage: the status code has its own note
	Error    string // why the request was refused
	// Identity are examples of how the controller may confirm that the
	// requester is the person in the photos (see identityExamples).
	Identity []string
}

// portalKindLabels name the portal's requests in plain words.
var portalKindLabels = map[string]string{
	string(dsr.Access):      "see my data (access)",
	string(dsr.Erasure):     "erase my data (erasure)",
	string(dsr.Objection):   "erase my data and never collect me again (objection)",
	string(dsr.Restriction): "hide my data from every search for now (restriction)",
}

func readPortalForm(r *http.Request) portalForm {
	if err := parseMultipart(r); err != nil {
		return portalForm{}
	}
	return portalForm{Kind: r.FormValue("kind"), Contact: r.FormValue("contact")}
}

// unusableFile says why a file sent as a photo cannot be used, from the
// decoder's message (what the file is, or that it is damaged or too large).
func unusableFile(why string) string {
	return "This file cannot be used: " + why + "."
}

// portalErrorMessage explains a refused request in plain words.
func portalErrorMessage(ae *apiError) string {
	switch ae.Code {
	case "no_face":
		return "We found no face in one of your photos. Send photos where your face is clearly visible, facing the camera, and not too small."
	case "not_an_image", "bad_image":
		return unusableFile(ae.Message)
	}
	return capitalize(ae.Message) + "."
}

func (s *Server) portalPage(w http.ResponseWriter, r *http.Request, status int, b portalBody, msg string) error {
	b.Max, b.Error = maxSelfies, msg
	var scripts []string
	if b.Answer == nil { // the form
		b.Identity = s.identityExamples()
		scripts = []string{"app.js", "portal.js"} // app.js: the photos' size is checked before sending
	}
	d := s.newPage(r, nil, "Your rights", b)
	d.Scripts = scripts
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
	req, err := s.limitedPortalRequest(w, r)
	if err != nil {
		ae := s.pageError(r, err)
		var b portalBody
		if ae.Status != http.StatusTooManyRequests { // the body was read: show the form as sent
			b.Form = readPortalForm(r)
		}
		return s.portalPage(w, r, ae.Status, b, portalErrorMessage(ae))
	}
	a, err := s.toPortalAnswer(req)
	if err != nil {
		return err
	}
	loc := requestLocation(req)
	b := portalBody{Answer: &a, Due: portalDue(a.Due, loc), Message: portalMessage,
		Received: a.Received.In(loc).Format("2 January 2006"), Kind: cmp.Or(portalKindLabels[a.Kind], a.Kind)}
	return s.portalPage(w, r, http.StatusCreated, b, "")
}
