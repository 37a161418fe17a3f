package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"gabarit/internal/face"
)

// Face is one detected face of an image and its encrypted template.
type Face struct {
	ID        int64
	ImageID   int64
	Box       face.Box       // pixels of the original image
	Landmarks face.Landmarks // stored as 10 little-endian float32
	Score     float64        // detector confidence in [0,1]
	Quality   float64        // usefulness for recognition in [0,1]
	ModelID   string         // the embedder that made the template
	Dim       int            // the template's dimension before encryption
	Template  []byte         // ciphertext under the source's data key; opaque to the store
	SubjectID int64          // the recorded subject; 0 when none
	TrackID   int64          // the video track; 0 when none (tracks are numbered from 1)
	TimeCode  *time.Duration // the position in the video, milliseconds stored; nil for still images
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

func (f *Face) validate() error {
	switch {
	case !finite(f.Box.X, f.Box.Y, f.Box.W, f.Box.H, f.Score, f.Quality):
		return fmt.Errorf("box, score and quality must be finite: %w", ErrInvalid)
	case f.Box.W <= 0 || f.Box.H <= 0:
		return fmt.Errorf("empty box: %w", ErrInvalid)
	case f.ModelID == "":
		return fmt.Errorf("model id required: %w", ErrInvalid)
	case f.Dim <= 0:
		return fmt.Errorf("dim %d must be positive: %w", f.Dim, ErrInvalid)
	case len(f.Template) == 0:
		return fmt.Errorf("template required: %w", ErrInvalid)
	case f.SubjectID < 0 || f.TrackID < 0:
		return fmt.Errorf("negative subject or track id: %w", ErrInvalid)
	}
	for _, p := range f.Landmarks {
		if !finite(p.X, p.Y) {
			return fmt.Errorf("landmarks must be finite: %w", ErrInvalid)
		}
	}
	return nil
}

const insertFace = `
INSERT INTO faces (image_id, box_x, box_y, box_w, box_h, landmarks, score, quality, model_id, dim,
	template, subject_id, track_id, time_code_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// args returns the arguments of insertFace for f in image imageID.
func (f *Face) args(imageID int64) []any {
	var subject, track, timeCode any
	if f.SubjectID != 0 {
		subject = f.SubjectID
	}
	if f.TrackID != 0 {
		track = f.TrackID
	}
	if f.TimeCode != nil {
		timeCode = f.TimeCode.Milliseconds()
	}
	return []any{imageID, f.Box.X, f.Box.Y, f.Box.W, f.Box.H, encodeLandmarks(&f.Landmarks), f.Score, f.Quality,
		f.ModelID, f.Dim, f.Template, subject, track, timeCode}
}

// encodeLandmarks packs five points as 10 little-endian float32 (x0, y0, … x4, y4).
func encodeLandmarks(l *face.Landmarks) []byte {
	b := make([]byte, 0, 40)
	for _, p := range l {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(p.X)))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(p.Y)))
	}
	return b
}

// decodeLandmarks is the inverse of encodeLandmarks.
func decodeLandmarks(b []byte) (face.Landmarks, error) {
	var l face.Landmarks
	if len(b) != 40 {
		return l, fmt.Errorf("landmarks have %d bytes, want 40", len(b))
	}
	for i := range l {
		l[i].X = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8*i:])))
		l[i].Y = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8*i+4:])))
	}
	return l, nil
}

const faceColumns = `id, image_id, box_x, box_y, box_w, box_h, landmarks, score, quality, model_id, dim,
	template, subject_id, track_id, time_code_ms`

func scanFace(sc scanner) (Face, error) {
	var f Face
	var landmarks []byte
	var subject, track, timeCode sql.NullInt64
	if err := sc.Scan(&f.ID, &f.ImageID, &f.Box.X, &f.Box.Y, &f.Box.W, &f.Box.H, &landmarks, &f.Score, &f.Quality,
		&f.ModelID, &f.Dim, &f.Template, &subject, &track, &timeCode); err != nil {
		return Face{}, err
	}
	l, err := decodeLandmarks(landmarks)
	if err != nil {
		return Face{}, fmt.Errorf("face %d: %w", f.ID, err)
	}
	f.Landmarks = l
	f.SubjectID = subject.Int64
	f.TrackID = track.Int64
	if timeCode.Valid {
		d := time.Duration(timeCode.Int64) * time.Millisecond
		f.TimeCode = &d
	}
	return f, nil
}

// Face returns the face with the given id, or ErrNotFound.
func (db *DB) Face(ctx context.Context, id int64) (Face, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+faceColumns+` FROM faces WHERE id = ?`, id)
	return one(row, scanFace, fmt.Sprintf("face %d", id))
}

// Faces returns the faces of an image in id order (none for an unknown image).
func (db *DB) Faces(ctx context.Context, imageID int64) ([]Face, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+faceColumns+` FROM faces WHERE image_id = ? ORDER BY id`, imageID)
	if err != nil {
		return nil, fmt.Errorf("faces of image %d: %w", imageID, err)
	}
	out, err := collect(rows, scanFace)
	if err != nil {
		return nil, fmt.Errorf("faces of image %d: %w", imageID, err)
	}
	return out, nil
}

// faceIDs returns the ids of an image's faces in id order, read through q.
func faceIDs(ctx context.Context, q *txConn, imageID int64) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM faces WHERE image_id = ? ORDER BY id`, imageID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(sc scanner) (id int64, err error) {
		err = sc.Scan(&id)
		return id, err
	})
}

