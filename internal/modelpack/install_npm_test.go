//go:build npm

package modelpack

import (
	"context"
	"os"
	"testing"
	"time"

	"gabarit/internal/setup"
)

// TestInstallDefaultFromNPM installs the default pack with the real npm,
// into $GABARIT_CACHE when it is set and a temporary directory otherwise.
// It needs network access to the npm registry.
func TestInstallDefaultFromNPM(t *testing.T) {
	dir := t.TempDir()
	if os.Getenv("GABARIT_CACHE") != "" {
		dir = setup.DefaultDirs().Pack("default")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := InstallDefault(ctx, dir, t.Logf); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Embedder.SHA256 != defaultBatchEmbedderSHA256 {
		t.Errorf("embedder sha256 %s, want %s", m.Embedder.SHA256, defaultBatchEmbedderSHA256)
	}
}
