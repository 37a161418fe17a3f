package dsr

import (
	"fmt"
	"slices"
	"strings"
)

// IdentityMethod is one way a controller may establish that the requester
// is the person whose data a request concerns (GDPR Art. 12(6): the
// controller may ask for what it needs to confirm the identity, and no
// more). The DPO records which method established it before any data is
// handed over or changed.
type IdentityMethod struct {
	ID    string `json:"id"`    // stable name, recorded with the request
	Label string `json:"label"` // what the DPO records
	// Public says, to the person, what they may be asked; empty: the
	// method is not offered as an example on the portal.
	Public string `json:"public,omitempty"`
	// NoteRequired: the method means little without the DPO's note
	// (which document, which account, who saw the person).
	NoteRequired bool `json:"note_required,omitempty"`
}

// DefaultIdentityMethods are the methods offered when the controller
// declares none (records.json, "identity_methods").
func DefaultIdentityMethods() []IdentityMethod {
	return []IdentityMethod{
		{ID: "id-document", Label: "an identity document was seen and matches the selfies",
			Public: "an identity document, shown or sent as a copy (it is not kept)"},
		{ID: "known-account", Label: "the contact is that of a known customer or account holder",
			Public: "a confirmation through an account or contact the controller already knows you by"},
		{ID: "in-person", Label: "the person came in person", Public: "coming in person"},
		{ID: "other", Label: "other (say how in the note)", NoteRequired: true},
	}
}

// CheckIdentityMethods reports a list of methods that cannot be offered:
// empty, or a method without an id or label, or two with one id.
func CheckIdentityMethods(ms []IdentityMethod) error {
	if len(ms) == 0 {
		return fmt.Errorf("identity methods: none declared: %w", ErrInvalid)
	}
	seen := map[string]bool{}
	for i, m := range ms {
		if strings.TrimSpace(m.ID) == "" || strings.TrimSpace(m.Label) == "" {
			return fmt.Errorf("identity method %d: id and label required: %w", i+1, ErrInvalid)
		}
		if seen[m.ID] {
			return fmt.Errorf("identity method %q declared twice: %w", m.ID, ErrInvalid)
		}
		seen[m.ID] = true
	}
	return nil
}

// FindIdentityMethod returns the method of ms with id, or false.
func FindIdentityMethod(ms []IdentityMethod, id string) (IdentityMethod, bool) {
	i := slices.IndexFunc(ms, func(m IdentityMethod) bool { return m.ID == id })
	if i < 0 {
		return IdentityMethod{}, false
	}
	return ms[i], true
}
