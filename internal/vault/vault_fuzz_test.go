package vault

import (
	"errors"
	"path/filepath"
	"testing"

	"gabarit/internal/keyring"
)

// FuzzOpenBlob checks the reader of sealed templates: a blob opens only if
// it is exactly what seal made for that row (same key, id, kind, request,
// model and dimension), and anything else fails with keyring.ErrTampered or
// errors.ErrUnsupported, never a panic.
func FuzzOpenBlob(f *testing.F) {
	dir := f.TempDir()
	keys := make([]*keyring.Keyring, 2) // the master key, and another
	for i := range keys {
		m, err := keyring.LoadOrCreateMaster(filepath.Join(dir, []string{"a.key", "b.key"}[i]))
		if err != nil {
			f.Fatal(err)
		}
		keys[i] = keyring.New(m, nil)
	}
	v := &Vault{keys: keys[0]}
	tmpl := []float32{0.6, -0.8, 0, 0}
	blob, err := v.seal(3, Selfie, 9, "fake-4", tmpl)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob, int64(3), "selfie", int64(9), "fake-4", uint16(4), uint8(0))
	f.Add(blob, int64(4), "selfie", int64(9), "fake-4", uint16(4), uint8(0))
	f.Add(blob, int64(3), "selfie", int64(9), "fake-4", uint16(4), uint8(1))
	f.Add(blob[:len(blob)-1], int64(3), "objection", int64(9), "fake-4", uint16(3), uint8(0))
	f.Add([]byte{}, int64(0), "", int64(0), "", uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, id int64, kind string, requestID int64, modelID string, dim uint16, other uint8) {
		got, err := openBlob(keys[other%2], id, Kind(kind), requestID, modelID, int(dim), data)
		if err != nil {
			if !errors.Is(err, keyring.ErrTampered) && !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrTampered nor ErrUnsupported", err)
			}
			if got != nil {
				t.Fatalf("template returned with error %v", err)
			}
			return
		}
		// Only a blob sealed for the seed's row opens (each fuzzing process
		// seals its own, with its own nonce): the fuzzer cannot forge a tag.
		if other%2 != 0 || id != 3 || kind != string(Selfie) || requestID != 9 || modelID != "fake-4" || dim != 4 || len(data) != len(blob) {
			t.Fatalf("opened a blob for row (%d, %q, %d, %q, %d) with key %d", id, kind, requestID, modelID, dim, other%2)
		}
		if len(got) != len(tmpl) {
			t.Fatalf("template of %d values, want %d", len(got), len(tmpl))
		}
		for i := range got {
			if got[i] != tmpl[i] {
				t.Fatalf("template %v, want %v", got, tmpl)
			}
		}
	})
}
