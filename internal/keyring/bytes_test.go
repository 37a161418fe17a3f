package keyring

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestSealBytesRoundTrip(t *testing.T) {
	t.Parallel()
	m := newTestMaster(t)
	ks := newFakeStore()
	kr := newTestKeyring(t, m, ks)
	binding := sha256.Sum256([]byte("probe"))
	for _, plain := range [][]byte{nil, {0}, bytes.Repeat([]byte("crop "), 5000)} {
		blob, err := kr.SealBytes(PurposeSearchRecord, binding[:], plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(blob) != 1+12+len(plain)+16 || blob[0] != 1 {
			t.Errorf("sealed %d bytes into %d, version %d", len(plain), len(blob), blob[0])
		}
		if len(plain) > 8 && bytes.Contains(blob, plain[:8]) {
			t.Error("the sealed bytes hold the plaintext")
		}
		got, err := kr.OpenBytes(PurposeSearchRecord, binding[:], blob)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("OpenBytes = %d bytes, %v; want the %d sealed", len(got), err, len(plain))
		}
		// Another keyring on the same master opens it: nothing is stored.
		other := newTestKeyring(t, m, newFakeStore())
		if got, err := other.OpenBytes(PurposeSearchRecord, binding[:], blob); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("OpenBytes by another keyring: %v", err)
		}
	}
	if ks.putCount() != 0 {
		t.Errorf("sealing bytes stored %d keys, want none (derived keys)", ks.putCount())
	}
	a, _ := kr.SealBytes(PurposeSearchRecord, binding[:], []byte("same"))
	b, _ := kr.SealBytes(PurposeSearchRecord, binding[:], []byte("same"))
	if bytes.Equal(a, b) {
		t.Error("two seals of the same bytes are equal: the nonce is not random")
	}
}

func TestOpenBytesRejects(t *testing.T) {
	t.Parallel()
	m := newTestMaster(t)
	kr := newTestKeyring(t, m, newFakeStore())
	binding := sha256.Sum256([]byte("probe"))
	blob, err := kr.SealBytes(PurposeSearchRecord, binding[:], []byte("a face crop"))
	if err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256([]byte("another probe"))
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	version := bytes.Clone(blob)
	version[0] = 2
	tests := []struct {
		name     string
		kr       *Keyring
		purpose  string
		binding  []byte
		blob     []byte
		wantErr  error
		wantText string
	}{
		{"other binding", kr, PurposeSearchRecord, other[:], blob, ErrTampered, ""},
		{"other purpose", kr, "vault", binding[:], blob, ErrTampered, ""},
		{"altered", kr, PurposeSearchRecord, binding[:], flipped, ErrTampered, ""},
		{"truncated", kr, PurposeSearchRecord, binding[:], blob[:20], ErrTampered, ""},
		{"empty", kr, PurposeSearchRecord, binding[:], nil, ErrTampered, ""},
		{"unknown version", kr, PurposeSearchRecord, binding[:], version, errors.ErrUnsupported, ""},
		{"other master key", newTestKeyring(t, newTestMaster(t), newFakeStore()), PurposeSearchRecord, binding[:], blob, ErrTampered, ""},
		{"no purpose", kr, "", binding[:], blob, nil, "purpose is required"},
		{"NUL in purpose", kr, "search\x00record", binding[:], blob, nil, "purpose is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.kr.OpenBytes(tt.purpose, tt.binding, tt.blob)
			if err == nil {
				t.Fatalf("OpenBytes = %q, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("OpenBytes err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantText != "" && !bytes.Contains([]byte(err.Error()), []byte(tt.wantText)) {
				t.Errorf("OpenBytes err = %v, want it to say %q", err, tt.wantText)
			}
		})
	}
	if _, err := kr.SealBytes("", binding[:], []byte("x")); err == nil {
		t.Error("SealBytes without a purpose succeeded")
	}
}

// TestSealBytesPurposeKeys: each purpose has its own key, distinct from the
// master key, so that bytes sealed for one never open for another.
func TestSealBytesPurposeKeys(t *testing.T) {
	t.Parallel()
	m := newTestMaster(t)
	a, err := m.derive(PurposeSearchRecord)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.derive("other")
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.derive(PurposeSearchRecord)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != keySize || bytes.Equal(a, b) || !bytes.Equal(a, again) || bytes.Equal(a, m.key[:]) {
		t.Errorf("derived keys: %d bytes, distinct purposes equal %v, stable %v, equal to the master %v",
			len(a), bytes.Equal(a, b), bytes.Equal(a, again), bytes.Equal(a, m.key[:]))
	}
}

func TestSealBytesAfterClose(t *testing.T) {
	t.Parallel()
	m := newTestMaster(t)
	kr := New(m, newFakeStore())
	blob, err := kr.SealBytes(PurposeSearchRecord, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.SealBytes(PurposeSearchRecord, nil, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("SealBytes after Close = %v, want ErrClosed", err)
	}
	if _, err := kr.OpenBytes(PurposeSearchRecord, nil, blob); !errors.Is(err, ErrClosed) {
		t.Errorf("OpenBytes after Close = %v, want ErrClosed", err)
	}
	kr2 := New(m, newFakeStore())
	m.Destroy()
	if _, err := kr2.OpenBytes(PurposeSearchRecord, nil, blob); !errors.Is(err, ErrDestroyed) {
		t.Errorf("OpenBytes after Destroy = %v, want ErrDestroyed", err)
	}
}
