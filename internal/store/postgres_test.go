package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

func pgSource() store.Source {
	return store.Source{Kind: store.KindFolder, Locator: "/srv/a", Controller: "Example Org", Purpose: "find missing persons",
		LegalBasis: store.BasisPublicTask, Art9Condition: "9(2)(g) substantial public interest", Jurisdiction: "FR",
		Retention: 30 * 24 * time.Hour, CreatedBy: "admin-1"}
}

// TestPostgresBadTargets: a wrong URL, a server that is down and a database
// that does not exist give errors that say what failed, without the
// password.
func TestPostgresBadTargets(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name, dsn, want string
	}{
		{"no host", "postgres:///gabarit", "not a PostgreSQL URL"},
		{"server down", "postgres://gabarit:s3cret@127.0.0.1:1/gabarit?connect_timeout=2", "cannot reach PostgreSQL at postgres://gabarit:xxxxx@127.0.0.1:1/gabarit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(ctx, tt.dsn)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%s) succeeded", store.RedactDSN(tt.dsn))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v; want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open's error shows the password: %v", err)
			}
		})
	}
	t.Run("no such database", func(t *testing.T) {
		dsn := storetest.Postgres(t)
		i := strings.LastIndex(dsn, "/")
		missing := dsn[:i] + "/gabarit_no_such_database"
		db, err := store.Open(ctx, missing)
		if err == nil {
			db.Close()
			t.Fatal("Open of a database that does not exist succeeded")
		}
		if !strings.Contains(err.Error(), "cannot reach PostgreSQL") || !strings.Contains(err.Error(), "gabarit_no_such_database") {
			t.Errorf("Open: %v; want it to name the database it could not reach", err)
		}
	})
}

