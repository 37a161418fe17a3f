package storetest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"gabarit/internal/store"
)

// appendAudit appends n entries "test.event" by actor, one a minute.
func (e *env) appendAudit(actor string, n int) {
	e.t.Helper()
	for i := range n {
		e.clock.Add(time.Minute)
		if _, err := e.db.AppendAudit(e.ctx, nil, store.AuditEntry{Actor: actor, Action: "test.event",
			Object: fmt.Sprint("thing/", i), Detail: json.RawMessage(fmt.Sprintf(`{ "n": %d }`, i))}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// testAuditChain: entries get ids 1, 2, 3… and each is linked to the one
// before by AuditHash; invalid entries are refused; the queries select.
func (s suite) testAuditChain(t *testing.T) {
	e := s.env(t)
	e.appendAudit("cli:ann", 3)
	e.appendAudit("cli:bob", 2)
	if _, err := e.db.AppendAudit(e.ctx, nil, store.AuditEntry{Actor: "cli:ann", Action: "other.event"}); err != nil {
		t.Fatal(err)
	}
	es := e.audit()
	if len(es) != 6 {
		t.Fatalf("%d entries, want 6", len(es))
	}
	var prev [32]byte
	for i, a := range es {
		if a.ID != int64(i+1) || a.PrevHash != prev || a.Hash != store.AuditHash(prev, a) {
			t.Errorf("entry %d: id %d, prev %x, hash %x: not linked", i, a.ID, a.PrevHash[:4], a.Hash[:4])
		}
		prev = a.Hash
	}
	if es[0].At != start.Add(time.Minute) || string(es[0].Detail) != `{"n":0}` || es[0].Object != "thing/0" {
		t.Errorf("first entry %+v", es[0])
	}
	if string(es[5].Detail) != `{}` || !es[5].At.Equal(start.Add(5*time.Minute)) {
		t.Errorf("entry without detail: %+v", es[5])
	}
	e.verified()
	if head, err := e.db.CheckAudit(e.ctx); err != nil || head.ID != 6 || head.Hash != es[5].Hash {
		t.Errorf("CheckAudit = %+v, %v", head, err)
	}
	for name, bad := range map[string]store.AuditEntry{
		"no actor":       {Action: "x"},
		"no action":      {Actor: "x"},
		"detail no json": {Actor: "x", Action: "x", Detail: json.RawMessage("not json")},
	} {
		_, err := e.db.AppendAudit(e.ctx, nil, bad)
		is(t, name, err, store.ErrInvalid)
	}
	if h := e.head(); h != 6 {
		t.Errorf("head %d after refused entries", h)
	}
	if got, err := e.db.AuditEntries(e.ctx, 2, 3); err != nil || len(got) != 2 || got[0].ID != 2 || got[1].ID != 3 {
		t.Errorf("AuditEntries(2, 3) = %d entries, %v", len(got), err)
	}
	ids := func(es []store.AuditEntry) []int64 {
		var out []int64
		for _, a := range es {
			out = append(out, a.ID)
		}
		return out
	}
	for _, tt := range []struct {
		f    store.AuditFilter
		want []int64
	}{
		{store.AuditFilter{Limit: 10}, []int64{6, 5, 4, 3, 2, 1}},
		{store.AuditFilter{Actor: "cli:bob", Limit: 10}, []int64{5, 4}},
		{store.AuditFilter{Action: "test.*", Limit: 10}, []int64{5, 4, 3, 2, 1}},
		{store.AuditFilter{Action: "other.event", Limit: 10}, []int64{6}},
		{store.AuditFilter{From: start.Add(2 * time.Minute), To: start.Add(4 * time.Minute), Limit: 10}, []int64{3, 2}},
		{store.AuditFilter{FromID: 2, ToID: 4, Limit: 10}, []int64{4, 3, 2}},
		{store.AuditFilter{Before: 4, Limit: 2}, []int64{3, 2}},
		{store.AuditFilter{After: 4, Limit: 1}, []int64{5}},
	} {
		got, err := e.db.QueryAudit(e.ctx, tt.f)
		if err != nil || !slices.Equal(ids(got), tt.want) {
			t.Errorf("QueryAudit(%+v) = %v, %v; want %v", tt.f, ids(got), err, tt.want)
		}
	}
	_, err := e.db.QueryAudit(e.ctx, store.AuditFilter{Limit: store.MaxAuditLimit + 1})
	is(t, "limit too large", err, store.ErrInvalid)
	if acts, err := e.db.AuditActions(e.ctx); err != nil || !slices.Equal(acts, []string{"other.event", "test.event"}) {
		t.Errorf("AuditActions = %v, %v", acts, err)
	}
}

// testAuditRollback: entries of a transaction that rolls back leave no
// gap: the next entry takes the next id and the chain verifies.
func (s suite) testAuditRollback(t *testing.T) {
	e := s.env(t)
	e.appendAudit("cli:ann", 2)
	boom := errors.New("boom")
	err := e.db.Tx(e.ctx, func(tx *store.Tx) error {
		for range 3 {
			if _, err := tx.AppendAudit(e.ctx, store.AuditEntry{Actor: "cli:ann", Action: "test.rolled-back"}); err != nil {
				return err
			}
		}
		return boom
	})
	is(t, "rolled back", err, boom)
	id, err := e.db.AppendAudit(e.ctx, nil, store.AuditEntry{Actor: "cli:ann", Action: "test.after"})
	if err != nil || id != 3 {
		t.Errorf("entry after a rollback: id %d, %v; want 3", id, err)
	}
	if n := e.count("test.rolled-back"); n != 0 {
		t.Errorf("%d rolled back entries kept", n)
	}
	e.verified()
}

// testAuditAppendOnly: the database itself refuses to change or delete an
// audit entry, whoever asks.
func (s suite) testAuditAppendOnly(t *testing.T) {
	e := s.env(t)
	e.appendAudit("cli:ann", 3)
	before := e.audit()
	r := raw(t, e.target)
	for _, stmt := range []string{`UPDATE audit SET actor = 'mallory' WHERE id = 2`, `DELETE FROM audit WHERE id = 3`, `DELETE FROM audit`} {
		if _, err := r.Exec(stmt); err == nil {
			t.Errorf("%s: accepted", stmt)
		}
	}
	if after := e.audit(); len(after) != len(before) || after[1].Actor != "cli:ann" {
		t.Errorf("audit log changed: %d entries, entry 2 by %q", len(after), after[1].Actor)
	}
	e.verified()
}

// testAuditTamper: a changed entry breaks the chain at that entry.
func (s suite) testAuditTamper(t *testing.T) {
	e := s.env(t)
	e.appendAudit("cli:ann", 5)
	r := raw(t, e.target)
	unguardAudit(t, e.target, r)
	rawExec(t, r, `UPDATE audit SET actor = 'mallory' WHERE id = 3`)
	if ok, bad, err := e.db.VerifyAudit(e.ctx); ok || bad != 3 || err != nil {
		t.Errorf("VerifyAudit after a changed actor = %v, first bad %d, %v; want false, 3", ok, bad, err)
	}
	_, err := e.db.CheckAudit(e.ctx)
	is(t, "CheckAudit after a changed actor", err, store.ErrAuditTampered)
}

// witnessKey signs witness heads, as the master key's derived key would.
func witnessKey(msg []byte) ([]byte, error) {
	h := hmac.New(sha256.New, []byte("storetest witness key"))
	h.Write(msg)
	return h.Sum(nil), nil
}

// testAuditWitness: removing the last entries leaves a valid, shorter
// chain; the witness kept outside the database shows it, the next audited
// write is refused, and a head copied off the machine no longer checks.
func (s suite) testAuditWitness(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.head")
	e := s.env(t, store.WithAuditWitness(path), store.WithAuditWitnessKey(witnessKey))
	e.appendAudit("cli:ann", 5)
	line, head, err := e.db.AuditHeadLine(e.ctx)
	if err != nil || head.ID != 5 {
		t.Fatalf("AuditHeadLine = %q %+v, %v", line, head, err)
	}
	if h, err := e.db.CheckAudit(e.ctx); err != nil || h != head {
		t.Fatalf("CheckAudit of an intact log = %+v, %v", h, err)
	}
	if h, err := e.db.CheckAuditHead(e.ctx, line); err != nil || h != head {
		t.Fatalf("CheckAuditHead of an intact log = %+v, %v", h, err)
	}
	r := raw(t, e.target)
	unguardAudit(t, e.target, r)
	rawExec(t, r, `DELETE FROM audit WHERE id > 3`)
	e.verified() // a shorter chain is still a chain
	_, err = e.db.CheckAudit(e.ctx)
	is(t, "CheckAudit with the last entries removed", err, store.ErrAuditTampered)
	_, err = e.db.CheckAuditHead(e.ctx, line)
	if err == nil {
		t.Error("CheckAuditHead of a head whose entry was removed: ok")
	}
	_, err = e.db.AppendAudit(e.ctx, nil, store.AuditEntry{Actor: "cli:ann", Action: "test.after"})
	is(t, "audited write after the removal", err, store.ErrAuditTampered)
	if h := e.head(); h != 3 {
		t.Errorf("head %d after a refused write, want 3", h)
	}
	if _, err := e.db.ResetAuditWitness(e.ctx, "cli:admin", "entries 4 and 5 were removed; investigated"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CheckAudit(e.ctx); err != nil {
		t.Errorf("CheckAudit after the reset: %v", err)
	}
	if id, err := e.db.AppendAudit(e.ctx, nil, store.AuditEntry{Actor: "cli:ann", Action: "test.after"}); err != nil || id != 5 {
		t.Errorf("audited write after the reset: id %d, %v; want 5", id, err)
	}
}

// writers is how many goroutines (or instances) write at once, and how
// many writes each makes, in the concurrency subtests.
const (
	writers = 8
	writes  = 10
)

// hammer runs writers goroutines, goroutine g on dbs[g%len(dbs)], each
// adding writes images of two faces to src with an audit entry in the same
// transaction. It returns the image and face ids they got.
func hammer(t *testing.T, dbs []*store.DB, src int64) (images, faces []int64) {
	t.Helper()
	ctx := context.Background()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	for g := range writers {
		wg.Go(func() {
			db := dbs[g%len(dbs)]
			for i := range writes {
				img := testImage(src, 1000*(g+1)+i)
				err := db.Tx(ctx, func(tx *store.Tx) error {
					id, fids, err := tx.AddImage(ctx, img, testFaces(2, g*writes+i))
					if err != nil {
						return err
					}
					if _, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: fmt.Sprint("writer-", g), Action: "test.add",
						Object: fmt.Sprint("image/", id)}); err != nil {
						return err
					}
					mu.Lock()
					images, faces = append(images, id), append(faces, fids...)
					mu.Unlock()
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d, write %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return images, faces
}

// checkHammered checks what hammer wrote, through db.
func checkHammered(t *testing.T, db *store.DB, src int64, images, faces []int64) {
	t.Helper()
	ctx := context.Background()
	if len(images) != writers*writes || !unique(images) || !unique(faces) || len(faces) != 2*writers*writes {
		t.Errorf("%d image ids (unique %v), %d face ids (unique %v); want %d and %d, unique",
			len(images), unique(images), len(faces), unique(faces), writers*writes, 2*writers*writes)
	}
	if h, err := db.SourceHoldings(ctx, src); err != nil || h.Images != writers*writes || h.Faces != 2*writers*writes {
		t.Errorf("holdings %+v, %v", h, err)
	}
	es, err := db.AuditEntries(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var logged []int64
	for i, a := range es {
		if a.ID != int64(i+1) {
			t.Fatalf("audit entry %d has id %d: the ids have a gap", i+1, a.ID)
		}
		if a.Action == "test.add" {
			var id int64
			if _, err := fmt.Sscanf(a.Object, "image/%d", &id); err != nil {
				t.Fatalf("entry %d object %q", a.ID, a.Object)
			}
			logged = append(logged, id)
		}
	}
	slices.Sort(logged)
	want := slices.Sorted(slices.Values(images))
	if !slices.Equal(logged, want) {
		t.Errorf("the audit log names %d images, want the %d added", len(logged), len(want))
	}
	if ok, bad, err := db.VerifyAudit(ctx); !ok || err != nil {
		t.Errorf("VerifyAudit = %v, first bad %d, %v", ok, bad, err)
	}
}

// testConcurrentWriters: goroutines writing at once through one store all
// get their writes, with unique ids, and one linear chain.
func (s suite) testConcurrentWriters(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	images, faces := hammer(t, []*store.DB{e.db}, src)
	checkHammered(t, e.db, src, images, faces)
}

// testConcurrentSameImage: the same content added at once by many
// goroutines, through two instances, is one image: one add succeeds, the
// others report ErrExists with its ids.
func (s suite) testConcurrentSameImage(t *testing.T) {
	e := s.env(t)
	second := s.openAt(t, e.target, store.WithClock(e.clock.Now))
	src := e.source(nil)
	img := e.image(src)
	type result struct {
		id   int64
		fids []int64
		err  error
	}
	results := make([]result, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			db := []*store.DB{e.db, second}[g%2]
			id, fids, err := db.AddImage(context.Background(), img, testFaces(2, g))
			results[g] = result{id, fids, err}
		})
	}
	wg.Wait()
	added := 0
	for g, r := range results {
		switch {
		case r.err == nil:
			added++
		case !errors.Is(r.err, store.ErrExists):
			t.Errorf("writer %d: %v", g, r.err)
			continue
		}
		if r.id != results[0].id || !slices.Equal(r.fids, results[0].fids) {
			t.Errorf("writer %d got image %d faces %v, writer 0 %d %v", g, r.id, r.fids, results[0].id, results[0].fids)
		}
	}
	if added != 1 {
		t.Errorf("%d adds succeeded, want 1", added)
	}
	if n := e.faceCount(); n != 2 {
		t.Errorf("FaceCount = %d, want 2", n)
	}
}

// testTwoInstances: two stores open on one database (two gabarit
// instances) write at once; each sees all the writes, the ids are unique
// and the audit log is one linear chain without gaps.
func (s suite) testTwoInstances(t *testing.T) {
	e := s.env(t)
	second := s.openAt(t, e.target, store.WithClock(e.clock.Now))
	src := e.source(nil)
	images, faces := hammer(t, []*store.DB{e.db, second}, src)
	checkHammered(t, e.db, src, images, faces)
	checkHammered(t, second, src, images, faces)
	if len(faces) == 0 {
		t.FailNow()
	}
	sid, _, err := e.db.RecordSearch(e.ctx, search("ivan", faces[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := second.Search(e.ctx, sid); err != nil || !slices.Equal(got.Returned, []int64{faces[0]}) {
		t.Errorf("search recorded by one instance, read by the other: %+v, %v", got, err)
	}
}

// race runs fn in writers goroutines at once, goroutine g on dbs[g%2], and
// returns their errors.
func race(dbs [2]*store.DB, fn func(db *store.DB, g int) error) []error {
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() { errs[g] = fn(dbs[g%2], g) })
	}
	wg.Wait()
	return errs
}

// once fails the test unless exactly one of errs is nil and the others
// match want.
func once(t *testing.T, what string, errs []error, want error) {
	t.Helper()
	ok := 0
	for g, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, want):
			t.Errorf("%s, writer %d: %v, want nil or %v", what, g, err, want)
		}
	}
	if ok != 1 {
		t.Errorf("%s: %d writers succeeded, want 1", what, ok)
	}
}

// testConcurrentUnique: what may happen once happens once when two
// instances try it at the same moment: a user name, an API token hash, a
// verifier's confirmation of a result, a face's quarantine. The losers
// get the documented error and the audit log records the winner only.
func (s suite) testConcurrentUnique(t *testing.T) {
	e, id, f := s.confirmFixture(t)
	dbs := [2]*store.DB{e.db, s.openAt(t, e.target, store.WithClock(e.clock.Now))}
	ctx := context.Background()

	once(t, "AddUser", race(dbs, func(db *store.DB, g int) error {
		return db.AddUser(ctx, "zoe", []store.Role{store.RoleAuditor}, fmt.Sprint("admin-", g))
	}), store.ErrExists)
	hash := sha256.Sum256([]byte("shared token"))
	once(t, "CreateAPIToken", race(dbs, func(db *store.DB, g int) error {
		_, err := db.CreateAPIToken(ctx, "vera", fmt.Sprint("label ", g), hash, time.Time{}, "cli:admin")
		return err
	}), store.ErrExists)
	once(t, "Confirm", race(dbs, func(db *store.DB, _ int) error {
		_, err := db.Confirm(ctx, id, f[0], "vera")
		return err
	}), store.ErrExists)
	quarantined := errors.New("already in quarantine")
	once(t, "QuarantineFace", race(dbs, func(db *store.DB, _ int) error {
		added, err := db.QuarantineFace(ctx, f[3], store.FoundByIndex, "does not authenticate", store.SystemActor)
		if err == nil && !added {
			return quarantined
		}
		return err
	}), quarantined)

	if cs, err := e.db.Confirmations(ctx, id); err != nil || !slices.Equal(cs[f[0]].Verifiers, []string{"vera"}) {
		t.Errorf("Confirmations = %+v, %v", cs, err)
	}
	if toks, err := e.db.APITokens(ctx, ""); err != nil || len(toks) != 1 {
		t.Errorf("%d tokens, %v; want 1", len(toks), err)
	}
	for action, want := range map[string]int{"search.confirm": 1, "face.quarantine": 1, "token.create": 1} {
		if n := e.count(action); n != want {
			t.Errorf("%d %s entries, want %d", n, action, want)
		}
	}
	if got := e.actions("user/zoe"); !slices.Equal(got, []string{"user.add"}) {
		t.Errorf("audit of user/zoe: %v", got)
	}
	e.verified()
}

// testContextCancelled: a write under a cancelled context fails and writes
// nothing.
func (s suite) testContextCancelled(t *testing.T) {
	e := s.env(t)
	src := e.source(nil)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	img := e.image(src)
	if _, _, err := e.db.AddImage(ctx, img, testFaces(2, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("AddImage with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := e.db.AppendAudit(ctx, nil, store.AuditEntry{Actor: "a", Action: "test.cancelled"}); err == nil {
		t.Error("AppendAudit with a cancelled context succeeded")
	}
	_, err := e.db.ImageBySHA(e.ctx, src, img.SHA256)
	gone(t, "image of a cancelled add", err)
	if h := e.head(); h != 0 {
		t.Errorf("audit head %d after a cancelled append", h)
	}
}
