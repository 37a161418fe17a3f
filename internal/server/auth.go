package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gabarit/internal/passwd"
	"gabarit/internal/store"
)

// principal is who makes a request: a user, through a console session or
// an API token.
type principal struct {
	user      store.User
	session   *store.Session // nil for a bearer token
	tokenHash [32]byte       // the session's cookie hash
	token     *store.APIToken
}

// actor names p in the audit log: the account name (command-line accounts
// are named cli:ACCOUNT, console and API accounts have no prefix).
func (p *principal) actor() string { return p.user.Name }

// Cookie and token names.
const (
	sessionCookie = "gabarit_session"
	tokenPrefix   = "gbt_"
)

// authenticate finds the principal of r: a bearer token in Authorization,
// else a session cookie. No credentials is (nil, nil); wrong, expired or
// revoked credentials are an error (401), so that a client learns its
// token is no longer good.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !strings.HasPrefix(tok, tokenPrefix) {
			return nil, newError(http.StatusUnauthorized, "bad_token", "Authorization must be \"Bearer gbt_…\"")
		}
		t, u, err := s.cfg.Data.DB.APITokenUser(r.Context(), passwd.TokenHash(tok))
		switch {
		case errors.Is(err, store.ErrExpired):
			return nil, newError(http.StatusUnauthorized, "token_expired", "this API token has expired; create a new one")
		case errors.Is(err, store.ErrRevoked):
			return nil, newError(http.StatusUnauthorized, "token_revoked", "this API token was revoked")
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrForbidden):
			return nil, newError(http.StatusUnauthorized, "bad_token", "unknown API token, or its user is disabled")
		case err != nil:
			return nil, err
		}
		return &principal{user: u, token: &t}, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	h := passwd.TokenHash(c.Value)
	sess, err := s.cfg.Data.DB.Session(r.Context(), h)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrForbidden) {
		return nil, newError(http.StatusUnauthorized, "session_expired", "your session has ended; sign in again")
	}
	if err != nil {
		return nil, err
	}
	return &principal{user: sess.User, session: &sess, tokenHash: h}, nil
}

// login checks a name and password and opens a session: the cookie holds
// a random token (the store keeps its hash), and the CSRF token is
// returned for the console to echo. Failed attempts are limited per
// client address and per account (successful ones do not count); a wrong
// name and a wrong password get the same answer.
func (s *Server) login(ctx context.Context, w http.ResponseWriter, r *http.Request, name, password string) (*store.Session, error) {
	// Every attempt counts as a failure until it succeeds: so concurrent
	// guesses cannot pass the limits while their passwords are checked.
	attempt, wait := takeAll(bucket{s.logins, s.clientKey(r)}, bucket{s.loginAccounts, name})
	if wait > 0 {
		s.metrics.logins.WithLabelValues("rate_limited").Inc()
		return nil, rateLimited(w, "too many failed sign-ins", wait)
	}
	bad := newError(http.StatusUnauthorized, "bad_credentials", "wrong name or password")
	hash, u, err := s.cfg.Data.DB.PasswordHash(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a real check, so that timing does not
		// tell which accounts exist.
		_, _ = passwd.Verify(password, dummyHash())
		s.metrics.logins.WithLabelValues("failed").Inc()
		return nil, s.failedLogin(ctx, "", "unknown account", bad)
	}
	if err != nil {
		return nil, err
	}
	ok, err := passwd.Verify(password, hash)
	if err != nil {
		return nil, err
	}
	if !ok || !u.Disabled.IsZero() {
		s.metrics.logins.WithLabelValues("failed").Inc()
		why := "wrong password"
		if ok {
			why = "disabled account"
		}
		return nil, s.failedLogin(ctx, u.Name, why, bad)
	}
	token, th, err := passwd.NewToken("")
	if err != nil {
		return nil, err
	}
	csrf := randomString(32)
	expires := s.cfg.Now().Add(s.cfg.SessionTTL)
	if err := s.cfg.Data.DB.CreateSession(ctx, th, u.Name, csrf, expires); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	attempt.cancel() // a sign-in that succeeds is no failure
	s.metrics.logins.WithLabelValues("ok").Inc()
	return &store.Session{User: u, CSRF: csrf, Expires: expires}, nil
}

// failedLogin audits a failed sign-in ("session.failed": the account when
// it exists and why; never a name typed that is no account, the password
// or the client's address, which the audit log would keep for good) and
// returns answer. Attempts are bounded by the sign-in limits,
// so the log cannot be flooded through it.
func (s *Server) failedLogin(ctx context.Context, account, why string, answer error) error {
	object := "user/?"
	if account != "" {
		object = "user/" + account
	}
	detail, _ := json.Marshal(map[string]string{"reason": why})
	if _, err := s.cfg.Data.DB.AppendAudit(context.WithoutCancel(ctx), nil, store.AuditEntry{Actor: "anonymous",
		Action: "session.failed", Object: object, Detail: detail}); err != nil {
		return err
	}
	return answer
}

