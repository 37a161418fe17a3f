package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// TestCryptoShreddingOnSQLite stores faces of two sources in a real SQLite
// database with templates sealed under their face ids (AddImageSealed and
// the keyring), reads them back, shreds one source and shows that a fresh
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
	kr := keyring.New(master, db.KeyStore())
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
	// Faces are stored with templates sealed under the ids they receive.
	// The data keys are made first: inside the store's single-writer
	// transaction the keyring could not write a new key.
	var faceIDs [2]int64
	for i, s := range srcs {
		if err := kr.EnsureKey(ctx, s); err != nil {
			t.Fatal(err)
		}
		img := store.Image{SourceID: s, SHA256: sha256.Sum256([]byte{byte(i)}), Locator: "p.jpg", SizeBytes: 1, Width: 10, Height: 10}
		f := store.Face{Box: face.Box{W: 5, H: 5}, Score: 0.9, Quality: 0.5, ModelID: "test-model", Dim: 512}
		_, ids, err := db.AddImageSealed(ctx, img, []store.Face{f}, func(id int64, f store.Face) ([]byte, error) {
			return kr.Seal(ctx, s, id, f.ModelID, tmpl)
		})
		if err != nil {
			t.Fatal(err)
		}
		faceIDs[i] = ids[0]
	}
	blobs := map[int64][]byte{}
	err = db.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, b []byte) error {
		blobs[faceID] = append([]byte(nil), b...)
		return nil
	})
	if err != nil || len(blobs) != 2 {
		t.Fatalf("templates: %v, %d", err, len(blobs))
	}
	for i, s := range srcs {
		got, err := kr.Open(ctx, s, faceIDs[i], "test-model", blobs[faceIDs[i]])
		if err != nil || got[3] != tmpl[3] {
			t.Fatalf("source %d: stored template does not open: %v", s, err)
		}
		// Bound to its face: the same ciphertext under another face id fails.
		if _, err := kr.Open(ctx, s, faceIDs[i]+100, "test-model", blobs[faceIDs[i]]); !errors.Is(err, keyring.ErrTampered) {
			t.Fatalf("template opened under another face id: %v", err)
		}
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	if err := kr.Shred(ctx, srcs[0]); err != nil {
		t.Fatal(err)
	}
	// A fresh keyring on the live store: no cache can help.
	kr2 := keyring.New(master, db.KeyStore())
	defer kr2.Close()
	if _, err := kr2.Open(ctx, srcs[0], faceIDs[0], "test-model", blobs[faceIDs[0]]); !errors.Is(err, keyring.ErrShredded) {
		t.Fatalf("shredded source opened: err = %v, want ErrShredded", err)
	}
	got, err := kr2.Open(ctx, srcs[1], faceIDs[1], "test-model", blobs[faceIDs[1]])
	if err != nil || len(got) != 512 || got[1] != tmpl[1] {
		t.Fatalf("other source: %v, %v", got[:2], err)
	}
	// The wrapped key is gone from the database.
	raw, err := db.SourceKey(ctx, srcs[0])
	if !errors.Is(err, store.ErrNotFound) || raw != nil {
		t.Fatalf("key still readable: %v", err)
	}
}
