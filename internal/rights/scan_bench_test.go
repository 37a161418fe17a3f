package rights_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/modelpack"
	"gabarit/internal/rights"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vault"
	"gabarit/internal/vindex/flat"
)

// EnvBenchStore names a directory where BenchmarkFind1M keeps its SQLite
// store of a million faces (and its master key) from one run to the next:
// building it takes minutes. Without it the store is built in a temporary
// directory and removed after the run.
const EnvBenchStore = "GABARIT_BENCH_STORE"

// BenchmarkFind1M finds the candidates of a request over a store of
// 1,000,000 faces (250,000 images of 4 faces, 512-d templates sealed with
// AES-256-GCM), 20 of them the requester's, on SQLite and, with
// GABARIT_TEST_POSTGRES, on PostgreSQL: with the serial scan (one
// goroutine through AllTemplates) and the parallel scan by id range with 1
// and 2 workers (and GOMAXPROCS when it is more). It reports the seconds to
// find (and the process's CPU seconds: the machine may be shared), the faces compared, the candidates and how many of the 20 are among
// them, and fails unless every scan finds all 20 and the same candidates.
// Run it with -benchtime 1x:
//
//	go test -run '^$' -bench Find1M -benchtime 1x -timeout 60m ./internal/rights/
func BenchmarkFind1M(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-face store skipped in -short mode")
	}
	for _, backend := range []string{"SQLite", "PostgreSQL"} {
		b.Run(backend, func(b *testing.B) {
			var f *millionFaces
			if backend == "SQLite" {
				f = buildMillion(b, "")
			} else {
				f = buildMillion(b, storetest.Postgres(b))
			}
			type variant struct {
				name    string
				store   rights.Store
				workers int
			}
			vs := []variant{{"serial", serial{f.db, f.db}, 1}, {"workers=1", f.db, 1}, {"workers=2", f.db, 2}}
			if p := f.eng.Workers; p > 2 {
				vs = append(vs, variant{fmt.Sprintf("workers=%d", p), f.db, p})
			}
			var first []int64
			for _, v := range vs {
				b.Run(v.name, func(b *testing.B) {
					for range b.N {
						e := *f.eng
						e.Store, e.Workers = v.store, v.workers
						load := loadavg()
						t0, c0 := time.Now(), cpuTime()
						found, err := e.Find(context.Background(), f.req, "bench")
						if err != nil {
							b.Fatal(err)
						}
						sec, cpu := time.Since(t0).Seconds(), (cpuTime() - c0).Seconds()
						var ids []int64
						mine := 0
						for _, c := range found.Review.Candidates {
							ids = append(ids, c.FaceID)
							if slices.Contains(f.mine, c.FaceID) {
								mine++
							}
						}
						slices.Sort(ids)
						b.ReportMetric(sec, "s/find")
						b.ReportMetric(cpu, "cpu-s/find")
						b.ReportMetric(float64(found.Review.Gallery), "faces-compared")
						b.ReportMetric(float64(len(ids)), "candidates")
						b.ReportMetric(float64(mine), "requester's-found")
						b.Logf("%s: %.2f s (%.2f s of CPU), %d faces compared, %d candidates, %d of the requester's %d; load average before %s, after %s",
							v.name, sec, cpu, found.Review.Gallery, len(ids), mine, len(f.mine), load, loadavg())
						if mine != len(f.mine) {
							b.Errorf("%s found %d of the requester's %d faces", v.name, mine, len(f.mine))
						}
						if first == nil {
							first = ids
						} else if !slices.Equal(ids, first) {
							b.Errorf("%s found other candidates than %s", v.name, vs[0].name)
						}
					}
				})
			}
		})
	}
}

// loadavg returns the system's load averages (1, 5, 15 minutes), or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

type millionFaces struct {
	db   *store.DB
	eng  *rights.Engine
	req  int64
	mine []int64
}

