package app

import (
	"encoding/json"
	"math"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/search"
)

// HitView is one result of a search, as the command line and the API show it.
type HitView struct {
	FaceID     int64      `json:"face_id"`
	ImageID    int64      `json:"image_id"`
	Locator    string     `json:"locator"`
	SourceID   int64      `json:"source_id"`
	LegalBasis string     `json:"legal_basis"`
	Similarity float64    `json:"similarity"`
	Box        [4]float64 `json:"box"` // x, y, w, h in the stored image's pixels
	TimeCodeMS *int64     `json:"time_code_ms,omitempty"`
}

// SearchView is the answer to a search.
type SearchView struct {
	Results    []HitView `json:"results"`
	Match      bool      `json:"match"`
	Threshold  float64   `json:"threshold"`
	SearchID   int64     `json:"search_id"`
	AuditID    int64     `json:"audit_id"`
	ProbeFaces int       `json:"probe_faces"`
}

// NewSearchView converts the result of a search run at threshold.
func NewSearchView(res search.Result, threshold float64) SearchView {
	out := SearchView{Results: make([]HitView, len(res.Hits)), Match: len(res.Hits) > 0, Threshold: threshold,
		SearchID: res.SearchID, AuditID: res.AuditID, ProbeFaces: res.ProbeFaces}
	for i, hit := range res.Hits {
		j := HitView{FaceID: hit.FaceID, ImageID: hit.ImageID, Locator: hit.Locator, SourceID: hit.SourceID,
			LegalBasis: string(hit.LegalBasis), Similarity: math.Round(hit.Similarity*1e4) / 1e4,
			Box: [4]float64{round2(hit.Box.X), round2(hit.Box.Y), round2(hit.Box.W), round2(hit.Box.H)}}
		if hit.TimeCode != nil {
			ms := hit.TimeCode.Milliseconds()
			j.TimeCodeMS = &ms
		}
		out.Results[i] = j
	}
	return out
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// RequestView is a rights request as the register shows it. The contact
// is not shown: it is where the answer goes, not part of the register's
// view.
type RequestView struct {
	ID           int64           `json:"id"`
	Kind         string          `json:"kind"`
	State        string          `json:"state"`
	Received     time.Time       `json:"received"`
	Due          time.Time       `json:"due"`
	Deadline     time.Time       `json:"deadline"`
	Extended     bool            `json:"extended"`
	Overdue      bool            `json:"overdue"`
	Late         bool            `json:"late"`
	Reason       string          `json:"reason,omitempty"`
	Closed       *time.Time      `json:"closed,omitempty"`
	MatchedFaces int             `json:"matched_faces"`
	Result       json.RawMessage `json:"result,omitempty"`
}

// NewRequestView converts a request, its overdue flag counted at now.
func NewRequestView(r dsr.Request, now time.Time) RequestView {
	j := RequestView{ID: r.ID, Kind: string(r.Kind), State: string(r.State), Received: r.Received, Due: r.Due,
		Deadline: r.Deadline(), Extended: r.Extended, Overdue: r.Overdue(now), Late: r.Late(), Reason: r.Reason,
		MatchedFaces: len(r.Matches), Result: r.Result}
	if !r.Closed.IsZero() {
		c := r.Closed
		j.Closed = &c
	}
	return j
}

// RegisterView converts the rights register and counts the requests
// overdue at now.
func RegisterView(reqs []dsr.Request, now time.Time) (out []RequestView, overdue int) {
	out = make([]RequestView, len(reqs))
	for i, r := range reqs {
		out[i] = NewRequestView(r, now)
		if out[i].Overdue {
			overdue++
		}
	}
	return out, overdue
}
