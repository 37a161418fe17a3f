package server

import (
	"context"
	"errors"
	"net/http"

	"gabarit/internal/app"
)

// retireJSON is the body of POST /api/v1/sources/{id}/retire.
type retireJSON struct {
	Confirm bool   `json:"confirm"`
	Reason  string `json:"reason"`
}

// apiRetireSource retires a source for good (see app.RetireSource) and
// answers its view. Without "confirm": true nothing is done.
func (s *Server) apiRetireSource(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in retireJSON
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	v, err := s.apiSource(r.Context(), id, p)
	if err != nil {
		return err
	}
	if !in.Confirm {
		return badRequest(`send "confirm": true to retire source %d: its %d images and %d faces are deleted and its data key destroyed; this cannot be undone`,
			id, v.Images, v.Faces)
	}
	if _, err := s.retireSource(r.Context(), id, in.Reason, p); err != nil {
		return err
	}
	v, err = s.apiSource(r.Context(), id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// retireSource retires source id: its ingest jobs are cancelled and waited
// for once it is marked retired, its faces leave the server's index, and
// the index is saved.
func (s *Server) retireSource(ctx context.Context, id int64, reason string, p *principal) (app.RetireReport, error) {
	rep, err := app.RetireSource(ctx, s.cfg.Data.DB, s.cfg.Data.Keys, id, app.Retirement{
		Actor: p.actor(), Reason: reason, Index: s.cfg.Index.Index,
		Quiesce: func(ctx context.Context) error { return s.jobs.stopSource(ctx, id, p.actor()) },
	})
	if rep.Faces > 0 {
		if serr := s.saveIndex(context.WithoutCancel(ctx)); serr != nil {
			s.log.Error("save vector index", "err", serr)
		}
	}
	if err != nil {
		return rep, err
	}
	s.log.Info("source retired", "source", id, "images", rep.Images, "faces", rep.Faces, "already_retired", rep.AlreadyRetired)
	return rep, nil
}

// retiredConflict answers a change refused because the source is retired
// with 409 and what cannot be done.
func retiredConflict(err error) error {
	var re *app.RetiredError
	if errors.As(err, &re) {
		return newError(http.StatusConflict, "retired", "%s", re.Error())
	}
	return err
}
