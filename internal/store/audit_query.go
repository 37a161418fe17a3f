package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sizes of one QueryAudit page.
const (
	DefaultAuditLimit = 100  // entries a page holds when the caller names no limit
	MaxAuditLimit     = 1000 // the most entries one QueryAudit call returns
)

// AuditFilter selects audit entries for QueryAudit. Zero fields select
// everything; the filters combine (AND).
type AuditFilter struct {
	Actor string // who acted (exactly)
	// Action is an action exactly ("rights.erasure"), or, ending in "." or
	// "*", every action that starts with what comes before the "*"
	// ("rights." or "rights.*": every rights action). Actions are made of
	// ASCII letters, digits, ".", "-" and "_".
	Action string
	// Case selects the entries about the searches of this case reference
	// (exactly): each search and its confirmations and rejections (object
	// "search/ID").
	Case   string
	From   time.Time // entries at or after From
	To     time.Time // entries before To
	FromID int64     // entries with id ≥ FromID (0: from the first)
	ToID   int64     // entries with id ≤ ToID (0: to the last)
	// Before and After are the paging cursors (0: none). With Before, the
	// page holds the newest entries with a smaller id; with After, the
	// oldest entries with a larger id. Either way the page is returned
	// newest first.
	Before int64
	After  int64
	Limit  int // the most entries returned, 1 to MaxAuditLimit
}

// Prefix reports whether f.Action selects every action starting with
// prefix, rather than one action.
func (f AuditFilter) Prefix() (prefix string, ok bool) {
	switch {
	case strings.HasSuffix(f.Action, "*"):
		return strings.TrimSuffix(f.Action, "*"), true
	case strings.HasSuffix(f.Action, "."):
		return f.Action, true
	}
	return "", false
}

// ParseAuditBound reads the start (end false) or end (end true) of a
// period of the audit log, as a person writes it: an entry id (a whole
// number ≥ 1, for FromID or ToID), a date (2006-01-02: its midnight UTC,
// or for an end the next midnight, so that the period includes the day) or
// an RFC 3339 time (for From or To). "" is neither. Anything else fails
// with ErrInvalid.
func ParseAuditBound(v string, end bool) (id int64, t time.Time, err error) {
	if v == "" {
		return 0, time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 1 {
			return 0, time.Time{}, fmt.Errorf("entry %d: ids start at 1: %w", n, ErrInvalid)
		}
		return n, time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return 0, t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return 0, t, nil
	}
	return 0, time.Time{}, fmt.Errorf("%q: want a date (2006-01-02), an RFC 3339 time or an entry id: %w", v, ErrInvalid)
}

// validAction reports whether s is made of the characters of actions.
func validAction(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// check returns what is wrong with f, wrapping ErrInvalid, or nil.
func (f AuditFilter) check() error {
	action := f.Action
	if p, ok := f.Prefix(); ok {
		action = p
	}
	switch {
	case f.Limit < 1 || f.Limit > MaxAuditLimit:
		return fmt.Errorf("limit %d, want 1..%d: %w", f.Limit, MaxAuditLimit, ErrInvalid)
	case !validAction(action):
		return fmt.Errorf("action %q: want letters, digits, '.', '-' or '_', with a trailing '*' for a prefix: %w", f.Action, ErrInvalid)
	case !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From):
		return fmt.Errorf("the end of the period is not after its start: %w", ErrInvalid)
	case f.FromID < 0 || f.ToID < 0 || f.Before < 0 || f.After < 0:
		return fmt.Errorf("entry ids are ≥ 1: %w", ErrInvalid)
	case f.FromID > 0 && f.ToID > 0 && f.ToID < f.FromID:
		return fmt.Errorf("entry %d comes before entry %d: %w", f.ToID, f.FromID, ErrInvalid)
	}
	return nil
}

// QueryAudit returns a page of the audit entries f selects, newest first
// (by id): the newest ones, those before f.Before or those just after
// f.After. To page back, call again with Before set to the id of the
// oldest entry returned; to page forward, with After set to the id of the
// newest. An invalid filter (a Limit out of 1..MaxAuditLimit, a To not
// after From, an action with other characters) fails with ErrInvalid.
func (db *DB) QueryAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	q, args := auditQuery(f)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	if f.After > 0 {
		slices.Reverse(out)
	}
	return out, nil
}

// AuditActions returns the distinct actions in the audit log, in
// alphabetical order.
func (db *DB) AuditActions(ctx context.Context) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT DISTINCT action FROM audit ORDER BY action`)
	if err != nil {
		return nil, fmt.Errorf("audit actions: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (string, error) {
		var a string
		err := sc.Scan(&a)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("audit actions: %w", err)
	}
	return out, nil
}

// auditQuery returns the SQL query of QueryAudit for the valid filter f,
// and its arguments.
func auditQuery(f AuditFilter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if p, ok := f.Prefix(); ok {
		if p != "" {
			// A range, so that the index on action serves it: p's last
			// character is ASCII (checked), so incrementing it bounds
			// every string that starts with p.
			add("action >= ? AND action < ?", p, p[:len(p)-1]+string(p[len(p)-1]+1))
		}
	} else if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Case != "" {
		add("object IN (SELECT 'search/' || id FROM searches WHERE case_ref = ?)", f.Case)
	}
	if !f.From.IsZero() {
		add("at >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		add("at < ?", ms(f.To))
	}
	if f.FromID > 0 {
		add("id >= ?", f.FromID)
	}
	if f.ToID > 0 {
		add("id <= ?", f.ToID)
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	if f.After > 0 {
		add("id > ?", f.After)
	}
	q := `SELECT id, at, actor, action, object, detail, prev_hash, hash FROM audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	order := "DESC"
	if f.After > 0 {
		order = "ASC"
	}
	q += ` ORDER BY id ` + order + ` LIMIT ?`
	return q, append(args, f.Limit)
}

// scanAudit scans the columns id, at, actor, action, object, detail,
// prev_hash, hash of an audit row.
func scanAudit(sc scanner) (AuditEntry, error) {
	var e AuditEntry
	var at int64
	var detail string
	var prevHash, hash []byte
	if err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &detail, &prevHash, &hash); err != nil {
		return e, err
	}
	e.At, e.Detail = fromMS(at), json.RawMessage(detail)
	copy(e.PrevHash[:], prevHash)
	copy(e.Hash[:], hash)
	return e, nil
}
