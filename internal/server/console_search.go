package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gabarit/internal/app"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

// --- search ---

// searchBody is the search page: the form (kept on error) and, after a
// search, its results.
type searchBody struct {
	Purpose, Case, Face string
	Threshold, Reason   string // an examiner's exploratory search
	K                   int
	MaxK                int
	// Examiner: the user may search below the operating point, with a
	// reason; the form shows the threshold and reason fields.
	Examiner bool
	Result   *app.SearchView
}

func (s *Server) searchPage(w http.ResponseWriter, r *http.Request, p *principal, status int, b searchBody, msg string) error {
	if b.K == 0 {
		b.K = 10
	}
	b.MaxK = search.MaxK
	b.Examiner = p.user.Has(store.RoleExaminer)
	d := s.newPage(r, p, "Search by photo", b)
	d.Error = msg
	d.Scripts = []string{"app.js", "search.js"}
	return s.render(w, status, "search", d)
}

// MaxUpload is the largest request body with photos, in bytes: the pages'
// file inputs carry it (data-max-bytes) so that a script refuses a larger
// photo before sending it (app.js).
func (d *pageData) MaxUpload() int64 {
	if d.s == nil {
		return defaultUpload
	}
	return d.s.cfg.MaxUpload
}

func (s *Server) pageSearch(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.searchPage(w, r, p, http.StatusOK, searchBody{}, "")
}

// pageSearchPost runs a search from the form without scripts (with
// scripts, the page calls the API) and shows its results.
func (s *Server) pageSearchPost(w http.ResponseWriter, r *http.Request, p *principal) error {
	b := searchBody{}
	if err := parseMultipart(r); err == nil {
		b.Purpose, b.Case, b.Face = r.FormValue("purpose"), r.FormValue("case"), r.FormValue("face")
		b.Threshold, b.Reason = r.FormValue("threshold"), r.FormValue("reason")
		b.K, _ = strconv.Atoi(r.FormValue("k")) // a bad k is reported by readSearchForm
	}
	res, err := func() (app.SearchView, error) {
		f, err := s.readSearchForm(r, p)
		if err != nil {
			return app.SearchView{}, err
		}
		return s.runSearch(r.Context(), f, p)
	}()
	if err != nil {
		ae := s.pageError(r, err)
		msg := capitalize(ae.Message) + "."
		if ae.Code == "no_face" {
			msg = "No face was found in the photo: choose a photo where a face is clearly visible."
		}
		return s.searchPage(w, r, p, ae.Status, b, msg)
	}
	b.Result = &res
	return s.searchPage(w, r, p, http.StatusOK, b, "")
}

// --- the history of searches ---

// searchesBody is a page of the history of searches, newest first, with
// its filters.
type searchesBody struct {
	Rows   []store.SearchSummary
	Filter searchesFilter
	// AllUsers: the viewer sees everyone's searches (verifiers,
	// auditors), and may filter by who ran them.
	AllUsers bool
	Older    string // URL of the next, older page; "" when none
	Newest   string // URL of the newest page, when this is not it
}

// searchesFilter is the filter form, as it was sent.
type searchesFilter struct {
	Case, Actor, State, From, To string
}

// Any reports whether the filter selects anything less than everything.
func (f searchesFilter) Any() bool { return f != searchesFilter{} }

// States are the verification states one may filter by.
func (searchesFilter) States() []string {
	return []string{string(store.VerifyUnverified), string(store.VerifyPending), string(store.VerifyConfirmed), string(store.VerifyRejected)}
}

// searchesPerPage is how many searches the list shows at once.
const searchesPerPage = 30

