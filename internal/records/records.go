// Package records builds the record of processing activities (GDPR Art.
// 30(1)(a)–(g)) from the declared sources and the organisation's own
// declaration, as JSON and Markdown.
//
// Everything gabarit knows is filled in from the store: one activity per
// purpose, with its sources, legal bases, Art. 9(2) conditions,
// jurisdictions and retention periods, and the security measures the code
// applies. What only the organisation knows (its contact, its DPO and
// representative, the recipients of results, transfers) comes from an
// Organisation declaration; a field it leaves empty is printed as
// "NOT DECLARED", so that a gap is visible rather than silently absent.
package records

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/store"
)

// NotDeclared marks a field the organisation has not declared.
const NotDeclared = "NOT DECLARED"

// Organisation is what the controller declares about itself (a JSON file,
// records.json in the data directory).
type Organisation struct {
	Controller     string   `json:"controller"`      // name and contact of the controller
	Representative string   `json:"representative"`  // Art. 27 representative, if any
	DPO            string   `json:"dpo"`             // name and contact of the data protection officer
	Recipients     []string `json:"recipients"`      // categories of recipients of search results
	Transfers      string   `json:"transfers"`       // third-country transfers and their safeguards, or "none"
	Authority      string   `json:"authority"`       // the supervisory authority people may complain to
	SecurityExtras []string `json:"security_extras"` // organisational measures beyond the code's
	// IdentityMethods are how the DPO may establish a requester's
	// identity (none: dsr.DefaultIdentityMethods).
	IdentityMethods []dsr.IdentityMethod `json:"identity_methods,omitempty"`
}

// Activity is one purpose of processing and the sources declared for it.
type Activity struct {
	Purpose       string    `json:"purpose"`
	Controllers   []string  `json:"controllers"`
	LegalBases    []string  `json:"legal_bases"`
	Art9          []string  `json:"art9_conditions"`
	Jurisdictions []string  `json:"jurisdictions"`
	Sources       []Source  `json:"sources"`
	Subjects      string    `json:"categories_of_data_subjects"`
	Data          []string  `json:"categories_of_personal_data"`
	Retention     []string  `json:"erasure_time_limits"`
	Since         time.Time `json:"since"`
}

// Source is one declared source in the record.
type Source struct {
	ID          int64  `json:"id"`
	Kind        string `json:"kind"`
	Path        string `json:"path"`
	Controller  string `json:"controller"`
	LegalBasis  string `json:"legal_basis"`
	Art9        string `json:"art9_condition"`
	RetentionMS int64  `json:"retention_ms"`
	State       string `json:"state"`
	Images      int64  `json:"images"`
	Faces       int64  `json:"faces"`
}

// Record is the record of processing activities.
type Record struct {
	Generated      time.Time  `json:"generated"`
	Controller     string     `json:"controller"`
	Representative string     `json:"representative"`
	DPO            string     `json:"dpo"`
	Activities     []Activity `json:"activities"`
	Recipients     []string   `json:"recipients"`
	Transfers      string     `json:"transfers"`
	Authority      string     `json:"authority"`
	// Searches lists what each search keeps (AI Act Art. 12), whatever
	// the purpose of the sources it searched.
	Searches []string `json:"search_records"`
	Security []string `json:"security_measures"`
}

// SearchRecords lists what gabarit keeps of each search, and for how long.
var SearchRecords = []string{
	"who ran it, when, its purpose and case reference, the SHA-256 of the probe photo (never the photo), the operating point, threshold and gallery size, and every face returned with its similarity, band and expected strangers; kept with the audit log",
	"the probe face crop of each search (the face searched, cut from the probe photo), sealed with AES-256-GCM under a data key reserved for search records, shown only to the searcher, the verifiers and the auditors; erased six months after the search by the retention purge (the search's record and audit entry, which hold no image, stay)",
	"the verifiers' confirmations and rejections of its results, with the reasons of rejections; kept as long as the search record",
	"for an exploratory search below the operating point (examiner role only), its stated reason",
}

// Security lists the technical measures the code applies (Art. 32).
var Security = []string{
	"face templates encrypted at rest with AES-256-GCM under one data key per source, wrapped by a master key kept in a separate 0600 file; destroying a source's key makes its templates unreadable everywhere, backups included (crypto-shredding)",
	"templates bound to their source, face and model (authenticated data): a template copied elsewhere does not open",
	"database, key and index files readable by their owner only (mode 0600, directory 0700)",
	"append-only, hash-chained audit log of every source declaration, ingest, search and purge, with its head kept in a witness file; `gabarit audit verify` detects any change, removal or reordering",
	"every search states its purpose and is recorded with the hash of the probe, never the probe photo; only the searched face's crop is kept, sealed, for the verifiers; results below the calibrated operating point are shown only by exploratory searches of examiners, with a stated reason, and marked weak",
	"no identification without two verifiers' separate confirmations (AI Act Art. 14(5)); a result any verifier rejects is never identified",
	"images past their source's retention period deleted with their faces, templates and index entries (`gabarit purge`), audited",
	"no crawler and no URL fetching: faces enter only from declared, closed collections (AI Act Art. 5(1)(e))",
	"no image bytes, templates, names or e-mail addresses in logs",
}

