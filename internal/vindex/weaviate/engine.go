package weaviate

import (
	"context"
	"fmt"
)

// DeleteSome deletes ids from the replicas that answer, when Delete at ALL
// cannot reach them all (a node is down). It deletes at ONE: Weaviate sends
// a delete to every live replica whatever the level, and with a node down
// it refuses QUORUM outright when shards have different numbers of live
// replicas ("inconsistent consistency levels", measured by
// cmd/gabarit TestWeaviateFault: 3 shards × 2 replicas, one node killed).
// The caller keeps the ids and deletes them again at ALL once every node
// runs (package vstore's pending deletes); see the package documentation.
func (ix *Index) DeleteSome(ctx context.Context, ids []int64) error {
	return ix.deleteAt(ctx, ids, One)
}

// Reset empties the collection: it is dropped and created again with the
// same configuration (gabarit reindex, or an index found behind the
// store). Every node must run.
func (ix *Index) Reset(ctx context.Context) error {
	if err := ix.Drop(ctx); err != nil {
		return fmt.Errorf("weaviate collection %s: reset: %w", ix.class, err)
	}
	done, err := ix.enter()
	if err != nil {
		return err
	}
	defer done()
	n, err := ix.checkCluster(ctx)
	if err != nil {
		return fmt.Errorf("weaviate collection %s: reset: %w", ix.class, err)
	}
	if err := ix.openClass(ctx, n); err != nil {
		return fmt.Errorf("weaviate collection %s: reset: %w", ix.class, err)
	}
	return nil
}

// DropCollection deletes the collection cfg names whatever made it
// (another store, another rotation key, another model), without opening
// it as Open does: `gabarit reindex --new-rotation`, the operator's
// explicit choice. Every node must run.
func DropCollection(ctx context.Context, cfg Config) error {
	if err := cfg.fill(); err != nil {
		return err
	}
	ix, err := connect(cfg)
	if err != nil {
		return err
	}
	defer ix.Close()
	if _, err := ix.checkCluster(ctx); err != nil {
		return err
	}
	return ix.Drop(ctx)
}