// pageSearches is the history of searches: an investigator's own, or
// everyone's for verifiers and auditors, filtered by case, user,
// verification state and period, newest first (?cursor= pages back).
func (s *Server) pageSearches(w http.ResponseWriter, r *http.Request, p *principal) error {
	f, err := searchFilter(r, p, searchesPerPage)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	b := searchesBody{AllUsers: seesAllSearches(p),
		Filter: searchesFilter{Case: q.Get("case"), Actor: q.Get("actor"), State: q.Get("state"), From: q.Get("from"), To: q.Get("to")}}
	if !b.AllUsers {
		b.Filter.Actor = ""
	}
	var next string
	b.Rows, next, err = s.listSearches(r.Context(), f)
	if err != nil {
		return err
	}
	link := func(cursor string) string {
		v := url.Values{}
		for k, x := range map[string]string{"case": b.Filter.Case, "actor": b.Filter.Actor, "state": b.Filter.State,
			"from": b.Filter.From, "to": b.Filter.To, "cursor": cursor} {
			if x != "" {
				v.Set(k, x)
			}
		}
		if len(v) == 0 {
			return "/searches"
		}
		return "/searches?" + v.Encode()
	}
	if next != "" {
		b.Older = link(next)
	}
	if q.Get("cursor") != "" {
		b.Newest = link("")
	}
	d := s.newPage(r, p, "Searches", b)
	return s.render(w, http.StatusOK, "searches", d)
}

// beforeParam reads ?before=ID (0 when absent).
func beforeParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("before")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest("before %q: want an entry id ≥ 1", v)
	}
	return n, nil
}

// --- one search, its results, their verification ---

// recordBody is one search with a page of its results, as its searcher,
// verifiers and auditors see it.
type recordBody struct {
	searchRecordJSON
	Faces     []recordFace // this page of results
	Mine      bool         // the viewer ran this search
	CanVerify bool         // the viewer is a verifier who did not run it
	ShowCrops bool         // the viewer may see the faces (investigator, verifier)
	First     int          // rank of the first result shown (from 1)
	Last      int          // rank of the last result shown
	Recorded  int          // results recorded (Above, unless truncated)
	Next      string       // URL of the next page of results; "" when none
	Prev      string       // URL of the previous page; "" when none
}

// recordFace is one returned face with its verification.
type recordFace struct {
	app.HitView
	Rank       int
	Video      bool
	Verifiers  []string
	Identified bool
	Rejections []rejectionJSON
	ByMe       bool // the viewer confirmed it already
	RejectedBy bool // the viewer rejected it already
}

// Held reports whether the face is still stored (not erased nor purged
// since the search).
func (f recordFace) Held() bool { return !f.Erased }

// Rejected reports whether a verifier rejected the face.
func (f recordFace) Rejected() bool { return len(f.Rejections) > 0 }

// Needed is how many more confirmations face f needs.
func (f recordFace) Needed() int { return max(0, store.ConfirmationsRequired-len(f.Verifiers)) }

// resultsPerPage is how many results a search's page shows at once.
const resultsPerPage = 24

// recordFaces joins a page of results with their verification.
func recordFaces(rec searchRecordJSON, page []app.HitView, first int, p *principal) []recordFace {
	out := make([]recordFace, len(page))
	for i, h := range page {
		c, rs := rec.confirmationOf(h.FaceID)
		out[i] = recordFace{HitView: h, Rank: first + i, Video: h.TimeCodeMS != nil, Verifiers: c.Verifiers,
			Identified: c.Identified && len(rs) == 0, Rejections: rs, ByMe: slices.Contains(c.Verifiers, p.actor()),
			RejectedBy: slices.ContainsFunc(rs, func(r rejectionJSON) bool { return r.Verifier == p.actor() })}
	}
	return out
}

func (s *Server) recordPage(w http.ResponseWriter, r *http.Request, p *principal, status int, id int64, msg string) error {
	ctx := r.Context()
	rec, sr, err := s.loadRecord(ctx, id, p)
	if err != nil {
		return err
	}
	b := recordBody{searchRecordJSON: rec, Mine: rec.Actor == p.actor(), ShowCrops: seesFaces(p), Recorded: len(rec.Returned)}
	b.CanVerify = p.user.Has(store.RoleVerifier) && !b.Mine
	off, err := app.ParseCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	off = min(off, max(0, b.Recorded-1))
	page, next, err := app.ResultsPage(ctx, s.cfg.Data, sr, app.Cursor(off), resultsPerPage)
	if err != nil {
		return err
	}
	b.Faces = recordFaces(rec, page, off+1, p)
	b.First, b.Last = off+1, off+len(page)
	base := fmt.Sprintf("/searches/%d", id)
	if next != "" {
		b.Next = base + "?cursor=" + url.QueryEscape(next) + "#results"
	}
	if off > 0 {
		b.Prev = base + "?cursor=" + url.QueryEscape(app.Cursor(max(0, off-resultsPerPage))) + "#results"
	}
	d := s.newPage(r, p, fmt.Sprintf("Search %d", id), b)
	d.Notice, d.Error = noticeOf(r), msg
	d.Scripts = []string{"app.js"}
	return s.render(w, status, "search_record", d)
}

