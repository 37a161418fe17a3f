package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

// auditPerPage is how many audit entries a console page shows.
const auditPerPage = 50

// auditForm is the audit log's filters as given in the query (?actor=,
// action=, case=, from=, to=), kept to fill the form in again and to
// build the paging links.
type auditForm struct {
	Actor, Action, Case, From, To string
}

// Any reports whether the form selects anything less than everything.
func (f auditForm) Any() bool { return f != auditForm{} }

// values returns the form's fields that are set, as query parameters.
func (f auditForm) values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"actor", f.Actor}, {"action", f.Action}, {"case", f.Case}, {"from", f.From}, {"to", f.To}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// auditQuery reads the audit log's filters and cursors from the query of
// r: actor, action (exactly, or a prefix ending in "." or "*"), case,
// from and to (a date, the whole day for to; an RFC 3339 time; or an entry
// id), before and after (entry ids: the cursors) and limit (1 to most,
// default def). A bad parameter is a 400 naming it.
func auditQuery(r *http.Request, def, most int) (auditForm, store.AuditFilter, error) {
	q := r.URL.Query()
	form := auditForm{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Case: strings.TrimSpace(q.Get("case")), From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to"))}
	f := store.AuditFilter{Actor: form.Actor, Action: form.Action, Case: form.Case, Limit: def}
	if !auditActionChars(strings.TrimSuffix(f.Action, "*")) {
		return form, f, badRequest("action %q: want an action such as rights.erasure, or a prefix such as rights. or rights.*", form.Action)
	}
	var err error
	if f.FromID, f.From, err = auditBound("from", form.From, false); err != nil {
		return form, f, err
	}
	if f.ToID, f.To, err = auditBound("to", form.To, true); err != nil {
		return form, f, err
	}
	switch {
	case !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From):
		return form, f, badRequest("to must come after from")
	case f.FromID > 0 && f.ToID > 0 && f.ToID < f.FromID:
		return form, f, badRequest("to (entry %d) must not come before from (entry %d)", f.ToID, f.FromID)
	}
	for _, c := range []struct {
		name string
		dst  *int64
	}{{"before", &f.Before}, {"after", &f.After}} {
		v := q.Get(c.name)
		if v == "" {
			continue
		}
		if *c.dst, err = strconv.ParseInt(v, 10, 64); err != nil || *c.dst < 1 {
			return form, f, badRequest("%s %q: want an entry id ≥ 1", c.name, v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > most {
			return form, f, badRequest("limit %q: want a whole number from 1 to %d", v, most)
		}
	}
	return form, f, nil
}

// auditActionChars reports whether s is made of the characters of audit
// actions (store.AuditFilter.Action).
func auditActionChars(s string) bool {
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == ""
}

// auditBound reads the from or to parameter v (see
// store.ParseAuditBound): a date, an RFC 3339 time or an entry id.
func auditBound(name, v string, end bool) (int64, time.Time, error) {
	id, t, err := store.ParseAuditBound(v, end)
	if err != nil {
		return 0, time.Time{}, badRequest("%s %q: want a date (2006-01-02), an RFC 3339 time or an entry id ≥ 1", name, v)
	}
	return id, t, nil
}

// auditPage is one page of the audit entries a filter selects, newest
// first, with the cursors of the pages around it.
type auditPage struct {
	Entries []store.AuditEntry
	Older   int64 // ?before= of the page of older entries; 0: none
	Newer   int64 // ?after= of the page of newer entries; 0: none
}

// queryAudit returns the page f selects, and the cursors of the older and
// newer entries f selects, if any.
func (s *Server) queryAudit(ctx context.Context, f store.AuditFilter) (auditPage, error) {
	db := s.cfg.Data.DB
	// exists reports whether g selects an entry.
	exists := func(g store.AuditFilter) (bool, error) {
		g.Limit = 1
		es, err := db.QueryAudit(ctx, g)
		return len(es) > 0, err
	}
	limit := f.Limit
	// One more entry tells whether this page is the last in the direction
	// of travel, within the store's limit.
	f.Limit = min(limit+1, store.MaxAuditLimit)
	es, err := db.QueryAudit(ctx, f)
	if err != nil {
		return auditPage{}, err
	}
	more := len(es) > limit
	switch {
	case more && f.After > 0:
		es = es[1:] // the extra entry is the newest
	case more:
		es = es[:limit]
	}
	pg := auditPage{Entries: es}
	if len(es) == 0 {
		return pg, nil
	}
	newest, oldest := es[0].ID, es[len(es)-1].ID
	if len(es) == limit && f.Limit == limit { // a full page at the store's limit: ask
		g := f
		if f.After > 0 {
			g.After = newest
		} else {
			g.Before = oldest
		}
		if more, err = exists(g); err != nil {
			return pg, err
		}
	}
	older, newer := more && f.After == 0, more && f.After > 0
	if f.After > 0 {
		g := f
		g.After, g.Before = 0, oldest
		if older, err = exists(g); err != nil {
			return pg, err
		}
	}
	if f.Before > 0 {
		g := f
		g.Before, g.After = 0, newest
		if newer, err = exists(g); err != nil {
			return pg, err
		}
	}
	if older {
		pg.Older = oldest
	}
	if newer {
		pg.Newer = newest
	}
	return pg, nil
}

// auditBody is the audit page: the chain's verification, the filters,
// then a page of the entries they select, newest first.
type auditBody struct {
	Verification app.Verification
	Filter       auditForm
	Actions      []string // the actions in the log, suggested in the form
	Entries      []app.AuditView
	Older        string // URL of the page of older entries; "" when none
	Newer        string // URL of the page of newer entries; "" when none
	Newest       string // URL of the newest page, on a later page; "" on it
}

// pageAudit verifies the audit chain and shows the entries the filters
// select, newest first (?before=ID: the entries before ID; ?after=ID: those
// just after it). Bad filters show the form again with what is wrong.
func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	form, f, ferr := auditQuery(r, auditPerPage, auditPerPage)
	v, err := app.VerifyAudit(ctx, s.cfg.Data.DB, "")
	if err != nil {
		return err
	}
	b := auditBody{Verification: v, Filter: form}
	if b.Actions, err = s.cfg.Data.DB.AuditActions(ctx); err != nil {
		return err
	}
	if ferr != nil {
		var ae *apiError
		if !errors.As(ferr, &ae) {
			return ferr
		}
		d := s.newPage(r, p, "Audit log", b)
		d.Error = sentence(ae.Message)
		return s.render(w, ae.Status, "audit", d)
	}
	pg, err := s.queryAudit(ctx, f)
	if err != nil {
		return err
	}
	for _, e := range pg.Entries {
		b.Entries = append(b.Entries, app.NewAuditView(e))
	}
	link := func(cursor string, id int64) string {
		q := form.values()
		if cursor != "" {
			q.Set(cursor, strconv.FormatInt(id, 10))
		}
		if len(q) == 0 {
			return "/audit"
		}
		return "/audit?" + q.Encode()
	}
	if pg.Older > 0 {
		b.Older = link("before", pg.Older)
	}
	if pg.Newer > 0 {
		b.Newer = link("after", pg.Newer)
	}
	if f.Before > 0 || f.After > 0 {
		b.Newest = link("", 0)
	}
	d := s.newPage(r, p, "Audit log", b)
	return s.render(w, http.StatusOK, "audit", d)
}

// sentence returns msg with a capital first letter and a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}
