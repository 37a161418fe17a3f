package main

import (
	"context"
	"encoding/json"
	"fmt"
	"gabarit/internal/app"
	"text/tabwriter"
	"time"
)

func (e *cmdEnv) audit(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "audit", args,
		subcommand{"verify", e.auditVerify},
		subcommand{"list", e.auditList})
}

func (e *cmdEnv) auditVerify(ctx context.Context, args []string) error {
	fs := e.flags("audit verify", "usage: gabarit audit verify [--json]\n\n"+
		"Recomputes the audit log's hash chain and compares its head with the witness file\n"+
		"(audit.head). Exits 1 and names the first bad entry if any entry was changed, removed or\n"+
		"reordered.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, `print {"ok":…,"entries":…,"head":…,"error":…}`)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	v, err := app.VerifyAudit(ctx, k.DB)
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

func (e *cmdEnv) auditList(ctx context.Context, args []string) error {
	fs := e.flags("audit list", "usage: gabarit audit list [--from ID] [--to ID] [--json]\n\nPrints the audit log.")
	var df dataFlags
	df.register(fs)
	from := fs.Int64("from", 1, "first entry")
	to := fs.Int64("to", 0, "last entry (0: the end)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	es, err := k.DB.AuditEntries(ctx, *from, *to)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, a := range es {
			if err := enc.Encode(app.NewAuditView(a)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tACTOR\tACTION\tOBJECT\tDETAIL")
	for _, a := range es {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.At.Format(time.RFC3339), a.Actor, a.Action, a.Object, a.Detail)
	}
	return tw.Flush()
}
