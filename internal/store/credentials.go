package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Errors of API token checks (APITokenUser); test them with errors.Is.
var (
	// ErrExpired is returned for an API token used after its expiry.
	ErrExpired = errors.New("expired")
	// ErrRevoked is returned for an API token that was revoked.
	ErrRevoked = errors.New("revoked")
)

// touchInterval is how stale a session's last_seen_at or a token's
// last_used_at may get before a use writes it again: at most one write a
// minute per session or token, however busy.
const touchInterval = time.Minute

// Bounds of the strings stored with credentials, in bytes.
const (
	maxPasswordHashLen = 512
	maxLabelLen        = 200
)

// userColumnsU is userColumns qualified by the alias u, for joins.
var userColumnsU = "u." + strings.ReplaceAll(userColumns, ", ", ", u.")

// leading is a scanner that scans a row's first columns into first and its
// remaining ones into the destinations given to Scan, so that scanUser can
// read the user columns that end a join.
type leading struct {
	sc    scanner
	first []any
}

// Scan scans the row into l.first followed by dest.
func (l leading) Scan(dest ...any) error {
	return l.sc.Scan(append(l.first[:len(l.first):len(l.first)], dest...)...)
}

// SetPassword sets a user's password hash; see Tx.SetPassword.
func (db *DB) SetPassword(ctx context.Context, name, hash, by string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.SetPassword(ctx, name, hash, by) })
}

// SetPassword sets the password hash of user name to hash, a PHC string such
// as passwd.Hash returns, replacing any previous one, and appends the audit
// entry "user.password" by by, whose detail says only whether a password
// was replaced (never the hash). A hash that is not a PHC string (starting
// with '$', without spaces or control characters, at most 512 bytes) or a
// blank by fails with ErrInvalid, a missing user with ErrNotFound. A
// disabled user's password may be set; it grants nothing while the user
// AddConsoleUser registers a console and API user with roles and the hash
// of its password, in one transaction: the user exists with its password,
// or not at all.
func (db *DB) AddConsoleUser(ctx context.Context, name string, roles []Role, hash, by string) error {
	return db.Tx(ctx, func(tx *Tx) error {
		if err := tx.AddUser(ctx, name, roles, by); err != nil {
			return err
		}
		return tx.SetPassword(ctx, name, hash, by)
	})
}

