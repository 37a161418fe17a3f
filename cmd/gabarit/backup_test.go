package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/keyring"
)

// TestBackupRestoreCommands: gabarit backup writes a file restore takes
// back into a new directory once the master key is put there (and not
// before); the restored log verifies; a second restore into the same
// directory is refused; help and completion know both commands.
func TestBackupRestoreCommands(t *testing.T) {
	t.Setenv(keyring.EnvMasterKeyFile, "")
	t.Setenv(app.EnvAuditWitness, "")
	ctx := context.Background()
	data, tmp := t.TempDir(), t.TempDir()
	gabarit := func(args ...string) (string, string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(ctx, args, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	if _, stderr, err := gabarit("user", "add", "--roles", "admin", actor(), "--data", data); err != nil {
		t.Fatal(err, stderr)
	}
	file := filepath.Join(tmp, "b.tar")
	out, stderr, err := gabarit("backup", "--data", data, "--out", file, "--json")
	if err != nil {
		t.Fatal(err, stderr)
	}
	var b app.BackupResult
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.Path != file || b.Rows["users"] != 1 || b.AuditEntries == 0 {
		t.Fatalf("backup --json = %s (%v)", out, err)
	}
	if _, stderr, err := gabarit("backup", "--data", data); !isExit(err, 2) || !strings.Contains(stderr, "--out FILE is required") {
		t.Errorf("backup without --out: %v %q", err, stderr)
	}

	restored := filepath.Join(tmp, "restored")
	if _, _, err := gabarit("restore", "--from", file, "--data", restored); err == nil || !strings.Contains(err.Error(), "no master key at "+filepath.Join(restored, "master.key")) {
		t.Errorf("restore without the key: %v", err)
	}
	if _, err := os.Stat(restored); !os.IsNotExist(err) {
		t.Errorf("a refused restore left %s: %v", restored, err)
	}
	key, err := os.ReadFile(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, "master.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = gabarit("restore", "--from", file, "--data", restored)
	if err != nil || !strings.Contains(out, "restored "+restored) || !strings.Contains(out, "1 audit entry,") {
		t.Fatalf("restore: %v %q %q", err, out, stderr)
	}
	if out, stderr, err := gabarit("audit", "verify", "--data", restored); err != nil || !strings.Contains(out, "audit log intact") {
		t.Errorf("audit verify after restore: %v %q %q", err, out, stderr)
	}
	if _, _, err := gabarit("restore", "--from", file, "--data", restored); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("a second restore into the same directory: %v", err)
	}

	for _, cmd := range []string{"backup", "restore"} {
		if out, _, err := gabarit("help", cmd); err != nil || !strings.Contains(out, "usage: gabarit "+cmd) {
			t.Errorf("help %s: %v %q", cmd, err, out)
		}
	}
	if out, _, err := gabarit("completion", "bash"); err != nil || !strings.Contains(out, "backup") || !strings.Contains(out, "restore") {
		t.Errorf("completion does not know backup and restore: %v", err)
	}
}
