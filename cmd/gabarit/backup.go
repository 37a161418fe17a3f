package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gabarit/internal/app"
)

func (e *cmdEnv) backup(ctx context.Context, args []string) error {
	fs := e.flags("backup", "usage: gabarit backup --out FILE [--json]\n\n"+
		"Writes one file (mode 0600) holding what a restore needs: a snapshot of gabarit.db and vault.db\n"+
		"taken while the server and other commands keep working, records.json, and a manifest with the\n"+
		"SHA-256 of each and the audit log's last entry, signed. Not the master key: keep it apart, in\n"+
		"its own backup (the backup is useless without it, and useless to whoever has only the backup).\n"+
		"Not the vector index: gabarit restore rebuilds it. Each backup is audited (counts, never contents).")
	var df dataFlags
	df.register(fs)
	out := fs.String("out", "", "the backup file to write (replaced atomically if it exists)")
	asJSON := fs.Bool("json", false, `print {"path":…,"bytes":…,"sha256":…,"files":[…],"rows":{…},…}`)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 {
		return usageErr(e, fs, "takes no argument")
	}
	if *out == "" {
		return usageErr(e, fs, "--out FILE is required")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	res, err := app.Backup(ctx, dk, *out, actor())
	if err != nil {
		return err
	}
	if *asJSON {
		return printResult(e.stdout, true, res)
	}
	fmt.Fprintf(e.stdout, "backup written to %s: %d files, %s, SHA-256 %s\n", res.Path, len(res.Files), humanBytes(res.Bytes), res.SHA256)
	fmt.Fprintf(e.stdout, "it holds %s, %s, %s, %s and %s;\n",
		nounCount(res.Rows["sources"], "source", "sources"), nounCount(res.Rows["images"], "image", "images"),
		nounCount(res.Rows["faces"], "face", "faces"), nounCount(res.Rows["rights_requests"], "rights request", "rights requests"),
		nounCount(res.AuditEntries, "audit entry", "audit entries"))
	fmt.Fprintln(e.stdout, "the master key is not in it: keep the key's own backup apart from this file")
	return nil
}

func (e *cmdEnv) restore(ctx context.Context, args []string) error {
	fs := e.flags("restore", "usage: gabarit restore --from FILE --data DIR [--json]\n\n"+
		"Restores a backup made by gabarit backup into DIR, which must be new or empty: restore never\n"+
		"replaces data. Put the master key of the deployment the backup was made from at DIR/master.key\n"+
		"(mode 0600), or name it with GABARIT_MASTER_KEY_FILE, first: backups never hold it, and restore\n"+
		"never creates one. Checks every file against the manifest's SHA-256, SQLite's integrity check,\n"+
		"the audit log's chain and that it ends at the entry signed when the backup was made, and that\n"+
		"the key opens the templates of every source and the vault. Then writes a new audit witness (an\n"+
		"audit.witness-reset entry, \"restored from backup …\") and rebuilds the vector index. On any\n"+
		"failure DIR is left as it was.")
	var df dataFlags
	df.register(fs)
	from := fs.String("from", "", "the backup file")
	asJSON := fs.Bool("json", false, `print {"dir":…,"backup_created":…,"rows":{…},"audit_entries":…,"indexed":{…},…}`)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 {
		return usageErr(e, fs, "takes no argument")
	}
	if *from == "" {
		return usageErr(e, fs, "--from FILE is required")
	}
	if df.dir == "" {
		return usageErr(e, fs, "--data DIR is required: the new data directory to restore into")
	}
	cfg, err := df.config()
	if err != nil {
		return err
	}
	res, err := app.Restore(ctx, *from, cfg, actor())
	if err != nil {
		return err
	}
	if *asJSON {
		return printResult(e.stdout, true, res)
	}
	models := make([]string, 0, len(res.Indexed))
	faces := 0
	for m, n := range res.Indexed {
		models = append(models, m)
		faces += n
	}
	sort.Strings(models)
	fmt.Fprintf(e.stdout, "restored %s from the backup made %s\n", res.Dir, res.Created.Local().Format(time.DateTime))
	fmt.Fprintf(e.stdout, "checked: file digests, database integrity, %s, the key opens the templates of %s\n",
		nounCount(res.AuditEntries, "audit entry", "audit entries"), nounCount(int64(res.SourcesOpened), "source", "sources"))
	if len(models) > 0 {
		fmt.Fprintf(e.stdout, "indexed %s (%s)\n", nounCount(int64(faces), "face", "faces"), strings.Join(models, ", "))
	}
	fmt.Fprintf(e.stdout, "the restore is audit entry %d\n", res.AuditID)
	return nil
}

// humanBytes writes n bytes as B, kB, MB or GB (powers of 1000).
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// nounCount writes n with the singular or plural noun.
func nounCount(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
