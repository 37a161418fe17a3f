package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"
)

// Sentinel errors returned (wrapped) by the store; test them with errors.Is.
var (
	// ErrNotFound is returned when a requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when a row with the same identity already exists.
	ErrExists = errors.New("already exists")
	// ErrInvalid is returned when an argument fails validation; nothing is written.
	ErrInvalid = errors.New("invalid argument")
	// ErrSchemaTooNew is returned by Open when the file was migrated by a
	// newer gabarit than this one.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

// busyTimeoutMS is how long a connection waits for a lock held by another
// process before giving up with SQLITE_BUSY, in milliseconds.
const busyTimeoutMS = 5000

// DB is the relational store over one SQLite file or one PostgreSQL
// database. It is safe for concurrent use by multiple goroutines and, on
// PostgreSQL, by many processes on many hosts.
type DB struct {
	w       conn // the writer: on SQLite one connection, IMMEDIATE transactions
	r       conn // the readers: on SQLite read-only connections; on PostgreSQL the same pool as w
	d       dialect
	now     func() time.Time
	witness *witness // the audit head kept outside the database; nil when none
}

// Option configures Open.
type Option func(*options)

type options struct {
	witnesses   []string
	witnessMAC  func([]byte) ([]byte, error)
	now         func() time.Time
	synchronous string
	readers     int
}

// WithClock makes the store read the time from now instead of time.Now; it
// stamps created_at, ingested_at, searches and audit entries.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// withSynchronous sets the writer's PRAGMA synchronous (for benchmarks).
func withSynchronous(mode string) Option {
	return func(o *options) { o.synchronous = mode }
}

// IsPostgres reports whether target names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgres(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Open opens the store at target, migrates it to the current schema and
// returns it. target is the path of a SQLite file (created if needed), or a
// postgres:// URL of a PostgreSQL database (which must exist). Opening a
// store whose schema is newer than this binary fails with ErrSchemaTooNew.
func Open(ctx context.Context, target string, opts ...Option) (*DB, error) {
	o := options{now: time.Now, synchronous: "FULL", readers: max(4, runtime.NumCPU())}
	for _, opt := range opts {
		opt(&o)
	}
	var (
		db  *DB
		err error
	)
	if IsPostgres(target) {
		db, err = openPostgres(ctx, target, o)
	} else {
		db, err = openSQLite(ctx, target, o)
	}
	if err != nil {
		return nil, err
	}
	if len(o.witnesses) > 0 {
		db.witness = &witness{files: o.witnesses, mac: o.witnessMAC, shared: db.d == postgresDialect}
	}
	return db, nil
}

// openSQLite opens the SQLite file at path: one writer connection and a
// pool of read-only ones.
func openSQLite(ctx context.Context, path string, o options) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open store: path must be a plain file name: %w", ErrInvalid)
	}

	// SQLite creates the file (and gives its WAL and shared-memory files the
	// same mode) with the umask's permissions; the store holds personal data,
	// so it is created readable by its owner only.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}

	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	common.Add("_pragma", "foreign_keys(1)")

	wq := cloneValues(common)
	wq.Add("_pragma", "journal_mode(WAL)")
	// FULL makes every committed write (an erasure, an audit entry) survive a
	// power loss; BenchmarkAddImage measures it at over 10x the ingest rate.
	wq.Add("_pragma", "synchronous("+o.synchronous+")")
	wq.Add("_pragma", "secure_delete(1)") // overwrite deleted keys and templates in the file
	wq.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store writer: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	w := conn{DB: wdb, d: sqliteDialect}
	if err := w.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open store writer: %w", err), w.Close())
	}
	if err := migrate(ctx, w.DB); err != nil {
		return nil, errors.Join(fmt.Errorf("open store: %w", err), w.Close())
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	rq.Set("_txlock", "deferred")
	rdb, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open store readers: %w", err), w.Close())
	}
	rdb.SetMaxOpenConns(o.readers)
	rdb.SetMaxIdleConns(o.readers)
	if err := rdb.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open store readers: %w", err), rdb.Close(), w.Close())
	}
	return &DB{w: w, r: conn{DB: rdb, d: sqliteDialect}, d: sqliteDialect, now: o.now}, nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Close closes the reader pool and the writer. Pending transactions must
// have finished.
func (db *DB) Close() error {
	if db.r.DB == db.w.DB {
		return db.w.Close()
	}
	return errors.Join(db.r.Close(), db.w.Close())
}

// Checkpoint copies the WAL into the database file and truncates the WAL, so
// that deleted data does not linger in it. A reader still using an older
// snapshot can keep the WAL from being reset; that is not an error.
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.d == postgresDialect {
		return nil // PostgreSQL recycles its write-ahead log itself
	}
	if _, err := db.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Tx is a write transaction on the writer connection, passed to the function
// given to DB.Tx. Its methods are the store's write operations; a Tx must not
// be used after that function returns.
type Tx struct {
	tx   *txConn
	now  func() time.Time
	head *AuditHead // the last audit entry appended in this transaction
	base AuditHead  // the log's last entry before this transaction's first
}

// Tx runs fn in one IMMEDIATE write transaction and commits it if fn returns
// nil; otherwise (or if fn panics) it rolls back and returns fn's error.
// Write transactions are serialised: fn holds the only writer connection, so
// it must not call write methods of db itself, and should be short.
func (db *DB) Tx(ctx context.Context, fn func(*Tx) error) error {
	return db.tx(ctx, false, fn)
}

// tx is Tx; with resetWitness, the witnesses are rewritten without being
// compared with the log first (ResetAuditWitness).
func (db *DB) tx(ctx context.Context, resetWitness bool, fn func(*Tx) error) (err error) {
	stx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			if rerr := stx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) && err != nil {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
		}
	}()
	if db.d == postgresDialect {
		// One writer at a time, as on SQLite, across every instance: audit
		// entries chain in commit order, ids commit in the order they were
		// drawn (the index outbox relies on it), and the checks the store
		// makes before writing still hold when it writes.
		if _, err := stx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, writerLockKey); err != nil {
			return fmt.Errorf("take the store's write lock: %w", err)
		}
	}
	tx := &Tx{tx: stx, now: db.now}
	if err := fn(tx); err != nil {
		return err
	}
	// Audit entries commit only if every witness names the entry before
	// them: a log whose last entries were removed stops here, and its
	// witness keeps the evidence.
	if tx.head != nil && db.witness != nil {
		if err := db.witness.prepare(ctx, stx, tx.base, *tx.head, resetWitness); err != nil {
			return err
		}
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	if tx.head != nil && db.witness != nil {
		db.witness.commit(*tx.head)
	}
	return nil
}

// ms converts t to stored Unix milliseconds.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts stored Unix milliseconds to a UTC time.
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullMS converts t to stored Unix milliseconds, NULL for the zero time.
func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// fromNullMS converts a nullable stored time back; NULL gives the zero time.
func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// scanner is the Scan method shared by *sql.Row and *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// one scans a single row; no row is ErrNotFound. Errors are prefixed with what.
func one[T any](row *sql.Row, scan func(scanner) (T, error), what string) (T, error) {
	v, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// collect reads every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

var (
	_ scanner = (*sql.Row)(nil)
	_ scanner = (*sql.Rows)(nil)
)
