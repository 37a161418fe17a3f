package keyring

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const hexKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestLoadOrCreateMasterCreates(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "master.key")
	m, err := LoadOrCreateMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode(); got != 0o600 {
		t.Errorf("key file mode = %v, want -rw-------", got)
	}
	if fi.Size() != 2*keySize+1 {
		t.Errorf("key file size = %d, want %d", fi.Size(), 2*keySize+1)
	}
	for _, dir := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b")} {
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := di.Mode().Perm(); got != 0o700 {
			t.Errorf("%s mode = %04o, want 0700", dir, got)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file (temporary file left behind?)", len(entries))
	}
	if m.key == [keySize]byte{} {
		t.Error("new master key is all zeros")
	}

	again, err := LoadOrCreateMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.key != m.key {
		t.Error("second LoadOrCreateMaster returned a different key")
	}
}

// TestLoadOrCreateMasterConcurrent checks that processes racing to create
// the file all end with the one key that was published.
func TestLoadOrCreateMasterConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "master.key")
	const n = 8
	keys := make([][keySize]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := LoadOrCreateMaster(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = m.key
		})
	}
	wg.Wait()
	for i := range keys {
		if keys[i] != keys[0] {
			t.Fatalf("goroutine %d got a different master key", i)
		}
	}
}

func TestLoadOrCreateMasterRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		mode    fs.FileMode
		wantErr string // substring of the error; "" means success
	}{
		{name: "hex with newline", content: hexKey + "\n", mode: 0o600},
		{name: "hex without newline", content: hexKey, mode: 0o600},
		{name: "uppercase hex", content: strings.ToUpper(hexKey), mode: 0o600},
		{name: "read only", content: hexKey + "\n", mode: 0o400},
		{name: "world readable", content: hexKey + "\n", mode: 0o644, wantErr: "has mode 0644"},
		{name: "group readable", content: hexKey + "\n", mode: 0o640, wantErr: "has mode 0640"},
		{name: "other writable", content: hexKey + "\n", mode: 0o602, wantErr: "has mode 0602"},
		{name: "empty", content: "", mode: 0o600, wantErr: "got 0 bytes"},
		{name: "16-byte key", content: hexKey[:32] + "\n", mode: 0o600, wantErr: "want 64 hex digits"},
		{name: "raw 32 bytes", content: strings.Repeat("\x01", 32), mode: 0o600, wantErr: "want 64 hex digits"},
		{name: "too long", content: hexKey + "00\n", mode: 0o600, wantErr: "want 64 hex digits"},
		{name: "two newlines", content: hexKey + "\n\n", mode: 0o600, wantErr: "want 64 hex digits"},
		{name: "trailing space", content: hexKey + " ", mode: 0o600, wantErr: "want 64 hex digits"},
		{name: "not hex", content: "zz" + hexKey[2:] + "\n", mode: 0o600, wantErr: "non-hex byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // WriteFile's mode passes through the umask
				t.Fatal(err)
			}
			m, err := LoadOrCreateMaster(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadOrCreateMaster: %v", err)
				}
				want, err := hex.DecodeString(hexKey)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(m.key[:], want) {
					t.Error("loaded key differs from the file")
				}
				return
			}
			if err == nil {
				t.Fatal("LoadOrCreateMaster accepted the file")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) || !strings.Contains(msg, path) {
				t.Errorf("error %q, want it to name %s and contain %q", msg, path, tt.wantErr)
			}
			if len(tt.content) >= 16 && strings.Contains(msg, strings.TrimSpace(tt.content)[:16]) {
				t.Errorf("error %q repeats key material", msg)
			}
			// A refused file is left alone, never replaced.
			got, rerr := os.ReadFile(path)
			if rerr != nil || !bytes.Equal(got, []byte(tt.content)) {
				t.Errorf("refused key file was modified (read error %v)", rerr)
			}
		})
	}
}

func TestLoadOrCreateMasterNotRegular(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateMaster(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("LoadOrCreateMaster(directory) = %v, want a not-a-regular-file error", err)
	}
}

func TestMasterFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "master.key")
	t.Setenv(EnvMasterKeyFile, path)
	m, err := MasterFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := LoadOrCreateMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.key != m2.key {
		t.Error("MasterFromEnv and LoadOrCreateMaster disagree")
	}
	t.Setenv(EnvMasterKeyFile, "")
	if _, err := MasterFromEnv(); err == nil || !strings.Contains(err.Error(), EnvMasterKeyFile) {
		t.Errorf("MasterFromEnv with the variable unset = %v, want an error naming it", err)
	}
}

func TestMasterDestroy(t *testing.T) {
	t.Parallel()
	m := newTestMaster(t)
	kr := New(m, newFakeStore())
	m.Destroy()
	m.Destroy() // idempotent
	if m.key != [keySize]byte{} {
		t.Error("Destroy left key bytes")
	}
	if _, err := kr.Seal(t.Context(), 1, 1, "m", []float32{1}); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Seal after Destroy = %v, want ErrDestroyed", err)
	}
}

// newTestMaster returns a Master with a new random key in a temporary file.
func newTestMaster(t testing.TB) *Master {
	t.Helper()
	m, err := LoadOrCreateMaster(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
