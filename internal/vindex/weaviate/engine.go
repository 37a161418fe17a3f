package weaviate

import (
	"context"
	"fmt"
)

// DeleteSome deletes ids at QUORUM: from the replicas that answer, when
// Delete at ALL cannot reach them all (a node is down). The caller keeps
// the ids and deletes them again at ALL once every node runs (package
// vstore's pending deletes); see the package documentation.
func (ix *Index) DeleteSome(ctx context.Context, ids []int64) error {
	return ix.deleteAt(ctx, ids, Quorum)
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
