// Package app opens what every gabarit front end works on — a data
// directory (store, keyring, vault, vector index) and the face path (model
// pack, pipeline) — and wires the engines on them, so that the command line
// and the server run the same code: an ingest, a search or a rights request
// behaves the same whichever way it arrives.
package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"gabarit/internal/config"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/vault"
	"gabarit/internal/vindex"
	"gabarit/internal/vindex/flat"
	"gabarit/internal/vindex/hnsw"
	"gabarit/internal/vindex/weaviate"
	"gabarit/internal/vstore"
)

// EnvData names the data directory when none is given.
const EnvData = config.EnvData

// Index kinds.
const (
	IndexHNSW = config.IndexHNSW // approximate, the default
	IndexFlat = config.IndexFlat // exact
)

// DataDir resolves the data directory: dir if given, else $GABARIT_DATA,
// else ~/.local/share/gabarit (see config.DataDir).
func DataDir(dir string) (string, error) { return config.DataDir(dir, os.Getenv) }

// Data is an open data directory: the store, the keyring and, for those
// that change faces, the writer lock.
type Data struct {
	Dir    string
	Config config.Config // what it was opened with (print it, never its Store: see config.Config.String)
	DB     *store.DB
	Keys   *keyring.Keyring
	Master *keyring.Master
	index  string
	lock   *os.File
	vlt    *vault.Vault // opened on first use
	// Warnings, when set, receives the warnings of OpenIndex (a damaged
	// index file it rebuilt), one line each, for the operator.
	Warnings io.Writer
}

// OpenData opens the data directory cfg.DataDir and the store cfg names
// (the SQLite file in the directory, or a PostgreSQL database), creating
// the directory (mode 0700) and the master key (cfg.KeyFile, mode 0600) on
// first use: a key is created only while the store holds nothing sealed,
// so every instance over one PostgreSQL store must be given the same key
// file. With exclusive, it also takes the directory's writer lock, so that
// two processes never change faces and the index at once.
func OpenData(ctx context.Context, cfg config.Config, exclusive bool) (*Data, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, index := cfg.DataDir, cfg.Index
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", diskFull(dir, err))
	}
	d := &Data{Dir: dir, Config: cfg, index: index}
	var err error
	if exclusive {
		if d.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	// The audit witness's heads are signed with the master key, read
	// right after the store opens (which appends no audit entry).
	opts := []store.Option{store.WithAuditWitness(filepath.Join(dir, "audit.head")),
		store.WithAuditWitnessKey(func(msg []byte) ([]byte, error) {
			if d.Master == nil {
				return nil, errors.New("no master key")
			}
			return d.Master.MAC(keyring.PurposeAuditWitness, msg)
		})}
	if cfg.AuditWitness != "" {
		opts = append(opts, store.WithAuditWitness(cfg.AuditWitness))
	}
	d.DB, err = store.Open(ctx, cfg.StoreTarget(), opts...)
	if err != nil {
		d.Close()
		if cfg.Postgres() {
			return nil, err // it names the database, without its password
		}
		return nil, diskFull(dir, err)
	}
	if d.Master, err = d.loadMaster(ctx); err != nil {
		d.Close()
		return nil, err
	}
	d.Keys = keyring.New(d.Master, d.DB.KeyStore())
	return d, nil
}

// EnvAuditWitness names a second audit witness file, outside the data
// directory (see store.WithAuditWitness).
const EnvAuditWitness = config.EnvAuditWitness

