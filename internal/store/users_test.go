package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func mustUser(t testing.TB, db *DB, name string, roles ...Role) {
	t.Helper()
	if err := db.AddUser(context.Background(), name, roles, "admin-1"); err != nil {
		t.Fatalf("AddUser(%s): %v", name, err)
	}
}

func TestParseRoles(t *testing.T) {
	t.Parallel()
	for _, r := range roleOrder {
		got, err := ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Verifier", " verifier", "root"} {
		if _, err := ParseRole(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRole(%q) err = %v, want ErrInvalid", s, err)
		}
	}
	tests := []struct {
		name    string
		in      string
		want    []Role
		wantErr error
	}{
		{name: "empty", in: " ", want: nil},
		{name: "one", in: "verifier", want: []Role{RoleVerifier}},
		{name: "canonical order and duplicates", in: "auditor, verifier,admin,verifier",
			want: []Role{RoleAdmin, RoleVerifier, RoleAuditor}},
		{name: "unknown", in: "verifier,root", wantErr: ErrInvalid},
		{name: "empty name", in: "verifier,,dpo", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRoles(tt.in)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ParseRoles(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRoles(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	created := clock.Now()

	if err := db.AddUser(ctx, "vera", []Role{RoleVerifier, RoleInvestigator, RoleVerifier}, "admin-1"); err != nil {
		t.Fatal(err)
	}
	want := User{Name: "vera", Roles: []Role{RoleInvestigator, RoleVerifier}, CreatedBy: "admin-1", Created: created}
	if got, err := db.User(ctx, "vera"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("User = %+v, %v\nwant   %+v", got, err, want)
	}
	if u, _ := db.User(ctx, "vera"); !u.Has(RoleVerifier) || u.Has(RoleAdmin) {
		t.Errorf("Has: verifier %v admin %v", u.Has(RoleVerifier), u.Has(RoleAdmin))
	}
	if err := db.AddUser(ctx, "vera", []Role{RoleAdmin}, "admin-2"); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate AddUser err = %v, want ErrExists", err)
	}

	clock.Add(time.Hour)
	if err := db.SetUserRoles(ctx, "vera", []Role{RoleVerifier}, "admin-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetUserRoles(ctx, "vera", []Role{RoleVerifier}, "admin-2"); err != nil {
		t.Fatalf("unchanged SetUserRoles: %v", err) // writes nothing
	}
	clock.Add(time.Hour)
	if err := db.DisableUser(ctx, "vera", "admin-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.DisableUser(ctx, "vera", "admin-2"); err != nil {
		t.Fatalf("second DisableUser: %v", err) // writes nothing
	}
	want.Roles = []Role{RoleVerifier}
	want.Disabled = clock.Now()
	got, err := db.User(ctx, "vera")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("User = %+v, %v\nwant   %+v", got, err, want)
	}
	if got.Has(RoleVerifier) {
		t.Error("a disabled user has a role")
	}
	if err := db.AddUser(ctx, "vera", []Role{RoleVerifier}, "admin-1"); !errors.Is(err, ErrExists) {
		t.Errorf("AddUser of a disabled name err = %v, want ErrExists", err)
	}

	mustUser(t, db, "alice")
	users, err := db.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Name != "alice" || users[0].Roles != nil || users[1].Name != "vera" {
		t.Errorf("Users = %+v", users)
	}

	entries := auditOf(t, db, "user/vera")
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+" "+e.Actor+" "+string(e.Detail))
	}
	wantActions := []string{
		`user.add admin-1 {"roles":["investigator","verifier"]}`,
		`user.roles admin-2 {"roles":["verifier"],"from":["investigator","verifier"]}`,
		`user.disable admin-2 {"roles":["verifier"]}`,
	}
	if !reflect.DeepEqual(actions, wantActions) {
		t.Errorf("audit of user/vera:\n%q\nwant\n%q", actions, wantActions)
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}

func TestUserErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	mustUser(t, db, "vera", RoleVerifier)
	tests := []struct {
		name    string
		op      func() error
		wantErr error
	}{
		{"empty name", func() error { return db.AddUser(ctx, "", nil, "admin") }, ErrInvalid},
		{"spaces around name", func() error { return db.AddUser(ctx, " bob", nil, "admin") }, ErrInvalid},
		{"control in name", func() error { return db.AddUser(ctx, "bo\nb", nil, "admin") }, ErrInvalid},
		{"unknown role", func() error { return db.AddUser(ctx, "bob", []Role{"root"}, "admin") }, ErrInvalid},
		{"no actor", func() error { return db.AddUser(ctx, "bob", nil, " ") }, ErrInvalid},
		{"set roles of unknown user", func() error { return db.SetUserRoles(ctx, "bob", nil, "admin") }, ErrNotFound},
		{"set unknown role", func() error { return db.SetUserRoles(ctx, "vera", []Role{"root"}, "admin") }, ErrInvalid},
		{"set roles without actor", func() error { return db.SetUserRoles(ctx, "vera", nil, "") }, ErrInvalid},
		{"disable unknown user", func() error { return db.DisableUser(ctx, "bob", "admin") }, ErrNotFound},
		{"disable without actor", func() error { return db.DisableUser(ctx, "vera", "") }, ErrInvalid},
		{"read unknown user", func() error { _, err := db.User(ctx, "bob"); return err }, ErrNotFound},
	}
	for _, tt := range tests {
		if err := tt.op(); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if n := count(t, db, "users"); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
	if n := count(t, db, "audit"); n != 1 {
		t.Errorf("%d audit entries, want 1", n)
	}
	if u, err := db.User(ctx, "vera"); err != nil || !u.Has(RoleVerifier) || !u.Disabled.IsZero() {
		t.Errorf("vera changed: %+v, %v", u, err)
	}
}

func TestUsersSchemaChecks(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	const cols = `INSERT INTO users (name, roles, created_by, created_at) VALUES `
	if _, err := db.w.Exec(cols + `('a', '["verifier"]', 'admin', 1)`); err != nil {
		t.Fatalf("valid row: %v", err)
	}
	for name, values := range map[string]string{
		"empty name":       `('', '[]', 'admin', 1)`,
		"roles not array":  `('b', '{}', 'admin', 1)`,
		"roles not JSON":   `('b', '[', 'admin', 1)`,
		"no creator":       `('b', '[]', '', 1)`,
		"duplicate name":   `('a', '[]', 'admin', 1)`,
		"text for integer": `('b', '[]', 'admin', 'x')`,
	} {
		if _, err := db.w.Exec(cols + values); err == nil {
			t.Errorf("%s: row accepted", name)
		}
	}
}

// TestUsersMigration opens a file at schema version 3 (before users and
// confirmations) and checks that it gains both tables and keeps its data.
func TestUsersMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AddImage(ctx, testImage(mustSource(t, db, nil), 1), testFaces(2, 16, 1)); err != nil {
		t.Fatal(err)
	}
	id, _, err := db.RecordSearch(ctx, testSearch("ivan", 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	db = reopenFrom(t, path, db, 3)
	if got := version(t, db); got != schemaVersion || schemaVersion < 4 {
		t.Errorf("schema version %d, want %d (≥ 4)", got, schemaVersion)
	}
	if _, err := db.Search(ctx, id); err != nil {
		t.Errorf("search lost: %v", err)
	}
	mustUser(t, db, "vera", RoleVerifier)
	if _, err := db.Confirm(ctx, id, 2, "vera"); err != nil {
		t.Errorf("Confirm after migration: %v", err)
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}
