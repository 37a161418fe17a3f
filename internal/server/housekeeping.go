package server

import (
	"context"

	"gabarit/internal/retention"
)

// housekeeping is the scheduled work: the retention purge (images past
// their source's retention period are deleted with their faces, templates
// and index entries, audited as "server"), the removal of closed rights
// requests' selfies that a killed run left in the vault, and the removal
// of expired sessions. Errors are logged; the next round tries again.
func (s *Server) housekeeping(ctx context.Context) {
	now := s.cfg.Now()
	rep, err := retention.Purge(ctx, s.cfg.Data.DB, s.cfg.Index.Index, now, "server:retention")
	if err != nil {
		s.log.Error("retention purge", "err", err, "images_purged", rep.Images)
	}
	if rep.ProbeCrops > 0 {
		s.log.Info("retention purge", "probe_crops", rep.ProbeCrops)
	}
	if rep.Images > 0 {
		s.log.Info("retention purge", "images", rep.Images, "faces", rep.Faces)
		if err := s.saveIndex(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("save vector index", "err", err)
		}
	}
	// Selfies of requests closed by a run that was killed before it
	// removed them.
	if n, err := s.rights.SweepClosed(ctx); err != nil {
		s.log.Error("sweep closed rights requests' selfies", "err", err)
	} else if n > 0 {
		s.log.Info("selfies of closed rights requests removed", "requests", n)
	}
	if n, err := s.cfg.Data.DB.DeleteExpiredSessions(ctx, now); err != nil {
		s.log.Error("delete expired sessions", "err", err)
	} else if n > 0 {
		s.log.Info("expired sessions deleted", "sessions", n)
	}
}