// logout ends p's session and clears the cookie.
func (s *Server) logout(ctx context.Context, w http.ResponseWriter, p *principal) error {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	if p == nil || p.session == nil {
		return nil
	}
	err := s.cfg.Data.DB.DeleteSession(ctx, p.tokenHash, p.actor())
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// dummyHash is a valid argon2id hash of a random password, verified
// against when the account does not exist; made on first use, so that
// commands that never serve do not pay for it.
var dummyHash = sync.OnceValue(func() string {
	h, err := passwd.Hash(randomString(24))
	if err != nil {
		panic(err) // only crypto/rand failing, which it does not on Linux
	}
	return h
})

// randomString is n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b)
}

// limiter counts events per key within a sliding window and refuses more
// than n of them.
type limiter struct {
	n      int
	window time.Duration
	mu     sync.Mutex
	seen   map[string][]time.Time // oldest first
	now    func() time.Time
}

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, seen: map[string][]time.Time{}, now: time.Now}
}

// ticket is one event a limiter counted; cancel uncounts it.
type ticket struct {
	l   *limiter
	key string
	at  time.Time
}

// take counts an event for key when fewer than n are counted within the
// window, and returns its ticket. Otherwise it counts nothing and returns
// how long until the oldest counted event leaves the window (the whole
// window when n is 0).
func (l *limiter) take(key string) (ticket, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	ts := l.prune(key, now)
	if len(ts) >= l.n {
		if len(ts) == 0 {
			return ticket{}, l.window
		}
		return ticket{}, ts[0].Add(l.window).Sub(now)
	}
	l.seen[key] = append(ts, now)
	return ticket{l: l, key: key, at: now}, 0
}

// prune drops the events of key that left the window and returns those
// left. l.mu is held.
func (l *limiter) prune(key string, now time.Time) []time.Time {
	cut := now.Add(-l.window)
	if len(l.seen) > 100_000 { // bound the memory an attacker can take
		for k, v := range l.seen {
			if len(v) == 0 || !v[len(v)-1].After(cut) {
				delete(l.seen, k)
			}
		}
	}
	ts := l.seen[key]
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.seen, key)
		return nil
	}
	l.seen[key] = ts
	return ts
}

// cancel uncounts t's event; a zero ticket does nothing.
func (t ticket) cancel() {
	if t.l == nil {
		return
	}
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	ts := t.l.seen[t.key]
	for i, at := range ts {
		if at.Equal(t.at) {
			t.l.seen[t.key] = append(ts[:i:i], ts[i+1:]...)
			return
		}
	}
}

// bucket is a limiter and the key an event counts under.
type bucket struct {
	l   *limiter
	key string
}

// tickets are the events of one request, counted in several buckets.
type tickets []ticket

func (ts tickets) cancel() {
	for _, t := range ts {
		t.cancel()
	}
}

// takeAll counts an event in every bucket, or in none: when one is full,
// it returns how long until every full one has room.
func takeAll(ls ...bucket) (tickets, time.Duration) {
	out := make(tickets, 0, len(ls))
	var wait time.Duration
	for _, x := range ls {
		t, d := x.l.take(x.key)
		if d > 0 {
			wait = max(wait, d)
			continue
		}
		out = append(out, t)
	}
	if wait > 0 {
		out.cancel()
		return nil, wait
	}
	return out, 0
}

// retrySeconds is wait in whole seconds, rounded up, at least 1: the
// value of Retry-After.
func retrySeconds(wait time.Duration) int {
	return max(1, int((wait+time.Second-1)/time.Second))
}

// waitWords says secs for people, rounded up: "40 seconds", "1 minute",
// "58 minutes", "1 hour", "2 hours 5 minutes".
func waitWords(secs int) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.Itoa(n) + " " + unit + "s"
	}
	if secs < 60 {
		return plural(secs, "second")
	}
	mins := (secs + 59) / 60
	if mins < 60 {
		return plural(mins, "minute")
	}
	h, m := mins/60, mins%60
	if m == 0 {
		return plural(h, "hour")
	}
	return plural(h, "hour") + " " + plural(m, "minute")
}

// rateLimited answers a request a limit refused: Retry-After and the
// message say the same wait, from when the oldest counted event leaves
// the window. what says what there were too many of.
func rateLimited(w http.ResponseWriter, what string, wait time.Duration) *apiError {
	secs := retrySeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return newError(http.StatusTooManyRequests, "rate_limited", "%s; try again in %s", what, waitWords(secs))
}
