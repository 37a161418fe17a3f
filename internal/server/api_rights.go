package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
	"gabarit/internal/rights"
	"gabarit/internal/store"
)

// rightsRoutes are the DPO's side of rights requests: the register, each
// request's page, and its steps — find the candidates, review them, record
// the identity check, act on exactly the reviewed set — then the sealed
// record of what was done, the Art. 19 notices and the access package.
// Auditors read the register and the requests, without the contact, the
// identity note, the candidates or the record.
func (s *Server) rightsRoutes() []*route {
	const v1 = "/api/v1/rights"
	return []*route{
		{method: "GET", path: v1, roles: roles(dpo, auditor), h: s.apiRights},
		{method: "POST", path: v1, roles: roles(dpo), kind: apiUpload, h: s.apiRegisterRights},
		{method: "GET", path: v1 + "/{id}", roles: roles(dpo, auditor), h: byID(http.StatusOK, s.apiRightsRequest)},
		{method: "POST", path: v1 + "/{id}/candidates", roles: roles(dpo), h: byID(http.StatusOK, s.apiFindCandidates)},
		{method: "GET", path: v1 + "/{id}/candidates", roles: roles(dpo), h: byID(http.StatusOK, s.apiCandidates)},
		{method: "POST", path: v1 + "/{id}/review", roles: roles(dpo), h: s.apiReviewRights},
		{method: "POST", path: v1 + "/{id}/identity", roles: roles(dpo), h: s.apiIdentifyRights},
		{method: "POST", path: v1 + "/{id}/process", roles: roles(dpo), h: s.apiProcessRights},
		{method: "POST", path: v1 + "/{id}/refuse", roles: roles(dpo), h: s.apiRefuseRights},
		{method: "POST", path: v1 + "/{id}/extend", roles: roles(dpo), h: s.apiExtendRights},
		{method: "POST", path: v1 + "/{id}/lift", roles: roles(dpo), h: byID(http.StatusNoContent, s.apiLiftRestriction)},
		{method: "GET", path: v1 + "/{id}/record", roles: roles(dpo), h: byID(http.StatusOK, s.apiRightsRecord)},
		{method: "POST", path: v1 + "/{id}/notices", roles: roles(dpo), h: s.apiRightsNotice},
		{method: "GET", path: v1 + "/{id}/package", roles: roles(dpo), kind: apiFile, h: s.apiRightsPackage},
		{method: "GET", path: v1 + "/{id}/selfies/{n}", roles: roles(dpo), kind: apiFile, h: s.apiRightsSelfie},
		{method: "GET", path: v1 + "/{id}/faces/{face}/crop", roles: roles(dpo), kind: apiFile, h: s.apiRightsFace(false)},
		{method: "GET", path: v1 + "/{id}/faces/{face}/image", roles: roles(dpo), kind: apiFile, h: s.apiRightsFace(true)},
	}
}

func (s *Server) apiRegisterRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, err := s.registerPortal(r, p.actor(), dsr.Kinds())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, app.NewRequestView(req, s.cfg.Now()))
	return nil
}

func (s *Server) apiRights(w http.ResponseWriter, r *http.Request, _ *principal) error {
	reqs, err := s.cfg.Data.DB.RightsRequests(r.Context())
	if err != nil {
		return err
	}
	out, overdue := app.RegisterView(reqs, s.cfg.Now())
	writeJSON(w, http.StatusOK, map[string]any{"requests": out, "overdue": overdue})
	return nil
}

// requestDetail is request id's page for p: the DPO sees the contact, the
// identity note and the candidates.
func (s *Server) requestDetail(ctx context.Context, id int64, p *principal) (app.RequestDetail, error) {
	return app.RequestDetails(ctx, s.cfg.Data.DB, s.cfg.Vault, s.rights.Methods, id, s.cfg.Now(), p.user.Has(store.RoleDPO))
}

func (s *Server) apiRightsRequest(ctx context.Context, id int64, p *principal) (app.RequestDetail, error) {
	return s.requestDetail(ctx, id, p)
}

// foundJSON answers a search for candidates.
type foundJSON struct {
	Request app.RequestView `json:"request"`
	Refused bool            `json:"refused"` // the selfies do not show one person
	Review  *app.ReviewView `json:"review,omitempty"`
	// Unreadable counts the stored faces in quarantine, whose template
	// cannot be opened: they were not compared with the selfies.
	Unreadable int `json:"unreadable_faces,omitempty"`
}

