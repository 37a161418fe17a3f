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
)

// ErrForbidden is returned when a user lacks the role an operation needs,
// is not registered or is disabled, or when the operation is one the user
// may not perform on their own work (confirming their own search).
var ErrForbidden = errors.New("forbidden")

// Role is what a user may do. A user holds any number of roles; checks
// grant nothing to a disabled user (User.Has).
type Role string

// The roles of gabarit, in their canonical order.
const (
	RoleAdmin        Role = "admin"        // manages users and configuration
	RoleOperator     Role = "operator"     // declares sources and runs ingestion
	RoleInvestigator Role = "investigator" // runs searches
	RoleVerifier     Role = "verifier"     // confirms search results (AI Act Art. 14(5))
	RoleDPO          Role = "dpo"          // handles rights requests
	RoleAuditor      Role = "auditor"      // reads the audit log and the records
	// RoleExaminer may run exploratory searches below the calibrated
	// operating point, stating the reason of each (audited as such).
	RoleExaminer Role = "examiner"
)

// roleOrder lists every role in canonical order.
var roleOrder = []Role{RoleAdmin, RoleOperator, RoleInvestigator, RoleVerifier, RoleDPO, RoleAuditor, RoleExaminer}

// ParseRole returns the role named s (exactly, e.g. "verifier"); an unknown
// name fails with ErrInvalid.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(roleOrder, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: %w", s, ErrInvalid)
}

// ParseRoles parses a comma-separated list of roles such as
// "investigator,verifier" (spaces around names are ignored), in canonical
// order without duplicates. An empty string is no roles; an unknown or
// empty name fails with ErrInvalid.
func ParseRoles(s string) ([]Role, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var roles []Role
	for name := range strings.SplitSeq(s, ",") {
		r, err := ParseRole(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return normalRoles(roles)
}

// normalRoles checks roles and returns them in canonical order without
// duplicates; an unknown role fails with ErrInvalid.
func normalRoles(roles []Role) ([]Role, error) {
	var out []Role
	for _, r := range roleOrder {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	for _, r := range roles {
		if !slices.Contains(roleOrder, r) {
			return nil, fmt.Errorf("unknown role %q: %w", r, ErrInvalid)
		}
	}
	return out, nil
}

// User is a person who may use gabarit, identified by a unique account
// name. Users are disabled, never deleted, so that the names recorded in
// the audit log and in confirmations keep their meaning.
type User struct {
	Name      string
	Roles     []Role // canonical order, no duplicates
	CreatedBy string
	Created   time.Time
	Disabled  time.Time // zero while the user is enabled
	// HasPassword says whether the user can sign in to the console (a
	// password is set); command-line accounts have none.
	HasPassword bool
}

// Has reports whether u holds role r and is enabled; a disabled user has no
// role.
func (u User) Has(r Role) bool {
	return u.Disabled.IsZero() && slices.Contains(u.Roles, r)
}

// checkUserName rejects an account name that is empty, has surrounding
// spaces or holds control characters.
func checkUserName(name string) error {
	if name == "" || strings.TrimSpace(name) != name || strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("user name must be non-empty, without surrounding spaces or control characters: %w", ErrInvalid)
	}
	return nil
}

// userDetail is the audit detail of a change to a user: roles, and what
// disabling it ended.
type userDetail struct {
	Roles    []Role `json:"roles"`
	From     []Role `json:"from,omitempty"`     // the roles before a change of roles
	Sessions int64  `json:"sessions,omitempty"` // sessions deleted by disabling the user
	Tokens   int    `json:"tokens,omitempty"`   // API tokens revoked by disabling the user
}

// userObject is the audit object of a user.
func userObject(name string) string { return "user/" + name }

// AddUser registers a user; see Tx.AddUser.
func (db *DB) AddUser(ctx context.Context, name string, roles []Role, by string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.AddUser(ctx, name, roles, by) })
}

// AddUser registers the user name with roles (stored in canonical order,
// without duplicates; none is allowed) and appends the audit entry
// "user.add" by by, whose detail holds the roles only. A name that is empty,
// has surrounding spaces or holds control characters, an unknown role or a
// blank by fails with ErrInvalid; a name already registered (even disabled)
// with ErrExists. It does not check that by may manage users: that is the
// caller's decision.
func (tx *Tx) AddUser(ctx context.Context, name string, roles []Role, by string) error {
	what := "add user"
	if err := checkUserName(name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	roles, err := normalRoles(roles)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch _, err := tx.user(ctx, name); {
	case err == nil:
		return fmt.Errorf("%s: %w", what, ErrExists)
	case !errors.Is(err, ErrNotFound):
		return fmt.Errorf("%s: %w", what, err)
	}
	now := tx.now()
	if _, err := tx.tx.ExecContext(ctx,
		`INSERT INTO users (name, roles, created_by, created_at) VALUES (?, ?, ?, ?)`,
		name, encodeRoles(roles), by, ms(now)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return tx.auditUser(ctx, what, now, by, "user.add", name, userDetail{Roles: roles})
}

// SetUserRoles replaces the roles of a user; see Tx.SetUserRoles.
func (db *DB) SetUserRoles(ctx context.Context, name string, roles []Role, by string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.SetUserRoles(ctx, name, roles, by) })
}

