package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

// auditDay is the first day of the entries auditEnv writes.
var auditDay = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// auditEntries are the ids of the entries auditEnv writes, by what they
// are.
type auditEntries struct {
	olga   []int64 // image.delete by olga, newest first: two a day from 2020-01-01, 7 in all
	rights []int64 // pat's rights.received (2020-01-02) and rights.erasure (2020-01-03), newest first
	holder int64   // pat's rightsholder.add, not a rights. action
	case7  []int64 // case C-7: ivan's search and vera's confirmation of it, newest first
	case8  int64   // case C-8: otto's search
	bulk   []int64 // 105 entries by bulk, newest first
}

// auditEnv starts a server with users (of aude, an auditor, dora, a dpo,
// ivan, an investigator, and ada, an admin), and writes the entries of auditEntries
// into its audit log, with times in January 2020 (except bulk's).
func auditEnv(t *testing.T, users ...string) (*testEnv, auditEntries) {
	t.Helper()
	e := consoleEnv(t)
	roles := map[string]store.Role{"aude": store.RoleAuditor, "dora": store.RoleDPO, "ivan": store.RoleInvestigator, "ada": store.RoleAdmin}
	for _, name := range users {
		e.addUser(name, roles[name])
	}
	ctx := context.Background()
	db := e.data.DB
	var got auditEntries
	add := func(at time.Time, actor, action, object string) int64 {
		t.Helper()
		id, err := db.AppendAudit(ctx, nil, store.AuditEntry{At: at, Actor: actor, Action: action, Object: object})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	search := func(at time.Time, actor, caseRef string) int64 {
		t.Helper()
		s := store.Search{At: at, Actor: actor, Purpose: "missing person report", CaseRef: caseRef,
			ProbeSHA256: sha256.Sum256([]byte(caseRef)), K: 10, Threshold: 0.5}
		id, auditID, err := db.RecordSearch(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		add(at.Add(time.Minute), "vera", "search.view", fmt.Sprintf("search/%d", id+1000)) // another search's
		return auditID
	}
	for i := range 7 {
		got.olga = append([]int64{add(auditDay.Add(time.Duration(i)*12*time.Hour), "olga", "image.delete", fmt.Sprintf("image/%d", i))}, got.olga...)
	}
	got.rights = []int64{add(auditDay.AddDate(0, 0, 1), "pat", "rights.received", "rights/1")}
	got.rights = append([]int64{add(auditDay.AddDate(0, 0, 2), "pat", "rights.erasure", "rights/1")}, got.rights...)
	got.holder = add(auditDay.AddDate(0, 0, 2), "pat", "rightsholder.add", "holder/1")
	s7 := search(auditDay.AddDate(0, 0, 4), "ivan", "C-7")
	got.case8 = search(auditDay.AddDate(0, 0, 4), "otto", "C-8")
	var s7ID int64
	if es, err := db.AuditEntries(ctx, s7, s7); err != nil || len(es) != 1 {
		t.Fatalf("search entry %d: %v", s7, err)
	} else if _, err := fmt.Sscanf(es[0].Object, "search/%d", &s7ID); err != nil {
		t.Fatal(err)
	}
	got.case7 = []int64{add(auditDay.AddDate(0, 0, 5), "vera", "search.confirm", fmt.Sprintf("search/%d", s7ID)), s7}
	err := db.Tx(ctx, func(tx *store.Tx) error {
		for range 105 {
			id, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: "bulk", Action: "image.ingest", Object: "image/1"})
			if err != nil {
				return err
			}
			got.bulk = append([]int64{id}, got.bulk...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, got
}

// auditAnswer is the answer of GET /api/v1/audit.
type auditAnswer struct {
	Entries []app.AuditView `json:"entries"`
	Next    *string         `json:"next"`
}

func (a auditAnswer) ids() []int64 {
	out := make([]int64, len(a.Entries))
	for i, e := range a.Entries {
		out[i] = e.ID
	}
	return out
}

// getAudit asks c for path and decodes the answer, which must be 200.
func getAudit(t *testing.T, c *client, path string) auditAnswer {
	t.Helper()
	st, body := c.json("GET", path, nil)
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, st, body)
	}
	var a auditAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	if a.Entries == nil || a.Next == nil {
		t.Fatalf("GET %s: entries or next missing (entries must be a list, next a string): %s", path, body)
	}
	return a
}

func TestAPIAuditFilters(t *testing.T) {
	t.Parallel()
	e, want := auditEnv(t, "aude")
	au := e.login("aude")
	tests := []struct {
		name  string
		query string
		want  []int64
	}{
		{"actor", "actor=olga&action=image.delete", want.olga},
		{"action exactly", "action=rights.erasure", want.rights[:1]},
		{"action prefix with a dot", "action=rights.", want.rights},
		{"action prefix with a star", "action=rights.*", want.rights},
		{"action prefix without a dot", "action=rights*", append([]int64{want.holder}, want.rights...)},
		{"case: the search and its confirmation", "case=C-7", want.case7},
		{"other case", "case=C-8", []int64{want.case8}},
		{"a day: to includes it", "actor=olga&from=2020-01-02&to=2020-01-02", want.olga[3:5]},
		{"from a date", "actor=olga&from=2020-01-03", want.olga[:3]},
		{"RFC 3339 times: to excludes", "actor=olga&from=2020-01-01T12:00:00Z&to=2020-01-02T12:00:00Z", want.olga[4:6]},
		{"entry ids", fmt.Sprintf("from=%d&to=%d", want.olga[5], want.olga[2]), want.olga[2:6]},
		{"filters combine", "actor=pat&action=rights.&from=2020-01-03", want.rights[:1]},
		{"nothing matches", "actor=nobody", []int64{}},
	}
	for _, tt := range tests {
		a := getAudit(t, au, "/api/v1/audit?"+tt.query)
		if !slices.Equal(a.ids(), tt.want) || *a.Next != "" {
			t.Errorf("%s (%s): ids %v, next %q; want %v, no next", tt.name, tt.query, a.ids(), *a.Next, tt.want)
		}
		for _, v := range a.Entries {
			if len(v.Hash) != 64 || len(v.PrevHash) != 64 || v.Actor == "" || v.At.IsZero() {
				t.Errorf("%s: entry %d incomplete: %+v", tt.name, v.ID, v)
			}
		}
	}

	// The newest first, 100 by default, with the whole entry.
	a := getAudit(t, au, "/api/v1/audit")
	head, err := e.data.DB.AuditHeadID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Entries) != store.DefaultAuditLimit || a.Entries[0].ID != head || *a.Next == "" {
		t.Fatalf("default page: %d entries from %d (head %d), next %q", len(a.Entries), a.Entries[0].ID, head, *a.Next)
	}
	for i := 1; i < len(a.Entries); i++ {
		if a.Entries[i].ID >= a.Entries[i-1].ID {
			t.Fatalf("not newest first at %d: %v", i, a.ids())
		}
	}
	if v := getAudit(t, au, "/api/v1/audit?case=C-7").Entries[0]; v.Actor != "vera" || v.Action != "search.confirm" ||
		!v.At.Equal(auditDay.AddDate(0, 0, 5)) || !strings.HasPrefix(v.Object, "search/") {
		t.Errorf("entry %d: %+v", want.case7[0], v)
	}
}

func TestAPIAuditPaging(t *testing.T) {
	t.Parallel()
	e, want := auditEnv(t, "dora")
	dpo := e.login("dora")

	// Follow next through olga's entries three at a time: the filters stay.
	var got []int64
	var pages int
	for path := "/api/v1/audit?actor=olga&limit=3"; path != ""; pages++ {
		if pages > 5 {
			t.Fatalf("more pages than entries: %v", got)
		}
		a := getAudit(t, dpo, path)
		got = append(got, a.ids()...)
		if len(a.Entries) > 3 {
			t.Errorf("%s: %d entries, limit 3", path, len(a.Entries))
		}
		path = *a.Next
		if path != "" {
			u, err := url.Parse(path)
			if err != nil || u.Path != "/api/v1/audit" || u.Query().Get("actor") != "olga" || u.Query().Get("limit") != "3" ||
				u.Query().Get("before") != strconv.FormatInt(got[len(got)-1], 10) {
				t.Errorf("next %q: want the same filters before entry %d", path, got[len(got)-1])
			}
		}
	}
	if !slices.Equal(got, want.olga) || pages != 3 {
		t.Errorf("paged: %v in %d pages, want %v in 3", got, pages, want.olga)
	}

	// The boundaries: a last page exactly full has no next; before the
	// oldest is empty; after moves forward.
	if a := getAudit(t, dpo, "/api/v1/audit?actor=pat&limit=3"); len(a.Entries) != 3 || *a.Next != "" {
		t.Errorf("exactly full page: %v, next %q", a.ids(), *a.Next)
	}
	if a := getAudit(t, dpo, "/api/v1/audit?actor=pat&limit=2"); len(a.Entries) != 2 || *a.Next == "" {
		t.Errorf("one more than the page: %v, next %q", a.ids(), *a.Next)
	}
	if a := getAudit(t, dpo, fmt.Sprintf("/api/v1/audit?actor=olga&before=%d", want.olga[6])); len(a.Entries) != 0 || *a.Next != "" {
		t.Errorf("before the oldest: %v, next %q", a.ids(), *a.Next)
	}
	if a := getAudit(t, dpo, fmt.Sprintf("/api/v1/audit?actor=olga&after=%d&limit=2", want.olga[6])); !slices.Equal(a.ids(), want.olga[4:6]) || *a.Next == "" {
		t.Errorf("after the oldest: %v, next %q; want %v", a.ids(), *a.Next, want.olga[4:6])
	} else if u, _ := url.Parse(*a.Next); u.Query().Has("after") || u.Query().Get("before") != strconv.FormatInt(want.olga[5], 10) {
		t.Errorf("next of an after page: %q", *a.Next)
	}
	if a := getAudit(t, dpo, "/api/v1/audit?limit=1000"); len(a.Entries) < 80 || *a.Next != "" {
		t.Errorf("limit 1000: %d entries, next %q", len(a.Entries), *a.Next)
	}
}

func TestAPIAuditBadParameters(t *testing.T) {
	t.Parallel()
	e, _ := auditEnv(t, "aude")
	au := e.login("aude")
	for _, tt := range []struct{ query, want string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"before=0", "before"},
		{"before=x", "before"},
		{"after=-1", "after"},
		{"from=yesterday", "from"},
		{"to=2020-13-01", "to"},
		{"from=0", "from"},
		{"from=2020-01-03&to=2020-01-02", "to must come after from"},
		{"from=9&to=3", "to (entry 3)"},
		{"action=" + url.QueryEscape("rights erasure"), "action"},
		{"action=" + url.QueryEscape("ri*hts"), "action"},
	} {
		st, body := au.json("GET", "/api/v1/audit?"+tt.query, nil)
		var ae apiError
		if err := json.Unmarshal(body, &ae); err != nil || st != http.StatusBadRequest || ae.Code != "invalid" ||
			!strings.Contains(ae.Message, tt.want) || strings.Contains(ae.Message, "store") {
			t.Errorf("%s: %d %s; want 400 invalid naming %q", tt.query, st, body, tt.want)
		}
	}
}

