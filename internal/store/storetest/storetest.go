// Package storetest gives tests a real store: an SQLite file and a keyring
// with its own master key in a temporary directory, and declared sources.
// It also holds the store conformance suite (Run), which every dialect of
// the store passes, and Postgres, a fresh PostgreSQL database for a test.
package storetest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// Open returns a store on a new SQLite file and a keyring whose master key
// is a new 0600 file beside it; both are closed when the test ends.
func Open(t testing.TB, opts ...store.Option) (*store.DB, *keyring.Keyring) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "gabarit.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	master, err := keyring.LoadOrCreateMaster(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(master, db.KeyStore())
	t.Cleanup(func() { kr.Close() })
	return db, kr
}

// Source declares an active folder source with the given legal basis and
// retention and returns its id.
func Source(t testing.TB, db *store.DB, basis store.LegalBasis, retention time.Duration) int64 {
	t.Helper()
	id, err := db.CreateSource(context.Background(), store.Source{Kind: store.KindFolder,
		Locator: fmt.Sprintf("/photos/%d", time.Now().UnixNano()), Controller: "Example Controller",
		Purpose: "tests", LegalBasis: basis, Art9Condition: "9(2)(a) explicit consent of the data subject",
		Jurisdiction: "FR", Retention: retention, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
