package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestRejectBlocksConfirmation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, id := confirmFixture(t)

	r, err := db.Reject(ctx, id, 12, "vera", "  a different person: another ear shape  ")
	if err != nil {
		t.Fatal(err)
	}
	if r.SearchID != id || r.FaceID != 12 || r.Verifier != "vera" || r.Reason != "a different person: another ear shape" || r.At.IsZero() {
		t.Errorf("Reject = %+v", r)
	}
	// Nobody confirms a rejected face, not even another verifier.
	for _, v := range []string{"victor", "val"} {
		if _, err := db.Confirm(ctx, id, 12, v); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "rejected by vera") {
			t.Errorf("Confirm(12, %s) of a rejected face: %v, want ErrRejected naming vera", v, err)
		}
	}
	// Other faces of the search are not affected.
	if _, err := db.Confirm(ctx, id, 11, "victor"); err != nil {
		t.Errorf("Confirm(11): %v", err)
	}
	got, err := db.Rejections(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int64][]Rejection{12: {r}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Rejections = %+v, want %+v", got, want)
	}
	if got, err := db.Rejections(ctx, id+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rejections of an unknown search = %v, %v; want ErrNotFound", got, err)
	}

	var log []string
	for _, e := range auditOf(t, db, fmt.Sprintf("search/%d", id)) {
		if e.Action != "search" {
			log = append(log, e.Actor+" "+e.Action+" "+string(e.Detail))
		}
	}
	wantLog := []string{
		`vera search.reject {"face":12,"reason":"a different person: another ear shape","confirmations":0}`,
		`victor search.confirm {"face":11,"confirmations":1,"identified":false}`,
	}
	if !reflect.DeepEqual(log, wantLog) {
		t.Errorf("audit:\n%q\nwant\n%q", log, wantLog)
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}

// TestRejectedNeverIdentified: a face two verifiers confirmed is no longer
// identified once a third rejects it, and stays so.
func TestRejectedNeverIdentified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, id := confirmFixture(t)
	for _, v := range []string{"vera", "victor"} {
		if _, err := db.Confirm(ctx, id, 13, v); err != nil {
			t.Fatal(err)
		}
	}
	if cs, err := db.Confirmations(ctx, id); err != nil || !cs[13].Identified {
		t.Fatalf("before the rejection: %+v, %v", cs[13], err)
	}
	// One who confirmed may change their mind: the rejection prevails.
	if _, err := db.Reject(ctx, id, 13, "victor", "on a closer look, not him"); err != nil {
		t.Fatal(err)
	}
	cs, err := db.Confirmations(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := Confirmation{SearchID: id, FaceID: 13, Verifiers: []string{"vera", "victor"}, Rejected: true}
	if !reflect.DeepEqual(cs[13], want) {
		t.Errorf("Confirmations[13] = %+v, want %+v", cs[13], want)
	}
	e := auditOf(t, db, fmt.Sprintf("search/%d", id))
	if last := e[len(e)-1]; last.Action != "search.reject" || !strings.Contains(string(last.Detail), `"confirmations":2`) {
		t.Errorf("last audit entry %s %s", last.Action, last.Detail)
	}
	list, err := db.ListSearches(ctx, SearchFilter{Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListSearches = %v, %v", list, err)
	}
	if s := list[0]; s.Identified != 0 || s.Pending != 0 || s.Rejected != 1 || s.State() != VerifyRejected {
		t.Errorf("summary = identified %d, pending %d, rejected %d, state %s", s.Identified, s.Pending, s.Rejected, s.State())
	}
}

func TestRejectRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, id := confirmFixture(t)
	if _, err := db.Reject(ctx, id, 12, "vera", "not the same person"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", MaxRejectReason+1)
	tests := []struct {
		name     string
		search   int64
		face     int64
		verifier string
		reason   string
		wantErr  error
		wantMsg  string
	}{
		{"same verifier twice", id, 12, "vera", "again", ErrExists, "already rejected by this user"},
		{"own search, also a verifier", id, 13, "ivan", "no", ErrForbidden, "a user cannot reject their own search"},
		{"not a verifier", id, 13, "olga", "no", ErrForbidden, "role"},
		{"disabled verifier", id, 13, "dora", "no", ErrForbidden, "disabled"},
		{"unregistered user", id, 13, "nobody", "no", ErrForbidden, "not a registered user"},
		{"unknown search", id + 1, 12, "victor", "no", ErrNotFound, ""},
		{"face not returned", id, 99, "victor", "no", ErrInvalid, fmt.Sprintf("face 99 was not returned by search %d", id)},
		{"blank verifier", id, 12, " ", "no", ErrInvalid, ""},
		{"no reason", id, 13, "victor", " \t", ErrInvalid, "states its reason"},
		{"reason too long", id, 13, "victor", long, ErrInvalid, "longer than 500 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rejections, audit := count(t, db, "rejections"), count(t, db, "audit")
			r, err := db.Reject(ctx, tt.search, tt.face, tt.verifier, tt.reason)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Reject = %+v, %v; want %v", r, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if n := count(t, db, "rejections"); n != rejections {
				t.Errorf("%d rejections, want %d", n, rejections)
			}
			if n := count(t, db, "audit"); n != audit {
				t.Errorf("%d audit entries, want %d", n, audit)
			}
		})
	}
	// A reason of exactly the limit is accepted.
	if _, err := db.Reject(ctx, id, 13, "victor", long[:len(long)-len("é")]); err != nil {
		t.Errorf("a reason of %d characters: %v", MaxRejectReason, err)
	}
	// A second verifier may reject a face rejected already.
	if _, err := db.Reject(ctx, id, 12, "victor", "agreed: not him"); err != nil {
		t.Errorf("second rejection: %v", err)
	}
	got, err := db.Rejections(ctx, id)
	if err != nil || len(got[12]) != 2 || got[12][0].Verifier != "vera" || got[12][1].Verifier != "victor" || len(got[13]) != 1 {
		t.Errorf("Rejections = %+v, %v", got, err)
	}
}
