//go:build cgo && onnx

package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/config"
	_ "gabarit/internal/store" // the sqlite driver
)

// TestAuditEvidenceSurvivesUse: the last audit entries and the witness
// deleted, as an intruder would; ordinary use afterwards neither succeeds
// nor rewrites the witness, so audit verify keeps saying so until an
// administrator resets it, and the reset is recorded. A head copied off
// the machine before shows the removal too.
func TestAuditEvidenceSurvivesUse(t *testing.T) {
	ctx := context.Background()
	data, photos := t.TempDir(), t.TempDir()
	if out, stderr, err := cli(t, data, "user", "add", "--roles", "admin", actor()); err != nil {
		t.Fatalf("user add: %q %q %v", out, stderr, err)
	}
	addSource(t, data, photos)
	addSource(t, data, photos)
	head, _, err := cli(t, data, "audit", "head")
	if err != nil || len(strings.Fields(head)) != 3 || strings.HasSuffix(strings.TrimSpace(head), " -") {
		t.Fatalf("audit head = %q, %v", head, err)
	}

	// The intruder: the last entry and audit.head go.
	db, err := sql.Open("sqlite", filepath.Join(data, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`DROP TRIGGER IF EXISTS audit_no_delete`, `DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)`} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if err := os.Remove(filepath.Join(data, "audit.head")); err != nil {
		t.Fatal(err)
	}

	// Ordinary use: refused, and the witness is not recreated.
	_, stderr, err := cli(t, data, "source", "add", "--kind", "folder", "--path", photos, "--controller", "Example Org",
		"--purpose", "tests", "--legal-basis", "consent", "--art9", "9(2)(a)", "--jurisdiction", "FR", "--retention", "30d")
	if exitCode(err) != 1 || !strings.Contains(err.Error()+stderr, "audited actions are stopped") {
		t.Errorf("an audited command after the intrusion: %v %s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "audit.head")); err == nil {
		t.Error("ordinary use recreated the witness")
	}
	for range 2 {
		_, stderr, err = cli(t, data, "audit", "verify")
		if exitCode(err) != 1 || !strings.Contains(stderr, "audit.head is missing") {
			t.Errorf("audit verify after the intrusion: %v %q", err, stderr)
		}
	}
	_, stderr, err = cli(t, data, "audit", "verify", "--head", strings.TrimSpace(head))
	if exitCode(err) != 1 {
		t.Errorf("audit verify --head: %v %q", err, stderr)
	}

	// The administrator resets it: recorded, and the copied head still
	// shows the removed entry.
	if _, _, err := cli(t, data, "audit", "witness-reset", "--confirm"); exitCode(err) != 2 {
		t.Errorf("witness-reset without a reason: %v", err)
	}
	if out, stderr, err := cli(t, data, "audit", "witness-reset", "--reason", "intrusion checked", "--confirm"); err != nil {
		t.Fatalf("witness-reset: %q %q %v", out, stderr, err)
	}
	if out, stderr, err := cli(t, data, "audit", "verify"); err != nil {
		t.Errorf("audit verify after the reset: %q %q %v", out, stderr, err)
	}
	out, _, err := cli(t, data, "audit", "list", "--json")
	if err != nil || !strings.Contains(out, `"action":"audit.witness-reset"`) || !strings.Contains(out, `missing`) {
		t.Errorf("the reset is not in the log: %v\n%s", err, out)
	}
	_, stderr, err = cli(t, data, "audit", "verify", "--head", strings.TrimSpace(head))
	if exitCode(err) != 1 || !strings.Contains(stderr, "differs from the one the head copied off the machine names") {
		t.Errorf("audit verify --head after the reset: %v %q", err, stderr)
	}
	addSource(t, data, photos)
}

// TestMasterKeyNotRecreated: a master key deleted from a data directory
// that holds sealed data is never silently replaced.
func TestMasterKeyNotRecreated(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	id := addSource(t, data, t.TempDir())
	d, err := app.OpenData(ctx, config.Config{DataDir: data, Index: app.IndexFlat}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Keys.EnsureKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	d.Close()
	key, err := os.ReadFile(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(data, "master.key")); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := cli(t, data, "source", "list")
	if exitCode(err) != 1 || !strings.Contains(err.Error()+stderr, "master key file") || !strings.Contains(err.Error()+stderr, "restore the key from your backup") {
		t.Errorf("a command without the master key: %v %q", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); err == nil {
		t.Fatal("the master key was recreated")
	}
	if err := os.WriteFile(filepath.Join(data, "master.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := cli(t, data, "audit", "verify"); err != nil {
		t.Errorf("with the key restored: %v %q", err, stderr)
	}
}
