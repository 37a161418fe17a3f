package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Environment variables of the PostgreSQL tests.
const (
	// EnvTestPostgres names the PostgreSQL server the tests may use, as a
	// postgres:// URL of a user allowed to create databases (what
	// scripts/postgres.sh url prints).
	EnvTestPostgres = "GABARIT_TEST_POSTGRES"
	// EnvRequirePostgres, when set, makes a missing EnvTestPostgres a
	// failure rather than a skip (make test and CI set it).
	EnvRequirePostgres = "GABARIT_REQUIRE_POSTGRES"
)

// Postgres returns the URL of a new, empty database gabarit_t_<random> on
// the server GABARIT_TEST_POSTGRES names, dropped when t ends (sessions
// the test left open are ended first). Without the variable
// the test is skipped, or fails when GABARIT_REQUIRE_POSTGRES is set.
func Postgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvTestPostgres)
	if dsn == "" {
		const how = "start the test cluster with scripts/postgres.sh start and export GABARIT_TEST_POSTGRES=$(scripts/postgres.sh url)"
		if os.Getenv(EnvRequirePostgres) != "" {
			t.Fatal("GABARIT_TEST_POSTGRES is not set, but GABARIT_REQUIRE_POSTGRES is: " + how)
		}
		t.Skip("no PostgreSQL: " + how)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("GABARIT_TEST_POSTGRES must be a postgres:// URL (what scripts/postgres.sh url prints)")
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "gabarit_t_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := adminExec(t, dsn, u)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("create test database on %s: %v", u.Redacted(), err)
	}
	admin.Close()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin := adminExec(t, dsn, u)
		defer admin.Close()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	mine := *u
	mine.Path = "/" + name
	mine.RawPath = ""
	return mine.String()
}

// adminExec opens a connection to the server's database named in dsn, to
// create and drop the test databases.
func adminExec(t testing.TB, dsn string, u *url.URL) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", u.Redacted(), err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		t.Fatalf("connect to %s: %v", strings.TrimSpace(u.Redacted()), err)
	}
	return db
}

// dropDatabase drops the test database name, first ending the sessions of
// the current user still connected to it. DROP DATABASE ... WITH (FORCE)
// is not used: it also tries to end an autovacuum worker busy in the
// database, which a user without pg_signal_backend may not do
// (SQLSTATE 42501), where a plain DROP DATABASE cancels the worker
// itself. A session ending takes a moment, so the drop is retried until
// ctx ends.
func dropDatabase(ctx context.Context, admin *sql.DB, name string) error {
	for {
		// Errors here are not fatal: the sessions may already be gone.
		_, _ = admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND usename = current_user AND pid <> pg_backend_pid()`, name)
		_, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
