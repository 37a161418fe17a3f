package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A remote vector index (a Weaviate collection) is shared by every
// instance, so its place in the index outbox is kept in the store, not in
// a file: its cursor (table index_cursors), with the secret of the
// rotation its vectors are sent through, sealed by the master key. The
// faces whose deletion reached some of the engine's replicas but not all
// are kept in index_pending_deletes until every replica acknowledged.

// IndexCursor is a remote index's state in the store.
type IndexCursor struct {
	Name    string // the index: its engine and collection
	ModelID string
	Dim     int
	// Applied is the last index outbox seq applied to the index.
	Applied int64
	// Rotation is the rotation secret, sealed (keyring.SealBytes).
	Rotation []byte
}

// IndexCursor returns the cursor of the remote index name, or an error
// wrapping ErrNotFound when there is none.
func (db *DB) IndexCursor(ctx context.Context, name string) (IndexCursor, error) {
	c := IndexCursor{Name: name}
	err := db.r.QueryRowContext(ctx, `SELECT model_id, dim, applied_seq, rotation FROM index_cursors WHERE name = ?`, name).
		Scan(&c.ModelID, &c.Dim, &c.Applied, &c.Rotation)
	if errors.Is(err, sql.ErrNoRows) {
		return IndexCursor{}, fmt.Errorf("index cursor %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return IndexCursor{}, fmt.Errorf("index cursor %s: %w", name, err)
	}
	return c, nil
}

// CreateIndexCursor records c unless a cursor of that name exists, and
// returns the one recorded: when two instances create it at once, both get
// the first one's (and so the same rotation secret).
func (db *DB) CreateIndexCursor(ctx context.Context, c IndexCursor) (IndexCursor, error) {
	if strings.TrimSpace(c.Name) == "" || strings.TrimSpace(c.ModelID) == "" || c.Dim <= 0 || c.Applied < 0 || len(c.Rotation) == 0 {
		return IndexCursor{}, fmt.Errorf("create index cursor: name, model, dimension and rotation required: %w", ErrInvalid)
	}
	err := db.Tx(ctx, func(tx *Tx) error {
		now := ms(tx.now())
		_, err := tx.tx.ExecContext(ctx, `
INSERT INTO index_cursors (name, model_id, dim, applied_seq, rotation, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO NOTHING`, c.Name, c.ModelID, c.Dim, c.Applied, c.Rotation, now, now)
		return err
	})
	if err != nil {
		return IndexCursor{}, fmt.Errorf("create index cursor %s: %w", c.Name, err)
	}
	return db.IndexCursor(ctx, c.Name)
}

// SetIndexApplied moves the cursor of index name to applied. It never
// moves it back, unless back is set (the index was rebuilt from an older
// head): two appliers racing cannot undo each other's progress.
func (db *DB) SetIndexApplied(ctx context.Context, name string, applied int64, back bool) error {
	err := db.Tx(ctx, func(tx *Tx) error {
		q, args := `UPDATE index_cursors SET applied_seq = ?, updated_at = ? WHERE name = ?`, []any{applied, ms(tx.now()), name}
		if !back {
			q, args = q+` AND applied_seq < ?`, append(args, applied)
		}
		if _, err := tx.tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		var n int
		if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM index_cursors WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index cursor %s: set applied %d: %w", name, applied, err)
	}
	return nil
}

// DeleteIndexCursor forgets the remote index name (its collection was
// dropped or is no longer used), with its pending deletes: the outbox is
// no longer kept for it.
func (db *DB) DeleteIndexCursor(ctx context.Context, name string) error {
	err := db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM index_pending_deletes WHERE name = ?`, name); err != nil {
			return err
		}
		_, err := tx.tx.ExecContext(ctx, `DELETE FROM index_cursors WHERE name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete index cursor %s: %w", name, err)
	}
	return nil
}

// AddPendingDeletes records that the faces ids, deleted by the outbox
// operation seq, are not yet deleted from every replica of index name.
func (db *DB) AddPendingDeletes(ctx context.Context, name string, ids []int64, seq int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.Tx(ctx, func(tx *Tx) error {
		for _, id := range ids {
			if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO index_pending_deletes (name, face_id, seq) VALUES (?, ?, ?)
ON CONFLICT (name, face_id) DO UPDATE SET seq = excluded.seq`, name, id, seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index %s: record %d pending deletes: %w", name, len(ids), err)
	}
	return nil
}

// PendingDeletes returns at most limit faces whose deletion from index name
// is not yet acknowledged by every replica, in face id order.
func (db *DB) PendingDeletes(ctx context.Context, name string, limit int) ([]int64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT face_id FROM index_pending_deletes WHERE name = ? ORDER BY face_id LIMIT ?`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("index %s: pending deletes: %w", name, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("index %s: pending deletes: %w", name, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index %s: pending deletes: %w", name, err)
	}
	return ids, nil
}

// ClearPendingDeletes forgets the pending deletes of ids in index name:
// every replica acknowledged them, or the faces were added again.
func (db *DB) ClearPendingDeletes(ctx context.Context, name string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	err := db.Tx(ctx, func(tx *Tx) error {
		in, arg := db.d.inInt64s("face_id", ids)
		_, err := tx.tx.ExecContext(ctx, `DELETE FROM index_pending_deletes WHERE name = ? AND `+in, name, arg)
		return err
	})
	if err != nil {
		return fmt.Errorf("index %s: clear %d pending deletes: %w", name, len(ids), err)
	}
	return nil
}

// IndexCursorState is a remote index's cursor as an operator sees it
// (gabarit index status): no secret.
type IndexCursorState struct {
	Name    string
	ModelID string
	Dim     int
	Applied int64 // the last index outbox seq applied
	// Behind is how many operations of its model the outbox holds past
	// Applied: changes the index has not taken yet.
	Behind int64
	// PendingDeletes is how many faces some replica still holds after
	// their deletion (a node was down).
	PendingDeletes int64
	Created        time.Time
	Moved          time.Time // when Applied last moved
}

// IndexCursors returns every remote index's cursor, by name.
func (db *DB) IndexCursors(ctx context.Context) ([]IndexCursorState, error) {
	rows, err := db.r.QueryContext(ctx, indexCursorsQuery+` ORDER BY c.name`)
	if err != nil {
		return nil, fmt.Errorf("index cursors: %w", err)
	}
	out, err := collect(rows, scanIndexCursor)
	if err != nil {
		return nil, fmt.Errorf("index cursors: %w", err)
	}
	return out, nil
}

const indexCursorsQuery = `
SELECT c.name, c.model_id, c.dim, c.applied_seq,
	(SELECT count(*) FROM index_outbox o WHERE o.model_id = c.model_id AND o.seq > c.applied_seq),
	(SELECT count(*) FROM index_pending_deletes p WHERE p.name = c.name),
	c.created_at, c.updated_at
FROM index_cursors c`

func scanIndexCursor(sc scanner) (c IndexCursorState, err error) {
	var created, moved int64
	err = sc.Scan(&c.Name, &c.ModelID, &c.Dim, &c.Applied, &c.Behind, &c.PendingDeletes, &created, &moved)
	c.Created, c.Moved = fromMS(created), fromMS(moved)
	return c, err
}

// IndexOutboxState says what the index outbox holds.
type IndexOutboxState struct {
	Head       int64     // the highest committed seq (IndexOutboxHead)
	Pruned     int64     // the highest seq pruned
	Operations int64     // operations kept
	Oldest     time.Time // when the oldest kept was written (zero if none)
}

// IndexOutbox returns what the index outbox holds.
func (db *DB) IndexOutbox(ctx context.Context) (IndexOutboxState, error) {
	var s IndexOutboxState
	head, err := db.IndexOutboxHead(ctx)
	if err != nil {
		return s, err
	}
	s.Head = head
	var oldest sql.NullInt64
	err = db.r.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM index_outbox_pruned WHERE id = 1), 0),
	(SELECT count(*) FROM index_outbox), (SELECT min(created_at) FROM index_outbox)`).Scan(&s.Pruned, &s.Operations, &oldest)
	if err != nil {
		return s, fmt.Errorf("index outbox: %w", err)
	}
	if oldest.Valid {
		s.Oldest = fromMS(oldest.Int64)
	}
	return s, nil
}

// ForgetIndexCursor forgets the remote index name, with its pending
// deletes, and appends audit(the cursor as it was) to the audit log in the
// same transaction; it returns the cursor as it was. It is for an index whose collection was
// dropped or no longer exists: the outbox is no longer kept for it, so it
// can never be caught up again (opening it again fills a new collection).
// An unknown name fails with ErrNotFound.
func (db *DB) ForgetIndexCursor(ctx context.Context, name string, audit func(IndexCursorState) AuditEntry) (IndexCursorState, error) {
	var was IndexCursorState
	err := db.Tx(ctx, func(tx *Tx) error {
		rows, err := tx.tx.QueryContext(ctx, indexCursorsQuery+` WHERE c.name = ?`, name)
		if err != nil {
			return err
		}
		found, err := collect(rows, scanIndexCursor)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return ErrNotFound
		}
		was = found[0]
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM index_pending_deletes WHERE name = ?`, name); err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM index_cursors WHERE name = ?`, name); err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, audit(was))
		return err
	})
	if err != nil {
		return IndexCursorState{}, fmt.Errorf("forget index %s: %w", name, err)
	}
	return was, nil
}
