package app

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gabarit/internal/config"
	"gabarit/internal/fsutil"
	"gabarit/internal/keyring"
	"gabarit/internal/records"
	"gabarit/internal/store"
)

// BackupFormat names the format of a backup's manifest.
const BackupFormat = "gabarit backup v1"

// backupManifestName is the first member of a backup.
const backupManifestName = "manifest.json"

// backupFiles are the files of a data directory a backup holds, in the
// order it holds them. Not the master key (kept out of data backups, see
// the README), not the vector index (derived: rebuilt on restore), not the
// audit witness file (the manifest names the snapshot's head instead).
var backupFiles = []string{"gabarit.db", "vault.db", records.FileName}

// BackupFile is one file of a backup.
type BackupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BackupManifest is the first member of a backup (manifest.json): what it
// holds, with the digests restore checks.
type BackupManifest struct {
	Format        string           `json:"format"`
	Created       time.Time        `json:"created"`
	SchemaVersion int              `json:"schema_version"`
	Files         []BackupFile     `json:"files"`
	Rows          map[string]int64 `json:"rows"` // rows of each table of gabarit.db
	// AuditHead is the snapshot's last audit entry, signed with the
	// master key ("ID HASH MAC", as gabarit audit head prints it).
	AuditHead string `json:"audit_head"`
}

// BackupResult is what Backup wrote.
type BackupResult struct {
	Path         string           `json:"path"`
	Bytes        int64            `json:"bytes"`
	SHA256       string           `json:"sha256"`
	Files        []BackupFile     `json:"files"`
	Rows         map[string]int64 `json:"rows"`
	AuditEntries int64            `json:"audit_entries"` // the log's entries in the backup
	AuditID      int64            `json:"audit_id"`      // the entry that records the backup
}