// Build makes the record from the sources, their counts and the
// organisation's declaration.
func Build(now time.Time, org Organisation, srcs []store.Source, counts map[int64][2]int64) Record {
	r := Record{Generated: now.UTC(), Controller: orND(org.Controller), Representative: orND(org.Representative),
		DPO: orND(org.DPO), Recipients: org.Recipients, Transfers: orND(org.Transfers), Authority: orND(org.Authority),
		Searches: slices.Clone(SearchRecords), Security: append(slices.Clone(Security), org.SecurityExtras...)}
	if len(r.Recipients) == 0 {
		r.Recipients = []string{NotDeclared}
	}
	byPurpose := map[string]*Activity{}
	for _, s := range srcs {
		a := byPurpose[s.Purpose]
		if a == nil {
			a = &Activity{Purpose: s.Purpose, Since: s.CreatedAt,
				Subjects: "people whose faces appear in the declared collections",
				Data: []string{"facial images (the source's files, not copied: located by path)",
					"face templates (biometric data, Art. 9), encrypted", "face boxes, landmarks, detection and quality scores",
					"image hashes, sizes, dates taken and ingested", "video time codes"}}
			byPurpose[s.Purpose] = a
		}
		c := counts[s.ID]
		a.Sources = append(a.Sources, Source{ID: s.ID, Kind: string(s.Kind), Path: s.Locator, Controller: s.Controller,
			LegalBasis: string(s.LegalBasis), Art9: s.Art9Condition, RetentionMS: s.Retention.Milliseconds(),
			State: s.State.Name(), Images: c[0], Faces: c[1]})
		a.Controllers = addUnique(a.Controllers, s.Controller)
		a.LegalBases = addUnique(a.LegalBases, "Art. 6(1) "+string(s.LegalBasis))
		a.Art9 = addUnique(a.Art9, s.Art9Condition)
		a.Jurisdictions = addUnique(a.Jurisdictions, s.Jurisdiction)
		a.Retention = addUnique(a.Retention, fmt.Sprintf("%s after ingestion (source %d)", days(s.Retention), s.ID))
		if s.CreatedAt.Before(a.Since) {
			a.Since = s.CreatedAt
		}
	}
	for _, a := range byPurpose {
		r.Activities = append(r.Activities, *a)
	}
	slices.SortFunc(r.Activities, func(a, b Activity) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Purpose, b.Purpose))
	})
	return r
}

func orND(s string) string {
	if strings.TrimSpace(s) == "" {
		return NotDeclared
	}
	return s
}

func addUnique(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// Markdown writes the record for people to read.
func (r Record) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Record of processing activities (GDPR Art. 30)\n\nGenerated %s by gabarit from the declared sources.\n\n", r.Generated.Format(time.RFC3339))
	fmt.Fprintf(&b, "- **Controller** (Art. 30(1)(a)): %s\n- **Representative**: %s\n- **Data protection officer**: %s\n", r.Controller, r.Representative, r.DPO)
	fmt.Fprintf(&b, "- **Recipients** (Art. 30(1)(d)): %s\n- **Transfers to third countries** (Art. 30(1)(e)): %s\n- **Supervisory authority**: %s\n\n", strings.Join(r.Recipients, "; "), r.Transfers, r.Authority)
	if len(r.Activities) == 0 {
		b.WriteString("No source has been declared: no processing.\n\n")
	}
	for i, a := range r.Activities {
		fmt.Fprintf(&b, "## Activity %d: %s\n\n", i+1, a.Purpose)
		fmt.Fprintf(&b, "- Purpose (Art. 30(1)(b)): %s\n- Controllers of the sources: %s\n- Legal bases: %s\n- Art. 9(2) conditions: %s\n- Jurisdictions: %s\n",
			a.Purpose, strings.Join(a.Controllers, "; "), strings.Join(a.LegalBases, "; "), strings.Join(a.Art9, "; "), strings.Join(a.Jurisdictions, ", "))
		fmt.Fprintf(&b, "- Categories of data subjects (Art. 30(1)(c)): %s\n- Categories of personal data: %s\n- Erasure time limits (Art. 30(1)(f)): %s\n\n",
			a.Subjects, strings.Join(a.Data, "; "), strings.Join(a.Retention, "; "))
		b.WriteString("| source | kind | controller | basis | Art. 9 | retention | state | images | faces | path |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range a.Sources {
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %d | %d | `%s` |\n", s.ID, s.Kind, mdCell(s.Controller), s.LegalBasis,
				mdCell(s.Art9), days(time.Duration(s.RetentionMS)*time.Millisecond), s.State, s.Images, s.Faces, mdCell(s.Path))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Search records (AI Act Art. 12)\n\n")
	for _, m := range r.Searches {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	b.WriteString("\n## Security measures (Art. 30(1)(g), Art. 32)\n\n")
	for _, m := range r.Security {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell escapes a value for a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(s)
}
