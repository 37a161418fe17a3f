package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// testdata/legacy-vault.db was made by the vault of an older gabarit (its
// own SQLite file) under the master key legacyMasterKey, with:
//
//	entries 1, 2: selfies of request 1: u(0, 0.1), u(0, 0.2)
//	entry 3:      objection of request 1: u(0, 0)
//	entries 4, 5: restriction of request 2: u(3, 0), u(5, 0)
//	entry 6:      a selfie of request 2, removed
//	entry 7:      a selfie of request 3: 1, 2, …, 8
//
// all of model m1, dimension 8, created at legacyCreated; u(i, s) is the
// vector with 1 at i and s at i+1.
const legacyMasterKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

var legacyCreated = time.UnixMilli(1767225600000).UTC()

func legacyU(i int, s float32) []float32 {
	x := make([]float32, 8)
	x[i], x[(i+1)%8] = 1, s
	return x
}

// legacyDir returns a data directory holding a copy of the old vault file,
// and an instance over a new store there with the file's master key.
func legacyDir(t *testing.T) (instance, *keyring.Master, string) {
	t.Helper()
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("testdata", "legacy-vault.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vault.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.key"), []byte(legacyMasterKey), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := keyring.LoadOrCreateMaster(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), filepath.Join(dir, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kr := keyring.New(m, db.KeyStore())
	t.Cleanup(func() { kr.Close() })
	return instance{db: db, keys: kr, path: filepath.Join(dir, "gabarit.db")}, m, path
}

// checkImported checks that the store holds exactly the old file's entries.
func checkImported(t *testing.T, v *Vault) {
	t.Helper()
	ctx := context.Background()
	n, err := v.Count(ctx)
	if err != nil || n[Selfie] != 3 || n[Objection] != 1 || n[Restriction] != 2 {
		t.Errorf("Count = %v, %v; want 3 selfies, 1 objection, 2 restrictions", n, err)
	}
	for req, want := range map[int64][][]float32{1: {legacyU(0, 0.1), legacyU(0, 0.2)}, 2: nil, 3: {{1, 2, 3, 4, 5, 6, 7, 8}}} {
		if got, err := v.Templates(ctx, req, Selfie); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("selfies of request %d = %v, %v; want %v", req, got, err, want)
		}
	}
	es, err := v.Entries(ctx, 2)
	if err != nil || len(es) != 2 || es[0].Kind != Restriction || !es[0].Created.Equal(legacyCreated) {
		t.Errorf("entries of request 2 = %+v, %v", es, err)
	}
	tests := []struct {
		probe []float32
		kinds []Kind
		want  bool
	}{
		{legacyU(0, 0), []Kind{Objection}, true},
		{legacyU(3, 0), []Kind{Objection}, false},
		{legacyU(3, 0), []Kind{Restriction}, true},
		{legacyU(5, 0), []Kind{Restriction}, true},
		{legacyU(7, 0), []Kind{Objection, Restriction}, false},
	}
	for _, tt := range tests {
		if ok, err := v.Match(ctx, "m1", tt.probe, tt.kinds, 0.99); err != nil || ok != tt.want {
			t.Errorf("Match(%v, %v) = %v, %v; want %v", tt.probe, tt.kinds, ok, err, tt.want)
		}
	}
}

func gone(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s after the import: %v, want it removed", filepath.Base(p), err)
		}
	}
}

func TestImportLegacyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in, m, path := legacyDir(t)
	v := open(t, in, ImportFile(path, m))
	checkImported(t, v)
	gone(t, path)
	// The entries were sealed again, by the keyring: no old blob is left,
	// and the store holds no template in clear.
	raw := fileBytes(t, in.path)
	if bytes.Contains(raw, le([]float32{1, 2, 3, 4, 5, 6, 7, 8})) {
		t.Error("the store holds an imported template in clear")
	}
	// Opening again (the file is gone) imports nothing more.
	v2 := open(t, in, ImportFile(path, m))
	checkImported(t, v2)
	if _, err := v2.Add(ctx, Objection, 9, "m1", [][]float32{legacyU(6, 0)}); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.Match(ctx, "m1", legacyU(6, 0), []Kind{Objection}, 0.99); err != nil || !ok {
		t.Errorf("an objection added after the import: %v, %v", ok, err)
	}
}

// TestImportCrash: an import that fails midway (here while sealing the
// fourth entry) leaves the old file intact and nothing imported; the next
// Open imports it whole.
func TestImportCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in, m, path := legacyDir(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	crash := errors.New("crash")
	fault := func(o *options) {
		o.importFault = func(i int) error {
			if i == 3 {
				return crash
			}
			return nil
		}
	}
	if v, err := Open(ctx, in.db, in.keys, ImportFile(path, m), fault); !errors.Is(err, crash) {
		if v != nil {
			v.Close()
		}
		t.Fatalf("Open with a failing import: %v", err)
	}
	if n, err := in.db.VaultCounts(ctx); err != nil || len(n) != 0 {
		t.Errorf("after a failed import the store holds %v, %v; want nothing", n, err)
	}
	if ver, err := in.db.VaultVersion(ctx); err != nil || ver != 0 {
		t.Errorf("change counter after a failed import: %d, %v", ver, err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the old file changed after a failed import (%v)", err)
	}
	v := open(t, in, ImportFile(path, m))
	checkImported(t, v)
	gone(t, path)
}

// TestImportRemovalInterrupted: a process stopped after the import
// committed but before the file was removed: the next Open removes it and
// imports nothing twice.
func TestImportRemovalInterrupted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in, m, path := legacyDir(t)
	stop := errors.New("stopped")
	fault := func(o *options) {
		o.removeLegacy = func(p string) error {
			if p == path {
				return stop
			}
			return os.Remove(p)
		}
	}
	if v, err := Open(ctx, in.db, in.keys, ImportFile(path, m), fault); !errors.Is(err, stop) {
		if v != nil {
			v.Close()
		}
		t.Fatalf("Open stopped before the removal: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the old file: %v", err)
	}
	v := open(t, in, ImportFile(path, m))
	checkImported(t, v)
	gone(t, path)
}

func TestImportWrongMasterKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in, _, path := legacyDir(t)
	other, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), "b.key"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Open(ctx, in.db, in.keys, ImportFile(path, other)); !errors.Is(err, keyring.ErrTampered) {
		if v != nil {
			v.Close()
		}
		t.Fatalf("import with another master key: %v, want ErrTampered", err)
	}
	if n, err := in.db.VaultCounts(ctx); err != nil || len(n) != 0 {
		t.Errorf("store after a refused import: %v, %v", n, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the old file after a refused import: %v", err)
	}
}

// TestImportEmptyFile: a vault file created but never given its schema
// (a process killed at once) holds nothing, and is removed.
func TestImportEmptyFile(t *testing.T) {
	t.Parallel()
	in, m, path := legacyDir(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	v := open(t, in, ImportFile(path, m))
	if n, err := v.Count(context.Background()); err != nil || len(n) != 0 {
		t.Errorf("Count = %v, %v", n, err)
	}
	gone(t, path)
}
