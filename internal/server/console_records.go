package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"gabarit/internal/app"
	"gabarit/internal/records"
)

// recordsBody is the records page: the record of processing, and for
// admins and the DPO the form that edits the organisation's declaration.
type recordsBody struct {
	records.Record
	NotDeclared string
	Form        recordsForm
	Fields      []recordsField // the form's fields, with their values and errors
}

// recordsField is one field of the records form.
type recordsField struct {
	Name, Label, Hint, Placeholder string
	Value                          string
	Required, List                 bool // List: a textarea, one entry a line
	Max                            int  // characters, for one-line fields
	Error                          string
}

// recordsFields are the form's fields in the order shown: the Required
// ones of records, then the optional.
func recordsFields(f recordsForm, errs records.FieldErrors) []recordsField {
	fs := []recordsField{
		{Name: records.FieldController, Label: "Controller (Art. 30(1)(a))", Value: f.Controller, Max: records.MaxText,
			Hint:        "Name, postal address and contact (e-mail or telephone) of the controller.",
			Placeholder: "e.g. Example City Police, 1 rue de la Paix, 75002 Paris, contact@police.example.org"},
		{Name: records.FieldDPO, Label: "Data protection officer", Value: f.DPO, Max: records.MaxText,
			Hint:        "Name and contact of the DPO (Art. 37(7)): an e-mail address, a telephone or a postal address.",
			Placeholder: "e.g. Jeanne Martin, dpo@police.example.org"},
		{Name: records.FieldRepresentative, Label: "Representative in the Union (Art. 27)", Value: f.Representative, Max: records.MaxText,
			Hint:        `Name and contact; write "none" if the controller is established in the Union.`,
			Placeholder: "none"},
		{Name: records.FieldAuthority, Label: "Supervisory authority", Value: f.Authority, Max: records.MaxText,
			Hint:        "The authority people may complain to, with its address or web site.",
			Placeholder: "e.g. CNIL, 3 place de Fontenoy, 75007 Paris, www.cnil.fr"},
		{Name: records.FieldTransfers, Label: "Transfers to third countries (Art. 30(1)(e))", Value: f.Transfers, Max: records.MaxLong,
			Hint:        `The countries and the safeguards of each; write "none" if results never leave the Union.`,
			Placeholder: "none"},
		{Name: records.FieldRecipients, Label: "Recipients of search results (Art. 30(1)(d))", Value: f.Recipients, List: true,
			Hint:        "One category of recipients a line.",
			Placeholder: "e.g. investigators of the city police"},
		{Name: records.FieldSecurityExtras, Label: "Organisational security measures (optional)", Value: f.SecurityExtras, List: true,
			Hint:        "Measures beyond those gabarit applies (listed below), one a line.",
			Placeholder: "e.g. server room under badge access"},
	}
	for i := range fs {
		fs[i].Required = slices.Contains(records.Required, fs[i].Name)
		fs[i].Error = errs[fs[i].Name]
	}
	return fs
}

// recordsForm is the declaration as the form shows it: lists one entry a
// line.
type recordsForm struct {
	Version                                               string
	Controller, Representative, DPO, Transfers, Authority string
	Recipients, SecurityExtras                            string
}

func toRecordsForm(org records.Organisation, version string) recordsForm {
	return recordsForm{Version: version, Controller: org.Controller, Representative: org.Representative, DPO: org.DPO,
		Transfers: org.Transfers, Authority: org.Authority,
		Recipients: strings.Join(org.Recipients, "\n"), SecurityExtras: strings.Join(org.SecurityExtras, "\n")}
}

func (f recordsForm) organisation() records.Organisation {
	return records.Organisation{Controller: f.Controller, Representative: f.Representative, DPO: f.DPO,
		Transfers: f.Transfers, Authority: f.Authority, Recipients: lines(f.Recipients), SecurityExtras: lines(f.SecurityExtras)}
}

// crlf turns a textarea's line ends, as browsers send them, into "\n".
var crlf = strings.NewReplacer("\r\n", "\n")

// lines splits a textarea's value into its lines.
func lines(s string) []string {
	return strings.Split(crlf.Replace(s), "\n")
}

