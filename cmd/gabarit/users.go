package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/store"
)

func (e *cmdEnv) user(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "user", args,
		subcommand{"add", e.userAdd},
		subcommand{"list", e.userList},
		subcommand{"disable", e.userDisable})
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
	fs := e.flags("user add", "usage: gabarit user add --roles ROLE[,ROLE…] NAME\n\n"+
		"Registers a user (admin, operator, investigator, verifier, dpo, auditor). On the command line a\n"+
		"user is an operating-system account, named cli:ACCOUNT. Only an admin may add users, except the\n"+
		"first, who must be an admin.")
	var df dataFlags
	df.register(fs)
	roles := fs.String("roles", "", "comma-separated roles")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one NAME")
	}
	rs, err := store.ParseRoles(*roles)
	if err != nil || len(rs) == 0 {
		return usageErr(e, fs, "--roles: want one or more of admin, operator, investigator, verifier, dpo, auditor")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := requireAdmin(ctx, dk.db, rs); err != nil {
		return err
	}
	if err := dk.db.AddUser(ctx, fs.Arg(0), rs, actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "user %s added (%s)\n", fs.Arg(0), *roles)
	return nil
}

func (e *cmdEnv) userDisable(ctx context.Context, args []string) error {
	fs := e.flags("user disable", "usage: gabarit user disable NAME\n\nDisables a user (users are never deleted, so that the audit log keeps its meaning).")
	var df dataFlags
	df.register(fs)
	if err := fs.Parse(args); err != nil {
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
	if err := requireAdmin(ctx, dk.db, nil); err != nil {
		return err
	}
	return dk.db.DisableUser(ctx, fs.Arg(0), actor())
}

func (e *cmdEnv) userList(ctx context.Context, args []string) error {
	fs := e.flags("user list", "usage: gabarit user list [--json]")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	users, err := dk.db.Users(ctx)
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
		"is an identification only once two different verifiers have confirmed it (AI Act Art. 14(5));\n"+
		"nobody confirms their own search or confirms twice. Audited.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 2 {
		return usageErr(e, fs, "want SEARCH_ID FACE_ID")
	}
	sid, err1 := strconv.ParseInt(fs.Arg(0), 10, 64)
	fid, err2 := strconv.ParseInt(fs.Arg(1), 10, 64)
	if err1 != nil || err2 != nil {
		return usageErr(e, fs, "SEARCH_ID and FACE_ID are numbers")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	c, err := dk.db.Confirm(ctx, sid, fid, actor())
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
