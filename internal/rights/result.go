package rights

import (
	"encoding/json"

	"gabarit/internal/dsr"
)

// Result is what a completed request's result (dsr.Request.Result) holds:
// counts and hashes, never face ids but for the searches to notify. The
// fields of each kind are set only for that kind, so a view can tell an
// erasure that erased nothing from a request that erased nothing at all.
type Result struct {
	ActedOn   *int   `json:"acted_on,omitempty"` // faces in the reviewed set
	RecordSHA string `json:"record_sha256,omitempty"`

	// Access: the package.
	PackageSHA string `json:"package_sha256,omitempty"`
	Faces      *int   `json:"faces,omitempty"`
	Images     int    `json:"images,omitempty"`
	Unreadable int    `json:"unreadable_images,omitempty"`
	// UnreadableFaces (access, restriction) counts the faces in quarantine
	// when the request was acted on: their template cannot be opened, so
	// they could not be compared with the person's selfies (access) or
	// kept out by their template (restriction).
	UnreadableFaces int `json:"unreadable_faces,omitempty"`
	Searches        int `json:"searches,omitempty"`

	// Erasure and objection: what was erased, the proof, and the searches
	// whose users must be told (GDPR Art. 19).
	Erased       *int    `json:"erased,omitempty"`
	ErasedImages int     `json:"erased_images,omitempty"`
	Proof        *Proof  `json:"proof,omitempty"`
	Notify       []int64 `json:"notify_searches,omitempty"`

	// Restriction: the faces hidden.
	Restricted *int `json:"restricted_faces,omitempty"`
}

// ResultOf reads r's result; ok is false when r has none (it is open or
// was refused) or it cannot be read.
func ResultOf(r dsr.Request) (res Result, ok bool) {
	if len(r.Result) == 0 || json.Unmarshal(r.Result, &res) != nil || res.ActedOn == nil {
		return Result{}, false
	}
	return res, true
}
