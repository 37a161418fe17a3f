// Package store is gabarit's relational store: sources, their wrapped data
// keys, images, faces, searches, ingest progress, the rights-request register
// and the hash-chained audit log (whose head can be kept in a witness file
// outside the database, WithAuditWitness), in one SQLite file (the embedded
// default, driver modernc.org/sqlite) or one PostgreSQL database shared by
// many instances (driver github.com/jackc/pgx/v5), through database/sql.
// The store does not register the drivers: a program that opens a store
// imports gabarit/internal/store/drivers, so that the use cases link neither.
//
// # Two dialects
//
// The queries are written once, with ? placeholders, in SQL both databases
// accept (RETURNING ids, ON CONFLICT); a conn rebinds them to $1… for
// PostgreSQL, and the few differences (a list of ids: json_each or a
// bigint[]; insertion order: rowid or an identity column) ask the dialect.
// Each dialect has its own migrations (migrations.go, migrations_pg.go),
// which describe the same tables. On PostgreSQL every write transaction
// first takes one transaction-scoped advisory lock: as on SQLite, the store
// has one writer at a time across every instance, so that audit entries
// chain in commit order (one linear chain whatever the number of
// instances), ids commit in the order they were drawn (the index outbox
// relies on it), and what a write checks before writing still holds when it
// writes (the unique constraints back those checks). Reads take no lock.
// storetest.Run is the behaviour both dialects promise, and runs on both.
//
// # Connections (SQLite)
//
// A DB opens the file twice: a writer pool of exactly one connection, whose
// transactions begin IMMEDIATE so that they take the write lock up front and
// never fail half-way with SQLITE_BUSY, and a pool of read-only connections.
// The file is in WAL mode, so readers never block the writer and the writer
// never blocks readers; writers queue on the single writer connection. The
// writer syncs every commit (synchronous=FULL): a committed erasure or audit
// entry survives a power loss.
//
// # Transactions
//
// Every write is a method of Tx. The methods of DB with the same names run
// that one write in a transaction of its own. To record a change and its
// audit entry atomically, run both inside DB.Tx:
//
//	err := db.Tx(ctx, func(tx *store.Tx) error {
//		if err := tx.DeleteImage(ctx, id); err != nil {
//			return err
//		}
//		_, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: "image.delete", Object: "image/42"})
//		return err
//	})
//
// A function passed to DB.Tx must not call write methods of DB (they wait for
// the writer connection the transaction holds, and deadlock) and does not see
// its own uncommitted writes through the read methods of DB.
//
// # Data
//
// Times are stored as INTEGER Unix milliseconds, UTC, and come back in UTC
// at millisecond precision. Face templates are ciphertext: the store keeps
// them as opaque BLOBs and never decrypts, logs or prints them. Each source's
// data key is stored wrapped by the master key; deleting it (DeleteSourceKey)
// crypto-shreds every template of the source. The writer runs with
// secure_delete on, so deleted rows are overwritten in the file, and
// DB.DeleteSourceKey checkpoints the WAL afterwards.
//
// The audit table is append-only (triggers abort UPDATE and DELETE) and
// hash-chained; VerifyAudit recomputes the chain. Audit details never hold
// biometric data.
//
// Errors wrap the sentinels ErrNotFound, ErrExists, ErrInvalid and
// ErrSchemaTooNew; test them with errors.Is.
package store
