package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gabarit/internal/dsr"
)

// A rights request is answered in three steps: the candidate set is found
// (SaveRightsCandidates), the DPO reviews it (ReviewRightsCandidates) and
// records how the requester's identity was established
// (RecordRightsIdentity), and only then is the request acted on, on
// exactly the reviewed set. Audit entries keep counts, never face ids,
// notes or contacts: which faces were acted on is kept in the request's
// sealed record (SealRightsRecord).

// RightsCandidate is one stored face that may be the requester's.
type RightsCandidate struct {
	FaceID       int64
	Score        float64   // similarity to the person's selfies taken together
	Similarities []float64 // to each selfie, in order
	Strangers    float64   // faces of other people expected at Score in the gallery
	Band         string    // strong, probable or weak
	Preselected  bool      // at or above the strict operating point
	Selected     bool      // the DPO's decision (the pre-selection until reviewed)
	Added        bool      // added by the DPO, not found by the search
}

// RightsReview is the candidate set of a request and its review.
type RightsReview struct {
	RequestID  int64
	FoundBy    string
	FoundAt    time.Time
	Gallery    int     // stored faces compared
	Selfies    int     // selfies compared with them
	Floor      float64 // least similarity to any selfie of a candidate
	Strict     float64 // least Score pre-selected on its own
	Group      float64 // least Score pre-selected with a look-alike at it too
	FPIR       float64 // the target FPIR the strict point was set for
	Beyond     int     // faces over the floor left out of the set (the least similar)
	ReviewedBy string  // empty until the DPO has reviewed the set
	ReviewedAt time.Time
	Candidates []RightsCandidate // most similar first
}

// Selected returns the ids of the selected candidates, in id order.
func (rv RightsReview) Selected() []int64 {
	var ids []int64
	for _, c := range rv.Candidates {
		if c.Selected {
			ids = append(ids, c.FaceID)
		}
	}
	slices.Sort(ids)
	return ids
}

// RightsIdentity is how a requester's identity was established.
type RightsIdentity struct {
	Method string // a dsr.IdentityMethod id
	Note   string // the DPO's note; free text, never audited
	By     string
	At     time.Time
}

// RightsNotice records that the users of a search were told of an erasure.
type RightsNotice struct {
	SearchID int64
	By       string
	At       time.Time
}

// RightsSelfie is the sealed crop of one selfie's face, kept for the
// review until the request closes.
type RightsSelfie struct {
	N       int
	Quality float64
	Crop    []byte // sealed; see rights.Engine
}

// RightsRecord is a request's sealed record of what was done, to which faces.
type RightsRecord struct {
	Sealed  []byte
	SHA256  string // of the plain record
	Faces   int    // faces acted on, for the audit entry
	Created time.Time
}

// openRequest reads request id in tx and fails unless it is open.
func (tx *Tx) openRequest(ctx context.Context, id int64, what string) (dsr.Request, error) {
	r, err := tx.rightsRequest(ctx, id)
	if err != nil {
		return dsr.Request{}, fmt.Errorf("%s: %w", what, err)
	}
	if r.State.Final() {
		return dsr.Request{}, fmt.Errorf("%s: request %d is %s: %w", what, id, r.State, ErrInvalid)
	}
	return r, nil
}

