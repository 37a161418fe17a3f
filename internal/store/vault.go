package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The vault's rows (internal/vault): the templates that serve data
// subjects' rights, each sealed by the caller, never in clear here. Every
// write bumps the vault's change counter (VaultVersion) in its own
// transaction, so that every process holding decrypted entries in memory
// can tell, with one read, whether they are still what is committed.

// Vault entry kinds, as the vault names them.
const (
	VaultObjection   = "objection"
	VaultRestriction = "restriction"
	VaultSelfie      = "selfie"
)

// VaultEntry is one entry of the vault, without its template.
type VaultEntry struct {
	ID        int64 // never reused: sealed templates are bound to it
	Kind      string
	RequestID int64 // the rights request the template came with
	ModelID   string
	Dim       int
	Created   time.Time
}

// VaultSealed is a vault entry and its sealed template.
type VaultSealed struct {
	VaultEntry
	Sealed []byte
}

// VaultNew describes an entry to add: the store gives it its id and its
// creation time (zero Created means now, by the store clock).
type VaultNew struct {
	Kind      string
	RequestID int64
	ModelID   string
	Dim       int
	Created   time.Time
}

// VaultSeal seals the template of the i-th new entry, which the store has
// just numbered id, inside the transaction that adds it.
type VaultSeal func(i int, id int64) ([]byte, error)

func validVaultKind(k string) bool {
	return k == VaultObjection || k == VaultRestriction || k == VaultSelfie
}

