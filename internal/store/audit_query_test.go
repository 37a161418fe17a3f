package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// auditQueryFixture opens a store whose audit log holds, one hour apart
// from the test clock's start (2025-03-01 12:00 UTC):
//
//	1 alice source.add        source/1
//	2 bob   rights.received   rights/1
//	3 ivan  search            search/1  (case A-1)
//	4 olga  search            search/2  (case B-2)
//	5 vera  search.confirm    search/1
//	6 bob   rights.erasure    rights/1
//	7 bob   rightsholder.add  holder/1  (not a rights. action)
//	8 alice session.login     session
//
// and entries 6 to 8 fall on the next day (from 2025-03-02 00:00 UTC).
func auditQueryFixture(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))
	plain := func(actor, action, object string) {
		t.Helper()
		if _, err := db.AppendAudit(ctx, nil, AuditEntry{Actor: actor, Action: action, Object: object}); err != nil {
			t.Fatal(err)
		}
	}
	search := func(actor, caseRef string) {
		t.Helper()
		s := testSearch(actor)
		s.CaseRef = caseRef
		if _, _, err := db.RecordSearch(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	plain("alice", "source.add", "source/1") // 12:00
	clock.Add(time.Hour)
	plain("bob", "rights.received", "rights/1") // 13:00
	clock.Add(time.Hour)
	search("ivan", "A-1") // 14:00
	clock.Add(time.Hour)
	search("olga", "B-2") // 15:00
	clock.Add(time.Hour)
	plain("vera", "search.confirm", "search/1") // 16:00
	clock.Add(9 * time.Hour)
	plain("bob", "rights.erasure", "rights/1") // 01:00 the next day
	clock.Add(time.Hour)
	plain("bob", "rightsholder.add", "holder/1") // 02:00
	clock.Add(time.Hour)
	plain("alice", "session.login", "session") // 03:00
	return db
}

// ids returns the ids of es, in their order.
func ids(es []AuditEntry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestQueryAuditFilters(t *testing.T) {
	t.Parallel()
	db := auditQueryFixture(t)
	day2 := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    AuditFilter
		want []int64
	}{
		{"everything, newest first", AuditFilter{}, []int64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"actor", AuditFilter{Actor: "bob"}, []int64{7, 6, 2}},
		{"actor is exact", AuditFilter{Actor: "bo"}, nil},
		{"action exact", AuditFilter{Action: "search"}, []int64{4, 3}},
		{"action exact is not a prefix", AuditFilter{Action: "rights"}, nil},
		{"action prefix with a dot", AuditFilter{Action: "rights."}, []int64{6, 2}},
		{"action prefix with a star", AuditFilter{Action: "rights.*"}, []int64{6, 2}},
		{"action prefix without a dot", AuditFilter{Action: "rights*"}, []int64{7, 6, 2}},
		{"action prefix search.", AuditFilter{Action: "search."}, []int64{5}},
		{"star alone", AuditFilter{Action: "*"}, []int64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"case: the search and its confirmation", AuditFilter{Case: "A-1"}, []int64{5, 3}},
		{"other case", AuditFilter{Case: "B-2"}, []int64{4}},
		{"unknown case", AuditFilter{Case: "Z-9"}, nil},
		{"from (inclusive)", AuditFilter{From: day2.Add(time.Hour)}, []int64{8, 7, 6}},
		{"to (exclusive)", AuditFilter{To: day2.Add(time.Hour)}, []int64{5, 4, 3, 2, 1}},
		{"period", AuditFilter{From: day2.Add(-10 * time.Hour), To: day2.Add(-8 * time.Hour)}, []int64{4, 3}},
		{"entry ids", AuditFilter{FromID: 3, ToID: 5}, []int64{5, 4, 3}},
		{"filters combine", AuditFilter{Actor: "bob", Action: "rights.", From: day2}, []int64{6}},
		{"nothing matches", AuditFilter{Actor: "alice", Action: "search"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.f
			f.Limit = DefaultAuditLimit
			got, err := db.QueryAudit(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if want, got := tt.want, ids(got); !slices.Equal(want, got) {
				t.Errorf("ids: got %v, want %v", got, want)
			}
		})
	}
}

// TestQueryAuditEntries checks that the entries come back whole: the
// chain verifies from them.
func TestQueryAuditEntries(t *testing.T) {
	t.Parallel()
	db := auditQueryFixture(t)
	got, err := db.QueryAudit(context.Background(), AuditFilter{Limit: MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	want, err := db.AuditEntries(context.Background(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(want)
	if !reflect.DeepEqual(want, got) {
		t.Errorf("QueryAudit entries differ from AuditEntries': got %v, want %v", got, want)
	}
	for _, e := range got {
		if AuditHash(e.PrevHash, e) != e.Hash {
			t.Errorf("entry %d does not hash to its stored hash", e.ID)
		}
	}
	if got[len(got)-1].At != time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) {
		t.Errorf("entry 1 at %v", got[len(got)-1].At)
	}
}

func TestQueryAuditPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := auditQueryFixture(t)
	query := func(f AuditFilter) []int64 {
		t.Helper()
		es, err := db.QueryAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return ids(es)
	}

	// Back from the newest, three at a time, with the oldest id as cursor.
	var pages [][]int64
	f := AuditFilter{Limit: 3}
	for {
		page := query(f)
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		f.Before = page[len(page)-1]
	}
	if want, got := [][]int64{{8, 7, 6}, {5, 4, 3}, {2, 1}}, pages; !reflect.DeepEqual(want, got) {
		t.Errorf("pages back: got %v, want %v", got, want)
	}

	// Forward from the oldest page, with the newest id as cursor: the
	// oldest entries after it, still newest first.
	pages = nil
	f = AuditFilter{Limit: 3, After: 2}
	for {
		page := query(f)
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		f.After = page[0]
	}
	if want, got := [][]int64{{5, 4, 3}, {8, 7, 6}}, pages; !reflect.DeepEqual(want, got) {
		t.Errorf("pages forward: got %v, want %v", got, want)
	}

	// Paging keeps the filters: bob's entries one at a time.
	var got []int64
	f = AuditFilter{Actor: "bob", Limit: 1}
	for page := query(f); len(page) > 0; page = query(f) {
		got = append(got, page...)
		f.Before = page[0]
	}
	if want := []int64{7, 6, 2}; !slices.Equal(want, got) {
		t.Errorf("bob page by page: got %v, want %v", got, want)
	}

	tests := []struct {
		name string
		f    AuditFilter
		want []int64
	}{
		{"before the first", AuditFilter{Before: 1}, nil},
		{"before the second", AuditFilter{Before: 2}, []int64{1}},
		{"before past the end", AuditFilter{Before: 100}, []int64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"after the last", AuditFilter{After: 8}, nil},
		{"after the one before last", AuditFilter{After: 7}, []int64{8}},
		{"after and before: the window between", AuditFilter{After: 2, Before: 6}, []int64{5, 4, 3}},
		{"limit 1", AuditFilter{Limit: 1}, []int64{8}},
		{"after with a limit: the oldest after it", AuditFilter{After: 1, Limit: 2}, []int64{3, 2}},
		{"limit exactly the matches", AuditFilter{Actor: "bob", Limit: 3}, []int64{7, 6, 2}},
	}
	for _, tt := range tests {
		f := tt.f
		if f.Limit == 0 {
			f.Limit = DefaultAuditLimit
		}
		if want, got := tt.want, query(f); !slices.Equal(want, got) {
			t.Errorf("%s: got %v, want %v", tt.name, got, want)
		}
	}
}

func TestQueryAuditInvalid(t *testing.T) {
	t.Parallel()
	db := auditQueryFixture(t)
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    AuditFilter
		want string // in the error
	}{
		{"no limit", AuditFilter{}, "limit 0"},
		{"limit too large", AuditFilter{Limit: MaxAuditLimit + 1}, "limit 1001"},
		{"action with a space", AuditFilter{Action: "rights erasure"}, "action"},
		{"action with a quote", AuditFilter{Action: "x'--"}, "action"},
		{"star inside", AuditFilter{Action: "ri*hts"}, "action"},
		{"empty period", AuditFilter{From: at, To: at}, "period"},
		{"period backwards", AuditFilter{From: at, To: at.Add(-time.Hour)}, "period"},
		{"ids backwards", AuditFilter{FromID: 5, ToID: 4}, "entry 4"},
		{"negative cursor", AuditFilter{Before: -1}, "ids"},
	}
	for _, tt := range tests {
		if tt.f.Limit == 0 && !strings.HasPrefix(tt.name, "no limit") {
			tt.f.Limit = 10
		}
		_, err := db.QueryAudit(context.Background(), tt.f)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(fmt.Sprint(err), tt.want) {
			t.Errorf("%s: err = %v, want ErrInvalid naming %q", tt.name, err, tt.want)
		}
	}
}

// TestQueryAuditUsesIndexes checks that the filters by actor, action and
// case are served by the indexes of migration 8, not by a scan of the log.
func TestQueryAuditUsesIndexes(t *testing.T) {
	t.Parallel()
	db := auditQueryFixture(t)
	tests := []struct {
		f     AuditFilter
		index string
	}{
		{AuditFilter{Actor: "bob"}, "audit_actor"},
		{AuditFilter{Action: "search"}, "audit_action"},
		{AuditFilter{Action: "rights."}, "audit_action"},
		{AuditFilter{Case: "A-1"}, "audit_object"},
	}
	for _, tt := range tests {
		tt.f.Limit = DefaultAuditLimit
		q, args := auditQuery(tt.f)
		rows, err := db.r.Query("EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if got := strings.Join(plan, "; "); !strings.Contains(got, tt.index) {
			t.Errorf("%+v: plan %q does not use %s", tt.f, got, tt.index)
		}
	}
}

func TestAuditActions(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	if got, err := db.AuditActions(context.Background()); err != nil || len(got) != 0 {
		t.Errorf("empty log: %v, %v", got, err)
	}
	db = auditQueryFixture(t)
	got, err := db.AuditActions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rights.erasure", "rights.received", "rightsholder.add", "search", "search.confirm", "session.login", "source.add"}
	if !slices.Equal(want, got) {
		t.Errorf("AuditActions = %q, want %q", got, want)
	}
}

func TestParseAuditBound(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v      string
		end    bool
		id     int64
		at     time.Time
		errors bool
	}{
		{v: ""},
		{v: "120", id: 120},
		{v: "120", end: true, id: 120},
		{v: "2026-03-01", at: day},
		{v: "2026-03-01", end: true, at: day.AddDate(0, 0, 1)},
		{v: "2026-03-01T14:00:00Z", at: day.Add(14 * time.Hour)},
		{v: "2026-03-01T14:00:00Z", end: true, at: day.Add(14 * time.Hour)},
		{v: "2026-03-01T15:00:00+01:00", at: day.Add(14 * time.Hour)},
		{v: "0", errors: true},
		{v: "-3", errors: true},
		{v: "yesterday", errors: true},
		{v: "2026-02-30", errors: true},
		{v: "2026-03-01 14:00", errors: true},
	}
	for _, tt := range tests {
		id, at, err := ParseAuditBound(tt.v, tt.end)
		if tt.errors {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseAuditBound(%q): err %v, want ErrInvalid", tt.v, err)
			}
			continue
		}
		if err != nil || id != tt.id || !at.Equal(tt.at) {
			t.Errorf("ParseAuditBound(%q, %v) = %d, %v, %v; want %d, %v", tt.v, tt.end, id, at, err, tt.id, tt.at)
		}
	}
}