// SaveRightsCandidates replaces the candidate set of open request id with
// rv (unreviewed: a new set must be reviewed again) and appends the audit
// entry "rights.candidates" with its counts.
func (db *DB) SaveRightsCandidates(ctx context.Context, id int64, actor string, rv RightsReview) error {
	what := fmt.Sprintf("save the candidates of rights request %d", id)
	if strings.TrimSpace(actor) == "" || rv.Selfies < 1 || !(rv.FPIR > 0 && rv.FPIR < 1) {
		return fmt.Errorf("%s: actor, selfies and FPIR required: %w", what, ErrInvalid)
	}
	return db.Tx(ctx, func(tx *Tx) error {
		r, err := tx.openRequest(ctx, id, what)
		if err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM rights_candidates WHERE request_id = ?`, id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, err := tx.tx.ExecContext(ctx, `DELETE FROM rights_reviews WHERE request_id = ?`, id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO rights_reviews (request_id, found_by, found_at, gallery, selfies, floor, strict, group_point, fpir, beyond)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, actor, ms(tx.now()), rv.Gallery, rv.Selfies, rv.Floor, rv.Strict, rv.Group, rv.FPIR, rv.Beyond); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		pre := 0
		for _, c := range rv.Candidates {
			c.Selected = c.Preselected
			if c.Preselected {
				pre++
			}
			if err := tx.insertCandidate(ctx, id, c); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		detail, _ := json.Marshal(map[string]any{"kind": r.Kind, "candidates": len(rv.Candidates), "preselected": pre,
			"beyond": rv.Beyond, "gallery": rv.Gallery, "selfies": rv.Selfies, "strict": rv.Strict, "group": rv.Group, "fpir": rv.FPIR})
		_, err = tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "rights.candidates", Object: rightsObject(id), Detail: detail})
		return err
	})
}

func (tx *Tx) insertCandidate(ctx context.Context, id int64, c RightsCandidate) error {
	if !slices.Contains([]string{"strong", "probable", "weak"}, c.Band) {
		return fmt.Errorf("candidate face %d: band %q: %w", c.FaceID, c.Band, ErrInvalid)
	}
	sims, err := json.Marshal(c.Similarities)
	if err != nil {
		return err
	}
	_, err = tx.tx.ExecContext(ctx, `
INSERT INTO rights_candidates (request_id, face_id, score, similarities, strangers, band, preselected, selected, added)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, c.FaceID, c.Score, string(sims), max(c.Strangers, 0), c.Band,
		c.Preselected, c.Selected, c.Added)
	return err
}

// RightsReview returns the candidate set of request id and its review, or
// ErrNotFound when none was found (or the request closed and it was
// deleted).
func (db *DB) RightsReview(ctx context.Context, id int64) (RightsReview, error) {
	what := fmt.Sprintf("candidates of rights request %d", id)
	rv := RightsReview{RequestID: id}
	var found int64
	var by sql.NullString
	var at sql.NullInt64
	err := db.r.QueryRowContext(ctx, `
SELECT found_by, found_at, gallery, selfies, floor, strict, group_point, fpir, beyond, reviewed_by, reviewed_at
FROM rights_reviews WHERE request_id = ?`, id).Scan(&rv.FoundBy, &found, &rv.Gallery, &rv.Selfies, &rv.Floor, &rv.Strict,
		&rv.Group, &rv.FPIR, &rv.Beyond, &by, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return RightsReview{}, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return RightsReview{}, fmt.Errorf("%s: %w", what, err)
	}
	rv.FoundAt, rv.ReviewedBy, rv.ReviewedAt = fromMS(found), by.String, fromNullMS(at)
	rows, err := db.r.QueryContext(ctx, `
SELECT face_id, score, similarities, strangers, band, preselected, selected, added
FROM rights_candidates WHERE request_id = ? ORDER BY score DESC, face_id`, id)
	if err != nil {
		return RightsReview{}, fmt.Errorf("%s: %w", what, err)
	}
	rv.Candidates, err = collect(rows, func(sc scanner) (RightsCandidate, error) {
		var c RightsCandidate
		var sims string
		if err := sc.Scan(&c.FaceID, &c.Score, &sims, &c.Strangers, &c.Band, &c.Preselected, &c.Selected, &c.Added); err != nil {
			return c, err
		}
		return c, json.Unmarshal([]byte(sims), &c.Similarities)
	})
	if err != nil {
		return RightsReview{}, fmt.Errorf("%s: %w", what, err)
	}
	return rv, nil
}

// ReviewRightsCandidates records the DPO's review of open request id's
// candidate set: exactly the faces in selected are selected, the others
// not. added are faces the DPO adds that the search did not find (they
// must not already be candidates, and are selected). Every selected face
// must be a candidate or added. The audit entry "rights.reviewed" keeps
// the counts: selected, pre-selected left out, not pre-selected taken,
// added.
func (db *DB) ReviewRightsCandidates(ctx context.Context, id int64, actor string, selected []int64, added []RightsCandidate) (RightsReview, error) {
	what := fmt.Sprintf("review the candidates of rights request %d", id)
	if strings.TrimSpace(actor) == "" {
		return RightsReview{}, fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	rv, err := db.RightsReview(ctx, id)
	if err != nil {
		return RightsReview{}, err
	}
	err = db.Tx(ctx, func(tx *Tx) error {
		r, err := tx.openRequest(ctx, id, what)
		if err != nil {
			return err
		}
		if r.Acting() {
			return fmt.Errorf("%s: the request is being acted on; its reviewed set cannot change: %w", what, ErrInvalid)
		}
		known := map[int64]RightsCandidate{}
		for _, c := range rv.Candidates {
			known[c.FaceID] = c
		}
		for _, c := range added {
			if _, ok := known[c.FaceID]; ok {
				return fmt.Errorf("%s: face %d is already a candidate: %w", what, c.FaceID, ErrInvalid)
			}
			c.Added, c.Selected, c.Preselected = true, true, false
			if err := tx.insertCandidate(ctx, id, c); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			known[c.FaceID] = c
		}
		want := map[int64]bool{}
		for _, f := range selected {
			if _, ok := known[f]; !ok {
				return fmt.Errorf("%s: face %d is not a candidate of this request (add it first): %w", what, f, ErrInvalid)
			}
			want[f] = true
		}
		var n struct {
			Selected, Dropped, Taken, Added int
		}
		for f, c := range known {
			sel := want[f] || c.Added && slices.ContainsFunc(added, func(a RightsCandidate) bool { return a.FaceID == f })
			if sel {
				n.Selected++
			}
			switch {
			case c.Added && sel:
				n.Added++
			case c.Preselected && !sel:
				n.Dropped++
			case !c.Preselected && sel:
				n.Taken++
			}
			if _, err := tx.tx.ExecContext(ctx, `UPDATE rights_candidates SET selected = ? WHERE request_id = ? AND face_id = ?`, sel, id, f); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE rights_reviews SET reviewed_by = ?, reviewed_at = ? WHERE request_id = ?`,
			actor, ms(tx.now()), id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		detail, _ := json.Marshal(map[string]any{"kind": r.Kind, "selected": n.Selected, "preselected_left_out": n.Dropped,
			"taken_below_strict": n.Taken, "added": n.Added})
		_, err = tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "rights.reviewed", Object: rightsObject(id), Detail: detail})
		return err
	})
	if err != nil {
		return RightsReview{}, err
	}
	return db.RightsReview(ctx, id)
}

// RecordRightsIdentity records how the requester of open request id was
// identified (method, with the DPO's note) and moves the request from
// received to verified, in one transaction. The audit entries are
// "rights.verified" (the state change) and "rights.identity", which names
// the method, not the note. A request already verified, or later, fails
// with ErrInvalid.
func (db *DB) RecordRightsIdentity(ctx context.Context, id int64, actor, method, note string) (dsr.Request, error) {
	what := fmt.Sprintf("record the identity check of rights request %d", id)
	if strings.TrimSpace(actor) == "" || strings.TrimSpace(method) == "" {
		return dsr.Request{}, fmt.Errorf("%s: actor and method required: %w", what, ErrInvalid)
	}
	var out dsr.Request
	err := db.Tx(ctx, func(tx *Tx) error {
		r, err := tx.UpdateRightsRequest(ctx, id, actor, func(r *dsr.Request, now time.Time) error {
			return r.Advance(now, dsr.Verified, "")
		})
		if err != nil {
			return err
		}
		if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO rights_identity (request_id, method, note, checked_by, checked_at) VALUES (?, ?, ?, ?, ?)`,
			id, method, strings.TrimSpace(note), actor, ms(tx.now())); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		detail, _ := json.Marshal(map[string]any{"kind": r.Kind, "method": method})
		if _, err := tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "rights.identity", Object: rightsObject(id), Detail: detail}); err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, err
}

// RightsIdentity returns how request id's requester was identified, or
// ErrNotFound when that is not recorded.
func (db *DB) RightsIdentity(ctx context.Context, id int64) (RightsIdentity, error) {
	var v RightsIdentity
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT method, note, checked_by, checked_at FROM rights_identity WHERE request_id = ?`, id).
		Scan(&v.Method, &v.Note, &v.By, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return RightsIdentity{}, fmt.Errorf("identity check of rights request %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return RightsIdentity{}, fmt.Errorf("identity check of rights request %d: %w", id, err)
	}
	v.At = fromMS(at)
	return v, nil
}

// AddRightsSelfies keeps the sealed crops of request id's selfies' faces,
// numbered from 1, for the review.
func (db *DB) AddRightsSelfies(ctx context.Context, id int64, selfies []RightsSelfie) error {
	return db.Tx(ctx, func(tx *Tx) error {
		for _, s := range selfies {
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO rights_selfies (request_id, n, quality, crop) VALUES (?, ?, ?, ?)`,
				id, s.N, s.Quality, s.Crop); err != nil {
				return fmt.Errorf("keep selfie %d of rights request %d: %w", s.N, id, err)
			}
		}
		return nil
	})
}