func (s *Server) findCandidates(ctx context.Context, id int64, p *principal) (foundJSON, error) {
	var f rights.Found
	err := s.analyse(ctx, func(ctx context.Context) error {
		var err error
		f, err = s.rights.Find(ctx, id, p.actor())
		return err
	})
	if err != nil {
		return foundJSON{}, err
	}
	out := foundJSON{Request: app.NewRequestView(f.Request, s.cfg.Now()), Refused: f.Refused, Unreadable: f.Unreadable}
	if !f.Refused {
		out.Review = app.NewReviewView(f.Review, true)
	}
	return out, nil
}

func (s *Server) apiFindCandidates(ctx context.Context, id int64, p *principal) (foundJSON, error) {
	return s.findCandidates(ctx, id, p)
}

func (s *Server) apiCandidates(ctx context.Context, id int64, _ *principal) (*app.ReviewView, error) {
	rv, err := s.cfg.Data.DB.RightsReview(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, newError(http.StatusNotFound, "no_candidates", "request %d has no candidate set: find the candidates first (POST …/candidates)", id)
	}
	if err != nil {
		return nil, err
	}
	return app.NewReviewView(rv, true), nil
}

func (s *Server) apiReviewRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Selected *[]int64 `json:"selected"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Selected == nil {
		return badRequest("selected: the ids of every face to act on (an empty list acts on none)")
	}
	rv, err := s.rights.Review(r.Context(), id, *in.Selected, p.actor())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app.NewReviewView(rv, true))
	return nil
}

func (s *Server) apiIdentifyRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Method string `json:"method"`
		Note   string `json:"note"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	req, err := s.rights.Identify(r.Context(), id, in.Method, in.Note, p.actor())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app.NewRequestView(req, s.cfg.Now()))
	return nil
}

type outcomeJSON struct {
	Request      app.RequestView `json:"request"`
	ActedOn      int             `json:"acted_on"`
	Erased       int             `json:"erased_faces"`
	ErasedImages int             `json:"erased_images"`
	Proof        *rights.Proof   `json:"proof,omitempty"`
	Recipients   []int64         `json:"notify_searches,omitempty"`
	Package      bool            `json:"package"`
	PackageSHA   string          `json:"package_sha256,omitempty"`
}

// processRights acts on a request's reviewed set; confirm is the number of
// faces the DPO confirmed (-1: finishing a run that stopped). Erasures save
// the index at once, so that a crash cannot bring erased faces back.
func (s *Server) processRights(ctx context.Context, id int64, confirm int, p *principal) (outcomeJSON, error) {
	var o rights.Outcome
	err := s.analyse(ctx, func(ctx context.Context) error {
		var err error
		o, err = s.rights.Process(ctx, id, confirm, p.actor())
		return err
	})
	if err != nil {
		return outcomeJSON{}, err
	}
	if o.Erased > 0 {
		if err := s.saveIndex(context.WithoutCancel(ctx)); err != nil {
			return outcomeJSON{}, err
		}
	}
	return outcomeJSON{Request: app.NewRequestView(o.Request, s.cfg.Now()), ActedOn: o.ActedOn, Erased: o.Erased,
		ErasedImages: o.ErasedImages, Proof: o.Proof, Recipients: o.Recipients, Package: o.PackageSHA != "", PackageSHA: o.PackageSHA}, nil
}

func (s *Server) apiProcessRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Confirm *int `json:"confirm_faces"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	req, err := s.cfg.Data.DB.RightsRequest(r.Context(), id)
	if err != nil {
		return err
	}
	confirm := -1
	switch {
	case in.Confirm != nil:
		confirm = *in.Confirm
	case !req.Acting():
		return badRequest("confirm_faces: the number of reviewed faces you confirm acting on")
	}
	out, err := s.processRights(r.Context(), id, confirm, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiRefuseRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	req, err := s.rights.Refuse(r.Context(), id, in.Reason, p.actor())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app.NewRequestView(req, s.cfg.Now()))
	return nil
}

func (s *Server) apiExtendRights(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		Months     int    `json:"months"`
		Reason     string `json:"reason"`
		NoticeSent bool   `json:"notice_sent"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if !in.NoticeSent {
		return badRequest("notice_sent: tell the person first, with the reason, then confirm it")
	}
	req, err := app.ExtendRequest(r.Context(), s.cfg.Data.DB, id, in.Months, in.Reason, p.actor())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app.NewRequestView(req, s.cfg.Now()))
	return nil
}

