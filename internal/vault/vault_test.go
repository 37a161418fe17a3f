package vault

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
	_ "gabarit/internal/store/drivers" // the store's database drivers
	"gabarit/internal/store/storetest"
)

const model = "m1"

// instance is one gabarit process's view of a data directory: its own
// store handle and keyring over the shared database and master key.
type instance struct {
	db   *store.DB
	keys *keyring.Keyring
	path string // the SQLite file, for the tests that look at its bytes
}

// openInstances opens n instances over one new SQLite file and one master
// key. The cross-instance tests take it as a parameter, so that the same
// tests can run over PostgreSQL.
func openInstances(t testing.TB, n int) []instance {
	t.Helper()
	dir := t.TempDir()
	m, err := keyring.LoadOrCreateMaster(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gabarit.db")
	out := make([]instance, n)
	for i := range out {
		db, err := store.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		kr := keyring.New(m, db.KeyStore())
		t.Cleanup(func() { kr.Close() })
		out[i] = instance{db: db, keys: kr, path: path}
	}
	return out
}

func openOne(t testing.TB) instance { return openInstances(t, 1)[0] }

func open(t testing.TB, in instance, opts ...Option) *Vault {
	t.Helper()
	v, err := Open(context.Background(), in.db, in.keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// rawDB opens the instance's SQLite file directly, for tampering.
func rawDB(t *testing.T, in instance) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", in.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// unit returns the unit vector of dimension dim along axis i, turned by
// angle a (radians) towards axis i+1: its cosine with unit(dim, i, 0) is
// cos(a).
func unit(dim, i int, a float64) []float32 {
	v := make([]float32, dim)
	v[i] = float32(math.Cos(a))
	v[(i+1)%dim] = float32(math.Sin(a))
	return v
}

func TestRoundTripAndReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := openOne(t)
	v := open(t, in)
	selfies := [][]float32{{0.5, -0.25, 1e-7, 3}, {1, 2, 3, 4}}
	ids, err := v.Add(ctx, Selfie, 7, model, selfies)
	if err != nil || len(ids) != 2 {
		t.Fatalf("Add = %v, %v", ids, err)
	}
	if _, err := v.Add(ctx, Objection, 7, model, [][]float32{unit(4, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	got, err := v.Templates(ctx, 7, Selfie)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(selfies) {
		t.Fatalf("Templates = %v, %v; want %v", got, err, selfies)
	}
	for _, k := range []Kind{Objection, Restriction, "other"} {
		if ts, err := v.Templates(ctx, 7, k); !errors.Is(err, ErrInvalid) || ts != nil {
			t.Errorf("Templates(%s) = %v, %v; want ErrInvalid", k, ts, err)
		}
	}
	es, err := v.Entries(ctx, 7)
	if err != nil || len(es) != 3 || es[0].ID != ids[0] || es[0].Kind != Selfie || es[2].Kind != Objection ||
		es[0].RequestID != 7 || time.Since(es[0].Created) > time.Minute {
		t.Errorf("Entries = %+v, %v", es, err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Templates(ctx, 7, Selfie); !errors.Is(err, ErrClosed) {
		t.Errorf("Templates after Close: %v", err)
	}
	if _, err := v.Match(ctx, model, unit(4, 0, 0), []Kind{Objection}, 0.9); !errors.Is(err, ErrClosed) {
		t.Errorf("Match after Close: %v", err)
	}
	if _, err := v.Add(ctx, Objection, 8, model, [][]float32{unit(4, 0, 0)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}

	v = open(t, in)
	if got, err := v.Templates(ctx, 7, Selfie); err != nil || fmt.Sprint(got) != fmt.Sprint(selfies) {
		t.Fatalf("after reopen: Templates = %v, %v", got, err)
	}
	if ok, err := v.Match(ctx, model, unit(4, 0, 0.1), []Kind{Objection}, 0.9); err != nil || !ok {
		t.Errorf("after reopen: Match = %v, %v", ok, err)
	}
	n, err := v.Count(ctx)
	if err != nil || n[Selfie] != 2 || n[Objection] != 1 || n[Restriction] != 0 {
		t.Errorf("Count = %v, %v", n, err)
	}
	// The store holds no template in clear.
	raw := fileBytes(t, in.path)
	for i, s := range selfies {
		if bytes.Contains(raw, le(s)) {
			t.Errorf("the store holds selfie template %d in clear", i)
		}
	}
}

func TestWrongMasterKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := openOne(t)
	v := open(t, in)
	if _, err := v.Add(ctx, Restriction, 1, model, [][]float32{unit(4, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	other, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), "b.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(other, in.db.KeyStore())
	defer kr.Close()
	if v, err := Open(ctx, in.db, kr); !errors.Is(err, keyring.ErrTampered) {
		if v != nil {
			v.Close()
		}
		t.Fatalf("Open with another master key: %v, want ErrTampered", err)
	}
}

// TestBlobMovedFails: a sealed template copied to another row, or a row
// whose kind, request or model is changed, does not open.
func TestBlobMovedFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		kind   Kind
		update string // run on the row of the first entry; ? is the second entry's id
	}{
		{"selfie blob moved to another row", Selfie, "UPDATE vault_entries SET template = (SELECT template FROM vault_entries WHERE id = ?) WHERE id = %d"},
		{"objection blob moved to another row", Objection, "UPDATE vault_entries SET template = (SELECT template FROM vault_entries WHERE id = ?) WHERE id = %d"},
		{"selfie turned into another request's", Selfie, "UPDATE vault_entries SET request_id = 2 WHERE id = %d AND ? > 0"},
		{"objection turned into a restriction", Objection, "UPDATE vault_entries SET kind = 'restriction' WHERE id = %d AND ? > 0"},
		{"another model", Objection, "UPDATE vault_entries SET model_id = 'm2' WHERE id = %d AND ? > 0"},
		{"appended byte", Selfie, "UPDATE vault_entries SET template = CAST(template || x'00' AS BLOB) WHERE id = %d AND ? > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := openOne(t)
			v := open(t, in)
			ids, err := v.Add(ctx, tt.kind, 1, model, [][]float32{unit(4, 0, 0), unit(4, 1, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rawDB(t, in).ExecContext(ctx, fmt.Sprintf(tt.update, ids[0]), ids[1]); err != nil {
				t.Fatal(err)
			}
			if tt.kind == Selfie {
				ts, err := v.Templates(ctx, 1, Selfie)
				if tt.name == "selfie turned into another request's" {
					ts, err = v.Templates(ctx, 2, Selfie)
				}
				if !errors.Is(err, keyring.ErrTampered) {
					t.Errorf("Templates = %v, %v; want ErrTampered", ts, err)
				}
				return
			}
			if v, err := Open(ctx, in.db, in.keys); !errors.Is(err, keyring.ErrTampered) {
				if v != nil {
					v.Close()
				}
				t.Errorf("Open of a vault with a moved blob: %v, want ErrTampered", err)
			}
			// An open vault that reloads meets it too, and answers nothing.
			if _, err := v.Add(ctx, Objection, 9, model, [][]float32{unit(4, 3, 0)}); err != nil {
				t.Fatal(err)
			}
			if ok, err := v.Match(ctx, model, unit(4, 3, 0), []Kind{Objection}, 0.5); !errors.Is(err, keyring.ErrTampered) || ok {
				t.Errorf("Match after a reload of a moved blob = %v, %v; want ErrTampered", ok, err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := open(t, openOne(t))
	const dim = 8
	if _, err := v.Add(ctx, Objection, 1, model, [][]float32{unit(dim, 0, 0), unit(dim, 2, 0)}); err != nil {
		t.Fatal(err)
	}
	// Not normalised: compared by cosine all the same.
	scaled := unit(dim, 4, 0)
	for i := range scaled {
		scaled[i] *= 3
	}
	if _, err := v.Add(ctx, Restriction, 2, model, [][]float32{scaled}); err != nil {
		t.Fatal(err)
	}
	both := []Kind{Objection, Restriction}
	tests := []struct {
		name      string
		probe     []float32
		kinds     []Kind
		threshold float64
		want      bool
	}{
		{"same", unit(dim, 0, 0), both, 0.99, true},
		{"cos 0.8 at 0.79", unit(dim, 0, math.Acos(0.8)), both, 0.79, true},
		{"cos 0.8 at 0.81", unit(dim, 0, math.Acos(0.8)), both, 0.81, false},
		{"second template", unit(dim, 2, 0.2), both, 0.9, true},
		{"orthogonal", unit(dim, 6, 0), both, 0.1, false},
		{"orthogonal at -1", unit(dim, 6, 0), both, -1, true},
		{"restricted, objection only", unit(dim, 4, 0), []Kind{Objection}, 0.5, false},
		{"restricted, restriction only", unit(dim, 4, 0.1), []Kind{Restriction}, 0.5, true},
		{"objection, restriction only", unit(dim, 0, 0), []Kind{Restriction}, 0.5, false},
		{"long probe", func() []float32 { p := unit(dim, 0, 0.3); p[0] *= 100; p[1] *= 100; return p }(), both, 0.95, true},
		{"no kinds", unit(dim, 0, 0), nil, 0.5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Match(ctx, model, tt.probe, tt.kinds, tt.threshold)
			if err != nil || got != tt.want {
				t.Errorf("Match = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	bad := []struct {
		name      string
		model     string
		probe     []float32
		kinds     []Kind
		threshold float64
		want      error
	}{
		{"another model", "m2", unit(dim, 0, 0), both, 0.5, face.ErrModelMismatch},
		{"another dimension", model, unit(dim+1, 0, 0), both, 0.5, face.ErrModelMismatch},
		{"selfies are not matched", model, unit(dim, 0, 0), []Kind{Selfie}, 0.5, ErrInvalid},
		{"NaN threshold", model, unit(dim, 0, 0), both, math.NaN(), ErrInvalid},
		{"threshold over 1", model, unit(dim, 0, 0), both, 1.5, ErrInvalid},
		{"zero probe", model, make([]float32, dim), both, 0.5, ErrInvalid},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := v.Match(ctx, tt.model, tt.probe, tt.kinds, tt.threshold); !errors.Is(err, tt.want) || got {
				t.Errorf("Match = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	// Once every objection and restriction request has a template of m2,
	// m2 probes can be answered.
	if _, err := v.Add(ctx, Objection, 1, "m2", [][]float32{unit(4, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Match(ctx, "m2", unit(4, 0, 0), both, 0.5); !errors.Is(err, face.ErrModelMismatch) {
		t.Errorf("m2 with request 2 not enrolled under m2: %v", err)
	}
	if ok, err := v.Match(ctx, "m2", unit(4, 0, 0), []Kind{Objection}, 0.5); err != nil || !ok {
		t.Errorf("m2, objections only = %v, %v", ok, err)
	}
}

func TestAddRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := open(t, openOne(t))
	nan := float32(math.NaN())
	tests := []struct {
		name      string
		kind      Kind
		request   int64
		model     string
		templates [][]float32
	}{
		{"unknown kind", "suppress", 1, model, [][]float32{{1, 0}}},
		{"no request", Objection, 0, model, [][]float32{{1, 0}}},
		{"no model", Objection, 1, "", [][]float32{{1, 0}}},
		{"no template", Objection, 1, model, nil},
		{"empty template", Objection, 1, model, [][]float32{{}}},
		{"mixed dimensions", Objection, 1, model, [][]float32{{1, 0}, {1, 0, 0}}},
		{"zero template", Objection, 1, model, [][]float32{{0, 0}}},
		{"NaN", Selfie, 1, model, [][]float32{{nan, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ids, err := v.Add(ctx, tt.kind, tt.request, tt.model, tt.templates); !errors.Is(err, ErrInvalid) || ids != nil {
				t.Errorf("Add = %v, %v; want ErrInvalid", ids, err)
			}
		})
	}
	if n, err := v.Count(ctx); err != nil || len(n) != 0 {
		t.Errorf("Count = %v, %v; want nothing stored", n, err)
	}
}

// TestRemoveRequestDeletes: the removed templates no longer match, are gone
// for a new vault, and no copy of their ciphertext is left in the store's
// file or its write-ahead log.
func TestRemoveRequestDeletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := openOne(t)
	v := open(t, in)
	const dim = 16
	obj, sel, keep := unit(dim, 0, 0), unit(dim, 3, 0.4), unit(dim, 8, 0)
	if _, err := v.Add(ctx, Objection, 7, model, [][]float32{obj}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(ctx, Selfie, 7, model, [][]float32{sel}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(ctx, Objection, 8, model, [][]float32{keep}); err != nil {
		t.Fatal(err)
	}
	rows, err := in.db.VaultSealedOf(ctx, 7, store.VaultObjection, store.VaultSelfie)
	if err != nil || len(rows) != 2 {
		t.Fatalf("sealed entries of request 7: %d, %v", len(rows), err)
	}
	if ok, err := v.Match(ctx, model, obj, []Kind{Objection}, 0.5); err != nil || !ok {
		t.Fatalf("objection before removal: %v, %v", ok, err)
	}

	if n, err := v.RemoveRequest(ctx, 7, Objection); err != nil || n != 1 {
		t.Fatalf("RemoveRequest(objection) = %d, %v", n, err)
	}
	if ok, err := v.Match(ctx, model, obj, []Kind{Objection, Restriction}, 0.5); err != nil || ok {
		t.Errorf("removed objection still matches: %v, %v", ok, err)
	}
	if ok, err := v.Match(ctx, model, keep, []Kind{Objection}, 0.5); err != nil || !ok {
		t.Errorf("request 8 no longer matches: %v, %v", ok, err)
	}
	if n, err := v.RemoveRequest(ctx, 7, Selfie); err != nil || n != 1 {
		t.Fatalf("RemoveRequest(selfie) = %d, %v", n, err)
	}
	if n, err := v.RemoveRequest(ctx, 7, Selfie); err != nil || n != 0 {
		t.Errorf("second RemoveRequest = %d, %v", n, err)
	}
	raw := fileBytes(t, in.path)
	for i, r := range rows {
		if bytes.Contains(raw, r.Sealed[1:33]) {
			t.Errorf("blob %d of the removed request is still in the store's file or its log", i)
		}
	}

	v = open(t, in)
	if ts, err := v.Templates(ctx, 7, Selfie); err != nil || len(ts) != 0 {
		t.Errorf("after reopen: selfies = %v, %v", ts, err)
	}
	if es, err := v.Entries(ctx, 7); err != nil || len(es) != 0 {
		t.Errorf("after reopen: entries = %v, %v", es, err)
	}
	if ok, err := v.Match(ctx, model, obj, []Kind{Objection}, 0.5); err != nil || ok {
		t.Errorf("after reopen: removed objection matches: %v, %v", ok, err)
	}
	if n, err := v.Count(ctx); err != nil || n[Objection] != 1 || n[Selfie] != 0 {
		t.Errorf("after reopen: Count = %v, %v", n, err)
	}
}

// TestRemoveRequestAudited: the removal and its audit entry commit
// together; an audit entry the store refuses leaves the entries in place.
func TestRemoveRequestAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := openOne(t)
	v := open(t, in)
	if _, err := v.Add(ctx, Restriction, 4, model, [][]float32{unit(4, 0, 0), unit(4, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	bad := func(n int) *store.AuditEntry { return &store.AuditEntry{Action: "rights.restriction-lifted"} } // no actor
	if _, err := v.RemoveRequestAudited(ctx, 4, Restriction, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("RemoveRequestAudited with an invalid audit entry: %v", err)
	}
	if ok, err := v.Match(ctx, model, unit(4, 0, 0), []Kind{Restriction}, 0.9); err != nil || !ok {
		t.Fatalf("restriction after a failed removal: %v, %v", ok, err)
	}
	n, err := v.RemoveRequestAudited(ctx, 4, Restriction, func(n int) *store.AuditEntry {
		return &store.AuditEntry{Actor: "cli:dpo", Action: "rights.restriction-lifted", Object: "rights/4",
			Detail: fmt.Appendf(nil, `{"entries":%d}`, n)}
	})
	if err != nil || n != 2 {
		t.Fatalf("RemoveRequestAudited = %d, %v", n, err)
	}
	es, err := in.db.AuditEntries(ctx, 1, 0)
	if err != nil || len(es) != 1 || es[0].Action != "rights.restriction-lifted" || string(es[0].Detail) != `{"entries":2}` {
		t.Fatalf("audit = %+v, %v", es, err)
	}
	if ok, err := v.Match(ctx, model, unit(4, 0, 0), []Kind{Restriction}, 0.9); err != nil || ok {
		t.Errorf("lifted restriction matches: %v, %v", ok, err)
	}
}

// TestConcurrentMatchDuringAdd: Match runs while entries are added and
// removed (run with -race); an entry matches once its Add has returned.
func TestConcurrentMatchDuringAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := open(t, openOne(t))
	const dim, n = 32, 40
	if _, err := v.Add(ctx, Objection, 1000, model, [][]float32{unit(dim, dim-1, 0)}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ok, err := v.Match(ctx, model, unit(dim, dim-1, 0.01*float64(w)), []Kind{Objection, Restriction}, 0.9)
				if err != nil || !ok {
					errs <- fmt.Errorf("worker %d: Match of the first entry = %v, %v", w, ok, err)
					return
				}
				if _, err := v.Match(ctx, model, unit(dim, i%(dim-1), 0), []Kind{Restriction}, 0.9); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range n {
		kind := []Kind{Objection, Restriction}[i%2]
		if _, err := v.Add(ctx, kind, int64(i+1), model, [][]float32{unit(dim, i%(dim-1), 0)}); err != nil {
			t.Fatal(err)
		}
		if ok, err := v.Match(ctx, model, unit(dim, i%(dim-1), 0), []Kind{kind}, 0.99); err != nil || !ok {
			t.Errorf("entry %d: Match after Add = %v, %v", i, ok, err)
		}
		if i%3 == 0 {
			if _, err := v.RemoveRequest(ctx, int64(i+1), kind); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c, err := v.Count(ctx)
	if err != nil || c[Objection]+c[Restriction] != 1+n-(n+2)/3 {
		t.Errorf("Count = %v, %v", c, err)
	}
}

// TestOtherInstanceSeesChanges: two instances (two store handles over one
// database, a vault on each): what one commits, the other's very next
// Match enforces, without reopening.
func TestOtherInstanceSeesChanges(t *testing.T) {
	t.Parallel()
	testOtherInstanceSeesChanges(t, func(t *testing.T) (a, b instance) {
		ins := openInstances(t, 2)
		return ins[0], ins[1]
	})
}

// TestOtherInstanceSeesChangesPostgres: the same, with two instances over
// one PostgreSQL database.
func TestOtherInstanceSeesChangesPostgres(t *testing.T) {
	dsn := storetest.Postgres(t)
	testOtherInstanceSeesChanges(t, func(t *testing.T) (a, b instance) {
		m, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		var out [2]instance
		for i := range out {
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			kr := keyring.New(m, db.KeyStore())
			t.Cleanup(func() { kr.Close() })
			out[i] = instance{db: db, keys: kr}
		}
		return out[0], out[1]
	})
}

func testOtherInstanceSeesChanges(t *testing.T, openTwo func(t *testing.T) (a, b instance)) {
	ctx := context.Background()
	ia, ib := openTwo(t)
	a, b := open(t, ia), open(t, ib)
	const dim = 8
	person, stranger := unit(dim, 0, 0), unit(dim, 4, 0)
	both := []Kind{Objection, Restriction}
	// B has loaded its (empty) cache and matched already.
	if ok, err := b.Match(ctx, model, person, both, 0.5); err != nil || ok {
		t.Fatalf("B before the objection: %v, %v", ok, err)
	}
	if _, err := a.Add(ctx, Objection, 1, model, [][]float32{unit(dim, 0, 0.1)}); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Match(ctx, model, person, []Kind{Objection}, 0.9); err != nil || !ok {
		t.Errorf("B's next Match after A's objection = %v, %v; want a match", ok, err)
	}
	// A search on B: its Matcher, taken when it starts, sees what A
	// committed before.
	if _, err := a.Add(ctx, Objection, 4, model, [][]float32{unit(dim, 6, 0)}); err != nil {
		t.Fatal(err)
	}
	m, err := b.Matcher(ctx, model, both, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		probe []float32
		want  bool
	}{{unit(dim, 6, 0.1), true}, {person, true}, {stranger, false}} {
		if ok, err := m(tt.probe); err != nil || ok != tt.want {
			t.Errorf("B's next search's check of %v = %v, %v; want %v", tt.probe, ok, err, tt.want)
		}
	}
	if n, err := a.RemoveRequest(ctx, 4, Objection); err != nil || n != 1 {
		t.Fatalf("A removes objection 4: %d, %v", n, err)
	}
	if ok, err := b.Match(ctx, model, stranger, both, 0.5); err != nil || ok {
		t.Errorf("B matches a stranger: %v, %v", ok, err)
	}
	// A restriction through B, seen by A; lifted through A, gone from B.
	if _, err := b.Add(ctx, Restriction, 2, model, [][]float32{stranger}); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Match(ctx, model, stranger, []Kind{Restriction}, 0.9); err != nil || !ok {
		t.Errorf("A's next Match after B's restriction = %v, %v; want a match", ok, err)
	}
	if n, err := a.RemoveRequest(ctx, 2, Restriction); err != nil || n != 1 {
		t.Fatalf("A lifts the restriction: %d, %v", n, err)
	}
	if ok, err := b.Match(ctx, model, stranger, both, 0.5); err != nil || ok {
		t.Errorf("B's next Match after A lifted the restriction = %v, %v; want none", ok, err)
	}
	if n, err := b.RemoveRequest(ctx, 1, Objection); err != nil || n != 1 {
		t.Fatalf("B removes the objection: %d, %v", n, err)
	}
	if ok, err := a.Match(ctx, model, person, both, 0.5); err != nil || ok {
		t.Errorf("A's next Match after B removed the objection = %v, %v; want none", ok, err)
	}
	// Selfies added by one are read by the other.
	if _, err := a.Add(ctx, Selfie, 3, model, [][]float32{{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if ts, err := b.Templates(ctx, 3, Selfie); err != nil || fmt.Sprint(ts) != "[[1 2 3]]" {
		t.Errorf("B reads A's selfies: %v, %v", ts, err)
	}
}

// fileBytes returns the bytes of the database file and of its write-ahead
// log, if any.
func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if wal, err := os.ReadFile(path + "-wal"); err == nil {
		raw = append(raw, wal...)
	}
	return raw
}

// le encodes a template as little-endian float32 values.
func le(v []float32) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(math.Float32bits(x)), byte(math.Float32bits(x)>>8), byte(math.Float32bits(x)>>16), byte(math.Float32bits(x)>>24))
	}
	return b
}
