package keyring

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

const (
	blobVersion  = 1 // first byte of a sealed template
	nonceSize    = 12
	tagSize      = 16
	blobOverhead = 1 + nonceSize + tagSize
	maxModelID   = math.MaxUint16
)

// Sentinel errors of the keyring.
var (
	// ErrNoKey is what a KeyStore returns, possibly wrapped, when a source
	// has no data key. A store maps its own not-found error to it, e.g.
	// fmt.Errorf("source %d: %w", id, keyring.ErrNoKey).
	ErrNoKey = errors.New("no data key")
	// ErrShredded is returned by Open when the source has no data key: it
	// was shredded, or no template of the source was ever sealed.
	ErrShredded = errors.New("data key shredded")
	// ErrTampered is returned when a sealed template or a wrapped key fails
	// authentication: altered or truncated bytes, or a blob moved to
	// another source, face or model, or a wrong master key.
	ErrTampered = errors.New("ciphertext does not authenticate")
	// ErrClosed is returned by a Keyring after Close.
	ErrClosed = errors.New("keyring closed")
	// ErrBadTemplate is returned by Open, with ErrTampered or
	// errors.ErrUnsupported, when the sealed template itself cannot be
	// opened (it does not authenticate, has no sealed template's length or
	// an unknown version) while its source's data key is sound: the fault
	// is that one face's, not its source's or the master key's.
	ErrBadTemplate = errors.New("sealed template cannot be opened")
)

// templateError marks an error of Open on the sealed template itself
// (ErrBadTemplate) without changing its message; class says which fault.
type templateError struct {
	class string
	err   error
}

// TemplateFault returns a short class of an Open error that matches
// ErrBadTemplate ("does not authenticate", "wrong length", "unknown
// version"), for a record that must not hold the template; "" for any
// other error.
func TemplateFault(err error) string {
	var te templateError
	if errors.As(err, &te) {
		return te.class
	}
	return ""
}

func (e templateError) Error() string   { return e.err.Error() }
func (e templateError) Unwrap() []error { return []error{e.err, ErrBadTemplate} }

// KeyStore persists wrapped data keys, one per source. The store package
// implements it. Its methods are called with the Keyring's lock held, so
// they must not call back into the Keyring.
type KeyStore interface {
	// SourceKey returns the wrapped data key of sourceID, or an error
	// matching ErrNoKey (errors.Is) when there is none.
	SourceKey(ctx context.Context, sourceID int64) ([]byte, error)
	// PutSourceKey stores the wrapped data key of sourceID. It must not
	// replace an existing key (that would shred the source's templates):
	// when sourceID already has one it returns an error.
	PutSourceKey(ctx context.Context, sourceID int64, wrapped []byte) error
	// DeleteSourceKey deletes the wrapped data key of sourceID, durably.
	// Deleting an absent key returns nil or an error matching ErrNoKey.
	DeleteSourceKey(ctx context.Context, sourceID int64) error
}

// Keyring seals and opens face templates with per-source data keys. It
// caches unwrapped data keys in memory. A Keyring is safe for concurrent
// use.
type Keyring struct {
	master *Master
	store  KeyStore

	mu     sync.Mutex // guards keys and closed; held across KeyStore calls
	keys   map[int64]*[keySize]byte
	closed bool
}

// New returns a Keyring that wraps data keys with m and keeps them in ks.
// The caller keeps ownership of m: Close does not destroy it.
func New(m *Master, ks KeyStore) *Keyring {
	return &Keyring{master: m, store: ks, keys: make(map[int64]*[keySize]byte)}
}

// Seal encrypts template for face faceID of source sourceID, computed by
// model modelID, creating the source's data key on first use. The result
// is 1 version byte, a 12-byte nonce and the ciphertext with its tag
// (see the package documentation); it opens only with the same sourceID,
// faceID and modelID.
func (k *Keyring) Seal(ctx context.Context, sourceID, faceID int64, modelID string, template []float32) ([]byte, error) {
	if len(template) == 0 {
		return nil, fmt.Errorf("seal template of face %d: empty template", faceID)
	}
	if len(modelID) > maxModelID || len(template) > (math.MaxInt32-blobOverhead)/4 {
		return nil, fmt.Errorf("seal template of face %d: model id or template too long", faceID)
	}
	var key [keySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, sourceID, true, &key); err != nil {
		return nil, fmt.Errorf("seal template of face %d: %w", faceID, err)
	}
	g, err := newGCM(key[:])
	if err != nil {
		return nil, err
	}
	n := 4 * len(template)
	out := make([]byte, 1+nonceSize+n, 1+nonceSize+n+tagSize)
	out[0] = blobVersion
	nonce := out[1 : 1+nonceSize]
	_, _ = rand.Read(nonce) // never fails since Go 1.24 (it crashes instead)
	plain := out[1+nonceSize:]
	for i, v := range template {
		binary.LittleEndian.PutUint32(plain[4*i:], math.Float32bits(v))
	}
	g.Seal(plain[:0], nonce, plain, blobAAD(sourceID, faceID, modelID, len(template)))
	return out[:cap(out)], nil
}

// EnsureKey loads the data key of sourceID, creating and storing it if the
// source has none, and keeps it in memory. Call it before sealing inside a
// transaction of a store that allows a single writer: Seal then needs no
// write to the KeyStore.
func (k *Keyring) EnsureKey(ctx context.Context, sourceID int64) error {
	var key [keySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, sourceID, true, &key); err != nil {
		return fmt.Errorf("data key of source %d: %w", sourceID, err)
	}
	return nil
}

