package storetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// OpenFile is Open, and also returns the path of the SQLite file, for tests
// that damage it from outside the store (SwapTemplates).
func OpenFile(t testing.TB, opts ...store.Option) (*store.DB, *keyring.Keyring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, kr := OpenTarget(t, path, opts...)
	return db, kr, path
}

// OpenTarget opens the store at target (a SQLite file or a postgres:// URL,
// see Postgres), with a keyring under a new master key; both are closed at
// cleanup.
func OpenTarget(t testing.TB, target string, opts ...store.Option) (*store.DB, *keyring.Keyring) {
	t.Helper()
	db, err := store.Open(context.Background(), target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	master, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(master, db.KeyStore())
	t.Cleanup(func() { kr.Close() })
	return db, kr
}

// SwapTemplates swaps the sealed templates of faces a and b in the SQLite
// file at path through a connection of its own, as someone editing the
// file would: each template then fails to authenticate
// (keyring.ErrTampered), since it is bound to its face.
func SwapTemplates(t testing.TB, path string, a, b int64) {
	t.Helper()
	SetTemplates(t, path, map[int64][]byte{a: Template(t, path, b), b: Template(t, path, a)})
}

// Template returns the sealed template of face id in the SQLite file at
// path.
func Template(t testing.TB, path string, id int64) []byte {
	t.Helper()
	db := rawOpen(t, path)
	defer db.Close()
	var b []byte
	if err := db.QueryRow(`SELECT template FROM faces WHERE id = ?`, id).Scan(&b); err != nil {
		t.Fatalf("template of face %d: %v", id, err)
	}
	return b
}

// SetTemplates writes sealed templates (by face id) into the SQLite file at
// path, e.g. to restore the ones SwapTemplates damaged.
func SetTemplates(t testing.TB, path string, templates map[int64][]byte) {
	t.Helper()
	db := rawOpen(t, path)
	defer db.Close()
	for id, b := range templates {
		if _, err := db.Exec(`UPDATE faces SET template = ? WHERE id = ?`, b, id); err != nil {
			t.Fatalf("set template of face %d: %v", id, err)
		}
	}
}

func rawOpen(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	return db
}