// RightsSelfies returns the sealed selfie crops of request id, in order
// (none once the request is closed).
func (db *DB) RightsSelfies(ctx context.Context, id int64) ([]RightsSelfie, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT n, quality, crop FROM rights_selfies WHERE request_id = ? ORDER BY n`, id)
	if err != nil {
		return nil, fmt.Errorf("selfies of rights request %d: %w", id, err)
	}
	return collect(rows, func(sc scanner) (RightsSelfie, error) {
		var s RightsSelfie
		return s, sc.Scan(&s.N, &s.Quality, &s.Crop)
	})
}

// CloseRightsRequest ends request id's processing in one transaction: fn
// moves the request to its final state (see UpdateRightsRequest), the
// sealed record of what was done is kept when rec is not nil, and the
// candidates and selfie crops are deleted (the review's counts stay in
// rights_reviews and the audit log).
func (db *DB) CloseRightsRequest(ctx context.Context, id int64, actor string, rec *RightsRecord,
	fn func(r *dsr.Request, now time.Time) error) (dsr.Request, error) {
	what := fmt.Sprintf("close rights request %d", id)
	var out dsr.Request
	err := db.Tx(ctx, func(tx *Tx) error {
		r, err := tx.UpdateRightsRequest(ctx, id, actor, fn)
		if err != nil {
			return err
		}
		if !r.State.Final() {
			return fmt.Errorf("%s: it is %s, not closed: %w", what, r.State, ErrInvalid)
		}
		if rec != nil {
			if _, err := tx.tx.ExecContext(ctx, `INSERT INTO rights_records (request_id, sealed, sha256, created_at) VALUES (?, ?, ?, ?)`,
				id, rec.Sealed, rec.SHA256, ms(tx.now())); err != nil {
				return fmt.Errorf("%s: keep the sealed record: %w", what, err)
			}
			detail, _ := json.Marshal(map[string]any{"kind": r.Kind, "faces": rec.Faces, "sha256": rec.SHA256})
			if _, err := tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "rights.record", Object: rightsObject(id), Detail: detail}); err != nil {
				return err
			}
		}
		for _, q := range []string{`DELETE FROM rights_candidates WHERE request_id = ?`, `DELETE FROM rights_selfies WHERE request_id = ?`} {
			if _, err := tx.tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		out = r
		return nil
	})
	return out, err
}

// RightsRecordOf returns request id's sealed record, or ErrNotFound.
func (db *DB) RightsRecordOf(ctx context.Context, id int64) (RightsRecord, error) {
	var rec RightsRecord
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT sealed, sha256, created_at FROM rights_records WHERE request_id = ?`, id).
		Scan(&rec.Sealed, &rec.SHA256, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return RightsRecord{}, fmt.Errorf("record of rights request %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return RightsRecord{}, fmt.Errorf("record of rights request %d: %w", id, err)
	}
	rec.Created = fromMS(at)
	return rec, nil
}