// stays disabled. Existing sessions are kept.
func (tx *Tx) SetPassword(ctx context.Context, name, hash, by string) error {
	what := "set password"
	switch {
	case strings.Contains(name, ":"):
		return fmt.Errorf("%s: a console user's name has no ':' (cli:ACCOUNT names command-line accounts, which sign in as their operating-system account): %w", what, ErrInvalid)
	case strings.TrimSpace(by) == "":
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	case !strings.HasPrefix(hash, "$") || len(hash) > maxPasswordHashLen ||
		strings.ContainsFunc(hash, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("%s: hash is not a PHC string: %w", what, ErrInvalid)
	}
	var old sql.NullString
	err := tx.tx.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE name = ?`, name).Scan(&old)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: user: %w", what, ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	detail, err := json.Marshal(struct {
		Replaced bool `json:"replaced"`
	}{old.Valid})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{At: tx.now(), Actor: by, Action: "user.password",
		Object: userObject(name), Detail: detail}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// PasswordHash returns the password hash of user name and the user, disabled
// or not: the caller verifies the password and must refuse a disabled user
// (CreateSession does). A missing user and a user without a password (such
// as a cli: account) both fail with ErrNotFound, so that a login does not
// tell them apart.
func (db *DB) PasswordHash(ctx context.Context, name string) (string, User, error) {
	var hash sql.NullString
	row := db.r.QueryRowContext(ctx, `SELECT password_hash, `+userColumns+` FROM users WHERE name = ?`, name)
	u, err := one(row, func(sc scanner) (User, error) {
		return scanUser(leading{sc: sc, first: []any{&hash}})
	}, "password hash")
	if err != nil {
		return "", User{}, err
	}
	if !hash.Valid {
		return "", User{}, fmt.Errorf("password hash: %w", ErrNotFound)
	}
	return hash.String, u, nil
}

// Session is a login to the web console, found by the SHA-256 of its cookie
// token.
type Session struct {
	User     User      // as it is now
	CSRF     string    // the session's anti-CSRF token
	Created  time.Time // the login
	Expires  time.Time // the session is valid before this instant
	LastSeen time.Time // the last use, to within touchInterval (a minute)
}

// sessionDetail is the audit detail of a login.
type sessionDetail struct {
	Expires string `json:"expires"` // RFC 3339, UTC
}

// CreateSession records a login; see Tx.CreateSession.
func (db *DB) CreateSession(ctx context.Context, tokenHash [32]byte, user, csrf string, expires time.Time) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.CreateSession(ctx, tokenHash, user, csrf, expires) })
}

// CreateSession records a session of user, who has just logged in, under
// tokenHash (passwd.TokenHash of the cookie token), valid until expires, and
// appends the audit entry "session.login" by user, whose detail holds the
// expiry (never the token, its hash or the CSRF token). A zero tokenHash, an
// empty csrf or an expiry not after now (the store clock) fails with
// ErrInvalid; a missing user with ErrNotFound; a disabled one with
// ErrForbidden; a tokenHash already in use with ErrExists.
func (tx *Tx) CreateSession(ctx context.Context, tokenHash [32]byte, user, csrf string, expires time.Time) error {
	what := "create session"
	now := tx.now()
	switch {
	case tokenHash == [32]byte{}:
		return fmt.Errorf("%s: token hash required: %w", what, ErrInvalid)
	case csrf == "":
		return fmt.Errorf("%s: csrf token required: %w", what, ErrInvalid)
	case ms(expires) <= ms(now):
		return fmt.Errorf("%s: expiry not after now: %w", what, ErrInvalid)
	}
	u, err := tx.user(ctx, user)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !u.Disabled.IsZero() {
		return fmt.Errorf("%s: user disabled: %w", what, ErrForbidden)
	}
	var n int
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE token_hash = ?`, tokenHash[:]).Scan(&n); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n > 0 {
		return fmt.Errorf("%s: %w", what, ErrExists)
	}
	if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO sessions (token_hash, user_name, csrf, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`,
		tokenHash[:], user, csrf, ms(now), ms(expires), ms(now)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	detail, err := json.Marshal(sessionDetail{Expires: fromMS(ms(expires)).Format(time.RFC3339Nano)})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{At: now, Actor: user, Action: "session.login",
		Object: userObject(user), Detail: detail}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Session returns the session whose token hashes to tokenHash, with its user.
// A missing or expired session fails with ErrNotFound, a session of a
// disabled user with an error wrapping ErrForbidden. When the session was
// last seen a minute or more ago (the store clock) it records this use as
// its last, outside the audit log; so Session must not be called inside
// DB.Tx.
func (db *DB) Session(ctx context.Context, tokenHash [32]byte) (Session, error) {
	what := "session"
	var s Session
	var created, expires, lastSeen int64
	row := db.r.QueryRowContext(ctx, `SELECT s.csrf, s.created_at, s.expires_at, s.last_seen_at, `+userColumnsU+`
FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.token_hash = ?`, tokenHash[:])
	u, err := one(row, func(sc scanner) (User, error) {
		return scanUser(leading{sc: sc, first: []any{&s.CSRF, &created, &expires, &lastSeen}})
	}, what)
	if err != nil {
		return Session{}, err
	}
	now := db.now()
	switch {
	case expires <= ms(now):
		return Session{}, fmt.Errorf("%s: expired: %w", what, ErrNotFound)
	case !u.Disabled.IsZero():
		return Session{}, fmt.Errorf("%s: user disabled: %w", what, ErrForbidden)
	}
	s.User, s.Created, s.Expires, s.LastSeen = u, fromMS(created), fromMS(expires), fromMS(lastSeen)
	if ms(now)-lastSeen >= touchInterval.Milliseconds() {
		if _, err := db.w.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?`,
			ms(now), tokenHash[:], ms(now)); err != nil {
			return Session{}, fmt.Errorf("%s: last seen: %w", what, err)
		}
		s.LastSeen = fromMS(ms(now))
	}
	return s, nil
}

