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
	"unicode/utf8"
)

// ConfirmationsRequired is how many different verifiers must confirm a
// search result before it counts as an identification (AI Act Art. 14(5):
// verified and confirmed separately by at least two natural persons).
const ConfirmationsRequired = 2

// ErrRejected refuses to confirm a search result that a verifier rejected:
// a rejected face never becomes an identification.
var ErrRejected = errors.New("rejected by a verifier")

// ErrNotReturned refuses to verify a face the search did not return; such
// errors also match ErrInvalid.
var ErrNotReturned = errors.New("not a result of this search")

// MaxRejectReason is the longest reason of a rejection, in characters.
const MaxRejectReason = 500

// Confirmation is the state of one search result's verification: the
// verifiers who confirmed face FaceID as returned by search SearchID.
type Confirmation struct {
	SearchID  int64
	FaceID    int64
	Verifiers []string // in the order they confirmed
	// Identified: at least ConfirmationsRequired verifiers confirmed it
	// and none rejected it.
	Identified bool
	// Rejected: a verifier rejected it; it never counts as identified,
	// whatever its confirmations.
	Rejected bool
}

// Rejection is a verifier's statement that a face a search returned is
// not the person searched for, with the reason.
type Rejection struct {
	SearchID int64
	FaceID   int64
	Verifier string
	Reason   string
	At       time.Time
}

// Confirm records a confirmation; see Tx.Confirm.
func (db *DB) Confirm(ctx context.Context, searchID, faceID int64, verifier string) (c Confirmation, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		c, err = tx.Confirm(ctx, searchID, faceID, verifier)
		return err
	})
	return c, err
}

// Confirm records that verifier confirms face faceID as a match of search
// searchID, appends the audit entry "search.confirm" by verifier on object
// "search/ID" (detail: the face id, the number of confirmations and whether
// the result is now identified) and returns the result's confirmations.
// The result is identified once ConfirmationsRequired different verifiers
// have confirmed it; later confirmations are recorded too. A missing search,
// or a face no longer held (erased or purged since the search), fails with
// ErrNotFound; a face the search did not return, or a blank
// verifier, with ErrInvalid; a verifier who is not a registered, enabled
// user with RoleVerifier, or who ran the search, with ErrForbidden; a face
// that a verifier rejected with ErrRejected; a second confirmation by the
// same verifier with ErrExists. On error nothing is written.
func (tx *Tx) Confirm(ctx context.Context, searchID, faceID int64, verifier string) (Confirmation, error) {
	what := fmt.Sprintf("confirm search %d face %d", searchID, faceID)
	if err := tx.mayVerify(ctx, what, searchID, faceID, verifier, "confirm"); err != nil {
		return Confirmation{}, err
	}
	rejections, err := tx.rejections(ctx, searchID, faceID)
	if err != nil {
		return Confirmation{}, fmt.Errorf("%s: %w", what, err)
	}
	if len(rejections) > 0 {
		return Confirmation{}, fmt.Errorf("%s: face %d was rejected by %s (%q), and a rejected result cannot be confirmed: %w",
			what, faceID, rejections[0].Verifier, rejections[0].Reason, ErrRejected)
	}
	verifiers, err := tx.verifiers(ctx, searchID, faceID)
	if err != nil {
		return Confirmation{}, fmt.Errorf("%s: %w", what, err)
	}
	if slices.Contains(verifiers, verifier) {
		return Confirmation{}, fmt.Errorf("%s: already confirmed by this user: %w", what, ErrExists)
	}
	now := tx.now()
	if _, err := tx.tx.ExecContext(ctx,
		`INSERT INTO confirmations (search_id, face_id, verifier, at) VALUES (?, ?, ?, ?)`,
		searchID, faceID, verifier, ms(now)); err != nil {
		return Confirmation{}, fmt.Errorf("%s: %w", what, err)
	}
	c := Confirmation{SearchID: searchID, FaceID: faceID, Verifiers: append(verifiers, verifier)}
	c.Identified = len(c.Verifiers) >= ConfirmationsRequired
	detail, err := json.Marshal(struct {
		Face          int64 `json:"face"`
		Confirmations int   `json:"confirmations"`
		Identified    bool  `json:"identified"`
	}{faceID, len(c.Verifiers), c.Identified})
	if err != nil {
		return Confirmation{}, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{At: now, Actor: verifier, Action: "search.confirm",
		Object: fmt.Sprintf("search/%d", searchID), Detail: detail}); err != nil {
		return Confirmation{}, fmt.Errorf("%s: %w", what, err)
	}
	return c, nil
}

