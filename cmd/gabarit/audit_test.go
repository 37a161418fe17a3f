package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/store"
)

// auditListFixture makes a data directory whose audit log holds, in
// January 2026: olga's image.delete entries, two a day from the 1st (5),
// pat's rights.received (the 2nd) and rights.erasure (the 3rd), and ivan's
// search for case C-7 (the 4th); then 150 entries by bulk. It returns the
// ids of olga's, pat's and bulk's entries, newest first, and the search's.
func auditListFixture(t *testing.T) (data string, olga, pat, bulk []int64, search int64) {
	t.Helper()
	ctx := context.Background()
	data = t.TempDir()
	d, err := app.OpenData(ctx, config.Config{DataDir: data, Index: app.IndexFlat}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(at time.Time, actor, action string) int64 {
		t.Helper()
		id, err := d.DB.AppendAudit(ctx, nil, store.AuditEntry{At: at, Actor: actor, Action: action, Object: "x/1"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i := range 5 {
		olga = append([]int64{add(day.Add(time.Duration(i)*12*time.Hour), "olga", "image.delete")}, olga...)
	}
	received := add(day.AddDate(0, 0, 1), "pat", "rights.received")
	pat = []int64{add(day.AddDate(0, 0, 2), "pat", "rights.erasure"), received}
	_, search, err = d.DB.RecordSearch(ctx, store.Search{At: day.AddDate(0, 0, 3), Actor: "ivan", Purpose: "missing person",
		CaseRef: "C-7", ProbeSHA256: [32]byte{7}, K: 5, Threshold: 0.4})
	if err != nil {
		t.Fatal(err)
	}
	err = d.DB.Tx(ctx, func(tx *store.Tx) error {
		for range 150 {
			id, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: "bulk", Action: "image.ingest", Object: "image/1"})
			if err != nil {
				return err
			}
			bulk = append([]int64{id}, bulk...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return data, olga, pat, bulk, search
}

// jsonIDs returns the ids of the JSON lines of gabarit audit list --json.
func jsonIDs(t *testing.T, out string) []int64 {
	t.Helper()
	ids := []int64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var v app.AuditView
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, v.ID)
	}
	return ids
}

// TestAuditListFilters: gabarit audit list filters by actor, action
// (exactly or by prefix), case and period, newest first, as text or JSON
// lines, and pages with --limit and --before.
func TestAuditListFilters(t *testing.T) {
	data, olga, pat, bulk, search := auditListFixture(t)
	tests := []struct {
		name string
		args []string
		want []int64
	}{
		{"actor", []string{"--actor", "olga"}, olga},
		{"action exactly", []string{"--action", "rights.erasure"}, pat[:1]},
		{"action prefix", []string{"--action", "rights."}, pat},
		{"case", []string{"--case", "C-7"}, []int64{search}},
		{"a day, flags after", []string{"--actor", "olga", "--from", "2026-01-02", "--to", "2026-01-02"}, olga[1:3]},
		{"RFC 3339 times", []string{"--actor=olga", "--from=2026-01-01T12:00:00Z", "--to=2026-01-02T12:00:00Z"}, olga[2:4]},
		{"entry ids", []string{"--from", fmt.Sprint(olga[3]), "--to", fmt.Sprint(olga[1])}, olga[1:4]},
		{"limit", []string{"--actor", "olga", "--limit", "2"}, olga[:2]},
		{"before", []string{"--actor", "olga", "--before", fmt.Sprint(olga[1])}, olga[2:]},
		{"nothing matches", []string{"--actor", "nobody"}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := gab(t, data, append([]string{"audit", "list", "--json"}, tt.args...)...)
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			if got := jsonIDs(t, out); !slices.Equal(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
		})
	}

	// Text: a table, newest first; nothing matching is said on stderr.
	out, stderr, err := gab(t, data, "audit", "list", "--action", "rights.")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "rights.erasure") ||
		!strings.Contains(lines[2], "2026-01-02T00:00:00Z  pat") || stderr != "" {
		t.Errorf("text: %v %q %q", err, out, stderr)
	}
	out, stderr, err = gab(t, data, "audit", "list", "--actor", "nobody")
	if err != nil || out != "" || !strings.Contains(stderr, "no entries match these filters") {
		t.Errorf("none: %v %q %q", err, out, stderr)
	}

	// By default the newest 100, with a note on how to page on; --limit 0:
	// every entry.
	out, stderr, err = gab(t, data, "audit", "list", "--json", "--actor", "bulk")
	if got := jsonIDs(t, out); err != nil || !slices.Equal(got, bulk[:100]) ||
		!strings.Contains(stderr, fmt.Sprintf("--before %d", bulk[99])) {
		t.Errorf("default: %d entries, %q, %v", len(got), stderr, err)
	}
	out, stderr, err = gab(t, data, "audit", "list", "--json", "--actor", "bulk", "--before", fmt.Sprint(bulk[99]))
	if got := jsonIDs(t, out); err != nil || !slices.Equal(got, bulk[100:]) || stderr != "" {
		t.Errorf("the next page: %v, %q, %v", got, stderr, err)
	}
	out, stderr, err = gab(t, data, "audit", "list", "--json", "--limit", "0")
	if got := jsonIDs(t, out); err != nil || len(got) != len(olga)+len(pat)+1+len(bulk) || got[0] != bulk[0] || got[len(got)-1] != 1 || stderr != "" {
		t.Errorf("--limit 0: %d entries, %q, %v", len(got), stderr, err)
	}
}

// TestAuditListUsage: bad filters exit 2 saying what is wrong.
func TestAuditListUsage(t *testing.T) {
	data, _, _, _, _ := auditListFixture(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "yesterday"}, "--from"},
		{[]string{"--to", "2026-13-01"}, "--to"},
		{[]string{"--limit", "-1"}, "--limit"},
		{[]string{"--action", "rights erasure"}, `action "rights erasure"`},
		{[]string{"--from", "2026-01-03", "--to", "2026-01-02"}, "period"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		out, stderr, err := gab(t, data, append([]string{"audit", "list"}, tt.args...)...)
		if status(err) != 2 || out != "" || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "invalid argument") {
			t.Errorf("%q: exit %d, %q %q; want 2 saying %q", tt.args, status(err), out, stderr, tt.want)
		}
	}
}
