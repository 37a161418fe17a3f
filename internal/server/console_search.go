package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"gabarit/internal/app"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

// --- search ---

// searchBody is the search page: the form (kept on error) and, after a
// search, its results.
type searchBody struct {
	Purpose, Case, Face string
	K                   int
	MaxK                int
	Result              *app.SearchView
}

func (s *Server) searchPage(w http.ResponseWriter, r *http.Request, p *principal, status int, b searchBody, msg string) error {
	if b.K == 0 {
		b.K = 10
	}
	b.MaxK = search.MaxK
	d := s.newPage(r, p, "Search by photo", b)
	d.Error = msg
	d.Scripts = []string{"app.js", "search.js"}
	return s.render(w, status, "search", d)
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
		b.K, _ = strconv.Atoi(r.FormValue("k")) // a bad k is reported by readSearchForm
	}
	res, err := func() (app.SearchView, error) {
		f, err := s.readSearchForm(r)
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

// --- verification ---

// searchesBody lists recent searches, newest first, for verifiers and
// auditors.
type searchesBody struct {
	Searches []searchRow
	Older    int64 // ?before= of the next page; 0: none
	Newer    bool
}

type searchRow struct {
	store.Search
	Confirmed  int // faces with at least one confirmation
	Identified int // faces confirmed by two verifiers
}

// searchesPerPage is how many searches the list shows at once.
const searchesPerPage = 30

// pageSearches lists the latest searches, newest first, with how many of
// their results are confirmed and identified; ?before=ID pages back.
func (s *Server) pageSearches(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	before, err := beforeParam(r)
	if err != nil {
		return err
	}
	b := searchesBody{Newer: r.URL.Query().Get("before") != ""}
	srs, err := s.cfg.Data.DB.Searches(ctx, before, searchesPerPage+1)
	if err != nil {
		return err
	}
	if len(srs) > searchesPerPage {
		srs = srs[:searchesPerPage]
		b.Older = srs[len(srs)-1].ID
	}
	for _, sr := range srs {
		row := searchRow{Search: sr}
		cs, err := s.cfg.Data.DB.Confirmations(ctx, sr.ID)
		if err != nil {
			return err
		}
		for _, c := range cs {
			row.Confirmed++
			if c.Identified {
				row.Identified++
			}
		}
		b.Searches = append(b.Searches, row)
	}
	d := s.newPage(r, p, "Verification", b)
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

// auditHead returns the id of the last audit entry (0 for an empty log),
// found by galloping then bisecting over single-entry reads: the store

// recordBody is one search as verifiers check it.
type recordBody struct {
	searchRecordJSON
	Faces      []recordFace
	Mine       bool // the viewer ran this search
	CanConfirm bool // the viewer is a verifier who did not run it
	ShowCrops  bool // the viewer may see the faces (investigator, verifier)
}

// recordFace is one returned face with its confirmations.
type recordFace struct {
	ID         int64
	Rank       int
	Held       bool // still stored (not erased nor purged since)
	Ref        store.FaceRef
	Video      bool
	TimeCodeMS *int64
	Verifiers  []string
	Identified bool
	ByMe       bool // the viewer confirmed it already
}

// Needed is how many more confirmations face f needs.
func (f recordFace) Needed() int { return max(0, store.ConfirmationsRequired-len(f.Verifiers)) }

func (s *Server) recordPage(w http.ResponseWriter, r *http.Request, p *principal, status int, id int64, msg string) error {
	ctx := r.Context()
	rec, err := s.searchRecord(ctx, id, p)
	if err != nil {
		return err
	}
	b := recordBody{searchRecordJSON: rec, Mine: rec.Actor == p.actor(),
		ShowCrops: p.user.Has(store.RoleInvestigator) || p.user.Has(store.RoleVerifier)}
	b.CanConfirm = p.user.Has(store.RoleVerifier) && !b.Mine
	refs, err := s.cfg.Data.DB.FaceRefs(ctx, rec.Returned)
	if err != nil {
		return err
	}
	for i, fid := range rec.Returned {
		f := recordFace{ID: fid, Rank: i + 1}
		if ref, ok := refs[fid]; ok {
			f.Held, f.Ref = true, ref
			if ref.TimeCode != nil {
				ms := ref.TimeCode.Milliseconds()
				f.Video, f.TimeCodeMS = true, &ms
			}
		}
		for _, c := range rec.Confirmations {
			if c.FaceID == fid {
				f.Verifiers, f.Identified = c.Verifiers, c.Identified
				f.ByMe = slices.Contains(c.Verifiers, p.actor())
			}
		}
		b.Faces = append(b.Faces, f)
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

// pageConfirm records a verifier's confirmation of a returned face. The
// store enforces the rules (not one's own search, once per verifier);
// a refusal is explained on the search's page.
func (s *Server) pageConfirm(w http.ResponseWriter, r *http.Request, p *principal) error {
	sid, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	fid, err := strconv.ParseInt(r.PostForm.Get("face_id"), 10, 64)
	if err != nil || fid <= 0 {
		return badRequest("face_id: say which face you confirm")
	}
	c, err := s.cfg.Data.DB.Confirm(r.Context(), sid, fid, p.actor())
	if err != nil {
		var status int
		var msg string
		switch {
		case errors.Is(err, store.ErrExists):
			status, msg = http.StatusConflict, fmt.Sprintf("You have already confirmed face %d: a second, different verifier must confirm it.", fid)
		case errors.Is(err, store.ErrForbidden):
			status, msg = http.StatusForbidden, "You cannot confirm this result: you ran this search (or your account may not confirm). Another verifier must do it."
		case errors.Is(err, store.ErrInvalid):
			status, msg = http.StatusBadRequest, fmt.Sprintf("Face %d was not returned by this search.", fid)
		case errors.Is(err, store.ErrNotFound):
			if _, serr := s.cfg.Data.DB.Search(r.Context(), sid); serr != nil {
				return serr
			}
			status, msg = http.StatusNotFound, fmt.Sprintf("Face %d is no longer held (erased or purged since the search): it cannot be confirmed.", fid)
		default:
			return err
		}
		return s.recordPage(w, r, p, status, sid, msg)
	}
	notice := "confirmed"
	if c.Identified {
		notice = "identified"
	}
	seeOther(w, r, fmt.Sprintf("/searches/%d", sid), notice, fid)
	return nil
}