// recordsPage renders the records page at status; form nil shows the
// declaration as saved.
func (s *Server) recordsPage(w http.ResponseWriter, r *http.Request, p *principal, status int, form *recordsForm, errs records.FieldErrors, msg string) error {
	rec, err := app.BuildRecords(r.Context(), s.cfg.Data, s.cfg.Now())
	if err != nil {
		return err
	}
	b := recordsBody{Record: rec, NotDeclared: records.NotDeclared}
	if form != nil {
		b.Form = *form
	} else {
		org, version, err := records.Load(s.cfg.Data.Dir)
		if err != nil {
			return err
		}
		b.Form = toRecordsForm(org, version)
	}
	b.Fields = recordsFields(b.Form, errs)
	d := s.newPage(r, p, "Records of processing", b)
	d.Notice, d.Error = noticeOf(r), msg
	return s.render(w, status, "records", d)
}

// pageRecords shows the record of processing activities (GDPR Art. 30).
func (s *Server) pageRecords(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.recordsPage(w, r, p, http.StatusOK, nil, nil, "")
}

// pageSaveRecords saves the organisation's declaration from the records
// page's form, by the API's rules.
func (s *Server) pageSaveRecords(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := r.ParseForm(); err != nil {
		return badRequest("the form cannot be read")
	}
	v := r.PostForm
	f := recordsForm{Version: v.Get("version"), Controller: v.Get("controller"), Representative: v.Get("representative"),
		DPO: v.Get("dpo"), Transfers: v.Get("transfers"), Authority: v.Get("authority"),
		Recipients: crlf.Replace(v.Get("recipients")), SecurityExtras: crlf.Replace(v.Get("security_extras"))}
	org := f.organisation()
	if errs := org.Validate(); errs != nil {
		return s.recordsPage(w, r, p, http.StatusBadRequest, &f, errs,
			"The records of processing are not saved: correct the fields marked below.")
	}
	saved, err := records.Save(r.Context(), s.cfg.Data.DB, s.cfg.Data.Dir, org, f.Version, p.actor())
	switch {
	case errors.Is(err, records.ErrStale):
		// Keep what they wrote, on the current version: the record above
		// shows the other change, to compare before saving again.
		_, version, lerr := records.Load(s.cfg.Data.Dir)
		if lerr != nil {
			return lerr
		}
		f.Version = version
		return s.recordsPage(w, r, p, http.StatusConflict, &f, nil,
			"Your changes are not saved: someone else changed the records of processing after you opened this page. "+
				"The record above shows their changes; check your changes against it, then save again.")
	case err != nil:
		return err
	}
	notice := "records-saved"
	if len(saved.Changed) == 0 {
		notice = "records-unchanged"
	}
	seeOther(w, r, "/records", notice, 0)
	return nil
}

// recordsWarning is the home page's warning to admins and the DPO while
// the organisation's declaration is incomplete or unreadable: the labels
// of the fields missing, or unreadable true.
type recordsWarning struct {
	Missing    string // "controller, DPO and supervisory authority"
	Unreadable bool
}

// homeRecordsWarning returns the warning for p, or nil when there is none
// or p is neither admin nor DPO.
func (s *Server) homeRecordsWarning(p *principal) *recordsWarning {
	if !p.user.Has(admin) && !p.user.Has(dpo) {
		return nil
	}
	org, _, err := records.Load(s.cfg.Data.Dir)
	if err != nil {
		s.log.Warn("records.json cannot be read", "err", err)
		return &recordsWarning{Unreadable: true}
	}
	missing := org.Missing()
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, len(missing))
	for i, f := range missing {
		names[i] = records.Label(f)
	}
	list := names[0]
	if n := len(names); n > 1 {
		list = strings.Join(names[:n-1], ", ") + " and " + names[n-1]
	}
	return &recordsWarning{Missing: list}
}

// pageAuthorityExport sends the package for a supervisory authority, as
// the API does, from a form of the records page.
func (s *Server) pageAuthorityExport(w http.ResponseWriter, r *http.Request, p *principal) error {
	return s.apiAuthorityExport(w, r, p)
}
