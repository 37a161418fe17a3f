package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"image/color"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"gabarit/internal/dsr"
	"gabarit/internal/rights"
	"gabarit/internal/store"
)

// internalWords are pieces of Go error wrapping and sentinel texts that a
// message for people never shows.
var internalWords = []string{"invalid argument", "already exists", ": forbidden", "add user:", "set user roles:",
	"confirm search", "set password:", "invalid search request", "want a cosine"}

// leaks reports the internal words that text shows.
func leaks(text string) []string {
	var out []string
	for _, w := range internalWords {
		if strings.Contains(text, w) {
			out = append(out, w)
		}
	}
	return out
}

// userActions lists the changes to user name in the audit log (user.*,
// not their sign-ins), with their actors.
func userActions(t *testing.T, e *testEnv, name string) []string {
	t.Helper()
	entries, err := e.data.DB.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		if en.Object == "user/"+name && strings.HasPrefix(en.Action, "user.") {
			out = append(out, en.Action+" "+en.Actor)
		}
	}
	return out
}

// signInWith signs name in through the sign-in form with password and
// reports whether it worked.
func signInWith(e *testEnv, name, password string) bool {
	r := e.anon().form("/login", url.Values{"name": {name}, "password": {password}})
	return r.status == http.StatusSeeOther && r.header.Get("Location") == "/"
}

