package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// Verification names where the human verification of a search's results
// stands, as a filter of ListSearches (a search "has" such results) and as
// the one state a list shows (SearchSummary.State).
type Verification string

// Verification states.
const (
	// VerifyUnverified: the search returned faces and no verifier has
	// confirmed or rejected any of them yet.
	VerifyUnverified Verification = "unverified"
	// VerifyPending: a result is confirmed by fewer verifiers than
	// ConfirmationsRequired, and not rejected: it awaits another verifier.
	VerifyPending Verification = "pending"
	// VerifyConfirmed: a result is identified (confirmed by
	// ConfirmationsRequired verifiers, rejected by none).
	VerifyConfirmed Verification = "confirmed"
	// VerifyRejected: a verifier rejected a result.
	VerifyRejected Verification = "rejected"
	// VerifyNoMatch: the search returned nothing; there is nothing to
	// verify. A state only, not a filter.
	VerifyNoMatch Verification = "no_match"
	// VerifyErased: the search returned faces, none of them is held any
	// more (erased or purged since), and none was identified or rejected
	// before: there is nothing left to verify. A state only, not a filter.
	VerifyErased Verification = "erased"
)

// ParseVerification returns the filter named s ("" for none); other names
// fail with ErrInvalid.
func ParseVerification(s string) (Verification, error) {
	switch v := Verification(s); v {
	case "", VerifyUnverified, VerifyPending, VerifyConfirmed, VerifyRejected:
		return v, nil
	}
	return "", fmt.Errorf("verification state %q: want unverified, pending, confirmed or rejected: %w", s, ErrInvalid)
}

// SearchFilter selects searches for ListSearches. Zero fields select
// everything.
type SearchFilter struct {
	Actor string       // who ran them (exactly)
	Case  string       // their case reference (exactly)
	State Verification // searches with results in this state ("": any)
	From  time.Time    // run at or after From
	To    time.Time    // run before To
	// Before is the paging cursor: only searches with a smaller id (0:
	// from the newest).
	Before int64
	Limit  int // the most searches returned, 1 to MaxSearchList
}

// MaxSearchList is the most searches one ListSearches call returns.
const MaxSearchList = 1000

// SearchSummary is a recorded search, without its probe crop, with the
// state of its verification.
type SearchSummary struct {
	Search
	Identified int // results identified (two confirmations, no rejection)
	Pending    int // results confirmed once, not rejected: awaiting a second verifier
	Rejected   int // results a verifier rejected
	// Held counts the returned faces still held: the others were erased
	// or purged since the search and can be neither seen nor verified.
	Held int
}

// State is the search's verification at a glance: confirmed when a result
// is identified, else pending when a held one awaits a second verifier,
// else rejected when a verifier rejected one, else unverified while a
// returned face is still held, else erased when every returned face is
// gone; no_match when the search returned nothing. ListSearches' State
// filter selects by the same rule.
func (s SearchSummary) State() Verification {
	switch {
	case s.Identified > 0:
		return VerifyConfirmed
	case s.Pending > 0:
		return VerifyPending
	case s.Rejected > 0:
		return VerifyRejected
	case s.Held > 0:
		return VerifyUnverified
	case len(s.Returned) > 0:
		return VerifyErased
	}
	return VerifyNoMatch
}

// heldFaces counts the faces a search row s returned that are still held.
func (d dialect) heldFaces() string {
	return `(SELECT count(*) FROM ` + d.jsonInt64s("s.returned") + ` j WHERE EXISTS (SELECT 1 FROM faces f WHERE f.id = j.value))`
}

// listColumns are searchColumns without the probe crop, which lists do
// not need.
var listColumns = strings.Replace(prefixed("s.", searchColumns), "s.probe_crop", "NULL", 1)

