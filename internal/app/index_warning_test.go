package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/config"
)

// TestOpenIndexDamagedWarnsOnce checks that a damaged index file is
// reported once to Data.Warnings, with what to do, and rebuilt once: the
// next OpenIndex loads the saved rebuild without a warning.
func TestOpenIndexDamagedWarnsOnce(t *testing.T) {
	ctx := t.Context()
	d, err := OpenData(ctx, config.Config{DataDir: t.TempDir(), Index: IndexFlat}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var warn bytes.Buffer
	d.Warnings = &warn
	path := d.IndexPath("m1")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("GBVSTORE1\n\xff\xff\xff\xffgarbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		h, err := d.OpenIndex(ctx, "m1", 4)
		if err != nil {
			t.Fatal(err)
		}
		if rebuilt := h.Rebuilt; rebuilt != (i == 0) {
			t.Errorf("open %d: rebuilt %v", i+1, rebuilt)
		}
		h.Close()
	}
	msg := warn.String()
	t.Log(msg)
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "rebuilt") || !strings.Contains(msg, "gabarit reindex") {
		t.Errorf("warnings after 3 opens of a damaged index file: %q; want one line saying it was rebuilt and what to do", msg)
	}
	if strings.Contains(msg, "\xff") {
		t.Errorf("warning shows the file's bytes: %q", msg)
	}
}
