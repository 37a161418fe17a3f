package server

import (
	"bytes"
	"fmt"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/face"
	"gabarit/internal/store"
)

// morePhotos adds n photos of distinct colours to the source folder: n more
// faces for fakeModel, none like another.
func (e *testEnv) morePhotos(n int) {
	e.t.Helper()
	for i := range n {
		c := color.RGBA{uint8(40 + 7*i), uint8(250 - 5*i), uint8(90 + 3*i), 0}
		if err := os.WriteFile(filepath.Join(e.photos, fmt.Sprintf("q%02d.png", i)), testPNG(e.t, c), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// photo reads a photo of the source folder.
func (e *testEnv) photo(name string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.photos, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// search runs a search through the API as c.
func (c *client) search(probe []byte, fields map[string]string) (int, app.SearchView, []byte) {
	c.e.t.Helper()
	st, body := c.multipart("/api/v1/searches", fields, map[string][][]byte{"photo": {probe}})
	var v app.SearchView
	if st == http.StatusOK {
		v = decode[app.SearchView](c.e.t, body)
	}
	return st, v, body
}

// searchEnv is a server with a source of 3+extra photos ingested and the
// users of the search tests: olga (operator), ivan and ines
// (investigators), eve (investigator and examiner), vera, victor and val
// (verifiers), aude (auditor) and dora (dpo).
func searchEnv(t *testing.T, extra int) *testEnv {
	t.Helper()
	e := newTestEnv(t, nil)
	e.srv.logins = newLimiter(1000, time.Minute)
	e.morePhotos(extra)
	for _, u := range []struct {
		name  string
		roles []store.Role
	}{{"olga", roles(operator)}, {"ivan", roles(investigator)}, {"ines", roles(investigator)},
		{"eve", roles(investigator, store.RoleExaminer)}, {"vera", roles(verifier)}, {"victor", roles(verifier)},
		{"val", roles(verifier)}, {"aude", roles(auditor)}, {"dora", roles(dpo)}} {
		e.addUser(u.name, u.roles...)
	}
	op := e.token("olga")
	if j := e.ingest(op, e.declareSource(op)); j.State != jobDone || j.Faces != 3+extra {
		t.Fatalf("ingest: %+v", j)
	}
	return e
}

// TestExploratorySearch: below the operating point, only an examiner with
// a reason searches, and the search is audited as exploratory.
func TestExploratorySearch(t *testing.T) {
	e := searchEnv(t, 0)
	probe := e.photo("p1.png")
	ivan, eve := e.token("ivan"), e.token("eve")

	st, ok, body := ivan.search(probe, map[string]string{"purpose": "theft"})
	if st != http.StatusOK || ok.Exploratory || ok.OperatingPoint <= 0 || ok.Threshold != ok.OperatingPoint || len(ok.Results) != 1 {
		t.Fatalf("search at the operating point: %d %s", st, body)
	}
	conforms(t, "SearchView", body)
	below := fmt.Sprint(ok.OperatingPoint - 0.1)
	tests := []struct {
		name   string
		c      *client
		fields map[string]string
		want   []string // in the message
	}{
		{"investigator", ivan, map[string]string{"purpose": "theft", "threshold": below, "reason": "poor CCTV still"},
			[]string{"below the operating point", "exploratory search", "stated reason"}},
		{"examiner without a reason", eve, map[string]string{"purpose": "theft", "threshold": below},
			[]string{"below the operating point", "state the reason"}},
		{"examiner with a blank reason", eve, map[string]string{"purpose": "theft", "threshold": below, "reason": "  "},
			[]string{"state the reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			searches, _ := e.data.DB.ListSearches(t.Context(), store.SearchFilter{Limit: 100})
			st, _, body := tt.c.search(probe, tt.fields)
			ae := decode[apiError](t, body)
			if st != http.StatusForbidden || ae.Code != "below_operating_point" {
				t.Fatalf("%d %s, want 403 below_operating_point", st, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(ae.Message, w) {
					t.Errorf("message %q does not say %q", ae.Message, w)
				}
			}
			if strings.Contains(ae.Message, "request") || strings.Contains(ae.Message, e.dir) {
				t.Errorf("message %q says something internal", ae.Message)
			}
			if after, _ := e.data.DB.ListSearches(t.Context(), store.SearchFilter{Limit: 100}); len(after) != len(searches) {
				t.Errorf("a refused search was recorded")
			}
		})
	}
	// A threshold above the operating point narrows the search: anyone.
	if st, _, body := ivan.search(probe, map[string]string{"purpose": "theft", "threshold": "0.99"}); st != http.StatusOK {
		t.Errorf("a stricter threshold: %d %s", st, body)
	}

	st, res, body := eve.search(probe, map[string]string{"purpose": "theft", "threshold": "-1", "reason": "poor CCTV still", "k": "2"})
	if st != http.StatusOK || !res.Exploratory || res.ExploratoryReason != "poor CCTV still" || res.Threshold != -1 ||
		res.Above != 3 || len(res.Results) != 2 || res.NextCursor == "" {
		t.Fatalf("exploratory search: %d %s", st, body)
	}
	conforms(t, "SearchView", body)
	weak := 0
	for _, h := range res.Results {
		if h.Band == "weak" {
			weak++
			if !h.BelowOperatingPoint {
				t.Errorf("weak result %+v not marked below the operating point", h)
			}
		}
	}
	if res.Results[0].Band == "weak" || weak != 1 {
		t.Errorf("bands of %+v: the face itself is a match, the first stranger weak", res.Results)
	}
	es, err := e.data.DB.AuditEntries(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(es, func(a store.AuditEntry) bool { return a.Object == fmt.Sprintf("search/%d", res.SearchID) })
	if i < 0 || es[i].Action != "search.exploratory" || es[i].Actor != "eve" || !strings.Contains(string(es[i].Detail), `"exploratory":"poor CCTV still"`) {
		t.Errorf("audit entry of the exploratory search: %+v", es[i])
	}
	// The record says so.
	st, body = e.token("vera").json("GET", fmt.Sprintf("/api/v1/searches/%d", res.SearchID), nil)
	rec := decode[searchRecordJSON](t, body)
	if st != http.StatusOK || !rec.Exploratory || rec.ExploratoryReason != "poor CCTV still" || rec.Above != 3 || rec.OperatingPoint != ok.OperatingPoint {
		t.Errorf("record: %d %s", st, body)
	}
	conforms(t, "SearchRecord", body)
}

// TestResultsPaging: paging through a search's results returns every
// recorded face exactly once, and their number is the search's "above".
func TestResultsPaging(t *testing.T) {
	e := searchEnv(t, 9) // 12 faces
	st, res, body := e.token("eve").search(e.photo("p0.png"),
		map[string]string{"purpose": "paging", "threshold": "-1", "reason": "every face", "k": "5"})
	if st != http.StatusOK || res.Above != 12 || len(res.Results) != 5 || res.NextCursor == "" {
		t.Fatalf("search: %d %s", st, body)
	}
	for _, who := range []string{"eve", "vera", "aude"} {
		t.Run(who, func(t *testing.T) {
			c := e.token(who)
			seen := map[int64]int{}
			var order []int64
			cursor, pages := "", 0
			for {
				path := fmt.Sprintf("/api/v1/searches/%d/results?limit=4", res.SearchID)
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				st, body := c.json("GET", path, nil)
				if st != http.StatusOK {
					t.Fatalf("%s: %d %s", path, st, body)
				}
				conforms(t, "ResultsPage", body)
				pg := decode[resultsPageJSON](t, body)
				if pg.Above != res.Above || pg.Recorded != 12 || len(pg.Results) > 4 {
					t.Fatalf("page %d: above %d, recorded %d, %d results", pages, pg.Above, pg.Recorded, len(pg.Results))
				}
				for _, h := range pg.Results {
					seen[h.FaceID]++
					order = append(order, h.FaceID)
					if who == "aude" && (h.Locator != "" || h.ImageID != 0 || h.SourceID != 0) {
						t.Errorf("an auditor sees where face %d is: %+v", h.FaceID, h)
					}
					if who != "aude" && h.Locator == "" {
						t.Errorf("face %d without its locator for %s", h.FaceID, who)
					}
				}
				pages++
				if cursor = pg.NextCursor; cursor == "" {
					break
				}
				if pages > 10 {
					t.Fatal("paging does not end")
				}
			}
			if pages != 3 || len(seen) != res.Above || len(order) != res.Above {
				t.Errorf("%d pages, %d faces (%d distinct), want 3 pages and %d faces once each", pages, len(order), len(seen), res.Above)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("face %d on %d pages", id, n)
				}
			}
			sr, err := e.data.DB.Search(t.Context(), res.SearchID)
			if err != nil || !slices.Equal(order, sr.Returned) {
				t.Errorf("paged %v, recorded %v (%v)", order, sr.Returned, err)
			}
		})
	}
	// The first page of the search's answer continues with its cursor.
	st, body = e.token("eve").json("GET", fmt.Sprintf("/api/v1/searches/%d/results?limit=100&cursor=%s", res.SearchID, res.NextCursor), nil)
	if pg := decode[resultsPageJSON](t, body); st != http.StatusOK || len(pg.Results) != 7 || pg.Results[0].FaceID == res.Results[4].FaceID {
		t.Errorf("after the answer's first page: %d %s", st, body)
	}
	for _, tc := range []struct{ query, code string }{
		{"cursor=nonsense", "invalid_cursor"}, {"cursor=o-1", "invalid_cursor"}, {"limit=0", "invalid"}, {"limit=1001", "invalid"}, {"limit=x", "invalid"},
	} {
		st, body := e.token("eve").json("GET", fmt.Sprintf("/api/v1/searches/%d/results?%s", res.SearchID, tc.query), nil)
		if ae := decode[apiError](t, body); st != http.StatusBadRequest || ae.Code != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.query, st, body, tc.code)
		}
	}
	// Another investigator's search is not found; operators may not ask.
	if st, _ := e.token("ivan").json("GET", fmt.Sprintf("/api/v1/searches/%d/results", res.SearchID), nil); st != http.StatusNotFound {
		t.Errorf("another investigator: %d", st)
	}
	if st, _ := e.token("olga").json("GET", fmt.Sprintf("/api/v1/searches/%d/results", res.SearchID), nil); st != http.StatusForbidden {
		t.Errorf("an operator: %d", st)
	}
}

// TestRejectThroughTheAPI: a rejected candidate cannot be confirmed and is
// never identified; rejections are audited and shown with the record.
func TestRejectThroughTheAPI(t *testing.T) {
	e := searchEnv(t, 0)
	st, res, body := e.token("eve").search(e.photo("p1.png"), map[string]string{"purpose": "fraud", "threshold": "-1", "reason": "all"})
	if st != http.StatusOK || len(res.Results) != 3 {
		t.Fatalf("search: %d %s", st, body)
	}
	sid := res.SearchID
	a, b := res.Results[0].FaceID, res.Results[1].FaceID
	vera, victor, val := e.token("vera"), e.token("victor"), e.token("val")
	reject := func(c *client, face int64, reason string) (int, []byte) {
		return c.json("POST", fmt.Sprintf("/api/v1/searches/%d/reject", sid), map[string]any{"face_id": face, "reason": reason})
	}
	confirm := func(c *client, face int64) (int, []byte) {
		return c.json("POST", fmt.Sprintf("/api/v1/searches/%d/confirmations", sid), map[string]any{"face_id": face})
	}

	// b is rejected first: nobody confirms it.
	st, body = reject(vera, b, "a different person: another nose")
	if st != http.StatusOK {
		t.Fatalf("reject: %d %s", st, body)
	}
	conforms(t, "Rejection", body)
	if r := decode[rejectionJSON](t, body); r.FaceID != b || r.Verifier != "vera" || r.Reason != "a different person: another nose" {
		t.Errorf("rejection = %+v", r)
	}
	for _, c := range []*client{victor, vera} {
		st, body := confirm(c, b)
		if ae := decode[apiError](t, body); st != http.StatusConflict || ae.Code != "rejected" || !strings.Contains(ae.Message, "cannot be confirmed") {
			t.Errorf("confirming a rejected face: %d %s, want 409 rejected", st, body)
		}
	}
	// a is identified by two, then rejected by a third: no longer identified.
	for _, c := range []*client{vera, victor} {
		if st, body := confirm(c, a); st != http.StatusOK {
			t.Fatalf("confirm: %d %s", st, body)
		}
	}
	if st, body := reject(val, a, "no: look at the ears"); st != http.StatusOK {
		t.Fatalf("reject an identified face: %d %s", st, body)
	}
	st, body = e.token("aude").json("GET", fmt.Sprintf("/api/v1/searches/%d", sid), nil)
	if st != http.StatusOK {
		t.Fatalf("record: %d %s", st, body)
	}
	conforms(t, "SearchRecord", body)
	rec := decode[searchRecordJSON](t, body)
	if len(rec.Rejections) != 2 || rec.State != store.VerifyRejected {
		t.Errorf("record: %d rejections, state %s: %s", len(rec.Rejections), rec.State, body)
	}
	for _, c := range rec.Confirmations {
		if c.Identified || (c.FaceID == a && !c.Rejected) {
			t.Errorf("confirmation %+v: a rejected face is identified", c)
		}
	}

	// Refusals.
	for _, tc := range []struct {
		name string
		c    *client
		face int64
		why  string
		st   int
		code string
	}{
		{"no reason", victor, res.Results[2].FaceID, " ", http.StatusBadRequest, "invalid"},
		{"reason too long", victor, res.Results[2].FaceID, strings.Repeat("x", 501), http.StatusBadRequest, "invalid"},
		{"twice", vera, b, "again", http.StatusConflict, "conflict"},
		{"own search", e.token("eve"), a, "mine", http.StatusForbidden, "forbidden"}, // eve is no verifier
		{"not returned", victor, 999, "?", http.StatusBadRequest, "invalid"},
		{"investigator", e.token("ivan"), a, "no", http.StatusForbidden, "forbidden"},
	} {
		st, body := reject(tc.c, tc.face, tc.why)
		if ae := decode[apiError](t, body); st != tc.st || ae.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, body, tc.st, tc.code)
		}
	}

	var log []string
	es, err := e.data.DB.AuditEntries(t.Context(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range es {
		if x.Object == fmt.Sprintf("search/%d", sid) && x.Action == "search.reject" {
			log = append(log, x.Actor+" "+string(x.Detail))
		}
	}
	want := []string{
		fmt.Sprintf(`vera {"face":%d,"reason":"a different person: another nose","confirmations":0}`, b),
		fmt.Sprintf(`val {"face":%d,"reason":"no: look at the ears","confirmations":2}`, a),
	}
	if !slices.Equal(log, want) {
		t.Errorf("rejections audited:\n%q\nwant\n%q", log, want)
	}
}

// TestSearchListRoles: investigators list only their own searches,
// whatever they ask; verifiers and auditors list all; filters combine.
func TestSearchListRoles(t *testing.T) {
	e := searchEnv(t, 0)
	ivan, ines := e.token("ivan"), e.token("ines")
	var ivans, ines2 []int64
	for i, c := range []*client{ivan, ines, ivan, ines} {
		caseRef := "C-1"
		if i >= 2 {
			caseRef = "C-2"
		}
		st, res, body := c.search(e.photo(fmt.Sprintf("p%d.png", i%3)), map[string]string{"purpose": "list", "case": caseRef})
		if st != http.StatusOK {
			t.Fatalf("search: %d %s", st, body)
		}
		if c == ivan {
			ivans = append([]int64{res.SearchID}, ivans...)
		} else {
			ines2 = append([]int64{res.SearchID}, ines2...)
		}
	}
	list := func(c *client, query string) (int, []int64, searchListJSON) {
		t.Helper()
		st, body := c.json("GET", "/api/v1/searches"+query, nil)
		if st != http.StatusOK {
			return st, nil, searchListJSON{}
		}
		conforms(t, "SearchList", body)
		l := decode[searchListJSON](t, body)
		var ids []int64
		for _, s := range l.Searches {
			ids = append(ids, s.ID)
		}
		return st, ids, l
	}
	all := []int64{ines2[0], ivans[0], ines2[1], ivans[1]}
	tests := []struct {
		name  string
		c     *client
		query string
		want  []int64
	}{
		{"investigator: own", ivan, "", ivans},
		{"investigator asking for another's", ivan, "?actor=ines", ivans},
		{"investigator by case", ivan, "?case=C-2", ivans[:1]},
		{"verifier: all", e.token("vera"), "", all},
		{"verifier by actor", e.token("vera"), "?actor=ines", ines2},
		{"verifier by case", e.token("vera"), "?case=C-1", all[2:]},
		{"auditor: all", e.token("aude"), "", all},
		{"unverified", e.token("vera"), "?state=unverified", all},
		{"since yesterday", e.token("vera"), "?from=" + e.srv.cfg.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02") +
			"&to=" + e.srv.cfg.Now().UTC().Format("2006-01-02"), all},
		{"before", e.token("vera"), "?to=2000-01-01", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ids, _ := list(tt.c, tt.query)
			if st != http.StatusOK || !slices.Equal(ids, tt.want) {
				t.Errorf("%d %v, want %v", st, ids, tt.want)
			}
		})
	}
	for _, who := range []string{"olga", "dora"} {
		st, body := e.token(who).json("GET", "/api/v1/searches", nil)
		if ae := decode[apiError](t, body); st != http.StatusForbidden || ae.Code != "forbidden" {
			t.Errorf("%s lists searches: %d %s", who, st, body)
		}
	}
	for _, q := range []string{"?state=maybe", "?from=yesterday", "?limit=0", "?limit=201", "?cursor=x", "?from=2026-01-02&to=2026-01-01"} {
		if st, body := e.token("vera").json("GET", "/api/v1/searches"+q, nil); st != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, st, body)
		}
	}

	// Paging.
	var paged []int64
	cursor := ""
	for range 10 {
		q := "?limit=1"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		_, ids, l := list(e.token("vera"), q)
		paged = append(paged, ids...)
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged %v, want %v", paged, all)
	}

	// States follow the verification.
	vera := e.token("vera")
	run := func() app.SearchView {
		st, res, body := ivan.search(e.photo("p0.png"), map[string]string{"purpose": "states"})
		if st != http.StatusOK || len(res.Results) != 1 {
			t.Fatalf("search: %d %s", st, body)
		}
		return res
	}
	pending, rejected := run(), run()
	if st, body := vera.json("POST", fmt.Sprintf("/api/v1/searches/%d/confirmations", pending.SearchID), map[string]any{"face_id": pending.Results[0].FaceID}); st != http.StatusOK {
		t.Fatalf("confirm: %d %s", st, body)
	}
	if st, body := vera.json("POST", fmt.Sprintf("/api/v1/searches/%d/reject", rejected.SearchID), map[string]any{"face_id": rejected.Results[0].FaceID, "reason": "no"}); st != http.StatusOK {
		t.Fatalf("reject: %d %s", st, body)
	}
	for state, want := range map[string][]int64{"pending": {pending.SearchID}, "rejected": {rejected.SearchID}, "confirmed": nil} {
		if _, ids, _ := list(ivan, "?state="+state); !slices.Equal(ids, want) {
			t.Errorf("state %s: %v, want %v", state, ids, want)
		}
	}
	if _, _, l := list(ivan, "?limit=2"); l.Searches[0].State != store.VerifyRejected || l.Searches[1].State != store.VerifyPending || l.Searches[1].Pending != 1 {
		t.Errorf("states of the list: %+v", l.Searches)
	}
}

