package storetest

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/store"
)

// contact is the requester's address of the rights requests; it must never
// reach the audit log.
const contact = "person@example.org"

// rightsRequest returns a request of kind k received a day before start.
func rightsRequest(t *testing.T, k dsr.Kind) dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(k, contact, start.Add(-24*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// advance moves a request to state to.
func advance(to dsr.State) func(*dsr.Request, time.Time) error {
	return func(r *dsr.Request, now time.Time) error { return r.Advance(now, to, "") }
}

// testRightsLifecycle: a request comes back as registered; each change is
// stored and audited once, in order, without the requester's contact; a
// second extension and any change of a closed request are refused.
func (s suite) testRightsLifecycle(t *testing.T) {
	e := s.env(t)
	want := rightsRequest(t, dsr.Erasure)
	id, err := e.db.CreateRightsRequest(e.ctx, want, "cli:dpo")
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.Due = id, want.Due.UTC()
	got, err := e.db.RightsRequest(e.ctx, id)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("RightsRequest = %+v, %v\nwant %+v", got, err, want)
	}
	e.clock.Add(time.Hour)
	got, err = e.db.UpdateRightsRequest(e.ctx, id, "cli:dpo", func(r *dsr.Request, now time.Time) error {
		r.Matches = []int64{4, 8, 15}
		return r.Advance(now, dsr.Verified, "")
	})
	if err != nil || got.State != dsr.Verified || !slices.Equal(got.Matches, []int64{4, 8, 15}) {
		t.Fatalf("verified: %+v, %v", got, err)
	}
	e.clock.Add(time.Hour)
	if _, err := e.db.UpdateRightsRequest(e.ctx, id, "cli:dpo", func(r *dsr.Request, now time.Time) error {
		return r.Extend(now, 2, "faces in many sources")
	}); err != nil {
		t.Fatal(err)
	}
	_, err = e.db.UpdateRightsRequest(e.ctx, id, "cli:dpo", func(r *dsr.Request, now time.Time) error { return r.Extend(now, 1, "again") })
	if !errors.Is(err, dsr.ErrAlreadyExtended) || !errors.Is(err, store.ErrInvalid) {
		t.Errorf("second extension: err = %v, want dsr.ErrAlreadyExtended and ErrInvalid", err)
	}
	if _, err := e.db.UpdateRightsRequest(e.ctx, id, "cli:dpo", advance(dsr.InProgress)); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(24 * time.Hour)
	got, err = e.db.UpdateRightsRequest(e.ctx, id, "cli:dpo", func(r *dsr.Request, now time.Time) error {
		r.Result = json.RawMessage(`{ "erased_faces": 3 }`)
		return r.Advance(now, dsr.Completed, "")
	})
	if err != nil || got.State != dsr.Completed || !got.Closed.Equal(e.clock.Now()) || string(got.Result) != `{"erased_faces":3}` {
		t.Fatalf("completed: %+v, %v", got, err)
	}
	if stored, err := e.db.RightsRequest(e.ctx, id); err != nil || !reflect.DeepEqual(stored, got) {
		t.Errorf("stored %+v, %v\nreturned %+v", stored, err, got)
	}
	head := e.head()
	_, err = e.db.UpdateRightsRequest(e.ctx, id, "cli:dpo", func(r *dsr.Request, _ time.Time) error {
		r.Matches = nil
		return nil
	})
	is(t, "change of a closed request", err, dsr.ErrIllegalTransition)
	if h := e.head(); h != head {
		t.Errorf("a refused change was audited (head %d, was %d)", h, head)
	}
	_, err = e.db.RightsRequest(e.ctx, id+100)
	gone(t, "unknown request", err)
	_, err = e.db.CreateRightsRequest(e.ctx, want, " ")
	is(t, "blank actor", err, store.ErrInvalid)

	wantActions := []string{"rights.received", "rights.verified", "rights.extended", "rights.in-progress", "rights.completed"}
	if got := e.actions(fmt.Sprint("rights/", id)); !slices.Equal(got, wantActions) {
		t.Errorf("audit %v, want %v", got, wantActions)
	}
	for _, a := range e.audit() {
		for _, banned := range []string{contact, "faces in many sources", "[4,8,15]"} {
			if strings.Contains(string(a.Detail), banned) || strings.Contains(a.Object, banned) {
				t.Errorf("audit entry %d (%s) holds %q", a.ID, a.Action, banned)
			}
		}
	}
	e.verified()
}

// testRightsReview: a candidate set starts unreviewed from its
// pre-selection; a review selects exactly the faces named; closing keeps
// the sealed record and deletes candidates and selfies.
func (s suite) testRightsReview(t *testing.T) {
	e := s.env(t)
	id, err := e.db.CreateRightsRequest(e.ctx, rightsRequest(t, dsr.Erasure), "cli:dpo")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.db.RightsReview(e.ctx, id)
	gone(t, "review before candidates", err)
	selfies := []store.RightsSelfie{{N: 1, Quality: 0.9, Crop: []byte("sealed crop 1")}, {N: 2, Quality: 0.7, Crop: []byte("sealed crop 2")}}
	if err := e.db.AddRightsSelfies(e.ctx, id, selfies); err != nil {
		t.Fatal(err)
	}
	if got, err := e.db.RightsSelfies(e.ctx, id); err != nil || !reflect.DeepEqual(got, selfies) {
		t.Errorf("RightsSelfies = %+v, %v", got, err)
	}
	rv := store.RightsReview{Gallery: 10, Selfies: 2, Floor: 0.3, Strict: 0.7, Group: 0.6, FPIR: 0.001}
	for i, f := range []int64{7, 8, 9} {
		rv.Candidates = append(rv.Candidates, store.RightsCandidate{FaceID: f, Score: 0.9 - 0.1*float64(i),
			Similarities: []float64{0.9, 0.8}, Band: "weak", Preselected: i == 0})
	}
	if err := e.db.SaveRightsCandidates(e.ctx, id, "cli:dpo", rv); err != nil {
		t.Fatal(err)
	}
	got, err := e.db.RightsReview(e.ctx, id)
	if err != nil || got.ReviewedBy != "" || len(got.Candidates) != 3 || !slices.Equal(got.Selected(), []int64{7}) || got.Group != 0.6 ||
		!slices.Equal(got.Candidates[1].Similarities, []float64{0.9, 0.8}) {
		t.Fatalf("saved candidates %+v, %v", got, err)
	}
	_, err = e.db.ReviewRightsCandidates(e.ctx, id, "cli:dpo", []int64{8, 42}, nil)
	is(t, "selecting a face that is no candidate", err, store.ErrInvalid)
	got, err = e.db.ReviewRightsCandidates(e.ctx, id, "cli:dpo", []int64{8},
		[]store.RightsCandidate{{FaceID: 42, Score: 0.2, Similarities: []float64{0.2, 0.1}, Band: "weak"}})
	if err != nil || !slices.Equal(got.Selected(), []int64{8, 42}) || got.ReviewedBy != "cli:dpo" {
		t.Fatalf("review: %+v, %v", got, err)
	}
	if again, err := e.db.RightsReview(e.ctx, id); err != nil || !slices.Equal(again.Selected(), []int64{8, 42}) {
		t.Errorf("stored review selects %v, %v", again.Selected(), err)
	}
	if _, err := e.db.RecordRightsIdentity(e.ctx, id, "cli:dpo", "in-person", "seen at the desk"); err != nil {
		t.Fatal(err)
	}
	if idn, err := e.db.RightsIdentity(e.ctx, id); err != nil || idn.Method != "in-person" || idn.Note != "seen at the desk" || idn.By != "cli:dpo" {
		t.Errorf("RightsIdentity = %+v, %v", idn, err)
	}
	if _, err := e.db.UpdateRightsRequest(e.ctx, id, "cli:dpo", advance(dsr.InProgress)); err != nil {
		t.Fatal(err)
	}
	sum := strings.Repeat("0", 64)
	if _, err := e.db.CloseRightsRequest(e.ctx, id, "cli:dpo", &store.RightsRecord{Sealed: []byte("sealed"), SHA256: sum, Faces: 2},
		advance(dsr.Completed)); err != nil {
		t.Fatal(err)
	}
	if got, err := e.db.RightsReview(e.ctx, id); err != nil || len(got.Candidates) != 0 || got.Gallery != 10 {
		t.Errorf("review after closing: %+v, %v", got, err)
	}
	if got, err := e.db.RightsSelfies(e.ctx, id); err != nil || len(got) != 0 {
		t.Errorf("selfies after closing: %d, %v", len(got), err)
	}
	if rec, err := e.db.RightsRecordOf(e.ctx, id); err != nil || string(rec.Sealed) != "sealed" || rec.SHA256 != sum || !rec.Created.Equal(start) {
		t.Errorf("RightsRecordOf = %+v, %v", rec, err)
	}
	is(t, "candidates of a closed request", e.db.SaveRightsCandidates(e.ctx, id, "cli:dpo", rv), store.ErrInvalid)
	want := []string{"rights.received", "rights.candidates", "rights.reviewed", "rights.verified", "rights.identity",
		"rights.in-progress", "rights.completed", "rights.record"}
	if got := e.actions(fmt.Sprint("rights/", id)); !slices.Equal(got, want) {
		t.Errorf("audit %v, want %v", got, want)
	}
	for _, a := range e.audit() {
		if strings.Contains(string(a.Detail), "seen at the desk") {
			t.Errorf("audit entry %d holds the identity note", a.ID)
		}
	}
	e.verified()
}

// testRightsRegister: every request is kept, open or closed, in id order;
// notices to the users of a search are recorded once.
func (s suite) testRightsRegister(t *testing.T) {
	e := s.env(t)
	kinds := []dsr.Kind{dsr.Access, dsr.Erasure, dsr.Access, dsr.Objection, dsr.Restriction}
	var ids []int64
	for _, k := range kinds {
		id, err := e.db.CreateRightsRequest(e.ctx, rightsRequest(t, k), "cli:dpo")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := e.db.UpdateRightsRequest(e.ctx, ids[1], "cli:dpo", func(r *dsr.Request, now time.Time) error {
		return r.Advance(now, dsr.Refused, "identity not confirmed")
	}); err != nil {
		t.Fatal(err)
	}
	list, err := e.db.RightsRequests(e.ctx)
	if err != nil || len(list) != len(kinds) {
		t.Fatalf("RightsRequests = %d, %v", len(list), err)
	}
	for i, r := range list {
		if r.ID != ids[i] || r.Kind != kinds[i] || r.Contact != contact {
			t.Errorf("request %d = %+v", i, r)
		}
	}
	if list[1].State != dsr.Refused || list[1].Reason != "identity not confirmed" || list[1].Closed.IsZero() {
		t.Errorf("refused request %+v", list[1])
	}
	sid, _, err := e.db.RecordSearch(e.ctx, search("ivan"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.RecordRightsNotice(e.ctx, ids[0], sid, "cli:dpo"); err != nil {
		t.Fatal(err)
	}
	is(t, "second notice", e.db.RecordRightsNotice(e.ctx, ids[0], sid, "cli:dpo"), store.ErrInvalid)
	if ns, err := e.db.RightsNotices(e.ctx, ids[0]); err != nil || len(ns) != 1 || ns[0].SearchID != sid || ns[0].By != "cli:dpo" {
		t.Errorf("RightsNotices = %+v, %v", ns, err)
	}
}

// testUsersUnique: a name is registered once (even once disabled); roles
// come back in canonical order; invalid users are refused.
func (s suite) testUsersUnique(t *testing.T) {
	e := s.env(t)
	if err := e.db.AddUser(e.ctx, "vera", []store.Role{store.RoleVerifier, store.RoleInvestigator, store.RoleVerifier}, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	e.user("ada")
	u, err := e.db.User(e.ctx, "vera")
	if err != nil || !slices.Equal(u.Roles, []store.Role{store.RoleInvestigator, store.RoleVerifier}) || u.CreatedBy != "cli:admin" ||
		!u.Created.Equal(start) || !u.Disabled.IsZero() || u.HasPassword || !u.Has(store.RoleVerifier) || u.Has(store.RoleAdmin) {
		t.Errorf("User = %+v, %v", u, err)
	}
	is(t, "same name", e.db.AddUser(e.ctx, "vera", nil, "cli:admin"), store.ErrExists)
	if err := e.db.DisableUser(e.ctx, "ada", "cli:admin"); err != nil {
		t.Fatal(err)
	}
	is(t, "name of a disabled user", e.db.AddUser(e.ctx, "ada", nil, "cli:admin"), store.ErrExists)
	for name, tt := range map[string]struct {
		name  string
		roles []store.Role
		by    string
	}{
		"empty name":      {"", nil, "cli:admin"},
		"spaces":          {" bob", nil, "cli:admin"},
		"control":         {"bo\nb", nil, "cli:admin"},
		"unknown role":    {"bob", []store.Role{"root"}, "cli:admin"},
		"blank by":        {"bob", nil, " "},
		"admin and blank": {"bob", []store.Role{store.RoleAdmin}, ""},
	} {
		is(t, name, e.db.AddUser(e.ctx, tt.name, tt.roles, tt.by), store.ErrInvalid)
	}
	_, err = e.db.User(e.ctx, "bob")
	gone(t, "refused user", err)
	us, err := e.db.Users(e.ctx)
	if err != nil || len(us) != 2 || us[0].Name != "ada" || us[1].Name != "vera" {
		t.Errorf("Users = %+v, %v", us, err)
	}
	if got := e.actions("user/vera"); !slices.Equal(got, []string{"user.add"}) {
		t.Errorf("audit of user/vera %v", got)
	}
}

// testUserDisableEnable: a disabled user holds no role, loses its sessions
// and tokens; enabling gives the roles back, not what disabling ended.
// Disabling or enabling twice writes nothing.
func (s suite) testUserDisableEnable(t *testing.T) {
	e := s.env(t)
	e.user("ada", store.RoleInvestigator)
	if err := e.db.SetUserRoles(e.ctx, "ada", []store.Role{store.RoleVerifier, store.RoleInvestigator}, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	head := e.head()
	if err := e.db.SetUserRoles(e.ctx, "ada", []store.Role{store.RoleInvestigator, store.RoleVerifier}, "cli:admin"); err != nil || e.head() != head {
		t.Errorf("same roles again: %v, head %d (was %d)", err, e.head(), head)
	}
	session := sha256.Sum256([]byte("session"))
	if err := e.db.CreateSession(e.ctx, session, "ada", "csrf", start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	token := sha256.Sum256([]byte("token"))
	if _, err := e.db.CreateAPIToken(e.ctx, "ada", "scripts", token, time.Time{}, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.DisableUser(e.ctx, "ada", "cli:admin"); err != nil {
		t.Fatal(err)
	}
	u, err := e.db.User(e.ctx, "ada")
	if err != nil || !u.Disabled.Equal(start) || u.Has(store.RoleInvestigator) || len(u.Roles) != 2 {
		t.Errorf("disabled user %+v, %v", u, err)
	}
	_, err = e.db.Session(e.ctx, session)
	gone(t, "session of a disabled user", err)
	_, _, err = e.db.APITokenUser(e.ctx, token)
	is(t, "token of a disabled user", err, store.ErrRevoked)
	head = e.head()
	if err := e.db.DisableUser(e.ctx, "ada", "cli:admin"); err != nil || e.head() != head {
		t.Errorf("second disable: %v, head %d (was %d)", err, e.head(), head)
	}
	is(t, "session of a disabled user", e.db.CreateSession(e.ctx, sha256.Sum256([]byte("s2")), "ada", "c", start.Add(time.Hour)), store.ErrForbidden)
	if err := e.db.EnableUser(e.ctx, "ada", "cli:admin"); err != nil {
		t.Fatal(err)
	}
	if u, _ := e.db.User(e.ctx, "ada"); !u.Has(store.RoleVerifier) || !u.Disabled.IsZero() {
		t.Errorf("enabled user %+v", u)
	}
	_, _, err = e.db.APITokenUser(e.ctx, token)
	is(t, "token after enabling", err, store.ErrRevoked)
	head = e.head()
	if err := e.db.EnableUser(e.ctx, "ada", "cli:admin"); err != nil || e.head() != head {
		t.Errorf("second enable: %v, head %d (was %d)", err, e.head(), head)
	}
	gone(t, "disable an unknown user", e.db.DisableUser(e.ctx, "bob", "cli:admin"))
	gone(t, "roles of an unknown user", e.db.SetUserRoles(e.ctx, "bob", nil, "cli:admin"))
	want := []string{"user.add", "user.roles", "session.login", "user.disable", "user.enable"}
	if got := e.actions("user/ada"); !slices.Equal(got, want) {
		t.Errorf("audit of user/ada %v, want %v", got, want)
	}
	if n := e.count("token.revoke"); n != 1 {
		t.Errorf("%d token.revoke entries, want 1", n)
	}
	e.verified()
}

// testPHC is a well-formed argon2id hash (of no password in particular).
const testPHC = "$argon2id$v=19$m=65536,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleWZha2U"

// testPasswords: a console user exists with its password or not at all; a
// password is replaced, never audited; accounts without one cannot log in.
func (s suite) testPasswords(t *testing.T) {
	e := s.env(t)
	if err := e.db.AddConsoleUser(e.ctx, "ada", []store.Role{store.RoleAuditor}, testPHC, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	hash, u, err := e.db.PasswordHash(e.ctx, "ada")
	if err != nil || hash != testPHC || !u.HasPassword || !u.Has(store.RoleAuditor) {
		t.Errorf("PasswordHash = %q, %+v, %v", hash, u, err)
	}
	is(t, "second console user of that name", e.db.AddConsoleUser(e.ctx, "ada", nil, "$other", "cli:admin"), store.ErrExists)
	is(t, "console user with a plain password", e.db.AddConsoleUser(e.ctx, "bob", nil, "hunter2", "cli:admin"), store.ErrInvalid)
	_, err = e.db.User(e.ctx, "bob")
	gone(t, "console user refused", err)
	other := strings.Replace(testPHC, "t=3", "t=4", 1)
	if err := e.db.SetPassword(e.ctx, "ada", other, "ada"); err != nil {
		t.Fatal(err)
	}
	if hash, _, err := e.db.PasswordHash(e.ctx, "ada"); err != nil || hash != other {
		t.Errorf("after SetPassword: %q, %v", hash, err)
	}
	gone(t, "password of an unknown user", e.db.SetPassword(e.ctx, "bob", testPHC, "cli:admin"))
	e.user("cli:root", store.RoleAdmin)
	_, _, err = e.db.PasswordHash(e.ctx, "cli:root")
	gone(t, "user without a password", err)
	for _, a := range e.audit() {
		if strings.Contains(string(a.Detail), "argon2id") || strings.Contains(string(a.Detail), "c29tZXNhbHRzb21lc2FsdA") {
			t.Errorf("audit entry %d (%s) holds a password hash", a.ID, a.Action)
		}
	}
}

// testSessions: a session is found by its token hash until it expires; a
// token hash is used once; logout and the sweep of expired ones delete.
func (s suite) testSessions(t *testing.T) {
	e := s.env(t)
	e.user("ada", store.RoleInvestigator)
	h := sha256.Sum256([]byte("cookie"))
	if err := e.db.CreateSession(e.ctx, h, "ada", "csrf-token", start.Add(8*time.Hour)); err != nil {
		t.Fatal(err)
	}
	is(t, "same token", e.db.CreateSession(e.ctx, h, "ada", "x", start.Add(time.Hour)), store.ErrExists)
	gone(t, "session of an unknown user", e.db.CreateSession(e.ctx, sha256.Sum256([]byte("x")), "bob", "x", start.Add(time.Hour)))
	is(t, "expired already", e.db.CreateSession(e.ctx, sha256.Sum256([]byte("y")), "ada", "x", start), store.ErrInvalid)
	sess, err := e.db.Session(e.ctx, h)
	if err != nil || sess.User.Name != "ada" || sess.CSRF != "csrf-token" || !sess.Created.Equal(start) || !sess.Expires.Equal(start.Add(8*time.Hour)) {
		t.Errorf("Session = %+v, %v", sess, err)
	}
	short := sha256.Sum256([]byte("short"))
	if err := e.db.CreateSession(e.ctx, short, "ada", "c", start.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Hour)
	_, err = e.db.Session(e.ctx, short)
	gone(t, "expired session", err)
	if n, err := e.db.DeleteExpiredSessions(e.ctx, e.clock.Now()); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if err := e.db.DeleteSession(e.ctx, h, "ada"); err != nil {
		t.Fatal(err)
	}
	_, err = e.db.Session(e.ctx, h)
	gone(t, "session after logout", err)
	gone(t, "second logout", e.db.DeleteSession(e.ctx, h, "ada"))
	if n := e.count("session.logout"); n != 1 {
		t.Errorf("%d session.logout entries", n)
	}
}

// testAPITokens: a token acts as its user until revoked or expired; a
// token hash is used once; the list shows every token.
func (s suite) testAPITokens(t *testing.T) {
	e := s.env(t)
	e.user("ada", store.RoleInvestigator)
	e.user("bob", store.RoleAuditor)
	h := sha256.Sum256([]byte("token-a"))
	id, err := e.db.CreateAPIToken(e.ctx, "ada", "scripts", h, time.Time{}, "cli:admin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.db.CreateAPIToken(e.ctx, "bob", "x", h, time.Time{}, "cli:admin")
	is(t, "same hash", err, store.ErrExists)
	_, err = e.db.CreateAPIToken(e.ctx, "carl", "x", sha256.Sum256([]byte("c")), time.Time{}, "cli:admin")
	gone(t, "token of an unknown user", err)
	_, err = e.db.CreateAPIToken(e.ctx, "ada", "x", [32]byte{}, time.Time{}, "cli:admin")
	is(t, "zero hash", err, store.ErrInvalid)
	hb := sha256.Sum256([]byte("token-b"))
	idb, err := e.db.CreateAPIToken(e.ctx, "bob", "report", hb, start.Add(time.Hour), "cli:admin")
	if err != nil {
		t.Fatal(err)
	}
	tok, u, err := e.db.APITokenUser(e.ctx, h)
	if err != nil || tok.ID != id || tok.User != "ada" || tok.Label != "scripts" || u.Name != "ada" || !u.Has(store.RoleInvestigator) {
		t.Errorf("APITokenUser = %+v %+v, %v", tok, u, err)
	}
	_, _, err = e.db.APITokenUser(e.ctx, sha256.Sum256([]byte("unknown")))
	gone(t, "unknown token", err)
	list, err := e.db.APITokens(e.ctx, "")
	if err != nil || len(list) != 2 || list[0].ID != id || list[1].ID != idb || !list[1].Expires.Equal(start.Add(time.Hour)) ||
		!list[0].LastUsed.Equal(start) {
		t.Errorf("APITokens = %+v, %v", list, err)
	}
	if list, _ := e.db.APITokens(e.ctx, "bob"); len(list) != 1 || list[0].ID != idb {
		t.Errorf("APITokens(bob) = %+v", list)
	}
	e.clock.Add(2 * time.Hour)
	_, _, err = e.db.APITokenUser(e.ctx, hb)
	is(t, "expired token", err, store.ErrExpired)
	if err := e.db.RevokeAPIToken(e.ctx, id, "cli:admin"); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.db.APITokenUser(e.ctx, h)
	is(t, "revoked token", err, store.ErrRevoked)
	head := e.head()
	if err := e.db.RevokeAPIToken(e.ctx, id, "cli:admin"); err != nil || e.head() != head {
		t.Errorf("second revocation: %v, head %d (was %d)", err, e.head(), head)
	}
	gone(t, "revoke an unknown token", e.db.RevokeAPIToken(e.ctx, idb+100, "cli:admin"))
	if got := e.actions(fmt.Sprint("token/", id)); !slices.Equal(got, []string{"token.create", "token.revoke"}) {
		t.Errorf("audit of token/%d: %v", id, got)
	}
}

// search is a valid search by actor that returned faces.
func search(actor string, faces ...int64) store.Search {
	return store.Search{Actor: actor, Purpose: "missing person report", CaseRef: "CASE-2025-001",
		ProbeSHA256: sha256.Sum256([]byte("probe")), K: 10, Threshold: 0.42, Returned: append([]int64{}, faces...)}
}

// testSearches: a search comes back as recorded, with its audit entry in
// the same transaction; the lists select and page it.
func (s suite) testSearches(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	_, fids := e.add(src, 3)
	want := search("ivan", fids[1], fids[0])
	want.OperatingPoint, want.GroupPoint, want.FPIR, want.Gallery, want.Above = 0.61, 0.55, 0.001, 3, 2
	want.Results = []store.SearchResult{{FaceID: fids[1], Similarity: 0.83, Band: "strong", Strangers: 0.0001, Support: 1},
		{FaceID: fids[0], Similarity: 0.5, Band: "weak", Strangers: 0.2}}
	want.ProbeFace = &store.ProbeFace{Index: 0, Faces: 1, Quality: 0.9, Box: [4]float64{1, 2, 30, 40}, Chosen: "asked"}
	want.ProbeCrop = []byte("sealed probe crop")
	id, auditID, err := e.db.RecordSearch(e.ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.At = id, start
	if got, err := e.db.Search(e.ctx, id); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Search = %+v, %v\nwant %+v", got, err, want)
	}
	es, err := e.db.AuditEntries(e.ctx, auditID, auditID)
	if err != nil || len(es) != 1 || es[0].Object != fmt.Sprint("search/", id) || es[0].Actor != "ivan" || es[0].Action != "search" {
		t.Errorf("audit entry of the search: %+v, %v", es, err)
	}
	_, _, err = e.db.RecordSearch(e.ctx, store.Search{Actor: "ivan", K: 1})
	is(t, "search without purpose", err, store.ErrInvalid)
	other := search("olga")
	other.CaseRef = "CASE-2"
	e.clock.Add(time.Minute)
	id2, _, err := e.db.RecordSearch(e.ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := e.db.ListSearches(e.ctx, store.SearchFilter{Limit: 10}); err != nil || len(l) != 2 || l[0].ID != id2 || l[1].ID != id ||
		l[1].Held != 2 || l[1].State() != store.VerifyUnverified || l[0].State() != store.VerifyNoMatch {
		t.Errorf("ListSearches = %+v, %v", l, err)
	}
	if l, err := e.db.ListSearches(e.ctx, store.SearchFilter{Actor: "ivan", Limit: 10}); err != nil || len(l) != 1 || l[0].ID != id {
		t.Errorf("ListSearches(actor) = %+v, %v", l, err)
	}
	if l, err := e.db.ListSearches(e.ctx, store.SearchFilter{Case: "CASE-2", Limit: 10}); err != nil || len(l) != 1 || l[0].ID != id2 {
		t.Errorf("ListSearches(case) = %+v, %v", l, err)
	}
	if l, err := e.db.ListSearches(e.ctx, store.SearchFilter{Before: id2, Limit: 10}); err != nil || len(l) != 1 || l[0].ID != id {
		t.Errorf("ListSearches(before) = %+v, %v", l, err)
	}
	_, err = e.db.ListSearches(e.ctx, store.SearchFilter{})
	is(t, "no limit", err, store.ErrInvalid)
	if l, err := e.db.SearchesReturning(e.ctx, []int64{fids[0], fids[2]}); err != nil || len(l) != 1 || l[0].ID != id {
		t.Errorf("SearchesReturning = %+v, %v", l, err)
	}
	if st, err := e.db.SearchStats(e.ctx); err != nil || len(st) != 1 || st[0].Searches != 2 || st[0].WithMatch != 1 {
		t.Errorf("SearchStats = %+v, %v", st, err)
	}
	_, err = e.db.Search(e.ctx, id2+100)
	gone(t, "unknown search", err)
}

// testProbeCropPurge: the sealed probe crops of old searches are erased,
// audited once; the record stays.
func (s suite) testProbeCropPurge(t *testing.T) {
	e := s.env(t)
	old := search("ivan")
	old.ProbeCrop = []byte("old crop")
	oldID, _, err := e.db.RecordSearch(e.ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(48 * time.Hour)
	recent := search("ivan")
	recent.ProbeCrop = []byte("recent crop")
	recentID, _, err := e.db.RecordSearch(e.ctx, recent)
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.db.PurgeProbeCrops(e.ctx, start.Add(24*time.Hour), e.clock.Now(), "system")
	if err != nil || n != 1 {
		t.Fatalf("PurgeProbeCrops = %d, %v; want 1", n, err)
	}
	if s, err := e.db.Search(e.ctx, oldID); err != nil || s.ProbeCrop != nil || s.Purpose != old.Purpose {
		t.Errorf("old search %+v, %v", s, err)
	}
	if s, _ := e.db.Search(e.ctx, recentID); string(s.ProbeCrop) != "recent crop" {
		t.Errorf("recent crop %q", s.ProbeCrop)
	}
	if n, err := e.db.PurgeProbeCrops(e.ctx, start.Add(24*time.Hour), e.clock.Now(), "system"); err != nil || n != 0 {
		t.Errorf("second purge = %d, %v", n, err)
	}
	if n := e.count("search.crops.purge"); n != 1 {
		t.Errorf("%d search.crops.purge entries, want 1", n)
	}
}

// confirmFixture registers the verifiers and records a search by ivan that
// returned three held faces.
func (s suite) confirmFixture(t *testing.T) (*env, int64, []int64) {
	e := s.env(t)
	e.user("ivan", store.RoleInvestigator, store.RoleVerifier)
	e.user("vera", store.RoleVerifier)
	e.user("val", store.RoleVerifier)
	e.user("victor", store.RoleVerifier)
	e.user("olga", store.RoleOperator)
	e.user("dora", store.RoleVerifier)
	if err := e.db.DisableUser(e.ctx, "dora", "cli:admin"); err != nil {
		t.Fatal(err)
	}
	_, fids := e.add(e.source(nil), 4)
	id, _, err := e.db.RecordSearch(e.ctx, search("ivan", fids[:3]...))
	if err != nil {
		t.Fatal(err)
	}
	return e, id, fids
}

// testConfirmations: a result is identified once two different verifiers
// confirm it; the same verifier twice, the searcher, a user without the
// role, a disabled one, a face not returned or no longer held are refused
// and write nothing.
func (s suite) testConfirmations(t *testing.T) {
	e, id, f := s.confirmFixture(t)
	c, err := e.db.Confirm(e.ctx, id, f[0], "vera")
	if err != nil || c.Identified || !slices.Equal(c.Verifiers, []string{"vera"}) {
		t.Fatalf("first confirmation %+v, %v", c, err)
	}
	head := e.head()
	_, err = e.db.Confirm(e.ctx, id, f[0], "vera")
	is(t, "same verifier again", err, store.ErrExists)
	_, err = e.db.Confirm(e.ctx, id, f[0], "ivan")
	is(t, "the searcher", err, store.ErrForbidden)
	_, err = e.db.Confirm(e.ctx, id, f[0], "olga")
	is(t, "not a verifier", err, store.ErrForbidden)
	_, err = e.db.Confirm(e.ctx, id, f[0], "dora")
	is(t, "disabled verifier", err, store.ErrForbidden)
	_, err = e.db.Confirm(e.ctx, id, f[0], "nobody")
	is(t, "unknown verifier", err, store.ErrForbidden)
	_, err = e.db.Confirm(e.ctx, id, f[3], "val")
	is(t, "face not returned", err, store.ErrInvalid)
	_, err = e.db.Confirm(e.ctx, id+100, f[0], "val")
	gone(t, "unknown search", err)
	if h := e.head(); h != head {
		t.Errorf("refused confirmations were audited (head %d, was %d)", h, head)
	}
	c, err = e.db.Confirm(e.ctx, id, f[0], "val")
	if err != nil || !c.Identified || !slices.Equal(c.Verifiers, []string{"vera", "val"}) {
		t.Fatalf("second verifier %+v, %v", c, err)
	}
	if c, err := e.db.Confirm(e.ctx, id, f[0], "victor"); err != nil || !c.Identified || len(c.Verifiers) != 3 {
		t.Errorf("third verifier %+v, %v", c, err)
	}
	if _, err := e.db.Confirm(e.ctx, id, f[1], "vera"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.db.EraseFaces(e.ctx, []int64{f[2]}, "cli:dpo", "rights/1"); err != nil {
		t.Fatal(err)
	}
	_, err = e.db.Confirm(e.ctx, id, f[2], "vera")
	gone(t, "erased face", err)
	cs, err := e.db.Confirmations(e.ctx, id)
	if err != nil || len(cs) != 2 || !cs[f[0]].Identified || cs[f[1]].Identified || !slices.Equal(cs[f[1]].Verifiers, []string{"vera"}) {
		t.Errorf("Confirmations = %+v, %v", cs, err)
	}
	sum, err := e.db.SearchSummary(e.ctx, id)
	if err != nil || sum.Identified != 1 || sum.Pending != 1 || sum.Held != 2 || sum.State() != store.VerifyConfirmed {
		t.Errorf("SearchSummary = %+v, %v", sum, err)
	}
	if n := e.count("search.confirm"); n != 4 {
		t.Errorf("%d search.confirm entries, want 4", n)
	}
	e.verified()
}

// testRejections: a rejected face is never identified and cannot be
// confirmed; a verifier rejects a face once.
func (s suite) testRejections(t *testing.T) {
	e, id, f := s.confirmFixture(t)
	if _, err := e.db.Confirm(e.ctx, id, f[0], "vera"); err != nil {
		t.Fatal(err)
	}
	r, err := e.db.Reject(e.ctx, id, f[0], "val", "different ears")
	if err != nil || r.Verifier != "val" || r.Reason != "different ears" || !r.At.Equal(start) {
		t.Fatalf("Reject = %+v, %v", r, err)
	}
	_, err = e.db.Reject(e.ctx, id, f[0], "val", "again")
	is(t, "second rejection by the same verifier", err, store.ErrExists)
	_, err = e.db.Reject(e.ctx, id, f[0], "victor", " ")
	is(t, "blank reason", err, store.ErrInvalid)
	_, err = e.db.Confirm(e.ctx, id, f[0], "victor")
	is(t, "confirming a rejected face", err, store.ErrRejected)
	rs, err := e.db.Rejections(e.ctx, id)
	if err != nil || len(rs) != 1 || len(rs[f[0]]) != 1 || rs[f[0]][0].Verifier != "val" {
		t.Errorf("Rejections = %+v, %v", rs, err)
	}
	cs, err := e.db.Confirmations(e.ctx, id)
	if err != nil || !cs[f[0]].Rejected || cs[f[0]].Identified {
		t.Errorf("Confirmations = %+v, %v", cs, err)
	}
	if l, err := e.db.ListSearches(e.ctx, store.SearchFilter{State: store.VerifyRejected, Limit: 10}); err != nil || len(l) != 1 || l[0].ID != id {
		t.Errorf("rejected searches %+v, %v", l, err)
	}
}

// testQuarantine: a face is quarantined once (one audit entry), listed,
// released or erased; a face not stored is not quarantined.
func (s suite) testQuarantine(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	_, two := e.add(src, 2)
	lone, one := e.add(src, 1)
	for i := range 3 {
		added, err := e.db.QuarantineFace(e.ctx, two[0], store.FoundBySearch, "does not authenticate", "cli:ann")
		if err != nil || added != (i == 0) {
			t.Fatalf("quarantine %d: %v, %v", i, added, err)
		}
	}
	if added, err := e.db.QuarantineFace(e.ctx, one[0]+100, store.FoundByIndex, "wrong length", store.SystemActor); err != nil || added {
		t.Errorf("face not stored: %v, %v", added, err)
	}
	if _, err := e.db.QuarantineFace(e.ctx, one[0], store.FoundByIndex, "wrong length", store.SystemActor); err != nil {
		t.Fatal(err)
	}
	q, err := e.db.Quarantined(e.ctx)
	if err != nil || len(q) != 2 || q[0].FaceID != two[0] || q[0].SourceID != src || q[0].Found != store.FoundBySearch ||
		q[0].Reason != "does not authenticate" || !q[0].At.Equal(start) || q[0].ModelID != "test-model-v1" {
		t.Fatalf("Quarantined = %+v, %v", q, err)
	}
	if n, err := e.db.QuarantineCount(e.ctx); err != nil || n != 2 {
		t.Errorf("QuarantineCount = %d, %v", n, err)
	}
	if m, err := e.db.QuarantinedAmong(e.ctx, []int64{two[0], two[1], one[0]}); err != nil || !m[two[0]] || m[two[1]] || !m[one[0]] {
		t.Errorf("QuarantinedAmong = %v, %v", m, err)
	}
	if m, err := e.db.QuarantinedIDs(e.ctx, "test-model-v1"); err != nil || len(m) != 2 {
		t.Errorf("QuarantinedIDs = %v, %v", m, err)
	}
	if err := e.db.ReleaseFace(e.ctx, two[0], "cli:ann"); err != nil {
		t.Fatal(err)
	}
	gone(t, "second release", e.db.ReleaseFace(e.ctx, two[0], "cli:ann"))
	_, err = e.db.QuarantinedFaceByID(e.ctx, two[0])
	gone(t, "released face", err)
	images, err := e.db.EraseQuarantined(e.ctx, one[0], "cli:dpo")
	if err != nil || !slices.Equal(images, []int64{lone}) {
		t.Errorf("EraseQuarantined = %v, %v; want [%d]", images, err, lone)
	}
	_, err = e.db.EraseQuarantined(e.ctx, two[1], "cli:dpo")
	gone(t, "erase a face not in quarantine", err)
	if n, _ := e.db.QuarantineCount(e.ctx); n != 0 {
		t.Errorf("QuarantineCount = %d after release and erasure", n)
	}
	if n := e.faceCount(); n != 2 {
		t.Errorf("FaceCount = %d, want 2", n)
	}
	for action, want := range map[string]int{"face.quarantine": 2, "face.quarantine.release": 1, "faces.erase": 1} {
		if n := e.count(action); n != want {
			t.Errorf("%d %s entries, want %d", n, action, want)
		}
	}
}

// testSettings: a setting keeps its last value, each change audited with
// the old and new values.
func (s suite) testSettings(t *testing.T) {
	e := s.env(t)
	_, err := e.db.Setting(e.ctx, "search.fpir")
	gone(t, "unset setting", err)
	is(t, "empty value", e.db.SetSetting(e.ctx, "search.fpir", "", "cli:admin"), store.ErrInvalid)
	for _, v := range []string{"0.005", "0.02"} {
		e.clock.Add(time.Minute)
		if err := e.db.SetSetting(e.ctx, "search.fpir", v, "cli:admin"); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.db.Setting(e.ctx, "search.fpir")
	if err != nil || st.Value != "0.02" || st.By != "cli:admin" || !st.At.Equal(start.Add(2*time.Minute)) || st.Name != "search.fpir" {
		t.Errorf("Setting = %+v, %v", st, err)
	}
	var sets []map[string]any
	for _, a := range e.audit() {
		if a.Action == "policy.set" && a.Object == "setting/search.fpir" {
			var d map[string]any
			if err := json.Unmarshal(a.Detail, &d); err != nil {
				t.Fatal(err)
			}
			sets = append(sets, d)
		}
	}
	if len(sets) != 2 || sets[0]["old"] != nil || sets[0]["new"] != "0.005" || sets[1]["old"] != "0.005" || sets[1]["new"] != "0.02" {
		t.Errorf("audit of the setting: %v", sets)
	}
}
