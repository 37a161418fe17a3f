package main

import (
	"context"
	"fmt"
	"os"

	"gabarit/internal/store"
)

// auditHead prints the audit log's signed head, the line to copy off the
// machine: gabarit audit verify --head LINE later shows whether the log
// still holds that entry unchanged.
func (e *cmdEnv) auditHead(ctx context.Context, args []string) error {
	fs := e.flags("audit head", "usage: gabarit audit head [--json]\n\n"+
		"Prints the audit log's last entry as \"ID HASH MAC\", signed with a key derived from the master key.\n"+
		"Copy it off the machine (a ticket, a mail, paper): gabarit audit verify --head LINE then shows\n"+
		"whether the log still holds that entry unchanged, whatever happens to this machine meanwhile.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, `print {"line":…,"entries":…}`)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 {
		return usageErr(e, fs, "takes no argument")
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	line, head, err := k.DB.AuditHeadLine(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printResult(e.stdout, true, map[string]any{"line": line, "entries": head.ID})
	}
	if head.ID == 0 {
		fmt.Fprintln(e.stdout, "the audit log is empty")
		return nil
	}
	fmt.Fprintln(e.stdout, line)
	return nil
}

// auditWitnessReset makes the audit witnesses name the log's last entry
// again, after an administrator checked why they did not, and records it.
func (e *cmdEnv) auditWitnessReset(ctx context.Context, args []string) error {
	fs := e.flags("audit witness-reset", "usage: gabarit audit witness-reset --reason TEXT --confirm [--json]\n\n"+
		"When the audit log no longer matches its witness (audit.head, and GABARIT_AUDIT_WITNESS when set),\n"+
		"gabarit stops every audited action. After checking why (gabarit audit verify says what differs),\n"+
		"an administrator (anyone holding the data directory while it has no user) resets the witnesses\n"+
		"to the log's last entry. The reset is itself an audit entry,\n"+
		"audit.witness-reset, with the reason and what each witness said: the evidence stays in the log.")
	var df dataFlags
	df.register(fs)
	reason := fs.String("reason", "", "what was checked and found (required)")
	confirm := fs.Bool("confirm", false, "reset (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	switch {
	case fs.NArg() != 0:
		return usageErr(e, fs, "takes no argument")
	case *reason == "":
		return usageErr(e, fs, "--reason is required: say what you checked and found")
	case !*confirm:
		return usageErr(e, fs, "add --confirm: the witnesses will name the log as it is now")
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	// Adding a user is audited, so it is stopped too: with no account
	// yet, whoever holds the data directory and its master key resets.
	users, err := k.DB.Users(ctx)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		if err := requireRole(ctx, k.DB, store.RoleAdmin); err != nil {
			return err
		}
	}
	id, err := k.DB.ResetAuditWitness(ctx, actor(), *reason)
	if err != nil {
		return err
	}
	if *asJSON {
		return printResult(e.stdout, true, map[string]any{"reset": true, "entry": id})
	}
	fmt.Fprintf(e.stdout, "the audit witnesses name entry %d, audit.witness-reset, which records the reset\n", id)
	return nil
}

// readHead reads a head copied off the machine: the line itself, or @FILE.
func readHead(arg string) (string, error) {
	if len(arg) > 1 && arg[0] == '@' {
		b, err := readSmallFile(arg[1:], 4096)
		if err != nil {
			return "", fmt.Errorf("--head %s: %w", arg, err)
		}
		return string(b), nil
	}
	return arg, nil
}

// readSmallFile reads a regular file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("want a regular file of at most %d bytes", limit)
	}
	b := make([]byte, fi.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}
