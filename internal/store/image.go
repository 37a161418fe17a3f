package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Image is one image of a source, identified within it by the SHA-256 of
// its bytes.
type Image struct {
	ID                int64
	SourceID          int64
	SHA256            [32]byte
	Locator           string // where the image lives inside its source (a path or entry name)
	SizeBytes         int64
	Width, Height     int       // pixels, after EXIF orientation
	TakenAt           time.Time // when the picture was taken; zero when unknown
	IngestedAt        time.Time // zero means now, by the store clock
	RetentionDeadline time.Time // set by AddImage: IngestedAt + the source's retention
}

func (img Image) validate() error {
	switch {
	case img.SourceID <= 0:
		return fmt.Errorf("source id required: %w", ErrInvalid)
	case img.SHA256 == [32]byte{}:
		return fmt.Errorf("sha256 required: %w", ErrInvalid)
	case strings.TrimSpace(img.Locator) == "":
		return fmt.Errorf("locator required: %w", ErrInvalid)
	case img.SizeBytes < 0:
		return fmt.Errorf("negative size: %w", ErrInvalid)
	case img.Width <= 0 || img.Height <= 0:
		return fmt.Errorf("size %dx%d must be positive: %w", img.Width, img.Height, ErrInvalid)
	}
	return nil
}

// AddImage stores an image and its faces in one transaction; see Tx.AddImage.
func (db *DB) AddImage(ctx context.Context, img Image, faces []Face) (imageID int64, faceIDs []int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		imageID, faceIDs, err = tx.AddImage(ctx, img, faces)
		return err
	})
	return imageID, faceIDs, err
}

// AddImage stores img and its faces (whose ImageID is ignored) and returns
// their ids, faces in the order given. The retention deadline is IngestedAt
// plus the source's retention. AddImage is idempotent on (SourceID, SHA256):
// when the source already holds that content it writes nothing and returns
// the existing image id, its face ids in id order, and an error wrapping
// ErrExists. A source that is missing fails with ErrNotFound, one that is not
// active, or an invalid image or face, with ErrInvalid.
func (tx *Tx) AddImage(ctx context.Context, img Image, faces []Face) (int64, []int64, error) {
	return tx.addImage(ctx, img, faces, nil)
}

// Sealer encrypts the template of the face that was just given id, for
// AddImageSealed. The ciphertext may depend on the id (the keyring binds it).
type Sealer func(faceID int64, f Face) ([]byte, error)

// AddImageSealed is AddImage for templates that must be encrypted with the
// id each face receives: the faces' Template fields are ignored, and seal
// gives each face its stored template once its id is known, all in the same
// transaction (no reader ever sees a face without its template). seal runs
// inside the write transaction, so it must not write to this DB (with the
// keyring: call EnsureKey for the source first).
func (db *DB) AddImageSealed(ctx context.Context, img Image, faces []Face, seal Sealer) (imageID int64, faceIDs []int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		imageID, faceIDs, err = tx.AddImageSealed(ctx, img, faces, seal)
		return err
	})
	return imageID, faceIDs, err
}

// AddImageSealed is the transactional form of DB.AddImageSealed.
func (tx *Tx) AddImageSealed(ctx context.Context, img Image, faces []Face, seal Sealer) (int64, []int64, error) {
	if seal == nil {
		return 0, nil, fmt.Errorf("add image: nil sealer: %w", ErrInvalid)
	}
	return tx.addImage(ctx, img, faces, seal)
}

// sealPlaceholder satisfies the schema's non-empty template check between a
// sealed face's insert and its update, inside one transaction.
var sealPlaceholder = []byte{0}

