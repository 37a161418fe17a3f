package records

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"gabarit/internal/fsutil"
	"gabarit/internal/store"
)

// FileName is the organisation's declaration, in the data directory.
const FileName = "records.json"

// The fields of the declaration that people edit (the console's records
// page, PUT /api/v1/records), by their JSON names.
const (
	FieldController     = "controller"
	FieldRepresentative = "representative"
	FieldDPO            = "dpo"
	FieldRecipients     = "recipients"
	FieldTransfers      = "transfers"
	FieldAuthority      = "authority"
	FieldSecurityExtras = "security_extras"
)

// Fields are the editable fields, in the order forms show them. Other keys
// of records.json (identity_methods, any the code does not know) are kept
// as they are by Save.
var Fields = []string{FieldController, FieldRepresentative, FieldDPO, FieldRecipients, FieldTransfers, FieldAuthority, FieldSecurityExtras}

// Required are the fields the record prints as NOT DECLARED when they are
// empty; "none" is a declaration (no representative, no transfers).
var Required = []string{FieldController, FieldRepresentative, FieldDPO, FieldRecipients, FieldTransfers, FieldAuthority}

// labels name the fields for people.
var labels = map[string]string{
	FieldController:     "controller",
	FieldRepresentative: "representative",
	FieldDPO:            "DPO",
	FieldRecipients:     "recipients",
	FieldTransfers:      "transfers",
	FieldAuthority:      "supervisory authority",
	FieldSecurityExtras: "security measures",
}

// Label names field for people ("DPO", "supervisory authority").
func Label(field string) string {
	if l, ok := labels[field]; ok {
		return l
	}
	return field
}

// Limits of the edited values, in characters.
const (
	MaxText    = 500  // controller, representative, DPO, authority
	MaxLong    = 1000 // transfers and their safeguards
	MaxEntry   = 300  // one recipient or security measure
	MaxEntries = 30   // recipients, security measures
)

// ErrStale refuses a save based on a version of records.json that is no
// longer the file's.
var ErrStale = errors.New("the records of processing were changed by someone else since this version was read")

// FieldErrors maps a field's JSON name to what is wrong with its value, in
// words for people.
type FieldErrors map[string]string

// Error lists the fields and their errors, in field order.
func (e FieldErrors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fieldOrder(keys[i]) < fieldOrder(keys[j]) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e[k]
	}
	return "records: " + strings.Join(parts, "; ")
}

func fieldOrder(f string) int {
	if i := slices.Index(Fields, f); i >= 0 {
		return i
	}
	return len(Fields)
}

