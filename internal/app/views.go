package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/store"

	"gabarit/internal/dsr"
	"gabarit/internal/search"
)

// HitView is one result of a search, as the command line and the API show it.
type HitView struct {
	FaceID     int64      `json:"face_id"`
	ImageID    int64      `json:"image_id,omitempty"`
	Locator    string     `json:"locator,omitempty"`
	SourceID   int64      `json:"source_id,omitempty"`
	LegalBasis string     `json:"legal_basis,omitempty"`
	Similarity float64    `json:"similarity"`
	Box        [4]float64 `json:"box"` // x, y, w, h in the stored image's pixels
	TimeCodeMS *int64     `json:"time_code_ms,omitempty"`
	// Band is the strength of the result: strong or probable (a match:
	// alone at or above the operating point, or carried by look-alikes of
	// the same person) or weak (not a match: exploratory searches only).
	Band string `json:"band"`
	// Strangers is the number of other people's faces (or look-alike
	// groups, for a match carried by its group) expected to reach this
	// result's evidence in a gallery of this size.
	Strangers float64 `json:"expected_strangers"`
	Support   int     `json:"support"` // other candidates that look like the same person
	// BelowOperatingPoint marks a result of an exploratory search that is
	// not a match (band weak).
	BelowOperatingPoint bool `json:"below_operating_point"`
	// Erased marks a face no longer held (erased or purged since the
	// search): only its id, similarity and band remain.
	Erased bool `json:"erased,omitempty"`
}

// ProbeFaceView says which face of the probe was searched.
type ProbeFaceView struct {
	Index   int        `json:"index"`
	Quality float64    `json:"quality"`
	Box     [4]float64 `json:"box"`
	Chosen  string     `json:"chosen"` // "asked" or "best quality"
	Warning string     `json:"warning,omitempty"`
}

// NewProbeFaceView converts the probe face of a search; nil for none.
func NewProbeFaceView(p *store.ProbeFace) *ProbeFaceView {
	if p == nil {
		return nil
	}
	return &ProbeFaceView{Index: p.Index, Quality: round4(p.Quality), Box: p.Box, Chosen: p.Chosen, Warning: p.Warning}
}

// DecisionView is how a search decided, in its answer and in its record.
type DecisionView struct {
	Threshold float64 `json:"threshold"`
	// OperatingPoint is the calibrated least similarity of a match for the
	// target FPIR at this gallery's size.
	OperatingPoint float64 `json:"operating_point"`
	// GroupPoint is the least second-best similarity of a group of
	// look-alike faces that all match: a face under OperatingPoint is a
	// match when enough of its look-alikes resemble the probe too.
	GroupPoint  float64 `json:"group_operating_point"`
	FPIR        float64 `json:"fpir"`
	Gallery     int     `json:"gallery"`
	Exploratory bool    `json:"exploratory"`
	// ExploratoryReason is the reason stated for an exploratory search.
	ExploratoryReason string `json:"exploratory_reason,omitempty"`
	// Above counts the search's results: all of them are in its record,
	// paged with a cursor.
	Above     int  `json:"above"`
	Truncated bool `json:"truncated,omitempty"` // more than search.MaxResults were found
}

// NewDecisionView converts the decision recorded with a search.
func NewDecisionView(sr store.Search) DecisionView {
	return DecisionView{Threshold: round4(sr.Threshold), OperatingPoint: round4(sr.OperatingPoint),
		GroupPoint: round4(sr.GroupPoint), FPIR: sr.FPIR, Gallery: sr.Gallery, Exploratory: sr.Exploratory != "",
		ExploratoryReason: sr.Exploratory, Above: sr.Above, Truncated: sr.Above > len(sr.Returned)}
}

// SearchView is the answer to a search: its decision and the first page
// of its results.
type SearchView struct {
	Results []HitView `json:"results"`
	Match   bool      `json:"match"`
	DecisionView
	NextCursor string         `json:"next_cursor,omitempty"`
	SearchID   int64          `json:"search_id"`
	AuditID    int64          `json:"audit_id"`
	ProbeFaces int            `json:"probe_faces"`
	ProbeFace  *ProbeFaceView `json:"probe_face,omitempty"`
}

