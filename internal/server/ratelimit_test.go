package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClientAddr: a forwarded client address is believed only from a
// trusted proxy, read from the right past the trusted hops.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8, 192.0.2.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		trusted   bool // the server has the list above; else none
		remote    string
		xff       []string
		forwarded string
		want      string
	}{
		{name: "no proxy", trusted: true, remote: "198.51.100.7:5000", want: "198.51.100.7"},
		{name: "no list: forwarding ignored", remote: "10.0.0.1:443", xff: []string{"203.0.113.9"}, want: "10.0.0.1"},
		{name: "spoofed by an untrusted peer", trusted: true, remote: "198.51.100.7:5000",
			xff: []string{"203.0.113.9"}, forwarded: "for=203.0.113.10", want: "198.51.100.7"},
		{name: "one trusted proxy", trusted: true, remote: "10.0.0.1:443", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "trusted single address", trusted: true, remote: "192.0.2.1:443", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "neighbour of a trusted address", trusted: true, remote: "192.0.2.2:443", xff: []string{"203.0.113.9"}, want: "192.0.2.2"},
		{name: "client spoofs the left of the chain", trusted: true, remote: "10.0.0.1:443",
			xff: []string{"1.1.1.1, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "several trusted hops", trusted: true, remote: "10.0.0.1:443",
			xff: []string{"1.1.1.1, 203.0.113.9, 10.0.0.7, 10.2.0.1"}, want: "203.0.113.9"},
		{name: "several header lines", trusted: true, remote: "10.0.0.1:443",
			xff: []string{"1.1.1.1, 203.0.113.9", "10.0.0.7"}, want: "203.0.113.9"},
		{name: "every hop trusted", trusted: true, remote: "10.0.0.1:443", xff: []string{"10.9.9.9, 10.0.0.7"}, want: "10.9.9.9"},
		{name: "empty chain", trusted: true, remote: "10.0.0.1:443", xff: []string{""}, want: "10.0.0.1"},
		{name: "unreadable hop", trusted: true, remote: "10.0.0.1:443", xff: []string{"203.0.113.9, unknown"}, want: "10.0.0.1"},
		{name: "hop with a port", trusted: true, remote: "10.0.0.1:443", xff: []string{"203.0.113.9:61000"}, want: "203.0.113.9"},
		{name: "IPv6 proxy and client", trusted: true, remote: "[fd00::1]:443", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "IPv6 client in brackets with a port", trusted: true, remote: "[fd00::1]:443",
			xff: []string{"[2001:db8::7]:4711, fd12::3"}, want: "2001:db8::7"},
		{name: "IPv6 untrusted peer", trusted: true, remote: "[2001:db8::1]:443", xff: []string{"2001:db8::7"}, want: "2001:db8::1"},
		{name: "IPv4-mapped proxy", trusted: true, remote: "[::ffff:10.0.0.1]:443", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "Forwarded", trusted: true, remote: "10.0.0.1:443",
			forwarded: `for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1`, want: "2001:db8:cafe::17"},
		{name: "Forwarded through two proxies", trusted: true, remote: "10.0.0.1:443",
			forwarded: "for=203.0.113.9;proto=https, For=10.3.3.3", want: "203.0.113.9"},
		{name: "Forwarded obfuscated", trusted: true, remote: "10.0.0.1:443", forwarded: "for=_hidden", want: "10.0.0.1"},
		{name: "X-Forwarded-For over Forwarded", trusted: true, remote: "10.0.0.1:443",
			xff: []string{"203.0.113.9"}, forwarded: "for=1.1.1.1", want: "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &Server{}
			if tt.trusted {
				s.cfg.TrustedProxies = trusted
			}
			r := httptest.NewRequest("GET", "/portal", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.forwarded != "" {
				r.Header.Set("Forwarded", tt.forwarded)
			}
			if got := s.clientAddr(r); got != tt.want {
				t.Errorf("clientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	ps, err := ParseTrustedProxies([]string{"10.0.0.0/8,192.0.2.1", " fd00::/8 ", "", "::ffff:172.16.0.0/108", "10.1.2.3/16"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.1/32 fd00::/8 172.16.0.0/12 10.1.0.0/16"; strings.Join(got, " ") != want {
		t.Errorf("parsed %v, want %s", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.1-10.0.0.9", "10.0.0.1,nope"} {
		_, err := ParseTrustedProxies([]string{bad})
		if err == nil {
			t.Errorf("%q: no error", bad)
			continue
		}
		name := bad
		if i := strings.Index(bad, ","); i >= 0 {
			name = bad[i+1:]
		}
		if !strings.Contains(err.Error(), strconv.Quote(name)) {
			t.Errorf("%q: the error does not name the value: %v", bad, err)
		}
	}
}

func TestLimitKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.9":            "203.0.113.9",
		"2001:db8:1:2:3:4:5:6":   "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":   "2001:db8:1:2::/64",
		"not an address, a pipe": "not an address, a pipe",
	} {
		if got := limitKey(in); got != want {
			t.Errorf("limitKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// testClock is a clock tests move by hand.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func newTestLimiter(n int, window time.Duration, c *testClock) *limiter {
	l := newLimiter(n, window)
	l.now = c.now
	return l
}

// TestLimiter: the wait is until the oldest counted event leaves the
// window; a cancelled event does not count.
func TestLimiter(t *testing.T) {
	t.Parallel()
	c := &testClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	t0 := c.t
	l := newTestLimiter(3, time.Hour, c)
	for i := range 3 {
		c.t = t0.Add(time.Duration(i) * 10 * time.Minute)
		if _, wait := l.take("a"); wait != 0 {
			t.Fatalf("event %d refused (%v)", i, wait)
		}
	}
	c.t = t0.Add(30 * time.Minute)
	if _, wait := l.take("a"); wait != 30*time.Minute {
		t.Errorf("full: wait %v, want 30m (until the event of 12:00 leaves)", wait)
	}
	if _, wait := l.take("b"); wait != 0 {
		t.Errorf("another key is refused: %v", wait)
	}
	c.t = t0.Add(time.Hour)
	tk, wait := l.take("a")
	if wait != 0 {
		t.Fatalf("the oldest event left the window, still refused: %v", wait)
	}
	if _, wait := l.take("a"); wait != 10*time.Minute {
		t.Errorf("full again: wait %v, want 10m", wait)
	}
	tk.cancel()
	if _, wait := l.take("a"); wait != 0 {
		t.Errorf("a cancelled event still counts: %v", wait)
	}

	// takeAll takes from every limit or from none, and waits for the
	// longest.
	x, y := newTestLimiter(1, time.Hour, c), newTestLimiter(2, time.Minute, c)
	if _, wait := takeAll(bucket{x, "k"}, bucket{y, "k"}); wait != 0 {
		t.Fatal(wait)
	}
	c.t = c.t.Add(20 * time.Second)
	if _, wait := takeAll(bucket{x, "k"}, bucket{y, "k"}); wait != 59*time.Minute+40*time.Second {
		t.Errorf("takeAll wait %v, want 59m40s", wait)
	}
	if _, wait := y.take("k"); wait != 0 {
		t.Errorf("a refused takeAll counted in the limit with room: %v", wait)
	}
	if _, wait := newTestLimiter(0, time.Hour, c).take("k"); wait != time.Hour {
		t.Errorf("a limit of 0: wait %v, want the window", wait)
	}
}

func TestWaitWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		wait  time.Duration
		secs  int
		words string
	}{
		{time.Nanosecond, 1, "1 second"},
		{1500 * time.Millisecond, 2, "2 seconds"},
		{59 * time.Second, 59, "59 seconds"},
		{60 * time.Second, 60, "1 minute"},
		{61 * time.Second, 61, "2 minutes"},
		{58 * time.Minute, 3480, "58 minutes"},
		{time.Hour - time.Millisecond, 3600, "1 hour"},
		{2*time.Hour + 4*time.Minute + time.Second, 7441, "2 hours 5 minutes"},
	}
	for _, tt := range tests {
		if got := retrySeconds(tt.wait); got != tt.secs {
			t.Errorf("retrySeconds(%v) = %d, want %d", tt.wait, got, tt.secs)
		}
		if got := waitWords(tt.secs); got != tt.words {
			t.Errorf("waitWords(%d) = %q, want %q", tt.secs, got, tt.words)
		}
	}
}

// agree checks that a 429's message says the wait of its Retry-After.
func agree(t *testing.T, what string, h http.Header, msg string, wantSecs int) {
	t.Helper()
	ra := h.Get("Retry-After")
	secs, err := strconv.Atoi(ra)
	if err != nil || secs != wantSecs {
		t.Errorf("%s: Retry-After %q, want %d", what, ra, wantSecs)
		return
	}
	if words := "try again in " + waitWords(secs); !strings.Contains(msg, words) {
		t.Errorf("%s: the message does not say %q: %.600s", what, words, msg)
	}
}

// portalUpload builds a portal request (API or page) from remote, through
// a proxy when xff is set.
func portalUpload(t *testing.T, path, remote, xff string, fields url.Values, selfies ...[]byte) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, b := range selfies {
		fw, err := mw.CreateFormFile("selfie", fmt.Sprintf("selfie%d.png", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", path, &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.RemoteAddr = remote
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	return r
}

func serveReq(e *testEnv, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(w, r)
	return w
}

// TestPortalLimitsBehindProxy: behind a trusted proxy each client has its
// own limits; refused uploads count apart from registered requests; a
// client's own X-Forwarded-For gets it nothing; every 429 says the wait of
// its Retry-After.
func TestPortalLimitsBehindProxy(t *testing.T) {
	e := newTestEnv(t, nil)
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.cfg.TrustedProxies = trusted
	c := &testClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	t0 := c.t
	e.srv.portal = newTestLimiter(1, time.Hour, c)
	e.srv.portalFailed = newTestLimiter(4, time.Hour, c)
	const proxy = "10.0.0.1:41000"
	ok := url.Values{"kind": {"access"}, "contact": {"me@example.org"}}
	face := testPNG(t, color.RGBA{200, 10, 10, 0})
	post := func(path, remote, xff string, fields url.Values, selfies ...[]byte) *httptest.ResponseRecorder {
		t.Helper()
		return serveReq(e, portalUpload(t, path, remote, xff, fields, selfies...))
	}
	const api = "/api/v1/portal/requests"

	// Three refused uploads from A (no face, not an image, no contact),
	// under the limit of 4 refused ones.
	refused := []struct {
		fields  url.Values
		selfies [][]byte
		status  int
	}{
		{ok, [][]byte{testPNG(t, color.RGBA{})}, http.StatusUnprocessableEntity},
		{ok, [][]byte{[]byte("not a photo at all")}, http.StatusUnsupportedMediaType},
		{url.Values{"kind": {"access"}}, [][]byte{face}, http.StatusBadRequest},
	}
	for i, f := range refused {
		c.t = t0.Add(time.Duration(i) * time.Minute)
		if w := post(api, proxy, "203.0.113.1", f.fields, f.selfies...); w.Code != f.status {
			t.Fatalf("refused upload %d: %d, want %d: %s", i, w.Code, f.status, w.Body)
		}
	}
	// They do not use up A's one registered request.
	c.t = t0.Add(5 * time.Minute)
	if w := post(api, proxy, "203.0.113.1", ok, face); w.Code != http.StatusCreated {
		t.Fatalf("a valid request after refused ones: %d %s", w.Code, w.Body)
	}
	// A second one, 5 minutes later, waits until the first leaves the
	// hour: 55 minutes.
	c.t = t0.Add(10 * time.Minute)
	w := post(api, proxy, "203.0.113.1", ok, face)
	var ae apiError
	if err := json.Unmarshal(w.Body.Bytes(), &ae); w.Code != http.StatusTooManyRequests || err != nil || ae.Code != "rate_limited" {
		t.Fatalf("a second request: %d %s", w.Code, w.Body)
	}
	agree(t, "API", w.Header(), ae.Message, 3300)
	if want := "too many requests from your address; try again in 55 minutes"; ae.Message != want {
		t.Errorf("message %q, want %q", ae.Message, want)
	}
	// The page says the same wait.
	w = post("/portal", proxy, "203.0.113.1", ok, face)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("page: %d %.500s", w.Code, w.Body)
	}
	agree(t, "page", w.Header(), w.Body.String(), 3300)
	if !strings.Contains(w.Body.String(), "Too many requests from your address; try again in 55 minutes.") {
		t.Errorf("page message: %.3000s", w.Body)
	}
	// With room for registered requests, a fourth refused upload is
	// answered, and a fifth is over the failure limit: it waits until the
	// first leaves the hour.
	e.srv.portal = newTestLimiter(10, time.Hour, c)
	if w := post(api, proxy, "203.0.113.1", ok, testPNG(t, color.RGBA{})); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("fourth refused upload: %d %s", w.Code, w.Body)
	}
	w = post(api, proxy, "203.0.113.1", ok, testPNG(t, color.RGBA{}))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("fifth refused upload: %d %s", w.Code, w.Body)
	}
	_ = json.Unmarshal(w.Body.Bytes(), &ae)
	agree(t, "failures", w.Header(), ae.Message, 50*60)

	// Another client behind the same proxy has its own limits.
	if w := post(api, proxy, "203.0.113.2", ok, testPNG(t, color.RGBA{10, 200, 10, 0})); w.Code != http.StatusCreated {
		t.Errorf("client B behind the proxy: %d %s", w.Code, w.Body)
	}
	// An untrusted client's X-Forwarded-For is ignored: it counts as
	// itself, however it names itself.
	e.srv.portal = newTestLimiter(1, time.Hour, c)
	if w := post(api, "198.51.100.7:5555", "203.0.113.50", ok, face); w.Code != http.StatusCreated {
		t.Fatalf("untrusted client: %d %s", w.Code, w.Body)
	}
	if w := post(api, "198.51.100.7:5556", "203.0.113.51", ok, face); w.Code != http.StatusTooManyRequests {
		t.Errorf("a spoofed X-Forwarded-For got a new quota: %d %s", w.Code, w.Body)
	}
	// Whose address is spoofed is not blocked by it.
	if w := post(api, proxy, "203.0.113.51", ok, face); w.Code != http.StatusCreated {
		t.Errorf("the client the spoof named: %d %s", w.Code, w.Body)
	}
	// IPv6 clients count by /64.
	if w := post(api, proxy, "2001:db8:1:2::10", ok, face); w.Code != http.StatusCreated {
		t.Fatalf("IPv6 client: %d %s", w.Code, w.Body)
	}
	if w := post(api, proxy, "2001:db8:1:2::99", ok, face); w.Code != http.StatusTooManyRequests {
		t.Errorf("another address of the same /64: %d %s", w.Code, w.Body)
	}
}

// TestPortalStatusAndChecksRetryAfter: the other limits of the portal say
// the wait of their Retry-After, on the API and on the page.
func TestPortalStatusAndChecksRetryAfter(t *testing.T) {
	e := newTestEnv(t, nil)
	c := &testClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	e.srv.portalStatus = newTestLimiter(1, time.Hour, c)
	e.srv.faceCheck = newTestLimiter(1, time.Hour, c)
	get := func(path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "198.51.100.7:5000"
		return serveReq(e, r)
	}
	if w := get("/api/v1/portal/requests/R-1?code=ABCD"); w.Code != http.StatusNotFound {
		t.Fatalf("first look-up: %d %s", w.Code, w.Body)
	}
	c.t = c.t.Add(59*time.Minute + 59*time.Second + time.Millisecond)
	w := get("/api/v1/portal/requests/R-1?code=ABCD")
	var ae apiError
	if err := json.Unmarshal(w.Body.Bytes(), &ae); w.Code != http.StatusTooManyRequests || err != nil {
		t.Fatalf("second look-up: %d %s", w.Code, w.Body)
	}
	agree(t, "status API", w.Header(), ae.Message, 1) // under a second left: 1
	w = get("/portal/status?ref=R-1&code=ABCD")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status page: %d", w.Code)
	}
	agree(t, "status page", w.Header(), w.Body.String(), 1)

	r := portalUpload(t, "/api/v1/portal/face-check", "198.51.100.7:5000", "", nil, testPNG(t, color.RGBA{200, 10, 10, 0}))
	if w := serveReq(e, r); w.Code != http.StatusOK {
		t.Fatalf("face check: %d %s", w.Code, w.Body)
	}
	c.t = c.t.Add(20 * time.Minute)
	r = portalUpload(t, "/api/v1/portal/face-check", "198.51.100.7:5000", "", nil, testPNG(t, color.RGBA{200, 10, 10, 0}))
	w = serveReq(e, r)
	if err := json.Unmarshal(w.Body.Bytes(), &ae); w.Code != http.StatusTooManyRequests || err != nil {
		t.Fatalf("second face check: %d %s", w.Code, w.Body)
	}
	agree(t, "face check", w.Header(), ae.Message, 40*60)
}

// TestFailedSignInsLimited: failed sign-ins are limited per address and
// per account; successful ones do not count, and one account's failures
// do not block another's sign-in from another address.
func TestFailedSignInsLimited(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("olga", "admin")
	e.addUser("pat", "investigator")
	trusted, err := ParseTrustedProxies([]string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.cfg.TrustedProxies = trusted
	c := &testClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	t0 := c.t
	e.srv.logins = newTestLimiter(5, 10*time.Minute, c)
	e.srv.loginAccounts = newTestLimiter(3, 10*time.Minute, c)
	signIn := func(client, name, password string) (int, apiError, http.Header) {
		t.Helper()
		b, _ := json.Marshal(map[string]string{"name": name, "password": password})
		r := httptest.NewRequest("POST", "/api/v1/session", bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = "10.0.0.1:40000"
		r.Header.Set("X-Forwarded-For", client)
		w := serveReq(e, r)
		var ae apiError
		_ = json.Unmarshal(w.Body.Bytes(), &ae)
		return w.Code, ae, w.Header()
	}
	const a, b, z = "203.0.113.1", "203.0.113.2", "203.0.113.26"
	// Three failures on olga from A, a minute apart.
	for i := range 3 {
		c.t = t0.Add(time.Duration(i) * time.Minute)
		if st, ae, _ := signIn(a, "olga", "wrong password!!"); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %+v", i, st, ae)
		}
	}
	// olga's account is now limited, even with her password, until the
	// first failure leaves the 10 minutes.
	c.t = t0.Add(3 * time.Minute)
	st, ae, h := signIn(a, "olga", testPassword)
	if st != http.StatusTooManyRequests || ae.Message != "too many failed sign-ins; try again in 7 minutes" {
		t.Errorf("olga after 3 failures: %d %+v", st, ae)
	}
	agree(t, "sign-in", h, ae.Message, 7*60)
	// pat signs in from B: olga's failures do not block pat; and
	// successful sign-ins do not count (more than the limit of 5).
	for i := range 7 {
		if st, ae, _ := signIn(b, "pat", testPassword); st != http.StatusOK {
			t.Fatalf("pat's sign-in %d: %d %+v", i, st, ae)
		}
	}
	// Nor does pat from A: A has 3 failures of its 5.
	if st, ae, _ := signIn(a, "pat", testPassword); st != http.StatusOK {
		t.Errorf("pat from A: %d %+v", st, ae)
	}
	// From Z, failures on five names no account has use up Z's 5; then
	// even pat's right password from Z waits.
	for i := range 5 {
		if st, ae, _ := signIn(z, fmt.Sprintf("nobody%d", i), "wrong password!!"); st != http.StatusUnauthorized {
			t.Fatalf("Z's failure %d: %d %+v", i, st, ae)
		}
	}
	c.t = t0.Add(4 * time.Minute)
	if st, ae, h := signIn(z, "pat", testPassword); st != http.StatusTooManyRequests {
		t.Errorf("pat from Z after 5 failures there: %d %+v", st, ae)
	} else {
		agree(t, "by address", h, ae.Message, 9*60)
	}
	// The console's sign-in page says the same wait as its Retry-After.
	form := url.Values{"name": {"olga"}, "password": {testPassword}, "next": {"/"}}
	r := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "10.0.0.1:40000"
	r.Header.Set("X-Forwarded-For", a)
	w := serveReq(e, r)
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "Too many failed sign-ins; try again in 6 minutes.") {
		t.Errorf("console sign-in: %d %.2000s", w.Code, w.Body)
	}
	agree(t, "console sign-in", w.Header(), w.Body.String(), 6*60)
	// Once the failures leave the window, olga signs in.
	c.t = t0.Add(12 * time.Minute)
	if st, ae, _ := signIn(a, "olga", testPassword); st != http.StatusOK {
		t.Errorf("olga after the window: %d %+v", st, ae)
	}
}