// Version identifies one content of records.json: the hex SHA-256 of its
// bytes (of no bytes when there is no file). An edit carries the version
// it was based on, so that it cannot silently undo another's.
func Version(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Load reads dir/records.json and its version; a missing file declares
// nothing.
func Load(dir string) (Organisation, string, error) {
	b, err := readFile(dir)
	if err != nil {
		return Organisation{}, "", err
	}
	org, err := parse(dir, b)
	if err != nil {
		return Organisation{}, "", err
	}
	return org, Version(b), nil
}

func readFile(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func parse(dir string, b []byte) (Organisation, error) {
	var org Organisation
	if len(b) == 0 {
		return org, nil
	}
	if err := json.Unmarshal(b, &org); err != nil {
		return org, fmt.Errorf("%s: %w", filepath.Join(dir, FileName), err)
	}
	return org, nil
}

// Missing lists the required fields o leaves empty, in field order.
func (o Organisation) Missing() []string {
	var out []string
	for _, f := range Required {
		if o.empty(f) {
			out = append(out, f)
		}
	}
	return out
}

func (o Organisation) empty(field string) bool {
	switch field {
	case FieldRecipients:
		return !slices.ContainsFunc(o.Recipients, func(s string) bool { return strings.TrimSpace(s) != "" })
	case FieldSecurityExtras:
		return !slices.ContainsFunc(o.SecurityExtras, func(s string) bool { return strings.TrimSpace(s) != "" })
	}
	return strings.TrimSpace(o.text(field)) == ""
}

func (o Organisation) text(field string) string {
	switch field {
	case FieldController:
		return o.Controller
	case FieldRepresentative:
		return o.Representative
	case FieldDPO:
		return o.DPO
	case FieldTransfers:
		return o.Transfers
	case FieldAuthority:
		return o.Authority
	}
	return ""
}

// Normalized returns o with its edited values trimmed and empty list
// entries dropped (lists are never nil).
func (o Organisation) Normalized() Organisation {
	o.Controller = strings.TrimSpace(o.Controller)
	o.Representative = strings.TrimSpace(o.Representative)
	o.DPO = strings.TrimSpace(o.DPO)
	o.Transfers = strings.TrimSpace(o.Transfers)
	o.Authority = strings.TrimSpace(o.Authority)
	o.Recipients = cleanList(o.Recipients)
	o.SecurityExtras = cleanList(o.SecurityExtras)
	return o
}

func cleanList(l []string) []string {
	out := []string{}
	for _, s := range l {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate checks the edited fields of o (normalized first): the required
// ones are declared, each value fits on one line within its length, and
// the e-mail and web addresses written in them are well formed. It
// returns nil when all is well.
func (o Organisation) Validate() FieldErrors {
	o = o.Normalized()
	errs := FieldErrors{}
	for _, f := range Required {
		if o.empty(f) {
			errs[f] = requiredMessage(f)
		}
	}
	for _, f := range []string{FieldController, FieldRepresentative, FieldDPO, FieldAuthority, FieldTransfers} {
		if _, bad := errs[f]; bad {
			continue
		}
		limit := MaxText
		if f == FieldTransfers {
			limit = MaxLong
		}
		if msg := checkValue(o.text(f), limit); msg != "" {
			errs[f] = msg
		}
	}
	for f, list := range map[string][]string{FieldRecipients: o.Recipients, FieldSecurityExtras: o.SecurityExtras} {
		if _, bad := errs[f]; bad {
			continue
		}
		if len(list) > MaxEntries {
			errs[f] = fmt.Sprintf("At most %d entries; there are %d.", MaxEntries, len(list))
			continue
		}
		for i, v := range list {
			if msg := checkValue(v, MaxEntry); msg != "" {
				errs[f] = fmt.Sprintf("Entry %d: %s", i+1, msg)
				break
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func requiredMessage(field string) string {
	switch field {
	case FieldController:
		return "Required: the controller's name, address and contact."
	case FieldRepresentative:
		return `Required: the representative in the Union (Art. 27), or "none" if the controller needs none.`
	case FieldDPO:
		return "Required: the data protection officer's name and contact."
	case FieldRecipients:
		return "Required: at least one category of recipients of search results, one a line."
	case FieldTransfers:
		return `Required: the transfers to third countries and their safeguards, or "none".`
	case FieldAuthority:
		return "Required: the supervisory authority people may complain to."
	}
	return "Required."
}

// checkValue says what is wrong with one value, or "".
func checkValue(v string, limit int) string {
	if !utf8.ValidString(v) {
		return "The text is not valid UTF-8."
	}
	if n := utf8.RuneCountInString(v); n > limit {
		return fmt.Sprintf("Too long: %d characters, at most %d.", n, limit)
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return "Write it on one line: separate its parts with commas."
	}
	for _, w := range strings.Fields(v) {
		w = strings.Trim(w, `<>()[]{},;:."'`)
		low := strings.ToLower(w)
		switch {
		case strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://"):
			if u, err := url.Parse(w); err != nil || u.Host == "" || !strings.Contains(u.Hostname(), ".") {
				return fmt.Sprintf("The web address %q is not valid: write it in full, e.g. https://www.example.org/contact.", w)
			}
		case strings.HasPrefix(low, "mailto:"):
			if !validEmail(w[len("mailto:"):]) {
				return fmt.Sprintf("The e-mail address %q is not valid: write it as name@example.org.", w)
			}
		case strings.Contains(w, "@"):
			if !validEmail(w) {
				return fmt.Sprintf("The e-mail address %q is not valid: write it as name@example.org.", w)
			}
		}
	}
	return ""
}

// validEmail reports whether s is a bare e-mail address with a domain
// name.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// Changed lists the editable fields whose values differ between a and b
// (both normalized), in field order.
func Changed(a, b Organisation) []string {
	a, b = a.Normalized(), b.Normalized()
	var out []string
	for _, f := range Fields {
		var same bool
		switch f {
		case FieldRecipients:
			same = slices.Equal(a.Recipients, b.Recipients)
		case FieldSecurityExtras:
			same = slices.Equal(a.SecurityExtras, b.SecurityExtras)
		default:
			same = a.text(f) == b.text(f)
		}
		if !same {
			out = append(out, f)
		}
	}
	return out
}

// Saved is the outcome of Save.
type Saved struct {
	Version string   // the file's version after the save
	Changed []string // the fields changed; none: nothing was written
}

// Save writes the editable fields of org into dir/records.json, if the
// file is still at version, keeping its other keys (identity_methods and
// any others) as they are. It validates org first (FieldErrors), refuses a
// stale version (ErrStale), and, when a field changed, appends an audit
// entry records.update by actor naming the changed fields, never their
// values, in the same store transaction as the write. The file is replaced
// atomically (a temporary file, synced, then renamed), keeping its mode
// (0600 for a new file). A save that changes nothing writes nothing.
func Save(ctx context.Context, db *store.DB, dir string, org Organisation, version, actor string) (Saved, error) {
	if errs := org.Validate(); errs != nil {
		return Saved{}, errs
	}
	org = org.Normalized()
	path := filepath.Join(dir, FileName)
	var out Saved
	var restore func() error
	err := db.Tx(ctx, func(tx *store.Tx) error {
		// The write transaction is held from here: another save waits, so
		// the version compared is the one replaced.
		old, err := readFile(dir)
		if err != nil {
			return err
		}
		if Version(old) != version {
			return ErrStale
		}
		cur, err := parse(dir, old)
		if err != nil {
			return err
		}
		out = Saved{Version: version, Changed: Changed(cur, org)}
		if len(out.Changed) == 0 {
			return nil
		}
		b, err := merge(path, old, org)
		if err != nil {
			return err
		}
		detail, err := json.Marshal(map[string][]string{"fields": out.Changed})
		if err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: "records.update", Object: "records", Detail: detail}); err != nil {
			return err
		}
		mode := fs.FileMode(0o600)
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
		restore = func() error {
			if old == nil {
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				return nil
			}
			return fsutil.WriteFile(path, old, mode, true)
		}
		if err := fsutil.WriteFile(path, b, mode, true); err != nil {
			return err
		}
		out.Version = Version(b)
		return nil
	})
	if err != nil {
		if restore != nil {
			// The file was replaced but the audit entry is not committed:
			// put the old file back, so that no change goes unaudited.
			if rerr := restore(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("restore %s: %w", path, rerr))
			}
		}
		return Saved{}, err
	}
	return out, nil
}

// merge sets the editable fields of org in the JSON object old, keeping
// its other keys.
func merge(path string, old []byte, org Organisation) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if len(old) > 0 {
		if err := json.Unmarshal(old, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if obj == nil { // the file holds null
			obj = map[string]json.RawMessage{}
		}
	}
	for f, v := range map[string]any{
		FieldController: org.Controller, FieldRepresentative: org.Representative, FieldDPO: org.DPO,
		FieldRecipients: org.Recipients, FieldTransfers: org.Transfers, FieldAuthority: org.Authority,
		FieldSecurityExtras: org.SecurityExtras,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		obj[f] = b
	}
	b, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
