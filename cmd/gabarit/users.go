package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/passwd"
	"gabarit/internal/store"
)

func (e *cmdEnv) user(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "user", args,
		subcommand{"add", e.userAdd},
		subcommand{"list", e.userList},
		subcommand{"password", e.userPassword},
		subcommand{"disable", e.userDisable},
		subcommand{"enable", e.userEnable},
		subcommand{"roles", e.userRoles})
}

// userEnable enables a disabled user again (audited as user.enable); the
// sessions and tokens that disabling ended stay ended.
func (e *cmdEnv) userEnable(ctx context.Context, args []string) error {
	return e.userSwitch(ctx, args, "enable", "Enables a disabled user again (admins). Sessions and API tokens ended by disabling stay ended.",
		(*store.DB).EnableUser)
}

// userRoles replaces a user's roles (audited as user.roles).
func (e *cmdEnv) userRoles(ctx context.Context, args []string) error {
	fs := e.flags("user roles", "usage: gabarit user roles --roles ROLE[,ROLE…] NAME\n\n"+
		"Replaces a user's roles (admins): admin, operator, investigator, verifier, dpo, auditor, examiner.\n"+
		"An admin cannot take the admin role from themselves; to stop someone using gabarit, disable them.")
	var df dataFlags
	df.register(fs)
	list := fs.String("roles", "", "the user's roles, separated by commas (at least one)")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one NAME")
	}
	roles, err := store.ParseRoles(*list)
	if err != nil || len(roles) == 0 {
		return usageErr(e, fs, "--roles: give at least one of admin, operator, investigator, verifier, dpo, auditor, examiner")
	}
	name := fs.Arg(0)
	if name == actor() && !slices.Contains(roles, store.RoleAdmin) {
		return fmt.Errorf("you cannot take the admin role from yourself; ask another admin")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := requireAdmin(ctx, dk.DB, nil); err != nil {
		return err
	}
	if err := dk.DB.SetUserRoles(ctx, name, roles, actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "the roles of %s are %s\n", name, joinRoleNames(roles))
	return nil
}