// TestConsoleUsersActions: an admin changes a user's roles and password,
// disables them (after a confirmation step) and enables them again from
// the users page; each change is audited under the admin's name and named
// in the notice; an admin cannot lock themselves out.
func TestConsoleUsersActions(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("ada", store.RoleAdmin)
	e.addUser("nina", store.RoleInvestigator)
	ad := e.signIn("ada")
	nina := e.signIn("nina")
	ctx := context.Background()
	roles := func(name string) []store.Role {
		u, err := e.data.DB.User(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return u.Roles
	}
	follow := func(what string, got response) string {
		t.Helper()
		loc := got.header.Get("Location")
		if got.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/users?") {
			t.Fatalf("%s: %d %q %.1000s", what, got.status, loc, got.body)
		}
		return ad.get(loc).body
	}

	// The list links each user's page, which holds the forms.
	list := ad.get("/users")
	checkHTML(t, "users", list.body)
	if !strings.Contains(list.body, `href="/users/nina"`) || !strings.Contains(list.body, `href="/users/nina/disable"`) ||
		strings.Contains(list.body, `href="/users/ada/disable"`) {
		t.Errorf("users list: %.3000s", list.body)
	}
	page := ad.get("/users/nina")
	checkHTML(t, "user page", page.body)
	for _, want := range []string{`action="/users/nina/roles"`, `action="/users/nina/password"`, `name="password2"`,
		`value="investigator" checked`, `href="/users/nina/disable"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the user page lacks %s", want)
		}
	}
	if got := ad.get("/users/zed"); got.status != http.StatusNotFound {
		t.Errorf("page of a user who does not exist: %d", got.status)
	}

	// Roles.
	body := follow("set roles", ad.post("/users/nina/roles", url.Values{"roles": {"verifier", "auditor"}}))
	if !strings.Contains(body, "The roles of nina are saved.") {
		t.Errorf("the notice does not name the user: %.2000s", body)
	}
	if got := roles("nina"); !reflect.DeepEqual(got, []store.Role{store.RoleVerifier, store.RoleAuditor}) {
		t.Errorf("roles = %v", got)
	}
	refused := []struct {
		name   string
		who    string
		roles  []string
		status int
		text   string
	}{
		{"no role", "nina", nil, http.StatusBadRequest,
			"Give a user at least one role: admin, operator, investigator, verifier, dpo, auditor, examiner. To stop someone using gabarit, disable them instead."},
		{"unknown role", "nina", []string{"verifier", "superuser"}, http.StatusBadRequest,
			`Unknown role "superuser". Choose from: admin, operator, investigator, verifier, dpo, auditor, examiner.`},
		{"own admin role", "ada", []string{"auditor"}, http.StatusConflict,
			"You cannot take the admin role from yourself; ask another admin."},
	}
	for _, tt := range refused {
		before := roles(tt.who)
		got := ad.post("/users/"+tt.who+"/roles", url.Values{"roles": tt.roles})
		if got.status != tt.status || !strings.Contains(html.UnescapeString(got.body), tt.text) || len(leaks(got.body)) > 0 {
			t.Errorf("%s: %d, leaks %q, want %d %q: %.2000s", tt.name, got.status, leaks(got.body), tt.status, tt.text, got.body)
		}
		if after := roles(tt.who); !reflect.DeepEqual(after, before) {
			t.Errorf("%s: roles changed from %v to %v", tt.name, before, after)
		}
	}
	if got := ad.post("/users/zed/roles", url.Values{"roles": {"auditor"}}); got.status != http.StatusNotFound {
		t.Errorf("roles of a user who does not exist: %d", got.status)
	}

	// Password: typed twice, by the rules of a new user's; never shown back.
	const newPassword = "another long enough password"
	for _, tt := range []struct{ name, pw, pw2, text string }{
		{"differ", newPassword, newPassword + "x", "The two passwords differ: type the same new password in both fields."},
		{"short", "short", "short", "The password must have at least 12 characters."},
	} {
		got := ad.post("/users/nina/password", url.Values{"password": {tt.pw}, "password2": {tt.pw2}})
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, tt.text) || strings.Contains(got.body, tt.pw) {
			t.Errorf("password %s: %d %.2000s", tt.name, got.status, got.body)
		}
	}
	body = follow("set password", ad.post("/users/nina/password", url.Values{"password": {newPassword}, "password2": {newPassword}}))
	if !strings.Contains(body, "The password of nina is changed") || strings.Contains(body, newPassword) {
		t.Errorf("password notice: %.2000s", body)
	}
	if signInWith(e, "nina", testPassword) || !signInWith(e, "nina", newPassword) {
		t.Error("the new password is not the one that signs in")
	}

	// Disable: a confirmation step first, then the sessions end.
	if got := ad.post("/users/nina/disable", nil); got.status != http.StatusSeeOther || got.header.Get("Location") != "/users/nina/disable" {
		t.Errorf("disable without confirming: %d %q", got.status, got.header.Get("Location"))
	}
	if u, _ := e.data.DB.User(ctx, "nina"); !u.Disabled.IsZero() {
		t.Fatal("disabled without the confirmation step")
	}
	step := ad.get("/users/nina/disable")
	checkHTML(t, "disable step", step.body)
	if step.status != http.StatusOK || !strings.Contains(step.body, "Disable nina?") || !strings.Contains(step.body, `name="confirm" value="yes"`) {
		t.Errorf("disable step: %d %.2000s", step.status, step.body)
	}
	body = follow("disable", ad.post("/users/nina/disable", url.Values{"confirm": {"yes"}}))
	if !strings.Contains(body, "User nina is disabled: their sessions ended and their API tokens are revoked.") {
		t.Errorf("disable notice: %.2000s", body)
	}
	if got := nina.get("/searches"); got.status != http.StatusSeeOther {
		t.Errorf("a disabled user's session still works: %d", got.status)
	}
	if signInWith(e, "nina", newPassword) {
		t.Error("a disabled user signs in")
	}
	if page := ad.get("/users/nina"); !strings.Contains(page.body, `action="/users/nina/enable"`) {
		t.Errorf("the page of a disabled user has no way to enable them: %.3000s", page.body)
	}

	// Enable again: the user signs in with their password.
	body = follow("enable", ad.post("/users/nina/enable", nil))
	if !strings.Contains(body, "User nina is enabled again") {
		t.Errorf("enable notice: %.2000s", body)
	}
	if !signInWith(e, "nina", newPassword) {
		t.Error("an enabled user cannot sign in")
	}

	// An admin cannot disable themselves, by the step or the form.
	for _, got := range []response{ad.get("/users/ada/disable"), ad.post("/users/ada/disable", url.Values{"confirm": {"yes"}})} {
		if got.status != http.StatusConflict || !strings.Contains(got.body, "You cannot disable yourself; ask another admin.") {
			t.Errorf("disable oneself: %d %.2000s", got.status, got.body)
		}
	}
	if u, _ := e.data.DB.User(ctx, "ada"); !u.Disabled.IsZero() || !u.Has(store.RoleAdmin) {
		t.Errorf("the admin locked themselves out: %+v", u)
	}

	// Every change is audited under the admin's name.
	want := []string{"user.add test", "user.password test", "user.roles ada", "user.password ada", "user.disable ada", "user.enable ada"}
	if got := userActions(t, e, "nina"); !reflect.DeepEqual(got, want) {
		t.Errorf("audit of nina = %q, want %q", got, want)
	}

	// Only admins.
	e.addUser("olga", store.RoleOperator)
	olga := e.signIn("olga")
	for _, path := range []string{"/users/nina/roles", "/users/nina/password", "/users/nina/disable", "/users/nina/enable"} {
		if got := olga.post(path, url.Values{"roles": {"admin"}, "confirm": {"yes"}}); got.status != http.StatusForbidden {
			t.Errorf("an operator posts %s: %d", path, got.status)
		}
	}
}

// TestAPIUsers: enabling a user through the API, and the user rules and
// messages shared with the console.
func TestAPIUsers(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("ada", store.RoleAdmin)
	e.addUser("dora", store.RoleDPO)
	ad := e.login("ada")
	msg := func(body []byte) string {
		var ae apiError
		if err := json.Unmarshal(body, &ae); err != nil {
			t.Fatalf("not an error answer: %s", body)
		}
		return ae.Message
	}
	if st, body := ad.json("POST", "/api/v1/users/dora/disable", nil); st != http.StatusNoContent {
		t.Fatalf("disable: %d %s", st, body)
	}
	if st, body := e.anon().json("POST", "/api/v1/session", map[string]string{"name": "dora", "password": testPassword}); st == http.StatusOK {
		t.Fatalf("a disabled user logs in: %s", body)
	}
	if st, body := ad.json("POST", "/api/v1/users/dora/enable", nil); st != http.StatusNoContent {
		t.Fatalf("enable: %d %s", st, body)
	}
	e.login("dora") // fails the test if dora cannot log in
	if st, _ := ad.json("POST", "/api/v1/users/dora/enable", nil); st != http.StatusNoContent {
		t.Errorf("enable an enabled user: %d", st)
	}
	if got := userActions(t, e, "dora"); !reflect.DeepEqual(got, []string{"user.add test", "user.password test", "user.disable ada", "user.enable ada"}) {
		t.Errorf("audit of dora = %q", got)
	}
	if st, _ := e.login("dora").json("POST", "/api/v1/users/ada/enable", nil); st != http.StatusForbidden {
		t.Errorf("a DPO enables a user: %d", st)
	}

	cases := []struct {
		name, method, path string
		in                 any
		status             int
		text               string
	}{
		{"enable unknown", "POST", "/api/v1/users/zed/enable", nil, 404, `there is no user named "zed"`},
		{"roles unknown user", "PUT", "/api/v1/users/zed/roles", map[string]any{"roles": []string{"dpo"}}, 404, `there is no user named "zed"`},
		{"unknown role", "PUT", "/api/v1/users/dora/roles", map[string]any{"roles": []string{"superuser"}}, 400,
			`unknown role "superuser". Choose from: admin, operator, investigator, verifier, dpo, auditor, examiner`},
		{"add with unknown role", "POST", "/api/v1/users", map[string]any{"name": "x", "password": testPassword, "roles": []string{"superuser"}}, 400,
			`unknown role "superuser". Choose from: admin, operator, investigator, verifier, dpo, auditor, examiner`},
		{"no role", "PUT", "/api/v1/users/dora/roles", map[string]any{"roles": []string{}}, 400,
			"give a user at least one role: admin, operator, investigator, verifier, dpo, auditor, examiner. To stop someone using gabarit, disable them instead"},
		{"own admin role", "PUT", "/api/v1/users/ada/roles", map[string]any{"roles": []string{"dpo"}}, 409,
			"you cannot take the admin role from yourself; ask another admin"},
		{"disable oneself", "POST", "/api/v1/users/ada/disable", nil, 409, "you cannot disable yourself; ask another admin"},
		{"short password", "PUT", "/api/v1/users/dora/password", map[string]any{"password": "short"}, 400,
			"the password must have at least 12 characters"},
	}
	for _, tt := range cases {
		st, body := ad.json(tt.method, tt.path, tt.in)
		if st != tt.status || msg(body) != tt.text {
			t.Errorf("%s: %d %q, want %d %q", tt.name, st, msg(body), tt.status, tt.text)
		}
	}
}

// TestErrorWording: the messages people read say what is wrong without
// Go's wrapping or the sentinels' texts.
func TestErrorWording(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		code string
		want string
	}{
		{"confirmed twice", fmt.Errorf("confirm search 3 face 2293: already confirmed by this user: %w", store.ErrExists),
			"conflict", "already confirmed by this user"},
		{"unknown role from the store", fmt.Errorf("add user: unknown role %q: %w", "superuser", store.ErrInvalid),
			"invalid", `unknown role "superuser"`},
		{"quoted colon kept", fmt.Errorf("set user roles: role %q: unknown: %w", "a: b", store.ErrInvalid),
			"invalid", `role "a: b": unknown`},
		{"subject quoted", fmt.Errorf("time zone %q: name an IANA zone: %w", "Mars/Base", dsr.ErrInvalid),
			"invalid", `time zone "Mars/Base": name an IANA zone`},
		{"sentinel only", fmt.Errorf("add user: %w", store.ErrExists), "conflict", "this exists already"},
		{"rights", fmt.Errorf("request 4: %w: 3 face(s) are selected, not the 2 confirmed; look at the review again", rights.ErrStale),
			"stale_review", "the reviewed set changed: 3 face(s) are selected, not the 2 confirmed; look at the review again"},
		{"forbidden", fmt.Errorf("confirm search 3 face 4: a user cannot confirm their own search: %w", store.ErrForbidden),
			"not_allowed", "a user cannot confirm their own search"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ae := classify(tt.err, "req")
			if ae.Code != tt.code || (tt.want != "" && ae.Message != tt.want) {
				t.Errorf("classify(%q) = %s %q, want %s %q", tt.err, ae.Code, ae.Message, tt.code, tt.want)
			}
		})
	}
}

// TestErrorTexts: the texts of refusals that used to leak Go's wrapping,
// through the API and the console: a face confirmed twice, a bad
// threshold (one text for every way of sending it).
func TestErrorTexts(t *testing.T) {
	e := consoleEnv(t)
	sid, fid := consoleData(t, e)
	e.addUser("vic", store.RoleVerifier)
	vic := e.login("vic")
	if st, body := vic.json("POST", fmt.Sprintf("/api/v1/searches/%d/confirmations", sid), map[string]int64{"face_id": fid}); st != http.StatusOK {
		t.Fatalf("confirm: %d %s", st, body)
	}
	st, body := vic.json("POST", fmt.Sprintf("/api/v1/searches/%d/confirmations", sid), map[string]int64{"face_id": fid})
	want := fmt.Sprintf(`"you have already confirmed face %d: a second, different verifier must confirm it"`, fid)
	if st != http.StatusConflict || !bytes.Contains(body, []byte(want)) || len(leaks(string(body))) > 0 {
		t.Errorf("API, confirmed twice: %d %s", st, body)
	}
	page := e.signIn("vic").post(fmt.Sprintf("/searches/%d/confirm", sid), url.Values{"face_id": {fmt.Sprint(fid)}, "attest": {"yes"}})
	if page.status != http.StatusConflict || !strings.Contains(page.body, fmt.Sprintf("You have already confirmed face %d: a second, different verifier must confirm it.", fid)) {
		t.Errorf("console, confirmed twice: %d %.2000s", page.status, page.body)
	}

	e.addUser("ivo", store.RoleInvestigator)
	inv := e.token("ivo")
	web := e.signIn("ivo")
	photo := testPNG(t, color.RGBA{200, 10, 10, 0})
	for _, v := range []string{"abc", "2", "-1.5"} {
		text := fmt.Sprintf("the threshold %q is not a number from -1 to 1: give one, or leave it empty to use the operating point", v)
		st, body := inv.multipart("/api/v1/searches", map[string]string{"purpose": "p", "threshold": v}, map[string][][]byte{"photo": {photo}})
		var ae apiError
		if err := json.Unmarshal(body, &ae); err != nil || st != http.StatusBadRequest || ae.Message != text {
			t.Errorf("API, threshold %s: %d %s", v, st, body)
		}
		got := web.postFiles("/search", url.Values{"purpose": {"p"}, "threshold": {v}}, map[string][][]byte{"photo": {photo}})
		if got.status != http.StatusBadRequest || !strings.Contains(html.UnescapeString(got.body), capitalize(text)+".") {
			t.Errorf("console, threshold %s: %d %.3000s", v, got.status, got.body)
		}
	}
}

// TestUploadTooLarge: a photo over the upload limit is refused with its
// size, the limit and what to do, by the API, the console's search form
// and the portal.
func TestUploadTooLarge(t *testing.T) {
	e := consoleEnv(t)
	e.addUser("ivo", store.RoleInvestigator)
	big := bytes.Repeat([]byte{0xff}, 30_000_000) // 28.6 MiB, with a few bytes of form
	const photo = "The photo is 28.6 MiB; the limit is 20 MiB. Send a smaller photo (e.g. export it as JPEG)."

	st, body := e.token("ivo").multipart("/api/v1/searches", map[string]string{"purpose": "p"}, map[string][][]byte{"photo": {big}})
	var ae apiError
	if err := json.Unmarshal(body, &ae); err != nil || st != http.StatusRequestEntityTooLarge || ae.Code != "too_large" ||
		capitalize(ae.Message)+"." != photo {
		t.Errorf("API: %d %s", st, body)
	}
	got := e.signIn("ivo").postFiles("/search", url.Values{"purpose": {"p"}}, map[string][][]byte{"photo": {big}})
	if got.status != http.StatusRequestEntityTooLarge || !strings.Contains(got.body, photo) {
		t.Errorf("console search form: %d %.3000s", got.status, got.body)
	}
	got = e.anon().upload("/portal", url.Values{"kind": {"access"}, "contact": {"a@example.org"}}, map[string][][]byte{"selfie": {big}})
	if got.status != http.StatusRequestEntityTooLarge ||
		!strings.Contains(got.body, "The photos are 28.6 MiB; the limit is 20 MiB. Send fewer or smaller photos (e.g. export them as JPEG).") {
		t.Errorf("portal: %d %.3000s", got.status, got.body)
	}
	// A JSON body over its limit names that limit.
	e.addUser("olga", store.RoleOperator)
	st, body = e.token("olga").do("POST", "/api/v1/sources", "application/json",
		bytes.NewReader(append([]byte(`{"kind":"`), bytes.Repeat([]byte("a"), maxJSONBody)...)))
	if err := json.Unmarshal(body, &ae); err != nil || st != http.StatusRequestEntityTooLarge || !strings.Contains(ae.Message, "the limit is 64 KiB") {
		t.Errorf("JSON: %d %s", st, body)
	}
}

func TestByteSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{12: "12 bytes", 64 << 10: "64 KiB", 20 << 20: "20 MiB", 30_000_000: "28.6 MiB", 3 << 30: "3 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
