package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestEnableUser: a disabled user is enabled again, audited once; its
// sessions and API tokens stay ended.
func TestEnableUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	mustUser(t, db, "vera", RoleVerifier)
	var hash [32]byte
	hash[0] = 1
	if _, err := db.CreateAPIToken(ctx, "vera", "script", hash, time.Time{}, "vera"); err != nil {
		t.Fatal(err)
	}
	if err := db.DisableUser(ctx, "vera", "admin-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.EnableUser(ctx, "vera", "admin-3"); err != nil {
		t.Fatal(err)
	}
	if err := db.EnableUser(ctx, "vera", "admin-3"); err != nil {
		t.Fatalf("second EnableUser: %v", err) // writes nothing
	}
	u, err := db.User(ctx, "vera")
	if err != nil || !u.Disabled.IsZero() || !u.Has(RoleVerifier) {
		t.Fatalf("User = %+v, %v: want enabled, with the verifier role", u, err)
	}
	if _, _, err := db.APITokenUser(ctx, hash); !errors.Is(err, ErrRevoked) {
		t.Errorf("the token revoked by disabling works again: %v", err)
	}
	var enables []string
	for _, e := range auditOf(t, db, "user/vera") {
		if e.Action == "user.enable" {
			enables = append(enables, e.Actor+" "+string(e.Detail))
		}
	}
	if len(enables) != 1 || enables[0] != `admin-3 {"roles":["verifier"]}` {
		t.Errorf("user.enable entries = %q, want one by admin-3 with the roles", enables)
	}
	if err := db.EnableUser(ctx, "bob", "admin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("enable unknown user err = %v, want ErrNotFound", err)
	}
	if err := db.EnableUser(ctx, "vera", " "); !errors.Is(err, ErrInvalid) {
		t.Errorf("enable without actor err = %v, want ErrInvalid", err)
	}
}