func (s *Server) pageSearchRecord(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.recordPage(w, r, p, http.StatusOK, id, "")
}

// verifyBody is the verification screen of one result: the face searched
// beside the candidate, the whole image, the strength of the match, and
// the verifier's two actions.
type verifyBody struct {
	Rec       searchRecordJSON
	Face      recordFace
	Ref       store.FaceRef // the candidate as stored; zero when no longer held
	Mine      bool          // the viewer ran this search
	ShowCrops bool          // the viewer may see the faces
	CanAct    bool          // the viewer may confirm or reject it now
	Total     int           // results recorded
	PrevFace  int64         // the result ranked before (0: none)
	NextFace  int64         // the result ranked after (0: none)
	Reason    string        // a rejection's reason, kept when it failed
}

// loadVerify builds the verification screen of face fid of search sid.
func (s *Server) loadVerify(r *http.Request, p *principal, sid, fid int64) (verifyBody, error) {
	ctx := r.Context()
	rec, sr, err := s.loadRecord(ctx, sid, p)
	if err != nil {
		return verifyBody{}, err
	}
	i := slices.Index(sr.Returned, fid)
	if i < 0 {
		return verifyBody{}, errNotFound
	}
	page, _, err := app.ResultsPage(ctx, s.cfg.Data, sr, app.Cursor(i), 1)
	if err != nil {
		return verifyBody{}, err
	}
	if len(page) != 1 {
		return verifyBody{}, errNotFound
	}
	b := verifyBody{Rec: rec, Face: recordFaces(rec, page, i+1, p)[0], Mine: rec.Actor == p.actor(),
		ShowCrops: seesFaces(p), Total: len(sr.Returned)}
	if i > 0 {
		b.PrevFace = sr.Returned[i-1]
	}
	if i+1 < len(sr.Returned) {
		b.NextFace = sr.Returned[i+1]
	}
	if b.Face.Held() {
		refs, err := s.cfg.Data.DB.FaceRefs(ctx, []int64{fid})
		if err != nil {
			return verifyBody{}, err
		}
		b.Ref = refs[fid]
	}
	b.CanAct = p.user.Has(store.RoleVerifier) && !b.Mine && b.Face.Held()
	return b, nil
}

func (s *Server) verifyPage(w http.ResponseWriter, r *http.Request, p *principal, status int, sid, fid int64, reason, msg string) error {
	b, err := s.loadVerify(r, p, sid, fid)
	if err != nil {
		return err
	}
	b.Reason = reason
	d := s.newPage(r, p, fmt.Sprintf("Verify face %d of search %d", fid, sid), b)
	d.Notice, d.Error = noticeOf(r), msg
	d.Scripts = []string{"app.js"}
	return s.render(w, status, "verify", d)
}

// pathIDs reads the search's and the face's ids of /searches/{id}/faces/{face}.
func pathIDs(r *http.Request) (sid, fid int64, err error) {
	if sid, err = pathID(r, "id"); err != nil {
		return 0, 0, err
	}
	fid, err = pathID(r, "face")
	return sid, fid, err
}

// pageVerify is the verification screen of one result.
func (s *Server) pageVerify(w http.ResponseWriter, r *http.Request, p *principal) error {
	sid, fid, err := pathIDs(r)
	if err != nil {
		return err
	}
	return s.verifyPage(w, r, p, http.StatusOK, sid, fid, "", "")
}

// pageConfirmStep asks the verifier to confirm what a confirmation means
// before recording it.
func (s *Server) pageConfirmStep(w http.ResponseWriter, r *http.Request, p *principal) error {
	sid, fid, err := pathIDs(r)
	if err != nil {
		return err
	}
	b, err := s.loadVerify(r, p, sid, fid)
	if err != nil {
		return err
	}
	d := s.newPage(r, p, fmt.Sprintf("Confirm face %d of search %d", fid, sid), b)
	d.Scripts = []string{"app.js"}
	return s.render(w, http.StatusOK, "confirm", d)
}

