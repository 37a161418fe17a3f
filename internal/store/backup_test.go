package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gabarit/internal/dsr"
)

// sqlite3CLI returns the path of Debian's sqlite3 command-line shell
// (scripts/install-deps.sh installs it). Without it the test is skipped, or
// fails when GABARIT_REQUIRE_SQLITE3 or GABARIT_REQUIRE_SHARED is set (as
// CI does), so the dump test never passes there by skipping.
func sqlite3CLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sqlite3")
	if err == nil {
		return p
	}
	for _, v := range []string{"GABARIT_REQUIRE_SQLITE3", "GABARIT_REQUIRE_SHARED"} {
		if os.Getenv(v) != "" {
			t.Fatalf("sqlite3 not found and %s is set: %v; run scripts/install-deps.sh", v, err)
		}
	}
	t.Skipf("sqlite3 not found: install Debian's sqlite3 package (scripts/install-deps.sh), or set GABARIT_REQUIRE_SQLITE3=1 to fail instead")
	return ""
}

// fillForBackup writes rows to most tables: a source, images with faces, a
// search, users, an open and a closed rights request, audit entries.
func fillForBackup(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	src := mustSource(t, db, nil)
	for i := range 3 {
		if _, _, err := db.AddImage(ctx, testImage(src, i), testFaces(2, 64, i)); err != nil {
			t.Fatal(err)
		}
	}
	mustRights(t, db, dsr.Erasure) // open: result is NULL
	closed := mustRights(t, db, dsr.Access)
	if err := db.Tx(ctx, func(tx *Tx) error {
		_, err := tx.UpdateRightsRequest(ctx, closed, "dpo-1", func(r *dsr.Request, now time.Time) error {
			return r.Advance(now, dsr.Refused, "manifestly unfounded")
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.AppendAudit(ctx, nil, AuditEntry{Actor: "admin-1", Action: "test.entry", Object: fmt.Sprintf("x/%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDebianSQLite3 is the backup people make with the sqlite3 shell: on a
// store holding an open rights request (result NULL), Debian 12's sqlite3
// (3.40, where json_valid(NULL) is 0) must find the file intact, and
// .dump piped into a new database must keep every row of every table.
func TestDebianSQLite3(t *testing.T) {
	cli := sqlite3CLI(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fillForBackup(t, db)
	var open int
	if err := db.r.QueryRow(`SELECT count(*) FROM rights_requests WHERE result IS NULL`).Scan(&open); err != nil || open == 0 {
		t.Fatalf("open requests with result NULL: %d, %v", open, err)
	}
	want, err := CheckFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := exec.Command(cli, "-version").Output(); len(v) > 0 {
		t.Logf("sqlite3 %s", strings.Fields(string(v))[0])
	}

	out, err := exec.Command(cli, path, "PRAGMA integrity_check").CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != "ok" {
		t.Errorf("sqlite3 PRAGMA integrity_check = %q, %v; want ok", got, err)
	}

	copyPath := filepath.Join(dir, "new.db")
	sh := exec.Command("sh", "-c", `"$1" "$2" .dump | "$1" -bail "$3"`, "sh", cli, path, copyPath)
	if out, err := sh.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("sqlite3 .dump | sqlite3 new.db: %v: %s", err, out)
	}
	got, err := CheckFile(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("after .dump | sqlite3:\n got %+v\nwant %+v", got, want)
	}
	if want.Rows["rights_requests"] != 2 || want.Rows["audit"] == 0 {
		t.Errorf("the store under test holds %d rights requests and %d audit entries, want 2 and some", want.Rows["rights_requests"], want.Rows["audit"])
	}

	// The restored copy is a store this binary opens, with its log intact.
	db2, err := Open(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if ok, bad, err := db2.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit of the dumped copy: ok %v, first bad %d, %v", ok, bad, err)
	}
}

// TestMigrationKeepsRightsRequests checks that migration 10 (the rebuild of
// rights_requests) keeps every row, the AUTOINCREMENT counter above the
// highest id, and the rows that refer to requests.
func TestMigrationKeepsRightsRequests(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fillForBackup(t, db)
	// A third request, then deleted around the store: its id must not be
	// given again.
	gone := mustRights(t, db, dsr.Objection)
	if _, err := db.w.Exec(`DELETE FROM rights_requests WHERE id = ?`, gone); err != nil {
		t.Fatal(err)
	}
	before, err := CheckFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var rowsBefore string
	if err := db.r.QueryRow(`SELECT group_concat(id || kind || state || ifnull(result, '-'), ',') FROM rights_requests`).Scan(&rowsBefore); err != nil {
		t.Fatal(err)
	}
	db = reopenFrom(t, path, db, 9)
	after, err := CheckFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// Stepping back over migration 12 drops the index outbox, which it does
	// not backfill (an older index file is rebuilt instead).
	delete(before.Rows, "index_outbox")
	delete(after.Rows, "index_outbox")
	if !reflect.DeepEqual(before, after) {
		t.Errorf("across migration 10:\n got %+v\nwant %+v", after, before)
	}
	var rowsAfter, schema string
	if err := db.r.QueryRow(`SELECT group_concat(id || kind || state || ifnull(result, '-'), ',') FROM rights_requests`).Scan(&rowsAfter); err != nil {
		t.Fatal(err)
	}
	if rowsAfter != rowsBefore {
		t.Errorf("rights requests after migration 10 = %q, want %q", rowsAfter, rowsBefore)
	}
	if err := db.r.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = 'rights_requests'`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(schema, "CHECK (result IS NULL OR json_valid(result))") {
		t.Errorf("rights_requests after migration 10:\n%s", schema)
	}
	next := mustRights(t, db, dsr.Access)
	if next <= gone {
		t.Errorf("a new request got id %d, want more than %d (ids are never reused)", next, gone)
	}
	// Foreign keys are on again after migrating.
	var fk int
	if err := db.w.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("PRAGMA foreign_keys after migrating = %d, %v; want 1", fk, err)
	}
}

// TestSnapshotWhileWriting takes snapshots while another connection keeps
// committing: each snapshot is the database of one moment (every image with
// the audit entry committed with it), intact, and its log verifies.
func TestSnapshotWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, filepath.Join(dir, "gabarit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := mustSource(t, db, nil)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			err := db.Tx(ctx, func(tx *Tx) error {
				id, _, err := tx.AddImage(ctx, testImage(src, i), testFaces(1, 64, i))
				if err != nil {
					return err
				}
				_, err = tx.AppendAudit(ctx, AuditEntry{Actor: "ingest", Action: "image.add", Object: fmt.Sprintf("image/%d", id)})
				return err
			})
			if err != nil {
				writeErr = err
				return
			}
		}
	}()
	var last int64
	for n := range 5 {
		dst := filepath.Join(dir, fmt.Sprintf("snap%d.db", n))
		if err := db.Snapshot(ctx, dst); err != nil {
			t.Fatal(err)
		}
		rep, err := CheckFile(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := Open(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		var added int64
		if err := snap.r.QueryRow(`SELECT count(*) FROM audit WHERE action = 'image.add'`).Scan(&added); err != nil {
			t.Fatal(err)
		}
		ok, bad, err := snap.VerifyAudit(ctx)
		snap.Close()
		if !ok || err != nil {
			t.Errorf("snapshot %d: VerifyAudit ok %v, first bad %d, %v", n, ok, bad, err)
		}
		if rep.Rows["images"] != added || rep.Rows["faces"] != added {
			t.Errorf("snapshot %d: %d images, %d faces, %d image.add entries: not one moment", n, rep.Rows["images"], rep.Rows["faces"], added)
		}
		if rep.Rows["images"] < last {
			t.Errorf("snapshot %d has %d images, the one before %d", n, rep.Rows["images"], last)
		}
		last = rep.Rows["images"]
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("the writer failed during the snapshots: %v", writeErr)
	}
	if last == 0 {
		t.Log("the writer committed nothing before the last snapshot")
	}
}

// TestCheckFileDamaged: a file whose pages were overwritten is reported as
// damaged, not opened as if intact.
func TestCheckFileDamaged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openTest(t)
	fillForBackup(t, db)
	dst := filepath.Join(dir, "snap.db")
	if err := db.Snapshot(ctx, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	// The header of every page after the first (b-tree page kind, cell
	// count, cell pointers).
	for p := 4096; p+16 < len(b); p += 4096 {
		for i := p; i < p+16; i++ {
			b[i] ^= 0x5a
		}
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = CheckFile(ctx, dst)
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("CheckFile of a damaged file = %v, want ErrDamaged", err)
	}
}
