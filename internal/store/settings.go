package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Setting is one policy value.
type Setting struct {
	Name  string
	Value string
	By    string
	At    time.Time
}

// Setting returns the setting called name, or ErrNotFound when it was
// never set.
func (db *DB) Setting(ctx context.Context, name string) (Setting, error) {
	st := Setting{Name: name}
	var at int64
	err := db.r.QueryRowContext(ctx, `SELECT value, set_by, set_at FROM settings WHERE name = ?`, name).Scan(&st.Value, &st.By, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Setting{}, fmt.Errorf("setting %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Setting{}, fmt.Errorf("setting %s: %w", name, err)
	}
	st.At = fromMS(at)
	return st, nil
}

// SetSetting sets name to value and appends the audit entry "policy.set"
// by by on object "setting/NAME" (detail: the old and new values) in the
// same transaction. Name, value and by are required.
func (db *DB) SetSetting(ctx context.Context, name, value, by string) error {
	if strings.TrimSpace(name) == "" || strings.TrimSpace(value) == "" || strings.TrimSpace(by) == "" {
		return fmt.Errorf("set setting: name, value and author required: %w", ErrInvalid)
	}
	return db.Tx(ctx, func(tx *Tx) error {
		var old sql.NullString
		err := tx.tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("set setting %s: %w", name, err)
		}
		now := tx.now()
		if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO settings (name, value, set_by, set_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, set_by = excluded.set_by, set_at = excluded.set_at`,
			name, value, by, ms(now)); err != nil {
			return fmt.Errorf("set setting %s: %w", name, err)
		}
		detail, err := json.Marshal(struct {
			Old *string `json:"old"`
			New string  `json:"new"`
		}{nullable(old), value})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, AuditEntry{At: now, Actor: by, Action: "policy.set", Object: "setting/" + name, Detail: detail})
		return err
	})
}

// ErrWrongMasterKey is returned by CheckMasterKey when the store's data is
// sealed with another master key than the one given.
var ErrWrongMasterKey = errors.New("the master key is not the one this store's data is sealed with")

// masterKeyCheck is the settings row that holds the master key's check
// value. It is not a policy: it is written once, by the first process to
// open the store with a key, and never shown.
const masterKeyCheck = "master-key-check"

// CheckMasterKey compares check, a value derived from the master key (a
// MAC of a fixed message), with the one the store recorded when it was
// first opened with a key, recording it if none was. Another value fails
// with ErrWrongMasterKey: two instances over one database must seal with
// the same key.
func (db *DB) CheckMasterKey(ctx context.Context, check string) error {
	if check == "" {
		return fmt.Errorf("check master key: empty check value: %w", ErrInvalid)
	}
	var got string
	switch err := db.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, masterKeyCheck).Scan(&got); {
	case err == nil && got == check:
		return nil
	case err == nil:
		return ErrWrongMasterKey
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("check master key: %w", err)
	}
	return db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `
INSERT INTO settings (name, value, set_by, set_at) VALUES (?, ?, 'gabarit', ?) ON CONFLICT (name) DO NOTHING`,
			masterKeyCheck, check, ms(tx.now())); err != nil {
			return fmt.Errorf("check master key: %w", err)
		}
		var got string
		if err := tx.tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, masterKeyCheck).Scan(&got); err != nil {
			return fmt.Errorf("check master key: %w", err)
		}
		if got != check {
			return ErrWrongMasterKey
		}
		return nil
	})
}

func nullable(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}
