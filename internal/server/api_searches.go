package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

// --- search records: history, decision, results, verification ---

// searchRecordJSON is a recorded search: what was asked, the decision
// (threshold, operating point, exploratory reason), the probe face, and
// the verification of its results.
type searchRecordJSON struct {
	ID      int64     `json:"id"`
	Actor   string    `json:"actor"`
	At      time.Time `json:"at"`
	Purpose string    `json:"purpose"`
	Case    string    `json:"case,omitempty"`
	K       int       `json:"k"`
	app.DecisionView
	ProbeFaces    int                `json:"probe_faces"`
	ProbeFace     *app.ProbeFaceView `json:"probe_face,omitempty"`
	ProbeCrop     bool               `json:"probe_crop"`
	State         store.Verification `json:"state"`
	Returned      []int64            `json:"returned"`
	Confirmations []confirmationJSON `json:"confirmations"`
	Rejections    []rejectionJSON    `json:"rejections"`
	Required      int                `json:"confirmations_required"`
}

type confirmationJSON struct {
	FaceID     int64    `json:"face_id"`
	Verifiers  []string `json:"verifiers"`
	Identified bool     `json:"identified"`
	Rejected   bool     `json:"rejected"`
}

type rejectionJSON struct {
	FaceID   int64     `json:"face_id"`
	Verifier string    `json:"verifier"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// canSeeSearch: an investigator sees their own searches; verifiers and
// auditors see all.
func canSeeSearch(p *principal, sr store.Search) bool {
	return sr.Actor == p.actor() || seesAllSearches(p)
}

// seesAllSearches: verifiers and auditors see every search.
func seesAllSearches(p *principal) bool {
	return p.user.Has(store.RoleVerifier) || p.user.Has(store.RoleAuditor)
}

// seesFaces: investigators (of their own searches) and verifiers see the
// faces a search returned; auditors see the decision and the strength of
// each result, not where the faces are.
func seesFaces(p *principal) bool {
	return p.user.Has(store.RoleInvestigator) || p.user.Has(store.RoleVerifier)
}

// visibleSearch returns the search id if p may see it; another
// investigator's search is "not found".
func (s *Server) visibleSearch(ctx context.Context, id int64, p *principal) (store.Search, error) {
	sr, err := s.cfg.Data.DB.Search(ctx, id)
	if err != nil {
		return store.Search{}, err
	}
	if !canSeeSearch(p, sr) {
		return store.Search{}, errNotFound
	}
	return sr, nil
}

func (s *Server) searchRecord(ctx context.Context, id int64, p *principal) (searchRecordJSON, error) {
	rec, _, err := s.loadRecord(ctx, id, p)
	return rec, err
}

// loadRecord returns search id, if p may see it, as the API shows it and
// as the store holds it.
func (s *Server) loadRecord(ctx context.Context, id int64, p *principal) (searchRecordJSON, store.Search, error) {
	sr, err := s.visibleSearch(ctx, id, p)
	if err != nil {
		return searchRecordJSON{}, store.Search{}, err
	}
	db := s.cfg.Data.DB
	cs, err := db.Confirmations(ctx, id)
	if err != nil {
		return searchRecordJSON{}, store.Search{}, err
	}
	rs, err := db.Rejections(ctx, id)
	if err != nil {
		return searchRecordJSON{}, store.Search{}, err
	}
	sum, err := db.SearchSummary(ctx, id)
	if err != nil {
		return searchRecordJSON{}, store.Search{}, err
	}
	out := searchRecordJSON{ID: sr.ID, Actor: sr.Actor, At: sr.At, Purpose: sr.Purpose, Case: sr.CaseRef, K: sr.K,
		DecisionView: app.NewDecisionView(sr),
		ProbeFace:    app.NewProbeFaceView(sr.ProbeFace), ProbeCrop: len(sr.ProbeCrop) > 0, State: sum.State(),
		Returned: sr.Returned, Confirmations: []confirmationJSON{}, Rejections: []rejectionJSON{},
		Required: store.ConfirmationsRequired}
	if sr.ProbeFace != nil {
		out.ProbeFaces = sr.ProbeFace.Faces
	}
	if out.Returned == nil {
		out.Returned = []int64{}
	}
	for _, fid := range sr.Returned {
		if c, ok := cs[fid]; ok {
			out.Confirmations = append(out.Confirmations, confirmationJSON{FaceID: fid, Verifiers: c.Verifiers,
				Identified: c.Identified, Rejected: c.Rejected})
		}
		for _, r := range rs[fid] {
			out.Rejections = append(out.Rejections, rejectionJSON{FaceID: fid, Verifier: r.Verifier, Reason: r.Reason, At: r.At})
		}
	}
	return out, sr, nil
}

// confirmationOf returns the confirmation state of face fid in rec (zero
// when nobody confirmed it), with its rejections.
func (rec searchRecordJSON) confirmationOf(fid int64) (confirmationJSON, []rejectionJSON) {
	c := confirmationJSON{FaceID: fid}
	for _, x := range rec.Confirmations {
		if x.FaceID == fid {
			c = x
		}
	}
	var rs []rejectionJSON
	for _, r := range rec.Rejections {
		if r.FaceID == fid {
			rs = append(rs, r)
		}
	}
	c.Rejected = c.Rejected || len(rs) > 0
	return c, rs
}

func (s *Server) apiConfirm(w http.ResponseWriter, r *http.Request, p *principal) error {
	sid, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		FaceID int64 `json:"face_id"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, err := s.cfg.Data.DB.Confirm(r.Context(), sid, in.FaceID, p.actor())
	if err != nil {
		return verifyRefusal(err, "confirm", in.FaceID)
	}
	writeJSON(w, http.StatusOK, confirmationJSON{FaceID: in.FaceID, Verifiers: c.Verifiers, Identified: c.Identified})
	return nil
}

