package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// writerLockKey is the PostgreSQL advisory lock every write transaction
// takes (transaction-scoped): the store has one writer at a time, whichever
// instance it runs in. Its value is arbitrary; it only has to be the same
// in every gabarit ("gabarit" in ASCII).
const writerLockKey int64 = 0x676162617269

// migrateLockKey is the session-scoped advisory lock held while an instance
// migrates the schema, so two instances starting at once do not both do it.
const migrateLockKey int64 = writerLockKey + 1

// pgConnectTimeout bounds how long opening waits for a server that does not
// answer, when the URL does not say.
const pgConnectTimeout = 10 * time.Second

// openPostgres opens the PostgreSQL database named by the URL dsn. Reads
// and writes share one pool; write transactions serialise on an advisory
// lock (DB.Tx).
func openPostgres(ctx context.Context, dsn string, o options) (*DB, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("open store: %s is not a PostgreSQL URL (want postgres://user@host:port/database): %w", RedactDSN(dsn), ErrInvalid)
	}
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", fmt.Sprint(int(pgConnectTimeout/time.Second)))
		u.RawQuery = q.Encode()
	}
	where := RedactDSN(dsn)
	pool, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	pool.SetMaxOpenConns(max(8, 2*o.readers))
	pool.SetMaxIdleConns(max(4, o.readers))
	pool.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, pgConnectTimeout+5*time.Second)
	defer cancel()
	if err := pool.PingContext(pctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open store: cannot reach PostgreSQL at %s: %w", where, err), pool.Close())
	}
	c := conn{DB: pool, d: postgresDialect}
	if err := migratePostgres(ctx, pool); err != nil {
		return nil, errors.Join(fmt.Errorf("open store %s: %w", where, err), pool.Close())
	}
	return &DB{w: c, r: c, d: postgresDialect, now: o.now}, nil
}

// RedactDSN returns dsn with its password, if any, replaced by "xxxxx", for
// messages: a DSN is never printed with its password.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(an unreadable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// migratePostgres brings the database to the PostgreSQL schema's current
// version, one migration per transaction. Each transaction takes an advisory
// lock and re-reads the version, so instances starting together migrate once.
func migratePostgres(ctx context.Context, pool *sql.DB) error {
	for {
		done, err := migratePostgresOne(ctx, pool)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func migratePostgresOne(ctx context.Context, pool *sql.DB) (done bool, err error) {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error being returned matters more
		}
	}()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
		return false, fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)`); err != nil {
		return false, fmt.Errorf("create schema_version: %w", err)
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return false, fmt.Errorf("init schema_version: %w", err)
		}
	case err != nil:
		return false, fmt.Errorf("read schema version: %w", err)
	}
	want := len(pgMigrations)
	switch {
	case version > want:
		return false, fmt.Errorf("schema version %d, binary knows %d: %w", version, want, ErrSchemaTooNew)
	case version == want:
		return true, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, pgMigrations[version]); err != nil {
		return false, fmt.Errorf("migration %d: %w", version+1, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = $1`, version+1); err != nil {
		return false, fmt.Errorf("migration %d: set version: %w", version+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %d: commit: %w", version+1, err)
	}
	return false, nil
}
