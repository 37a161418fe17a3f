package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// The reader of vault.db, the vault file of older versions, for the import
// only: it reads the file through the "sqlite" database/sql driver, which
// the program registers (gabarit/internal/store/drivers), so that this
// package links no database driver.

const (
	legacyKeyPurpose    = "vault" // Master.Wrap purpose of the file's data key
	legacySchemaVersion = 1
	legacyAADLabel      = "gabarit vault template v1"
	legacyKeySize       = 32
)

// legacyEntry is an entry read from vault.db, decrypted.
type legacyEntry struct {
	kind      Kind
	requestID int64
	modelID   string
	created   time.Time
	template  []float32
}

// importFile imports the vault file o.legacy, if there is one, and removes
// it once its entries are committed to the store.
func (v *Vault) importFile(ctx context.Context, o options) error {
	path := o.legacy
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return fmt.Errorf("path must be a plain file name: %w", ErrInvalid)
	}
	if o.master == nil {
		return fmt.Errorf("the master key is required to read it: %w", ErrInvalid)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "secure_delete(1)") // the entries deleted after the import are overwritten
	ldb, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("%w (is gabarit/internal/store/drivers linked?)", err)
	}
	ldb.SetMaxOpenConns(1)
	defer ldb.Close()

	fp, entries, err := readLegacy(ctx, ldb, o.master)
	defer func() {
		for _, e := range entries {
			clear(e.template)
		}
	}()
	if err != nil {
		return err
	}
	if fp != nil {
		done, err := v.db.VaultImported(ctx, fp)
		if err != nil {
			return err
		}
		if !done {
			news := make([]store.VaultNew, len(entries))
			for i, e := range entries {
				news[i] = store.VaultNew{Kind: string(e.kind), RequestID: e.requestID, ModelID: e.modelID,
					Dim: len(e.template), Created: e.created}
			}
			if _, err := v.db.ImportVaultEntries(ctx, fp, news, func(i int, id int64) ([]byte, error) {
				if o.importFault != nil {
					if err := o.importFault(i); err != nil {
						return nil, err
					}
				}
				e := entries[i]
				return v.seal(id, e.kind, e.requestID, e.modelID, e.template)
			}); err != nil {
				return err
			}
		}
	}
	// Committed (now or by an earlier run): the file's templates go. Its
	// rows are overwritten first, for the disk blocks the removal frees.
	if _, err := ldb.ExecContext(ctx, "DELETE FROM entries"); err != nil && fp != nil {
		return fmt.Errorf("imported, but delete its entries: %w", err)
	}
	var busy, frames, done int
	if err := ldb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
		return fmt.Errorf("imported, but checkpoint it: %w", err)
	}
	if err := ldb.Close(); err != nil {
		return fmt.Errorf("imported, but close it: %w", err)
	}
	remove := os.Remove
	if o.removeLegacy != nil {
		remove = o.removeLegacy
	}
	// The main file last: a crash before it leaves a file that the next
	// Open finds imported, and removes.
	for _, p := range []string{path + "-wal", path + "-shm", path} {
		if err := remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("imported, but remove it: %w", err)
		}
	}
	return nil
}

// readLegacy reads and decrypts every entry of an older vault file, and
// returns the file's fingerprint: the SHA-256 of its wrapped data key,
// random and its own. A file without a schema or a key holds no entry: its
// fingerprint is nil.
func readLegacy(ctx context.Context, ldb *sql.DB, master *keyring.Master) ([]byte, []legacyEntry, error) {
	var version int
	if err := ldb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, nil, fmt.Errorf("schema version: %w", err)
	}
	switch {
	case version > legacySchemaVersion:
		return nil, nil, fmt.Errorf("version %d, this binary reads %d: %w", version, legacySchemaVersion, ErrSchemaTooNew)
	case version == 0:
		return nil, nil, nil // created, but never given its schema
	}
	var wrapped []byte
	err := ldb.QueryRowContext(ctx, "SELECT wrapped FROM vault_key WHERE id = 1").Scan(&wrapped)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := ldb.QueryRowContext(ctx, "SELECT count(*) FROM entries").Scan(&n); err != nil || n > 0 {
			return nil, nil, fmt.Errorf("%d entries without a data key (%v): %w", n, err, keyring.ErrTampered)
		}
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("data key: %w", err)
	}
	fp := sha256.Sum256(wrapped)
	key, err := master.Unwrap(legacyKeyPurpose, wrapped)
	if err != nil {
		return nil, nil, fmt.Errorf("data key: %w", err)
	}
	defer clear(key)
	g, err := legacyGCM(key)
	if err != nil {
		return nil, nil, err
	}
	rows, err := ldb.QueryContext(ctx, "SELECT id, kind, request_id, model_id, dim, created_at, template FROM entries ORDER BY id")
	if err != nil {
		return nil, nil, fmt.Errorf("entries: %w", err)
	}
	defer rows.Close()
	var out []legacyEntry
	for rows.Next() {
		var id, created int64
		var dim int
		var e legacyEntry
		var blob []byte
		if err := rows.Scan(&id, &e.kind, &e.requestID, &e.modelID, &dim, &created, &blob); err != nil {
			return nil, out, fmt.Errorf("entries: %w", err)
		}
		if !e.kind.valid() || e.requestID <= 0 || e.modelID == "" || len(e.modelID) > 0xffff {
			return nil, out, fmt.Errorf("entry %d: kind, request or model: %w", id, keyring.ErrTampered)
		}
		if e.template, err = legacyOpen(g, id, e.kind, e.requestID, e.modelID, dim, blob); err != nil {
			return nil, out, err
		}
		e.created = time.UnixMilli(created).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, out, fmt.Errorf("entries: %w", err)
	}
	return fp[:], out, nil
}

// legacyOpen decrypts a template of an older vault file: 0x01 (version) ||
// nonce (12 bytes) || ciphertext + tag, under the file's data key, with
// its additional data.
func legacyOpen(g cipher.AEAD, id int64, kind Kind, requestID int64, modelID string, dim int, blob []byte) ([]float32, error) {
	if len(blob) > 0 && blob[0] != blobVersion {
		return nil, fmt.Errorf("open entry %d: version %d: %w", id, blob[0], errors.ErrUnsupported)
	}
	if dim <= 0 || len(blob) != blobOverhead+4*dim {
		return nil, fmt.Errorf("open entry %d: %d bytes for dimension %d: %w", id, len(blob), dim, keyring.ErrTampered)
	}
	plain, err := g.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], legacyAAD(id, kind, requestID, modelID, dim))
	if err != nil {
		return nil, fmt.Errorf("open entry %d: %w", id, keyring.ErrTampered)
	}
	defer clear(plain)
	return decode(plain), nil
}

func legacyAAD(id int64, kind Kind, requestID int64, modelID string, dim int) []byte {
	b := slices.Grow([]byte(legacyAADLabel), 1+8+1+len(kind)+8+4+2+len(modelID))
	b = append(b, blobVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(id))
	b = append(b, byte(len(kind)))
	b = append(b, kind...)
	b = binary.BigEndian.AppendUint64(b, uint64(requestID))
	b = binary.BigEndian.AppendUint32(b, uint32(dim))
	b = binary.BigEndian.AppendUint16(b, uint16(len(modelID)))
	return append(b, modelID...)
}

func legacyGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != legacyKeySize {
		return nil, fmt.Errorf("data key of %d bytes: %w", len(key), keyring.ErrTampered)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new aes cipher: %w", err)
	}
	return cipher.NewGCM(b)
}
