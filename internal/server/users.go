package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"gabarit/internal/store"
)

// The changes an admin makes to users, one piece of code for the API and
// the console: the rules (at least one role, known roles, an admin never
// locks themselves out) are checked here, and the store audits each
// change in the transaction that makes it.

// allRoleNames lists the roles in their canonical order.
func allRoleNames() []store.Role {
	return []store.Role{store.RoleAdmin, store.RoleOperator, store.RoleInvestigator, store.RoleVerifier, store.RoleDPO, store.RoleAuditor, store.RoleExaminer}
}

// roleChoice names the roles for messages: "admin, operator, …".
var roleChoice = joinRoles(allRoleNames())

// checkRoles refuses an empty list of roles and an unknown role, with a
// message that names the roles to choose from.
func checkRoles(roles []store.Role) error {
	if len(roles) == 0 {
		return badRequest("give a user at least one role: %s. To stop someone using gabarit, disable them instead", roleChoice)
	}
	for _, r := range roles {
		if !slices.Contains(allRoleNames(), r) {
			return badRequest("unknown role %q. Choose from: %s", r, roleChoice)
		}
	}
	return nil
}

// parseRoles reads the roles ticked in a form, refusing an unknown one.
func parseRoles(vs []string) ([]store.Role, error) {
	roles := make([]store.Role, 0, len(vs))
	for _, v := range vs {
		roles = append(roles, store.Role(strings.TrimSpace(v)))
	}
	return roles, checkRoles(roles)
}

// noSuchUser answers a change to a user who does not exist.
func noSuchUser(name string) *apiError {
	return newError(http.StatusNotFound, "not_found", "there is no user named %q", name)
}

// userErr names the user in a "not found" from the store.
func userErr(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return noSuchUser(name)
	}
	return err
}

// Refusals that keep an admin from locking themselves out.
var (
	errSelfAdmin   = newError(http.StatusConflict, "last_admin", "you cannot take the admin role from yourself; ask another admin")
	errSelfDisable = newError(http.StatusConflict, "self", "you cannot disable yourself; ask another admin")
)

// setUserRoles replaces the roles of user name, audited as user.roles.
func (s *Server) setUserRoles(ctx context.Context, name string, roles []store.Role, p *principal) error {
	if err := checkRoles(roles); err != nil {
		return err
	}
	if name == p.user.Name && !slices.Contains(roles, store.RoleAdmin) {
		return errSelfAdmin
	}
	return userErr(s.cfg.Data.DB.SetUserRoles(ctx, name, roles, p.actor()), name)
}

// setUserPassword sets a new password of user name, by the rules of a new
// user's password, audited as user.password (never the password or its
// hash).
func (s *Server) setUserPassword(ctx context.Context, name, password string, p *principal) error {
	if strings.Contains(name, ":") {
		return badRequest("%s is a command-line account: it signs in as its operating-system account and has no password", name)
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return userErr(s.cfg.Data.DB.SetPassword(ctx, name, hash, p.actor()), name)
}

// disableUser disables user name, ending their sessions and revoking their
// API tokens, audited as user.disable; an admin cannot disable themselves.
func (s *Server) disableUser(ctx context.Context, name string, p *principal) error {
	if name == p.user.Name {
		return errSelfDisable
	}
	return userErr(s.cfg.Data.DB.DisableUser(ctx, name, p.actor()), name)
}

// enableUser enables user name again, audited as user.enable; their API
// tokens stay revoked.
func (s *Server) enableUser(ctx context.Context, name string, p *principal) error {
	return userErr(s.cfg.Data.DB.EnableUser(ctx, name, p.actor()), name)
}
