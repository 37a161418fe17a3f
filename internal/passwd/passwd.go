// Package passwd hashes and verifies account passwords (argon2id, in the PHC
// string format) and makes the random bearer tokens of web sessions and API
// clients, of which the store keeps only the SHA-256.
package passwd

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length limits. The lower one is counted in characters (Unicode
// code points), the upper one in bytes, which bounds the work an attacker
// can make a login cost.
const (
	MinLength = 12   // characters
	MaxLength = 1024 // bytes
)

// Errors returned by Hash and Verify; test them with errors.Is.
var (
	// ErrTooShort is returned by Hash for a password of fewer than
	// MinLength characters.
	ErrTooShort = fmt.Errorf("password shorter than %d characters", MinLength)
	// ErrTooLong is returned by Hash for a password of more than MaxLength
	// bytes.
	ErrTooLong = fmt.Errorf("password longer than %d bytes", MaxLength)
	// ErrMalformed is returned by Verify for an encoded hash it cannot read:
	// not an argon2id PHC string of version 19, bad base64, or parameters
	// out of bounds.
	ErrMalformed = errors.New("malformed password hash")
)

// params are the argon2id cost parameters of one hash.
type params struct {
	memory  uint32 // KiB
	time    uint32 // passes
	threads uint8  // lanes
}

// The parameters Hash uses (RFC 9106's second recommended option, with two
// lanes): 64 MiB, 3 passes. A hash takes about a quarter of a second on a
// two-core virtual machine (BenchmarkHash).
var defaultParams = params{memory: 64 * 1024, time: 3, threads: 2}

// Sizes of what Hash generates, in bytes.
const (
	saltLen = 16
	keyLen  = 32
)

// Bounds Verify accepts, so that a planted or corrupted hash cannot make a
// login exhaust the machine.
const (
	maxMemory  = 1 << 20 // KiB (1 GiB)
	maxTime    = 20
	maxThreads = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// prefix begins every hash Hash returns and Verify reads.
const prefix = "$argon2id$v=19$"

// Hash returns the argon2id hash of password, with a fresh 16-byte random
// salt and a 32-byte key, as a PHC string:
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<key>
//
// where salt and key are unpadded standard base64. A password of fewer than
// MinLength characters fails with ErrTooShort, one of more than MaxLength
// bytes with ErrTooLong.
func Hash(password string) (string, error) {
	switch {
	case len(password) > MaxLength:
		return "", fmt.Errorf("hash password: %w", ErrTooLong)
	case utf8.RuneCountInString(password) < MinLength:
		return "", fmt.Errorf("hash password: %w", ErrTooShort)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: salt: %w", err)
	}
	return encode(defaultParams, salt, derive(defaultParams, password, salt, keyLen)), nil
}

// derive runs argon2id; p must be in bounds (check).
func derive(p params, password string, salt []byte, n uint32) []byte {
	return argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, n)
}

// encode returns the PHC string of a hash.
func encode(p params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", prefix, p.memory, p.time, p.threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches encoded, a PHC string made by
// Hash (its parameters are read from it, so hashes made with other costs
// still verify). A wrong password is (false, nil); so is a password longer
// than MaxLength bytes, which Hash never accepted, and which Verify rejects
// without hashing it. An encoded string that is not an argon2id v19 PHC
// string, or whose parameters are out of bounds (memory over 1 GiB, more
// than 20 passes or 64 lanes, a salt of 8 to 64 bytes, a key of 16 to 64
// bytes), fails with ErrMalformed. The keys are compared in constant time.
func Verify(password, encoded string) (bool, error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxLength {
		return false, nil
	}
	got := derive(p, password, salt, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// decode parses and checks a PHC string.
func decode(encoded string) (params, []byte, []byte, error) {
	fail := func(why string) (params, []byte, []byte, error) {
		return params{}, nil, nil, fmt.Errorf("verify password: %s: %w", why, ErrMalformed)
	}
	rest, ok := strings.CutPrefix(encoded, prefix)
	if !ok {
		return fail("not an argon2id v=19 hash")
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return fail("want parameters, salt and key")
	}
	names := []string{"m", "t", "p"}
	values := strings.Split(fields[0], ",")
	if len(values) != len(names) {
		return fail("want parameters m, t and p")
	}
	var nums [3]uint64
	for i, kv := range values {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || name != names[i] {
			return fail("want parameters m, t and p in that order")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || v != strconv.FormatUint(n, 10) {
			return fail("parameter " + name + " is not a decimal number")
		}
		nums[i] = n
	}
	switch m, t, l := nums[0], nums[1], nums[2]; {
	case l < 1 || l > maxThreads:
		return fail(fmt.Sprintf("p=%d out of [1, %d]", l, maxThreads))
	case t < 1 || t > maxTime:
		return fail(fmt.Sprintf("t=%d out of [1, %d]", t, maxTime))
	case m < 8*l || m > maxMemory:
		return fail(fmt.Sprintf("m=%d out of [8p, %d]", m, maxMemory))
	}
	p := params{memory: uint32(nums[0]), time: uint32(nums[1]), threads: uint8(nums[2])}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(fields[1])
	if err != nil {
		return fail("salt is not base64")
	}
	key, err := b64.DecodeString(fields[2])
	if err != nil {
		return fail("key is not base64")
	}
	switch {
	case len(salt) < minSaltLen || len(salt) > maxSaltLen:
		return fail(fmt.Sprintf("%d-byte salt", len(salt)))
	case len(key) < minKeyLen || len(key) > maxKeyLen:
		return fail(fmt.Sprintf("%d-byte key", len(key)))
	}
	return p, salt, key, nil
}

// tokenBytes is the number of random bytes in a token.
const tokenBytes = 32

// NewToken returns a new bearer token, prefix followed by 32 random bytes
// in unpadded URL-safe base64 (43 characters), and its TokenHash, which is
// what the store keeps. The prefix (such as "gbt_") lets people and secret
// scanners tell the kind of token; it adds no secrecy.
func NewToken(prefix string) (token string, hash [32]byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", [32]byte{}, fmt.Errorf("new token: %w", err)
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, TokenHash(token), nil
}

// TokenHash returns the SHA-256 of the whole token string, prefix included:
// the key under which the store finds a session or an API token. A plain
// hash suffices because tokens are 256-bit random values, not passwords.
func TokenHash(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}
