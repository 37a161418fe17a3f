package vault

import (
	"bytes"
	"context"
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
)

const model = "m1"

func master(t *testing.T, name string) *keyring.Master {
	t.Helper()
	m, err := keyring.LoadOrCreateMaster(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func open(t *testing.T, path string, m *keyring.Master) *Vault {
	t.Helper()
	v, err := Open(context.Background(), path, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
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
	m := master(t, "master.key")
	path := filepath.Join(t.TempDir(), "vault.db")
	v := open(t, path, m)
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

	v = open(t, path, m)
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
	// The file holds no template in clear.
	raw := fileBytes(t, path)
	if bytes.Contains(raw, le(selfies[1])) {
		t.Error("the file holds a selfie template in clear")
	}
}

func TestWrongMasterKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	v := open(t, path, master(t, "a.key"))
	if _, err := v.Add(ctx, Restriction, 1, model, [][]float32{unit(4, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if v, err := Open(ctx, path, master(t, "b.key")); !errors.Is(err, keyring.ErrTampered) {
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
		{"selfie blob moved to another row", Selfie, "UPDATE entries SET template = (SELECT template FROM entries WHERE id = ?) WHERE id = %d"},
		{"objection blob moved to another row", Objection, "UPDATE entries SET template = (SELECT template FROM entries WHERE id = ?) WHERE id = %d"},
		{"selfie turned into another request's", Selfie, "UPDATE entries SET request_id = 2 WHERE id = %d AND ? > 0"},
		{"objection turned into a restriction", Objection, "UPDATE entries SET kind = 'restriction' WHERE id = %d AND ? > 0"},
		{"another model", Objection, "UPDATE entries SET model_id = 'm2' WHERE id = %d AND ? > 0"},
		{"appended byte", Selfie, "UPDATE entries SET template = template || x'00' WHERE id = %d AND ? > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "vault.db")
			m := master(t, "master.key")
			v := open(t, path, m)
			ids, err := v.Add(ctx, tt.kind, 1, model, [][]float32{unit(4, 0, 0), unit(4, 1, 0)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.db.ExecContext(ctx, fmt.Sprintf(tt.update, ids[0]), ids[1]); err != nil {
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
			v.Close()
			if v, err := Open(ctx, path, m); !errors.Is(err, keyring.ErrTampered) {
				if v != nil {
					v.Close()
				}
				t.Errorf("Open of a vault with a moved blob: %v, want ErrTampered", err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := open(t, filepath.Join(t.TempDir(), "vault.db"), master(t, "master.key"))
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
	v := open(t, filepath.Join(t.TempDir(), "vault.db"), master(t, "master.key"))
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
// after reopening, and no copy of their ciphertext is left in the file or
// its write-ahead log.
func TestRemoveRequestDeletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := master(t, "master.key")
	path := filepath.Join(t.TempDir(), "vault.db")
	v := open(t, path, m)
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
	var blobs [][]byte
	rows, err := v.db.QueryContext(ctx, "SELECT template FROM entries WHERE request_id = 7")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	rows.Close()
	if len(blobs) != 2 {
		t.Fatalf("%d blobs of request 7", len(blobs))
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
	// While the vault is open (a crash now must leave no copy), then closed.
	for _, when := range []string{"open", "closed"} {
		if when == "closed" {
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
		}
		raw := fileBytes(t, path)
		for i, b := range blobs {
			if bytes.Contains(raw, b[1:33]) {
				t.Errorf("vault %s: blob %d of the removed request is still in the file or its log", when, i)
			}
		}
	}

	v = open(t, path, m)
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

func TestFileMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.db")
	v := open(t, path, master(t, "master.key"))
	if _, err := v.Add(ctx, Selfie, 1, model, [][]float32{{1, 2}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if _, err := Open(ctx, "file:"+path, master(t, "b.key")); !errors.Is(err, ErrInvalid) {
		t.Errorf("Open of a URI: %v", err)
	}
}

// TestConcurrentMatchDuringAdd: Match runs while entries are added and
// removed (run with -race); an entry matches once its Add has returned.
func TestConcurrentMatchDuringAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := open(t, filepath.Join(t.TempDir(), "vault.db"), master(t, "master.key"))
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
