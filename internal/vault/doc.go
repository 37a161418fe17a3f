// Package vault keeps the face templates that serve data subjects' rights
// apart from the collection, sealed, in the store's vault tables:
//
//   - objection ("never collect me again") and restriction entries, whose
//     templates are used only to drop matching faces at ingestion and to hide
//     matching faces from searches (see Match);
//   - the selfies of rights requests, kept only until the request closes
//     (RemoveRequest deletes them).
//
// # What leaves the vault
//
// Objection and restriction templates never leave it: Match answers only
// yes or no, no function lists or searches these entries, and Entries and
// Count give ids, kinds, request ids, dates and counts only. Templates
// returns the selfie templates of one request, and nothing else.
//
// # Encryption
//
// Templates are sealed by the keyring ([keyring.Keyring.SealBytes]) under
// the data key of the purpose "vault", derived from the master key and
// never stored: AES-256-GCM with a random 12-byte nonce, as 0x01 (version)
// || nonce || ciphertext + tag. The binding (part of the additional data)
// ties each blob to its row: entry id (8 bytes big-endian; ids are never
// reused), the kind, the request id (8 bytes), the dimension (4 bytes) and
// the model id (length-prefixed). A blob copied to another row, kind,
// request or model fails to open with keyring.ErrTampered. The store holds
// only sealed templates; they are decrypted in the process that uses them.
//
// # Matching, and what every instance sees
//
// The decrypted objection and restriction templates are kept in memory, so
// that Match costs only dot products: it compares the template with every
// entry, which suits the expected size of these lists (hundreds to a few
// thousand entries; ten thousand 512-dimensional entries are about 20 MB of
// memory and 5 million multiply-adds per Match).
//
// Every write to the vault's entries, by any process, bumps a change
// counter in the same transaction. Each Match, and each Matcher (one per
// search, for all its candidates), first reads the counter (one small
// read) and, when it moved, reloads and decrypts the entries before
// answering. Hence the bound: an objection or restriction committed before
// a Match or Matcher call starts is enforced by it, whichever instance
// committed it; since ingest asks Match about every face, and search takes
// a Matcher when it checks its candidates, an objection committed before a
// search or an ingest batch starts is enforced by it. A removal (a lifted
// restriction) takes effect the same way. A cache that cannot be reloaded (a template that does not
// authenticate, a store that does not answer) fails the Match: nothing is
// answered from entries that may be stale.
//
// # Deletion
//
// RemoveRequest deletes the rows; on SQLite they are overwritten
// (secure_delete) and the write-ahead log is checkpointed, so that no copy
// of them lingers there either.
//
// # Older versions
//
// gabarit kept the vault in its own SQLite file, vault.db, with a data key
// wrapped by the master key. Open with ImportFile imports such a file: its
// entries are decrypted with its key, sealed again and added in one store
// transaction that also records the file as imported (so that it is never
// imported twice); only then are its entries deleted and the file removed.
// A crash before that commit leaves the file intact and nothing imported.
package vault