// mayVerify checks that verifier may confirm or reject (act) face faceID of
// search searchID: the search exists and returned the face, the face is
// still held, and verifier is a registered, enabled user with RoleVerifier
// who did not run the search. Errors are prefixed with what.
func (tx *Tx) mayVerify(ctx context.Context, what string, searchID, faceID int64, verifier, act string) error {
	if strings.TrimSpace(verifier) == "" {
		return fmt.Errorf("%s: verifier required: %w", what, ErrInvalid)
	}
	var actor, list string
	err := tx.tx.QueryRowContext(ctx, `SELECT actor, returned FROM searches WHERE id = ?`, searchID).Scan(&actor, &list)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var returned []int64
	if err := json.Unmarshal([]byte(list), &returned); err != nil {
		return fmt.Errorf("%s: returned: %w", what, err)
	}
	if !slices.Contains(returned, faceID) {
		return fmt.Errorf("%s: face %d was not returned by search %d: %w: %w", what, faceID, searchID, ErrNotReturned, ErrInvalid)
	}
	var held bool
	if err := tx.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM faces WHERE id = ?)`, faceID).Scan(&held); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !held {
		// Erased or purged since the search: nobody is newly identified
		// from data that is no longer held.
		return fmt.Errorf("%s: face %d is no longer held: %w", what, faceID, ErrNotFound)
	}
	u, err := tx.user(ctx, verifier)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%s: the verifier is not a registered user: %w", what, ErrForbidden)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case !u.Disabled.IsZero():
		return fmt.Errorf("%s: the verifier's account is disabled: %w", what, ErrForbidden)
	case !u.Has(RoleVerifier):
		return fmt.Errorf("%s: the user does not hold the %s role: %w", what, RoleVerifier, ErrForbidden)
	case actor == verifier:
		return fmt.Errorf("%s: a user cannot %s their own search: %w", what, act, ErrForbidden)
	}
	return nil
}

// Reject records a rejection; see Tx.Reject.
func (db *DB) Reject(ctx context.Context, searchID, faceID int64, verifier, reason string) (r Rejection, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		r, err = tx.Reject(ctx, searchID, faceID, verifier, reason)
		return err
	})
	return r, err
}

// Reject records that verifier rejects face faceID as a match of search
// searchID, for reason, and appends the audit entry "search.reject" by
// verifier on object "search/ID" (detail: the face id, the reason and the
// confirmations the face had, which no longer count). From then on the face
// is never identified by this search and cannot be confirmed (ErrRejected).
// The checks are those of Confirm: a missing search or a face no longer
// held fails with ErrNotFound; a face the search did not return, a blank
// verifier, or a reason blank or longer than MaxRejectReason characters
// with ErrInvalid; a verifier who is not a registered, enabled user with
// RoleVerifier, or who ran the search, with ErrForbidden; a second
// rejection by the same verifier with ErrExists. A verifier who confirmed
// the face may still reject it (they changed their mind: the rejection
// prevails). On error nothing is written.
func (tx *Tx) Reject(ctx context.Context, searchID, faceID int64, verifier, reason string) (Rejection, error) {
	what := fmt.Sprintf("reject search %d face %d", searchID, faceID)
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return Rejection{}, fmt.Errorf("%s: a rejection states its reason: %w", what, ErrInvalid)
	case utf8.RuneCountInString(reason) > MaxRejectReason:
		return Rejection{}, fmt.Errorf("%s: the reason is longer than %d characters: %w", what, MaxRejectReason, ErrInvalid)
	case !utf8.ValidString(reason):
		return Rejection{}, fmt.Errorf("%s: the reason is not valid UTF-8: %w", what, ErrInvalid)
	}
	if err := tx.mayVerify(ctx, what, searchID, faceID, verifier, "reject"); err != nil {
		return Rejection{}, err
	}
	rejections, err := tx.rejections(ctx, searchID, faceID)
	if err != nil {
		return Rejection{}, fmt.Errorf("%s: %w", what, err)
	}
	if slices.ContainsFunc(rejections, func(r Rejection) bool { return r.Verifier == verifier }) {
		return Rejection{}, fmt.Errorf("%s: already rejected by this user: %w", what, ErrExists)
	}
	verifiers, err := tx.verifiers(ctx, searchID, faceID)
	if err != nil {
		return Rejection{}, fmt.Errorf("%s: %w", what, err)
	}
	r := Rejection{SearchID: searchID, FaceID: faceID, Verifier: verifier, Reason: reason, At: fromMS(ms(tx.now()))}
	if _, err := tx.tx.ExecContext(ctx,
		`INSERT INTO rejections (search_id, face_id, verifier, reason, at) VALUES (?, ?, ?, ?, ?)`,
		searchID, faceID, verifier, reason, ms(r.At)); err != nil {
		return Rejection{}, fmt.Errorf("%s: %w", what, err)
	}
	detail, err := json.Marshal(struct {
		Face          int64  `json:"face"`
		Reason        string `json:"reason"`
		Confirmations int    `json:"confirmations"` // no longer counted
	}{faceID, reason, len(verifiers)})
	if err != nil {
		return Rejection{}, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{At: r.At, Actor: verifier, Action: "search.reject",
		Object: fmt.Sprintf("search/%d", searchID), Detail: detail}); err != nil {
		return Rejection{}, fmt.Errorf("%s: %w", what, err)
	}
	return r, nil
}

// rejections returns the rejections of face faceID of search searchID, in
// the order they were made, inside the transaction.
func (tx *Tx) rejections(ctx context.Context, searchID, faceID int64) ([]Rejection, error) {
	rows, err := tx.tx.QueryContext(ctx, `
