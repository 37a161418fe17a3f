package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ConfirmationsRequired is how many different verifiers must confirm a
// search result before it counts as an identification (AI Act Art. 14(5):
// verified and confirmed separately by at least two natural persons).
const ConfirmationsRequired = 2

// Confirmation is the state of one search result's verification: the
// verifiers who confirmed face FaceID as returned by search SearchID.
type Confirmation struct {
	SearchID   int64
	FaceID     int64
	Verifiers  []string // in the order they confirmed
	Identified bool     // at least ConfirmationsRequired verifiers confirmed it
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
// user with RoleVerifier, or who ran the search, with ErrForbidden; a second
// confirmation by the same verifier with ErrExists. On error nothing is
// written.
func (tx *Tx) Confirm(ctx context.Context, searchID, faceID int64, verifier string) (Confirmation, error) {
	what := fmt.Sprintf("confirm search %d face %d", searchID, faceID)
	if strings.TrimSpace(verifier) == "" {
		return Confirmation{}, fmt.Errorf("%s: verifier required: %w", what, ErrInvalid)
	}
	row := tx.tx.QueryRowContext(ctx, `SELECT `+searchColumns+` FROM searches WHERE id = ?`, searchID)
	s, err := one(row, scanSearch, what)
	if err != nil {
		return Confirmation{}, err
	}
	if !slices.Contains(s.Returned, faceID) {
		return Confirmation{}, fmt.Errorf("%s: face %d was not returned by search %d: %w", what, faceID, searchID, ErrInvalid)
	}
	var held bool
	if err := tx.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM faces WHERE id = ?)`, faceID).Scan(&held); err != nil {
		return Confirmation{}, fmt.Errorf("%s: %w", what, err)
	}
	if !held {
		// Erased or purged since the search: nobody is newly identified
		// from data that is no longer held.
		return Confirmation{}, fmt.Errorf("%s: face %d is no longer held: %w", what, faceID, ErrNotFound)
	}
	u, err := tx.user(ctx, verifier)
	switch {
	case errors.Is(err, ErrNotFound):
		return Confirmation{}, fmt.Errorf("%s: the verifier is not a registered user: %w", what, ErrForbidden)
	case err != nil:
		return Confirmation{}, fmt.Errorf("%s: %w", what, err)
	case !u.Disabled.IsZero():
		return Confirmation{}, fmt.Errorf("%s: the verifier's account is disabled: %w", what, ErrForbidden)
	case !u.Has(RoleVerifier):
		return Confirmation{}, fmt.Errorf("%s: the user does not hold the %s role: %w", what, RoleVerifier, ErrForbidden)
	case s.Actor == verifier:
		return Confirmation{}, fmt.Errorf("%s: a user cannot confirm their own search: %w", what, ErrForbidden)
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

// verifiers returns who confirmed face faceID of search searchID, in the
// order they confirmed, inside the transaction.
func (tx *Tx) verifiers(ctx context.Context, searchID, faceID int64) ([]string, error) {
	rows, err := tx.tx.QueryContext(ctx, `
SELECT verifier FROM confirmations WHERE search_id = ? AND face_id = ? ORDER BY at, rowid`, searchID, faceID)
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
// with its verifiers in the order they confirmed. A search without
// confirmations gives an empty map; a missing search fails with
// ErrNotFound.
func (db *DB) Confirmations(ctx context.Context, searchID int64) (map[int64]Confirmation, error) {
	what := fmt.Sprintf("confirmations of search %d", searchID)
	rows, err := db.r.QueryContext(ctx, `
SELECT c.face_id, c.verifier FROM searches s LEFT JOIN confirmations c ON c.search_id = s.id
WHERE s.id = ? ORDER BY c.face_id, c.at, c.rowid`, searchID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	type pair struct {
		face     sql.NullInt64
		verifier sql.NullString
	}
	pairs, err := collect(rows, func(sc scanner) (pair, error) {
		var p pair
		err := sc.Scan(&p.face, &p.verifier)
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
		c.Identified = len(c.Verifiers) >= ConfirmationsRequired
		out[p.face.Int64] = c
	}
	return out, nil
}
