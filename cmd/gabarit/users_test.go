package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gabarit/internal/store"
)

// TestUserEnableAndRoles: an admin changes a user's roles and enables a
// disabled user from the command line, flags after the name too; an admin
// cannot take the admin role from themselves; both changes are audited.
func TestUserEnableAndRoles(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	gabarit := func(args ...string) (string, string, error) {
		t.Helper()
		args = append(append([]string{"user"}, args...), "--data", data)
		var out, errOut bytes.Buffer
		err := run(ctx, args, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	for _, args := range [][]string{{"add", "--roles", "admin", actor()}, {"add", "--roles", "verifier", "nina"}} {
		if _, stderr, err := gabarit(args...); err != nil {
			t.Fatalf("user %v: %v %s", args, err, stderr)
		}
	}
	if out, stderr, err := gabarit("roles", "nina", "--roles", "investigator,verifier"); err != nil || !strings.Contains(out, "the roles of nina are investigator, verifier") {
		t.Errorf("user roles: %q %q %v", out, stderr, err)
	}
	if _, stderr, err := gabarit("roles", "nina", "--roles", "superuser"); !isExit(err, 2) || !strings.Contains(stderr, "at least one of admin") {
		t.Errorf("an unknown role: %v %q", err, stderr)
	}
	if _, _, err := gabarit("roles", actor(), "--roles", "verifier"); err == nil || !strings.Contains(err.Error(), "admin role from yourself") {
		t.Errorf("dropping one's own admin role: %v", err)
	}
	if _, stderr, err := gabarit("disable", "nina"); err != nil {
		t.Fatal(err, stderr)
	}
	if out, stderr, err := gabarit("enable", "nina"); err != nil || !strings.Contains(out, "user nina enabled") {
		t.Errorf("user enable: %q %q %v", out, stderr, err)
	}
	db, err := store.Open(ctx, data+"/gabarit.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.User(ctx, "nina")
	if err != nil || !u.Disabled.IsZero() || !slices.Equal(u.Roles, []store.Role{store.RoleInvestigator, store.RoleVerifier}) {
		t.Errorf("nina = %+v, %v", u, err)
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"user.roles", "user.disable", "user.enable"} {
		if !slices.Contains(actions, want) {
			t.Errorf("no %s in the audit log: %v", want, actions)
		}
	}
}

// isExit reports whether err is the exit code code.
func isExit(err error, code int) bool {
	var ee exitError
	return errors.As(err, &ee) && ee.code == code
}
