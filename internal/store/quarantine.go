package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SystemActor is the actor of audit entries that gabarit writes on its own
// account, outside anyone's request: a face quarantined while the index is
// rebuilt, say.
const SystemActor = "system"

// Operations that find a face whose template cannot be opened, recorded
// with its quarantine.
const (
	FoundBySearch = "search"
	FoundByIndex  = "index"
	FoundByRights = "rights"
)

// QuarantinedFace is a face whose sealed template could not be opened:
// search, the index and rights requests skip it until it is released
// (its template opens again) or erased.
type QuarantinedFace struct {
	FaceID   int64     `json:"face_id"`
	ImageID  int64     `json:"image_id"`
	SourceID int64     `json:"source_id"`
	ModelID  string    `json:"model_id"`
	At       time.Time `json:"at"`
	Found    string    `json:"found_by"` // FoundBySearch, FoundByIndex or FoundByRights
	Reason   string    `json:"reason"`   // a short class, e.g. "does not authenticate"
}

// QuarantineFace puts face id in quarantine: found by operation found (a
// FoundBy constant) for reason, a short class that never holds template
// bytes. The first time it records the face and appends one audit entry
// face.quarantine by actor in the same transaction, and returns true; a
// face already in quarantine, or no longer stored, changes nothing and
// returns false. It reads before writing, so that the searches that meet
// a quarantined face take no write lock.
func (db *DB) QuarantineFace(ctx context.Context, id int64, found, reason, actor string) (bool, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case found == "" || reason == "" || strings.TrimSpace(actor) == "":
		return false, fmt.Errorf("quarantine face %d: operation, reason and actor required: %w", id, ErrInvalid)
	case len(reason) > 200:
		reason = reason[:200]
	}
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM quarantine WHERE face_id = ?`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("quarantine face %d: %w", id, err)
	}
	if n > 0 {
		return false, nil
	}
	added := false
	err := db.Tx(ctx, func(tx *Tx) error {
		now := tx.now()
		res, err := tx.tx.ExecContext(ctx, `INSERT INTO quarantine (face_id, at, found, reason)
SELECT id, ?, ?, ? FROM faces WHERE id = ? ON CONFLICT (face_id) DO NOTHING`, ms(now), found, reason, id)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil || k == 0 {
			return err
		}
		added = true
		if err := tx.outboxFaces(ctx, OpDel, "f.id = ?", id); err != nil {
			return err
		}
		detail, err := json.Marshal(map[string]string{"reason": reason, "found_by": found})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, AuditEntry{At: now, Actor: actor, Action: "face.quarantine",
			Object: fmt.Sprintf("face/%d", id), Detail: detail})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("quarantine face %d: %w", id, err)
	}
	return added, nil
}

const quarantineColumns = `q.face_id, f.image_id, i.source_id, f.model_id, q.at, q.found, q.reason`

func scanQuarantined(sc scanner) (QuarantinedFace, error) {
	var q QuarantinedFace
	var at int64
	err := sc.Scan(&q.FaceID, &q.ImageID, &q.SourceID, &q.ModelID, &at, &q.Found, &q.Reason)
	q.At = fromMS(at)
	return q, err
}

// Quarantined lists the faces in quarantine, oldest first.
func (db *DB) Quarantined(ctx context.Context) ([]QuarantinedFace, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+quarantineColumns+`
FROM quarantine q JOIN faces f ON f.id = q.face_id JOIN images i ON i.id = f.image_id ORDER BY q.at, q.face_id`)
	if err != nil {
		return nil, fmt.Errorf("quarantined faces: %w", err)
	}
	out, err := collect(rows, scanQuarantined)
	if err != nil {
		return nil, fmt.Errorf("quarantined faces: %w", err)
	}
	return out, nil
}

// QuarantinedFaceByID returns face id's quarantine, or ErrNotFound when it
// is not in quarantine.
func (db *DB) QuarantinedFaceByID(ctx context.Context, id int64) (QuarantinedFace, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+quarantineColumns+`
FROM quarantine q JOIN faces f ON f.id = q.face_id JOIN images i ON i.id = f.image_id WHERE q.face_id = ?`, id)
	return one(row, scanQuarantined, fmt.Sprintf("face %d in quarantine", id))
}

// QuarantineCount returns the number of faces in quarantine.
func (db *DB) QuarantineCount(ctx context.Context) (int, error) {
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM quarantine`).Scan(&n); err != nil {
		return 0, fmt.Errorf("quarantine count: %w", err)
	}
	return n, nil
}

// QuarantinedIDs returns the ids of the faces of model modelID in
// quarantine.
func (db *DB) QuarantinedIDs(ctx context.Context, modelID string) (map[int64]bool, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT q.face_id FROM quarantine q JOIN faces f ON f.id = q.face_id
WHERE f.model_id = ?`, modelID)
	return quarantinedSet(rows, err)
}

// QuarantinedAmong returns which of ids are faces in quarantine.
func (db *DB) QuarantinedAmong(ctx context.Context, ids []int64) (map[int64]bool, error) {
	if len(ids) == 0 {
		return map[int64]bool{}, nil
	}
	in, list := db.d.inInt64s("face_id", ids)
	rows, err := db.r.QueryContext(ctx, `SELECT face_id FROM quarantine WHERE `+in, list)
	return quarantinedSet(rows, err)
}

func quarantinedSet(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}, err error) (map[int64]bool, error) {
	if err != nil {
		return nil, fmt.Errorf("quarantined faces: %w", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("quarantined faces: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("quarantined faces: %w", err)
	}
	return out, nil
}

// ReleaseFace takes face id out of quarantine, with an audit entry
// face.quarantine.release by actor, once the caller has checked that its
// template opens again. A face not in quarantine fails with ErrNotFound.
func (db *DB) ReleaseFace(ctx context.Context, id int64, actor string) error {
	err := db.Tx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM quarantine WHERE face_id = ?`, id)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return fmt.Errorf("face %d is not in quarantine: %w", id, ErrNotFound)
		}
		if err := tx.outboxFaces(ctx, OpAdd, "f.id = ?", id); err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, AuditEntry{At: tx.now(), Actor: actor, Action: "face.quarantine.release",
			Object: fmt.Sprintf("face/%d", id)})
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("release face %d: %w", id, err)
	}
	return err
}

// EraseQuarantined erases face id, which must be in quarantine (else
// ErrNotFound), and its image if it holds no other face, with the audit
// entry faces.erase by actor (object face/ID); erasing does not need the
// template. It returns the images erased with it.
func (db *DB) EraseQuarantined(ctx context.Context, id int64, actor string) (images []int64, err error) {
	if _, err := db.QuarantinedFaceByID(ctx, id); err != nil {
		return nil, err
	}
	_, images, err = db.EraseFaces(ctx, []int64{id}, actor, fmt.Sprintf("face/%d", id))
	return images, err
}