// NewSearchView converts the result of a search.
func NewSearchView(res search.Result) SearchView {
	out := SearchView{Results: make([]HitView, len(res.Hits)), Match: len(res.Hits) > 0,
		DecisionView: DecisionView{Threshold: round4(res.Threshold), OperatingPoint: round4(res.OperatingPoint),
			GroupPoint: round4(res.GroupPoint), FPIR: res.FPIR, Gallery: res.Gallery, Exploratory: res.Exploratory,
			ExploratoryReason: res.Reason, Above: res.Above, Truncated: res.Truncated},
		SearchID: res.SearchID, AuditID: res.AuditID, ProbeFaces: res.ProbeFaces}
	if res.ProbeFaces > 0 {
		out.ProbeFace = NewProbeFaceView(&res.Probe)
	}
	for i, hit := range res.Hits {
		j := HitView{FaceID: hit.FaceID, ImageID: hit.ImageID, Locator: hit.Locator, SourceID: hit.SourceID,
			LegalBasis: string(hit.LegalBasis), Similarity: round4(hit.Similarity), Box: boxView(hit.Box),
			Band: hit.Band, Strangers: roundStrangers(hit.Strangers), Support: hit.Support,
			BelowOperatingPoint: hit.Band == search.BandWeak}
		j.TimeCodeMS = Millis(hit.TimeCode)
		out.Results[i] = j
	}
	if len(res.Hits) < len(res.All) {
		out.NextCursor = Cursor(len(res.Hits))
	}
	return out
}

// Cursor is the opaque paging cursor of the results from offset on.
func Cursor(offset int) string { return "o" + strconv.Itoa(offset) }

// ParseCursor reads a cursor made by Cursor; "" is the first page.
func ParseCursor(c string) (offset int, err error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(c, "o"))
	if err != nil || !strings.HasPrefix(c, "o") || n < 0 {
		return 0, fmt.Errorf("%w: cursor %q", ErrBadCursor, c)
	}
	return n, nil
}

// ErrBadCursor reports a paging cursor that this server did not make.
var ErrBadCursor = errors.New("invalid cursor")

// ResultsPage returns at most limit results of the recorded search sr from
// the cursor on, with the cursor of the next page ("" after the last).
// Faces no longer held are shown with their id, similarity and band only.
func ResultsPage(ctx context.Context, d *Data, sr store.Search, cursor string, limit int) (page []HitView, next string, err error) {
	off, err := ParseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if limit < 1 {
		return nil, "", fmt.Errorf("%w: limit %d", ErrBadCursor, limit)
	}
	rs := sr.Results
	if rs == nil { // recorded before calibrated decisions: ids only
		rs = make([]store.SearchResult, len(sr.Returned))
		for i, id := range sr.Returned {
			rs[i] = store.SearchResult{FaceID: id}
		}
	}
	if off > len(rs) {
		off = len(rs)
	}
	end := min(len(rs), off+limit)
	ids := make([]int64, 0, end-off)
	for _, r := range rs[off:end] {
		ids = append(ids, r.FaceID)
	}
	refs, err := d.DB.FaceRefs(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	page = make([]HitView, 0, end-off)
	for _, r := range rs[off:end] {
		j := HitView{FaceID: r.FaceID, Similarity: round4(r.Similarity), Band: r.Band, Strangers: roundStrangers(r.Strangers),
			Support: r.Support, BelowOperatingPoint: r.Band == search.BandWeak}
		ref, ok := refs[r.FaceID]
		if !ok {
			j.Erased = true
			page = append(page, j)
			continue
		}
		j.ImageID, j.Locator, j.SourceID, j.LegalBasis = ref.ImageID, ref.Locator, ref.SourceID, string(ref.LegalBasis)
		j.Box, j.TimeCodeMS = boxView(ref.Box), Millis(ref.TimeCode)
		page = append(page, j)
	}
	if end < len(rs) {
		next = Cursor(end)
	}
	return page, next, nil
}

// Millis returns a time code in milliseconds, or nil for none.
func Millis(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}

func boxView(b face.Box) [4]float64 {
	return [4]float64{round2(b.X), round2(b.Y), round2(b.W), round2(b.H)}
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// roundStrangers keeps two significant digits of an expected count.
func roundStrangers(v float64) float64 {
	if v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-1)
	return math.Round(v/p) * p
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
	MatchedFaces int             `json:"matched_faces"` // in the reviewed set: acted on, or being acted on
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
	if n, ok := actedOn(r); ok && j.MatchedFaces == 0 {
		j.MatchedFaces = n // a closed request keeps which faces in its sealed record only
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
