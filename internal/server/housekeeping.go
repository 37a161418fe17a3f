package server

import (
	"context"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/retention"
)

// defaultCatchUpEvery is how often the vector index applies the index
// outbox by default: the longest another instance's ingest or erasure takes
// to reach this instance's index (searches check every hit against the
// store meanwhile, so an erased face is never shown).
const defaultCatchUpEvery = 5 * time.Second

// followIndex starts applying the store's index outbox to the vector index
// every CatchUpEvery, so that changes of faces made by other instances
// (and by this one, durably) reach it. Errors are logged; the next round
// retries from the same operation.
func (s *Server) followIndex(ctx context.Context) {
	if s.cfg.CatchUpEvery < 0 {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(s.cfg.CatchUpEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			a, err := s.cfg.Index.CatchUp(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("vector index catch-up", "err", err)
			case a.Rebuilt:
				s.log.Warn("vector index rebuilt from the store: it had not applied changes since pruned from the index outbox",
					"faces", a.Added)
			}
		}
	}()
}

// housekeeping is the scheduled work: the retention purge (images past
// their source's retention period are deleted with their faces, templates
// and index entries, audited as "server"), the removal of closed rights
// requests' selfies that a killed run left in the vault, the pruning of
// the index outbox, and the removal of expired sessions. Errors are logged; the next round tries again.
func (s *Server) housekeeping(ctx context.Context) {
	now := s.cfg.Now()
	s.purge(ctx, now)
	// Index operations every instance has long applied.
	if n, err := s.cfg.Data.DB.PruneIndexOutbox(ctx, now.Add(-app.OutboxKeep)); err != nil {
		s.log.Error("prune index outbox", "err", err)
	} else if n > 0 {
		s.log.Info("index outbox pruned", "operations", n)
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

// purgeLease is the leader lease of the retention purge: one instance
// over the store purges at a time; the others skip the round. It is a row
// of the store (store.TryLease), which works alike on SQLite and
// PostgreSQL, renewed while the purge runs and released after it.
const (
	purgeLease      = "retention-purge"
	purgeLeaseTTL   = 2 * time.Minute
	purgeLeaseRenew = 30 * time.Second
)

// purge runs the retention purge if this instance gets the purge's leader
// lease, and skips the round otherwise. If the lease is lost while it runs
// (the store was unreachable for longer than the lease), the purge stops
// at its next image: another instance may have begun one.
func (s *Server) purge(ctx context.Context, now time.Time) {
	db := s.cfg.Data.DB
	ok, err := db.TryLease(ctx, purgeLease, s.instance, now, purgeLeaseTTL)
	if err != nil {
		s.log.Error("retention purge: take the leader lease", "err", err)
		return
	}
	if !ok {
		s.log.Debug("retention purge skipped: another instance is running it")
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(purgeLeaseRenew)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			if ok, err := db.TryLease(pctx, purgeLease, s.instance, s.cfg.Now(), purgeLeaseTTL); err == nil && !ok {
				s.log.Warn("retention purge: leader lease lost; stopping")
				cancel()
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-renewed
		if err := db.ReleaseLease(context.WithoutCancel(ctx), purgeLease, s.instance); err != nil {
			s.log.Error("retention purge: release the leader lease", "err", err)
		}
	}()
	rep, err := retention.Purge(pctx, db, s.cfg.Index.Index, now, "server:retention")
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
}
