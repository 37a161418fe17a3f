package store

import (
	"bytes"
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

// The rights register keeps dsr.Request values: dsr owns their rules, the
// store checks every write against them (dsr.Request.Validate on create,
// dsr.CheckUpdate on update) and records each change in the audit log, in
// the same transaction, under the object "rights/ID". Audit details hold the
// kind, states, deadlines and counts, never the contact, the free-text
// reasons (the audit log cannot be erased) or anything biometric.

// CreateRightsRequest registers a rights request; see Tx.CreateRightsRequest.
func (db *DB) CreateRightsRequest(ctx context.Context, r dsr.Request, actor string) (id int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		id, err = tx.CreateRightsRequest(ctx, r, actor)
		return err
	})
	return id, err
}

// CreateRightsRequest registers r (made by dsr.NewRequest) in the rights
// register, appends the audit entry "rights.received" by actor, and returns
// the request's id (r.ID is ignored). r.Received is when the request reached
// the controller, which may be before it is registered: the deadline runs
// from receipt. r must pass dsr.Request.Validate and be in state received;
// otherwise, or when actor is blank, it fails with ErrInvalid.
func (tx *Tx) CreateRightsRequest(ctx context.Context, r dsr.Request, actor string) (int64, error) {
	r.ID = 0
	if strings.TrimSpace(actor) == "" {
		return 0, fmt.Errorf("create rights request: actor required: %w", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("create rights request: %w: %w", ErrInvalid, err)
	}
	if r.State != dsr.Received {
		return 0, fmt.Errorf("create rights request: state %s, want %s: %w", r.State, dsr.Received, ErrInvalid)
	}
	matches, result, err := encodeRightsData(r)
	if err != nil {
		return 0, fmt.Errorf("create rights request: %w", err)
	}
	var id int64
	err = tx.tx.QueryRowContext(ctx, `
INSERT INTO rights_requests (kind, state, contact, zone, received_at, due_at, matched_faces, result)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.Kind, r.State, r.Contact, r.Zone, ms(r.Received), ms(r.Due), matches, result).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create rights request: %w", err)
	}
	r.ID = id
	detail, err := json.Marshal(struct {
		Kind     dsr.Kind `json:"kind"`
		Received string   `json:"received"`
		Due      string   `json:"due"`
	}{r.Kind, auditTime(r.Received), auditTime(r.Due)})
	if err != nil {
		return 0, fmt.Errorf("create rights request: %w", err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{Actor: actor, Action: "rights." + string(dsr.Received),
		Object: rightsObject(id), Detail: detail}); err != nil {
		return 0, fmt.Errorf("create rights request: %w", err)
	}
	return id, nil
}

// UpdateRightsRequest changes a rights request; see Tx.UpdateRightsRequest.
func (db *DB) UpdateRightsRequest(ctx context.Context, id int64, actor string, fn func(r *dsr.Request, now time.Time) error) (r dsr.Request, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		r, err = tx.UpdateRightsRequest(ctx, id, actor, fn)
		return err
	})
	return r, err
}

// UpdateRightsRequest reads request id, lets fn change it (now is the store
// clock), checks the change with dsr.CheckUpdate (one Advance or one
// Extend at most, Matches and Result free while the request is open),
// writes it and returns the request as stored. A state change appends the
// audit entry "rights.STATE" by actor ("rights.extended" for an extension);
// a change of Matches or Result alone appends "rights.update". When fn
// changes nothing nothing is written. fn runs inside the write transaction:
// it must be quick and must not write to the DB (send notices before or
// after, not inside). An error from fn is returned and nothing is written.
// A missing request fails with ErrNotFound; a blank actor, a Result that is
// not JSON, or a change that dsr rejects (in fn or in CheckUpdate) with
// ErrInvalid, together with dsr's own sentinel (dsr.ErrIllegalTransition,
// dsr.ErrTooLate, dsr.ErrAlreadyExtended, dsr.ErrInvalid). Empty Matches
// come back nil.
func (tx *Tx) UpdateRightsRequest(ctx context.Context, id int64, actor string, fn func(r *dsr.Request, now time.Time) error) (dsr.Request, error) {
	what := fmt.Sprintf("update rights request %d", id)
	if strings.TrimSpace(actor) == "" {
		return dsr.Request{}, fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	row := tx.tx.QueryRowContext(ctx, `SELECT `+rightsColumns+` FROM rights_requests WHERE id = ?`, id)
	old, err := one(row, scanRightsRequest, what)
	if err != nil {
		return dsr.Request{}, err
	}
	next := old
	next.Matches = slices.Clone(old.Matches)
	next.Result = bytes.Clone(old.Result)
	now := tx.now()
	if err := fn(&next, now); err != nil {
		return dsr.Request{}, fmt.Errorf("%s: %w", what, invalidIfDSR(err))
	}
	if err := dsr.CheckUpdate(old, next); err != nil {
		return dsr.Request{}, fmt.Errorf("%s: %w", what, invalidIfDSR(err))
	}
	matches, result, err := encodeRightsData(next)
	if err != nil {
		return dsr.Request{}, fmt.Errorf("%s: %w", what, err)
	}
	stateChanged := next.State != old.State
	dataChanged := matches != encodeMatches(old.Matches) || result != encodeResult(old.Result)
	if !stateChanged && !dataChanged {
		return old, nil
	}
	var extendedFrom any
	if next.Extended {
		extendedFrom = string(next.ExtendedFrom)
	}
	if _, err := tx.tx.ExecContext(ctx, `
UPDATE rights_requests SET state = ?, extended_from = ?, extended_due_at = ?, extend_reason = ?,
	notice_sent_at = ?, reason = ?, closed_at = ?, matched_faces = ?, result = ?
WHERE id = ?`,
		next.State, extendedFrom, nullMS(next.ExtendedDue), next.ExtendReason,
		nullMS(next.NoticeSentAt), next.Reason, nullMS(next.Closed), matches, result, id); err != nil {
		return dsr.Request{}, fmt.Errorf("%s: %w", what, err)
	}

	action := "rights.update"
	if stateChanged {
		action = "rights." + string(next.State)
	}
	var d rightsDetail
	d.Kind = next.Kind
	d.Matches = len(next.Matches)
	d.Result = next.Result != nil
	if stateChanged {
		d.From, d.To = old.State, next.State
		d.Deadline = auditTime(next.Deadline())
	}
	if next.Extended && !old.Extended {
		d.ExtendedDue = auditTime(next.ExtendedDue)
		d.NoticeSent = auditTime(next.NoticeSentAt)
	}
	if next.State.Final() && stateChanged {
		late := next.Late()
		d.Late = &late
	}
	detail, err := json.Marshal(d)
	if err != nil {
		return dsr.Request{}, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{At: now, Actor: actor, Action: action,
		Object: rightsObject(id), Detail: detail}); err != nil {
		return dsr.Request{}, fmt.Errorf("%s: %w", what, err)
	}
	return tx.rightsRequest(ctx, id)
}

// rightsDetail is the audit detail of a change to a rights request: no
// contact, no free text, nothing biometric.
type rightsDetail struct {
	Kind        dsr.Kind  `json:"kind"`
	From        dsr.State `json:"from,omitempty"`
	To          dsr.State `json:"to,omitempty"`
	Deadline    string    `json:"deadline,omitempty"`     // the deadline in force after the change
	ExtendedDue string    `json:"extended_due,omitempty"` // set by an extension
	NoticeSent  string    `json:"notice_sent,omitempty"`  // set by an extension
	Late        *bool     `json:"late,omitempty"`         // on closing: after the deadline in force
	Matches     int       `json:"matches"`                // how many faces matched, not which
	Result      bool      `json:"result"`                 // whether a result is recorded
}

// RightsRequest returns the rights request with the given id, or
// ErrNotFound.
func (db *DB) RightsRequest(ctx context.Context, id int64) (dsr.Request, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+rightsColumns+` FROM rights_requests WHERE id = ?`, id)
	return one(row, scanRightsRequest, fmt.Sprintf("rights request %d", id))
}

// rightsRequest reads request id inside the transaction.
func (tx *Tx) rightsRequest(ctx context.Context, id int64) (dsr.Request, error) {
	row := tx.tx.QueryRowContext(ctx, `SELECT `+rightsColumns+` FROM rights_requests WHERE id = ?`, id)
	return one(row, scanRightsRequest, fmt.Sprintf("rights request %d", id))
}

// RightsRequests returns the rights register: every request, open or
// closed, in id order.
func (db *DB) RightsRequests(ctx context.Context) ([]dsr.Request, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+rightsColumns+` FROM rights_requests ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("rights requests: %w", err)
	}
	out, err := collect(rows, scanRightsRequest)
	if err != nil {
		return nil, fmt.Errorf("rights requests: %w", err)
	}
	return out, nil
}

const rightsColumns = `id, kind, state, contact, zone, received_at, due_at, extended_from, extended_due_at,
	extend_reason, notice_sent_at, reason, closed_at, matched_faces, result`

func scanRightsRequest(sc scanner) (dsr.Request, error) {
	var r dsr.Request
	var received, due int64
	var extendedFrom, result sql.NullString
	var extendedDue, notice, closed sql.NullInt64
	var matches string
	if err := sc.Scan(&r.ID, &r.Kind, &r.State, &r.Contact, &r.Zone, &received, &due, &extendedFrom, &extendedDue,
		&r.ExtendReason, &notice, &r.Reason, &closed, &matches, &result); err != nil {
		return dsr.Request{}, err
	}
	r.Received, r.Due = fromMS(received), fromMS(due)
	r.Extended = extendedFrom.Valid
	r.ExtendedFrom = dsr.State(extendedFrom.String)
	r.ExtendedDue, r.NoticeSentAt, r.Closed = fromNullMS(extendedDue), fromNullMS(notice), fromNullMS(closed)
	if err := json.Unmarshal([]byte(matches), &r.Matches); err != nil {
		return dsr.Request{}, fmt.Errorf("matched faces: %w", err)
	}
	if len(r.Matches) == 0 {
		r.Matches = nil
	}
	if result.Valid {
		r.Result = json.RawMessage(result.String)
	}
	return r, nil
}

// encodeRightsData returns the stored forms of r's matches (a JSON array)
// and result (compact JSON, NULL when empty). A result that is not JSON
// fails with ErrInvalid.
func encodeRightsData(r dsr.Request) (matches string, result sql.NullString, err error) {
	if len(r.Result) > 0 && !json.Valid(r.Result) {
		return "", sql.NullString{}, fmt.Errorf("result is not JSON: %w", ErrInvalid)
	}
	return encodeMatches(r.Matches), encodeResult(r.Result), nil
}

func encodeMatches(ids []int64) string {
	if len(ids) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ids) // []int64 always marshals
	return string(b)
}

// encodeResult compacts a valid JSON result; empty is NULL.
func encodeResult(res json.RawMessage) sql.NullString {
	if len(res) == 0 {
		return sql.NullString{}
	}
	var b bytes.Buffer
	if err := json.Compact(&b, res); err != nil {
		return sql.NullString{String: string(res), Valid: true} // rejected by encodeRightsData before use
	}
	return sql.NullString{String: b.String(), Valid: true}
}

// rightsObject is the audit object of request id.
func rightsObject(id int64) string { return fmt.Sprintf("rights/%d", id) }

// auditTime formats t for an audit detail: RFC 3339 in UTC, milliseconds.
func auditTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// invalidIfDSR adds ErrInvalid to an error of dsr's validation, so that
// callers can test either package's sentinels.
func invalidIfDSR(err error) error {
	for _, s := range []error{dsr.ErrInvalid, dsr.ErrIllegalTransition, dsr.ErrTooLate, dsr.ErrAlreadyExtended} {
		if errors.Is(err, s) && !errors.Is(err, ErrInvalid) {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return err
}