// ListSearches returns the searches f selects, newest first (by id), with
// their verification counts: the history of searches, for investigators
// (their own), verifiers and auditors. A Limit out of 1..MaxSearchList, a
// To not after From, or an unknown State fails with ErrInvalid.
func (db *DB) ListSearches(ctx context.Context, f SearchFilter) ([]SearchSummary, error) {
	if _, err := ParseVerification(string(f.State)); err != nil {
		return nil, fmt.Errorf("list searches: %w", err)
	}
	switch {
	case f.Limit < 1 || f.Limit > MaxSearchList:
		return nil, fmt.Errorf("list searches: limit %d, want 1..%d: %w", f.Limit, MaxSearchList, ErrInvalid)
	case !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From):
		return nil, fmt.Errorf("list searches: the end of the period is not after its start: %w", ErrInvalid)
	}
	before := f.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	where := []string{"s.id < ?"}
	args := []any{before}
	if f.Actor != "" {
		where, args = append(where, "s.actor = ?"), append(args, f.Actor)
	}
	if f.Case != "" {
		where, args = append(where, "s.case_ref = ?"), append(args, f.Case)
	}
	if !f.From.IsZero() {
		where, args = append(where, "s.at >= ?"), append(args, ms(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "s.at < ?"), append(args, ms(f.To))
	}
	switch f.State {
	case VerifyUnverified:
		where = append(where, "coalesce(v.identified, 0) = 0 AND coalesce(v.pending, 0) = 0 AND rj.search_id IS NULL AND "+db.d.heldFaces()+" > 0")
	case VerifyPending:
		where = append(where, "coalesce(v.pending, 0) > 0")
	case VerifyConfirmed:
		where = append(where, "coalesce(v.identified, 0) > 0")
	case VerifyRejected:
		where = append(where, "coalesce(rj.rejected, 0) > 0")
	}
	args = append(args, f.Limit)
	// Per search and face: how many verifiers confirmed it, whether one
	// rejected it and whether it is still held; then per search:
	// identified, pending (held only: a gone face can never be
	// identified) and rejected faces.
	q := `
WITH confirmed AS (
	SELECT c.search_id, c.face_id, count(*) AS n,
		EXISTS (SELECT 1 FROM rejections r WHERE r.search_id = c.search_id AND r.face_id = c.face_id) AS rejected,
		EXISTS (SELECT 1 FROM faces f WHERE f.id = c.face_id) AS held
	FROM confirmations c GROUP BY c.search_id, c.face_id
), v AS (
	SELECT search_id, sum(CASE WHEN NOT rejected AND n >= ` + fmt.Sprint(ConfirmationsRequired) + ` THEN 1 ELSE 0 END) AS identified,
		sum(CASE WHEN NOT rejected AND held AND n < ` + fmt.Sprint(ConfirmationsRequired) + ` THEN 1 ELSE 0 END) AS pending
	FROM confirmed GROUP BY search_id
), rj AS (
	SELECT search_id, count(DISTINCT face_id) AS rejected FROM rejections GROUP BY search_id
)
SELECT ` + listColumns + `, coalesce(v.identified, 0), coalesce(v.pending, 0), coalesce(rj.rejected, 0), ` + db.d.heldFaces() + `
FROM searches s LEFT JOIN v ON v.search_id = s.id LEFT JOIN rj ON rj.search_id = s.id
WHERE ` + strings.Join(where, " AND ") + `
ORDER BY s.id DESC LIMIT ?`
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list searches: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (SearchSummary, error) {
		var s SearchSummary
		var counts [4]int
		search, err := scanSearch(extraScanner{sc, []any{&counts[0], &counts[1], &counts[2], &counts[3]}})
		s.Search, s.Identified, s.Pending, s.Rejected, s.Held = search, counts[0], counts[1], counts[2], counts[3]
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list searches: %w", err)
	}
	return out, nil
}

// extraScanner scans a row with more columns than scanSearch reads: the
// extra ones go to extra.
type extraScanner struct {
	sc    scanner
	extra []any
}

func (e extraScanner) Scan(dest ...any) error { return e.sc.Scan(append(dest, e.extra...)...) }

// SearchSummary returns one search's summary (without its probe crop), or
// ErrNotFound.
func (db *DB) SearchSummary(ctx context.Context, id int64) (SearchSummary, error) {
	list, err := db.ListSearches(ctx, SearchFilter{Before: id + 1, Limit: 1})
	if err != nil {
		return SearchSummary{}, err
	}
	if len(list) == 0 || list[0].ID != id {
		return SearchSummary{}, fmt.Errorf("search %d: %w", id, ErrNotFound)
	}
	return list[0], nil
}
