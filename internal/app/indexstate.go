package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gabarit/internal/config"
	"gabarit/internal/store"
)

// IndexState is what gabarit index status shows: the index outbox and the
// remote indexes following it. The outbox is pruned only up to the place
// of the remote index furthest behind, so a remote index no longer used
// keeps it growing until it is forgotten (ForgetIndex).
type IndexState struct {
	Outbox store.IndexOutboxState
	Remote []store.IndexCursorState
}

// IndexState returns the state of the index outbox and remote indexes.
func (d *Data) IndexState(ctx context.Context) (IndexState, error) {
	var s IndexState
	var err error
	if s.Outbox, err = d.DB.IndexOutbox(ctx); err != nil {
		return s, err
	}
	s.Remote, err = d.DB.IndexCursors(ctx)
	return s, err
}

// ActionIndexForget is the audit action of ForgetIndex.
const ActionIndexForget = "index.forget"

// ErrNoCluster is returned by ForgetIndex when no Weaviate cluster is
// configured to drop the collection from.
var ErrNoCluster = errors.New("no Weaviate cluster given")

// ForgetIndex forgets the remote index name (gabarit index forget): it
// drops its collection from the configured Weaviate cluster (--index), then
// forgets its cursor, pending deletes and sealed rotation secret, audited
// in the same transaction. With gone, the operator states that the
// collection no longer exists anywhere (its cluster was deleted): nothing
// is dropped, and the audit entry says so. A collection left on a cluster
// would hold the vectors of faces erased since, which no catch-up would
// delete: that is why the drop comes first.
func (d *Data) ForgetIndex(ctx context.Context, name, actor string, gone bool) (store.IndexCursorState, error) {
	cur, err := d.DB.IndexCursor(ctx, name)
	if err != nil {
		return store.IndexCursorState{}, err
	}
	if !gone {
		if d.Config.IndexKind() != config.IndexWeaviate {
			return store.IndexCursorState{}, fmt.Errorf("forget index %s: %w: give the cluster that holds its collection "+
				"(--index weaviate://… or GABARIT_INDEX) to drop it, or --collection-gone if it no longer exists", name, ErrNoCluster)
		}
		r, err := d.remoteIndex(cur.ModelID, cur.Dim)
		if err != nil {
			return store.IndexCursorState{}, err
		}
		if r.Name != name {
			return store.IndexCursorState{}, fmt.Errorf("forget index %s: its model %s has the collection %s on this cluster",
				name, cur.ModelID, r.Name)
		}
		if err := r.Drop(ctx); err != nil {
			return store.IndexCursorState{}, fmt.Errorf("forget index %s: drop its collection: %w", name, err)
		}
	}
	return d.DB.ForgetIndexCursor(ctx, name, func(c store.IndexCursorState) store.AuditEntry {
		detail, _ := json.Marshal(map[string]any{"model": c.ModelID, "applied_seq": c.Applied, "behind": c.Behind,
			"pending_deletes": c.PendingDeletes, "collection_dropped": !gone})
		return store.AuditEntry{Actor: actor, Action: ActionIndexForget, Object: name, Detail: detail}
	})
}
