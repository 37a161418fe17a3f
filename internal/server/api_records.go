package server

import (
	"errors"
	"net/http"

	"gabarit/internal/records"
)

// The organisation's declaration for the record of processing (GDPR Art.
// 30): controller, DPO, representative, recipients, transfers and
// supervisory authority, kept in DATA/records.json. Admins and the DPO
// edit it; each change is audited (records.update) with the names of the
// fields changed, never their values.

// declarationUpdate is the body of PUT /api/v1/records: every editable
// field (an absent one is empty) and the version it was based on.
type declarationUpdate struct {
	// Version is the hex SHA-256 of records.json as read; a PUT sends it
	// back, so that it cannot undo a change it has not seen.
	Version        string   `json:"version"`
	Controller     string   `json:"controller"`
	Representative string   `json:"representative"`
	DPO            string   `json:"dpo"`
	Recipients     []string `json:"recipients"`
	Transfers      string   `json:"transfers"`
	Authority      string   `json:"authority"`
	SecurityExtras []string `json:"security_extras"`
}

// declarationJSON is the declaration as the API answers it: the fields a
// PUT sends, and what is still missing.
type declarationJSON struct {
	declarationUpdate
	// Missing are the required fields still undeclared: the record, access
	// reports and authority exports print them as NOT DECLARED.
	Missing []string `json:"missing"`
	// Changed are the fields a PUT changed (none: nothing was written).
	Changed []string `json:"changed,omitempty"`
}

func toDeclarationJSON(org records.Organisation, version string) declarationJSON {
	org = org.Normalized()
	missing := org.Missing()
	if missing == nil {
		missing = []string{}
	}
	return declarationJSON{declarationUpdate: declarationUpdate{Version: version, Controller: org.Controller,
		Representative: org.Representative, DPO: org.DPO, Recipients: org.Recipients, Transfers: org.Transfers,
		Authority: org.Authority, SecurityExtras: org.SecurityExtras}, Missing: missing}
}

// invalidFieldsJSON is a 400 naming what is wrong with each field.
type invalidFieldsJSON struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Fields  records.FieldErrors `json:"fields"`
}

// errStaleRecords refuses a save based on an older records.json.
var errStaleRecords = newError(http.StatusConflict, "stale",
	"the records of processing were changed by someone else since you read them: read them again (GET /api/v1/records), then send your changes with the new version")

// apiDeclaration answers the organisation's declaration and its version.
func (s *Server) apiDeclaration(w http.ResponseWriter, r *http.Request, _ *principal) error {
	org, version, err := records.Load(s.cfg.Data.Dir)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDeclarationJSON(org, version))
	return nil
}

// apiSaveRecords replaces the editable fields of the declaration.
func (s *Server) apiSaveRecords(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in declarationUpdate
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	org := records.Organisation{Controller: in.Controller, Representative: in.Representative, DPO: in.DPO,
		Recipients: in.Recipients, Transfers: in.Transfers, Authority: in.Authority, SecurityExtras: in.SecurityExtras}
	errs := org.Validate()
	if in.Version == "" {
		if errs == nil {
			errs = records.FieldErrors{}
		}
		errs["version"] = "Required: the version GET /api/v1/records answered."
	}
	if errs != nil {
		s.invalidFields(w, r, errs)
		return nil
	}
	saved, err := records.Save(r.Context(), s.cfg.Data.DB, s.cfg.Data.Dir, org, in.Version, p.actor())
	if err != nil {
		var fe records.FieldErrors
		switch {
		case errors.As(err, &fe):
			s.invalidFields(w, r, fe)
			return nil
		case errors.Is(err, records.ErrStale):
			return errStaleRecords
		}
		return err
	}
	out := toDeclarationJSON(org, saved.Version)
	out.Changed = saved.Changed
	writeJSON(w, http.StatusOK, out)
	return nil
}

// invalidFields answers 400 with the error of each field.
func (s *Server) invalidFields(w http.ResponseWriter, r *http.Request, errs records.FieldErrors) {
	s.pageError(r, badRequest("invalid fields")) // counted in the metrics like any 400
	writeJSON(w, http.StatusBadRequest, invalidFieldsJSON{Code: "invalid",
		Message: "some fields are missing or not valid: see fields", Fields: errs})
}
