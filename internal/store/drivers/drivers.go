// Package drivers registers the database/sql drivers the store speaks:
// "sqlite" (modernc.org/sqlite, pure Go, the embedded default) and "pgx"
// (github.com/jackc/pgx/v5, PostgreSQL). Only the programs that open a store
// import it (cmd/gabarit, and the tests that open one), so that the use
// cases, which work on the store's API, link neither database driver.
package drivers

import (
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)
