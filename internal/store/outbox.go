package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The index outbox (table index_outbox) is how every vector index learns
// what changed in the store, whichever process or instance changed it.
// Every change of faces writes its index operations in the same
// transaction as the change: one "add" per face an ingest commits or a
// release takes out of quarantine, one "del" per face erased, purged,
// retired, quarantined or crypto-shredded (its source's key deleted). An
// index records the last seq it applied and applies the later operations
// of its model in seq order (package vstore).
//
// The applier relies on seq values committing in seq order: it reads the
// highest seq committed (IndexOpsAfter's head) and takes every operation up
// to it as final. On SQLite the one writer gives that order; on PostgreSQL
// every write transaction takes one advisory lock before it writes (see
// DB.tx), so a transaction draws its seq values and commits before the next
// one draws any. A write path that skipped the lock could commit a lower
// seq after a higher one had been read, and an index would skip it forever.
//
// Old operations are deleted by PruneIndexOutbox; the highest seq deleted
// is kept (index_outbox_pruned), and an index that applied less than it
// must be rebuilt from the store.

// Index outbox operations.
const (
	OpAdd = "add" // the face's template enters the index (load it from the store)
	OpDel = "del" // the face leaves the index
)

// IndexOp is one operation of the index outbox.
type IndexOp struct {
	Seq    int64
	Op     string // OpAdd or OpDel
	FaceID int64
}

// outboxFaces writes one operation op (OpAdd or OpDel, a constant: it is
// written into the query) for each face f of the faces table matching the
// condition where, which refers to the table as f and takes args.
// Deletions must write theirs before the rows go.
func (tx *Tx) outboxFaces(ctx context.Context, op, where string, args ...any) error {
	if op != OpAdd && op != OpDel {
		return fmt.Errorf("index outbox: operation %q: %w", op, ErrInvalid)
	}
	q := `INSERT INTO index_outbox (model_id, op, face_id, created_at)
SELECT f.model_id, '` + op + `', f.id, CAST(? AS BIGINT) FROM faces f WHERE ` + where + ` ORDER BY f.id`
	if _, err := tx.tx.ExecContext(ctx, q, append([]any{ms(tx.now())}, args...)...); err != nil {
		return fmt.Errorf("index outbox: %w", err)
	}
	return nil
}

// IndexOutboxHead returns the highest seq of the index outbox that is
// committed, with every lower one (see the ordering note above): an index
// rebuilt from a scan that starts after this call includes every operation
// up to it.
func (db *DB) IndexOutboxHead(ctx context.Context) (int64, error) {
	var head, pruned int64
	err := db.r.QueryRowContext(ctx, `SELECT coalesce((SELECT max(seq) FROM index_outbox), 0),
	coalesce((SELECT seq FROM index_outbox_pruned WHERE id = 1), 0)`).Scan(&head, &pruned)
	if err != nil {
		return 0, fmt.Errorf("index outbox head: %w", err)
	}
	return max(head, pruned), nil
}

// IndexOpsAfter returns, in seq order, at most limit operations of model
// modelID whose seq is above after and at most head, the outbox's head
// when the call began (as IndexOutboxHead); and pruned, the highest seq
// deleted by PruneIndexOutbox, read after the operations. When pruned is
// above after, operations the caller has not applied may be gone: it must
// rebuild its index from the store. When fewer than limit operations come
// back, the caller has seen every operation of its model up to head.
// limit must be positive.
func (db *DB) IndexOpsAfter(ctx context.Context, modelID string, after int64, limit int) (ops []IndexOp, head, pruned int64, err error) {
	if limit <= 0 {
		return nil, 0, 0, fmt.Errorf("index outbox: limit %d: %w", limit, ErrInvalid)
	}
	if head, err = db.IndexOutboxHead(ctx); err != nil {
		return nil, 0, 0, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT seq, op, face_id FROM index_outbox
WHERE model_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, modelID, after, head, limit)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("index outbox: %w", err)
	}
	ops, err = collect(rows, func(sc scanner) (o IndexOp, err error) {
		err = sc.Scan(&o.Seq, &o.Op, &o.FaceID)
		return o, err
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("index outbox: %w", err)
	}
	// Read after the operations: a prune that deleted some of them before
	// they were read has committed by now (on PostgreSQL each statement
	// sees what committed before it began).
	if err := db.r.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM index_outbox_pruned WHERE id = 1), 0)`).
		Scan(&pruned); err != nil {
		return nil, 0, 0, fmt.Errorf("index outbox: %w", err)
	}
	return ops, max(head, pruned), pruned, nil
}

// PruneIndexOutbox deletes the operations of the index outbox written
// before the given time, and every earlier one (by seq, so that what is left
// is a suffix even when instances' clocks differ), and records the highest
// seq deleted. An index that had not applied them is rebuilt when it next
// catches up. It returns how many operations were deleted.
func (db *DB) PruneIndexOutbox(ctx context.Context, before time.Time) (n int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		var upTo sql.NullInt64
		if err := tx.tx.QueryRowContext(ctx, `SELECT max(seq) FROM index_outbox WHERE created_at < ?`, ms(before)).
			Scan(&upTo); err != nil {
			return err
		}
		if !upTo.Valid {
			return nil
		}
		// A remote index keeps its place in the store: the operations it
		// has not applied yet (its engine was down) stay, so that it
		// catches up instead of being rebuilt.
		var behind sql.NullInt64
		if err := tx.tx.QueryRowContext(ctx, `SELECT min(applied_seq) FROM index_cursors`).Scan(&behind); err != nil {
			return err
		}
		if behind.Valid && behind.Int64 < upTo.Int64 {
			upTo.Int64 = behind.Int64
		}
		if upTo.Int64 <= 0 {
			return nil
		}
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM index_outbox WHERE seq <= ?`, upTo.Int64)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.tx.ExecContext(ctx, `UPDATE index_outbox_pruned SET seq = ? WHERE id = 1 AND seq < ?`, upTo.Int64, upTo.Int64)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune index outbox: %w", err)
	}
	return n, nil
}

// FaceTemplates streams the templates of the faces among ids that are
// stored to fn, in face id order, like AllTemplates; ids that are not stored
// (deleted, never added) are skipped. template is valid only until fn
// returns.
func (db *DB) FaceTemplates(ctx context.Context, ids []int64, fn func(faceID, sourceID int64, modelID string, template []byte) error) error {
	if len(ids) == 0 {
		return nil
	}
	in, arg := db.d.inInt64s("f.id", ids)
	return db.streamTemplates(ctx, "face templates", in, arg, fn)
}

// StoreID returns the store's identity: random, drawn when the schema was
// created (or migrated to the outbox), the same for every instance over
// the store. An index file records it; a file of another store is not
// caught up from this one's outbox but rebuilt.
func (db *DB) StoreID(ctx context.Context) (string, error) {
	var id string
	if err := db.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'store-id'`).Scan(&id); err != nil {
		return "", fmt.Errorf("store id: %w", err)
	}
	return id, nil
}
