package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

func (e *cmdEnv) audit(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "audit", args,
		subcommand{"verify", e.auditVerify},
		subcommand{"head", e.auditHead},
		subcommand{"witness-reset", e.auditWitnessReset},
		subcommand{"list", e.auditList})
}

func (e *cmdEnv) auditVerify(ctx context.Context, args []string) error {
	fs := e.flags("audit verify", "usage: gabarit audit verify [--head LINE|@FILE] [--json]\n\n"+
		"Recomputes the audit log's hash chain and checks that the witness files (audit.head, and\n"+
		"GABARIT_AUDIT_WITNESS when set) name its last entry. With --head, also checks a head copied\n"+
		"off the machine earlier (gabarit audit head, or a copy of a witness file): the log must still\n"+
		"hold that entry unchanged. Exits 1 and names the first bad entry if any entry was changed,\n"+
		"removed or reordered.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, `print {"ok":…,"entries":…,"head":…,"error":…}`)
	copied := fs.String("head", "", "a head copied off the machine: the line, or @FILE")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 {
		return usageErr(e, fs, "takes no argument")
	}
	head := ""
	if *copied != "" {
		var err error
		if head, err = readHead(*copied); err != nil {
			return err
		}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	v, err := app.VerifyAudit(ctx, k.DB, head)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(v); err != nil {
			return err
		}
	} else if v.OK {
		fmt.Fprintf(e.stdout, "audit log intact: %d entries, head %s\n", v.Entries, v.Head)
	}
	if !v.OK {
		fmt.Fprintf(e.stderr, "gabarit: %s\n", v.Error)
		return exitError{1}
	}
	return nil
}

// auditListUsage is the help of gabarit audit list.
const auditListUsage = `usage: gabarit audit list [--actor NAME] [--action ACTION] [--case REF] [--from WHEN] [--to WHEN]
                          [--limit N] [--before ID] [--json]

Prints the audit log's entries the filters select, newest first: the newest 100 unless --limit
says otherwise (0: all of them). --action takes an action (rights.erasure) or, ending in "." or
"*", every action starting with it (rights.). --from and --to take a date (to includes its day),
an RFC 3339 time or an entry id. When more entries match, a note on stderr gives the --before
that pages on.`

func (e *cmdEnv) auditList(ctx context.Context, args []string) error {
	fs := e.flags("audit list", auditListUsage)
	var df dataFlags
	df.register(fs)
	var f store.AuditFilter
	fs.StringVar(&f.Actor, "actor", "", "only this actor's entries")
	fs.StringVar(&f.Action, "action", "", `only this action, or a prefix ending in "." or "*"`)
	fs.StringVar(&f.Case, "case", "", "only the entries about this case's searches (the search, confirmations, rejections)")
	from := fs.String("from", "", "first date, RFC 3339 time or entry id")
	to := fs.String("to", "", "last date (included), RFC 3339 time (excluded) or entry id (included)")
	limit := fs.Int("limit", store.DefaultAuditLimit, "most entries (0: all)")
	fs.Int64Var(&f.Before, "before", 0, "only entries older than this entry id (to page on)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() > 0 {
		return usageErr(e, fs, "unexpected argument %q", fs.Arg(0))
	}
	var err error
	if f.FromID, f.From, err = store.ParseAuditBound(*from, false); err != nil {
		return usageErr(e, fs, "--from %q: want a date (2006-01-02), an RFC 3339 time or an entry id", *from)
	}
	if f.ToID, f.To, err = store.ParseAuditBound(*to, true); err != nil {
		return usageErr(e, fs, "--to %q: want a date (2006-01-02), an RFC 3339 time or an entry id", *to)
	}
	switch {
	case *limit < 0:
		return usageErr(e, fs, "--limit %d: want 0 (all) or more", *limit)
	case f.Before < 0:
		return usageErr(e, fs, "--before %d: want an entry id", f.Before)
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()

	// Page through the store until the limit, a page at most
	// store.MaxAuditLimit, asking for one more entry to know whether
	// more match.
	var es []store.AuditEntry
	more := false
	for {
		want := store.MaxAuditLimit
		if *limit > 0 {
			want = min(*limit-len(es)+1, store.MaxAuditLimit)
		}
		f.Limit = want
		page, err := k.DB.QueryAudit(ctx, f)
		if errors.Is(err, store.ErrInvalid) {
			msg := strings.TrimSuffix(strings.TrimPrefix(err.Error(), "query audit: "), ": "+store.ErrInvalid.Error())
			return usageErr(e, fs, "%s", msg)
		} else if err != nil {
			return err
		}
		es = append(es, page...)
		if *limit > 0 && len(es) > *limit {
			es, more = es[:*limit], true
			break
		}
		if len(page) < want {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, a := range es {
			if err := enc.Encode(app.NewAuditView(a)); err != nil {
				return err
			}
		}
	} else if len(es) == 0 {
		fmt.Fprintln(e.stderr, "gabarit: no entries match these filters")
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tAT\tACTOR\tACTION\tOBJECT\tDETAIL")
		for _, a := range es {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.At.UTC().Format(time.RFC3339), printable(a.Actor), a.Action, printable(a.Object), printable(string(a.Detail)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if more {
		fmt.Fprintf(e.stderr, "gabarit: more entries match: add --before %d for the next %d, or --limit 0 for all\n", es[len(es)-1].ID, *limit)
	}
	return nil
}
