package store

import (
	"context"
	"fmt"
)

// Ping checks that the database answers a read, for a readiness probe.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
