package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gabarit/internal/dsr"
)

const testContact = "person@example.org"

// newRights returns a request of kind k received a day before the test
// clock's start (2025-02-28 12:00 UTC), due 28 March end of day in Paris.
func newRights(t testing.TB, k dsr.Kind) dsr.Request {
	t.Helper()
	r, err := dsr.NewRequest(k, testContact, time.Date(2025, 2, 28, 12, 0, 0, 0, time.UTC), "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRights(t testing.TB, db *DB, k dsr.Kind) int64 {
	t.Helper()
	id, err := db.CreateRightsRequest(context.Background(), newRights(t, k), "dpo-1")
	if err != nil {
		t.Fatalf("CreateRightsRequest: %v", err)
	}
	return id
}

// advance returns an update function that moves a request to state to.
func advance(to dsr.State, reason string) func(*dsr.Request, time.Time) error {
	return func(r *dsr.Request, now time.Time) error { return r.Advance(now, to, reason) }
}

// auditOf returns the audit entries of rights request id, in order.
func auditOf(t testing.TB, db *DB, object string) []AuditEntry {
	t.Helper()
	all, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []AuditEntry
	for _, e := range all {
		if e.Object == object {
			out = append(out, e)
		}
	}
	return out
}

func TestRightsRequestLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	paris, err := dsr.Location(dsr.DefaultZone)
	if err != nil {
		t.Fatal(err)
	}

	want := newRights(t, dsr.Erasure)
	id, err := db.CreateRightsRequest(ctx, want, "dpo-1")
	if err != nil {
		t.Fatal(err)
	}
	want.ID = id
	want.Due = want.Due.UTC() // times come back in UTC
	got, err := db.RightsRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RightsRequest = %+v\nwant            %+v", got, want)
	}
	if wantDue := time.Date(2025, 3, 28, 23, 59, 59, 999e6, paris); !got.Due.Equal(wantDue) {
		t.Errorf("due %v, want %v", got.Due, wantDue)
	}

	// Verified, with the faces the selfies matched.
	clock.Add(time.Hour)
	got, err = db.UpdateRightsRequest(ctx, id, "operator-2", func(r *dsr.Request, now time.Time) error {
		r.Matches = []int64{4, 8, 15}
		return r.Advance(now, dsr.Verified, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != dsr.Verified || !reflect.DeepEqual(got.Matches, []int64{4, 8, 15}) {
		t.Errorf("after verification: %+v", got)
	}

	// Extended by two months, before the original deadline.
	clock.Add(24 * time.Hour)
	notice := clock.Now()
	got, err = db.UpdateRightsRequest(ctx, id, "dpo-1", func(r *dsr.Request, now time.Time) error {
		return r.Extend(now, 2, "faces in many sources")
	})
	if err != nil {
		t.Fatal(err)
	}
	if wantDue := time.Date(2025, 5, 28, 23, 59, 59, 999e6, paris); got.State != dsr.Extended || !got.Extended ||
		got.ExtendedFrom != dsr.Verified || !got.ExtendedDue.Equal(wantDue) || !got.NoticeSentAt.Equal(notice) ||
		got.ExtendReason != "faces in many sources" {
		t.Errorf("after extension: %+v", got)
	}

	// A second extension is refused, and writes nothing.
	if _, err := db.UpdateRightsRequest(ctx, id, "dpo-1", func(r *dsr.Request, now time.Time) error {
		return r.Extend(now, 1, "again")
	}); !errors.Is(err, dsr.ErrAlreadyExtended) || !errors.Is(err, ErrInvalid) {
		t.Errorf("second extension err = %v, want dsr.ErrAlreadyExtended and ErrInvalid", err)
	}

	// Moves on from verified, then completes after the original deadline
	// but within the extended one.
	if _, err := db.UpdateRightsRequest(ctx, id, "operator-2", advance(dsr.InProgress, "")); err != nil {
		t.Fatal(err)
	}
	clock.Add(40 * 24 * time.Hour)
	got, err = db.UpdateRightsRequest(ctx, id, "operator-2", func(r *dsr.Request, now time.Time) error {
		r.Result = json.RawMessage(`{ "erased_faces": 3 }`)
		return r.Advance(now, dsr.Completed, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != dsr.Completed || !got.Closed.Equal(clock.Now()) || string(got.Result) != `{"erased_faces":3}` || got.Late() {
		t.Errorf("after completion: %+v", got)
	}
	stored, err := db.RightsRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, got) {
		t.Errorf("stored %+v\nreturned %+v", stored, got)
	}

	// Nothing changes a closed request.
	if _, err := db.UpdateRightsRequest(ctx, id, "operator-2", func(r *dsr.Request, _ time.Time) error {
		r.Matches = nil
		return nil
	}); !errors.Is(err, dsr.ErrIllegalTransition) {
		t.Errorf("change to a closed request: err = %v, want dsr.ErrIllegalTransition", err)
	}

	// One audit entry per change, in order, in the hash chain.
	entries := auditOf(t, db, "rights/1")
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		for _, banned := range []string{testContact, "faces in many sources", "[4,8,15]"} {
			if strings.Contains(string(e.Detail), banned) || strings.Contains(e.Object, banned) {
				t.Errorf("audit entry %d (%s) holds %q: %s", e.ID, e.Action, banned, e.Detail)
			}
		}
	}
	wantActions := []string{"rights.received", "rights.verified", "rights.extended", "rights.in-progress", "rights.completed"}
	if !reflect.DeepEqual(actions, wantActions) {
		t.Errorf("audit actions = %q, want %q", actions, wantActions)
	}
	var last rightsDetail
	if err := json.Unmarshal(entries[len(entries)-1].Detail, &last); err != nil {
		t.Fatal(err)
	}
	if last.From != dsr.InProgress || last.To != dsr.Completed || last.Late == nil || *last.Late || last.Matches != 3 || !last.Result {
		t.Errorf("completion audit detail = %s", entries[len(entries)-1].Detail)
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, %d, %v", ok, bad, err)
	}
}

func TestRightsRegister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	if list, err := db.RightsRequests(ctx); err != nil || len(list) != 0 {
		t.Fatalf("empty register = %v, %v", list, err)
	}
	// No limit on how many requests a person makes.
	kinds := []dsr.Kind{dsr.Access, dsr.Erasure, dsr.Access, dsr.Objection, dsr.Restriction, dsr.Access}
	for _, k := range kinds {
		mustRights(t, db, k)
	}
	if _, err := db.UpdateRightsRequest(ctx, 2, "op", advance(dsr.Refused, "identity not confirmed")); err != nil {
		t.Fatal(err)
	}
	list, err := db.RightsRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(kinds) {
		t.Fatalf("register has %d requests, want %d", len(list), len(kinds))
	}
	for i, r := range list {
		if r.ID != int64(i+1) || r.Kind != kinds[i] || r.Contact != testContact {
			t.Errorf("register[%d] = %+v", i, r)
		}
	}
	if list[1].State != dsr.Refused || list[1].Reason != "identity not confirmed" || list[1].Closed.IsZero() {
		t.Errorf("refused request = %+v", list[1])
	}
	if _, err := db.RightsRequest(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("RightsRequest(99) err = %v, want ErrNotFound", err)
	}
}

func TestCreateRightsRequestInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	tests := []struct {
		name  string
		mod   func(*dsr.Request)
		actor string
	}{
		{"no actor", func(*dsr.Request) {}, " "},
		{"no contact", func(r *dsr.Request) { r.Contact = "" }, "dpo"},
		{"unknown kind", func(r *dsr.Request) { r.Kind = "portability" }, "dpo"},
		{"wrong due", func(r *dsr.Request) { r.Due = r.Due.Add(24 * time.Hour) }, "dpo"},
		{"unknown zone", func(r *dsr.Request) { r.Zone = "Mars/Olympus" }, "dpo"},
		{"not received", func(r *dsr.Request) { r.State = dsr.Verified }, "dpo"},
		{"result not JSON", func(r *dsr.Request) { r.Result = json.RawMessage("{") }, "dpo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRights(t, dsr.Access)
			tt.mod(&r)
			if _, err := db.CreateRightsRequest(ctx, r, tt.actor); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateRightsRequest err = %v, want ErrInvalid", err)
			}
		})
	}
	if n := count(t, db, "rights_requests"); n != 0 {
		t.Errorf("%d requests written", n)
	}
	if n := count(t, db, "audit"); n != 0 {
		t.Errorf("%d audit entries written", n)
	}
}

func TestUpdateRightsRequestRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	id := mustRights(t, db, dsr.Access)
	errFn := errors.New("fn failed")
	tests := []struct {
		name    string
		id      int64
		actor   string
		fn      func(*dsr.Request, time.Time) error
		wantErr []error
	}{
		{"missing request", 99, "op", advance(dsr.Verified, ""), []error{ErrNotFound}},
		{"no actor", id, "", advance(dsr.Verified, ""), []error{ErrInvalid}},
		{"fn error", id, "op", func(*dsr.Request, time.Time) error { return errFn }, []error{errFn}},
		{"illegal Advance", id, "op", advance(dsr.Completed, ""), []error{ErrInvalid, dsr.ErrIllegalTransition}},
		{"refusal without reason", id, "op", advance(dsr.Refused, ""), []error{ErrInvalid, dsr.ErrInvalid}},
		{"state set by hand", id, "op", func(r *dsr.Request, _ time.Time) error {
			r.State = dsr.InProgress
			return nil
		}, []error{ErrInvalid, dsr.ErrIllegalTransition}},
		{"two steps in one update", id, "op", func(r *dsr.Request, now time.Time) error {
			if err := r.Advance(now, dsr.Verified, ""); err != nil {
				return err
			}
			return r.Advance(now, dsr.InProgress, "")
		}, []error{ErrInvalid, dsr.ErrIllegalTransition}},
		{"contact rewritten", id, "op", func(r *dsr.Request, _ time.Time) error {
			r.Contact = "someone-else@example.org"
			return nil
		}, []error{ErrInvalid, dsr.ErrInvalid}},
		{"result not JSON", id, "op", func(r *dsr.Request, _ time.Time) error {
			r.Result = json.RawMessage("{")
			return nil
		}, []error{ErrInvalid}},
		{"extension by 3 months", id, "op", func(r *dsr.Request, now time.Time) error { return r.Extend(now, 3, "x") }, []error{ErrInvalid, dsr.ErrInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.UpdateRightsRequest(ctx, tt.id, tt.actor, tt.fn)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("UpdateRightsRequest err = %v, want %v", err, want)
				}
			}
		})
	}
	got, err := db.RightsRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := newRights(t, dsr.Access); got.State != dsr.Received || got.Contact != testContact || got.Result != nil ||
		!got.Due.Equal(want.Due) {
		t.Errorf("request changed by rejected updates: %+v", got)
	}
	if n := len(auditOf(t, db, "rights/1")); n != 1 {
		t.Errorf("%d audit entries, want 1 (received)", n)
	}

	// An update that changes nothing writes nothing.
	if _, err := db.UpdateRightsRequest(ctx, id, "op", func(*dsr.Request, time.Time) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := len(auditOf(t, db, "rights/1")); n != 1 {
		t.Errorf("no-op update: %d audit entries, want 1", n)
	}
	// Matches alone are recorded and audited as an update, by count only.
	if _, err := db.UpdateRightsRequest(ctx, id, "op", func(r *dsr.Request, _ time.Time) error {
		r.Matches = []int64{42}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if e := auditOf(t, db, "rights/1"); len(e) != 2 || e[1].Action != "rights.update" || string(e[1].Detail) != `{"kind":"access","matches":1,"result":false}` {
		t.Errorf("audit after matches = %+v", e)
	}

	// After the original deadline an extension is too late.
	got, err = db.RightsRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(got.Due.Sub(clock.Now()) + time.Millisecond)
	if _, err := db.UpdateRightsRequest(ctx, id, "dpo", func(r *dsr.Request, now time.Time) error {
		return r.Extend(now, 1, "complex")
	}); !errors.Is(err, dsr.ErrTooLate) || !errors.Is(err, ErrInvalid) {
		t.Errorf("late extension err = %v, want dsr.ErrTooLate and ErrInvalid", err)
	}
	// It is overdue, and may still be answered.
	if !got.Overdue(clock.Now()) {
		t.Error("request not overdue after its deadline")
	}
	if _, err := db.UpdateRightsRequest(ctx, id, "op", advance(dsr.Refused, "manifestly unfounded")); err != nil {
		t.Fatal(err)
	}
	e := auditOf(t, db, "rights/1")
	if last := e[len(e)-1]; last.Action != "rights.refused" || strings.Contains(string(last.Detail), "unfounded") ||
		!strings.Contains(string(last.Detail), `"late":true`) {
		t.Errorf("refusal audit entry = %s %s", last.Action, last.Detail)
	}
}

func TestRightsSchemaChecks(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	const cols = `INSERT INTO rights_requests (kind, state, contact, zone, received_at, due_at, extended_from,
	extended_due_at, extend_reason, notice_sent_at, reason, closed_at, matched_faces, result) VALUES `
	ok := `('access', 'received', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '[]', NULL)`
	if _, err := db.w.Exec(cols + ok); err != nil {
		t.Fatalf("valid row: %v", err)
	}
	for name, values := range map[string]string{
		"unknown kind":             `('portability', 'received', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '[]', NULL)`,
		"unknown state":            `('access', 'done', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '[]', NULL)`,
		"no contact":               `('access', 'received', '', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '[]', NULL)`,
		"due before receipt":       `('access', 'received', 'c', 'Europe/Paris', 2, 1, NULL, NULL, '', NULL, '', NULL, '[]', NULL)`,
		"extended without record":  `('access', 'extended', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '[]', NULL)`,
		"extension without reason": `('access', 'extended', 'c', 'Europe/Paris', 1, 2, 'received', 3, '', 1, '', NULL, '[]', NULL)`,
		"extension not later":      `('access', 'extended', 'c', 'Europe/Paris', 1, 2, 'received', 2, 'r', 1, '', NULL, '[]', NULL)`,
		"notice after due":         `('access', 'extended', 'c', 'Europe/Paris', 1, 2, 'received', 3, 'r', 3, '', NULL, '[]', NULL)`,
		"completed without time":   `('access', 'completed', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '[]', NULL)`,
		"open with closing time":   `('access', 'verified', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', 5, '[]', NULL)`,
		"refused without reason":   `('access', 'refused', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', 5, '[]', NULL)`,
		"matches not an array":     `('access', 'received', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '{}', NULL)`,
		"result not JSON":          `('access', 'received', 'c', 'Europe/Paris', 1, 2, NULL, NULL, '', NULL, '', NULL, '[]', '{')`,
	} {
		if _, err := db.w.Exec(cols + values); err == nil {
			t.Errorf("%s: row accepted", name)
		}
	}
}

// TestRightsMigration opens a file at schema version 2 (before the rights
// register) and checks that it gains the table and keeps its data.
func TestRightsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gabarit.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	src := mustSource(t, db, nil)
	db = reopenFrom(t, path, db, 2)
	if got := version(t, db); got != schemaVersion || schemaVersion < 3 {
		t.Errorf("schema version %d, want %d (≥ 3)", got, schemaVersion)
	}
	if _, err := db.Source(ctx, src); err != nil {
		t.Errorf("source lost: %v", err)
	}
	if id := mustRights(t, db, dsr.Objection); id != 1 {
		t.Errorf("first request id %d", id)
	}
}