// AllTemplates streams every face's template to fn in face id order, with
// the face's source and model, for rebuilding the vector index. The scan
// reads one consistent snapshot. template is valid only until fn returns
// (copy it to keep it). An error from fn stops the scan and is returned.
func (db *DB) AllTemplates(ctx context.Context, fn func(faceID, sourceID int64, modelID string, template []byte) error) error {
	return db.TemplatesAfter(ctx, 0, fn)
}

// TemplatesAfter is AllTemplates restricted to the faces whose id is greater
// than after: the ones added since an index was saved.
func (db *DB) TemplatesAfter(ctx context.Context, after int64, fn func(faceID, sourceID int64, modelID string, template []byte) error) error {
	return db.streamTemplates(ctx, "all templates", "f.id > ?", after, fn)
}

// streamTemplates calls fn with the template of every face that where
// (with its one argument) selects, in id order; what names the errors.
func (db *DB) streamTemplates(ctx context.Context, what, where string, arg any, fn func(faceID, sourceID int64, modelID string, template []byte) error) error {
	rows, err := db.r.QueryContext(ctx, `
SELECT f.id, i.source_id, f.model_id, f.template FROM faces f JOIN images i ON i.id = f.image_id
WHERE `+where+` ORDER BY f.id`, arg)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var (
		faceID, sourceID int64
		modelID          string
		template         sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&faceID, &sourceID, &modelID, &template); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(faceID, sourceID, modelID, template); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// FaceCount returns the number of faces stored.
func (db *DB) FaceCount(ctx context.Context) (int64, error) {
	var n int64
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM faces`).Scan(&n); err != nil {
		return 0, fmt.Errorf("face count: %w", err)
	}
	return n, nil
}

// DeleteFaces deletes faces by id; see Tx.DeleteFaces.
func (db *DB) DeleteFaces(ctx context.Context, ids []int64) (deleted int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		deleted, err = tx.DeleteFaces(ctx, ids)
		return err
	})
	return deleted, err
}

// DeleteFaces deletes the faces with the given ids, templates included, and
// returns how many existed. Ids that do not exist are ignored, so an erasure
// can be retried.
func (tx *Tx) DeleteFaces(ctx context.Context, ids []int64) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	in, list := tx.tx.d.inInt64s("id", ids)
	// Every index learns of it through the outbox (see outbox.go).
	if err := tx.outboxFaces(ctx, OpDel, in, list); err != nil {
		return 0, fmt.Errorf("delete %d faces: %w", len(ids), err)
	}
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM faces WHERE `+in, list)
	if err != nil {
		return 0, fmt.Errorf("delete %d faces: %w", len(ids), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete %d faces: %w", len(ids), err)
	}
	return n, nil
}

// FaceCountUpTo returns the number of faces of model modelID whose id is at
// most maxID and the largest id of such a face (0 when there are none): with
// them an index saved up to maxID can tell whether faces were deleted since.
func (db *DB) FaceCountUpTo(ctx context.Context, modelID string, maxID int64) (n, maxStored int64, err error) {
	err = db.r.QueryRowContext(ctx, `SELECT
	(SELECT count(*) FROM faces WHERE model_id = ? AND id <= ?),
	coalesce((SELECT max(id) FROM faces WHERE model_id = ?), 0)`, modelID, maxID, modelID).
		Scan(&n, &maxStored)
	if err != nil {
		return 0, 0, fmt.Errorf("face count: %w", err)
	}
	return n, maxStored, nil
}

// FaceRef is a face with what a search result shows of it: its image and the
// legal frame of its source.
type FaceRef struct {
	Face
	SourceID   int64
	Locator    string // the image's locator inside the source
	LegalBasis LegalBasis
	Controller string
}

// FaceRefs returns the faces with the given ids that exist, by id; ids that
// are not stored (deleted, never added) are absent from the map.
func (db *DB) FaceRefs(ctx context.Context, ids []int64) (map[int64]FaceRef, error) {
	out := make(map[int64]FaceRef, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	in, list := db.d.inInt64s("f.id", ids)
	q := `SELECT ` + prefixed("f.", faceColumns) + `, i.source_id, i.locator, s.legal_basis, s.controller
FROM faces f JOIN images i ON i.id = f.image_id JOIN sources s ON s.id = i.source_id
WHERE ` + in
	rows, err := db.r.QueryContext(ctx, q, list)
	if err != nil {
		return nil, fmt.Errorf("face refs: %w", err)
	}
	refs, err := collect(rows, func(sc scanner) (FaceRef, error) {
		var r FaceRef
		f, err := scanFace(scanFunc(func(dest ...any) error {
			return sc.Scan(append(dest, &r.SourceID, &r.Locator, &r.LegalBasis, &r.Controller)...)
		}))
		r.Face = f
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("face refs: %w", err)
	}
	for _, r := range refs {
		out[r.ID] = r
	}
	return out, nil
}

// scanFunc adapts a function to scanner.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// prefixed qualifies each column of a comma-separated list with prefix.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