// Open decrypts a template sealed by Seal for the same sourceID, faceID
// and modelID. It returns an error matching ErrShredded when the source has
// no data key, and one matching ErrTampered when blob does not
// authenticate or is truncated. A blob of an unknown version gives an
// error matching errors.ErrUnsupported. Errors of the blob itself, not of
// the source's key, also match ErrBadTemplate.
func (k *Keyring) Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error) {
	if len(blob) > 0 && blob[0] != blobVersion {
		return nil, templateError{"unknown version", fmt.Errorf("open template of face %d: version %d: %w", faceID, blob[0], errors.ErrUnsupported)}
	}
	if len(blob) < blobOverhead+4 || (len(blob)-blobOverhead)%4 != 0 {
		return nil, templateError{"wrong length", fmt.Errorf("open template of face %d: %d bytes is no sealed template: %w", faceID, len(blob), ErrTampered)}
	}
	dim := (len(blob) - blobOverhead) / 4
	var key [keySize]byte
	defer clear(key[:])
	if err := k.dataKey(ctx, sourceID, false, &key); err != nil {
		return nil, fmt.Errorf("open template of face %d: %w", faceID, err)
	}
	g, err := newGCM(key[:])
	if err != nil {
		return nil, err
	}
	plain, err := g.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], blobAAD(sourceID, faceID, modelID, dim))
	if err != nil {
		return nil, templateError{"does not authenticate", fmt.Errorf("open template of face %d of source %d: %w", faceID, sourceID, ErrTampered)}
	}
	defer clear(plain)
	template := make([]float32, dim)
	for i := range template {
		template[i] = math.Float32frombits(binary.LittleEndian.Uint32(plain[4*i:]))
	}
	return template, nil
}

// Shred destroys the data key of sourceID: it zeroes and drops the cached
// copy and deletes the wrapped key from the KeyStore, after which every
// template of the source, wherever its ciphertext lives, opens only to
// ErrShredded. Shredding a source without a key is not an error. Shred
// reaches only this Keyring's cache: other processes sharing the KeyStore
// must shred too, or be restarted. A later Seal for the same sourceID
// creates a new key; old blobs then fail with ErrTampered instead of
// ErrShredded, so source IDs are best never reused.
func (k *Keyring) Shred(ctx context.Context, sourceID int64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ErrClosed
	}
	if key, ok := k.keys[sourceID]; ok {
		clear(key[:])
		delete(k.keys, sourceID)
	}
	if err := k.store.DeleteSourceKey(ctx, sourceID); err != nil && !errors.Is(err, ErrNoKey) {
		return fmt.Errorf("shred source %d: %w", sourceID, err)
	}
	return nil
}

// Close zeroes and drops every cached data key. Later calls fail with
// ErrClosed. Close does not destroy the Master. It is idempotent.
func (k *Keyring) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, key := range k.keys {
		clear(key[:])
		delete(k.keys, id)
	}
	k.closed = true
	return nil
}

// dataKey copies the data key of sourceID into dst, loading it from the
// store, or creating it when create is set. The lock is held throughout,
// so two callers never create two keys for one source.
func (k *Keyring) dataKey(ctx context.Context, sourceID int64, create bool, dst *[keySize]byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ErrClosed
	}
	if key, ok := k.keys[sourceID]; ok {
		*dst = *key
		return nil
	}
	wrapped, err := k.store.SourceKey(ctx, sourceID)
	switch {
	case err == nil:
	case errors.Is(err, ErrNoKey) && create:
		if wrapped, err = k.createKey(ctx, sourceID); err != nil {
			return err
		}
	case errors.Is(err, ErrNoKey):
		return fmt.Errorf("source %d: %w", sourceID, ErrShredded)
	default:
		return fmt.Errorf("get data key of source %d: %w", sourceID, err)
	}
	key := new([keySize]byte)
	if err := k.master.unwrap(sourceID, wrapped, key); err != nil {
		return fmt.Errorf("unwrap data key of source %d: %w", sourceID, err)
	}
	k.keys[sourceID] = key
	*dst = *key
	return nil
}

// createKey makes, wraps and stores a new data key for sourceID and returns
// the wrapped key now in the store. When the store refuses it because
// another process stored one first, that key is returned instead.
func (k *Keyring) createKey(ctx context.Context, sourceID int64) ([]byte, error) {
	var key [keySize]byte
	defer clear(key[:])
	_, _ = rand.Read(key[:]) // never fails since Go 1.24 (it crashes instead)
	wrapped, err := k.master.wrap(sourceID, &key)
	if err != nil {
		return nil, fmt.Errorf("wrap data key of source %d: %w", sourceID, err)
	}
	if err := k.store.PutSourceKey(ctx, sourceID, wrapped); err != nil {
		if theirs, gerr := k.store.SourceKey(ctx, sourceID); gerr == nil {
			return theirs, nil
		}
		return nil, fmt.Errorf("put data key of source %d: %w", sourceID, err)
	}
	return wrapped, nil
}

// blobAAD returns the additional data that binds a sealed template to its
// source, face, model and dimension.
func blobAAD(sourceID, faceID int64, modelID string, dim int) []byte {
	b := make([]byte, 0, 1+8+8+4+2+len(modelID))
	b = append(b, blobVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(sourceID))
	b = binary.BigEndian.AppendUint64(b, uint64(faceID))
	b = binary.BigEndian.AppendUint32(b, uint32(dim))
	b = binary.BigEndian.AppendUint16(b, uint16(len(modelID)))
	return append(b, modelID...)
}
