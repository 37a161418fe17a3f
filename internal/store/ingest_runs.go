package store

import (
	"context"
	"fmt"
)

// LastImageID returns the largest image id ever assigned (0 when none):
// image ids are never reused, so every image added later has a larger one.
// An ingest records it when it starts, so that what it committed can be
// counted even if it is killed before it records its end.
func (db *DB) LastImageID(ctx context.Context) (int64, error) {
	var id int64
	q := `SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'images'`
	if db.d == postgresDialect {
		q = `SELECT coalesce((SELECT last_value FROM pg_sequences WHERE schemaname = current_schema() AND sequencename = 'images_id_seq'), 0)`
	}
	err := db.r.QueryRowContext(ctx, q).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("last image id: %w", err)
	}
	return id, nil
}

// ImagesAfter returns how many images of source sourceID with an id above
// after the store holds, and how many faces they have.
func (db *DB) ImagesAfter(ctx context.Context, sourceID, after int64) (images, faces int64, err error) {
	err = db.r.QueryRowContext(ctx, `
SELECT count(DISTINCT i.id), count(f.id) FROM images i LEFT JOIN faces f ON f.image_id = i.id
WHERE i.source_id = ? AND i.id > ?`, sourceID, after).Scan(&images, &faces)
	if err != nil {
		return 0, 0, fmt.Errorf("images of source %d after %d: %w", sourceID, after, err)
	}
	return images, faces, nil
}