// verifyRefusal explains, for people, why the store refused a verifier's
// confirmation or rejection (act) of face fid: the same words on the API
// and on the console's verification screen. Other errors are returned as
// they are.
func verifyRefusal(err error, act string, fid int64) error {
	switch {
	case errors.Is(err, store.ErrExists) && act == "confirm":
		return newError(http.StatusConflict, "conflict", "you have already confirmed face %d: a second, different verifier must confirm it", fid)
	case errors.Is(err, store.ErrExists):
		return newError(http.StatusConflict, "conflict", "you have already rejected face %d", fid)
	case errors.Is(err, store.ErrRejected):
		return newError(http.StatusConflict, "rejected", "face %d was rejected by a verifier: a rejected result cannot be confirmed", fid)
	case errors.Is(err, store.ErrForbidden):
		return newError(http.StatusForbidden, "not_allowed", "you cannot %s this result: you ran this search (or your account may not verify). Another verifier must do it", act)
	case errors.Is(err, store.ErrNotReturned):
		return badRequest("face %d was not returned by this search", fid)
	}
	return err
}

// apiReject records the calling verifier's rejection of a result, with
// its reason: the face is then never confirmed nor identified.
func (s *Server) apiReject(w http.ResponseWriter, r *http.Request, p *principal) error {
	sid, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		FaceID int64  `json:"face_id"`
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	rj, err := s.cfg.Data.DB.Reject(r.Context(), sid, in.FaceID, p.actor(), in.Reason)
	if err != nil {
		return verifyRefusal(err, "reject", in.FaceID)
	}
	writeJSON(w, http.StatusOK, rejectionJSON{FaceID: rj.FaceID, Verifier: rj.Verifier, Reason: rj.Reason, At: rj.At})
	return nil
}

// searchSummaryJSON is one search of the history.
type searchSummaryJSON struct {
	ID             int64              `json:"id"`
	Actor          string             `json:"actor"`
	At             time.Time          `json:"at"`
	Purpose        string             `json:"purpose"`
	Case           string             `json:"case,omitempty"`
	Threshold      float64            `json:"threshold"`
	OperatingPoint float64            `json:"operating_point"`
	Exploratory    bool               `json:"exploratory"`
	Reason         string             `json:"exploratory_reason,omitempty"`
	Above          int                `json:"above"`
	State          store.Verification `json:"state"`
	Identified     int                `json:"identified"`
	Pending        int                `json:"pending"`
	Rejected       int                `json:"rejected"`
}

func toSummaryJSON(s store.SearchSummary) searchSummaryJSON {
	return searchSummaryJSON{ID: s.ID, Actor: s.Actor, At: s.At, Purpose: s.Purpose, Case: s.CaseRef,
		Threshold: round4(s.Threshold), OperatingPoint: round4(s.OperatingPoint), Exploratory: s.Exploratory != "", Reason: s.Exploratory,
		Above: s.Above, State: s.State(), Identified: s.Identified, Pending: s.Pending, Rejected: s.Rejected}
}