// loadMaster loads the master key (GABARIT_MASTER_KEY_FILE, or master.key
// in the data directory), creating it only for a store that holds nothing
// sealed yet: a new key would make every template, search record, the
// vault and the audit witness's signatures unreadable for good.
func (d *Data) loadMaster(ctx context.Context) (*keyring.Master, error) {
	keyFile := d.Config.KeyFile()
	if _, err := os.Stat(keyFile); errors.Is(err, fs.ErrNotExist) {
		sealed, err := d.DB.HoldsSealedData(ctx)
		if err != nil {
			return nil, err
		}
		if !sealed { // the vault's templates are sealed too
			vaulted, err := d.DB.VaultCounts(ctx)
			if err != nil {
				return nil, err
			}
			sealed = len(vaulted) > 0
		}
		_, verr := os.Stat(filepath.Join(d.Dir, "vault.db")) // the vault of older versions, not yet imported
		if sealed && d.Config.Postgres() {
			return nil, fmt.Errorf("master key file %s is missing, but the PostgreSQL store %s holds data sealed with a master key: "+
				"give this instance the key file every other instance over this store uses (%s names it), or restore it from "+
				"its backup. gabarit creates a master key only for a store that holds nothing sealed", keyFile, d.Config.RedactedStore(), keyring.EnvMasterKeyFile)
		}
		if sealed || verr == nil {
			return nil, fmt.Errorf("master key file %s is missing, but this data directory holds data sealed with a master key "+
				"(encrypted templates, search records, the vault): restore the key from your backup (see the README, Backups). "+
				"gabarit creates a master key only for a new data directory, because a new key would make all of it unreadable", keyFile)
		}
	}
	master, err := keyring.LoadOrCreateMaster(keyFile)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	check, err := master.MAC(keyring.PurposeKeyCheck, []byte("gabarit master key check v1"))
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if err := d.DB.CheckMasterKey(ctx, hex.EncodeToString(check)); errors.Is(err, store.ErrWrongMasterKey) {
		return nil, wrongKeyError{fmt.Sprintf("master key file %s is not the key the store %s is sealed with: give this process the key file "+
			"the store was first opened with (every instance over one store uses the same key, %s names it)", keyFile, d.Config.RedactedStore(), keyring.EnvMasterKeyFile)}
	} else if err != nil {
		return nil, err
	}
	return master, nil
}

// Vault opens the data directory's vault (suppression, restriction and
// selfie templates, sealed in the store). The first time, it imports the
// vault file of older versions, vault.db, and removes it.
func (d *Data) Vault(ctx context.Context) (*vault.Vault, error) {
	if d.vlt == nil {
		v, err := vault.Open(ctx, d.DB, d.Keys, vault.ImportFile(filepath.Join(d.Dir, "vault.db"), d.Master))
		if err != nil {
			return nil, err
		}
		d.vlt = v
	}
	return d.vlt, nil
}

// wrongKeyError says which key file does not match the store; it is
// store.ErrWrongMasterKey for errors.Is.
type wrongKeyError struct{ msg string }

func (e wrongKeyError) Error() string { return e.msg }
func (e wrongKeyError) Unwrap() error { return store.ErrWrongMasterKey }

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
			return nil, fmt.Errorf("another gabarit process (ingest, purge, reindex or serve) is changing %s; wait for it to finish", dir)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}

// Close closes what OpenData opened and releases the lock.
func (d *Data) Close() error {
	var errs []error
	if d.vlt != nil {
		errs = append(errs, d.vlt.Close())
	}
	if d.Keys != nil {
		errs = append(errs, d.Keys.Close())
	}
	if d.DB != nil {
		errs = append(errs, d.DB.Close())
	}
	if d.lock != nil {
		errs = append(errs, d.lock.Close())
	}
	return errors.Join(errs...)
}

// IndexPath is where the vector index of model modelID is saved; for a
// remote index (a Weaviate cluster), the index URL and its collection.
func (d *Data) IndexPath(modelID string) string {
	if d.Config.IndexKind() == config.IndexWeaviate {
		return d.Config.Index + " (collection " + weaviate.ClassName(modelID) + ")"
	}
	return filepath.Join(d.Dir, "index", modelID+"."+d.index)
}

// remoteIndex describes the Weaviate collection of model modelID (the
// configuration's weaviate:// URL) to vstore.
func (d *Data) remoteIndex(modelID string, dim int) (vstore.Remote, error) {
	wc, err := weaviate.ParseConfig(d.Config.Index)
	if err != nil {
		return vstore.Remote{}, err
	}
	wc.Collection, wc.Dim = modelID, dim
	return vstore.Remote{
		Name: "weaviate/" + weaviate.ClassName(modelID),
		Connect: func(ctx context.Context, transform func(dst, src []float32), transformID string) (vstore.Engine, error) {
			c := wc
			c.Transform, c.TransformID = transform, transformID
			return weaviate.Open(ctx, c)
		},
		Seal: d.Keys,
		Drop: func(ctx context.Context) error { return weaviate.DropCollection(ctx, wc) },
	}, nil
}

