package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"gabarit/internal/face"
)

// testClock is a settable clock for WithClock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openTest opens a store in a fresh temporary directory, closed at cleanup.
func openTest(t testing.TB, opts ...Option) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "gabarit.db"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func validSource() Source {
	return Source{
		Kind:          KindFolder,
		Locator:       "/srv/collections/a",
		Controller:    "Example Org",
		Purpose:       "find missing persons",
		LegalBasis:    BasisPublicTask,
		Art9Condition: "9(2)(g) substantial public interest",
		Jurisdiction:  "FR",
		Retention:     30 * 24 * time.Hour,
		CreatedBy:     "admin-1",
	}
}

func mustSource(t testing.TB, db *DB, mod func(*Source)) int64 {
	t.Helper()
	s := validSource()
	if mod != nil {
		mod(&s)
	}
	id, err := db.CreateSource(context.Background(), s)
	if err != nil {
		t.Fatalf("CreateSource: %v", err)
	}
	return id
}

func testImage(sourceID int64, n int) Image {
	return Image{
		SourceID:  sourceID,
		SHA256:    sha256.Sum256(fmt.Appendf(nil, "image %d", n)),
		Locator:   fmt.Sprintf("dir/img%04d.jpg", n),
		SizeBytes: 100_000 + int64(n),
		Width:     1920,
		Height:    1080,
	}
}

// testFaces returns n valid faces whose templates have tmplSize bytes and
// depend on seed.
func testFaces(n, tmplSize, seed int) []Face {
	faces := make([]Face, n)
	for i := range faces {
		tmpl := make([]byte, tmplSize)
		for j := range tmpl {
			tmpl[j] = byte(seed*31 + i*7 + j)
		}
		faces[i] = Face{
			Box:       face.Box{X: float64(10 * i), Y: 20, W: 64.5, H: 80.25},
			Landmarks: face.Landmarks{{X: 1, Y: 2}, {X: 3.5, Y: 4}, {X: 5, Y: 6.25}, {X: 7, Y: 8}, {X: 9, Y: 10.5}},
			Score:     0.875,
			Quality:   0.5,
			ModelID:   "test-model-v1",
			Dim:       128,
			Template:  tmpl,
		}
	}
	return faces
}