type searchListJSON struct {
	Searches   []searchSummaryJSON `json:"searches"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

// Sizes of search history pages.
const (
	defaultSearchPage = 50
	maxSearchPage     = 200
)

// searchFilter reads the history's filters from the query: case, actor,
// state, from, to (dates, or RFC 3339 times; a date "to" includes its
// day), cursor and limit. An investigator who is neither a verifier nor an
// auditor sees only their own searches, whatever actor they ask for.
func searchFilter(r *http.Request, p *principal, defaultLimit int) (store.SearchFilter, error) {
	q := r.URL.Query()
	f := store.SearchFilter{Case: strings.TrimSpace(q.Get("case")), Actor: strings.TrimSpace(q.Get("actor")), Limit: defaultLimit}
	if !seesAllSearches(p) {
		f.Actor = p.actor()
	}
	var err error
	if f.State, err = store.ParseVerification(q.Get("state")); err != nil {
		return f, badRequest("state %q: want unverified, pending, confirmed or rejected", q.Get("state"))
	}
	if f.From, err = parseDay(q.Get("from"), false); err != nil {
		return f, err
	}
	if f.To, err = parseDay(q.Get("to"), true); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return f, badRequest("to must come after from")
	}
	if v := q.Get("cursor"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before < 1 {
			return f, newError(http.StatusBadRequest, "invalid_cursor", "cursor %q: page with the next_cursor of an answer", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > maxSearchPage {
			return f, badRequest("limit %q: want a whole number from 1 to %d", v, maxSearchPage)
		}
	}
	return f, nil
}

// parseDay reads a date (2006-01-02, midnight UTC; the next midnight for
// the end of a period) or an RFC 3339 time; "" is the zero time.
func parseDay(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, badRequest("%q: want a date (2006-01-02) or an RFC 3339 time", v)
	}
	return t, nil
}

// listSearches returns one page of the history f selects and the cursor
// of the next page ("" after the last).
func (s *Server) listSearches(ctx context.Context, f store.SearchFilter) ([]store.SearchSummary, string, error) {
	limit := f.Limit
	f.Limit++
	list, err := s.cfg.Data.DB.ListSearches(ctx, f)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = strconv.FormatInt(list[len(list)-1].ID, 10)
	}
	return list, next, nil
}

// apiSearches is the history of searches, newest first.
func (s *Server) apiSearches(w http.ResponseWriter, r *http.Request, p *principal) error {
	f, err := searchFilter(r, p, defaultSearchPage)
	if err != nil {
		return err
	}
	list, next, err := s.listSearches(r.Context(), f)
	if err != nil {
		return err
	}
	out := searchListJSON{Searches: make([]searchSummaryJSON, len(list)), NextCursor: next}
	for i, sr := range list {
		out.Searches[i] = toSummaryJSON(sr)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// resultsPageJSON is one page of a search's recorded results.
type resultsPageJSON struct {
	SearchID   int64         `json:"search_id"`
	Results    []app.HitView `json:"results"`
	Above      int           `json:"above"`
	Recorded   int           `json:"recorded"`
	Truncated  bool          `json:"truncated,omitempty"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// Sizes of result pages.
const defaultResultsPage = 50

// apiSearchResults pages through every result a search recorded.
func (s *Server) apiSearchResults(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	limit := defaultResultsPage
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > search.MaxK {
			return badRequest("limit %q: want a whole number from 1 to %d", v, search.MaxK)
		}
	}
	sr, err := s.visibleSearch(r.Context(), id, p)
	if err != nil {
		return err
	}
	page, next, err := app.ResultsPage(r.Context(), s.cfg.Data, sr, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	if !seesFaces(p) {
		for i, h := range page {
			page[i] = app.HitView{FaceID: h.FaceID, Similarity: h.Similarity, Band: h.Band, Strangers: h.Strangers,
				Support: h.Support, BelowOperatingPoint: h.BelowOperatingPoint, Erased: h.Erased}
		}
	}
	writeJSON(w, http.StatusOK, resultsPageJSON{SearchID: id, Results: page, Above: sr.Above, Recorded: len(sr.Returned),
		Truncated: sr.Above > len(sr.Returned), NextCursor: next})
	return nil
}

// apiProbeCrop serves the crop of the face a search searched, opened from
// its sealed copy: for the searcher, verifiers and auditors. Never cached,
// never logged.
func (s *Server) apiProbeCrop(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	sr, err := s.visibleSearch(r.Context(), id, p)
	if err != nil {
		return err
	}
	b, err := app.OpenProbeCrop(r.Context(), s.cfg.Data.Keys, sr)
	if err != nil {
		return err
	}
	return writeJPEG(w, b)
}

// apiFaceImage serves the stored image of a face with the face boxed and
// the other faces of the image pixelated, for the verification screen.
func (s *Server) apiFaceImage(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.serveFaceJPEG(w, r, p, s.boxedImage)
}

// writeJPEG answers an image that is personal data: never cached.
func writeJPEG(w http.ResponseWriter, b []byte) error {
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "no-store, private")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, err := w.Write(b)
	return err
}

// round4 rounds a similarity as the answers of searches do.
func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
