package keyring

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// wrapPurposeLabel starts the additional data of keys wrapped by
// [Master.Wrap]. It differs from wrapAADLabel from its ninth byte on, so a
// key wrapped for a purpose never unwraps as a source key, nor the reverse.
const wrapPurposeLabel = "gabarit wrapped key v1\x00"

// Wrap encrypts a 32-byte data key that belongs to no source (the key of
// another encrypted store, for instance) under the master key, with
// AES-256-GCM and a random nonce. purpose names what the key is for, e.g.
// "vault"; it is bound to the result as additional data, so the wrapped key
// unwraps only with the same purpose. The result has the layout of a wrapped
// source key (61 bytes: version, nonce, encrypted key and tag); the caller
// stores it.
func (m *Master) Wrap(purpose string, key []byte) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("wrap key: purpose required")
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("wrap %s key: %d bytes, want %d", purpose, len(key), keySize)
	}
	g, err := m.aead()
	if err != nil {
		return nil, fmt.Errorf("wrap %s key: %w", purpose, err)
	}
	out := make([]byte, 1+g.NonceSize(), wrappedSize)
	out[0] = keyVersion
	_, _ = rand.Read(out[1:]) // never fails since Go 1.24 (it crashes instead)
	return g.Seal(out, out[1:], key, purposeAAD(purpose)), nil
}

// Unwrap decrypts a key wrapped by [Master.Wrap] for the same purpose and
// returns its 32 bytes, which the caller should clear when done with them.
// It fails with an error matching [ErrTampered] when wrapped does not
// authenticate (altered, truncated, another purpose, another master key),
// with [ErrDestroyed] after Destroy, and with one matching
// errors.ErrUnsupported for an unknown version.
func (m *Master) Unwrap(purpose string, wrapped []byte) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("unwrap key: purpose required")
	}
	if len(wrapped) > 0 && wrapped[0] != keyVersion {
		return nil, fmt.Errorf("unwrap %s key: version %d: %w", purpose, wrapped[0], errors.ErrUnsupported)
	}
	if len(wrapped) != wrappedSize {
		return nil, fmt.Errorf("unwrap %s key: %d bytes, want %d: %w", purpose, len(wrapped), wrappedSize, ErrTampered)
	}
	g, err := m.aead()
	if err != nil {
		return nil, fmt.Errorf("unwrap %s key: %w", purpose, err)
	}
	key, err := g.Open(make([]byte, 0, keySize+tagSize), wrapped[1:13], wrapped[13:], purposeAAD(purpose))
	if err != nil || len(key) != keySize {
		clear(key)
		return nil, fmt.Errorf("unwrap %s key: does not authenticate (wrong master key, purpose or altered bytes): %w", purpose, ErrTampered)
	}
	return key, nil
}

func purposeAAD(purpose string) []byte {
	return append([]byte(wrapPurposeLabel), purpose...)
}
