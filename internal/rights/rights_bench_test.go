package rights_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/modelpack"
	"gabarit/internal/rights"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
	"gabarit/internal/vault"
	"gabarit/internal/vindex/flat"
)

// BenchmarkProcess100k measures an access and an erasure request over a
// store of 100,000 faces (512-d templates sealed in SQLite, 25,000 images of
// 4 faces), of which 20 are the requester's: finding the candidates
// (decrypting and comparing every template), then, the review taking
// every candidate, the package or the erasure with its proof. The analyzer is a fake: the face path is measured by
// `gabarit bench pipeline`. Run it with -benchtime 1x:
//
//	go test -run '^$' -bench Process100k -benchtime 1x -timeout 30m ./internal/rights/
func BenchmarkProcess100k(b *testing.B) {
	if testing.Short() {
		b.Skip("100k-face store skipped in -short mode")
	}
	const dim, images, perImage, mine = 512, 25_000, 4, 20
	ctx := context.Background()
	db, kr := storetest.Open(b)
	src := storetest.Source(b, db, store.BasisConsent, time.Hour)
	if err := kr.EnsureKey(ctx, src); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	unit := func() face.Embedding {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return face.Normalize(v)
	}
	person := unit()
	near := func() face.Embedding { // another photo of the person: cosine ≈ 0.7
		v := make([]float32, dim)
		n := unit()
		for i := range v {
			v[i] = person[i] + 0.9*n[i]
		}
		return face.Normalize(v)
	}
	idx := flat.New(dim)
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
				recs[i].Faces = append(recs[i].Faces, store.Face{Box: face.Box{X: float64(10 + 150*j), Y: 20, W: 100, H: 100}, ModelID: "m", Dim: dim})
				recs[i].Templates = append(recs[i].Templates, t)
			}
		}
		res, err := db.CommitIngest(ctx, src, recs, func(f store.Face, t []float32) ([]byte, error) {
			return kr.Seal(ctx, src, f.ID, f.ModelID, t)
		})
		if err != nil {
			b.Fatal(err)
		}
		for i, rr := range res {
			vecs := make([][]float32, len(rr.FaceIDs))
			for j := range vecs {
				vecs[j] = recs[i].Templates[j]
			}
			if err := idx.Add(ctx, rr.FaceIDs, vecs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Logf("store of %d faces built in %.1f s", images*perImage, time.Since(start).Seconds())
	v, err := vault.Open(ctx, db, kr)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	pics := photos{"selfie": one(person)}
	dec, err := modelpack.DefaultOpenSet().Decider()
	if err != nil {
		b.Fatal(err)
	}
	eng := &rights.Engine{An: pics, Store: db, Keys: kr, Vault: v, Index: idx, ModelID: "m", Decider: dec, Match: 0.3566,
		SelfieMatch: 0.45, Methods: dsr.DefaultIdentityMethods(), OutDir: b.TempDir()}
	for _, kind := range []dsr.Kind{dsr.Access, dsr.Erasure} {
		b.Run(string(kind), func(b *testing.B) {
			for range b.N {
				req, err := eng.Register(ctx, kind, [][]byte{[]byte("selfie")}, "p@example.org", "bench")
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				found, err := eng.Find(ctx, req.ID, "bench")
				if err != nil {
					b.Fatal(err)
				}
				find := time.Since(t0).Seconds()
				// The DPO reviews the set and selects every candidate (the
				// person's 20 faces: strangers are nowhere near them here).
				var sel []int64
				for _, c := range found.Review.Candidates {
					sel = append(sel, c.FaceID)
				}
				if _, err := eng.Review(ctx, req.ID, sel, "bench"); err != nil {
					b.Fatal(err)
				}
				if _, err := eng.Identify(ctx, req.ID, "in-person", "", "bench"); err != nil {
					b.Fatal(err)
				}
				out, err := eng.Process(ctx, req.ID, len(sel), "bench")
				if err != nil {
					b.Fatal(err)
				}
				sec := time.Since(t0).Seconds()
				b.ReportMetric(find, "s/find")
				b.ReportMetric(sec, "s/request")
				b.ReportMetric(float64(len(found.Review.Candidates)), "candidates")
				b.ReportMetric(float64(out.ActedOn), "faces-acted-on")
				if kind == dsr.Erasure && (out.Proof == nil || !out.Proof.OK) {
					b.Fatalf("erasure proof: %+v", out.Proof)
				}
				if math.IsNaN(sec) {
					b.Fatal("no time")
				}
			}
		})
	}
}
