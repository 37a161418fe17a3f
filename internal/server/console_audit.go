package server

import (
	"net/http"

	"gabarit/internal/app"
	"gabarit/internal/records"
)

// auditPerPage is how many audit entries a page shows.
const auditPerPage = 50

// auditBody is the audit page: the chain's verification, then a page of
// entries, newest first.
type auditBody struct {
	Verification app.Verification
	Entries      []app.AuditView
	Older        int64 // ?before= of the next page; 0: none
	Newer        int64 // ?before= of the previous page; 0: the newest page; -1: none
}

// pageAudit verifies the audit chain and shows its latest entries
// (?before=ID: the entries before ID).
func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	before, err := beforeParam(r)
	if err != nil {
		return err
	}
	v, err := app.VerifyAudit(ctx, s.cfg.Data.DB)
	if err != nil {
		return err
	}
	head := v.Entries
	if !v.OK || head == 0 {
		// A tampered chain may not name its head: find it in the log.
		if head, err = s.cfg.Data.DB.AuditHeadID(ctx); err != nil {
			return err
		}
	}
	if before == 0 || before > head+1 {
		before = head + 1
	}
	b := auditBody{Verification: v, Newer: -1}
	from := max(1, before-auditPerPage)
	es, err := s.cfg.Data.DB.AuditEntries(ctx, from, before-1)
	if err != nil {
		return err
	}
	for i := len(es) - 1; i >= 0; i-- {
		b.Entries = append(b.Entries, app.NewAuditView(es[i]))
	}
	if from > 1 {
		b.Older = from
	}
	switch n := before + auditPerPage; {
	case before > head:
	case n > head:
		b.Newer = 0
	default:
		b.Newer = n
	}
	d := s.newPage(r, p, "Audit log", b)
	return s.render(w, http.StatusOK, "audit", d)
}

// pageRecords shows the record of processing activities (GDPR Art. 30).
func (s *Server) pageRecords(w http.ResponseWriter, r *http.Request, p *principal) error {
	rec, err := app.BuildRecords(r.Context(), s.cfg.Data, s.cfg.Now())
	if err != nil {
		return err
	}
	d := s.newPage(r, p, "Records of processing", recordsBody{Record: rec, NotDeclared: records.NotDeclared})
	return s.render(w, http.StatusOK, "records", d)
}

type recordsBody struct {
	records.Record
	NotDeclared string
}

// pageAuthorityExport sends the package for a supervisory authority, as
// the API does, from a form of the records page.
func (s *Server) pageAuthorityExport(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.apiAuthorityExport(w, r, p)
}
