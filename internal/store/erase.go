package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// EraseFaces erases faces at a person's request (GDPR Art. 17): the face
// rows with their encrypted templates, and every image that holds none of
// its faces any more, in one transaction with one audit entry (action,
// object and counts, never the ids: the audit log outlives the erasure and
// must not keep a map of the person's data). Images that still hold other
// people's faces stay. It returns the ids deleted, for the vector index.
// The images' ingest progress is kept, so no later ingest of the source
// brings them back. Unknown ids are ignored.
func (db *DB) EraseFaces(ctx context.Context, faceIDs []int64, actor, object string) (faces, images []int64, err error) {
	if len(faceIDs) == 0 {
		return nil, nil, nil
	}
	in, list := db.d.inInt64s("id", faceIDs)
	err = db.Tx(ctx, func(tx *Tx) error {
		rows, err := tx.tx.QueryContext(ctx, `SELECT id, image_id FROM faces WHERE `+in+` ORDER BY id`, list)
		if err != nil {
			return err
		}
		pairs, err := collect(rows, func(sc scanner) (p [2]int64, err error) {
			err = sc.Scan(&p[0], &p[1])
			return p, err
		})
		if err != nil {
			return err
		}
		seen := map[int64]bool{}
		var imgs []int64
		faces = faces[:0]
		for _, p := range pairs {
			faces = append(faces, p[0])
			if !seen[p[1]] {
				seen[p[1]] = true
				imgs = append(imgs, p[1])
			}
		}
		if _, err := tx.DeleteFaces(ctx, faces); err != nil {
			return err
		}
		images = images[:0]
		for _, img := range imgs {
			var left int
			if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM faces WHERE image_id = ?`, img).Scan(&left); err != nil {
				return err
			}
			if left > 0 {
				continue
			}
			if err := tx.DeleteImage(ctx, img); err != nil {
				return err
			}
			images = append(images, img)
		}
		detail, err := json.Marshal(map[string]int{"faces": len(faces), "images": len(images)})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "faces.erase", Object: object, Detail: detail})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("erase faces: %w", err)
	}
	return faces, images, nil
}