// IndexKind is the vector index implementation chosen at OpenData.
func (d *Data) IndexKind() vstore.Kind {
	if d.index == IndexFlat {
		return vstore.Kind{
			Name: IndexFlat,
			New:  func(dim int) vindex.Index { return flat.New(dim) },
			Load: func(r io.Reader) (vindex.Index, error) { return flat.Load(r) },
		}
	}
	return vstore.Kind{
		Name: IndexHNSW,
		// EfSearch 160: recall@10 0.985 at 1,000,000 faces with p99 3.6 ms
		// on two cores (docs/PERFORMANCE.md); the default 64 gives 0.973.
		New: func(dim int) vindex.Index { return hnsw.New(dim, hnsw.Config{EfSearch: EfSearch}) },
		Load: func(r io.Reader) (vindex.Index, error) {
			x, err := hnsw.Load(r, nil)
			if err != nil {
				return nil, err
			}
			x.SetEfSearch(EfSearch)
			return x, nil
		},
	}
}

// EfSearch is the HNSW beam width of searches; see IndexKind.
const EfSearch = 160

// OpenIndex opens the vector index of model modelID, caught up with the store.
// A damaged index file, or one older than the index outbox keeps
// (OutboxKeep), is rebuilt and saved once, and reported to d.Warnings.
func (d *Data) OpenIndex(ctx context.Context, modelID string, dim int) (*vstore.Handle, error) {
	if d.Config.IndexKind() == config.IndexWeaviate {
		r, err := d.remoteIndex(modelID, dim)
		if err != nil {
			return nil, err
		}
		h, err := vstore.OpenRemote(ctx, r, modelID, dim, d.DB, d.Keys)
		if err == nil && h.Behind && d.Warnings != nil {
			fmt.Fprintf(d.Warnings, "gabarit: warning: the Weaviate collection %s was empty while the store says it was "+
				"filled (its data was lost or the cluster re-created); it was filled again from the store.\n", weaviate.ClassName(modelID))
		}
		return h, err
	}
	h, err := vstore.Open(ctx, d.IndexPath(modelID), d.IndexKind(), modelID, dim, d.DB, d.Keys)
	if err == nil && h.Damaged != nil && d.Warnings != nil {
		fmt.Fprintf(d.Warnings, "gabarit: warning: the vector index file could not be read (%v); it was rebuilt from the store "+
			"and saved. If this happens again, check the disk and run `gabarit reindex`.\n", h.Damaged)
	}
	if err == nil && h.Behind && d.Warnings != nil {
		fmt.Fprint(d.Warnings, "gabarit: warning: the vector index file could not be brought up to date (saved more than "+
			"a week ago, or the store was restored from an older copy); it was rebuilt from the store and saved.\n")
	}
	if err == nil && h.OtherStore && d.Warnings != nil {
		fmt.Fprintf(d.Warnings, "gabarit: warning: the vector index file of %s was made over another store than %s; "+
			"it was rebuilt from this store and saved.\n", d.Dir, d.Config.RedactedStore())
	}
	return h, err
}

// OutboxKeep is how long the index outbox keeps an operation before the
// housekeeping prunes it (store.PruneIndexOutbox): an index file saved
// longer ago, or an instance stopped for longer, is rebuilt from the store
// when it next catches up.
const OutboxKeep = 7 * 24 * time.Hour

// NewIndexRotation drops the Weaviate collection of model modelID and
// forgets its rotation secret, so that the next OpenIndex or RebuildIndex
// draws a new secret and fills the collection again (see
// vstore.NewRotation). It fails for an embedded index, which sends no
// vector anywhere.
func (d *Data) NewIndexRotation(ctx context.Context, modelID string, dim int) error {
	if d.Config.IndexKind() != config.IndexWeaviate {
		return errors.New("a new rotation is for a Weaviate index (--index weaviate://…): an embedded index keeps its vectors in the data directory")
	}
	r, err := d.remoteIndex(modelID, dim)
	if err != nil {
		return err
	}
	return vstore.NewRotation(ctx, r, d.DB)
}

// RebuildIndex rebuilds the index of model modelID from the store and saves it.
func (d *Data) RebuildIndex(ctx context.Context, modelID string, dim int) (*vstore.Handle, error) {
	if d.Config.IndexKind() == config.IndexWeaviate {
		h, err := d.OpenIndex(ctx, modelID, dim)
		if err != nil {
			return nil, err
		}
		if !h.Rebuilt {
			if _, err := h.RebuildRemote(ctx); err != nil {
				_ = h.Close() // the rebuild's error is the one to report
				return nil, err
			}
		}
		return h, nil
	}
	return vstore.Rebuild(ctx, d.IndexPath(modelID), d.IndexKind(), modelID, dim, d.DB, d.Keys)
}
