package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Snapshot writes a consistent copy of the database to dst, a file that
// must not exist yet, while other connections and processes keep reading
// and writing: the copy is the database as of one moment (SQLite's VACUUM
// INTO, which reads in one read transaction). The copy is created with the
// umask's mode: put dst in a private directory.
func (db *DB) Snapshot(ctx context.Context, dst string) error {
	if db.d == postgresDialect {
		return fmt.Errorf("snapshot: the store is a PostgreSQL database; back it up with pg_dump (or the server's own backups): %w", ErrInvalid)
	}
	var seq int
	var name, file string
	if err := db.r.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		return fmt.Errorf("snapshot the database: %w", err)
	}
	return SnapshotFile(ctx, file, dst)
}

// SnapshotFile does what Snapshot does for the SQLite file at src (vault.db
// too), through a connection of its own. VACUUM INTO needs a connection
// that may write (query_only refuses it), but it writes only to dst.
func SnapshotFile(ctx context.Context, src, dst string) error {
	c, err := openFile(ctx, src, false)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("snapshot %s: %w", filepath.Base(src), err)
	}
	return nil
}

// FileReport is what CheckFile found in a database file.
type FileReport struct {
	// SchemaVersion is the store schema of the file; 0 for a file that is
	// not a store (vault.db).
	SchemaVersion int
	// Rows counts the rows of each table.
	Rows map[string]int64
	// Head is the audit log's last entry; zero when the file has no log or
	// an empty one.
	Head AuditHead
}

// ErrDamaged reports a database file that fails SQLite's integrity or
// foreign key check.
var ErrDamaged = errors.New("database file is damaged")

// CheckFile checks the SQLite file at path without changing it: PRAGMA
// integrity_check must say ok and PRAGMA foreign_key_check find nothing
// (errors wrap ErrDamaged). It returns the rows of each table and, for a
// store, its schema version and last audit entry.
func CheckFile(ctx context.Context, path string) (FileReport, error) {
	rep := FileReport{Rows: map[string]int64{}}
	c, err := openFile(ctx, path, true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
			return rep, err
		}
		return rep, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	defer c.Close()
	var problems []string
	rows, err := c.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return rep, fmt.Errorf("check %s: %w: %w", path, ErrDamaged, err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return rep, fmt.Errorf("check %s: %w", path, err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return rep, fmt.Errorf("check %s: %w: %w", path, ErrDamaged, err)
	}
	var orphans int
	if err := c.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&orphans); err != nil {
		return rep, fmt.Errorf("check %s: %w", path, err)
	}
	if orphans > 0 {
		problems = append(problems, fmt.Sprintf("%d rows refer to rows that do not exist", orphans))
	}
	if len(problems) > 0 {
		if len(problems) > 3 {
			problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
		}
		return rep, fmt.Errorf("%s: %w: %s", path, ErrDamaged, strings.Join(problems, "; "))
	}

	tables, err := c.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return rep, fmt.Errorf("check %s: %w", path, err)
	}
	var names []string
	for tables.Next() {
		var n string
		if err := tables.Scan(&n); err != nil {
			tables.Close()
			return rep, fmt.Errorf("check %s: %w", path, err)
		}
		names = append(names, n)
	}
	if err := errors.Join(tables.Err(), tables.Close()); err != nil {
		return rep, fmt.Errorf("check %s: %w", path, err)
	}
	for _, n := range names {
		var count int64
		if err := c.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(n, `"`, `""`)+`"`).Scan(&count); err != nil {
			return rep, fmt.Errorf("check %s: count %s: %w", path, n, err)
		}
		rep.Rows[n] = count
	}
	if _, ok := rep.Rows["schema_version"]; ok {
		if err := c.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&rep.SchemaVersion); err != nil {
			return rep, fmt.Errorf("check %s: schema version: %w", path, err)
		}
	}
	if _, ok := rep.Rows["audit"]; ok {
		var hash []byte
		err := c.QueryRowContext(ctx, `SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&rep.Head.ID, &hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return rep, fmt.Errorf("check %s: audit head: %w", path, err)
		}
		copy(rep.Head.Hash[:], hash)
	}
	return rep, nil
}

// openFile opens the existing SQLite file at path through one connection,
// which cannot write with queryOnly.
func openFile(ctx context.Context, path string, queryOnly bool) (*sql.DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open %q: path must be a plain file name: %w", path, ErrInvalid)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	if queryOnly {
		q.Add("_pragma", "query_only(1)")
	}
	d, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	d.SetMaxOpenConns(1)
	if err := d.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open %s: %w", path, err), d.Close())
	}
	return d, nil
}

// SignAuditHead returns h as the line AuditHeadLine prints ("ID HASH MAC"),
// signed with mac (WithAuditWitnessKey's function; "-" when nil): the head
// of a snapshot, which the live store may have moved past.
func SignAuditHead(h AuditHead, mac func(msg []byte) ([]byte, error)) (string, error) {
	sig, err := (&witness{mac: mac}).sign(h)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %x %s", h.ID, h.Hash, sig), nil
}

// TemplateSample is one sealed template, to check that a master key opens
// the templates of its source.
type TemplateSample struct {
	FaceID, SourceID int64
	ModelID          string
	Template         []byte
}

// TemplateSamples returns the first face of every source that has faces.
func (db *DB) TemplateSamples(ctx context.Context) ([]TemplateSample, error) {
	rows, err := db.r.QueryContext(ctx, `
SELECT f.id, i.source_id, f.model_id, f.template FROM faces f JOIN images i ON i.id = f.image_id
WHERE f.id IN (SELECT min(f2.id) FROM faces f2 JOIN images i2 ON i2.id = f2.image_id GROUP BY i2.source_id)
ORDER BY i.source_id`)
	if err != nil {
		return nil, fmt.Errorf("template samples: %w", err)
	}
	return collect(rows, func(s scanner) (TemplateSample, error) {
		var t TemplateSample
		err := s.Scan(&t.FaceID, &t.SourceID, &t.ModelID, &t.Template)
		return t, err
	})
}

// FaceModels returns the models the stored faces were embedded with, and
// the dimension of each: the vector indexes a data directory has.
func (db *DB) FaceModels(ctx context.Context) (map[string]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT DISTINCT model_id, dim FROM faces ORDER BY model_id`)
	if err != nil {
		return nil, fmt.Errorf("face models: %w", err)
	}
	type md struct {
		model string
		dim   int
	}
	all, err := collect(rows, func(s scanner) (md, error) {
		var m md
		err := s.Scan(&m.model, &m.dim)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("face models: %w", err)
	}
	out := make(map[string]int, len(all))
	for _, m := range all {
		out[m.model] = m.dim
	}
	return out, nil
}