func (tx *Tx) addImage(ctx context.Context, img Image, faces []Face, seal Sealer) (int64, []int64, error) {
	wrap := func(err error) error { return fmt.Errorf("add image %x: %w", img.SHA256[:8], err) }
	if err := img.validate(); err != nil {
		return 0, nil, wrap(err)
	}
	if seal != nil {
		sealed := make([]Face, len(faces))
		for i, f := range faces {
			f.Template = sealPlaceholder
			sealed[i] = f
		}
		faces = sealed
	}
	for i := range faces {
		if err := faces[i].validate(); err != nil {
			return 0, nil, wrap(fmt.Errorf("face %d: %w", i, err))
		}
	}

	var retentionMS int64
	var state SourceState
	err := tx.tx.QueryRowContext(ctx, `SELECT retention_ms, state FROM sources WHERE id = ?`, img.SourceID).
		Scan(&retentionMS, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, wrap(fmt.Errorf("source %d: %w", img.SourceID, ErrNotFound))
	}
	if err != nil {
		return 0, nil, wrap(err)
	}
	if state != StateActive {
		return 0, nil, wrap(fmt.Errorf("source %d is %s: %w", img.SourceID, state, ErrInvalid))
	}

	var existing int64
	err = tx.tx.QueryRowContext(ctx, `SELECT id FROM images WHERE source_id = ? AND sha256 = ?`,
		img.SourceID, img.SHA256[:]).Scan(&existing)
	switch {
	case err == nil:
		ids, err := faceIDs(ctx, tx.tx, existing)
		if err != nil {
			return 0, nil, wrap(err)
		}
		return existing, ids, wrap(fmt.Errorf("image %d: %w", existing, ErrExists))
	case !errors.Is(err, sql.ErrNoRows):
		return 0, nil, wrap(err)
	}

	ingested := img.IngestedAt
	if ingested.IsZero() {
		ingested = tx.now()
	}
	var imageID int64
	err = tx.tx.QueryRowContext(ctx, `
INSERT INTO images (source_id, sha256, locator, size_bytes, width, height, taken_at, ingested_at, retention_deadline)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		img.SourceID, img.SHA256[:], img.Locator, img.SizeBytes, img.Width, img.Height,
		nullMS(img.TakenAt), ms(ingested), ms(ingested)+retentionMS).Scan(&imageID)
	if err != nil {
		return 0, nil, wrap(err)
	}
	if len(faces) == 0 {
		return imageID, nil, nil
	}

	stmt, err := tx.tx.PrepareContext(ctx, insertFace+` RETURNING id`)
	if err != nil {
		return 0, nil, wrap(err)
	}
	defer stmt.Close()
	ids := make([]int64, len(faces))
	for i := range faces {
		if err := stmt.QueryRowContext(ctx, faces[i].args(imageID)...).Scan(&ids[i]); err != nil {
			return 0, nil, wrap(fmt.Errorf("face %d: %w", i, err))
		}
		if seal == nil {
			continue
		}
		f := faces[i]
		f.ID, f.ImageID, f.Template = ids[i], imageID, nil
		blob, err := seal(ids[i], f)
		if err == nil && len(blob) == 0 {
			err = fmt.Errorf("sealer returned an empty template: %w", ErrInvalid)
		}
		if err != nil {
			return 0, nil, wrap(fmt.Errorf("face %d: seal: %w", i, err))
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE faces SET template = ? WHERE id = ?`, blob, ids[i]); err != nil {
			return 0, nil, wrap(fmt.Errorf("face %d: %w", i, err))
		}
	}
	// Every index learns of the faces through the outbox (see outbox.go).
	if err := tx.outboxFaces(ctx, OpAdd, "f.image_id = ?", imageID); err != nil {
		return 0, nil, wrap(err)
	}
	return imageID, ids, nil
}

const imageColumns = `id, source_id, sha256, locator, size_bytes, width, height, taken_at, ingested_at, retention_deadline`

