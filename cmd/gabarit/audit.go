package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"gabarit/internal/store"
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
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	head, err := k.db.CheckAudit(ctx)
	tampered := errors.Is(err, store.ErrAuditTampered)
	if err != nil && !tampered {
		return err
	}
	if *asJSON {
		out := map[string]any{"ok": !tampered, "entries": head.ID, "head": fmt.Sprintf("%x", head.Hash)}
		if tampered {
			out["error"] = err.Error()
		}
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else if !tampered {
		fmt.Fprintf(e.stdout, "audit log intact: %d entries, head %x\n", head.ID, head.Hash)
	}
	if tampered {
		fmt.Fprintf(e.stderr, "gabarit: %v\n", err)
		return exitError{1}
	}
	return nil
}

// auditJSON is one entry of `gabarit audit list --json`.
type auditJSON struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Object   string          `json:"object"`
	Detail   json.RawMessage `json:"detail"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

func (e *cmdEnv) auditList(ctx context.Context, args []string) error {
	fs := e.flags("audit list", "usage: gabarit audit list [--from ID] [--to ID] [--json]\n\nPrints the audit log.")
	var df dataFlags
	df.register(fs)
	from := fs.Int64("from", 1, "first entry")
	to := fs.Int64("to", 0, "last entry (0: the end)")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	es, err := k.db.AuditEntries(ctx, *from, *to)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, a := range es {
			if err := enc.Encode(auditJSON{ID: a.ID, At: a.At, Actor: a.Actor, Action: a.Action, Object: a.Object,
				Detail: a.Detail, PrevHash: fmt.Sprintf("%x", a.PrevHash), Hash: fmt.Sprintf("%x", a.Hash)}); err != nil {
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
