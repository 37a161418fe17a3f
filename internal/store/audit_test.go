package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// appendAudit appends n entries, one per second of the test clock.
func appendAudit(t *testing.T, db *DB, clock *testClock, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		e := AuditEntry{
			Actor:  fmt.Sprintf("operator-%d", i%2),
			Action: "image.delete",
			Object: fmt.Sprintf("image/%d", i+1),
			Detail: json.RawMessage(fmt.Sprintf(`{ "reason": "retention", "n": %d }`, i)),
		}
		id, err := db.AppendAudit(ctx, nil, e)
		if err != nil {
			t.Fatal(err)
		}
		if id != int64(i+1) {
			t.Fatalf("AppendAudit id = %d, want %d", id, i+1)
		}
		clock.Add(time.Second)
	}
}

func verify(t *testing.T, db *DB) (bool, int64) {
	t.Helper()
	ok, bad, err := db.VerifyAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ok, bad
}

func TestAuditChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))

	if ok, bad := verify(t, db); !ok {
		t.Errorf("empty log: VerifyAudit = false at %d", bad)
	}
	appendAudit(t, db, clock, 3)

	// An entry written in the transaction of the change it records.
	src := mustSource(t, db, nil)
	imageID, _, err := db.AddImage(ctx, testImage(src, 1), testFaces(1, 16, 1))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Tx(ctx, func(tx *Tx) error {
		if err := tx.DeleteImage(ctx, imageID); err != nil {
			return err
		}
		_, err := db.AppendAudit(ctx, tx, AuditEntry{Actor: "dpo-1", Action: "image.erase", Object: fmt.Sprintf("image/%d", imageID)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// A failed change leaves no audit entry behind.
	errAbort := errors.New("abort")
	err = db.Tx(ctx, func(tx *Tx) error {
		if _, err := tx.AppendAudit(ctx, AuditEntry{Actor: "dpo-1", Action: "source.suspend", Object: "source/1"}); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Tx err = %v, want errAbort", err)
	}
	if n := count(t, db, "audit"); n != 4 {
		t.Errorf("audit rows = %d, want 4", n)
	}
	if ok, bad := verify(t, db); !ok {
		t.Errorf("VerifyAudit = false at %d, want ok", bad)
	}

	// The first entry follows 32 zero bytes, and the stored hash is AuditHash.
	var e AuditEntry
	var at int64
	var detail string
	var prev, hash []byte
	if err := db.r.QueryRow(`SELECT id, at, actor, action, object, detail, prev_hash, hash FROM audit WHERE id = 1`).
		Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &detail, &prev, &hash); err != nil {
		t.Fatal(err)
	}
	e.At, e.Detail = fromMS(at), json.RawMessage(detail)
	if detail != `{"reason":"retention","n":0}` {
		t.Errorf("detail stored as %s, want compact JSON", detail)
	}
	if sum := AuditHash([32]byte{}, e); string(prev) != string(make([]byte, 32)) || string(hash) != string(sum[:]) {
		t.Errorf("first entry prev_hash = %x, hash = %x; want zeros, %x", prev, hash, sum)
	}
}

func TestAppendAuditValidation(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	tests := []struct {
		name    string
		e       AuditEntry
		wantErr error
	}{
		{name: "valid", e: AuditEntry{Actor: "a", Action: "x"}},
		{name: "missing actor", e: AuditEntry{Action: "x"}, wantErr: ErrInvalid},
		{name: "missing action", e: AuditEntry{Actor: "a"}, wantErr: ErrInvalid},
		{name: "detail not JSON", e: AuditEntry{Actor: "a", Action: "x", Detail: json.RawMessage("{oops")}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := db.AppendAudit(context.Background(), nil, tt.e)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("AppendAudit err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestAuditTriggersBlockChanges(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	appendAudit(t, db, clock, 3)
	for _, stmt := range []string{
		`UPDATE audit SET detail = '{}' WHERE id = 2`,
		`UPDATE audit SET actor = 'someone'`,
		`DELETE FROM audit WHERE id = 3`,
		`DELETE FROM audit`,
	} {
		if _, err := db.w.Exec(stmt); err == nil {
			t.Errorf("%s: accepted", stmt)
		}
	}
	if n := count(t, db, "audit"); n != 3 {
		t.Errorf("audit rows = %d, want 3", n)
	}
	if ok, bad := verify(t, db); !ok {
		t.Errorf("VerifyAudit = false at %d, want ok", bad)
	}
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	t.Parallel()
	// Each tampering runs with the triggers dropped first, as an attacker
	// with write access to the file would.
	swap := func(a, b int) []string {
		cols := "at, actor, action, object, detail, prev_hash, hash"
		return []string{
			fmt.Sprintf(`CREATE TEMP TABLE t AS SELECT id, %s FROM audit WHERE id IN (%d, %d)`, cols, a, b),
			fmt.Sprintf(`UPDATE audit SET (%[1]s) = (SELECT %[1]s FROM t WHERE t.id = %[3]d) WHERE id = %[2]d`, cols, a, b),
			fmt.Sprintf(`UPDATE audit SET (%[1]s) = (SELECT %[1]s FROM t WHERE t.id = %[2]d) WHERE id = %[3]d`, cols, a, b),
		}
	}
	tests := []struct {
		name    string
		tamper  []string
		wantBad int64
	}{
		{name: "one byte of detail", tamper: []string{`UPDATE audit SET detail = replace(detail, 'retention', 'retentioN') WHERE id = 3`}, wantBad: 3},
		{name: "detail of the last entry", tamper: []string{`UPDATE audit SET detail = '{}' WHERE id = 5`}, wantBad: 5},
		{name: "time", tamper: []string{`UPDATE audit SET at = at + 1 WHERE id = 2`}, wantBad: 2},
		{name: "actor", tamper: []string{`UPDATE audit SET actor = 'operator-9' WHERE id = 4`}, wantBad: 4},
		{name: "deleted row", tamper: []string{`DELETE FROM audit WHERE id = 3`}, wantBad: 4},
		{name: "deleted first row", tamper: []string{`DELETE FROM audit WHERE id = 1`}, wantBad: 2},
		{name: "swapped rows", tamper: swap(2, 3), wantBad: 2},
		{name: "swapped rows with hashes kept", tamper: []string{
			`CREATE TEMP TABLE t AS SELECT * FROM audit WHERE id IN (3, 4)`,
			`UPDATE audit SET (actor, object, detail) = (SELECT actor, object, detail FROM t WHERE t.id = 4) WHERE id = 3`,
			`UPDATE audit SET (actor, object, detail) = (SELECT actor, object, detail FROM t WHERE t.id = 3) WHERE id = 4`,
		}, wantBad: 3},
		{name: "renumbered", tamper: []string{`UPDATE audit SET id = id + 10 WHERE id >= 4`}, wantBad: 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newTestClock()
			db := openTest(t, WithClock(clock.Now))
			appendAudit(t, db, clock, 5)
			if ok, bad := verify(t, db); !ok {
				t.Fatalf("VerifyAudit before tampering = false at %d", bad)
			}
			stmts := append([]string{`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`}, tt.tamper...)
			for _, stmt := range stmts {
				res, err := db.w.Exec(stmt)
				if err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				if n, _ := res.RowsAffected(); n == 0 && strings.HasPrefix(stmt, "UPDATE") {
					t.Fatalf("%s: changed nothing", stmt)
				}
			}
			ok, bad := verify(t, db)
			if ok || bad != tt.wantBad {
				t.Errorf("VerifyAudit = %v, first bad %d; want false, %d", ok, bad, tt.wantBad)
			}
		})
	}
}
