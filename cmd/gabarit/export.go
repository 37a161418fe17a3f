package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gabarit/internal/app"
)

func (e *cmdEnv) export(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "export", args,
		subcommand{"records", e.exportRecords},
		subcommand{"authority", e.exportAuthority})
}

func (e *cmdEnv) exportRecords(ctx context.Context, args []string) error {
	fs := e.flags("export records", "usage: gabarit export records [--md]\n\n"+
		"Prints the record of processing activities (GDPR Art. 30) built from the declared sources and\n"+
		"the organisation's declaration in DATA/records.json (controller, dpo, representative,\n"+
		"recipients, transfers, authority); undeclared fields print as NOT DECLARED.")
	var df dataFlags
	df.register(fs)
	md := fs.Bool("md", false, "Markdown instead of JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	r, err := app.BuildRecords(ctx, k, time.Now())
	if err != nil {
		return err
	}
	if err := app.AuditExport(ctx, k.DB, actor(), "export.records", "", nil); err != nil {
		return err
	}
	if *md {
		return r.Markdown(e.stdout)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (e *cmdEnv) exportAuthority(ctx context.Context, args []string) error {
	fs := e.flags("export authority", "usage: gabarit export authority --out DIR\n\n"+
		"Writes, for a supervisory authority or the DPO, into the new folder DIR: the record of\n"+
		"processing (JSON, Markdown), the declared sources, the rights-request register with deadlines and\n"+
		"outcomes, statistics of searches by purpose, the whole audit log with the result of its\n"+
		"verification, and a manifest with every file's SHA-256.")
	var df dataFlags
	df.register(fs)
	out := fs.String("out", "", "folder to create (must not exist)")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if *out == "" || fs.NArg() > 0 {
		return usageErr(e, fs, "want --out DIR")
	}
	dst, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dst); err == nil {
		return usageErr(e, fs, "--out %s already exists", dst)
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()

	// Everything is written into a temporary folder beside dst, then
	// renamed: the export is whole or absent.
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".export-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // after a successful rename there is nothing left
	x, err := app.AuthorityExport(ctx, k, time.Now(), actor())
	if err != nil {
		return err
	}
	for _, f := range x.Files {
		if err := writeFile(filepath.Join(tmp, f.Name), f.Data); err != nil {
			return fmt.Errorf("export %s: %w", f.Name, err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if err := app.AuditExport(ctx, k.DB, actor(), "export.authority", dst, x.Digests); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s (%d files; audit log %d entries, verification %s)\n", dst, len(x.Files), x.Verification.Entries,
		map[bool]string{true: "passed", false: "FAILED"}[x.Verification.OK])
	return nil
}

// writeFile writes a 0600 file and syncs it.
func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
