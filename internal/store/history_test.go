package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestListSearches: filters by actor, case, verification state and period,
// newest first, paged by id.
func TestListSearches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	mustUser(t, db, "vera", RoleVerifier)
	mustUser(t, db, "victor", RoleVerifier)
	if _, _, err := db.AddImage(ctx, testImage(mustSource(t, db, nil), 1), testFaces(6, 16, 1)); err != nil {
		t.Fatal(err)
	}
	t0 := clock.Now()
	type spec struct {
		actor, caseRef string
		faces          []int64
	}
	specs := []spec{
		{"ivan", "C-1", []int64{1, 2}}, // 1: confirmed (face 1 identified)
		{"ivan", "C-1", []int64{3}},    // 2: pending (face 3 confirmed once)
		{"ines", "C-2", []int64{4, 5}}, // 3: rejected (face 4), face 5 untouched
		{"ivan", "C-2", []int64{6}},    // 4: unverified
		{"ines", "", nil},              // 5: no match
	}
	ids := make([]int64, len(specs))
	for i, sp := range specs {
		s := testSearch(sp.actor, sp.faces...)
		s.CaseRef = sp.caseRef
		s.At = t0.Add(time.Duration(i) * 24 * time.Hour)
		id, _, err := db.RecordSearch(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	for _, v := range []string{"vera", "victor"} {
		if _, err := db.Confirm(ctx, ids[0], 1, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Confirm(ctx, ids[1], 3, "vera"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Reject(ctx, ids[2], 4, "victor", "another person"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    SearchFilter
		want []int // indexes into ids, newest first
	}{
		{"all", SearchFilter{}, []int{4, 3, 2, 1, 0}},
		{"actor", SearchFilter{Actor: "ivan"}, []int{3, 1, 0}},
		{"case", SearchFilter{Case: "C-2"}, []int{3, 2}},
		{"actor and case", SearchFilter{Actor: "ivan", Case: "C-1"}, []int{1, 0}},
		{"confirmed", SearchFilter{State: VerifyConfirmed}, []int{0}},
		{"pending", SearchFilter{State: VerifyPending}, []int{1}},
		{"rejected", SearchFilter{State: VerifyRejected}, []int{2}},
		{"unverified", SearchFilter{State: VerifyUnverified}, []int{3}},
		{"from", SearchFilter{From: t0.Add(48 * time.Hour)}, []int{4, 3, 2}},
		{"to", SearchFilter{To: t0.Add(48 * time.Hour)}, []int{1, 0}},
		{"from and to", SearchFilter{From: t0.Add(24 * time.Hour), To: t0.Add(72 * time.Hour)}, []int{2, 1}},
		{"page", SearchFilter{Before: ids[3], Limit: 2}, []int{2, 1}},
		{"nobody's", SearchFilter{Actor: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.f.Limit == 0 {
				tt.f.Limit = 100
			}
			got, err := db.ListSearches(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs, wantIDs []int64
			for _, s := range got {
				gotIDs = append(gotIDs, s.ID)
				if s.ProbeCrop != nil {
					t.Errorf("search %d listed with its probe crop", s.ID)
				}
			}
			for _, i := range tt.want {
				wantIDs = append(wantIDs, ids[i])
			}
			if !reflect.DeepEqual(gotIDs, wantIDs) {
				t.Errorf("ids = %v, want %v", gotIDs, wantIDs)
			}
		})
	}

	all, err := db.ListSearches(ctx, SearchFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	states := map[int64]Verification{}
	for _, s := range all {
		states[s.ID] = s.State()
	}
	wantStates := map[int64]Verification{ids[0]: VerifyConfirmed, ids[1]: VerifyPending, ids[2]: VerifyRejected,
		ids[3]: VerifyUnverified, ids[4]: VerifyNoMatch}
	if !reflect.DeepEqual(states, wantStates) {
		t.Errorf("states = %v, want %v", states, wantStates)
	}
	sum, err := db.SearchSummary(ctx, ids[2])
	if err != nil || sum.Rejected != 1 || sum.Identified != 0 || sum.Actor != "ines" {
		t.Errorf("SearchSummary = %+v, %v", sum, err)
	}
	if _, err := db.SearchSummary(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("SearchSummary(999) err = %v", err)
	}

	for _, f := range []SearchFilter{
		{Limit: 0},
		{Limit: MaxSearchList + 1},
		{Limit: 1, State: "maybe"},
		{Limit: 1, From: t0, To: t0},
	} {
		if _, err := db.ListSearches(ctx, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("ListSearches(%+v) err = %v, want ErrInvalid", f, err)
		}
	}
	if _, err := ParseVerification("pending"); err != nil {
		t.Error(err)
	}
}

// TestListSearchesErasedFaces: a search whose returned faces were all
// erased has nothing left to verify: it is neither "to verify" nor
// awaiting a second verifier, and its summary counts the faces still held.
func TestListSearchesErasedFaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	mustUser(t, db, "vera", RoleVerifier)
	mustUser(t, db, "victor", RoleVerifier)
	if _, _, err := db.AddImage(ctx, testImage(mustSource(t, db, nil), 1), testFaces(5, 16, 1)); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, faces := range [][]int64{{1, 2}, {3}, {4, 5}, {5}} {
		id, _, err := db.RecordSearch(ctx, testSearch("ivan", faces...))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Search 1's face 3 awaits a second verifier; search 3's face 5 is
	// identified; then faces 1, 2, 3 and 5 are erased.
	if _, err := db.Confirm(ctx, ids[1], 3, "vera"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"vera", "victor"} {
		if _, err := db.Confirm(ctx, ids[3], 5, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.EraseFaces(ctx, []int64{1, 2, 3, 5}, "dpo", "test"); err != nil {
		t.Fatal(err)
	}
	all, err := db.ListSearches(ctx, SearchFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		state Verification
		held  int
	}
	states := map[int64]got{}
	for _, s := range all {
		states[s.ID] = got{s.State(), s.Held}
	}
	want := map[int64]got{
		ids[0]: {VerifyErased, 0},     // both faces gone
		ids[1]: {VerifyErased, 0},     // its pending face gone: it can never be identified
		ids[2]: {VerifyUnverified, 1}, // face 4 still held
		ids[3]: {VerifyConfirmed, 0},  // identified before the erasure: that stays history
	}
	if !reflect.DeepEqual(states, want) {
		t.Errorf("states = %v, want %v", states, want)
	}
	for state, wantIDs := range map[Verification][]int64{
		VerifyUnverified: {ids[2]},
		VerifyPending:    nil,
		VerifyConfirmed:  {ids[3]},
	} {
		list, err := db.ListSearches(ctx, SearchFilter{State: state, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []int64
		for _, s := range list {
			gotIDs = append(gotIDs, s.ID)
		}
		if !reflect.DeepEqual(gotIDs, wantIDs) {
			t.Errorf("filter %s: ids = %v, want %v", state, gotIDs, wantIDs)
		}
	}
}