func TestAPIAuditRoles(t *testing.T) {
	t.Parallel()
	e, _ := auditEnv(t, "aude", "dora", "ivan", "ada")
	for _, tt := range []struct {
		name string
		want int
	}{{"aude", http.StatusOK}, {"dora", http.StatusOK}, {"ivan", http.StatusForbidden}, {"ada", http.StatusForbidden}} {
		if st, body := e.login(tt.name).json("GET", "/api/v1/audit?actor=olga", nil); st != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, st, body, tt.want)
		}
	}
	if st, _ := e.anon().json("GET", "/api/v1/audit", nil); st != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", st)
	}
}

var (
	auditRow  = regexp.MustCompile(`<tr data-entry="(\d+)">\s*<td class="num">\d+</td>\s*<td class="nowrap">[^<]*</td>\s*<td>([^<]*)</td>\s*<td><code>([^<]*)</code>`)
	auditLink = regexp.MustCompile(`<a href="([^"]+)" rel="(prev|next)">`)
)

// auditRows returns the ids, actors and actions of the rows of an audit
// page, and its paging links by rel.
func auditRows(t *testing.T, body string) (ids []int64, actors, actions []string, links map[string]string) {
	t.Helper()
	for _, m := range auditRow.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids, actors, actions = append(ids, id), append(actors, m[2]), append(actions, m[3])
	}
	links = map[string]string{}
	for _, m := range auditLink.FindAllStringSubmatch(body, -1) {
		links[m[2]] = html.UnescapeString(m[1])
	}
	return ids, actors, actions, links
}

