package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testMAC signs witness heads with a fixed key.
func testMAC(key string) Option {
	return WithAuditWitnessKey(func(msg []byte) ([]byte, error) {
		h := hmac.New(sha256.New, []byte(key))
		h.Write(msg)
		return h.Sum(nil), nil
	})
}

// openWitnessed opens a store in dir with its witness audit.head, signed.
func openWitnessed(t *testing.T, dir string, opts ...Option) (*DB, string) {
	t.Helper()
	wpath := filepath.Join(dir, "audit.head")
	db, err := Open(context.Background(), filepath.Join(dir, "gabarit.db"),
		append([]Option{WithAuditWitness(wpath), testMAC("k")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, wpath
}

// deleteLast removes the audit entries after id, as someone with write
// access to the database file would.
func deleteLast(t *testing.T, db *DB, id int64) {
	t.Helper()
	for _, stmt := range []string{`DROP TRIGGER IF EXISTS audit_no_delete`, fmt.Sprintf(`DELETE FROM audit WHERE id > %d`, id)} {
		if _, err := db.w.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// mustTamper fails unless err is ErrAuditTampered and says want.
func mustTamper(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrAuditTampered) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: err = %v, want ErrAuditTampered saying %q", what, err, want)
	}
}

// TestAuditWitness: the witness names the log's last entry; deleting the
// last entries, deleting the witness or rolling it back to an older entry
// is detected, and normal use does not erase that evidence: the next
// audited write fails and leaves the witness as it was.
func TestAuditWitness(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	dir := t.TempDir()
	db, wpath := openWitnessed(t, dir, WithClock(clock.Now))

	if _, err := db.CheckAudit(ctx); err != nil {
		t.Fatalf("empty log: %v", err)
	}
	appendAudit(t, db, clock, 6)
	head, err := db.CheckAudit(ctx)
	if err != nil || head.ID != 6 {
		t.Fatalf("intact log: head %+v, %v", head, err)
	}
	good, err := os.ReadFile(wpath)
	if err != nil || !strings.Contains(string(good), "\ncommitted 6 ") || strings.Contains(string(good), "pending") {
		t.Fatalf("witness file = %q, %v", good, err)
	}
	if fi, _ := os.Stat(wpath); fi.Mode().Perm() != 0o600 {
		t.Errorf("witness mode %v", fi.Mode().Perm())
	}
	restore := func() {
		t.Helper()
		if err := os.WriteFile(wpath, good, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	audited := func() error {
		_, err := db.AppendAudit(ctx, nil, AuditEntry{Actor: "ivan", Action: "search"})
		return err
	}

	// A witness rolled back to an older, correct entry.
	es, _ := db.AuditEntries(ctx, 4, 4)
	older := fmt.Sprintf("%s\ncommitted 4 %x %s\n", witnessHeader, es[0].Hash, mustSign(t, db, AuditHead{4, es[0].Hash}))
	if err := os.WriteFile(wpath, []byte(older), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = db.CheckAudit(ctx)
	mustTamper(t, "witness rolled back", err, "entries after entry 4 that the witness audit.head never saw")
	mustTamper(t, "an audited write after a roll-back", audited(), "never saw")
	restore()

	// A head forged without the key: a different signature.
	forged := strings.TrimRight(string(good), "\n")
	forged = forged[:strings.LastIndexByte(forged, ' ')+1] + strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(wpath, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = db.CheckAudit(ctx)
	mustTamper(t, "forged head", err, "signature this deployment's master key did not make")
	restore()

	// The last two entries deleted: the chain still verifies, the witness
	// does not, and an ordinary audited write neither succeeds nor
	// rewrites the witness.
	deleteLast(t, db, 4)
	if ok, _ := verify(t, db); !ok {
		t.Fatal("a truncated chain should still verify on its own")
	}
	_, err = db.CheckAudit(ctx)
	mustTamper(t, "truncated log", err, "entries 5 to 6 were removed")
	err = audited()
	mustTamper(t, "an audited write after the truncation", err, "entries 5 to 6 were removed")
	if !strings.Contains(err.Error(), "audited actions are stopped") {
		t.Errorf("the error does not say audited actions stop: %v", err)
	}
	if id, _ := db.AuditHeadID(ctx); id != 4 {
		t.Errorf("the refused write committed: log head %d, want 4", id)
	}
	if got, _ := os.ReadFile(wpath); string(got) != string(good) {
		t.Errorf("the witness was rewritten:\n%s", got)
	}

	// The witness deleted too: never recreated by normal use.
	if err := os.Remove(wpath); err != nil {
		t.Fatal(err)
	}
	_, err = db.CheckAudit(ctx)
	mustTamper(t, "missing witness", err, "audit witness audit.head is missing while the log has 4 entries")
	mustTamper(t, "an audited write without a witness", audited(), "is missing")
	if _, err := os.Stat(wpath); err == nil {
		t.Error("an audited write recreated the witness")
	}
	// A write that appends no audit entry is not stopped.
	if err := db.Tx(ctx, func(*Tx) error { return nil }); err != nil {
		t.Errorf("a transaction without audit entries: %v", err)
	}

	// An administrator resets it: the reset is itself evidence.
	if _, err := db.ResetAuditWitness(ctx, "cli:root", " "); !errors.Is(err, ErrInvalid) {
		t.Errorf("reset without a reason: %v", err)
	}
	id, err := db.ResetAuditWitness(ctx, "cli:root", "checked: entries 5-6 removed by the intrusion of 2 Dec")
	if err != nil || id != 5 {
		t.Fatalf("reset: %d, %v", id, err)
	}
	es, _ = db.AuditEntries(ctx, 5, 5)
	var detail struct {
		Reason    string `json:"reason"`
		LogHead   int64  `json:"log_head"`
		Witnesses []struct{ File, Said string }
	}
	if err := json.Unmarshal(es[0].Detail, &detail); err != nil || es[0].Action != "audit.witness-reset" || detail.LogHead != 4 ||
		len(detail.Witnesses) != 1 || detail.Witnesses[0].Said != "missing" || detail.Witnesses[0].File != "audit.head" {
		t.Errorf("reset entry = %+v %s (%v)", es[0], es[0].Detail, err)
	}
	if _, err := db.CheckAudit(ctx); err != nil {
		t.Errorf("after the reset: %v", err)
	}
	if err := audited(); err != nil {
		t.Errorf("an audited write after the reset: %v", err)
	}
}

func mustSign(t *testing.T, db *DB, h AuditHead) string {
	t.Helper()
	s, err := db.witness.sign(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAuditWitnessCrash: a process killed between writing the pending head
// and committing (or between committing and the final write) leaves a
// witness that still names the log's last entry exactly.
func TestAuditWitnessCrash(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	dir := t.TempDir()
	db, wpath := openWitnessed(t, dir, WithClock(clock.Now))
	appendAudit(t, db, clock, 3)

	// Entry 4 commits and the witness names it; then the witness is put
	// back as a crash right after the commit leaves it: entry 4 pending.
	boom := errors.New("boom")
	if _, err := db.AppendAudit(ctx, nil, AuditEntry{Actor: "x", Action: "test"}); err != nil {
		t.Fatal(err)
	}
	st, err := db.witness.read(wpath)
	if err != nil || st.committed.ID != 4 {
		t.Fatalf("witness %+v, %v", st, err)
	}
	es, _ := db.AuditEntries(ctx, 3, 4)
	crashed := fmt.Sprintf("%s\ncommitted 3 %x %s\npending 4 %x %s\n", witnessHeader,
		es[0].Hash, mustSign(t, db, AuditHead{3, es[0].Hash}), es[1].Hash, mustSign(t, db, AuditHead{4, es[1].Hash}))
	if err := os.WriteFile(wpath, []byte(crashed), 0o600); err != nil {
		t.Fatal(err)
	}
	// The next process reads it.
	db, _ = openWitnessed(t, dir)
	if _, err := db.CheckAudit(ctx); err != nil {
		t.Errorf("crash after the commit: %v", err)
	}
	// And the crash before it: entry 4 never committed.
	deleteLast(t, db, 3)
	if _, err := db.CheckAudit(ctx); err != nil {
		t.Errorf("crash before the commit: %v", err)
	}
	if err := db.Tx(ctx, func(tx *Tx) error {
		_, err := tx.AppendAudit(ctx, AuditEntry{Actor: "x", Action: "test"})
		if err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := db.CheckAudit(ctx); err != nil {
		t.Errorf("after a rolled-back transaction: %v", err)
	}
	appendAudit2(t, db, 2)
	if head, err := db.CheckAudit(ctx); err != nil || head.ID != 5 {
		t.Errorf("after more entries: %+v, %v", head, err)
	}
}

// appendAudit2 appends n entries.
func appendAudit2(t *testing.T, db *DB, n int) {
	t.Helper()
	for range n {
		if _, err := db.AppendAudit(context.Background(), nil, AuditEntry{Actor: "x", Action: "test"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditWitnessTwoProcesses: two stores on one file (two processes) and
// a second witness outside the data directory: interleaved writers keep
// every witness exact.
func TestAuditWitnessTwoProcesses(t *testing.T) {
	ctx := context.Background()
	dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "copy.head")
	a, wpath := openWitnessed(t, dir, WithAuditWitness(outside))
	b, _ := openWitnessed(t, dir, WithAuditWitness(outside))
	for i, db := range []*DB{a, b, b, a, b} {
		if _, err := db.AppendAudit(ctx, nil, AuditEntry{Actor: "x", Action: "test"}); err != nil {
			t.Fatal(i, err)
		}
	}
	for _, db := range []*DB{a, b} {
		if head, err := db.CheckAudit(ctx); err != nil || head.ID != 5 {
			t.Errorf("CheckAudit: %+v, %v", head, err)
		}
	}
	// The copy outside rolled back while the one inside is intact.
	in, _ := os.ReadFile(wpath)
	if err := os.WriteFile(outside, []byte("ignored"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := a.CheckAudit(ctx)
	mustTamper(t, "an unreadable outside witness", err, "copy.head is unreadable")
	if err := os.WriteFile(outside, in, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CheckAudit(ctx); err != nil {
		t.Errorf("witnesses equal again: %v", err)
	}
}

// TestAuditWitnessLegacy: a witness of the earlier one-line format behind
// the log is accepted once and replaced by the exact format.
func TestAuditWitnessLegacy(t *testing.T) {
	ctx := context.Background()
	db, wpath := openWitnessed(t, t.TempDir())
	appendAudit2(t, db, 3)
	es, _ := db.AuditEntries(ctx, 2, 2)
	if err := os.WriteFile(wpath, fmt.Appendf(nil, "2 %x\n", es[0].Hash), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CheckAudit(ctx); err != nil {
		t.Errorf("legacy witness behind the log: %v", err)
	}
	appendAudit2(t, db, 1)
	if got, _ := os.ReadFile(wpath); !strings.HasPrefix(string(got), witnessHeader+"\ncommitted 4 ") {
		t.Errorf("witness not upgraded: %q", got)
	}
	// A legacy witness naming a changed entry is not accepted.
	if err := os.WriteFile(wpath, fmt.Appendf(nil, "2 %x\n", es[0].PrevHash), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := db.CheckAudit(ctx)
	mustTamper(t, "legacy witness of another chain", err, "entry 2 differs")
}

// TestAuditHeadOffMachine: a head copied off the machine shows a later
// truncation or rewrite, and its signature is checked.
func TestAuditHeadOffMachine(t *testing.T) {
	ctx := context.Background()
	db, _ := openWitnessed(t, t.TempDir())
	appendAudit2(t, db, 5)
	line, head, err := db.AuditHeadLine(ctx)
	if err != nil || head.ID != 5 || len(strings.Fields(line)) != 3 {
		t.Fatalf("head line %q, %v", line, err)
	}
	appendAudit2(t, db, 2)
	if h, err := db.CheckAuditHead(ctx, line+"\n"); err != nil || h.ID != 5 {
		t.Errorf("a copied head the log extends: %+v, %v", h, err)
	}
	f := strings.Fields(line)
	_, err = db.CheckAuditHead(ctx, f[0]+" "+f[1]+" "+strings.Repeat("00", 32))
	mustTamper(t, "a copied head with another signature", err, "did not make")
	if _, err := db.CheckAuditHead(ctx, "five"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a malformed head: %v", err)
	}
	deleteLast(t, db, 3)
	_, err = db.CheckAuditHead(ctx, line)
	mustTamper(t, "a copied head after a truncation", err, "entries 4 to 5 were removed")
}

// BenchmarkAuditedWrite: one audited transaction (a search's record is
// one), without a witness, with the signed witness, and with a second one
// outside the data directory.
func BenchmarkAuditedWrite(b *testing.B) {
	for _, tc := range []struct {
		name      string
		witnesses int
	}{{"no-witness", 0}, {"witness", 1}, {"two-witnesses", 2}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			opts := []Option{testMAC("k")}
			for i := range tc.witnesses {
				opts = append(opts, WithAuditWitness(filepath.Join(dir, fmt.Sprintf("w%d.head", i))))
			}
			db := openTest(b, opts...)
			ctx := context.Background()
			for b.Loop() {
				if _, err := db.AppendAudit(ctx, nil, AuditEntry{Actor: "ivan", Action: "search", Detail: json.RawMessage(`{"k":5}`)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
