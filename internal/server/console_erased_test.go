package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestConsoleSearchOfErasedFaces: once every face a search returned is
// erased, its page and the history say there is nothing left to verify,
// instead of "0 of 2 confirmations" and "to verify".
func TestConsoleSearchOfErasedFaces(t *testing.T) {
	e := searchEnv(t, 0)
	st, sv, body := e.token("ivan").search(e.photo("p1.png"), map[string]string{"purpose": "theft", "case": "C-9"})
	if st != http.StatusOK || len(sv.Results) == 0 {
		t.Fatalf("search: %d %s", st, body)
	}
	var ids []int64
	for _, r := range sv.Results {
		ids = append(ids, r.FaceID)
	}
	vera := e.signIn("vera")
	before := vera.get(fmt.Sprintf("/searches/%d", sv.SearchID)).body
	mustContain(t, "the search's page before the erasure", before, "0 of 2 confirmations")
	if _, _, err := e.data.DB.EraseFaces(context.Background(), ids, "dpo", "test"); err != nil {
		t.Fatal(err)
	}

	page := vera.get(fmt.Sprintf("/searches/%d", sv.SearchID))
	if page.status != http.StatusOK {
		t.Fatalf("search page: %d %s", page.status, mainOf(page.body))
	}
	checkHTML(t, "search page of erased faces", page.body)
	mustContain(t, "the search's page after the erasure", page.body, "results erased, nothing to verify", "Erased or purged: it can no longer be verified")
	mustLack(t, "the search's page after the erasure", page.body, "0 of 2 confirmations", ">Verify<")
	face := vera.get(fmt.Sprintf("/searches/%d/faces/%d", sv.SearchID, ids[0]))
	mustContain(t, "an erased face's verification page", face.body, "Erased or purged: it can no longer be verified")
	mustLack(t, "an erased face's verification page", face.body, "0 of 2 confirmations")

	list := vera.get("/searches")
	mustContain(t, "the history", list.body, "results erased, nothing to verify")
	mustLack(t, "the history", list.body, `<span class="badge">to verify</span>`)
	if todo := vera.get("/searches?state=unverified"); len(searchIDs(todo.body)) != 0 {
		t.Errorf("searches to verify = %v, want none", searchIDs(todo.body))
	}
}

// mustLack fails the test for each of unwanted that body holds.
func mustLack(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(body, u) {
			t.Errorf("%s holds %q:\n%s", what, u, mainOf(body))
		}
	}
}
