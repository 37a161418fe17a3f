package app

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gabarit/internal/config"
	"gabarit/internal/dsr"
	"gabarit/internal/keyring"
	"gabarit/internal/records"
	"gabarit/internal/store"
	"gabarit/internal/vault"
	"gabarit/internal/vindex"
)

// backupFixture is the retire fixture (two sources, twelve sealed faces)
// with an open rights request whose selfie is in the vault, and a
// records.json.
func backupFixture(t *testing.T) (*retireFixture, int64) {
	t.Helper()
	t.Setenv(keyring.EnvMasterKeyFile, "")
	t.Setenv(EnvAuditWitness, "")
	ctx := context.Background()
	f := newRetireFixture(t)
	r, err := dsr.NewRequest(dsr.Erasure, "someone@example.org", time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	req, err := f.d.DB.CreateRightsRequest(ctx, r, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.d.Vault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(ctx, vault.Selfie, req, "m", [][]float32{{0.6, 0.8}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.d.Dir, records.FileName), []byte(`{"controller":{"name":"Example Org"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, req
}

// copyKey puts the master key of the data directory src into the new
// directory dst, as an operator restoring a backup does.
func copyKey(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(src, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "master.key"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestore makes a backup while audited writes keep committing,
// restores it into a new directory holding only the key, and finds the
// same rows in every table, a log that verifies with its witness, the
// restore recorded, templates that open, the vault, and a rebuilt index.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	f, req := backupFixture(t)
	out := filepath.Join(t.TempDir(), "gabarit.backup")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.d.DB.AppendAudit(ctx, nil, store.AuditEntry{Actor: "cli:other", Action: "test.write", Object: fmt.Sprintf("x/%d", i)}); err != nil {
				writeErr = err
				return
			}
		}
	}()
	b, err := Backup(ctx, f.d, out, "cli:test")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if writeErr != nil {
		t.Fatalf("the concurrent writer: %v", writeErr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != b.Bytes {
		t.Errorf("backup file mode %v, %d bytes; want 0600 and %d bytes", fi.Mode().Perm(), fi.Size(), b.Bytes)
	}
	var names []string
	for _, bf := range b.Files {
		names = append(names, bf.Name)
	}
	// The vault is in gabarit.db: vault.db is only the file of older versions, imported when the vault opens.
	if want := []string{"gabarit.db", "records.json"}; !slices.Equal(names, want) {
		t.Errorf("files in the backup %v, want %v (never master.key, the index or audit.head)", names, want)
	}
	if b.Rows["faces"] != 12 || b.Rows["rights_requests"] != 1 || b.Rows["audit"] != b.AuditEntries {
		t.Errorf("rows in the backup %v (audit head %d)", b.Rows, b.AuditEntries)
	}
	// The backup is in the live log, with counts only.
	es, err := f.d.DB.AuditEntries(ctx, b.AuditID, b.AuditID)
	if err != nil || len(es) != 1 {
		t.Fatalf("audit entry %d: %v, %v", b.AuditID, es, err)
	}
	e := es[0]
	if e.Action != "backup" || !strings.Contains(string(e.Detail), `"sha256":"`+b.SHA256+`"`) || strings.Contains(string(e.Detail), "someone@") {
		t.Errorf("audit entry of the backup: %s %s", e.Action, e.Detail)
	}
	if err := f.d.Close(); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	copyKey(t, f.d.Dir, dir)
	res, err := Restore(ctx, out, config.Config{DataDir: dir, Index: IndexFlat}, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	if res.SourcesOpened != 2 || res.AuditEntries != b.AuditEntries || res.Indexed["m"] != 12 || res.AuditID != b.AuditEntries+1 {
		t.Errorf("restore result %+v", res)
	}
	rep, err := store.CheckFile(ctx, filepath.Join(dir, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	want := maps(b.Rows)
	want["audit"]++ // the reset that records the restore
	if !reflect.DeepEqual(rep.Rows, want) {
		t.Errorf("rows after restore:\n got %v\nwant %v", rep.Rows, want)
	}

	d, err := OpenData(ctx, config.Config{DataDir: dir, Index: IndexFlat}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	v, err := VerifyAudit(ctx, d.DB, "")
	if err != nil || !v.OK || v.Entries != b.AuditEntries+1 {
		t.Errorf("audit verify after restore: %+v, %v", v, err)
	}
	last, detail := lastAudit(t, d.DB)
	if last.Action != "audit.witness-reset" || !strings.HasPrefix(fmt.Sprint(detail["reason"]), "restored from backup made ") {
		t.Errorf("last entry after restore: %s %v", last.Action, detail)
	}
	// A template sealed before the backup opens, and the rebuilt index
	// finds its face.
	for id, blob := range f.blobs {
		got, err := d.Keys.Open(ctx, f.faces[id], id, "m", blob)
		if err != nil || !slices.Equal(got, f.vecs[id]) {
			t.Fatalf("template of face %d after restore: %v, %v", id, got, err)
		}
		h, err := d.OpenIndex(ctx, "m", 2)
		if err != nil {
			t.Fatal(err)
		}
		hits, err := h.Index.Search(ctx, got, 100, 0.999) // the fixture's faces may share a template
		h.Close()
		if err != nil || !slices.ContainsFunc(hits, func(h vindex.Hit) bool { return h.ID == id }) {
			t.Errorf("search of face %d in the restored index: %v, %v", id, hits, err)
		}
		break
	}
	vt, err := d.Vault(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if es, err := vt.Entries(ctx, req); err != nil || len(es) != 1 || es[0].Kind != vault.Selfie {
		t.Errorf("vault entries of request %d after restore: %v, %v", req, es, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, records.FileName)); err != nil || !bytes.Contains(b, []byte("Example Org")) {
		t.Errorf("records.json after restore: %q, %v", b, err)
	}
	// Audited actions work: the new witness names the log's last entry.
	if _, err := d.DB.AppendAudit(ctx, nil, store.AuditEntry{Actor: "cli:test", Action: "test.after"}); err != nil {
		t.Errorf("an audited write after restore: %v", err)
	}
}

func maps(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// rewriteBackup copies the backup src to dst through edit, which may change
// each member's bytes.
func rewriteBackup(t *testing.T, src, dst string, edit func(name string, b []byte) []byte) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(in), tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		b = edit(h.Name, b)
		h.Size = int64(len(b))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefuses: a directory that holds data, a missing or wrong key,
// a truncated, damaged or altered backup are refused with a message that
// says what to do, and the directory is left as it was.
func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	f, _ := backupFixture(t)
	tmp := t.TempDir()
	good := filepath.Join(tmp, "good.backup")
	if _, err := Backup(ctx, f.d, good, "cli:test"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.backup", raw[:len(raw)/2])
	garbage := write("garbage.backup", bytes.Repeat([]byte("not a tar "), 400))
	altered := filepath.Join(tmp, "altered.backup")
	rewriteBackup(t, good, altered, func(name string, b []byte) []byte {
		if name == "gabarit.db" {
			b[len(b)-10] ^= 1
		}
		return b
	})
	// The manifest's head changed alone: the store does not end there.
	moved := filepath.Join(tmp, "moved.backup")
	rewriteBackup(t, good, moved, func(name string, b []byte) []byte {
		if name == backupManifestName {
			head := "1 " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 32)
			return bytes.Replace(b, []byte(`"audit_head": "`), []byte(`"audit_head": "`+head+`", "x": "`), 1)
		}
		return b
	})
	// An entry appended to the log in the backup, digests and head
	// recomputed by whoever did it, without the master key: the head's
	// signature tells.
	forged := filepath.Join(tmp, "forged.backup")
	forgeBackup(t, good, forged)

	withKey := func(t *testing.T, dir string) { copyKey(t, f.d.Dir, dir) }
	otherKey := func(t *testing.T, dir string) {
		if _, err := keyring.LoadOrCreateMaster(filepath.Join(dir, "master.key")); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		from    string
		prepare func(t *testing.T, dir string)
		want    string
	}{
		{"directory holds data", good, func(t *testing.T, dir string) {
			withKey(t, dir)
			if err := os.WriteFile(filepath.Join(dir, "gabarit.db"), []byte("live data"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not empty (it holds gabarit.db)"},
		{"no key", good, nil, "no master key at "},
		{"wrong key", good, otherKey, "is not the key of the deployment this backup was made from"},
		{"truncated", truncated, withKey, "truncated.backup is truncated (it ends too early)"},
		{"not a backup", garbage, withKey, "does not start with a gabarit backup manifest"},
		{"digest mismatch", altered, withKey, "gabarit.db does not match its SHA-256 in the manifest"},
		{"manifest head moved", moved, withKey, "the store in it ends at audit entry"},
		{"log and manifest forged", forged, withKey, "its audit log does not end at the entry signed when the backup was made"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tt.prepare != nil {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				tt.prepare(t, dir)
			}
			before := listDir(t, dir)
			_, err := Restore(ctx, tt.from, config.Config{DataDir: dir, Index: IndexFlat}, "cli:test")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Restore = %v, want an error saying %q", err, tt.want)
			}
			if after := listDir(t, dir); !reflect.DeepEqual(after, before) {
				t.Errorf("the directory after a refused restore holds %v, before %v", after, before)
			}
		})
	}
}

// listDir returns the names and sizes of the files in dir; nil when dir
// does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d", e.Name(), fi.Size()))
	}
	return out
}

// forgeBackup copies the backup src to dst with an audit entry appended
// to its store (a valid chain, written without the witness) and its
// manifest rewritten to match: digest, size, rows and head, which it can
// only sign with a key of its own.
func forgeBackup(t *testing.T, src, dst string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "gabarit.db")
	rewriteBackup(t, src, filepath.Join(dir, "copy"), func(name string, b []byte) []byte {
		if name == "gabarit.db" {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return b
	})
	s, err := store.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, nil, store.AuditEntry{Actor: "intruder", Action: "test.forged"}); err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(dir, "forged.db")
	if err := s.Snapshot(ctx, forged); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := os.ReadFile(forged)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := store.CheckFile(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := digestFile(forged)
	if err != nil {
		t.Fatal(err)
	}
	head, err := store.SignAuditHead(rep.Head, func(msg []byte) ([]byte, error) { return bytes.Repeat([]byte{7}, 32), nil })
	if err != nil {
		t.Fatal(err)
	}
	rewriteBackup(t, src, dst, func(name string, b []byte) []byte {
		switch name {
		case "gabarit.db":
			return db
		case backupManifestName:
			var m BackupManifest
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			m.Rows, m.AuditHead = rep.Rows, head
			for i := range m.Files {
				if m.Files[i].Name == "gabarit.db" {
					m.Files[i].Size, m.Files[i].SHA256 = sum.Size, sum.SHA256
				}
			}
			out, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		return b
	})
}
