package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestAddSearch(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	valid := Search{
		Actor:       "investigator-7",
		Purpose:     "missing person report",
		CaseRef:     "CASE-2025-001",
		ProbeSHA256: sha256.Sum256([]byte("probe")),
		K:           10,
		Threshold:   0.42,
		Returned:    []int64{5, 3, 9},
	}
	tests := []struct {
		name    string
		mod     func(*Search)
		wantErr error
	}{
		{name: "valid", mod: func(*Search) {}},
		{name: "no case reference", mod: func(s *Search) { s.CaseRef = "" }},
		{name: "nothing returned", mod: func(s *Search) { s.Returned = nil }},
		{name: "explicit time", mod: func(s *Search) { s.At = time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC) }},
		{name: "missing purpose", mod: func(s *Search) { s.Purpose = "" }, wantErr: ErrInvalid},
		{name: "blank purpose", mod: func(s *Search) { s.Purpose = " \t" }, wantErr: ErrInvalid},
		{name: "missing actor", mod: func(s *Search) { s.Actor = "" }, wantErr: ErrInvalid},
		{name: "zero k", mod: func(s *Search) { s.K = 0 }, wantErr: ErrInvalid},
		{name: "NaN threshold", mod: func(s *Search) { s.Threshold = math.NaN() }, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := valid
			tt.mod(&s)
			id, err := db.AddSearch(ctx, s)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("AddSearch err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got, err := db.Search(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := s
			want.ID = id
			if want.At.IsZero() {
				want.At = clock.Now()
			}
			if want.Returned == nil {
				want.Returned = []int64{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Search = %+v\nwant     %+v", got, want)
			}
		})
	}
	if _, err := db.Search(context.Background(), 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Search(999) err = %v, want ErrNotFound", err)
	}
}

func TestSearchPurposeEnforcedBySchema(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	_, err := db.w.Exec(`INSERT INTO searches (actor, at, purpose, probe_sha256, k, threshold, returned)
		VALUES ('a', 0, '', zeroblob(32), 1, 0.5, '[]')`)
	if err == nil {
		t.Error("schema accepted a search without a purpose")
	}
}

func TestSearchesNewestFirstAndAuditHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	if head, err := db.AuditHeadID(ctx); err != nil || head != 0 {
		t.Fatalf("empty log: head %d, %v", head, err)
	}
	var ids []int64
	var lastAudit int64
	for i := range 5 {
		sid, aid, err := db.RecordSearch(ctx, Search{Actor: "a", Purpose: "p", K: 1, Threshold: 0.5, Returned: []int64{int64(i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids, lastAudit = append(ids, sid), aid
	}
	if head, err := db.AuditHeadID(ctx); err != nil || head != lastAudit {
		t.Fatalf("head %d, %v; want %d", head, err, lastAudit)
	}
	got, err := db.Searches(ctx, 0, 3)
	if err != nil || len(got) != 3 || got[0].ID != ids[4] || got[2].ID != ids[2] {
		t.Fatalf("newest 3 = %v, %v", got, err)
	}
	got, err = db.Searches(ctx, ids[2], 10)
	if err != nil || len(got) != 2 || got[0].ID != ids[1] || got[1].ID != ids[0] {
		t.Fatalf("before %d = %v, %v", ids[2], got, err)
	}
}
