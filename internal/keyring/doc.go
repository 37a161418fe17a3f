// Package keyring encrypts face templates at rest with one data key per
// source, so that erasing a source is a matter of destroying one key
// (crypto-shredding).
//
// # Keys
//
// The master key is 32 random bytes kept in a file outside the database
// (see [LoadOrCreateMaster]). The file holds the key as 64 hexadecimal
// digits followed by an optional single newline; it must have mode 0600 or
// stricter. It is created on first use, and `openssl rand -hex 32` makes a
// valid one by hand.
//
// Each source has its own data key: 32 random bytes, created when the
// source's first template is sealed. The data key is wrapped (encrypted)
// with AES-256-GCM under the master key, with the additional data
// "gabarit source key v1" followed by the source ID (8 bytes, big-endian),
// and persisted through a [KeyStore]. A wrapped key is
//
//	0x01 (version) || nonce (12 bytes) || encrypted key + tag (48 bytes)
//
// 61 bytes in all. Unwrapped data keys are cached in memory and zeroed by
// [Keyring.Shred] and [Keyring.Close].
//
// # Sealed templates
//
// [Keyring.Seal] encodes a template as little-endian float32 values and
// encrypts it with AES-256-GCM under the source's data key and a random
// 12-byte nonce. The output is
//
//	0x01 (version) || nonce (12 bytes) || ciphertext (4×dim bytes) + tag (16 bytes)
//
// (2077 bytes for dim 512). The additional data binds the blob to where it
// belongs: version, source ID, face ID (8 bytes big-endian each), dim
// (4 bytes), then the length of the model ID (2 bytes) and the model ID. A
// blob copied to another face, source or model, or altered in any way,
// fails to open with [ErrTampered]. Random 96-bit nonces are safe for far
// more templates than one source will ever hold (the GCM limit is 2^32
// messages per key).
//
// # Sealed bytes
//
// [Keyring.SealBytes] encrypts bytes that belong to no source (the probe
// face crop kept with a search record) under a data key reserved for a
// purpose ([PurposeSearchRecord]): HKDF-SHA256 of the master key with the
// info "gabarit data key v1", a NUL byte and the purpose. Such keys are
// derived, never stored, and never cached. The output is
//
//	0x01 (version) || nonce (12 bytes) || ciphertext + tag (16 bytes)
//
// and its additional data is "gabarit sealed bytes v1", a NUL byte, the
// purpose, a NUL byte and the caller's binding (for a search record, the
// SHA-256 of the probe it recorded), so that the bytes open only for the
// same purpose and the same record. They are erased with what holds them:
// a probe crop is erased by the retention purge six months after its
// search.
//
// # MACs
//
// [Keyring.MAC] authenticates a message (the reference of a rights request,
// for the public portal's status codes) with HMAC-SHA256 under a key
// reserved for a purpose ([PurposePortalStatus]), derived like the sealing
// keys but from "mac", a NUL byte and the purpose, so that it is never the
// sealing key of any purpose. A MAC is the same for as long as the master
// key is: it needs nothing stored, and it changes when the master key does.
//
// # Erasure
//
// [Keyring.Shred] deletes the source's wrapped key from the key store and
// from the cache. From then on every template of that source, wherever a
// copy of the ciphertext lives, opens only to [ErrShredded].
//
// Operational rule for backups: the guarantee holds for a backup only if
// the backup does not also hold the wrapped key. A backup of the database
// that includes the wrapped keys (the store's source key table) still opens
// the shredded source's templates with the master key. So either the key
// store is excluded from data backups and backed up separately under its
// own (shorter) retention, or backups that contain it are re-keyed or
// destroyed when a source is shredded. The master key file is never part of
// a data backup.
//
// # Limits
//
// Destroy and Shred zero the key bytes this package holds. Go cannot zero
// the expanded AES key schedules inside crypto/aes, so cipher objects are
// built per operation and never kept; their memory is reclaimed by the
// garbage collector, not wiped. This protects against keys lingering in
// long-lived caches, not against an attacker who can read process memory.
package keyring