// DeleteSession ends a session; see Tx.DeleteSession.
func (db *DB) DeleteSession(ctx context.Context, tokenHash [32]byte, actor string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.DeleteSession(ctx, tokenHash, actor) })
}

// DeleteSession deletes the session whose token hashes to tokenHash, expired
// or not (a logout, or an admin ending it), and appends the audit entry
// "session.logout" by actor on the session's user. A missing session fails
// with ErrNotFound, a blank actor with ErrInvalid.
func (tx *Tx) DeleteSession(ctx context.Context, tokenHash [32]byte, actor string) error {
	what := "delete session"
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	var user string
	err := tx.tx.QueryRowContext(ctx, `DELETE FROM sessions WHERE token_hash = ? RETURNING user_name`, tokenHash[:]).Scan(&user)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{At: tx.now(), Actor: actor, Action: "session.logout",
		Object: userObject(user)}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// DeleteExpiredSessions deletes expired sessions; see Tx.DeleteExpiredSessions.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.Tx(ctx, func(tx *Tx) error {
		var err error
		n, err = tx.DeleteExpiredSessions(ctx, now)
		return err
	})
	return n, err
}

// DeleteExpiredSessions deletes every session that expired at or before now
// and returns how many it deleted. It appends no audit entry: an expired
// session already grants nothing, and its expiry is in its "session.login"
// entry.
func (tx *Tx) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return n, nil
}

// APIToken is a bearer token of an API client, acting as its user. The
// store keeps the SHA-256 of the token, never the token.
type APIToken struct {
	ID        int64
	User      string
	Label     string // what the token is for, chosen by its creator
	CreatedBy string
	Created   time.Time
	Expires   time.Time // the token is valid before this instant; zero: never expires
	Revoked   time.Time // zero while not revoked
	LastUsed  time.Time // to within touchInterval (a minute); zero: never used
}

// tokenDetail is the audit detail of a change to an API token: never the
// token or its hash.
type tokenDetail struct {
	User    string `json:"user"`
	Label   string `json:"label,omitempty"`
	Expires string `json:"expires,omitempty"` // RFC 3339, UTC; absent: never
	Reason  string `json:"reason,omitempty"`  // why a token was revoked other than by RevokeAPIToken
}

// tokenObject is the audit object of API token id.
func tokenObject(id int64) string { return fmt.Sprintf("token/%d", id) }

// auditToken appends the audit entry of a change to API token id.
func (tx *Tx) auditToken(ctx context.Context, at time.Time, by, action string, id int64, d tokenDetail) error {
	detail, err := json.Marshal(d)
	if err != nil {
		return err
	}
	_, err = tx.AppendAudit(ctx, AuditEntry{At: at, Actor: by, Action: action, Object: tokenObject(id), Detail: detail})
	return err
}

// CreateAPIToken records an API token; see Tx.CreateAPIToken.
func (db *DB) CreateAPIToken(ctx context.Context, user, label string, hash [32]byte, expires time.Time, by string) (int64, error) {
	var id int64
	err := db.Tx(ctx, func(tx *Tx) error {
		var err error
		id, err = tx.CreateAPIToken(ctx, user, label, hash, expires, by)
		return err
	})
	return id, err
}