SELECT search_id, face_id, verifier, reason, at FROM rejections WHERE search_id = ? AND face_id = ? ORDER BY at, `+tx.tx.d.insertOrder(""),
		searchID, faceID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanRejection)
}

func scanRejection(sc scanner) (Rejection, error) {
	var r Rejection
	var at int64
	err := sc.Scan(&r.SearchID, &r.FaceID, &r.Verifier, &r.Reason, &at)
	r.At = fromMS(at)
	return r, err
}

// Rejections returns the rejections of the results of search searchID by
// face id, each face's in the order they were made: only rejected faces
// are present. A search without rejections gives an empty map; a missing
// search fails with ErrNotFound.
func (db *DB) Rejections(ctx context.Context, searchID int64) (map[int64][]Rejection, error) {
	what := fmt.Sprintf("rejections of search %d", searchID)
	var exists bool
	if err := db.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM searches WHERE id = ?)`, searchID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !exists {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	rows, err := db.r.QueryContext(ctx, `
SELECT search_id, face_id, verifier, reason, at FROM rejections WHERE search_id = ? ORDER BY face_id, at, `+db.d.insertOrder(""), searchID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	list, err := collect(rows, scanRejection)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make(map[int64][]Rejection)
	for _, r := range list {
		out[r.FaceID] = append(out[r.FaceID], r)
	}
	return out, nil
}

// verifiers returns who confirmed face faceID of search searchID, in the
// order they confirmed, inside the transaction.
func (tx *Tx) verifiers(ctx context.Context, searchID, faceID int64) ([]string, error) {
	rows, err := tx.tx.QueryContext(ctx, `
SELECT verifier FROM confirmations WHERE search_id = ? AND face_id = ? ORDER BY at, `+tx.tx.d.insertOrder(""), searchID, faceID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(sc scanner) (string, error) {
		var v string
		err := sc.Scan(&v)
		return v, err
	})
}

// Confirmations returns the confirmations of the results of search
// searchID by face id: only faces confirmed at least once are present, each
// with its verifiers in the order they confirmed; a face also rejected is
// marked Rejected and is not Identified (see Rejections for the reasons). A search without
// confirmations gives an empty map; a missing search fails with
// ErrNotFound.
func (db *DB) Confirmations(ctx context.Context, searchID int64) (map[int64]Confirmation, error) {
	what := fmt.Sprintf("confirmations of search %d", searchID)
	rows, err := db.r.QueryContext(ctx, `
SELECT c.face_id, c.verifier, EXISTS (SELECT 1 FROM rejections r WHERE r.search_id = c.search_id AND r.face_id = c.face_id)
FROM searches s LEFT JOIN confirmations c ON c.search_id = s.id
WHERE s.id = ? ORDER BY c.face_id, c.at, `+db.d.insertOrder("c."), searchID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	type pair struct {
		face     sql.NullInt64
		verifier sql.NullString
		rejected sql.NullBool
	}
	pairs, err := collect(rows, func(sc scanner) (pair, error) {
		var p pair
		err := sc.Scan(&p.face, &p.verifier, &p.rejected)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	out := make(map[int64]Confirmation)
	for _, p := range pairs {
		if !p.face.Valid {
			continue // the search exists and has no confirmation
		}
		c := out[p.face.Int64]
		c.SearchID, c.FaceID = searchID, p.face.Int64
		c.Verifiers = append(c.Verifiers, p.verifier.String)
		c.Rejected = p.rejected.Bool
		c.Identified = len(c.Verifiers) >= ConfirmationsRequired && !c.Rejected
		out[p.face.Int64] = c
	}
	return out, nil
}
