package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditWitness: deleting the last entries leaves a valid chain, which
// only the witness file shows; a witness behind the log is fine.
func TestAuditWitness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wpath := filepath.Join(dir, "audit.head")
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now), WithAuditWitness(wpath))

	if _, err := db.CheckAudit(ctx); err != nil {
		t.Fatalf("empty log: %v", err)
	}
	appendAudit(t, db, clock, 6)
	head, err := db.CheckAudit(ctx)
	if err != nil || head.ID != 6 {
		t.Fatalf("intact log: head %+v, %v", head, err)
	}
	b, err := os.ReadFile(wpath)
	if err != nil || !strings.HasPrefix(string(b), "6 ") {
		t.Fatalf("witness file = %q, %v", b, err)
	}
	if fi, _ := os.Stat(wpath); fi.Mode().Perm() != 0o600 {
		t.Errorf("witness mode %v", fi.Mode().Perm())
	}

	// A witness behind the log (crash after a commit): accepted.
	es, _ := db.AuditEntries(ctx, 4, 4)
	behind := []byte(fmt.Sprintf("4 %x\n", es[0].Hash))
	if err := os.WriteFile(wpath, behind, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CheckAudit(ctx); err != nil {
		t.Errorf("witness behind the log: %v", err)
	}
	if err := os.WriteFile(wpath, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// The last two entries deleted: the chain still verifies, the witness
	// does not.
	for _, stmt := range []string{`DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE id > 4`} {
		if _, err := db.w.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := verify(t, db); !ok {
		t.Fatal("a truncated chain should still verify on its own")
	}
	_, err = db.CheckAudit(ctx)
	if !errors.Is(err, ErrAuditTampered) || !strings.Contains(err.Error(), "entries 5 to 6 were removed") {
		t.Errorf("truncated log: %v", err)
	}

	// A missing witness while the log has entries.
	if err := os.Remove(wpath); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CheckAudit(ctx); !errors.Is(err, ErrAuditTampered) {
		t.Errorf("missing witness: %v", err)
	}
}

// TestAuditWitnessNeverGoesBack: two stores on one file (two processes)
// never move the witness backwards.
func TestAuditWitnessNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, wpath := filepath.Join(dir, "gabarit.db"), filepath.Join(dir, "audit.head")
	a, err := Open(ctx, path, WithAuditWitness(wpath))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path, WithAuditWitness(wpath))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, db := range []*DB{a, b, b, a} {
		if _, err := db.AppendAudit(ctx, nil, AuditEntry{Actor: "x", Action: "test"}); err != nil {
			t.Fatal(i, err)
		}
	}
	// a's view: it last wrote entry 1, then 4; b wrote 2 and 3.
	a.witness.record(AuditHead{ID: 2})
	if got, _ := os.ReadFile(wpath); !strings.HasPrefix(string(got), "4 ") {
		t.Errorf("witness = %q, want entry 4", got)
	}
	if _, err := b.CheckAudit(ctx); err != nil {
		t.Errorf("CheckAudit: %v", err)
	}
}
