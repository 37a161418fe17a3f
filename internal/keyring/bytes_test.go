package keyring

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
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

// TestMAC: a MAC is HMAC-SHA256 under the purpose's MAC key, the same for
// the same purpose, message and master key, and different when any of
// them changes; no key is stored.
func TestMAC(t *testing.T) {
	t.Parallel()
	m := newTestMaster(t)
	ks := newFakeStore()
	kr := newTestKeyring(t, m, ks)
	mac := func(kr *Keyring, purpose, msg string) []byte {
		t.Helper()
		b, err := kr.MAC(purpose, []byte(msg))
		if err != nil {
			t.Fatalf("MAC(%q, %q): %v", purpose, msg, err)
		}
		return b
	}
	a := mac(kr, PurposePortalStatus, "R-1")
	if len(a) != sha256.Size {
		t.Fatalf("MAC is %d bytes, want %d", len(a), sha256.Size)
	}
	if !bytes.Equal(a, mac(kr, PurposePortalStatus, "R-1")) {
		t.Error("two MACs of the same message differ")
	}
	if !bytes.Equal(a, mac(newTestKeyring(t, m, newFakeStore()), PurposePortalStatus, "R-1")) {
		t.Error("another keyring on the same master gives another MAC")
	}
	for _, tt := range []struct {
		name, purpose, msg string
		kr                 *Keyring
	}{
		{"other message", PurposePortalStatus, "R-2", kr},
		{"other purpose", PurposeSearchRecord, "R-1", kr},
		{"other master key", PurposePortalStatus, "R-1", newTestKeyring(t, newTestMaster(t), newFakeStore())},
	} {
		if bytes.Equal(a, mac(tt.kr, tt.purpose, tt.msg)) {
			t.Errorf("%s: same MAC", tt.name)
		}
	}
	if ks.putCount() != 0 {
		t.Errorf("MACs stored %d keys, want none (derived keys)", ks.putCount())
	}

	// The construction, computed independently: HKDF-SHA256 of the master
	// key with the info "gabarit data key v1", NUL, "mac", NUL, purpose.
	key, err := hkdf.Key(sha256.New, m.key[:], nil, "gabarit data key v1\x00mac\x00"+PurposePortalStatus, 32)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("R-1"))
	if want := h.Sum(nil); !bytes.Equal(a, want) {
		t.Errorf("MAC = %x, want %x", a, want)
	}
	// The MAC key is not the purpose's sealing key.
	sealing, err := m.derive(PurposePortalStatus)
	if err != nil {
		t.Fatal(err)
	}
	h = hmac.New(sha256.New, sealing)
	h.Write([]byte("R-1"))
	if bytes.Equal(a, h.Sum(nil)) {
		t.Error("the MAC key is the purpose's sealing key")
	}

	for _, purpose := range []string{"", "portal\x00status"} {
		if _, err := kr.MAC(purpose, []byte("R-1")); err == nil {
			t.Errorf("MAC with purpose %q succeeded", purpose)
		}
	}
}

func TestMACAfterClose(t *testing.T) {
	t.Parallel()
	m := newTestMaster(t)
	kr := New(m, newFakeStore())
	if _, err := kr.MAC(PurposePortalStatus, []byte("R-1")); err != nil {
		t.Fatal(err)
	}
	if err := kr.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := kr.MAC(PurposePortalStatus, []byte("R-1")); !errors.Is(err, ErrClosed) {
		t.Errorf("MAC after Close = %x, %v; want ErrClosed", got, err)
	}
	kr2 := New(m, newFakeStore())
	m.Destroy()
	if got, err := kr2.MAC(PurposePortalStatus, []byte("R-1")); !errors.Is(err, ErrDestroyed) {
		t.Errorf("MAC after Destroy = %x, %v; want ErrDestroyed", got, err)
	}
}