// SetUserRoles replaces the roles of user name with roles (canonical order,
// no duplicates; none revokes them all) and appends the audit entry
// "user.roles" by by, whose detail holds the roles before and after. When
// the roles do not change nothing is written. A missing user fails with
// ErrNotFound; an unknown role or a blank by with ErrInvalid. A disabled
// user's roles may be changed but grant nothing while it stays disabled.
func (tx *Tx) SetUserRoles(ctx context.Context, name string, roles []Role, by string) error {
	what := "set user roles"
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	roles, err := normalRoles(roles)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	u, err := tx.user(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if slices.Equal(u.Roles, roles) {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE users SET roles = ? WHERE name = ?`, encodeRoles(roles), name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	from := u.Roles
	if from == nil {
		from = []Role{} // keep "from" in the detail when it was empty
	}
	return tx.auditUser(ctx, what, tx.now(), by, "user.roles", name, userDetail{Roles: roles, From: from})
}

// DisableUser disables a user; see Tx.DisableUser.
func (db *DB) DisableUser(ctx context.Context, name, by string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.DisableUser(ctx, name, by) })
}

// DisableUser disables user name from now on (the store clock), so that it
// holds no role any more, deletes its sessions, revokes its API tokens and
// appends the audit entry "user.disable" by by, whose detail counts the
// sessions and tokens it ended, and a "token.revoke" entry for each token.
// Disabling a disabled user writes nothing. A missing user fails with
// ErrNotFound, a blank by with ErrInvalid.
func (tx *Tx) DisableUser(ctx context.Context, name, by string) error {
	what := "disable user"
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	u, err := tx.user(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !u.Disabled.IsZero() {
		return nil
	}
	now := tx.now()
	if _, err := tx.tx.ExecContext(ctx, `UPDATE users SET disabled_at = ? WHERE name = ?`, ms(now), name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	sessions, tokens, err := tx.endCredentials(ctx, name, now)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.auditUser(ctx, what, now, by, "user.disable", name,
		userDetail{Roles: u.Roles, Sessions: sessions, Tokens: len(tokens)}); err != nil {
		return err
	}
	for _, id := range tokens {
		if err := tx.auditToken(ctx, now, by, "token.revoke", id, tokenDetail{User: name, Reason: "user.disable"}); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// EnableUser enables a disabled user again; see Tx.EnableUser.
func (db *DB) EnableUser(ctx context.Context, name, by string) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.EnableUser(ctx, name, by) })
}

// EnableUser enables user name again, so that its roles count once more,
// and appends the audit entry "user.enable" by by, whose detail holds its
// roles. What disabling ended stays ended: the user signs in anew, and its
// revoked API tokens stay revoked. Enabling an enabled user writes
// nothing. A missing user fails with ErrNotFound, a blank by with
// ErrInvalid.
func (tx *Tx) EnableUser(ctx context.Context, name, by string) error {
	what := "enable user"
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("%s: actor required: %w", what, ErrInvalid)
	}
	u, err := tx.user(ctx, name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if u.Disabled.IsZero() {
		return nil
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE users SET disabled_at = NULL WHERE name = ?`, name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return tx.auditUser(ctx, what, tx.now(), by, "user.enable", name, userDetail{Roles: u.Roles})
}

// auditUser appends the audit entry of a change to user name.
func (tx *Tx) auditUser(ctx context.Context, what string, at time.Time, by, action, name string, d userDetail) error {
	if d.Roles == nil {
		d.Roles = []Role{}
	}
	detail, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.AppendAudit(ctx, AuditEntry{At: at, Actor: by, Action: action,
		Object: userObject(name), Detail: detail}); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// User returns the user with the given name, disabled or not, or
// ErrNotFound.
func (db *DB) User(ctx context.Context, name string) (User, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name)
	return one(row, scanUser, "user")
}

// user reads user name inside the transaction.
func (tx *Tx) user(ctx context.Context, name string) (User, error) {
	row := tx.tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name)
	return one(row, scanUser, "user")
}

// Users returns every user, enabled and disabled, in name order.
func (db *DB) Users(ctx context.Context) ([]User, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	out, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return out, nil
}

const userColumns = `name, roles, created_by, created_at, disabled_at, password_hash IS NOT NULL`

func scanUser(sc scanner) (User, error) {
	var u User
	var roles string
	var created int64
	var disabled sql.NullInt64
	if err := sc.Scan(&u.Name, &roles, &u.CreatedBy, &created, &disabled, &u.HasPassword); err != nil {
		return User{}, err
	}
	u.Created, u.Disabled = fromMS(created), fromNullMS(disabled)
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return User{}, fmt.Errorf("user roles: %w", err)
	}
	if len(u.Roles) == 0 {
		u.Roles = nil
	}
	return u, nil
}

// encodeRoles returns the stored form of roles: a JSON array.
func encodeRoles(roles []Role) string {
	if len(roles) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(roles) // []Role (strings) always marshals
	return string(b)
}