// TestProbeCropAndImage: the crop of the face searched, sealed with the
// search record, is served to its searcher, the verifiers and the
// auditors; the face's image shows it boxed.
func TestProbeCropAndImage(t *testing.T) {
	e := searchEnv(t, 0)
	probe := e.photo("p2.png")
	st, res, body := e.token("ivan").search(probe, map[string]string{"purpose": "crop"})
	if st != http.StatusOK || res.ProbeFace == nil || res.ProbeFace.Chosen != "best quality" {
		t.Fatalf("search: %d %s", st, body)
	}
	sr, err := e.data.DB.Search(t.Context(), res.SearchID)
	if err != nil || len(sr.ProbeCrop) == 0 {
		t.Fatalf("no sealed crop recorded: %v", err)
	}
	pb := sr.ProbeFace.Box
	want, err := app.CropFace(probe, face.Box{X: pb[0], Y: pb[1], W: pb[2], H: pb[3]}, app.ProbeCropMargin, app.ProbeCropSide)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sr.ProbeCrop, want[:64]) {
		t.Error("the crop is stored in clear")
	}
	path := fmt.Sprintf("/api/v1/searches/%d/probe.jpg", res.SearchID)
	for who, wantStatus := range map[string]int{"ivan": 200, "vera": 200, "aude": 200, "ines": 404, "olga": 403, "dora": 403} {
		r := e.token(who).send("GET", path, "", nil)
		if r.status != wantStatus {
			t.Errorf("%s: %d %.200s, want %d", who, r.status, r.body, wantStatus)
			continue
		}
		if r.status == 200 {
			if r.body != string(want) || r.header.Get("Content-Type") != "image/jpeg" || !strings.Contains(r.header.Get("Cache-Control"), "no-store") {
				t.Errorf("%s: %d bytes %q %q, want the %d-byte crop, not cached", who, len(r.body), r.header.Get("Content-Type"), r.header.Get("Cache-Control"), len(want))
			}
		}
	}
	// A search whose probe had no face keeps no crop.
	st, body = e.token("ivan").multipart("/api/v1/searches", map[string]string{"purpose": "x"}, map[string][][]byte{"photo": {testPNG(t, color.RGBA{})}})
	if st != http.StatusUnprocessableEntity {
		t.Fatalf("no-face search: %d %s", st, body)
	}
	l, err := e.data.DB.ListSearches(t.Context(), store.SearchFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, body = e.token("ivan").json("GET", fmt.Sprintf("/api/v1/searches/%d/probe.jpg", l[0].ID), nil)
	if ae := decode[apiError](t, body); st != http.StatusNotFound || ae.Code != "no_probe_crop" {
		t.Errorf("crop of a search without a face: %d %s", st, body)
	}

	// The candidate's image, its face boxed.
	img := e.token("vera").send("GET", fmt.Sprintf("/api/v1/faces/%d/image.jpg", res.Results[0].FaceID), "", nil)
	if img.status != http.StatusOK || img.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("image: %d %.200s", img.status, img.body)
	}
	dec, err := jpeg.Decode(strings.NewReader(img.body))
	if err != nil {
		t.Fatal(err)
	}
	// fakeModel's face is at (4, 4) 24×24 of a 32×32 photo: the box's
	// frame lies just outside it, yellow.
	if b := dec.Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Errorf("image %v, want 32×32", b)
	}
	if r, g, bl, _ := dec.At(3, 16).RGBA(); r>>8 < 200 || g>>8 < 170 || bl>>8 > 110 {
		t.Errorf("no yellow frame left of the face: %d,%d,%d", r>>8, g>>8, bl>>8)
	}
	if st := e.token("ines").send("GET", fmt.Sprintf("/api/v1/faces/%d/image.jpg", res.Results[0].FaceID), "", nil).status; st != http.StatusNotFound {
		t.Errorf("another investigator gets the image: %d", st)
	}
}
