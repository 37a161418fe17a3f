package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// testSearch is a valid search by actor that returned faces.
func testSearch(actor string, faces ...int64) Search {
	return Search{
		Actor:       actor,
		Purpose:     "missing person report",
		CaseRef:     "CASE-2025-001",
		ProbeSHA256: sha256.Sum256([]byte("probe")),
		K:           10,
		Threshold:   0.42,
		Returned:    faces,
	}
}

// confirmFixture opens a store with the users of the confirmation tests and
// one search by ivan (an investigator who is also a verifier) that returned
// faces 11, 12 and 13.
func confirmFixture(t *testing.T) (db *DB, searchID int64) {
	t.Helper()
	ctx := context.Background()
	db = openTest(t)
	mustUser(t, db, "ivan", RoleInvestigator, RoleVerifier)
	mustUser(t, db, "vera", RoleVerifier)
	mustUser(t, db, "victor", RoleVerifier, RoleAuditor)
	mustUser(t, db, "val", RoleVerifier)
	mustUser(t, db, "olga", RoleOperator, RoleInvestigator)
	mustUser(t, db, "dora", RoleVerifier)
	if err := db.DisableUser(ctx, "dora", "admin-1"); err != nil {
		t.Fatal(err)
	}
	// Faces 1 to 13 exist, so that 11, 12 and 13 are held faces.
	if _, _, err := db.AddImage(ctx, testImage(mustSource(t, db, nil), 1), testFaces(13, 16, 1)); err != nil {
		t.Fatal(err)
	}
	searchID, _, err := db.RecordSearch(ctx, testSearch("ivan", 11, 12, 13))
	if err != nil {
		t.Fatal(err)
	}
	return db, searchID
}

func TestConfirmTwoVerifiers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, id := confirmFixture(t)

	steps := []struct {
		face     int64
		verifier string
		want     Confirmation
	}{
		{12, "vera", Confirmation{SearchID: id, FaceID: 12, Verifiers: []string{"vera"}}},
		{12, "victor", Confirmation{SearchID: id, FaceID: 12, Verifiers: []string{"vera", "victor"}, Identified: true}},
		{12, "val", Confirmation{SearchID: id, FaceID: 12, Verifiers: []string{"vera", "victor", "val"}, Identified: true}},
		{11, "victor", Confirmation{SearchID: id, FaceID: 11, Verifiers: []string{"victor"}}},
	}
	for _, s := range steps {
		got, err := db.Confirm(ctx, id, s.face, s.verifier)
		if err != nil {
			t.Fatalf("Confirm(%d, %s): %v", s.face, s.verifier, err)
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("Confirm(%d, %s) = %+v, want %+v", s.face, s.verifier, got, s.want)
		}
	}

	got, err := db.Confirmations(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]Confirmation{11: steps[3].want, 12: steps[2].want}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Confirmations = %+v\nwant            %+v", got, want)
	}

	object := fmt.Sprintf("search/%d", id)
	var log []string
	for _, e := range auditOf(t, db, object) {
		line := e.Actor + " " + e.Action
		if e.Action != "search" { // the search's own detail is checked by the search tests
			line += " " + string(e.Detail)
		}
		log = append(log, line)
	}
	wantLog := []string{
		"ivan search",
		`vera search.confirm {"face":12,"confirmations":1,"identified":false}`,
		`victor search.confirm {"face":12,"confirmations":2,"identified":true}`,
		`val search.confirm {"face":12,"confirmations":3,"identified":true}`,
		`victor search.confirm {"face":11,"confirmations":1,"identified":false}`,
	}
	if !reflect.DeepEqual(log, wantLog) {
		t.Errorf("audit of %s:\n%q\nwant\n%q", object, log, wantLog)
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}

func TestConfirmRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, id := confirmFixture(t)
	if _, err := db.Confirm(ctx, id, 12, "vera"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		search   int64
		face     int64
		verifier string
		wantErr  error
		wantMsg  string
	}{
		{"same verifier twice", id, 12, "vera", ErrExists, "already confirmed by this user"},
		{"own search, also a verifier", id, 13, "ivan", ErrForbidden, "a user cannot confirm their own search"},
		{"not a verifier", id, 13, "olga", ErrForbidden, "role"},
		{"disabled verifier", id, 13, "dora", ErrForbidden, "disabled"},
		{"unregistered user", id, 13, "nobody", ErrForbidden, "not a registered user"},
		{"unknown search", id + 1, 12, "victor", ErrNotFound, ""},
		{"face not returned", id, 99, "victor", ErrInvalid, fmt.Sprintf("face 99 was not returned by search %d", id)},
		{"blank verifier", id, 12, " ", ErrInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			confirmations, audit := count(t, db, "confirmations"), count(t, db, "audit")
			c, err := db.Confirm(ctx, tt.search, tt.face, tt.verifier)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Confirm = %+v, %v; want %v", c, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if n := count(t, db, "confirmations"); n != confirmations {
				t.Errorf("%d confirmations, want %d", n, confirmations)
			}
			if n := count(t, db, "audit"); n != audit {
				t.Errorf("%d audit entries, want %d", n, audit)
			}
		})
	}
	got, err := db.Confirmations(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]Confirmation{12: {SearchID: id, FaceID: 12, Verifiers: []string{"vera"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Confirmations = %+v, want %+v", got, want)
	}
}

// TestConfirmRoleChanges checks that confirming follows the verifier's
// current roles: revoked or disabled verifiers cannot confirm, and earlier
// confirmations stay.
func TestConfirmRoleChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, id := confirmFixture(t)
	if err := db.SetUserRoles(ctx, "olga", []Role{RoleVerifier}, "admin-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Confirm(ctx, id, 13, "olga"); err != nil {
		t.Fatalf("Confirm by a new verifier: %v", err)
	}
	if err := db.SetUserRoles(ctx, "vera", nil, "admin-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Confirm(ctx, id, 13, "vera"); !errors.Is(err, ErrForbidden) {
		t.Errorf("Confirm by a revoked verifier err = %v, want ErrForbidden", err)
	}
	if err := db.DisableUser(ctx, "olga", "admin-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Confirm(ctx, id, 12, "olga"); !errors.Is(err, ErrForbidden) {
		t.Errorf("Confirm by a disabled verifier err = %v, want ErrForbidden", err)
	}
	got, err := db.Confirmations(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]Confirmation{13: {SearchID: id, FaceID: 13, Verifiers: []string{"olga"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Confirmations = %+v, want %+v", got, want)
	}
}

func TestConfirmationsOfSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, id := confirmFixture(t)
	got, err := db.Confirmations(ctx, id)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Confirmations without any = %v, %v; want an empty map", got, err)
	}
	if _, err := db.Confirmations(ctx, id+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Confirmations of an unknown search err = %v, want ErrNotFound", err)
	}
	// Confirmations of another search do not leak into this one.
	other, _, err := db.RecordSearch(ctx, testSearch("olga", 12))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Confirm(ctx, other, 12, "vera"); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Confirmations(ctx, id); err != nil || len(got) != 0 {
		t.Errorf("Confirmations of search %d = %v, %v; want none", id, got, err)
	}
	if got, err := db.Confirmations(ctx, other); err != nil || len(got) != 1 || got[12].SearchID != other {
		t.Errorf("Confirmations of search %d = %v, %v", other, got, err)
	}
}

// TestConfirmationOutlivesErasure checks that erasing a confirmed face
// keeps its confirmations (face_id is not a foreign key): the record of who
// identified whom stays for the recipients' notice and the authority.
func TestConfirmationOutlivesErasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	_, faces, err := db.AddImage(ctx, testImage(src, 1), testFaces(2, 16, 1))
	if err != nil {
		t.Fatal(err)
	}
	mustUser(t, db, "vera", RoleVerifier)
	mustUser(t, db, "victor", RoleVerifier)
	id, _, err := db.RecordSearch(ctx, testSearch("ivan", faces...))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"vera", "victor"} {
		if _, err := db.Confirm(ctx, id, faces[0], v); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.EraseFaces(ctx, faces, "dpo-1", "rights/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Face(ctx, faces[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("face still there: %v", err)
	}
	got, err := db.Confirmations(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c := got[faces[0]]; !c.Identified || len(c.Verifiers) != 2 {
		t.Errorf("confirmation after erasure = %+v", c)
	}
	// Nobody is newly identified from data no longer held.
	mustUser(t, db, "val", RoleVerifier)
	if _, err := db.Confirm(ctx, id, faces[1], "val"); !errors.Is(err, ErrNotFound) {
		t.Errorf("confirming an erased face: %v, want ErrNotFound", err)
	}
}