func scanImage(sc scanner) (Image, error) {
	var img Image
	var sha []byte
	var takenAt sql.NullInt64
	var ingestedAt, deadline int64
	if err := sc.Scan(&img.ID, &img.SourceID, &sha, &img.Locator, &img.SizeBytes, &img.Width, &img.Height,
		&takenAt, &ingestedAt, &deadline); err != nil {
		return Image{}, err
	}
	if len(sha) != len(img.SHA256) {
		return Image{}, fmt.Errorf("image %d: stored sha256 has %d bytes", img.ID, len(sha))
	}
	copy(img.SHA256[:], sha)
	img.TakenAt = fromNullMS(takenAt)
	img.IngestedAt = fromMS(ingestedAt)
	img.RetentionDeadline = fromMS(deadline)
	return img, nil
}

// Image returns the image with the given id, or ErrNotFound.
func (db *DB) Image(ctx context.Context, id int64) (Image, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+imageColumns+` FROM images WHERE id = ?`, id)
	return one(row, scanImage, fmt.Sprintf("image %d", id))
}

// ImageBySHA returns the image of a source with the given content hash, or
// ErrNotFound.
func (db *DB) ImageBySHA(ctx context.Context, sourceID int64, sha [32]byte) (Image, error) {
	row := db.r.QueryRowContext(ctx,
		`SELECT `+imageColumns+` FROM images WHERE source_id = ? AND sha256 = ?`, sourceID, sha[:])
	return one(row, scanImage, fmt.Sprintf("image %x in source %d", sha[:8], sourceID))
}

// ExpiredImages returns at most limit images whose retention deadline is at
// or before now, earliest deadline first. limit must be positive.
func (db *DB) ExpiredImages(ctx context.Context, now time.Time, limit int) ([]Image, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("expired images: limit %d: %w", limit, ErrInvalid)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+imageColumns+` FROM images
WHERE retention_deadline <= ? ORDER BY retention_deadline, id LIMIT ?`, ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("expired images: %w", err)
	}
	out, err := collect(rows, scanImage)
	if err != nil {
		return nil, fmt.Errorf("expired images: %w", err)
	}
	return out, nil
}

// DeleteImage deletes an image and its faces; see Tx.DeleteImage.
func (db *DB) DeleteImage(ctx context.Context, id int64) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.DeleteImage(ctx, id) })
}

// DeleteImage deletes image id and, by cascade, its faces; a missing image
// fails with ErrNotFound. The image's ingest progress is kept, so a resumed
// ingest does not bring an expired or erased image back.
func (tx *Tx) DeleteImage(ctx context.Context, id int64) error {
	if err := tx.outboxFaces(ctx, OpDel, "f.image_id = ?", id); err != nil {
		return fmt.Errorf("delete image %d: %w", id, err)
	}
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM images WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete image %d: %w", id, err)
	}
	return affectedOne(res, fmt.Sprintf("delete image %d", id))
}

// PurgeImage deletes an image whose retention deadline has passed, with its
// faces, and records the purge in the audit log, in one transaction. It
// returns the ids of the deleted faces, which the caller must delete from
// the vector index. An image not yet due fails with ErrInvalid; a missing
// one with ErrNotFound.
func (db *DB) PurgeImage(ctx context.Context, id int64, now time.Time, actor string) (deleted []int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		var sourceID, deadline int64
		err := tx.tx.QueryRowContext(ctx, `SELECT source_id, retention_deadline FROM images WHERE id = ?`, id).
			Scan(&sourceID, &deadline)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("image %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if deadline > ms(now) {
			return fmt.Errorf("image %d is kept until %s: %w", id, fromMS(deadline).Format(time.RFC3339), ErrInvalid)
		}
		if deleted, err = faceIDs(ctx, tx.tx, id); err != nil {
			return err
		}
		if err := tx.DeleteImage(ctx, id); err != nil {
			return err
		}
		ids := deleted
		if ids == nil {
			ids = []int64{}
		}
		detail, err := json.Marshal(map[string]any{"reason": "retention", "source": sourceID,
			"deadline": fromMS(deadline).Format(time.RFC3339), "faces": ids})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "image.purge",
			Object: fmt.Sprintf("image/%d", id), Detail: detail})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("purge image %d: %w", id, err)
	}
	return deleted, nil
}
