package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/config"
	_ "gabarit/internal/store/drivers" // the tests of this package open stores
)

// TestBackupRefusesPostgres: backup and restore work on the SQLite store
// only; on a PostgreSQL store they say to use pg_dump, and restore leaves
// no directory behind.
func TestBackupRefusesPostgres(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Config{DataDir: filepath.Join(dir, "data"), Index: IndexFlat, Store: "postgres://gabarit@127.0.0.1:1/gabarit"}
	out := filepath.Join(dir, "backup.tar")
	if _, err := Backup(ctx, &Data{Dir: cfg.DataDir, Config: cfg}, out, "cli:test"); !errors.Is(err, ErrBackupPostgres) ||
		!strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("Backup: %v, want ErrBackupPostgres", err)
	}
	if _, err := Restore(ctx, out, cfg, "cli:test"); !errors.Is(err, ErrBackupPostgres) {
		t.Errorf("Restore: %v, want ErrBackupPostgres", err)
	}
	for _, p := range []string{out, cfg.DataDir} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v, want nothing written", p, err)
		}
	}
}
