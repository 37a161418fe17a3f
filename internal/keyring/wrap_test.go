package keyring

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

func TestWrapUnwrap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m, err := LoadOrCreateMaster(filepath.Join(dir, "a.key"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateMaster(filepath.Join(dir, "b.key"))
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, keySize)
	w, err := m.Wrap("vault", key)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != wrappedSize || bytes.Contains(w, key[:8]) {
		t.Fatalf("wrapped key: %d bytes (want %d), or holds the key in clear", len(w), wrappedSize)
	}
	got, err := m.Unwrap("vault", w)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}
	w2, _ := m.Wrap("vault", key)
	if bytes.Equal(w, w2) {
		t.Error("two wraps of one key are equal: nonce not random")
	}

	flipped := bytes.Clone(w)
	flipped[20] ^= 1
	var sourceKey [keySize]byte
	tests := []struct {
		name    string
		m       *Master
		purpose string
		wrapped []byte
		want    error
	}{
		{"another purpose", m, "vaulT", w, ErrTampered},
		{"another master key", other, "vault", w, ErrTampered},
		{"altered", m, "vault", flipped, ErrTampered},
		{"truncated", m, "vault", w[:len(w)-1], ErrTampered},
		{"unknown version", m, "vault", append([]byte{2}, w[1:]...), errors.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := tt.m.Unwrap(tt.purpose, tt.wrapped); !errors.Is(err, tt.want) || k != nil {
				t.Errorf("Unwrap = %x, %v; want %v", k, err, tt.want)
			}
		})
	}

	// A key wrapped for a purpose is no source key, and the reverse.
	if err := m.unwrap(0, w, &sourceKey); !errors.Is(err, ErrTampered) {
		t.Errorf("purpose-wrapped key unwrapped as a source key: %v", err)
	}
	ws, err := m.wrap(0, &sourceKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unwrap("\x00\x00\x00\x00\x00\x00\x00\x00", ws); !errors.Is(err, ErrTampered) {
		t.Errorf("source key unwrapped for a purpose: %v", err)
	}

	if _, err := m.Wrap("", key); err == nil {
		t.Error("Wrap without a purpose succeeded")
	}
	if _, err := m.Wrap("vault", key[:16]); err == nil {
		t.Error("Wrap of a 16-byte key succeeded")
	}
	m.Destroy()
	if _, err := m.Unwrap("vault", w); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Unwrap after Destroy: %v", err)
	}
	if _, err := m.Wrap("vault", key); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Wrap after Destroy: %v", err)
	}
}