// buildMillion returns the store of BenchmarkFind1M at target (a
// postgres:// URL, or "" for SQLite: in EnvBenchStore when set, reused if
// it was built there before) and a request of the requester's.
func buildMillion(b *testing.B, target string) *millionFaces {
	b.Helper()
	const dim, images, perImage, mine = 512, 250_000, 4, 20
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	unit := func() face.Embedding {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return face.Normalize(v)
	}
	person := unit()
	near := func() face.Embedding { // another photo of the person: cosine ≈ 0.74
		v, n := make([]float32, dim), unit()
		for i := range v {
			v[i] = person[i] + 0.9*n[i]
		}
		return face.Normalize(v)
	}
	var (
		db    *store.DB
		kr    *keyring.Keyring
		built bool
	)
	switch dir := os.Getenv(EnvBenchStore); {
	case target != "":
		db, kr = storetest.OpenTarget(b, target)
	case dir != "":
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		_, err := os.Stat(filepath.Join(dir, "built"))
		built = err == nil
		var derr error
		if db, derr = store.Open(ctx, filepath.Join(dir, "gabarit.db")); derr != nil {
			b.Fatal(derr)
		}
		b.Cleanup(func() { db.Close() })
		master, err := keyring.LoadOrCreateMaster(filepath.Join(dir, "master.key"))
		if err != nil {
			b.Fatal(err)
		}
		kr = keyring.New(master, db.KeyStore())
		b.Cleanup(func() { kr.Close() })
	default:
		db, kr = storetest.Open(b)
	}
	f := &millionFaces{db: db}
	if built {
		// The requester's faces are the first face of the first 20 images.
		n, lo, _, err := db.FaceIDRange(ctx, "m")
		if err != nil || n != images*perImage {
			b.Fatalf("the store in %s has %d faces (%v): remove the directory to build it again", os.Getenv(EnvBenchStore), n, err)
		}
		for i := range int64(mine) {
			f.mine = append(f.mine, lo+perImage*i)
		}
		b.Logf("store of %d faces reused from %s", n, os.Getenv(EnvBenchStore))
	} else {
		src := storetest.Source(b, db, store.BasisConsent, time.Hour)
		if err := kr.EnsureKey(ctx, src); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		const batch = 250
		for lo := 0; lo < images; lo += batch {
			recs := make([]store.IngestRecord, batch)
			for i := range recs {
				n := lo + i
				var key [8]byte
				binary.LittleEndian.PutUint64(key[:], uint64(n))
				recs[i] = store.IngestRecord{Locator: fmt.Sprintf("img%06d.jpg", n), SHA256: sha256.Sum256(key[:]),
					Image: store.Image{Width: 640, Height: 480}}
				for j := range perImage {
					t := unit()
					if n < mine && j == 0 {
						t = near()
					}
					recs[i].Faces = append(recs[i].Faces, store.Face{Box: face.Box{X: float64(10 + 150*j), Y: 20, W: 100, H: 100},
						Quality: 0.7, ModelID: "m", Dim: dim})
					recs[i].Templates = append(recs[i].Templates, t)
				}
			}
			res, err := db.CommitIngest(ctx, src, recs, func(sf store.Face, t []float32) ([]byte, error) {
				return kr.Seal(ctx, src, sf.ID, sf.ModelID, t)
			})
			if err != nil {
				b.Fatal(err)
			}
			if lo < mine {
				for i := 0; i < mine; i++ {
					f.mine = append(f.mine, res[i].FaceIDs[0])
				}
			}
		}
		b.Logf("store of %d faces (%s) built in %.1f s", images*perImage, db.Dialect(), time.Since(start).Seconds())
		if dir := os.Getenv(EnvBenchStore); dir != "" && target == "" {
			if err := os.WriteFile(filepath.Join(dir, "built"), nil, 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	v, err := vault.Open(ctx, db, kr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	dec, err := modelpack.DefaultOpenSet().Decider()
	if err != nil {
		b.Fatal(err)
	}
	f.eng = &rights.Engine{An: photos{"selfie": one(person)}, Store: db, Keys: kr, Vault: v, Index: flat.New(dim), ModelID: "m",
		Decider: dec, Match: 0.3566, SelfieMatch: 0.45, Methods: dsr.DefaultIdentityMethods(), OutDir: b.TempDir(),
		Workers: max(2, runtime.GOMAXPROCS(0))}
	req, err := f.eng.Register(ctx, dsr.Access, [][]byte{[]byte("selfie")}, "p@example.org", "bench")
	if err != nil {
		b.Fatal(err)
	}
	f.req = req.ID
	return f
}
