package store

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gabarit/internal/passwd"
)

// testPHC is a well-formed argon2id hash (of no password in particular).
const testPHC = "$argon2id$v=19$m=65536,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZha2U"

// newToken returns a token and its hash.
func newToken(t testing.TB, prefix string) (string, [32]byte) {
	t.Helper()
	tok, hash, err := passwd.NewToken(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return tok, hash
}

// actions returns "action actor detail" for each audit entry on object.
func actions(t testing.TB, db *DB, object string) []string {
	t.Helper()
	var out []string
	for _, e := range auditOf(t, db, object) {
		out = append(out, e.Action+" "+e.Actor+" "+string(e.Detail))
	}
	return out
}

// assertNoSecrets fails if any audit entry mentions one of the secrets, or
// the hex or base64 forms of one of the hashes.
func assertNoSecrets(t *testing.T, db *DB, secrets []string, hashes [][32]byte) {
	t.Helper()
	for _, h := range hashes {
		secrets = append(secrets, hex.EncodeToString(h[:]), base64.StdEncoding.EncodeToString(h[:]),
			base64.RawURLEncoding.EncodeToString(h[:]), string(h[:]))
	}
	all, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no audit entries")
	}
	for _, e := range all {
		text := e.Actor + " " + e.Action + " " + e.Object + " " + string(e.Detail)
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
				t.Errorf("audit entry %d (%s) holds a secret: %s", e.ID, e.Action, text)
			}
		}
	}
	if ok, bad, err := db.VerifyAudit(context.Background()); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}

func TestPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	mustUser(t, db, "ada", RoleInvestigator)
	mustUser(t, db, "cli:root", RoleAdmin)

	if _, _, err := db.PasswordHash(ctx, "ada"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PasswordHash before any: err = %v, want ErrNotFound", err)
	}
	if _, _, err := db.PasswordHash(ctx, "bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PasswordHash of unknown user: err = %v, want ErrNotFound", err)
	}
	real, err := passwd.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetPassword(ctx, "ada", real, "admin-1"); err != nil {
		t.Fatal(err)
	}
	hash, u, err := db.PasswordHash(ctx, "ada")
	if err != nil || hash != real || u.Name != "ada" || !u.Has(RoleInvestigator) {
		t.Fatalf("PasswordHash = %q, %+v, %v", hash, u, err)
	}
	if ok, err := passwd.Verify("correct horse battery", hash); !ok || err != nil {
		t.Errorf("Verify(stored hash) = %v, %v", ok, err)
	}
	if err := db.SetPassword(ctx, "ada", testPHC, "ada"); err != nil {
		t.Fatal(err)
	}
	if hash, _, err := db.PasswordHash(ctx, "ada"); err != nil || hash != testPHC {
		t.Errorf("PasswordHash after change = %q, %v", hash, err)
	}
	if _, _, err := db.PasswordHash(ctx, "cli:root"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PasswordHash of a cli account: err = %v, want ErrNotFound", err)
	}
	// A disabled user's hash is still returned, with the user showing it is
	// disabled; the caller refuses the login.
	if err := db.DisableUser(ctx, "ada", "admin-1"); err != nil {
		t.Fatal(err)
	}
	if _, u, err := db.PasswordHash(ctx, "ada"); err != nil || u.Disabled.IsZero() {
		t.Errorf("PasswordHash of disabled user = %+v, %v", u, err)
	}

	for name, tt := range map[string]struct {
		user, hash, by string
		want           error
	}{
		"unknown user":  {"bob", testPHC, "admin-1", ErrNotFound},
		"no actor":      {"ada", testPHC, " ", ErrInvalid},
		"empty hash":    {"ada", "", "admin-1", ErrInvalid},
		"plain text":    {"ada", "correct horse battery", "admin-1", ErrInvalid},
		"space in hash": {"ada", "$argon2id$ x", "admin-1", ErrInvalid},
		"newline":       {"ada", testPHC + "\n", "admin-1", ErrInvalid},
		"too long":      {"ada", "$" + strings.Repeat("a", 512), "admin-1", ErrInvalid},
	} {
		if err := db.SetPassword(ctx, tt.user, tt.hash, tt.by); !errors.Is(err, tt.want) {
			t.Errorf("%s: SetPassword err = %v, want %v", name, err, tt.want)
		}
	}

	want := []string{
		`user.add admin-1 {"roles":["investigator"]}`,
		`user.password admin-1 {"replaced":false}`,
		`user.password ada {"replaced":true}`,
		`user.disable admin-1 {"roles":["investigator"]}`,
	}
	if got := actions(t, db, "user/ada"); !reflect.DeepEqual(got, want) {
		t.Errorf("audit of user/ada:\n%q\nwant\n%q", got, want)
	}
	assertNoSecrets(t, db, []string{real, testPHC, strings.Split(real, "$")[5], "c29tZXNhbHRzb21lc2FsdA"}, nil)
}

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	mustUser(t, db, "ada", RoleInvestigator)
	start := clock.Now()

	tok, hash := newToken(t, "gbs_")
	const csrf = "csrf-secret-value"
	expires := start.Add(8 * time.Hour)
	if err := db.CreateSession(ctx, hash, "ada", csrf, expires); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSession(ctx, hash, "ada", "other", expires); !errors.Is(err, ErrExists) {
		t.Errorf("CreateSession with a used hash: err = %v, want ErrExists", err)
	}
	s, err := db.Session(ctx, passwd.TokenHash(tok))
	if err != nil {
		t.Fatal(err)
	}
	if s.User.Name != "ada" || !s.User.Has(RoleInvestigator) || s.CSRF != csrf ||
		!s.Created.Equal(start) || !s.Expires.Equal(expires) || !s.LastSeen.Equal(start) {
		t.Errorf("Session = %+v", s)
	}

	lastSeen := func() time.Time {
		t.Helper()
		var v int64
		if err := db.r.QueryRow(`SELECT last_seen_at FROM sessions WHERE token_hash = ?`, hash[:]).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return fromMS(v)
	}
	clock.Add(59 * time.Second)
	if s, err := db.Session(ctx, hash); err != nil || !s.LastSeen.Equal(start) || !lastSeen().Equal(start) {
		t.Errorf("Session 59 s later: last seen %v (stored %v), %v; want unchanged", s.LastSeen, lastSeen(), err)
	}
	clock.Add(time.Second)
	if s, err := db.Session(ctx, hash); err != nil || !s.LastSeen.Equal(clock.Now()) || !lastSeen().Equal(clock.Now()) {
		t.Errorf("Session a minute later: last seen %v (stored %v), %v; want now", s.LastSeen, lastSeen(), err)
	}

	// Expiry: valid until the instant before expires.
	clock.Add(expires.Sub(clock.Now()) - time.Millisecond)
	if _, err := db.Session(ctx, hash); err != nil {
		t.Errorf("Session 1 ms before expiry: %v", err)
	}
	clock.Add(time.Millisecond)
	if _, err := db.Session(ctx, hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session at expiry: err = %v, want ErrNotFound", err)
	}

	// Logout of a live session.
	_, hash2 := newToken(t, "gbs_")
	if err := db.CreateSession(ctx, hash2, "ada", "csrf-2", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSession(ctx, hash2, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(ctx, hash2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session after logout: err = %v, want ErrNotFound", err)
	}
	if err := db.DeleteSession(ctx, hash2, "ada"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteSession: err = %v, want ErrNotFound", err)
	}
	if err := db.DeleteSession(ctx, hash2, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("DeleteSession without actor: err = %v, want ErrInvalid", err)
	}

	// Housekeeping deletes only expired sessions, without audit entries.
	_, hash3 := newToken(t, "gbs_")
	if err := db.CreateSession(ctx, hash3, "ada", "csrf-3", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := count(t, db, "audit")
	if n, err := db.DeleteExpiredSessions(ctx, clock.Now()); n != 1 || err != nil {
		t.Errorf("DeleteExpiredSessions = %d, %v, want 1 (the first session)", n, err)
	}
	if n, err := db.DeleteExpiredSessions(ctx, clock.Now()); n != 0 || err != nil {
		t.Errorf("second DeleteExpiredSessions = %d, %v, want 0", n, err)
	}
	if n := count(t, db, "audit"); n != before {
		t.Errorf("DeleteExpiredSessions wrote %d audit entries", n-before)
	}
	if _, err := db.Session(ctx, hash3); err != nil {
		t.Errorf("live session deleted: %v", err)
	}
	if n := count(t, db, "sessions"); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}

	want := []string{
		`user.add admin-1 {"roles":["investigator"]}`,
		`session.login ada {"expires":"2025-03-01T20:00:00Z"}`,
		`session.login ada {"expires":"2025-03-01T21:00:00Z"}`,
		`session.logout ada {}`,
		`session.login ada {"expires":"2025-03-01T21:00:00Z"}`,
	}
	if got := actions(t, db, "user/ada"); !reflect.DeepEqual(got, want) {
		t.Errorf("audit of user/ada:\n%q\nwant\n%q", got, want)
	}
	assertNoSecrets(t, db, []string{tok, csrf, "csrf-2", "csrf-3"}, [][32]byte{hash, hash2, hash3})
}

func TestSessionErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	mustUser(t, db, "ada", RoleInvestigator)
	mustUser(t, db, "gone")
	if err := db.DisableUser(ctx, "gone", "admin-1"); err != nil {
		t.Fatal(err)
	}
	_, hash := newToken(t, "")
	later := clock.Now().Add(time.Hour)
	for name, tt := range map[string]struct {
		hash    [32]byte
		user    string
		csrf    string
		expires time.Time
		want    error
	}{
		"zero hash":       {[32]byte{}, "ada", "c", later, ErrInvalid},
		"no csrf":         {hash, "ada", "", later, ErrInvalid},
		"expires now":     {hash, "ada", "c", clock.Now(), ErrInvalid},
		"expired":         {hash, "ada", "c", clock.Now().Add(-time.Hour), ErrInvalid},
		"no expiry":       {hash, "ada", "c", time.Time{}, ErrInvalid},
		"unknown user":    {hash, "bob", "c", later, ErrNotFound},
		"disabled user":   {hash, "gone", "c", later, ErrForbidden},
		"sub-ms lifetime": {hash, "ada", "c", clock.Now().Add(time.Microsecond), ErrInvalid},
	} {
		if err := db.CreateSession(ctx, tt.hash, tt.user, tt.csrf, tt.expires); !errors.Is(err, tt.want) {
			t.Errorf("%s: CreateSession err = %v, want %v", name, err, tt.want)
		}
	}
	if n := count(t, db, "sessions"); n != 0 {
		t.Errorf("%d sessions written", n)
	}
	if _, err := db.Session(ctx, hash); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session of unknown token: err = %v, want ErrNotFound", err)
	}
	// A session of a disabled user that outlived DisableUser (written around
	// the store) grants nothing.
	if _, err := db.w.Exec(`INSERT INTO sessions VALUES (?, 'gone', 'c', ?, ?, ?)`,
		hash[:], ms(clock.Now()), ms(later), ms(clock.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(ctx, hash); !errors.Is(err, ErrForbidden) {
		t.Errorf("Session of a disabled user: err = %v, want ErrForbidden", err)
	}
}

func TestAPITokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	mustUser(t, db, "ci", RoleInvestigator)
	mustUser(t, db, "ops", RoleOperator)
	start := clock.Now()

	tokA, hashA := newToken(t, "gbt_")
	idA, err := db.CreateAPIToken(ctx, "ci", "nightly search", hashA, time.Time{}, "admin-1")
	if err != nil {
		t.Fatal(err)
	}
	tokB, hashB := newToken(t, "gbt_")
	idB, err := db.CreateAPIToken(ctx, "ci", "one day", hashB, start.Add(24*time.Hour), "admin-1")
	if err != nil {
		t.Fatal(err)
	}
	tokC, hashC := newToken(t, "gbt_")
	idC, err := db.CreateAPIToken(ctx, "ops", "ingest", hashC, time.Time{}, "admin-2")
	if err != nil {
		t.Fatal(err)
	}
	if idA != 1 || idB != 2 || idC != 3 {
		t.Errorf("ids %d %d %d, want 1 2 3", idA, idB, idC)
	}
	if _, err := db.CreateAPIToken(ctx, "ops", "again", hashA, time.Time{}, "admin-1"); !errors.Is(err, ErrExists) {
		t.Errorf("CreateAPIToken with a used hash: err = %v, want ErrExists", err)
	}

	wantA := APIToken{ID: idA, User: "ci", Label: "nightly search", CreatedBy: "admin-1", Created: start}
	wantB := APIToken{ID: idB, User: "ci", Label: "one day", CreatedBy: "admin-1", Created: start, Expires: start.Add(24 * time.Hour)}
	wantC := APIToken{ID: idC, User: "ops", Label: "ingest", CreatedBy: "admin-2", Created: start}
	if got, err := db.APITokens(ctx, "ci"); err != nil || !reflect.DeepEqual(got, []APIToken{wantA, wantB}) {
		t.Errorf("APITokens(ci) = %+v, %v", got, err)
	}
	if got, err := db.APITokens(ctx, ""); err != nil || !reflect.DeepEqual(got, []APIToken{wantA, wantB, wantC}) {
		t.Errorf("APITokens(all) = %+v, %v", got, err)
	}
	if got, err := db.APITokens(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Errorf("APITokens(nobody) = %+v, %v", got, err)
	}

	// Use records last_used_at at most once a minute.
	tk, u, err := db.APITokenUser(ctx, passwd.TokenHash(tokA))
	wantA.LastUsed = start
	if err != nil || !reflect.DeepEqual(tk, wantA) || u.Name != "ci" || !u.Has(RoleInvestigator) {
		t.Errorf("APITokenUser(A) = %+v, %+v, %v", tk, u, err)
	}
	clock.Add(30 * time.Second)
	if tk, _, err := db.APITokenUser(ctx, hashA); err != nil || !tk.LastUsed.Equal(start) {
		t.Errorf("APITokenUser 30 s later: last used %v, %v; want %v", tk.LastUsed, err, start)
	}
	clock.Add(30 * time.Second)
	if tk, _, err := db.APITokenUser(ctx, hashA); err != nil || !tk.LastUsed.Equal(clock.Now()) {
		t.Errorf("APITokenUser a minute later: last used %v, %v; want now", tk.LastUsed, err)
	}
	if got, _ := db.APITokens(ctx, "ci"); len(got) != 2 || !got[0].LastUsed.Equal(clock.Now()) || !got[1].LastUsed.IsZero() {
		t.Errorf("APITokens after use = %+v", got)
	}

	// Expiry.
	clock.Add(start.Add(24*time.Hour).Sub(clock.Now()) - time.Millisecond)
	if _, _, err := db.APITokenUser(ctx, hashB); err != nil {
		t.Errorf("APITokenUser 1 ms before expiry: %v", err)
	}
	clock.Add(time.Millisecond)
	if tk, u, err := db.APITokenUser(ctx, hashB); !errors.Is(err, ErrExpired) || tk.ID != 0 || u.Name != "" {
		t.Errorf("APITokenUser at expiry = %+v, %+v, %v, want ErrExpired", tk, u, err)
	}

	// Revocation: once audited, twice a no-op.
	if err := db.RevokeAPIToken(ctx, idA, "admin-2"); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeAPIToken(ctx, idA, "admin-1"); err != nil {
		t.Errorf("second RevokeAPIToken: %v", err)
	}
	if _, _, err := db.APITokenUser(ctx, hashA); !errors.Is(err, ErrRevoked) {
		t.Errorf("APITokenUser of revoked token: err = %v, want ErrRevoked", err)
	}
	if err := db.RevokeAPIToken(ctx, idB, "admin-2"); err != nil {
		t.Errorf("RevokeAPIToken of an expired token: %v", err)
	}
	if _, _, err := db.APITokenUser(ctx, hashB); !errors.Is(err, ErrRevoked) {
		t.Errorf("APITokenUser of revoked expired token: err = %v, want ErrRevoked", err)
	}
	if got, _ := db.APITokens(ctx, "ci"); len(got) != 2 || !got[0].Revoked.Equal(clock.Now()) {
		t.Errorf("APITokens after revocation = %+v", got)
	}
	if err := db.RevokeAPIToken(ctx, 99, "admin-2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeAPIToken(99): err = %v, want ErrNotFound", err)
	}
	if err := db.RevokeAPIToken(ctx, idC, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("RevokeAPIToken without actor: err = %v, want ErrInvalid", err)
	}
	if _, _, err := db.APITokenUser(ctx, hashC); err != nil {
		t.Errorf("other user's token affected: %v", err)
	}
	_, unknown := newToken(t, "gbt_")
	if _, _, err := db.APITokenUser(ctx, unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("APITokenUser of unknown token: err = %v, want ErrNotFound", err)
	}

	for object, want := range map[string][]string{
		"token/1": {
			`token.create admin-1 {"user":"ci","label":"nightly search"}`,
			`token.revoke admin-2 {"user":"ci"}`,
		},
		"token/2": {
			`token.create admin-1 {"user":"ci","label":"one day","expires":"2025-03-02T12:00:00Z"}`,
			`token.revoke admin-2 {"user":"ci"}`,
		},
		"token/3": {`token.create admin-2 {"user":"ops","label":"ingest"}`},
	} {
		if got := actions(t, db, object); !reflect.DeepEqual(got, want) {
			t.Errorf("audit of %s:\n%q\nwant\n%q", object, got, want)
		}
	}
	assertNoSecrets(t, db, []string{tokA, tokB, tokC}, [][32]byte{hashA, hashB, hashC})
}

func TestAPITokenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	mustUser(t, db, "ci")
	mustUser(t, db, "gone")
	if err := db.DisableUser(ctx, "gone", "admin-1"); err != nil {
		t.Fatal(err)
	}
	_, hash := newToken(t, "gbt_")
	for name, tt := range map[string]struct {
		user, label string
		hash        [32]byte
		expires     time.Time
		by          string
		want        error
	}{
		"no actor":         {"ci", "x", hash, time.Time{}, " ", ErrInvalid},
		"zero hash":        {"ci", "x", [32]byte{}, time.Time{}, "admin-1", ErrInvalid},
		"empty label":      {"ci", "", hash, time.Time{}, "admin-1", ErrInvalid},
		"spaced label":     {"ci", " x", hash, time.Time{}, "admin-1", ErrInvalid},
		"control in label": {"ci", "a\tb", hash, time.Time{}, "admin-1", ErrInvalid},
		"long label":       {"ci", strings.Repeat("x", 201), hash, time.Time{}, "admin-1", ErrInvalid},
		"invalid UTF-8":    {"ci", "a\xffb", hash, time.Time{}, "admin-1", ErrInvalid},
		"expires now":      {"ci", "x", hash, clock.Now(), "admin-1", ErrInvalid},
		"expired":          {"ci", "x", hash, clock.Now().Add(-time.Hour), "admin-1", ErrInvalid},
		"unknown user":     {"bob", "x", hash, time.Time{}, "admin-1", ErrNotFound},
		"disabled user":    {"gone", "x", hash, time.Time{}, "admin-1", ErrForbidden},
	} {
		if _, err := db.CreateAPIToken(ctx, tt.user, tt.label, tt.hash, tt.expires, tt.by); !errors.Is(err, tt.want) {
			t.Errorf("%s: CreateAPIToken err = %v, want %v", name, err, tt.want)
		}
	}
	if n := count(t, db, "api_tokens"); n != 0 {
		t.Errorf("%d tokens written", n)
	}
	// A live token of a disabled user (written around the store) grants
	// nothing.
	if _, err := db.w.Exec(`INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by)
VALUES ('gone', 'x', ?, ?, 'admin-1')`, hash[:], ms(clock.Now())); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.APITokenUser(ctx, hash); !errors.Is(err, ErrForbidden) {
		t.Errorf("APITokenUser of a disabled user: err = %v, want ErrForbidden", err)
	}
}

func TestDisableUserEndsCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	mustUser(t, db, "ada", RoleInvestigator)
	mustUser(t, db, "bob", RoleInvestigator)
	later := clock.Now().Add(time.Hour)

	var adaSessions [][32]byte
	for range 2 {
		_, h := newToken(t, "gbs_")
		if err := db.CreateSession(ctx, h, "ada", "csrf", later); err != nil {
			t.Fatal(err)
		}
		adaSessions = append(adaSessions, h)
	}
	_, bobSession := newToken(t, "gbs_")
	if err := db.CreateSession(ctx, bobSession, "bob", "csrf", later); err != nil {
		t.Fatal(err)
	}
	var adaTokens [][32]byte
	for _, label := range []string{"a", "b", "c"} {
		_, h := newToken(t, "gbt_")
		if _, err := db.CreateAPIToken(ctx, "ada", label, h, time.Time{}, "admin-1"); err != nil {
			t.Fatal(err)
		}
		adaTokens = append(adaTokens, h)
	}
	_, bobToken := newToken(t, "gbt_")
	if _, err := db.CreateAPIToken(ctx, "bob", "b", bobToken, time.Time{}, "admin-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeAPIToken(ctx, 2, "admin-1"); err != nil { // ada's "b", revoked before
		t.Fatal(err)
	}

	clock.Add(time.Minute)
	if err := db.DisableUser(ctx, "ada", "admin-2"); err != nil {
		t.Fatal(err)
	}
	for _, h := range adaSessions {
		if _, err := db.Session(ctx, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("Session of disabled user: err = %v, want ErrNotFound (deleted)", err)
		}
	}
	for _, h := range adaTokens {
		if _, _, err := db.APITokenUser(ctx, h); !errors.Is(err, ErrRevoked) {
			t.Errorf("APITokenUser of disabled user: err = %v, want ErrRevoked", err)
		}
	}
	if _, err := db.Session(ctx, bobSession); err != nil {
		t.Errorf("bob's session: %v", err)
	}
	if _, _, err := db.APITokenUser(ctx, bobToken); err != nil {
		t.Errorf("bob's token: %v", err)
	}
	if n := count(t, db, "sessions"); n != 1 {
		t.Errorf("%d sessions, want bob's only", n)
	}
	toks, err := db.APITokens(ctx, "ada")
	if err != nil || len(toks) != 3 {
		t.Fatalf("APITokens(ada) = %+v, %v", toks, err)
	}
	if !toks[0].Revoked.Equal(clock.Now()) || toks[1].Revoked.Equal(clock.Now()) || !toks[2].Revoked.Equal(clock.Now()) {
		t.Errorf("revocation times %v %v %v: want the disabling time but for the token revoked before",
			toks[0].Revoked, toks[1].Revoked, toks[2].Revoked)
	}

	if got, want := actions(t, db, "user/ada")[3:], []string{
		`user.disable admin-2 {"roles":["investigator"],"sessions":2,"tokens":2}`,
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("audit of user/ada after the logins:\n%q\nwant\n%q", got, want)
	}
	for object, want := range map[string]string{
		"token/1": `token.revoke admin-2 {"user":"ada","reason":"user.disable"}`,
		"token/2": `token.revoke admin-1 {"user":"ada"}`,
		"token/3": `token.revoke admin-2 {"user":"ada","reason":"user.disable"}`,
	} {
		if got := actions(t, db, object); len(got) != 2 || got[1] != want {
			t.Errorf("audit of %s: %q, want last %q", object, got, want)
		}
	}
	if got := actions(t, db, "token/4"); len(got) != 1 {
		t.Errorf("audit of bob's token: %q", got)
	}
	assertNoSecrets(t, db, []string{"csrf"}, append(append(adaSessions, bobSession), append(adaTokens, bobToken)...))
}

