//go:build npm

package setup

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestFetchCatalogFromNPM fetches the CPU runtime, the default pack and the
// test photos with the real npm, into $GABARIT_CACHE when it is set (so
// that `GABARIT_CACHE=dir go test -tags npm` installs them there) and into
// a temporary directory otherwise. It needs network access to the npm registry.
func TestFetchCatalogFromNPM(t *testing.T) {
	root := t.TempDir()
	if os.Getenv("GABARIT_CACHE") != "" {
		root = DefaultDirs().Root
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, p := range []Package{CPURuntime(), DefaultPack(), TestPhotos()} {
		if err := Fetch(ctx, p, root, t.Logf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(Dirs{Root: root}.ORTLibrary()); err != nil {
		t.Error(err)
	}
}
