package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// keyStore adapts *store.DB to keyring.KeyStore: the store's ErrNotFound
// is the keyring's ErrNoKey.
type keyStore struct{ db *store.DB }

func (k keyStore) SourceKey(ctx context.Context, id int64) ([]byte, error) {
	b, err := k.db.SourceKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errors.Join(keyring.ErrNoKey, err)
	}
	return b, err
}

func (k keyStore) PutSourceKey(ctx context.Context, id int64, w []byte) error {
	return k.db.PutSourceKey(ctx, id, w)
}

func (k keyStore) DeleteSourceKey(ctx context.Context, id int64) error {
	err := k.db.DeleteSourceKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// TestCryptoShreddingOnSQLite seals templates of two sources with data keys
// kept in a real SQLite database, shreds one source and shows that a fresh
// keyring on that database can no longer open its templates, while the
// other source's still open. (Backups: keyring's doc states the rule, and
// its own tests show that a copy of the key table defeats shredding.)
func TestCryptoShreddingOnSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	master, err := keyring.LoadOrCreateMaster(filepath.Join(dir, "keys", "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(master, keyStore{db})
	defer kr.Close()

	var srcs [2]int64
	for i := range srcs {
		srcs[i], err = db.CreateSource(ctx, store.Source{
			Kind: store.KindFolder, Locator: "/photos/" + string(rune('a'+i)), Controller: "Example Archive",
			Purpose: "press archive search", LegalBasis: "legitimate-interests", Art9Condition: "9(2)(e) made public",
			Jurisdiction: "FR", Retention: 24 * time.Hour, CreatedBy: "test",
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tmpl := make([]float32, 512)
	for i := range tmpl {
		tmpl[i] = float32(i%7) / 7
	}
	var blobs [2][]byte
	for i, s := range srcs {
		if blobs[i], err = kr.Seal(ctx, s, int64(100+i), "test-model", tmpl); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	if err := kr.Shred(ctx, srcs[0]); err != nil {
		t.Fatal(err)
	}
	// A fresh keyring on the live store: no cache can help.
	kr2 := keyring.New(master, keyStore{db})
	defer kr2.Close()
	if _, err := kr2.Open(ctx, srcs[0], 100, "test-model", blobs[0]); !errors.Is(err, keyring.ErrShredded) {
		t.Fatalf("shredded source opened: err = %v, want ErrShredded", err)
	}
	got, err := kr2.Open(ctx, srcs[1], 101, "test-model", blobs[1])
	if err != nil || len(got) != 512 || got[1] != tmpl[1] {
		t.Fatalf("other source: %v, %v", got[:2], err)
	}
	// The wrapped key is gone from the database.
	raw, err := db.SourceKey(ctx, srcs[0])
	if !errors.Is(err, store.ErrNotFound) || raw != nil {
		t.Fatalf("key still readable: %v", err)
	}
}