func (s *Server) apiLiftRestriction(ctx context.Context, id int64, p *principal) (noContent, error) {
	return noContent{}, app.LiftRestriction(ctx, s.cfg.Data.DB, s.cfg.Vault, id, p.actor())
}

func (s *Server) apiRightsRecord(ctx context.Context, id int64, p *principal) (rights.Record, error) {
	return s.rights.OpenRecord(ctx, id, p.actor())
}

func (s *Server) apiRightsNotice(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		SearchID int64 `json:"search_id"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.rights.Notified(r.Context(), id, in.SearchID, p.actor()); err != nil {
		return err
	}
	d, err := s.requestDetail(r.Context(), id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// rightsPackage reads request id's access package and checks it against
// the SHA-256 its result recorded.
func (s *Server) rightsPackage(ctx context.Context, id int64) ([]byte, error) {
	req, err := s.cfg.Data.DB.RightsRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	var res struct {
		SHA string `json:"package_sha256"`
	}
	if req.Kind != dsr.Access || req.State != dsr.Completed || json.Unmarshal(req.Result, &res) != nil || res.SHA == "" {
		return nil, newError(http.StatusConflict, "no_package",
			"request %d has no access package: only an access request acted on (after its review and identity check) has one", id)
	}
	b, err := s.rights.Package(ctx, id)
	if errors.Is(err, store.ErrNotFound) && s.oldPackages != "" {
		// Made before access packages were kept in the store: a file.
		b, err = os.ReadFile(rights.PackagePath(s.oldPackages, id))
		if errors.Is(err, os.ErrNotExist) {
			err = store.ErrNotFound
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, newError(http.StatusGone, "package_gone", "the access package of request %d is no longer on the server", id)
	}
	if err != nil && !errors.Is(err, rights.ErrPackageAltered) {
		return nil, err
	}
	if sum := sha256.Sum256(b); err != nil || hex.EncodeToString(sum[:]) != res.SHA {
		s.log.Error("access package altered", "request", id)
		return nil, newError(http.StatusConflict, "package_altered",
			"the access package of request %d kept on the server does not match the SHA-256 recorded when it was made", id)
	}
	return b, nil
}

// apiRightsPackage serves the access package of a completed access request.
func (s *Server) apiRightsPackage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	b, err := s.rightsPackage(r.Context(), id)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Data.DB.AppendAudit(r.Context(), nil, store.AuditEntry{Actor: p.actor(), Action: "rights.package-downloaded",
		Object: fmt.Sprintf("rights/%d", id)}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="access-%d.zip"`, id))
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, err = w.Write(b)
	return err
}

// apiRightsSelfie serves the crop of a selfie's face, while the request
// is open.
func (s *Server) apiRightsSelfie(w http.ResponseWriter, r *http.Request, _ *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		return badRequest("selfie %q: want 1, 2, …", r.PathValue("n"))
	}
	b, err := s.rights.SelfieCrop(r.Context(), id, n)
	if err != nil {
		return err
	}
	return writeJPEG(w, b)
}

// apiRightsFace serves a candidate face of an open request: its crop, or
// (whole) its image with the face boxed and other faces pixelated. Only
// the request's candidates are served.
func (s *Server) apiRightsFace(whole bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ *principal) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		fid, err := pathID(r, "face")
		if err != nil {
			return err
		}
		rv, err := s.cfg.Data.DB.RightsReview(r.Context(), id)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(rv.Candidates, func(c store.RightsCandidate) bool { return c.FaceID == fid }) {
			return errNotFound
		}
		refs, err := s.cfg.Data.DB.FaceRefs(r.Context(), []int64{fid})
		if err != nil {
			return err
		}
		ref, ok := refs[fid]
		if !ok {
			return errNotFound
		}
		var b []byte
		if whole {
			b, err = s.boxedImage(r.Context(), ref)
		} else {
			b, err = s.crop(r.Context(), ref)
		}
		if err != nil {
			return err
		}
		return writeJPEG(w, b)
	}
}