func TestCredentialsSchemaChecks(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	mustUser(t, db, "ada")
	h := strings.Repeat("h", 32)
	for name, q := range map[string]string{
		"empty password hash":  `UPDATE users SET password_hash = '' WHERE name = 'ada'`,
		"password hash a blob": `UPDATE users SET password_hash = x'00' WHERE name = 'ada'`,
		"short session hash":   `INSERT INTO sessions VALUES (x'00', 'ada', 'c', 1, 2, 1)`,
		"session unknown user": `INSERT INTO sessions VALUES (CAST('` + h + `' AS BLOB), 'bob', 'c', 1, 2, 1)`,
		"session no csrf":      `INSERT INTO sessions VALUES (CAST('` + h + `' AS BLOB), 'ada', '', 1, 2, 1)`,
		"session backwards":    `INSERT INTO sessions VALUES (CAST('` + h + `' AS BLOB), 'ada', 'c', 2, 2, 1)`,
		"token unknown user": `INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by)
			VALUES ('bob', 'x', CAST('` + h + `' AS BLOB), 1, 'admin')`,
		"token no label": `INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by)
			VALUES ('ada', '', CAST('` + h + `' AS BLOB), 1, 'admin')`,
		"token short hash": `INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by)
			VALUES ('ada', 'x', x'00', 1, 'admin')`,
		"token no creator": `INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by)
			VALUES ('ada', 'x', CAST('` + h + `' AS BLOB), 1, '')`,
		"token backwards": `INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by, expires_at)
			VALUES ('ada', 'x', CAST('` + h + `' AS BLOB), 2, 'admin', 2)`,
	} {
		if _, err := db.w.Exec(q); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := db.w.Exec(`INSERT INTO sessions VALUES (CAST('` + h + `' AS BLOB), 'ada', 'c', 1, 2, 1)`); err != nil {
		t.Errorf("valid session row: %v", err)
	}
	if _, err := db.w.Exec(`INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by)
VALUES ('ada', 'x', CAST('` + h + `' AS BLOB), 1, 'admin')`); err != nil {
		t.Errorf("valid token row: %v", err)
	}
	if _, err := db.w.Exec(`INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by)
VALUES ('ada', 'y', CAST('` + h + `' AS BLOB), 1, 'admin')`); err == nil {
		t.Error("duplicate token hash accepted")
	}
}

// TestCredentialsMigration opens a file at schema version 4 (before
// credentials) and checks that its users gain a password column, that the
// sessions and API token tables appear, and that data is kept.
func TestCredentialsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustUser(t, db, "ada", RoleVerifier)
	db = reopenFrom(t, path, db, 4)
	if got := version(t, db); got != schemaVersion || schemaVersion < 5 {
		t.Errorf("schema version %d, want %d (≥ 5)", got, schemaVersion)
	}
	if u, err := db.User(ctx, "ada"); err != nil || !u.Has(RoleVerifier) {
		t.Errorf("user lost: %+v, %v", u, err)
	}
	if _, _, err := db.PasswordHash(ctx, "ada"); !errors.Is(err, ErrNotFound) {
		t.Errorf("PasswordHash of a migrated user: err = %v, want ErrNotFound", err)
	}
	if err := db.SetPassword(ctx, "ada", testPHC, "admin-1"); err != nil {
		t.Error(err)
	}
	_, h := newToken(t, "")
	if err := db.CreateSession(ctx, h, "ada", "c", time.Now().Add(time.Hour)); err != nil {
		t.Error(err)
	}
	if _, err := db.CreateAPIToken(ctx, "ada", "x", h, time.Time{}, "admin-1"); err != nil {
		t.Error(err)
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}

// TestAddConsoleUser: a console user is added with its password in one
// transaction; a name with ':' (command-line accounts) gets no password, and
// then no user is added at all.
func TestAddConsoleUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	const hash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA"
	if err := db.AddConsoleUser(ctx, "ada", []Role{RoleAdmin}, hash, "cli:root"); err != nil {
		t.Fatal(err)
	}
	if got, u, err := db.PasswordHash(ctx, "ada"); err != nil || got != hash || !u.HasPassword {
		t.Fatalf("PasswordHash = %q, %+v, %v", got, u, err)
	}
	if err := db.AddConsoleUser(ctx, "cli:bob", []Role{RoleAdmin}, hash, "cli:root"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("name with ':': %v, want ErrInvalid", err)
	}
	if _, err := db.User(ctx, "cli:bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cli:bob was added without its password: %v", err)
	}
	mustUser(t, db, "cli:carol", RoleAdmin)
	if err := db.SetPassword(ctx, "cli:carol", hash, "cli:root"); !errors.Is(err, ErrInvalid) {
		t.Errorf("password for a command-line account: %v, want ErrInvalid", err)
	}
	if u, err := db.User(ctx, "cli:carol"); err != nil || u.HasPassword {
		t.Errorf("cli:carol = %+v, %v", u, err)
	}
}