// CreateAPIToken records an API token of user under hash (passwd.TokenHash
// of the token), valid until expires (the zero time: until revoked), and
// returns its id. It appends the audit entry "token.create" by by on
// "token/ID", whose detail holds the user, the label and the expiry (never
// the token or its hash). A zero hash, an expiry not after now (the store
// clock), a blank by, or a label that is empty, longer than 200 bytes, has
// surrounding spaces or holds control characters fails with ErrInvalid; a
// missing user with ErrNotFound; a disabled one with ErrForbidden; a hash
// already in use with ErrExists. It does not check that by may give user a
// token: that is the caller's decision.
func (tx *Tx) CreateAPIToken(ctx context.Context, user, label string, hash [32]byte, expires time.Time, by string) (int64, error) {
	what := "create api token"
	now := tx.now()
	switch {
	case strings.TrimSpace(by) == "":
		return 0, fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	case hash == [32]byte{}:
		return 0, fmt.Errorf("%s: token hash required: %w", what, ErrInvalid)
	case label == "" || len(label) > maxLabelLen || strings.TrimSpace(label) != label ||
		!utf8.ValidString(label) || strings.ContainsFunc(label, unicode.IsControl):
		return 0, fmt.Errorf("%s: label must be 1 to %d bytes of text without surrounding spaces or control characters: %w",
			what, maxLabelLen, ErrInvalid)
	case !expires.IsZero() && ms(expires) <= ms(now):
		return 0, fmt.Errorf("%s: expiry not after now: %w", what, ErrInvalid)
	}
	u, err := tx.user(ctx, user)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if !u.Disabled.IsZero() {
		return 0, fmt.Errorf("%s: user disabled: %w", what, ErrForbidden)
	}
	var n int
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM api_tokens WHERE token_hash = ?`, hash[:]).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if n > 0 {
		return 0, fmt.Errorf("%s: %w", what, ErrExists)
	}
	var id int64
	err = tx.tx.QueryRowContext(ctx, `
INSERT INTO api_tokens (user_name, label, token_hash, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		user, label, hash[:], ms(now), by, nullMS(expires)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	d := tokenDetail{User: user, Label: label}
	if !expires.IsZero() {
		d.Expires = fromMS(ms(expires)).Format(time.RFC3339Nano)
	}
	if err := tx.auditToken(ctx, now, by, "token.create", id, d); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return id, nil
}

// APITokens returns the API tokens of user, or of every user when user is
// "", revoked and expired ones included, in id order. A user without tokens,
// or no such user, gives none.
func (db *DB) APITokens(ctx context.Context, user string) ([]APIToken, error) {
	q := `SELECT ` + tokenColumns + ` FROM api_tokens`
	var args []any
	if user != "" {
		q += ` WHERE user_name = ?`
		args = append(args, user)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	out, err := collect(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken revokes an API token; see Tx.RevokeAPIToken.
func (db *DB) RevokeAPIToken(ctx context.Context, id int64, by string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.RevokeAPIToken(ctx, id, by) })
}

// RevokeAPIToken revokes API token id from now on (the store clock) and
// appends the audit entry "token.revoke" by by on "token/ID", whose detail
// names the token's user. Revoking a revoked token writes nothing and
// returns nil; an expired token may be revoked. A missing token fails with
// ErrNotFound, a blank by with ErrInvalid.
func (tx *Tx) RevokeAPIToken(ctx context.Context, id int64, by string) error {
	what := "revoke api token"
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	var user string
	var revoked sql.NullInt64
	err := tx.tx.QueryRowContext(ctx, `SELECT user_name, revoked_at FROM api_tokens WHERE id = ?`, id).Scan(&user, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s %d: %w", what, id, err)
	case revoked.Valid:
		return nil
	}
	now := tx.now()
	if _, err := tx.tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ?`, ms(now), id); err != nil {
		return fmt.Errorf("%s %d: %w", what, id, err)
	}
	if err := tx.auditToken(ctx, now, by, "token.revoke", id, tokenDetail{User: user}); err != nil {
		return fmt.Errorf("%s %d: %w", what, id, err)
	}
	return nil
}

// APITokenUser returns the API token whose hash is hash (passwd.TokenHash of
// the bearer token) and its user. An unknown token fails with ErrNotFound, a
// revoked one with ErrRevoked, an expired one with ErrExpired, and a token
// of a disabled user with an error wrapping ErrForbidden; the error names
// the token's id, never the token. When the token was last used a minute or
// more ago (the store clock), or never, it records this use as its last,
// outside the audit log; so APITokenUser must not be called inside DB.Tx.
func (db *DB) APITokenUser(ctx context.Context, hash [32]byte) (APIToken, User, error) {
	what := "api token"
	var r tokenRow
	row := db.r.QueryRowContext(ctx, `SELECT `+tokenColumnsT+`, `+userColumnsU+`
FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = ?`, hash[:])
	u, err := one(row, func(sc scanner) (User, error) {
		return scanUser(leading{sc: sc, first: r.dest()})
	}, what)
	if err != nil {
		return APIToken{}, User{}, err
	}
	t := r.token()
	now := db.now()
	switch {
	case !t.Revoked.IsZero():
		return APIToken{}, User{}, fmt.Errorf("%s %d: %w", what, t.ID, ErrRevoked)
	case !t.Expires.IsZero() && ms(t.Expires) <= ms(now):
		return APIToken{}, User{}, fmt.Errorf("%s %d: %w", what, t.ID, ErrExpired)
	case !u.Disabled.IsZero():
		return APIToken{}, User{}, fmt.Errorf("%s %d: user disabled: %w", what, t.ID, ErrForbidden)
	}
	if t.LastUsed.IsZero() || ms(now)-ms(t.LastUsed) >= touchInterval.Milliseconds() {
		if _, err := db.w.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ?
WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, ms(now), t.ID, ms(now)); err != nil {
			return APIToken{}, User{}, fmt.Errorf("%s %d: last used: %w", what, t.ID, err)
		}
		t.LastUsed = fromMS(ms(now))
	}
	return t, u, nil
}

// endCredentials deletes the sessions of user name and revokes its API
// tokens not yet revoked at now, for DisableUser, and returns the number of
// sessions deleted and the ids of the tokens revoked.
func (tx *Tx) endCredentials(ctx context.Context, name string, now time.Time) (sessions int64, tokens []int64, err error) {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_name = ?`, name)
	if err != nil {
		return 0, nil, fmt.Errorf("delete sessions: %w", err)
	}
	if sessions, err = res.RowsAffected(); err != nil {
		return 0, nil, fmt.Errorf("delete sessions: %w", err)
	}
	rows, err := tx.tx.QueryContext(ctx,
		`UPDATE api_tokens SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL RETURNING id`, ms(now), name)
	if err != nil {
		return 0, nil, fmt.Errorf("revoke api tokens: %w", err)
	}
	tokens, err = collect(rows, func(sc scanner) (int64, error) {
		var id int64
		err := sc.Scan(&id)
		return id, err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("revoke api tokens: %w", err)
	}
	slices.Sort(tokens) // RETURNING gives no order
	return sessions, tokens, nil
}

const tokenColumns = `id, user_name, label, created_by, created_at, expires_at, revoked_at, last_used_at`

// tokenColumnsT is tokenColumns qualified by the alias t, for joins.
var tokenColumnsT = "t." + strings.ReplaceAll(tokenColumns, ", ", ", t.")

func scanToken(sc scanner) (APIToken, error) {
	var r tokenRow
	if err := sc.Scan(r.dest()...); err != nil {
		return APIToken{}, err
	}
	return r.token(), nil
}

// tokenRow receives the tokenColumns of a row.
type tokenRow struct {
	t                          APIToken
	created                    int64
	expires, revoked, lastUsed sql.NullInt64
}

// dest returns the Scan destinations of the tokenColumns.
func (r *tokenRow) dest() []any {
	return []any{&r.t.ID, &r.t.User, &r.t.Label, &r.t.CreatedBy, &r.created, &r.expires, &r.revoked, &r.lastUsed}
}

// token returns the token scanned.
func (r *tokenRow) token() APIToken {
	t := r.t
	t.Created, t.Expires, t.Revoked, t.LastUsed = fromMS(r.created), fromNullMS(r.expires), fromNullMS(r.revoked), fromNullMS(r.lastUsed)
	return t
}