func count(t testing.TB, db *DB, table string) int64 {
	t.Helper()
	var n int64
	if err := db.r.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func schemaOf(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.r.Query(`SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func version(t *testing.T, db *DB) int {
	t.Helper()
	var v int
	if err := db.r.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenMigratesFromEmpty(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	if got := version(t, db); got != schemaVersion {
		t.Errorf("schema version = %d, want %d", got, schemaVersion)
	}
	for _, table := range []string{"sources", "source_keys", "images", "faces", "subjects", "searches", "audit", "ingest_progress"} {
		if n := count(t, db, table); n != 0 {
			t.Errorf("%s has %d rows, want 0", table, n)
		}
	}
}

func TestReopenIsNoop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	id := mustSource(t, db, nil)
	before := schemaOf(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if got := version(t, db); got != schemaVersion {
		t.Errorf("schema version = %d, want %d", got, schemaVersion)
	}
	if after := schemaOf(t, db); !reflect.DeepEqual(before, after) {
		t.Errorf("schema changed on reopen:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := db.Source(ctx, id); err != nil {
		t.Errorf("source lost on reopen: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`UPDATE schema_version SET version = ?`, schemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open of a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenRejectsURIPaths(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", "x.db?mode=ro", "file:x.db"} {
		if _, err := Open(context.Background(), path); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q) err = %v, want ErrInvalid", path, err)
		}
	}
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	tests := []struct {
		name   string
		pool   *sql.DB
		pragma string
		want   string
	}{
		{name: "writer journal", pool: db.w.DB, pragma: "journal_mode", want: "wal"},
		{name: "reader journal", pool: db.r.DB, pragma: "journal_mode", want: "wal"},
		{name: "writer synchronous", pool: db.w.DB, pragma: "synchronous", want: "2"},
		{name: "writer foreign keys", pool: db.w.DB, pragma: "foreign_keys", want: "1"},
		{name: "reader foreign keys", pool: db.r.DB, pragma: "foreign_keys", want: "1"},
		{name: "writer busy timeout", pool: db.w.DB, pragma: "busy_timeout", want: "5000"},
		{name: "reader busy timeout", pool: db.r.DB, pragma: "busy_timeout", want: "5000"},
		{name: "writer secure delete", pool: db.w.DB, pragma: "secure_delete", want: "1"},
		{name: "reader query only", pool: db.r.DB, pragma: "query_only", want: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got string
			if err := tt.pool.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
			}
		})
	}
	if _, err := db.r.ExecContext(ctx, `DELETE FROM sources`); err == nil {
		t.Error("a reader connection accepted a write")
	}
}

func TestTxRollsBackOnErrorAndPanic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	errBoom := errors.New("boom")
	err := db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.CreateSource(ctx, validSource()); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Tx err = %v, want errBoom", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic not propagated")
			}
		}()
		_ = db.Tx(ctx, func(tx *Tx) error { // the panic is the outcome under test
			if _, err := tx.CreateSource(ctx, validSource()); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if n := count(t, db, "sources"); n != 0 {
		t.Errorf("sources = %d after rolled-back transactions, want 0", n)
	}
	// The writer connection is usable again.
	mustSource(t, db, nil)
}

func TestConcurrentReadersDuringWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	src := mustSource(t, db, nil)
	const images = 200

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range images {
			if _, _, err := db.AddImage(ctx, testImage(src, i), testFaces(3, 512, i)); err != nil {
				errs <- fmt.Errorf("AddImage %d: %w", i, err)
				return
			}
		}
	}()
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last int64
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads == 0 {
						errs <- fmt.Errorf("reader %d never read", r)
					}
					return
				default:
				}
				n, err := db.FaceCount(ctx)
				if err != nil {
					errs <- fmt.Errorf("reader %d: FaceCount: %w", r, err)
					return
				}
				if n < last || n%3 != 0 {
					errs <- fmt.Errorf("reader %d: face count %d after %d: not a committed state", r, n, last)
					return
				}
				last = n
				if _, err := db.Sources(ctx); err != nil {
					errs <- fmt.Errorf("reader %d: Sources: %w", r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := db.FaceCount(ctx); err != nil || n != 3*images {
		t.Errorf("FaceCount = %d, %v; want %d", n, err, 3*images)
	}
}

// TestFileMode: the database and its WAL are readable by their owner only.
func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateSource(context.Background(), validSource()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", p, fi.Mode().Perm())
		}
	}
}

// downs undo migration i (downs[i] takes the schema from version i back to
// i-1), for the tests that open a file written by an older binary. Only the
// migrations those tests step back over are listed.
var downs = map[int]string{
	14: `DROP TABLE index_pending_deletes; DROP TABLE index_cursors`,
	13: `DROP TABLE rights_packages; DROP TABLE leases; DROP INDEX ingest_job_parts_state; DROP TABLE ingest_job_parts;
DROP INDEX ingest_jobs_state; DROP INDEX ingest_jobs_active; DROP TABLE ingest_jobs`,
	12: `DROP TABLE index_outbox_pruned; DROP INDEX index_outbox_model; DROP TABLE index_outbox`,
	11: `DROP TABLE vault_imports; DROP TABLE vault_state; DROP INDEX vault_entries_request; DROP TABLE vault_entries`,
	// 10 rebuilt rights_requests with a check that means the same in the
	// driver's SQLite as before; running it again is harmless.
	10: `SELECT 1`,
	9:  `DROP TABLE quarantine`,
	8:  `DROP INDEX audit_at; DROP INDEX audit_object; DROP INDEX audit_action; DROP INDEX audit_actor`,
	7: `DROP TABLE rights_notices; DROP TABLE rights_records; DROP TABLE rights_identity; DROP TABLE rights_selfies;
DROP TABLE rights_candidates; DROP TABLE rights_reviews`,
	5: `DROP TABLE api_tokens; DROP TABLE sessions; ALTER TABLE users DROP COLUMN password_hash`,
	6: `DROP TABLE settings; DROP TABLE rejections; DROP INDEX searches_case_ref; DROP INDEX searches_actor;
ALTER TABLE searches DROP COLUMN probe_crop; ALTER TABLE searches DROP COLUMN probe_face;
ALTER TABLE searches DROP COLUMN results; ALTER TABLE searches DROP COLUMN above;
ALTER TABLE searches DROP COLUMN exploratory; ALTER TABLE searches DROP COLUMN gallery;
ALTER TABLE searches DROP COLUMN fpir; ALTER TABLE searches DROP COLUMN group_point;
ALTER TABLE searches DROP COLUMN operating_point`,
	4: `DROP TABLE confirmations; DROP TABLE users`,
	3: `DROP TABLE rights_requests`,
}

// reopenFrom turns the file at path, open as db, into one at schema version
// v (undoing the later migrations), closes it and opens it again, which
// migrates it up to the current version; the reopened store is closed at
// the end of the test.
func reopenFrom(t *testing.T, path string, db *DB, v int) *DB {
	t.Helper()
	for i := schemaVersion; i > v; i-- {
		down, ok := downs[i]
		if !ok {
			t.Fatalf("no down migration for version %d: add one to downs", i)
		}
		if _, err := db.w.Exec(down); err != nil {
			t.Fatalf("undo migration %d: %v", i, err)
		}
	}
	if _, err := db.w.Exec(`UPDATE schema_version SET version = ?`, v); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("reopen at version %d: %v", v, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