// RecordRightsNotice records that the users of search searchID were told
// of request id's erasure (GDPR Art. 19), with the audit entry
// "rights.notified". Recording it twice fails with ErrInvalid.
func (db *DB) RecordRightsNotice(ctx context.Context, id, searchID int64, actor string) error {
	what := fmt.Sprintf("record the notice of search %d for rights request %d", searchID, id)
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	return db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.rightsRequest(ctx, id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		res, err := tx.tx.ExecContext(ctx, `
INSERT INTO rights_notices (request_id, search_id, notified_by, notified_at) VALUES (?, ?, ?, ?)
ON CONFLICT DO NOTHING`, id, searchID, actor, ms(tx.now()))
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s: already recorded: %w", what, ErrInvalid)
		}
		detail, _ := json.Marshal(map[string]any{"search": searchID})
		_, err = tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "rights.notified", Object: rightsObject(id), Detail: detail})
		return err
	})
}

// RightsNotices returns the notices recorded for request id, by search.
func (db *DB) RightsNotices(ctx context.Context, id int64) ([]RightsNotice, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT search_id, notified_by, notified_at FROM rights_notices WHERE request_id = ? ORDER BY search_id`, id)
	if err != nil {
		return nil, fmt.Errorf("notices of rights request %d: %w", id, err)
	}
	return collect(rows, func(sc scanner) (RightsNotice, error) {
		var n RightsNotice
		var at int64
		err := sc.Scan(&n.SearchID, &n.By, &at)
		n.At = fromMS(at)
		return n, err
	})
}