// TestPostgresSchemaTooNew: a database migrated by a newer gabarit is
// refused, and left as it is.
func TestPostgresSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.Postgres(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw := rawPG(t, dsn)
	if _, err := raw.Exec(`UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if db, err := store.Open(ctx, dsn); !errors.Is(err, store.ErrSchemaTooNew) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("Open of a newer schema: %v; want ErrSchemaTooNew", err)
	}
}

// TestPostgresLostConnection: the server ends the connection of a write
// transaction half-way through a batch: the batch fails with an error and
// nothing of it is written; the store works again afterwards.
func TestPostgresLostConnection(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.Postgres(t)
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src, err := db.CreateSource(ctx, pgSource())
	if err != nil {
		t.Fatal(err)
	}
	raw := rawPG(t, dsn)
	err = db.Tx(ctx, func(tx *store.Tx) error {
		for i := range 3 {
			if _, _, err := tx.AddImage(ctx, pgImage(src, i), nil); err != nil {
				return err
			}
		}
		// Another session ends every other connection to this database:
		// ours, in the middle of the batch.
		if _, err := raw.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			return fmt.Errorf("terminate: %w", err)
		}
		for i := 3; i < 6; i++ {
			if _, _, err := tx.AddImage(ctx, pgImage(src, i), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		t.Fatal("a batch whose connection was lost committed")
	}
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM images`).Scan(&n); err != nil || n != 0 {
		t.Errorf("images after the lost batch = %d, %v; want 0", n, err)
	}
	// The pool drops the dead connection: the next batch commits.
	var lastErr error
	for range 3 {
		if _, _, lastErr = db.AddImage(ctx, pgImage(src, 10), nil); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("AddImage after the lost connection: %v", lastErr)
	}
	if ok, bad, err := db.VerifyAudit(ctx); err != nil || !ok {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}

// TestPostgresTwoInstancesOneChain: two stores opened on one database (two
// instances) append audit entries at once: one linear chain, no id twice.
func TestPostgresTwoInstancesOneChain(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.Postgres(t)
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	src, err := dbs[0].CreateSource(ctx, pgSource())
	if err != nil {
		t.Fatal(err)
	}
	const each = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for w, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, _, err := db.AddImage(ctx, pgImage(src, 1000*w+i), nil); err != nil {
					errs <- err
					return
				}
				if _, err := db.AppendAudit(ctx, nil, store.AuditEntry{Actor: fmt.Sprintf("instance-%d", w), Action: "test.append", Object: "x"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ok, bad, err := dbs[1].VerifyAudit(ctx); err != nil || !ok {
		t.Fatalf("VerifyAudit after two instances = %v, %d, %v", ok, bad, err)
	}
	raw := rawPG(t, dsn)
	var n, maxID int64
	if err := raw.QueryRow(`SELECT count(*), max(id) FROM audit WHERE action = 'test.append'`).Scan(&n, &maxID); err != nil || n != 2*each {
		t.Fatalf("appended entries = %d, %v; want %d", n, err, 2*each)
	}
	if err := raw.QueryRow(`SELECT count(*) FROM images`).Scan(&n); err != nil || n != 2*each {
		t.Fatalf("images = %d, %v; want %d", n, err, 2*each)
	}
}

func pgImage(src int64, i int) store.Image {
	return store.Image{SourceID: src, SHA256: sha256.Sum256(fmt.Append(nil, "image", i)), Locator: fmt.Sprintf("img-%04d.jpg", i),
		SizeBytes: 1000, Width: 250, Height: 250}
}

// rawPG is a plain connection to the database at dsn, around the store.
func rawPG(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// TestPostgresSharedWitness: instances on two hosts share one log, each
// with its own witness file. Entries the other instance appended are not
// an alarm; removing entries a witness saw is, for that witness.
func TestPostgresSharedWitness(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.Postgres(t)
	dir := t.TempDir()
	open := func(name string) *store.DB {
		db, err := store.Open(ctx, dsn, store.WithAuditWitness(filepath.Join(dir, name+".head")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open("a"), open("b")
	appendBy := func(db *store.DB, who string, n int) error {
		for range n {
			if _, err := db.AppendAudit(ctx, nil, store.AuditEntry{Actor: who, Action: "test.append", Object: "x"}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, step := range []struct {
		db  *store.DB
		who string
		n   int
	}{{a, "a", 3}, {b, "b", 2}, {a, "a", 1}, {b, "b", 2}} {
		if err := appendBy(step.db, step.who, step.n); err != nil {
			t.Fatalf("%s appends after the other instance: %v", step.who, err)
		}
	}
	if _, err := b.CheckAudit(ctx); err != nil {
		t.Fatalf("CheckAudit on b: %v", err)
	}
	// Entries 7 and 8 (b's last two) are removed around gabarit.
	raw := rawPG(t, dsn)
	for _, q := range []string{`ALTER TABLE audit DISABLE TRIGGER audit_no_delete`, `DELETE FROM audit WHERE id > 6`, `ALTER TABLE audit ENABLE TRIGGER audit_no_delete`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := appendBy(b, "b", 1); !errors.Is(err, store.ErrAuditTampered) {
		t.Errorf("b appends after its entries were removed: %v; want ErrAuditTampered", err)
	}
	if _, err := b.CheckAudit(ctx); !errors.Is(err, store.ErrAuditTampered) {
		t.Errorf("CheckAudit on b after its entries were removed: %v; want ErrAuditTampered", err)
	}
	// a saw up to entry 6, which is still there: it cannot tell.
	if _, err := a.CheckAudit(ctx); err != nil {
		t.Errorf("CheckAudit on a: %v", err)
	}
	for _, q := range []string{`ALTER TABLE audit DISABLE TRIGGER audit_no_delete`, `DELETE FROM audit WHERE id > 4`, `ALTER TABLE audit ENABLE TRIGGER audit_no_delete`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := a.CheckAudit(ctx); !errors.Is(err, store.ErrAuditTampered) {
		t.Errorf("CheckAudit on a after entries it saw were removed: %v; want ErrAuditTampered", err)
	}
}
