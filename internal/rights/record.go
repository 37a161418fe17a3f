package rights

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/store"
)

// Record is what was done for a request, and to which faces: kept sealed
// (PurposeRightsRequest) so that only the DPO reads it, to explain an
// erasure to the person and to the authority, and to find a mistaken one.
// The audit log keeps the counts and the record's SHA-256.
type Record struct {
	RequestID int64            `json:"request_id"`
	Kind      dsr.Kind         `json:"kind"`
	ActedBy   string           `json:"acted_by"`
	ActedAt   time.Time        `json:"acted_at"`
	Identity  *RecordIdentity  `json:"identity,omitempty"`
	Review    *RecordReview    `json:"review,omitempty"`
	Faces     []RecordFace     `json:"faces"`      // acted on: erased, suppressed, restricted or disclosed
	Others    []RecordDecision `json:"candidates"` // candidates left out by the review
	Result    Result           `json:"result"`
}

// RecordIdentity is the identity check, as recorded.
type RecordIdentity struct {
	Method string    `json:"method"`
	Note   string    `json:"note,omitempty"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// RecordReview is the review the set came from.
type RecordReview struct {
	FoundBy    string    `json:"found_by"`
	FoundAt    time.Time `json:"found_at"`
	Gallery    int       `json:"gallery"`
	Selfies    int       `json:"selfies"`
	Floor      float64   `json:"floor"`
	Strict     float64   `json:"strict_operating_point"`
	Group      float64   `json:"group_point"`
	FPIR       float64   `json:"fpir"`
	Beyond     int       `json:"beyond"`
	ReviewedBy string    `json:"reviewed_by"`
	ReviewedAt time.Time `json:"reviewed_at"`
}

// RecordDecision is the review's decision on one candidate.
type RecordDecision struct {
	FaceID       int64     `json:"face_id"`
	Score        float64   `json:"score"`
	Similarities []float64 `json:"similarities,omitempty"`
	Band         string    `json:"band,omitempty"`
	Strangers    float64   `json:"strangers"`
	Preselected  bool      `json:"preselected"`
	Added        bool      `json:"added,omitempty"`
}

// RecordFace is one face acted on: the decision, and where the face was.
type RecordFace struct {
	RecordDecision
	ImageID  int64  `json:"image_id,omitempty"`
	SourceID int64  `json:"source_id,omitempty"`
	Locator  string `json:"locator,omitempty"`
}

// newRecord starts the record of acting on faces for request r: the
// identity check, the review and where each face is, read before anything
// is erased.
func (e *Engine) newRecord(ctx context.Context, r dsr.Request, faces []int64, actor string) (*Record, error) {
	rec := &Record{RequestID: r.ID, Kind: r.Kind, ActedBy: actor, ActedAt: time.Now().UTC(), Faces: []RecordFace{}, Others: []RecordDecision{}}
	idn, err := e.Store.RightsIdentity(ctx, r.ID)
	switch {
	case err == nil:
		rec.Identity = &RecordIdentity{Method: idn.Method, Note: idn.Note, By: idn.By, At: idn.At}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	decided := map[int64]RecordDecision{}
	rv, err := e.Store.RightsReview(ctx, r.ID)
	switch {
	case err == nil:
		rec.Review = &RecordReview{FoundBy: rv.FoundBy, FoundAt: rv.FoundAt, Gallery: rv.Gallery, Selfies: rv.Selfies, Floor: rv.Floor,
			Strict: rv.Strict, Group: rv.Group, FPIR: rv.FPIR, Beyond: rv.Beyond, ReviewedBy: rv.ReviewedBy, ReviewedAt: rv.ReviewedAt}
		for _, c := range rv.Candidates {
			d := RecordDecision{FaceID: c.FaceID, Score: c.Score, Similarities: c.Similarities, Band: c.Band,
				Strangers: c.Strangers, Preselected: c.Preselected, Added: c.Added}
			decided[c.FaceID] = d
			if !slices.Contains(faces, c.FaceID) {
				rec.Others = append(rec.Others, d)
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	refs, err := e.Store.FaceRefs(ctx, faces)
	if err != nil {
		return nil, err
	}
	for _, id := range faces {
		d, ok := decided[id]
		if !ok {
			d = RecordDecision{FaceID: id}
		}
		f := RecordFace{RecordDecision: d}
		if ref, ok := refs[id]; ok {
			f.ImageID, f.SourceID, f.Locator = ref.ImageID, ref.SourceID, ref.Locator
		}
		rec.Faces = append(rec.Faces, f)
	}
	return rec, nil
}

// sealRecord seals rec for request id and returns it with the SHA-256 of
// its plain JSON (which the audit log and the request's result keep).
func (e *Engine) sealRecord(id int64, rec *Record) ([]byte, string, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, "", err
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(js))
	sealed, err := e.Keys.SealBytes(PurposeRightsRequest, recordBinding(id), js)
	clear(js)
	return sealed, sum, err
}

// OpenRecord opens request id's sealed record for actor (the DPO: callers
// check the role) and audits the reading ("rights.record-read"). The
// record's SHA-256 is checked against the one kept when it was sealed.
func (e *Engine) OpenRecord(ctx context.Context, id int64, actor string) (Record, error) {
	sr, err := e.Store.RightsRecordOf(ctx, id)
	if err != nil {
		return Record{}, err
	}
	js, err := e.Keys.OpenBytes(PurposeRightsRequest, recordBinding(id), sr.Sealed)
	if err != nil {
		return Record{}, fmt.Errorf("record of rights request %d: %w", id, err)
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(js)); sum != sr.SHA256 {
		return Record{}, fmt.Errorf("record of rights request %d: SHA-256 %s, want %s", id, sum, sr.SHA256)
	}
	var rec Record
	if err := json.Unmarshal(js, &rec); err != nil {
		return Record{}, fmt.Errorf("record of rights request %d: %w", id, err)
	}
	detail, _ := json.Marshal(map[string]any{"sha256": sr.SHA256})
	if _, err := e.Store.AppendAudit(ctx, nil, store.AuditEntry{Actor: actor, Action: "rights.record-read",
		Object: fmt.Sprintf("rights/%d", id), Detail: detail}); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// Notified records that the users of search searchID, one of the searches
// to notify of request id's erasure (GDPR Art. 19), were told.
func (e *Engine) Notified(ctx context.Context, id, searchID int64, actor string) error {
	r, err := e.Store.RightsRequest(ctx, id)
	if err != nil {
		return err
	}
	res, ok := ResultOf(r)
	if r.State != dsr.Completed || !ok || !slices.Contains(res.Notify, searchID) {
		return fmt.Errorf("search %d is not one request %d must notify (only the searches that returned erased faces are): %w",
			searchID, id, dsr.ErrInvalid)
	}
	return e.Store.RecordRightsNotice(ctx, id, searchID, actor)
}