// AddVaultEntries adds entries, sealed by seal, and bumps the change
// counter, in one transaction; it returns their ids in order. A non-nil
// audit is appended in the same transaction. An invalid
// entry fails with ErrInvalid, and an error of seal rolls everything back.
func (db *DB) AddVaultEntries(ctx context.Context, entries []VaultNew, seal VaultSeal, audit *AuditEntry) ([]int64, error) {
	if len(entries) == 0 || seal == nil {
		return nil, fmt.Errorf("add vault entries: none given: %w", ErrInvalid)
	}
	var ids []int64
	err := db.Tx(ctx, func(tx *Tx) error {
		var err error
		if ids, err = tx.addVaultEntries(ctx, entries, seal); err != nil {
			return err
		}
		return tx.vaultAudit(ctx, audit)
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func (tx *Tx) addVaultEntries(ctx context.Context, entries []VaultNew, seal VaultSeal) ([]int64, error) {
	ids := make([]int64, len(entries))
	now := tx.now()
	for i, e := range entries {
		if !validVaultKind(e.Kind) || e.RequestID <= 0 || e.ModelID == "" || e.Dim <= 0 {
			return nil, fmt.Errorf("add vault entry %d: kind, request, model or dimension: %w", i, ErrInvalid)
		}
		created := e.Created
		if created.IsZero() {
			created = now
		}
		// The template is sealed for the row's id, known once inserted.
		if err := tx.tx.QueryRowContext(ctx, `
INSERT INTO vault_entries (kind, request_id, model_id, dim, created_at, template) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			e.Kind, e.RequestID, e.ModelID, e.Dim, ms(created), []byte{}).Scan(&ids[i]); err != nil {
			return nil, fmt.Errorf("add vault entry: %w", err)
		}
		sealed, err := seal(i, ids[i])
		if err != nil {
			return nil, err
		}
		if len(sealed) == 0 {
			return nil, fmt.Errorf("add vault entry %d: empty sealed template: %w", ids[i], ErrInvalid)
		}
		if _, err := tx.tx.ExecContext(ctx, `UPDATE vault_entries SET template = ? WHERE id = ?`, sealed, ids[i]); err != nil {
			return nil, fmt.Errorf("add vault entry %d: %w", ids[i], err)
		}
	}
	return ids, tx.bumpVault(ctx)
}

// bumpVault moves the vault's change counter.
func (tx *Tx) bumpVault(ctx context.Context) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE vault_state SET version = version + 1 WHERE id = 1`)
	if err != nil {
		return fmt.Errorf("vault change counter: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("vault change counter: %d rows, %v: the vault_state row is missing", n, err)
	}
	return nil
}

func (tx *Tx) vaultAudit(ctx context.Context, e *AuditEntry) error {
	if e == nil {
		return nil
	}
	_, err := tx.AppendAudit(ctx, *e)
	return err
}

// RemoveVaultEntries deletes the entries of kind of rights request
// requestID and bumps the change counter in one transaction, and returns
// how many there were. With audit, the entry it returns for that number is
// appended in the same transaction (nil appends none). On SQLite the
// deleted rows are overwritten (secure_delete) and the write-ahead log is
// then checkpointed, so that no copy of the templates lingers on disk.
func (db *DB) RemoveVaultEntries(ctx context.Context, requestID int64, kind string, audit func(n int) *AuditEntry) (int, error) {
	if !validVaultKind(kind) {
		return 0, fmt.Errorf("remove vault entries: kind %q: %w", kind, ErrInvalid)
	}
	var n int64
	err := db.Tx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `DELETE FROM vault_entries WHERE request_id = ? AND kind = ?`, requestID, kind)
		if err != nil {
			return fmt.Errorf("remove %s vault entries of request %d: %w", kind, requestID, err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("remove %s vault entries of request %d: %w", kind, requestID, err)
		}
		if err := tx.bumpVault(ctx); err != nil {
			return err
		}
		if audit == nil {
			return nil
		}
		return tx.vaultAudit(ctx, audit(int(n)))
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		if err := db.Checkpoint(ctx); err != nil {
			return int(n), fmt.Errorf("remove %s vault entries of request %d: deleted, but %w", kind, requestID, err)
		}
	}
	return int(n), nil
}

// VaultVersion returns the vault's change counter: it moves with every
// committed write to the vault's entries, by any process.
func (db *DB) VaultVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.r.QueryRowContext(ctx, `SELECT version FROM vault_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("vault change counter: %w", err)
	}
	return v, nil
}

// VaultEntries returns the entries of rights request requestID, without
// their templates, in the order they were added.
func (db *DB) VaultEntries(ctx context.Context, requestID int64) ([]VaultEntry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, kind, request_id, model_id, dim, created_at FROM vault_entries
WHERE request_id = ? ORDER BY id`, requestID)
	if err != nil {
		return nil, fmt.Errorf("vault entries of request %d: %w", requestID, err)
	}
	defer rows.Close()
	var out []VaultEntry
	for rows.Next() {
		var e VaultEntry
		var created int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.RequestID, &e.ModelID, &e.Dim, &created); err != nil {
			return nil, fmt.Errorf("vault entries of request %d: %w", requestID, err)
		}
		e.Created = fromMS(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vault entries of request %d: %w", requestID, err)
	}
	return out, nil
}

// VaultSealedOf returns the sealed entries of the given kinds, of rights
// request requestID (or of every request when requestID is 0), in the
// order they were added.
func (db *DB) VaultSealedOf(ctx context.Context, requestID int64, kinds ...string) ([]VaultSealed, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(kinds)+1)
	for _, k := range kinds {
		if !validVaultKind(k) {
			return nil, fmt.Errorf("sealed vault entries: kind %q: %w", k, ErrInvalid)
		}
		args = append(args, k)
	}
	q := `SELECT id, kind, request_id, model_id, dim, created_at, template FROM vault_entries
WHERE kind IN (?` + strings.Repeat(", ?", len(kinds)-1) + `)`
	if requestID != 0 {
		q += ` AND request_id = ?`
		args = append(args, requestID)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sealed vault entries: %w", err)
	}
	defer rows.Close()
	var out []VaultSealed
	for rows.Next() {
		var e VaultSealed
		var created int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.RequestID, &e.ModelID, &e.Dim, &created, &e.Sealed); err != nil {
			return nil, fmt.Errorf("sealed vault entries: %w", err)
		}
		e.Created = fromMS(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sealed vault entries: %w", err)
	}
	return out, nil
}

// VaultRequests returns the ids of the rights requests that hold vault
// entries of kind, in order.
func (db *DB) VaultRequests(ctx context.Context, kind string) ([]int64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT DISTINCT request_id FROM vault_entries WHERE kind = ? ORDER BY request_id`, kind)
	if err != nil {
		return nil, fmt.Errorf("requests with %s vault entries: %w", kind, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("requests with %s vault entries: %w", kind, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("requests with %s vault entries: %w", kind, err)
	}
	return ids, nil
}

// VaultCounts returns the number of vault entries of each kind that has
// any.
func (db *DB) VaultCounts(ctx context.Context) (map[string]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT kind, count(*) FROM vault_entries GROUP BY kind`)
	if err != nil {
		return nil, fmt.Errorf("count vault entries: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count vault entries: %w", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count vault entries: %w", err)
	}
	return out, nil
}

// VaultImported reports whether the vault file of an older gabarit
// identified by fingerprint was imported (ImportVaultEntries).
func (db *DB) VaultImported(ctx context.Context, fingerprint []byte) (bool, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT 1 FROM vault_imports WHERE fingerprint = ?`, fingerprint).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vault imports: %w", err)
	}
	return true, nil
}

// ImportVaultEntries adds the entries of the vault file of an older
// gabarit, identified by fingerprint, sealed by seal, in one transaction
// that also records the fingerprint and bumps the change counter: either
// all of them are imported, once, or none. It returns false, adding
// nothing, when that file was already imported (by this process or
// another). A file without entries is recorded all the same.
func (db *DB) ImportVaultEntries(ctx context.Context, fingerprint []byte, entries []VaultNew, seal VaultSeal) (bool, error) {
	if len(fingerprint) == 0 {
		return false, fmt.Errorf("import vault entries: fingerprint required: %w", ErrInvalid)
	}
	imported := false
	err := db.Tx(ctx, func(tx *Tx) error {
		// First, so that a second importer of the same file waits here
		// (PostgreSQL: the unique key) or finds it done (SQLite: the writer).
		res, err := tx.tx.ExecContext(ctx, `INSERT INTO vault_imports (fingerprint, imported_at, entries) VALUES (?, ?, ?)
ON CONFLICT (fingerprint) DO NOTHING`, fingerprint, ms(tx.now()), len(entries))
		if err != nil {
			return fmt.Errorf("import vault entries: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // already imported
		}
		if len(entries) > 0 {
			if _, err := tx.addVaultEntries(ctx, entries, seal); err != nil {
				return fmt.Errorf("import vault entries: %w", err)
			}
		}
		imported = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return imported, nil
}
