package keyring

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadMaster checks the master key file reader: it accepts exactly 64
// hex digits with an optional final newline, and the key it returns is
// those digits; anything else is refused with an error that never quotes
// the file's bytes.
func FuzzLoadMaster(f *testing.F) {
	key := bytes.Repeat([]byte{0xa5, 0x3c}, keySize/2)
	good := []byte(hex.EncodeToString(key))
	f.Add(good)
	f.Add(append(append([]byte{}, good...), '\n'))
	f.Add(bytes.ToUpper(good))
	f.Add(append(append([]byte{}, good...), "\n\n"...))
	f.Add(append([]byte("zz"), good[2:]...))
	f.Add(good[:63])
	f.Add([]byte{})
	path := filepath.Join(f.TempDir(), "master.key") // calls in one process run one at a time
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		text := bytes.TrimSuffix(data, []byte("\n"))
		want, herr := hex.DecodeString(string(text))
		valid := herr == nil && len(want) == keySize
		m, err := loadMaster(path)
		if !valid {
			if err == nil {
				t.Fatalf("accepted %q as a master key", data)
			}
			// The message may name the file and sizes, never its content
			// (checked on long runs without spaces, which no message holds).
			msg := strings.ReplaceAll(err.Error(), path, "")
			if len(text) >= 16 && !bytes.ContainsAny(text, " ") && strings.Contains(msg, string(text)) {
				t.Fatalf("error %q quotes the file", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused %q: %v", data, err)
		}
		if !bytes.Equal(m.key[:], want) {
			t.Fatalf("key %x, want %x", m.key, want)
		}
	})
}
