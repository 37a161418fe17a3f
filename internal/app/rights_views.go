package app

import (
	"context"
	"errors"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/rights"
	"gabarit/internal/store"
	"gabarit/internal/vault"
)

// RequestDetail is one rights request as its page shows it to the DPO (and,
// without the contact, the identity note and the candidates, to auditors).
type RequestDetail struct {
	RequestView
	Zone         string     `json:"zone"`
	Contact      string     `json:"contact,omitempty"` // DPO only: where the answer goes
	ExtendReason string     `json:"extend_reason,omitempty"`
	NoticeSent   *time.Time `json:"extension_notice_sent,omitempty"`
	// Next says what the DPO must do next; empty once the request is closed.
	Next     string         `json:"next,omitempty"`
	Selfies  []SelfieView   `json:"selfies"`
	Identity *IdentityView  `json:"identity,omitempty"`
	Review   *ReviewView    `json:"review,omitempty"`
	Notify   []NotifyView   `json:"notify_searches"` // Art. 19: searches whose users must be told of an erasure
	Record   *RecordSummary `json:"record,omitempty"`
	// Package: a completed access request whose package can be downloaded.
	Package bool `json:"package"`
	// RestrictionInForce: for a completed restriction, whether it still
	// hides the person from searches (false once lifted).
	RestrictionInForce *bool                `json:"restriction_in_force,omitempty"`
	Methods            []dsr.IdentityMethod `json:"identity_methods,omitempty"`
}

// SelfieView is one selfie's face, kept (sealed) until the request closes.
type SelfieView struct {
	N       int     `json:"n"`
	Quality float64 `json:"quality"`
}

