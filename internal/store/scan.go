package store

import (
	"context"
	"database/sql"
	"fmt"
)

// FaceIDRange returns the number of faces of model modelID and the least
// and the greatest of their ids (0, 0 when there are none): the id space a
// parallel scan cuts into parts (see TemplatesInRange).
func (db *DB) FaceIDRange(ctx context.Context, modelID string) (n, lo, hi int64, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0)
FROM faces WHERE model_id = ?`, modelID).Scan(&n, &lo, &hi)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("face id range of model %s: %w", modelID, err)
	}
	return n, lo, hi, nil
}

// templatePage is how many faces TemplatesInRange reads with one query:
// about 1.1 MB of 512-d sealed templates.
const templatePage = 512

// TemplatesInRange streams to fn the template of every face of model
// modelID whose id is in lo..hi (both included), in id order, with the
// face's source, like AllTemplates. template is valid only until fn
// returns (copy it to keep it). An error from fn stops the stream and is
// returned; so does ctx's.
//
// The range is read in pages of templatePage faces, one query on the
// reader pool each, and fn is called between queries, with no connection
// held: fn may itself read the store (a keyring fetching a data key does)
// however many ranges are streamed at once, without waiting for a
// connection that a stream holds. Each page is read as it stands when its
// query runs: a face deleted during the stream may or may not be seen.
func (db *DB) TemplatesInRange(ctx context.Context, modelID string, lo, hi int64, fn func(faceID, sourceID int64, modelID string, template []byte) error) error {
	type row struct {
		faceID, sourceID int64
		start, end       int // the template in buf
	}
	var (
		rows = make([]row, 0, templatePage)
		buf  []byte
	)
	for lo <= hi {
		rows, buf = rows[:0], buf[:0]
		err := db.templatePage(ctx, modelID, lo, hi, func(faceID, sourceID int64, template []byte) {
			start := len(buf)
			buf = append(buf, template...)
			rows = append(rows, row{faceID: faceID, sourceID: sourceID, start: start, end: len(buf)})
		})
		if err != nil {
			return fmt.Errorf("templates of faces %d..%d: %w", lo, hi, err)
		}
		for _, r := range rows {
			if err := fn(r.faceID, r.sourceID, modelID, buf[r.start:r.end:r.end]); err != nil {
				return err
			}
		}
		if len(rows) < templatePage {
			return nil
		}
		last := rows[len(rows)-1].faceID
		if last >= hi {
			return nil
		}
		lo = last + 1
	}
	return nil
}

// templatePage reads up to templatePage faces of modelID with ids in
// lo..hi, in id order, and hands each to add, whose template is valid only
// until add returns.
func (db *DB) templatePage(ctx context.Context, modelID string, lo, hi int64, add func(faceID, sourceID int64, template []byte)) error {
	rows, err := db.r.QueryContext(ctx, `
SELECT f.id, i.source_id, f.template FROM faces f JOIN images i ON i.id = f.image_id
WHERE f.model_id = ? AND f.id >= ? AND f.id <= ? ORDER BY f.id LIMIT ?`, modelID, lo, hi, templatePage)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		faceID, sourceID int64
		template         sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&faceID, &sourceID, &template); err != nil {
			return err
		}
		add(faceID, sourceID, template)
	}
	return rows.Err()
}
