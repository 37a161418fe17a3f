package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
	"gabarit/internal/vstore"
)

// The faces in quarantine, whose sealed template cannot be opened
// (store.QuarantineFace), are listed for admins and operators, released
// once restored, or erased: GET /api/v1/quarantine, POST
// /api/v1/quarantine/{id}/release and /erase (apiRoutes), and the
// console's forms on the sources page (pageRoutes).

// quarantinedJSON is a face in quarantine as the API shows it.
type quarantinedJSON struct {
	FaceID   int64     `json:"face_id"`
	ImageID  int64     `json:"image_id"`
	SourceID int64     `json:"source_id"`
	ModelID  string    `json:"model_id"`
	At       time.Time `json:"at"`
	FoundBy  string    `json:"found_by"`
	Reason   string    `json:"reason"`
}

func quarantinedView(q store.QuarantinedFace) quarantinedJSON {
	return quarantinedJSON{FaceID: q.FaceID, ImageID: q.ImageID, SourceID: q.SourceID, ModelID: q.ModelID,
		At: q.At, FoundBy: q.Found, Reason: q.Reason}
}

func (s *Server) apiQuarantine(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q, err := s.cfg.Data.DB.Quarantined(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Faces []quarantinedJSON `json:"faces"`
	}{Faces: make([]quarantinedJSON, len(q))}
	for i, f := range q {
		out.Faces[i] = quarantinedView(f)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// quarantineResult is the answer to a release or an erasure.
type quarantineResult struct {
	FaceID       int64 `json:"face_id"`
	Released     bool  `json:"released,omitempty"`
	Erased       bool  `json:"erased,omitempty"`
	ErasedImages int   `json:"erased_images,omitempty"`
}

// errStillDamaged answers a release of a face whose template still does
// not open.
var errStillDamaged = newError(http.StatusConflict, "still_damaged",
	"the face's template still cannot be opened, so it stays in quarantine: restore the database from a backup made before the damage, or erase the face")

// releaseFace re-checks face id's template and takes it out of quarantine
// when it opens: it is back in the server's index (saved).
func (s *Server) releaseFace(ctx context.Context, id int64, p *principal) (quarantineResult, error) {
	err := vstore.Release(ctx, s.cfg.Data.DB, s.cfg.Data.Keys, s.cfg.Index, id, p.actor())
	if errors.Is(err, vstore.ErrStillDamaged) {
		return quarantineResult{}, errStillDamaged
	}
	if errors.Is(err, store.ErrNotFound) {
		return quarantineResult{}, newError(http.StatusNotFound, "not_found", "face %d is not in quarantine", id)
	}
	if err != nil {
		return quarantineResult{}, err
	}
	if serr := s.saveIndex(context.WithoutCancel(ctx)); serr != nil {
		s.log.Error("save vector index", "err", serr)
	}
	return quarantineResult{FaceID: id, Released: true}, nil
}

// eraseQuarantined erases face id, in quarantine, from the store and the
// server's index.
func (s *Server) eraseQuarantined(ctx context.Context, id int64, p *principal) (quarantineResult, error) {
	images, err := vstore.Erase(ctx, s.cfg.Data.DB, s.cfg.Index, id, p.actor())
	if errors.Is(err, store.ErrNotFound) {
		return quarantineResult{}, newError(http.StatusNotFound, "not_found", "face %d is not in quarantine", id)
	}
	if err != nil {
		return quarantineResult{}, err
	}
	if serr := s.saveIndex(context.WithoutCancel(ctx)); serr != nil {
		s.log.Error("save vector index", "err", serr)
	}
	return quarantineResult{FaceID: id, Erased: true, ErasedImages: len(images)}, nil
}

// pageQuarantine is the console's form for act on a face in quarantine:
// back to the sources page with notice, or with what went wrong.
func (s *Server) pageQuarantine(act func(context.Context, int64, *principal) (quarantineResult, error), notice string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		id, err := pathID(r, "id")
		if err != nil {
			return err
		}
		if _, err := act(r.Context(), id, p); err != nil {
			ae := s.pageError(r, err)
			if ae.Status >= 500 {
				return err
			}
			return s.sourcesPage(w, r, p, ae.Status, app.Declaration{}, fmt.Sprintf("Face %d: %s.", id, ae.Message))
		}
		seeOther(w, r, "/sources", notice, id)
		return nil
	}
}
