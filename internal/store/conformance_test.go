package store_test

import (
	"path/filepath"
	"testing"

	_ "gabarit/internal/store/drivers"
	"gabarit/internal/store/storetest"
)

// TestConformanceSQLite runs the store conformance suite on SQLite files.
func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "gabarit.db") })
}

// TestConformancePostgres runs the store conformance suite on PostgreSQL,
// a new database per subtest on the server GABARIT_TEST_POSTGRES names
// (skipped without it, failed when GABARIT_REQUIRE_POSTGRES is set).
func TestConformancePostgres(t *testing.T) {
	storetest.Postgres(t) // skips (or fails) here, once, without a server
	storetest.Run(t, func(t *testing.T) string { return storetest.Postgres(t) })
}