// joinRoleNames writes roles as "a, b".
func joinRoleNames(roles []store.Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// requireAdmin checks that the account running the command is an enabled
// admin. While no user exists, anyone who can open the data directory may
// create the first one, which must then be an admin.
func requireAdmin(ctx context.Context, db *store.DB, bootstrapRoles []store.Role) error {
	users, err := db.Users(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		if bootstrapRoles != nil && !slices.Contains(bootstrapRoles, store.RoleAdmin) {
			return fmt.Errorf("the first user must have the admin role (then they add the others)")
		}
		return nil
	}
	u, err := db.User(ctx, actor())
	if err == nil && u.Has(store.RoleAdmin) {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("%s is not an admin: %w", actor(), store.ErrForbidden)
}

func (e *cmdEnv) userAdd(ctx context.Context, args []string) error {
	fs := e.flags("user add", "usage: gabarit user add --roles ROLE[,ROLE…] [--password-file F] NAME\n\n"+
		"Registers a user (admin, operator, investigator, verifier, dpo, auditor, examiner). On the command line a\n"+
		"user is an operating-system account, named cli:ACCOUNT; a console and API user (gabarit serve)\n"+
		"has a plain NAME and a password (at least 12 characters), read from the first line of F (- for\n"+
		"standard input). Only an admin may add users, except the first, who must be an admin.")
	var df dataFlags
	df.register(fs)
	roles := fs.String("roles", "", "comma-separated roles")
	pwFile := fs.String("password-file", "", "file whose first line is the console password (- for standard input)")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one NAME")
	}
	rs, err := store.ParseRoles(*roles)
	if err != nil || len(rs) == 0 {
		return usageErr(e, fs, "--roles: want one or more of admin, operator, investigator, verifier, dpo, auditor, examiner")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := requireAdmin(ctx, dk.DB, rs); err != nil {
		return err
	}
	if *pwFile == "" {
		err = dk.DB.AddUser(ctx, fs.Arg(0), rs, actor())
	} else {
		var hash string
		if hash, err = readPassword(e, *pwFile); err == nil {
			err = dk.DB.AddConsoleUser(ctx, fs.Arg(0), rs, hash, actor())
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s added (%s)\n", fs.Arg(0), *roles)
	return nil
}

func (e *cmdEnv) userPassword(ctx context.Context, args []string) error {
	fs := e.flags("user password", "usage: gabarit user password --password-file F NAME\n\n"+
		"Sets the console password of a user (an admin's command), read from the first line of F (- for\n"+
		"standard input). Sessions already open stay open.")
	var df dataFlags
	df.register(fs)
	pwFile := fs.String("password-file", "", "file whose first line is the password (- for standard input)")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 || *pwFile == "" {
		return usageErr(e, fs, "want --password-file F and one NAME")
	}
	hash, err := readPassword(e, *pwFile)
	if err != nil {
		return err
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := requireAdmin(ctx, dk.DB, nil); err != nil {
		return err
	}
	if err := dk.DB.SetPassword(ctx, fs.Arg(0), hash, actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "password of %s set\n", fs.Arg(0))
	return nil
}

// readPassword reads a password from the first line of a file (- for
// standard input) and hashes it (argon2id). Passwords never come from the
// command line, where other users could read them in the process list.
func readPassword(e *cmdEnv, path string) (string, error) {
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	hash, err := passwd.Hash(strings.TrimRight(line, "\r\n"))
	if err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return hash, nil
}

func (e *cmdEnv) userDisable(ctx context.Context, args []string) error {
	return e.userSwitch(ctx, args, "disable", "Disables a user (users are never deleted, so that the audit log keeps its meaning).",
		(*store.DB).DisableUser)
}

// userSwitch disables or enables the user named in args (admins), by do.
func (e *cmdEnv) userSwitch(ctx context.Context, args []string, verb, about string,
	do func(db *store.DB, ctx context.Context, name, by string) error) error {
	fs := e.flags("user "+verb, "usage: gabarit user "+verb+" NAME\n\n"+about)
	var df dataFlags
	df.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one NAME")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := requireAdmin(ctx, dk.DB, nil); err != nil {
		return err
	}
	if err := do(dk.DB, ctx, fs.Arg(0), actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s %sd\n", fs.Arg(0), verb)
	return nil
}

func (e *cmdEnv) userList(ctx context.Context, args []string) error {
	fs := e.flags("user list", "usage: gabarit user list [--json]")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	users, err := dk.DB.Users(ctx)
	if err != nil {
		return err
	}
	type userJSON struct {
		Name     string       `json:"name"`
		Roles    []store.Role `json:"roles"`
		Created  time.Time    `json:"created"`
		By       string       `json:"created_by"`
		Disabled bool         `json:"disabled"`
	}
	out := make([]userJSON, len(users))
	for i, u := range users {
		out[i] = userJSON{u.Name, u.Roles, u.Created, u.CreatedBy, !u.Disabled.IsZero()}
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLES\tCREATED\tBY\tDISABLED")
	for _, u := range out {
		roles := make([]string, len(u.Roles))
		for i, r := range u.Roles {
			roles[i] = string(r)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", u.Name, strings.Join(roles, ","), u.Created.Format("2006-01-02"), u.By, u.Disabled)
	}
	return tw.Flush()
}

func (e *cmdEnv) confirm(ctx context.Context, args []string) error {
	fs := e.flags("confirm", "usage: gabarit confirm [--json] SEARCH_ID FACE_ID\n\n"+
		"Confirms, as a verifier, that a face returned by a search is the person searched for. A result\n"+
		"is an identification only once two different verifiers have confirmed it (AI Act Art. 14(5))\n"+
		"and none rejected it; nobody confirms their own search, confirms twice, or confirms a result a\n"+
		"verifier rejected. Audited.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	sid, fid, err := verifyArgs(e, fs, args)
	if err != nil {
		return err
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	c, err := dk.DB.Confirm(ctx, sid, fid, actor())
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"search_id": sid, "face_id": fid,
			"confirmations": len(c.Verifiers), "identified": c.Identified})
	}
	if c.Identified {
		fmt.Fprintf(e.stdout, "search %d, face %d: confirmed by %d verifiers — identification\n", sid, fid, len(c.Verifiers))
	} else {
		fmt.Fprintf(e.stdout, "search %d, face %d: confirmed by %d verifier; a second, different verifier must confirm it\n", sid, fid, len(c.Verifiers))
	}
	return nil
}

func (e *cmdEnv) reject(ctx context.Context, args []string) error {
	fs := e.flags("reject", "usage: gabarit reject [--json] --reason TEXT SEARCH_ID FACE_ID\n\n"+
		"Rejects, as a verifier, a face returned by a search: it is not the person searched for. A\n"+
		"rejected result is never confirmed nor identified, even if verifiers confirmed it before. The\n"+
		fmt.Sprintf("reason is required (at most %d characters) and recorded with the rejection; nobody rejects\n", store.MaxRejectReason)+
		"their own search or rejects twice. Audited.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	reason := fs.String("reason", "", "why the face is not the person searched for (required; audited)")
	sid, fid, err := verifyArgs(e, fs, args)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageErr(e, fs, "give --reason: a rejection states why")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	r, err := dk.DB.Reject(ctx, sid, fid, actor(), *reason)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"search_id": sid, "face_id": fid,
			"verifier": r.Verifier, "reason": r.Reason, "at": r.At})
	}
	fmt.Fprintf(e.stdout, "search %d, face %d: rejected by %s — never an identification\n", sid, fid, r.Verifier)
	return nil
}

// verifyArgs parses the flags and the SEARCH_ID FACE_ID of confirm and
// reject, flags before, between or after them.
func verifyArgs(e *cmdEnv, fs *flag.FlagSet, args []string) (sid, fid int64, err error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 0, 0, exitError{2}
	}
	if len(pos) != 2 {
		return 0, 0, usageErr(e, fs, "want SEARCH_ID FACE_ID")
	}
	sid, err1 := strconv.ParseInt(pos[0], 10, 64)
	fid, err2 := strconv.ParseInt(pos[1], 10, 64)
	if err1 != nil || err2 != nil || sid <= 0 || fid <= 0 {
		return 0, 0, usageErr(e, fs, "SEARCH_ID and FACE_ID are positive numbers")
	}
	return sid, fid, nil
}

// parseInterspersed parses the flags of args wherever they are, before,
// between or after the positional arguments, and returns the positional
// arguments in order; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseArgs(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}