// Backup writes a backup of the data directory d to the file out (mode
// 0600, replaced atomically): a tar of manifest.json, a snapshot of
// gabarit.db and of vault.db taken while other processes keep working, and
// records.json. The backup is recorded in the audit log (action "backup",
// with counts and the file's SHA-256, never contents); if that fails, the
// file is removed.
func Backup(ctx context.Context, d *Data, out, actor string) (BackupResult, error) {
	if d.Config.Postgres() {
		return BackupResult{}, ErrBackupPostgres
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return BackupResult{}, err
	}
	if fi, err := os.Stat(out); err == nil && !fi.Mode().IsRegular() {
		return BackupResult{}, fmt.Errorf("%s is not a regular file: give the backup file to write", out)
	}
	dir := filepath.Dir(out)
	work, err := os.MkdirTemp(dir, ".gabarit-backup-")
	if err != nil {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }() // the snapshots are copies; a leftover is in a 0700 directory

	// The store first: a rights request registered between the two
	// snapshots may leave its selfies in vault.db without its request.
	if err := d.DB.Snapshot(ctx, filepath.Join(work, "gabarit.db")); err != nil {
		return BackupResult{}, err
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "vault.db")); err == nil {
		if err := store.SnapshotFile(ctx, filepath.Join(d.Dir, "vault.db"), filepath.Join(work, "vault.db")); err != nil {
			return BackupResult{}, err
		}
	}
	if b, err := os.ReadFile(filepath.Join(d.Dir, records.FileName)); err == nil {
		if err := os.WriteFile(filepath.Join(work, records.FileName), b, 0o600); err != nil {
			return BackupResult{}, fmt.Errorf("backup: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return BackupResult{}, fmt.Errorf("backup: %w", err)
	}

	rep, err := store.CheckFile(ctx, filepath.Join(work, "gabarit.db"))
	if err != nil {
		return BackupResult{}, fmt.Errorf("the snapshot of the store: %w", err)
	}
	head, err := store.SignAuditHead(rep.Head, func(msg []byte) ([]byte, error) {
		return d.Master.MAC(keyring.PurposeAuditWitness, msg)
	})
	if err != nil {
		return BackupResult{}, err
	}
	m := BackupManifest{Format: BackupFormat, Created: time.Now().UTC().Truncate(time.Second),
		SchemaVersion: rep.SchemaVersion, Rows: rep.Rows, AuditHead: head}
	for _, name := range backupFiles {
		f, err := digestFile(filepath.Join(work, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return BackupResult{}, fmt.Errorf("backup: %w", err)
		}
		f.Name = name
		m.Files = append(m.Files, f)
	}

	size, sum, err := writeBackup(out, work, m)
	if err != nil {
		return BackupResult{}, err
	}
	res := BackupResult{Path: out, Bytes: size, SHA256: sum, Files: m.Files, Rows: m.Rows, AuditEntries: rep.Head.ID}
	detail, err := json.Marshal(map[string]any{"files": len(m.Files), "bytes": size, "sha256": sum,
		"audit_head": rep.Head.ID, "rows": m.Rows})
	if err == nil {
		res.AuditID, err = d.DB.AppendAudit(ctx, nil, store.AuditEntry{Actor: actor, Action: "backup", Object: "backup", Detail: detail})
	}
	if err != nil {
		if rerr := os.Remove(out); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return BackupResult{}, fmt.Errorf("record the backup in the audit log (the backup file was removed): %w", err)
	}
	return res, nil
}

// digestFile returns the size and SHA-256 of the file at path.
func digestFile(path string) (BackupFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return BackupFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return BackupFile{}, err
	}
	return BackupFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeBackup writes the tar of manifest m and the files of directory work
// to a temporary file beside out, syncs it and renames it to out. It
// returns the file's size and SHA-256.
func writeBackup(out, work string, m BackupManifest) (size int64, sum string, err error) {
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return 0, "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".gabarit-backup-*.tmp")
	if err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()           // the write error is the one to report
			_ = os.Remove(tmp.Name()) // likewise
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	tw := tar.NewWriter(cw)
	hdr := func(name string, n int64) *tar.Header {
		return &tar.Header{Name: name, Size: n, Mode: 0o600, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(backupManifestName, int64(len(mj)))); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	if _, err := tw.Write(mj); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	for _, bf := range m.Files {
		if err := tw.WriteHeader(hdr(bf.Name, bf.Size)); err != nil {
			return 0, "", fmt.Errorf("write the backup: %w", err)
		}
		f, err := os.Open(filepath.Join(work, bf.Name))
		if err != nil {
			return 0, "", fmt.Errorf("write the backup: %w", err)
		}
		_, err = io.Copy(tw, f)
		_ = f.Close() // read only
		if err != nil {
			return 0, "", fmt.Errorf("write the backup: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	if err := fsutil.SyncDir(filepath.Dir(out)); err != nil {
		return 0, "", fmt.Errorf("write the backup: %w", err)
	}
	return cw.n, hex.EncodeToString(h.Sum(nil)), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrBadBackup reports a backup file that is truncated, damaged or not a
// gabarit backup.
var ErrBadBackup = errors.New("not a usable gabarit backup")

// RestoreResult is what Restore restored and checked.
type RestoreResult struct {
	Dir           string           `json:"dir"`
	Created       time.Time        `json:"backup_created"`
	Files         []BackupFile     `json:"files"`
	Rows          map[string]int64 `json:"rows"`
	AuditEntries  int64            `json:"audit_entries"`   // the log's entries in the backup, verified
	SourcesOpened int              `json:"sources_checked"` // sources whose first template opened with the key
	Indexed       map[string]int   `json:"indexed"`         // faces in the rebuilt index of each model
	AuditID       int64            `json:"audit_id"`        // the witness reset that records the restore
}

// ErrBackupPostgres is returned by Backup and Restore for a PostgreSQL store.
var ErrBackupPostgres = errors.New("gabarit backup and restore work on the SQLite store only: back up a PostgreSQL store with " +
	"pg_dump (pg_dump --format=custom --file=gabarit.dump \"$GABARIT_STORE\"), restore it with pg_restore into an empty " +
	"database, and keep the master key file in its own backup")

// Restore restores the backup file from into the data directory
// cfg.DataDir, which must be missing or empty but for the master key, with
// the SQLite store (a PostgreSQL store is refused: ErrBackupPostgres): the
// key (cfg.KeyFile: DIR/master.key, or GABARIT_MASTER_KEY_FILE) must be there
// already, since backups never hold it, and is never created. It checks
// the files' digests, PRAGMA integrity_check, the audit chain and that the
// log ends at the entry the backup's manifest names (signed with the key),
// and opens one template of every source and the vault with the key; then
// it writes a fresh audit witness (an audit.witness-reset entry saying
// "restored from backup …") and rebuilds the vector index (of kind
// cfg.Index). On failure the directory is left as it was.
func Restore(ctx context.Context, from string, cfg config.Config, actor string) (res RestoreResult, err error) {
	if cfg.Postgres() {
		return res, ErrBackupPostgres
	}
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	dir := cfg.DataDir
	res.Dir = dir
	created, err := prepareRestoreDir(dir)
	if err != nil {
		return res, err
	}
	keyFile := cfg.KeyFile()
	if _, serr := os.Stat(keyFile); serr != nil {
		if created {
			_ = os.Remove(dir) // the new, empty directory; the refusal is what matters
		}
		return res, fmt.Errorf("no master key at %s: a backup never holds the key. Put the master key file of the deployment "+
			"the backup was made from there (mode 0600), or name it with %s, and run restore again",
			keyFile, keyring.EnvMasterKeyFile)
	}
	var installed []string
	defer func() {
		if err == nil {
			return
		}
		for _, p := range installed {
			_ = os.RemoveAll(p) // best effort: the error being returned matters more
		}
		if created {
			_ = os.Remove(dir) // only when empty: the key may be in it
		}
	}()
	stage, err := os.MkdirTemp(dir, ".restore-")
	if err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}
	installed = append(installed, stage)

	m, err := unpackBackup(from, stage)
	if err != nil {
		return res, err
	}
	res.Created, res.Files, res.Rows = m.Created, m.Files, m.Rows
	want, _, err := store.ParseAuditHead(m.AuditHead)
	if err != nil && m.AuditHead != "" {
		return res, fmt.Errorf("%w: its manifest names no valid audit head", ErrBadBackup)
	}
	rep, err := store.CheckFile(ctx, filepath.Join(stage, "gabarit.db"))
	if err != nil {
		return res, fmt.Errorf("%w: the store in it is damaged (SQLite's integrity check fails)", ErrBadBackup)
	}
	if rep.Head != want {
		return res, fmt.Errorf("%w: the store in it ends at audit entry %d, its manifest names entry %d", ErrBadBackup, rep.Head.ID, want.ID)
	}
	if _, err := os.Stat(filepath.Join(stage, "vault.db")); err == nil {
		if _, err := store.CheckFile(ctx, filepath.Join(stage, "vault.db")); err != nil {
			return res, fmt.Errorf("%w: the vault in it is damaged (SQLite's integrity check fails)", ErrBadBackup)
		}
	}
	for _, f := range m.Files {
		p := filepath.Join(dir, f.Name)
		if err := os.Rename(filepath.Join(stage, f.Name), p); err != nil {
			return res, fmt.Errorf("restore: %w", err)
		}
		installed = append(installed, p, p+"-wal", p+"-shm")
	}
	installed = append(installed, filepath.Join(dir, "audit.head"), filepath.Join(dir, "audit.head.lock"),
		filepath.Join(dir, "lock"), filepath.Join(dir, "index"))
	if err := os.Remove(stage); err != nil {
		return res, fmt.Errorf("restore: %w", err)
	}

	// The key first: the templates of each source and the vault open only
	// with the key they were sealed with.
	wrongKey := fmt.Errorf("the master key at %s is not the key of the deployment this backup was made from: "+
		"put that deployment's master key there and run restore again", keyFile)
	d, err := OpenData(ctx, cfg, true)
	if errors.Is(err, store.ErrWrongMasterKey) {
		return res, wrongKey // the store's check value, before any template
	}
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, d.Close()) }()
	ok, bad, err := d.DB.VerifyAudit(ctx)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, fmt.Errorf("%w: audit entry %d of the backup does not follow the chain", ErrBadBackup, bad)
	}
	keyOpened := false
	samples, err := d.DB.TemplateSamples(ctx)
	if err != nil {
		return res, err
	}
	for _, s := range samples {
		v, err := d.Keys.Open(ctx, s.SourceID, s.FaceID, s.ModelID, s.Template)
		clear(v)
		switch {
		case errors.Is(err, keyring.ErrShredded):
			continue // a retired source: its faces are unreadable by design
		case errors.Is(err, keyring.ErrTampered):
			return res, wrongKey
		case err != nil:
			return res, fmt.Errorf("open a template of source %d: %w", s.SourceID, err)
		}
		res.SourcesOpened++
		keyOpened = true
	}
	if _, err := os.Stat(filepath.Join(dir, "vault.db")); err == nil {
		if _, err := d.Vault(ctx); err != nil {
			if errors.Is(err, keyring.ErrTampered) {
				return res, wrongKey
			}
			return res, fmt.Errorf("open the vault: %w", err)
		}
		keyOpened = true
	}
	// Then the log's last entry, signed with the key when the backup was
	// made: a log altered in the backup (and its digests recomputed) ends
	// elsewhere, or not under this signature.
	if want.ID > 0 {
		if _, err := d.DB.CheckAuditHead(ctx, m.AuditHead); err != nil {
			switch {
			case !errors.Is(err, store.ErrAuditTampered):
				return res, err
			case keyOpened:
				return res, fmt.Errorf("%w: its audit log does not end at the entry signed when the backup was made (it was altered)", ErrBadBackup)
			default:
				return res, fmt.Errorf("%w, or the backup was altered: its audit head is not signed with this key", wrongKey)
			}
		}
	}
	res.AuditEntries = want.ID
	reason := fmt.Sprintf("restored from backup made %s (%d audit entries)", m.Created.Format(time.RFC3339), want.ID)
	if res.AuditID, err = d.DB.ResetAuditWitness(ctx, actor, reason); err != nil {
		return res, err
	}
	models, err := d.DB.FaceModels(ctx)
	if err != nil {
		return res, err
	}
	res.Indexed = map[string]int{}
	for model, dim := range models {
		h, err := d.RebuildIndex(ctx, model, dim)
		if err != nil {
			return res, fmt.Errorf("rebuild the vector index of %s: %w", model, err)
		}
		n, err := h.Index.Len(ctx)
		if err != nil {
			_ = h.Close() // the count's error is the one to report
			return res, fmt.Errorf("count the vector index of %s: %w", model, err)
		}
		res.Indexed[model] = n
		if err := h.Close(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// prepareRestoreDir checks that dir is missing (and creates it, mode 0700)
// or holds nothing but a master key.
func prepareRestoreDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("data directory: %w", err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("data directory: %w", err)
	}
	var others []string
	for _, e := range entries {
		if e.Name() != "master.key" {
			others = append(others, e.Name())
		}
	}
	if len(others) > 0 {
		slices.Sort(others)
		if len(others) > 3 {
			others = append(others[:3], "…")
		}
		return false, fmt.Errorf("%s is not empty (it holds %s): restore only into a new or empty data directory "+
			"(it may hold the master key); restore never replaces data", dir, strings.Join(others, ", "))
	}
	return false, nil
}

// maxManifest bounds the manifest read from a backup.
const maxManifest = 1 << 20

// unpackBackup reads the backup file from into the directory stage,
// checking each file against the manifest, and returns the manifest.
func unpackBackup(from, stage string) (BackupManifest, error) {
	var m BackupManifest
	f, err := os.Open(from)
	if err != nil {
		return m, fmt.Errorf("open the backup: %w", err)
	}
	defer f.Close()
	truncated := fmt.Errorf("%w: %s is truncated (it ends too early); copy it again from where it is kept", ErrBadBackup, filepath.Base(from))
	tr := tar.NewReader(f)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != backupManifestName || hdr.Size > maxManifest {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return m, truncated
		}
		return m, fmt.Errorf("%w: %s does not start with a gabarit backup manifest", ErrBadBackup, filepath.Base(from))
	}
	mj, err := io.ReadAll(tr)
	if err != nil {
		return m, truncated
	}
	if err := json.Unmarshal(mj, &m); err != nil || m.Format != BackupFormat {
		return m, fmt.Errorf("%w: its manifest is not one of a %s", ErrBadBackup, BackupFormat)
	}
	want := map[string]BackupFile{}
	for _, bf := range m.Files {
		if !slices.Contains(backupFiles, bf.Name) || want[bf.Name] != (BackupFile{}) {
			return m, fmt.Errorf("%w: its manifest names an unexpected file", ErrBadBackup)
		}
		want[bf.Name] = bf
	}
	if _, ok := want["gabarit.db"]; !ok {
		return m, fmt.Errorf("%w: it holds no store (gabarit.db)", ErrBadBackup)
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, truncated
		}
		bf, ok := want[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("%w: it holds a member its manifest does not name", ErrBadBackup)
		}
		delete(want, hdr.Name)
		if hdr.Size != bf.Size {
			return m, fmt.Errorf("%w: %s has %d bytes, its manifest says %d", ErrBadBackup, bf.Name, hdr.Size, bf.Size)
		}
		out, err := os.OpenFile(filepath.Join(stage, bf.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return m, fmt.Errorf("restore: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(out, h), tr)
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return m, truncated
		case err != nil:
			return m, fmt.Errorf("restore: %w", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != bf.SHA256 {
			return m, fmt.Errorf("%w: %s does not match its SHA-256 in the manifest (the file was changed or damaged)", ErrBadBackup, bf.Name)
		}
	}
	if len(want) > 0 {
		return m, truncated
	}
	return m, nil
}
