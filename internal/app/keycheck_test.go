package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/config"
	"gabarit/internal/store/storetest"
)

// TestInstancesShareTheMasterKey: two instances over one PostgreSQL store,
// each with its own data directory. The second, given another master key
// than the first, stops at once (before sealing anything under a key the
// first cannot open); given the same key file, it opens.
func TestInstancesShareTheMasterKey(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.Postgres(t)
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared.key")
	open := func(name, key string) (*Data, error) {
		cfg := config.Config{DataDir: filepath.Join(dir, name), Store: dsn, Index: IndexFlat, MasterKeyFile: key}
		return OpenData(ctx, cfg, false)
	}
	a, err := open("a", shared)
	if err != nil {
		t.Fatalf("instance a: %v", err)
	}
	defer a.Close()
	b, err := open("b", filepath.Join(dir, "other.key"))
	if err == nil {
		b.Close()
		t.Fatal("instance b opened the store with another master key")
	}
	if !strings.Contains(err.Error(), "is not the key the store") {
		t.Errorf("instance b: %v; want it to say the key is not the store's", err)
	}
	c, err := open("c", shared)
	if err != nil {
		t.Fatalf("instance c with the shared key: %v", err)
	}
	c.Close()
}
