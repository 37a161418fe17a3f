package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/config"
	_ "gabarit/internal/store/drivers" // the store's database drivers
	"gabarit/internal/vault"
)

// TestVaultImportsOlderFile: a data directory of an older version, whose
// vault is its own file vault.db, has it imported into the store when the
// vault first opens, and the file removed; the master key is then required
// as for any sealed data.
func TestVaultImportsOlderFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "vault", "testdata", "legacy-vault.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vault.db"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// The key internal/vault's testdata/legacy-vault.db was made under.
	key := []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n")
	if err := os.WriteFile(filepath.Join(dir, "master.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{DataDir: dir, Index: IndexFlat}
	d, err := OpenData(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Vault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := v.Count(ctx)
	if err != nil || n[vault.Selfie] != 3 || n[vault.Objection] != 1 || n[vault.Restriction] != 2 {
		t.Errorf("vault after the import: %v, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vault.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("vault.db after the import: %v, want it removed", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The vault's entries are sealed data: a missing key is not recreated.
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	if d, err := OpenData(ctx, cfg, false); err == nil || !strings.Contains(err.Error(), "master key file") {
		if d != nil {
			d.Close()
		}
		t.Fatalf("OpenData without the master key of the imported vault: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a master key was created: %v", err)
	}
}
