package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// EnvMasterKeyFile names the environment variable that [MasterFromEnv]
// reads: the path of the master key file.
const EnvMasterKeyFile = "GABARIT_MASTER_KEY_FILE"

const (
	keySize      = 32 // AES-256
	keyVersion   = 1  // first byte of a wrapped data key
	wrapAADLabel = "gabarit source key v1"
	wrappedSize  = 1 + 12 + keySize + 16
	maxMasterLen = 2*keySize + 1 // hex digits and a newline
)

// ErrDestroyed is returned by a [Keyring] whose [Master] was destroyed.
var ErrDestroyed = errors.New("master key destroyed")

// Master is the key that wraps every source's data key. It never exposes
// its bytes. A Master is safe for concurrent use.
type Master struct {
	mu        sync.RWMutex
	key       [keySize]byte
	destroyed bool
}

// MasterFromEnv loads, or creates, the master key file named by the
// GABARIT_MASTER_KEY_FILE environment variable (see [LoadOrCreateMaster]).
// Callers that read their configuration themselves call
// [LoadOrCreateMaster] with the configured path instead.
func MasterFromEnv() (*Master, error) {
	path := os.Getenv(EnvMasterKeyFile)
	if path == "" {
		return nil, fmt.Errorf("%s is not set", EnvMasterKeyFile)
	}
	return LoadOrCreateMaster(path)
}

// LoadOrCreateMaster reads the master key from path, or creates the file
// with a new random key when it does not exist.
//
// The file holds 64 hexadecimal digits (32 bytes), optionally followed by
// one newline. An existing file is refused when its mode grants any
// permission to group or others, when it is not a regular file, or when its
// content is not exactly one key. A new file is written with mode 0600 to a
// temporary file in the same directory (created 0700 if missing), synced,
// and published with a hard link, which, unlike a rename, never replaces a
// key that another process published at the same moment; the directory is
// then synced.
func LoadOrCreateMaster(path string) (*Master, error) {
	m, err := loadMaster(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	if err := createMaster(path); err != nil {
		return nil, err
	}
	return loadMaster(path)
}

// loadMaster reads and checks an existing master key file.
func loadMaster(path string) (*Master, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open master key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o, want 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	buf := make([]byte, maxMasterLen+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read master key file %s: %w", path, err)
	}
	text := buf[:n]
	if n == maxMasterLen && text[n-1] == '\n' {
		text = text[:n-1]
	}
	if len(text) != 2*keySize {
		return nil, fmt.Errorf("master key file %s: want %d hex digits (a %d-byte key), got %d bytes", path, 2*keySize, keySize, fi.Size())
	}
	m := &Master{}
	if _, err := hex.Decode(m.key[:], text); err != nil {
		m.Destroy()
		// The error of hex.Decode quotes the offending byte: keep it out.
		return nil, fmt.Errorf("master key file %s: want %d hex digits (a %d-byte key), found a non-hex byte", path, 2*keySize, keySize)
	}
	return m, nil
}

// createMaster writes a new random master key file at path. It returns nil
// when another process created the file first.
func createMaster(path string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create master key directory: %w", err)
	}
	// CreateTemp opens with O_CREATE|O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, ".master-key-*.tmp")
	if err != nil {
		return fmt.Errorf("create master key file: %w", err)
	}
	defer func() {
		_ = tmp.Close() // a second Close after success; the write path checks its own Close
		if rerr := os.Remove(tmp.Name()); rerr != nil && err == nil {
			err = fmt.Errorf("remove temporary master key file: %w", rerr)
		}
	}()
	var key [keySize]byte
	defer clear(key[:])
	_, _ = rand.Read(key[:]) // never fails since Go 1.24 (it crashes instead)
	text := make([]byte, 2*keySize+1)
	defer clear(text)
	hex.Encode(text, key[:])
	text[2*keySize] = '\n'
	if _, err := tmp.Write(text); err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close master key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process won; loadMaster reads its key
		}
		return fmt.Errorf("publish master key file: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync master key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync master key directory %s: %w", dir, err)
	}
	return nil
}

// Destroy zeroes the key. Wrapping and unwrapping with a destroyed Master
// fail with [ErrDestroyed]. Destroy is idempotent.
func (m *Master) Destroy() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.key[:])
	m.destroyed = true
}

// aead returns a fresh AES-256-GCM built from the master key. It is not
// kept, so that Destroy leaves no long-lived copy of the key schedule.
func (m *Master) aead() (cipher.AEAD, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.destroyed {
		return nil, ErrDestroyed
	}
	return newGCM(m.key[:])
}

// wrap encrypts a data key for sourceID.
func (m *Master) wrap(sourceID int64, key *[keySize]byte) ([]byte, error) {
	g, err := m.aead()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+g.NonceSize(), wrappedSize)
	out[0] = keyVersion
	_, _ = rand.Read(out[1:]) // never fails since Go 1.24 (it crashes instead)
	return g.Seal(out, out[1:], key[:], wrapAAD(sourceID)), nil
}

// unwrap decrypts a wrapped data key of sourceID into key.
func (m *Master) unwrap(sourceID int64, wrapped []byte, key *[keySize]byte) error {
	if len(wrapped) > 0 && wrapped[0] != keyVersion {
		return fmt.Errorf("wrapped key version %d: %w", wrapped[0], errors.ErrUnsupported)
	}
	if len(wrapped) != wrappedSize {
		return fmt.Errorf("wrapped key is %d bytes, want %d: %w", len(wrapped), wrappedSize, ErrTampered)
	}
	g, err := m.aead()
	if err != nil {
		return err
	}
	plain, err := g.Open(key[:0], wrapped[1:13], wrapped[13:], wrapAAD(sourceID))
	if err != nil || len(plain) != keySize {
		clear(key[:])
		return fmt.Errorf("wrapped key does not authenticate (wrong master key or altered key store): %w", ErrTampered)
	}
	return nil
}

func wrapAAD(sourceID int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(wrapAADLabel), uint64(sourceID))
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new aes cipher: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("new gcm: %w", err)
	}
	return g, nil
}
