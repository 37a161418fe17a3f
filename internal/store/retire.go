package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Holdings is what a source holds now.
type Holdings struct {
	State  SourceState
	Images int64
	Faces  int64
	Key    bool // its data key is still stored (not shredded)
}

// rowQuerier is what *sql.DB and *sql.Tx share for one-row queries.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func sourceHoldings(ctx context.Context, q rowQuerier, id int64) (Holdings, error) {
	var h Holdings
	err := q.QueryRowContext(ctx, `
SELECT s.state,
	(SELECT count(*) FROM images WHERE source_id = s.id),
	(SELECT count(*) FROM faces f JOIN images i ON i.id = f.image_id WHERE i.source_id = s.id),
	EXISTS (SELECT 1 FROM source_keys WHERE source_id = s.id)
FROM sources s WHERE s.id = ?`, id).Scan(&h.State, &h.Images, &h.Faces, &h.Key)
	if errors.Is(err, sql.ErrNoRows) {
		return Holdings{}, fmt.Errorf("source %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Holdings{}, fmt.Errorf("source %d holdings: %w", id, err)
	}
	return h, nil
}

// SourceHoldings returns the state of source id, how many images and faces
// it holds and whether its data key is still stored; a missing source
// fails with ErrNotFound.
func (db *DB) SourceHoldings(ctx context.Context, id int64) (Holdings, error) {
	return sourceHoldings(ctx, db.r, id)
}

// SourceHoldings is DB.SourceHoldings inside the transaction.
func (tx *Tx) SourceHoldings(ctx context.Context, id int64) (Holdings, error) {
	return sourceHoldings(ctx, tx.tx, id)
}

// SourceState returns the state of source id inside the transaction, or
// ErrNotFound.
func (tx *Tx) SourceState(ctx context.Context, id int64) (SourceState, error) {
	var s SourceState
	err := tx.tx.QueryRowContext(ctx, `SELECT state FROM sources WHERE id = ?`, id).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("source %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("source %d state: %w", id, err)
	}
	return s, nil
}

// DeleteSourceProgress deletes the ingest progress of source id (the
// locators and content hashes of its entries) and returns how many entries
// it had. Only a retired source's progress may go: for any other, it is what
// keeps erased and purged images from coming back.
func (tx *Tx) DeleteSourceProgress(ctx context.Context, id int64) (int64, error) {
	if err := tx.requireRetired(ctx, id); err != nil {
		return 0, fmt.Errorf("delete progress of source %d: %w", id, err)
	}
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM ingest_progress WHERE source_id = ?`, id)
	if err != nil {
		return 0, fmt.Errorf("delete progress of source %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete progress of source %d: %w", id, err)
	}
	return n, nil
}

// requireRetired fails with ErrInvalid unless source id is StateDeleted.
func (tx *Tx) requireRetired(ctx context.Context, id int64) error {
	s, err := tx.SourceState(ctx, id)
	if err != nil {
		return err
	}
	if s != StateDeleted {
		return fmt.Errorf("source %d is %s, not retired: %w", id, s, ErrInvalid)
	}
	return nil
}

// SourceImageBatch returns the ids of at most limit images of source
// sourceID, lowest first, and the ids of their faces: what a retirement
// deletes next, faces from the vector index first. limit must be positive.
func (db *DB) SourceImageBatch(ctx context.Context, sourceID int64, limit int) (images, faces []int64, err error) {
	if limit <= 0 {
		return nil, nil, fmt.Errorf("images of source %d: limit %d: %w", sourceID, limit, ErrInvalid)
	}
	rows, err := db.r.QueryContext(ctx, `
SELECT i.id, f.id FROM (SELECT id FROM images WHERE source_id = ? ORDER BY id LIMIT ?) i
LEFT JOIN faces f ON f.image_id = i.id ORDER BY i.id, f.id`, sourceID, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("images of source %d: %w", sourceID, err)
	}
	pairs, err := collect(rows, func(sc scanner) (p [2]sql.NullInt64, err error) {
		err = sc.Scan(&p[0], &p[1])
		return p, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("images of source %d: %w", sourceID, err)
	}
	for _, p := range pairs {
		if len(images) == 0 || images[len(images)-1] != p[0].Int64 {
			images = append(images, p[0].Int64)
		}
		if p[1].Valid {
			faces = append(faces, p[1].Int64)
		}
	}
	return images, faces, nil
}

// DeleteRetiredImages deletes images of the retired source sourceID with
// their faces and templates, in one transaction, and returns the ids of the
// faces deleted (for the vector index). Ids of other sources' images, or of
// images already gone, are ignored, so a retirement can be re-run. A source
// that is not retired (StateDeleted) fails with ErrInvalid: only a
// retirement deletes a source's images wholesale. The retirement is audited
// once, as a whole, by the caller.
func (db *DB) DeleteRetiredImages(ctx context.Context, sourceID int64, imageIDs []int64) (faces []int64, err error) {
	if len(imageIDs) == 0 {
		return nil, nil
	}
	in, list := db.d.inInt64s("id", imageIDs)
	err = db.Tx(ctx, func(tx *Tx) error {
		if err := tx.requireRetired(ctx, sourceID); err != nil {
			return err
		}
		these := `SELECT id FROM images WHERE source_id = ? AND ` + in
		rows, err := tx.tx.QueryContext(ctx, `SELECT id FROM faces WHERE image_id IN (`+these+`) ORDER BY id`, sourceID, list)
		if err != nil {
			return err
		}
		if faces, err = collect(rows, func(sc scanner) (id int64, err error) {
			err = sc.Scan(&id)
			return id, err
		}); err != nil {
			return err
		}
		if err := tx.outboxFaces(ctx, OpDel, `f.image_id IN (`+these+`)`, sourceID, list); err != nil {
			return err
		}
		// The faces go with their images (ON DELETE CASCADE).
		_, err = tx.tx.ExecContext(ctx, `DELETE FROM images WHERE id IN (`+these+`)`, sourceID, list)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete images of source %d: %w", sourceID, err)
	}
	return faces, nil
}