// formFace reads the face_id field of a verification form.
func formFace(r *http.Request) (int64, error) {
	if err := r.ParseForm(); err != nil {
		return 0, badRequest("the form cannot be read")
	}
	fid, err := strconv.ParseInt(r.PostForm.Get("face_id"), 10, 64)
	if err != nil || fid <= 0 {
		return 0, badRequest("face_id: say which face you verify")
	}
	return fid, nil
}

// pageConfirm records a verifier's confirmation of a returned face, once
// they have confirmed its meaning (attest=yes, from the confirmation
// step; without it, the step is shown first). The store enforces the
// rules (not one's own search, once per verifier, never a rejected face);
// a refusal is explained on the verification screen.
func (s *Server) pageConfirm(w http.ResponseWriter, r *http.Request, p *principal) error {
	sid, err := pathID(r, "id")
	if err != nil {
		return err
	}
	fid, err := formFace(r)
	if err != nil {
		return err
	}
	if r.PostForm.Get("attest") != "yes" {
		http.Redirect(w, r, fmt.Sprintf("/searches/%d/faces/%d/confirm", sid, fid), http.StatusSeeOther)
		return nil
	}
	c, err := s.cfg.Data.DB.Confirm(r.Context(), sid, fid, p.actor())
	if err != nil {
		var status int
		var msg string
		switch {
		case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrRejected), errors.Is(err, store.ErrForbidden):
			ae := s.pageError(r, verifyRefusal(err, "confirm", fid)) // the API's words
			status, msg = ae.Status, capitalize(ae.Message)+"."
		case errors.Is(err, store.ErrInvalid):
			return s.recordPage(w, r, p, http.StatusBadRequest, sid, fmt.Sprintf("Face %d was not returned by this search.", fid))
		case errors.Is(err, store.ErrNotFound):
			if _, serr := s.visibleSearch(r.Context(), sid, p); serr != nil {
				return serr
			}
			status, msg = http.StatusNotFound, fmt.Sprintf("Face %d is no longer held (erased or purged since the search): it cannot be confirmed.", fid)
		default:
			return err
		}
		return s.verifyPage(w, r, p, status, sid, fid, "", msg)
	}
	notice := "confirmed"
	if c.Identified {
		notice = "identified"
	}
	seeOther(w, r, fmt.Sprintf("/searches/%d/faces/%d", sid, fid), notice, fid)
	return nil
}

// pageReject records a verifier's rejection of a returned face, with its
// reason; a refusal is explained on the verification screen, the reason
// kept in the form.
func (s *Server) pageReject(w http.ResponseWriter, r *http.Request, p *principal) error {
	sid, err := pathID(r, "id")
	if err != nil {
		return err
	}
	fid, err := formFace(r)
	if err != nil {
		return err
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if _, err := s.cfg.Data.DB.Reject(r.Context(), sid, fid, p.actor(), reason); err != nil {
		var status int
		var msg string
		switch {
		case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrForbidden):
			ae := s.pageError(r, verifyRefusal(err, "reject", fid)) // the API's words
			status, msg = ae.Status, capitalize(ae.Message)+"."
		case errors.Is(err, store.ErrNotReturned):
			return s.recordPage(w, r, p, http.StatusBadRequest, sid, fmt.Sprintf("Face %d was not returned by this search.", fid))
		case errors.Is(err, store.ErrInvalid):
			status, msg = http.StatusBadRequest, fmt.Sprintf("State why you reject this face, in 1 to %d characters: the reason is recorded with the rejection and in the audit log.", store.MaxRejectReason)
		case errors.Is(err, store.ErrNotFound):
			if _, serr := s.visibleSearch(r.Context(), sid, p); serr != nil {
				return serr
			}
			status, msg = http.StatusNotFound, fmt.Sprintf("Face %d is no longer held (erased or purged since the search).", fid)
		default:
			return err
		}
		return s.verifyPage(w, r, p, status, sid, fid, reason, msg)
	}
	seeOther(w, r, fmt.Sprintf("/searches/%d/faces/%d", sid, fid), "rejected", fid)
	return nil
}