func TestConsoleAuditFilters(t *testing.T) {
	t.Parallel()
	e, want := auditEnv(t, "aude")
	au := e.signIn("aude")

	// The form filters the table and stays filled in.
	r := au.get("/audit?actor=pat&action=rights.")
	ids, actors, actions, links := auditRows(t, r.body)
	if r.status != http.StatusOK || !slices.Equal(ids, want.rights) || len(links) != 0 {
		t.Fatalf("actor=pat&action=rights.: %d, rows %v, links %v\n%.3000s", r.status, ids, links, r.body)
	}
	if !slices.Equal(actors, []string{"pat", "pat"}) || !slices.Equal(actions, []string{"rights.erasure", "rights.received"}) {
		t.Errorf("rows: %v %v", actors, actions)
	}
	for _, field := range []string{`id="f-actor" name="actor" type="text" maxlength="200" value="pat"`, `name="action" type="text" maxlength="200" value="rights."`} {
		if !strings.Contains(r.body, field) {
			t.Errorf("the form is not filled in: no %s", field)
		}
	}
	if !strings.Contains(r.body, `<option value="rights.erasure">`) {
		t.Errorf("the actions are not suggested")
	}
	r = au.get("/audit?case=C-7&from=2020-01-01&to=2020-01-31")
	if ids, _, _, _ := auditRows(t, r.body); !slices.Equal(ids, want.case7) || !strings.Contains(r.body, `value="2020-01-31"`) {
		t.Errorf("case and period: rows %v, want %v", ids, want.case7)
	}

	// Nothing matches: said so, with the form still filled in.
	r = au.get("/audit?actor=nobody")
	if r.status != http.StatusOK || !strings.Contains(r.body, "No entries match these filters.") || !strings.Contains(r.body, `value="nobody"`) ||
		strings.Contains(r.body, `<table class="table audit"`) {
		t.Errorf("no match: %d %.3000s", r.status, r.body)
	}

	// A bad filter: the form again, with what is wrong, and no table.
	r = au.get("/audit?actor=olga&from=someday")
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="page-error"`) || !strings.Contains(r.body, "want a date") ||
		!strings.Contains(r.body, `value="someday"`) || !strings.Contains(r.body, `value="olga"`) || strings.Contains(r.body, `data-entry=`) {
		t.Errorf("bad from: %d %.3000s", r.status, r.body)
	}
}

func TestConsoleAuditPaging(t *testing.T) {
	t.Parallel()
	e, want := auditEnv(t, "dora")
	au := e.signIn("dora")

	// 105 entries, 50 a page: Older entries twice, then back with Newer
	// entries, keeping the filter.
	var pages [][]int64
	var older []string
	path := "/audit?actor=bulk"
	for path != "" {
		if len(pages) > 3 {
			t.Fatalf("more pages than entries: %v", pages)
		}
		r := au.get(path)
		ids, actors, _, links := auditRows(t, r.body)
		if slices.IndexFunc(actors, func(a string) bool { return a != "bulk" }) >= 0 {
			t.Errorf("%s shows others' entries: %v", path, actors)
		}
		if (links["prev"] != "") != (len(pages) > 0) || (links["prev"] != "") != strings.Contains(r.body, "Newer entries") {
			t.Errorf("%s: page %d, links %v", path, len(pages)+1, links)
		}
		pages = append(pages, ids)
		if path = links["next"]; path != "" {
			older = append(older, path)
			if u, err := url.Parse(path); err != nil || u.Query().Get("actor") != "bulk" || u.Query().Get("before") != strconv.FormatInt(ids[len(ids)-1], 10) {
				t.Errorf("older link %q after %v", path, ids)
			}
		}
	}
	if want := [][]int64{want.bulk[:50], want.bulk[50:100], want.bulk[100:]}; !reflect.DeepEqual(pages, want) {
		t.Fatalf("pages back: %v, want %v", pages, want)
	}
	// Forward from the last page: the same pages, the same links.
	ids, _, _, links := auditRows(t, au.get(older[1]).body)
	for i := 1; i >= 0; i-- {
		ids, _, _, links = auditRows(t, au.get(links["prev"]).body)
		if !slices.Equal(ids, pages[i]) || links["next"] != older[i] || (links["prev"] != "") != (i > 0) {
			t.Errorf("forward to page %d: rows %v, links %v", i+1, ids, links)
		}
	}

	// Unfiltered, the newest page has only an older link, and a page in
	// the middle both.
	ids, _, _, links = auditRows(t, au.get("/audit").body)
	if len(ids) != auditPerPage || links["prev"] != "" || links["next"] == "" {
		t.Errorf("newest page: %d rows, links %v", len(ids), links)
	}
	mid := au.get(links["next"])
	if ids, _, _, links = auditRows(t, mid.body); len(ids) == 0 || links["prev"] == "" {
		t.Errorf("second page: %d rows, links %v", len(ids), links)
	}
	// Before the first entry: nothing, with a way back.
	r := au.get("/audit?before=1")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Back to the newest") {
		t.Errorf("before 1: %d %.2000s", r.status, r.body)
	}
}
