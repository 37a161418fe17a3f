package keyring

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

// PurposeSearchRecord names the data key of search records: it seals the
// probe face crop kept with each search for its verifiers.
const PurposeSearchRecord = "search record"

// PurposePortalStatus names the MAC key of the public portal's status
// codes: a requester shows the code with the request's reference to see
// how the request stands, so that references alone (sequential) are not
// enough.
const PurposePortalStatus = "portal status"

// PurposeKeyCheck names the MAC key of the master key's check value: a
// MAC of a fixed message, kept in the store, so that an instance given a
// different master key than the one the store's data is sealed with stops
// at once instead of sealing new data under a key the others cannot open.
const PurposeKeyCheck = "master key check"

// PurposeAuditWitness names the MAC key that signs the audit heads kept by
// the audit witness files (store.WithAuditWitnessKey).
const PurposeAuditWitness = "audit witness"

const (
	bytesVersion = 1 // first byte of sealed bytes
	// derivedKeyLabel starts the HKDF info of a purpose's data key.
	derivedKeyLabel = "gabarit data key v1\x00"
	// sealedBytesLabel starts the additional data of sealed bytes.
	sealedBytesLabel = "gabarit sealed bytes v1\x00"
	// maxSealedBytes is the largest plaintext SealBytes accepts.
	maxSealedBytes = 64 << 20
	// macKeyPrefix starts the purpose a MAC key is derived for. Purposes
	// hold no NUL byte, so a MAC key is never the sealing key of any
	// purpose, even one of the same name.
	macKeyPrefix = "mac\x00"
)

// SealBytes encrypts plain with AES-256-GCM under the data key reserved for
// purpose (e.g. PurposeSearchRecord) and a random 12-byte nonce. The data
// key is derived from the master key with HKDF-SHA256 and the purpose, so
// that each purpose has its own key and none is stored. binding says what
// the bytes belong to (for a search record, the SHA-256 of the probe): the
// purpose and binding are bound to the result as additional data, so it
// opens only with the same ones. The output is
//
//	0x01 (version) || nonce (12 bytes) || ciphertext + tag (16 bytes)
//
// A purpose must be non-empty and hold no NUL byte.
func (k *Keyring) SealBytes(purpose string, binding, plain []byte) ([]byte, error) {
	if len(plain) > maxSealedBytes {
		return nil, fmt.Errorf("seal %s bytes: %d bytes is more than %d", purpose, len(plain), maxSealedBytes)
	}
	g, err := k.purposeAEAD(purpose)
	if err != nil {
		return nil, fmt.Errorf("seal %s bytes: %w", purpose, err)
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plain)+tagSize)
	out[0] = bytesVersion
	_, _ = rand.Read(out[1:]) // never fails since Go 1.24 (it crashes instead)
	return g.Seal(out, out[1:1+nonceSize], plain, bytesAAD(purpose, binding)), nil
}

// OpenBytes decrypts bytes sealed by SealBytes for the same purpose and
// binding. It fails with an error matching ErrTampered when blob does not
// authenticate (altered, truncated, another purpose or binding, another
// master key), with ErrClosed after Close, with ErrDestroyed when the
// master key was destroyed, and with one matching errors.ErrUnsupported
// for an unknown version.
func (k *Keyring) OpenBytes(purpose string, binding, blob []byte) ([]byte, error) {
	if len(blob) > 0 && blob[0] != bytesVersion {
		return nil, fmt.Errorf("open %s bytes: version %d: %w", purpose, blob[0], errors.ErrUnsupported)
	}
	if len(blob) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("open %s bytes: %d bytes is too short: %w", purpose, len(blob), ErrTampered)
	}
	g, err := k.purposeAEAD(purpose)
	if err != nil {
		return nil, fmt.Errorf("open %s bytes: %w", purpose, err)
	}
	plain, err := g.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], bytesAAD(purpose, binding))
	if err != nil {
		return nil, fmt.Errorf("open %s bytes: %w", purpose, ErrTampered)
	}
	return plain, nil
}

// MAC returns the HMAC-SHA256 (32 bytes) of msg under the MAC key of
// purpose (e.g. PurposePortalStatus): HKDF-SHA256 of the master key, like
// the data keys of SealBytes, with the purpose prefixed by "mac" and a NUL
// byte, so that it differs from every sealing key. The same purpose and
// message give the same MAC for as long as the master key is the same.
// It fails with ErrClosed after Close and with ErrDestroyed when the
// master key was destroyed. A purpose must be non-empty and hold no NUL
// byte.
func (k *Keyring) MAC(purpose string, msg []byte) ([]byte, error) {
	k.mu.Lock()
	closed := k.closed
	k.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%s mac: %w", purpose, ErrClosed)
	}
	return k.master.MAC(purpose, msg)
}

// MAC is Keyring.MAC, for what needs a MAC before a keyring exists (the
// audit witness, signed as the store opens).
func (m *Master) MAC(purpose string, msg []byte) ([]byte, error) {
	if purpose == "" || strings.ContainsRune(purpose, 0) {
		return nil, errors.New("a purpose is required, without NUL bytes")
	}
	key, err := m.derive(macKeyPrefix + purpose)
	if err != nil {
		return nil, fmt.Errorf("%s mac: %w", purpose, err)
	}
	defer clear(key)
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil), nil
}

// purposeAEAD returns a fresh AES-256-GCM under the data key of purpose.
// Neither the key nor the cipher is kept (see Limits in the package
// documentation).
func (k *Keyring) purposeAEAD(purpose string) (cipher.AEAD, error) {
	key, err := k.purposeKey(purpose, "")
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return newGCM(key)
}

// purposeKey derives the key of purpose, prefixed by prefix (empty for a
// sealing key, macKeyPrefix for a MAC key). The caller clears it when done.
func (k *Keyring) purposeKey(purpose, prefix string) ([]byte, error) {
	if purpose == "" || strings.ContainsRune(purpose, 0) {
		return nil, errors.New("a purpose is required, without NUL bytes")
	}
	k.mu.Lock()
	closed := k.closed
	k.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	return k.master.derive(prefix + purpose)
}

// derive returns the 32-byte data key of purpose: HKDF-SHA256 of the
// master key, with no salt and the info derivedKeyLabel || purpose. The
// caller clears it when done.
func (m *Master) derive(purpose string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.destroyed {
		return nil, ErrDestroyed
	}
	return hkdf.Key(sha256.New, m.key[:], nil, derivedKeyLabel+purpose, keySize)
}

// bytesAAD binds sealed bytes to their purpose and binding.
func bytesAAD(purpose string, binding []byte) []byte {
	b := make([]byte, 0, len(sealedBytesLabel)+len(purpose)+1+len(binding))
	b = append(b, sealedBytesLabel...)
	b = append(b, purpose...)
	b = append(b, 0)
	return append(b, binding...)
}
