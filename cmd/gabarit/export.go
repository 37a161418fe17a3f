package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gabarit/internal/records"
	"gabarit/internal/store"
)

func (e *cmdEnv) export(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "export", args,
		subcommand{"records", e.exportRecords},
		subcommand{"authority", e.exportAuthority})
}

// loadOrganisation reads the organisation's declaration, records.json in
// the data directory; none is an empty declaration (every field shows as
// NOT DECLARED).
func loadOrganisation(dir string) (records.Organisation, error) {
	var org records.Organisation
	b, err := os.ReadFile(filepath.Join(dir, "records.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return org, nil
	}
	if err != nil {
		return org, err
	}
	if err := json.Unmarshal(b, &org); err != nil {
		return org, fmt.Errorf("%s: %w", filepath.Join(dir, "records.json"), err)
	}
	return org, nil
}

func (k *dataKit) buildRecords(ctx context.Context) (records.Record, error) {
	org, err := loadOrganisation(k.dir)
	if err != nil {
		return records.Record{}, err
	}
	srcs, err := k.db.Sources(ctx)
	if err != nil {
		return records.Record{}, err
	}
	counts, err := k.db.SourceCounts(ctx)
	if err != nil {
		return records.Record{}, err
	}
	return records.Build(time.Now(), org, srcs, counts), nil
}

func (e *cmdEnv) exportRecords(ctx context.Context, args []string) error {
	fs := e.flags("export records", "usage: gabarit export records [--md]\n\n"+
		"Prints the record of processing activities (GDPR Art. 30) built from the declared sources and\n"+
		"the organisation's declaration in DATA/records.json (controller, dpo, representative,\n"+
		"recipients, transfers, authority); undeclared fields print as NOT DECLARED.")
	var df dataFlags
	df.register(fs)
	md := fs.Bool("md", false, "Markdown instead of JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	r, err := k.buildRecords(ctx)
	if err != nil {
		return err
	}
	if err := auditExport(ctx, k, "export.records", "", nil); err != nil {
		return err
	}
	if *md {
		return r.Markdown(e.stdout)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// auditExport records an export: what, where, and the digests of its files.
func auditExport(ctx context.Context, k *dataKit, action, out string, digests map[string]string) error {
	detail, err := json.Marshal(map[string]any{"out": out, "files": digests})
	if err != nil {
		return err
	}
	_, err = k.db.AppendAudit(ctx, nil, store.AuditEntry{Actor: actor(), Action: action, Detail: detail})
	return err
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
	if err := fs.Parse(args); err != nil {
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
	files := map[string]func(w io.Writer) error{}
	rec, err := k.buildRecords(ctx)
	if err != nil {
		return err
	}
	files["records.json"] = jsonFile(rec)
	files["records.md"] = rec.Markdown
	srcs, err := k.db.Sources(ctx)
	if err != nil {
		return err
	}
	counts, err := k.db.SourceCounts(ctx)
	if err != nil {
		return err
	}
	files["sources.json"] = jsonFile(sourcesJSON(srcs, counts))
	stats, err := k.db.SearchStats(ctx)
	if err != nil {
		return err
	}
	type purposeJSON struct {
		Purpose   string    `json:"purpose"`
		Searches  int64     `json:"searches"`
		WithMatch int64     `json:"searches_with_a_match"`
		First     time.Time `json:"first"`
		Last      time.Time `json:"last"`
	}
	byPurpose := make([]purposeJSON, len(stats))
	for i, p := range stats {
		byPurpose[i] = purposeJSON(p)
	}
	files["searches-by-purpose.json"] = jsonFile(byPurpose)
	reqs, err := k.db.RightsRequests(ctx)
	if err != nil {
		return err
	}
	register, overdue := registerJSON(reqs, time.Now())
	files["rights-register.json"] = jsonFile(register)
	entries, err := k.db.AuditEntries(ctx, 1, 0)
	if err != nil {
		return err
	}
	files["audit.jsonl"] = func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, a := range entries {
			if err := enc.Encode(auditJSON{ID: a.ID, At: a.At, Actor: a.Actor, Action: a.Action, Object: a.Object,
				Detail: a.Detail, PrevHash: fmt.Sprintf("%x", a.PrevHash), Hash: fmt.Sprintf("%x", a.Hash)}); err != nil {
				return err
			}
		}
		return nil
	}
	head, verr := k.db.CheckAudit(ctx)
	if verr != nil && !errors.Is(verr, store.ErrAuditTampered) {
		return verr
	}
	verification := map[string]any{"verified_at": time.Now().UTC(), "ok": verr == nil, "entries": head.ID,
		"head_hash": fmt.Sprintf("%x", head.Hash), "method": "SHA-256 hash chain recomputed from the first entry; head compared with the witness file audit.head"}
	if verr != nil {
		verification["error"] = verr.Error()
	}
	files["audit-verification.json"] = jsonFile(verification)

	digests := map[string]string{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sum, err := writeFile(filepath.Join(tmp, name), files[name])
		if err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
		digests[name] = sum
	}
	var manifest strings.Builder
	fmt.Fprintf(&manifest, "# gabarit export for the authority\n\nGenerated %s by %s. SHA-256 of each file:\n\n", time.Now().UTC().Format(time.RFC3339), actor())
	for _, name := range names {
		fmt.Fprintf(&manifest, "    %s  %s\n", digests[name], name)
	}
	fmt.Fprintf(&manifest, "\nAudit log: %d entries, verification %s.\n", head.ID, map[bool]string{true: "passed", false: "FAILED: " + fmt.Sprint(verr)}[verr == nil])
	fmt.Fprintf(&manifest, "Rights requests: %d registered, %d overdue now.\n", len(reqs), overdue)
	if _, err := writeFile(filepath.Join(tmp, "MANIFEST.md"), func(w io.Writer) error {
		_, err := io.WriteString(w, manifest.String())
		return err
	}); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	if err := auditExport(ctx, k, "export.authority", dst, digests); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s (%d files; audit log %d entries, verification %s)\n", dst, len(names)+1, head.ID,
		map[bool]string{true: "passed", false: "FAILED"}[verr == nil])
	return nil
}

func jsonFile(v any) func(io.Writer) error {
	return func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
}

// writeFile writes a 0600 file with fn, syncs it and returns its SHA-256.
func writeFile(path string, fn func(io.Writer) error) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := fn(io.MultiWriter(f, h)); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), f.Close()
}