// IdentityView is how the requester's identity was established.
type IdentityView struct {
	Method string    `json:"method"`
	Label  string    `json:"label"`
	Note   string    `json:"note,omitempty"` // DPO only
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// ReviewView is a request's candidate set and its review.
type ReviewView struct {
	FoundBy     string          `json:"found_by"`
	FoundAt     time.Time       `json:"found_at"`
	Gallery     int             `json:"gallery"`
	Selfies     int             `json:"selfies"`
	Floor       float64         `json:"floor"`
	Strict      float64         `json:"strict_operating_point"` // pre-selected on its own score
	Group       float64         `json:"group_point"`            // pre-selected with a look-alike, both at it
	FPIR        float64         `json:"fpir"`
	Beyond      int             `json:"beyond"`
	Total       int             `json:"candidates"`
	Preselected int             `json:"preselected"`
	Selected    int             `json:"selected"`
	ReviewedBy  string          `json:"reviewed_by,omitempty"`
	ReviewedAt  *time.Time      `json:"reviewed_at,omitempty"`
	Candidates  []CandidateView `json:"candidate_faces,omitempty"` // DPO only
}

// CandidateView is one candidate face.
type CandidateView struct {
	FaceID       int64     `json:"face_id"`
	Score        float64   `json:"score"`
	Similarities []float64 `json:"similarities"`
	Band         string    `json:"band"`
	Strangers    float64   `json:"strangers"`
	Preselected  bool      `json:"preselected"`
	Selected     bool      `json:"selected"`
	Added        bool      `json:"added,omitempty"`
}

// NotifyView is one search to notify of an erasure, and whether it was.
type NotifyView struct {
	SearchID   int64      `json:"search_id"`
	NotifiedBy string     `json:"notified_by,omitempty"`
	NotifiedAt *time.Time `json:"notified_at,omitempty"`
}

// RecordSummary says a request's sealed record exists; opening it is the
// DPO's, and audited.
type RecordSummary struct {
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

// NewCandidateView converts a candidate.
func NewCandidateView(c store.RightsCandidate) CandidateView {
	sims := make([]float64, len(c.Similarities))
	for i, s := range c.Similarities {
		sims[i] = round4(s)
	}
	return CandidateView{FaceID: c.FaceID, Score: round4(c.Score), Similarities: sims, Band: c.Band,
		Strangers: roundStrangers(c.Strangers), Preselected: c.Preselected, Selected: c.Selected, Added: c.Added}
}

// NewReviewView converts a review; withFaces adds the candidates (DPO only).
func NewReviewView(rv store.RightsReview, withFaces bool) *ReviewView {
	v := &ReviewView{FoundBy: rv.FoundBy, FoundAt: rv.FoundAt, Gallery: rv.Gallery, Selfies: rv.Selfies, Floor: round4(rv.Floor),
		Strict: round4(rv.Strict), Group: round4(rv.Group), FPIR: rv.FPIR, Beyond: rv.Beyond, Total: len(rv.Candidates), ReviewedBy: rv.ReviewedBy}
	if !rv.ReviewedAt.IsZero() {
		t := rv.ReviewedAt
		v.ReviewedAt = &t
	}
	for _, c := range rv.Candidates {
		if c.Preselected {
			v.Preselected++
		}
		if c.Selected {
			v.Selected++
		}
		if withFaces {
			v.Candidates = append(v.Candidates, NewCandidateView(c))
		}
	}
	return v
}

// RequestDetails builds the page of request id at now. dpo adds what only
// the DPO sees: the contact, the identity note and the candidate faces.
func RequestDetails(ctx context.Context, db *store.DB, v *vault.Vault, methods []dsr.IdentityMethod, id int64, now time.Time, dpo bool) (RequestDetail, error) {
	r, err := db.RightsRequest(ctx, id)
	if err != nil {
		return RequestDetail{}, err
	}
	d := RequestDetail{RequestView: NewRequestView(r, now), Zone: r.Zone, ExtendReason: r.ExtendReason, Selfies: []SelfieView{},
		Notify: []NotifyView{}}
	if dpo {
		d.Contact = r.Contact
		d.Methods = methods
	}
	if !r.NoticeSentAt.IsZero() {
		t := r.NoticeSentAt
		d.NoticeSent = &t
	}
	selfies, err := db.RightsSelfies(ctx, id)
	if err != nil {
		return RequestDetail{}, err
	}
	for _, s := range selfies {
		d.Selfies = append(d.Selfies, SelfieView{N: s.N, Quality: round2(s.Quality)})
	}
	idn, err := db.RightsIdentity(ctx, id)
	switch {
	case err == nil:
		d.Identity = &IdentityView{Method: idn.Method, Label: idn.Method, By: idn.By, At: idn.At}
		if m, ok := dsr.FindIdentityMethod(methods, idn.Method); ok {
			d.Identity.Label = m.Label
		}
		if dpo {
			d.Identity.Note = idn.Note
		}
	case !errors.Is(err, store.ErrNotFound):
		return RequestDetail{}, err
	}
	rv, err := db.RightsReview(ctx, id)
	switch {
	case err == nil:
		d.Review = NewReviewView(rv, dpo && !r.State.Final())
		if r.State.Final() {
			d.Review.Selected = 0 // the set is in the sealed record once closed
			d.Review.Preselected = 0
		}
	case !errors.Is(err, store.ErrNotFound):
		return RequestDetail{}, err
	}
	rec, err := db.RightsRecordOf(ctx, id)
	switch {
	case err == nil:
		d.Record = &RecordSummary{SHA256: rec.SHA256, Created: rec.Created}
	case !errors.Is(err, store.ErrNotFound):
		return RequestDetail{}, err
	}
	res, _ := rights.ResultOf(r) // a request without a result notifies nobody
	notices, err := db.RightsNotices(ctx, id)
	if err != nil {
		return RequestDetail{}, err
	}
	sent := map[int64]store.RightsNotice{}
	for _, n := range notices {
		sent[n.SearchID] = n
	}
	for _, sid := range res.Notify {
		nv := NotifyView{SearchID: sid}
		if n, ok := sent[sid]; ok {
			at := n.At
			nv.NotifiedBy, nv.NotifiedAt = n.By, &at
		}
		d.Notify = append(d.Notify, nv)
	}
	d.Package = r.Kind == dsr.Access && r.State == dsr.Completed
	if r.Kind == dsr.Restriction && r.State == dsr.Completed && v != nil {
		es, err := v.Entries(ctx, id)
		if err != nil {
			return RequestDetail{}, err
		}
		in := false
		for _, e := range es {
			in = in || e.Kind == vault.Restriction
		}
		d.RestrictionInForce = &in
	}
	d.Next = nextStep(r, d)
	return d, nil
}

// nextStep says, in words, what the DPO must do next on an open request.
func nextStep(r dsr.Request, d RequestDetail) string {
	switch {
	case r.State.Final():
		return ""
	case r.Acting():
		return "finish acting on the reviewed set (an earlier run stopped before the end)"
	case d.Review == nil:
		return "find the candidates"
	case d.Review.ReviewedBy == "":
		return "review the candidates"
	case d.Identity == nil:
		return "record how the requester's identity was established"
	}
	return "act on the reviewed set"
}

// actedOn reads the number of faces a closed request acted on from its
// result.
func actedOn(r dsr.Request) (int, bool) {
	res, ok := rights.ResultOf(r)
	if !ok {
		return 0, false
	}
	return *res.ActedOn, true
}
