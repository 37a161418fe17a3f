package store

import (
	"context"
	"errors"
	"testing"

	"gabarit/internal/dsr"
)

func testReview(faces ...int64) RightsReview {
	rv := RightsReview{Gallery: 10, Selfies: 1, Floor: 0.3, Strict: 0.7, Group: 0.6, FPIR: 0.001}
	for i, f := range faces {
		rv.Candidates = append(rv.Candidates, RightsCandidate{FaceID: f, Score: 0.9 - 0.1*float64(i), Similarities: []float64{0.9},
			Band: "weak", Preselected: i == 0})
	}
	return rv
}

// TestRightsReviewSteps: a new candidate set starts from its
// pre-selection, unreviewed; a review selects exactly the faces named,
// among the candidates or added; closing deletes the candidates and keeps
// the sealed record; nothing changes a closed request's set.
func TestRightsReviewSteps(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	id := mustRights(t, db, dsr.Erasure)
	if _, err := db.RightsReview(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("review before any candidates: %v", err)
	}
	if err := db.SaveRightsCandidates(ctx, id, "dpo", testReview(7, 8, 9)); err != nil {
		t.Fatal(err)
	}
	rv, err := db.RightsReview(ctx, id)
	if err != nil || rv.ReviewedBy != "" || len(rv.Candidates) != 3 || len(rv.Selected()) != 1 || rv.Selected()[0] != 7 || rv.Group != 0.6 {
		t.Fatalf("saved review %+v, %v", rv, err)
	}
	if _, err := db.ReviewRightsCandidates(ctx, id, "dpo", []int64{8, 42}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("selecting a face that is not a candidate: %v", err)
	}
	rv, err = db.ReviewRightsCandidates(ctx, id, "dpo", []int64{8}, []RightsCandidate{{FaceID: 42, Score: 0.2, Similarities: []float64{0.2}, Band: "weak"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rv.Selected(); len(got) != 2 || got[0] != 8 || got[1] != 42 || rv.ReviewedBy != "dpo" {
		t.Errorf("reviewed: selected %v, by %q", got, rv.ReviewedBy)
	}
	if _, err := db.ReviewRightsCandidates(ctx, id, "dpo", nil, []RightsCandidate{{FaceID: 9, Band: "weak"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("adding a face that is already a candidate: %v", err)
	}
	if _, err := db.RecordRightsIdentity(ctx, id, "dpo", "in-person", "seen at the desk"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordRightsIdentity(ctx, id, "dpo", "in-person", ""); err == nil {
		t.Error("a second identity check")
	}
	idn, err := db.RightsIdentity(ctx, id)
	if err != nil || idn.Method != "in-person" || idn.Note != "seen at the desk" {
		t.Errorf("identity %+v, %v", idn, err)
	}
	if _, err := db.UpdateRightsRequest(ctx, id, "dpo", advance(dsr.InProgress, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReviewRightsCandidates(ctx, id, "dpo", []int64{9}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("changing the set while acting: %v", err)
	}
	sum := "0000000000000000000000000000000000000000000000000000000000000000"
	if _, err := db.CloseRightsRequest(ctx, id, "dpo", &RightsRecord{Sealed: []byte("sealed"), SHA256: sum, Faces: 2},
		advance(dsr.Completed, "")); err != nil {
		t.Fatal(err)
	}
	rv, err = db.RightsReview(ctx, id)
	if err != nil || len(rv.Candidates) != 0 || rv.Gallery != 10 {
		t.Errorf("after closing: %+v, %v", rv, err)
	}
	if rec, err := db.RightsRecordOf(ctx, id); err != nil || string(rec.Sealed) != "sealed" || rec.SHA256 != sum {
		t.Errorf("record %+v, %v", rec, err)
	}
	if err := db.SaveRightsCandidates(ctx, id, "dpo", testReview(1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("new candidates for a closed request: %v", err)
	}
	var actions []string
	for _, e := range auditOf(t, db, rightsObject(id)) {
		actions = append(actions, e.Action)
	}
	want := []string{"rights.received", "rights.candidates", "rights.reviewed", "rights.verified", "rights.identity", "rights.in-progress",
		"rights.completed", "rights.record"}
	if len(actions) != len(want) {
		t.Fatalf("audit %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Errorf("audit %v, want %v", actions, want)
			break
		}
	}
}
