package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"syscall"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/vault"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/flat"
	"gabarit/internal/vindex/hnsw"
	"gabarit/internal/vstore"
)

// EnvData names the data directory when --data is not given.
const EnvData = "GABARIT_DATA"

// dataFlags are the flags of every command that uses the data directory.
type dataFlags struct {
	dir   string
	index string
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.dir, "data", "", "data directory (default $"+EnvData+" or ~/.local/share/gabarit)")
	fs.StringVar(&d.index, "index", "hnsw", "vector index: hnsw (approximate, default) or flat (exact)")
}

// path returns the data directory.
func (d *dataFlags) path() (string, error) {
	if d.dir != "" {
		return filepath.Abs(d.dir)
	}
	if v := os.Getenv(EnvData); v != "" {
		return filepath.Abs(v)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory: give --data or set %s (%w)", EnvData, err)
	}
	return filepath.Join(home, ".local", "share", "gabarit"), nil
}

// dataKit is an open data directory: the store, the keyring and, for
// commands that change faces, the writer lock.
type dataKit struct {
	dir    string
	db     *store.DB
	keys   *keyring.Keyring
	master *keyring.Master
	lock   *os.File
	index  string
	vlt    *vault.Vault // opened on first use
}

// open opens the data directory, creating it (mode 0700) and its master key
// (mode 0600, unless GABARIT_MASTER_KEY_FILE names one) on first use. With
// exclusive, it also takes the directory's writer lock, so that two
// processes never change faces and the index at once.
func (d *dataFlags) open(ctx context.Context, exclusive bool) (*dataKit, error) {
	dir, err := d.path()
	if err != nil {
		return nil, err
	}
	if d.index != "hnsw" && d.index != "flat" {
		return nil, fmt.Errorf("--index %q: want hnsw or flat", d.index)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	k := &dataKit{dir: dir, index: d.index}
	if exclusive {
		if k.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	k.db, err = store.Open(ctx, filepath.Join(dir, "gabarit.db"), store.WithAuditWitness(filepath.Join(dir, "audit.head")))
	if err != nil {
		k.Close()
		return nil, err
	}
	keyFile := os.Getenv(keyring.EnvMasterKeyFile)
	if keyFile == "" {
		keyFile = filepath.Join(dir, "master.key")
	}
	master, err := keyring.LoadOrCreateMaster(keyFile)
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("master key: %w", err)
	}
	k.master = master
	k.keys = keyring.New(master, k.db.KeyStore())
	return k, nil
}

// vault opens the data directory's vault (suppression, restriction and
// selfie templates, in their own encrypted file vault.db).
func (k *dataKit) vault(ctx context.Context) (*vault.Vault, error) {
	if k.vlt == nil {
		v, err := vault.Open(ctx, filepath.Join(k.dir, "vault.db"), k.master)
		if err != nil {
			return nil, err
		}
		k.vlt = v
	}
	return k.vlt, nil
}

// lockDir takes the exclusive writer lock of a data directory. The kernel
// releases it when the process dies, so a killed ingest never leaves it held.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another gabarit process is changing %s (ingest, purge or reindex); wait for it to finish", dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}

// Close closes what open opened and releases the lock.
func (k *dataKit) Close() error {
	var errs []error
	if k.vlt != nil {
		errs = append(errs, k.vlt.Close())
	}
	if k.keys != nil {
		errs = append(errs, k.keys.Close())
	}
	if k.db != nil {
		errs = append(errs, k.db.Close())
	}
	if k.lock != nil {
		errs = append(errs, k.lock.Close())
	}
	return errors.Join(errs...)
}

// indexPath is where the vector index of model modelID is saved.
func (k *dataKit) indexPath(modelID string) string {
	return filepath.Join(k.dir, "index", modelID+"."+k.index)
}

// indexKind is the vector index implementation chosen by --index.
func (k *dataKit) indexKind() vstore.Kind {
	if k.index == "flat" {
		return vstore.Kind{
			Name: "flat",
			New:  func(dim int) vindex.Index { return flat.New(dim) },
			Load: func(r io.Reader) (vindex.Index, error) { return flat.Load(r) },
		}
	}
	return vstore.Kind{
		Name: "hnsw",
		// EfSearch 160: recall@10 0.985 at 1,000,000 faces with p99 3.6 ms
		// on two cores (docs/PERFORMANCE.md); the default 64 gives 0.973.
		New: func(dim int) vindex.Index { return hnsw.New(dim, hnsw.Config{EfSearch: efSearch}) },
		Load: func(r io.Reader) (vindex.Index, error) {
			x, err := hnsw.Load(r, nil)
			if err != nil {
				return nil, err
			}
			x.SetEfSearch(efSearch)
			return x, nil
		},
	}
}

// efSearch is the HNSW beam width of searches; see indexKind.
const efSearch = 160

// openIndex opens the vector index of model modelID, caught up with the store.
func (k *dataKit) openIndex(ctx context.Context, modelID string, dim int) (*vstore.Handle, error) {
	return vstore.Open(ctx, k.indexPath(modelID), k.indexKind(), modelID, dim, k.db, k.keys)
}

// actor names who runs a command, for the audit log: the operating-system
// account, since the command line has no other authentication.
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid-%d", os.Getuid())
}

// vstoreRebuild rebuilds the index of model modelID from the store and saves it.
func vstoreRebuild(ctx context.Context, k *dataKit, modelID string, dim int) (*vstore.Handle, error) {
	return vstore.Rebuild(ctx, k.indexPath(modelID), k.indexKind(), modelID, dim, k.db, k.keys)
}
