package config

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "gabarit/internal/store/drivers"
)

// TestPostgresServer: the database GABARIT_TEST_POSTGRES names (started by
// scripts/postgres.sh, see .ci/run and make test) is accepted by Load as
// GABARIT_STORE and answers through the "pgx" driver as PostgreSQL 15.
func TestPostgresServer(t *testing.T) {
	dsn := os.Getenv("GABARIT_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("GABARIT_REQUIRE_POSTGRES") != "" {
			t.Fatal("GABARIT_TEST_POSTGRES is not set, but GABARIT_REQUIRE_POSTGRES is: start the test cluster with " +
				"scripts/postgres.sh start and export GABARIT_TEST_POSTGRES=$(scripts/postgres.sh url)")
		}
		t.Skip("no PostgreSQL: set GABARIT_TEST_POSTGRES=$(scripts/postgres.sh url) after scripts/postgres.sh start")
	}
	c, err := Load(Flags{Data: t.TempDir()}, func(k string) string {
		if k == EnvStore {
			return dsn
		}
		return ""
	})
	if err != nil {
		t.Fatalf("GABARIT_TEST_POSTGRES is not a store URL gabarit accepts: %v", err)
	}
	if !c.Postgres() {
		t.Fatalf("dialect %s", c.Dialect())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("pgx", c.StoreTarget())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var num int
	var version string
	if err := db.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int, version()").Scan(&num, &version); err != nil {
		t.Fatalf("query %s: %v", c.RedactedStore(), err)
	}
	if num/10000 != 15 || !strings.HasPrefix(version, "PostgreSQL 15") {
		t.Errorf("server version %d (%s), want PostgreSQL 15", num, version)
	}
	// The script's user owns its database: it creates a schema and a table
	// in it (what a test that wants a clean database does).
	schema := fmt.Sprintf("gabarit_config_probe_%d", os.Getpid())
	for _, q := range []string{"CREATE SCHEMA " + schema, "CREATE TABLE " + schema + ".t (id BIGINT PRIMARY KEY)",
		"DROP SCHEMA " + schema + " CASCADE"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}
