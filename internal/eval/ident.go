package eval

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Sample is one image of an identification set: its identity and embedding
// (L2-normalised, so that the dot product is the cosine similarity), or a
// failure when no face was found.
type Sample struct {
	Identity string
	Emb      []float32
	Failed   bool
}

// Identification holds 1:N identification metrics.
type Identification struct {
	Gallery     int     `json:"gallery"`     // mated gallery entries (one per identity)
	Distractors int     `json:"distractors"` // extra gallery entries of unknown identity
	Probes      int     `json:"probes"`      // probes, failures included
	Rank1       float64 `json:"rank1"`       // fraction of probes whose mate ranks first
	Rank5       float64 `json:"rank5"`       // fraction of probes whose mate is in the top 5
	// TPIRAtFPIR is the open-set true-positive identification rate at a
	// fixed false-positive identification rate, keyed "1e-2" and "1e-1".
	TPIRAtFPIR map[string]float64 `json:"tpir_at_fpir"`
	// Failures counts the images with no face: probes, gallery entries and
	// distractors, each image once.
	Failures int `json:"failures"`
}

// fpirLevels are the FPIR operating points of Identify, with their keys.
var fpirLevels = []struct {
	key  string
	fpir float64
}{
	{"1e-2", 1e-2},
	{"1e-1", 1e-1},
}

// probeResult is the outcome of the two searches of one probe.
type probeResult struct {
	rank     int     // rank of the mate (1 = first); 0 when it cannot be found
	mate     float64 // similarity to the mate
	nonMated float64 // best similarity among the gallery without the mate (-Inf if empty)
}

// Identify computes closed-set rank-1/rank-5 rates and open-set TPIR at
// FPIR. The gallery holds one sample per identity (the caller puts the first
// photo of each identity there), probes are the rest (each probe's identity
// must be in the gallery), and distractors are extra gallery entries of
// unknown identity that never count as a mate, whatever their Identity.
//
// Rank-k: the mate is among the k most similar gallery entries (distractors
// included); an entry scoring exactly as high as the mate ranks before it
// (conservative ties). A failed probe misses at every rank, and so do the
// probes of an identity whose gallery entry failed; failed distractors are
// simply absent from the gallery.
//
// Open-set TPIR@FPIR: the data has no separate non-mated probes, so each
// successful probe gives one mated search (full gallery) and one non-mated
// search: the same probe against the gallery with its own identity's entry
// removed (leave-one-out). FPIR(t) is the fraction of non-mated searches
// whose best score is >= t; t is the smallest threshold with FPIR <= the
// level (ThresholdForFAR), and TPIR is the fraction of all probes (failed
// ones included, as misses) whose mate is rank 1 with a score >= t. Failed
// probes run no non-mated search. The keys are left out when there is no
// non-mated search.
//
// Similarities are brute-force dot products, run in parallel across blocks
// of probes.
func Identify(gallery, probes, distractors []Sample) (Identification, error) {
	res := Identification{Gallery: len(gallery), Distractors: len(distractors), Probes: len(probes)}
	if len(gallery) == 0 {
		return res, errors.New("identify: empty gallery")
	}
	if len(probes) == 0 {
		return res, errors.New("identify: no probes")
	}
	dim := -1
	check := func(kind string, i int, s Sample) error {
		if s.Failed {
			res.Failures++
			return nil
		}
		if len(s.Emb) == 0 {
			return fmt.Errorf("identify: %s %d (%q): empty embedding", kind, i, s.Identity)
		}
		if dim < 0 {
			dim = len(s.Emb)
		} else if len(s.Emb) != dim {
			return fmt.Errorf("identify: %s %d (%q): embedding size %d, want %d", kind, i, s.Identity, len(s.Emb), dim)
		}
		return nil
	}
	mateOf := make(map[string]int, len(gallery)) // identity -> gallery index
	for i, s := range gallery {
		if _, dup := mateOf[s.Identity]; dup {
			return res, fmt.Errorf("identify: gallery %d: identity %q appears twice", i, s.Identity)
		}
		mateOf[s.Identity] = i
		if err := check("gallery", i, s); err != nil {
			return res, err
		}
	}
	for i, s := range distractors {
		if err := check("distractor", i, s); err != nil {
			return res, err
		}
	}
	for i, s := range probes {
		if _, ok := mateOf[s.Identity]; !ok {
			return res, fmt.Errorf("identify: probe %d: identity %q has no gallery entry", i, s.Identity)
		}
		if err := check("probe", i, s); err != nil {
			return res, err
		}
	}

	// Flat matrix of the successful gallery entries and distractors; row
	// owner is the gallery index, or -1 for a distractor.
	var mat []float32
	var owner []int
	row := make(map[int]int) // gallery index -> matrix row
	for i, s := range gallery {
		if !s.Failed {
			row[i] = len(owner)
			owner = append(owner, i)
			mat = append(mat, s.Emb...)
		}
	}
	for _, s := range distractors {
		if !s.Failed {
			owner = append(owner, -1)
			mat = append(mat, s.Emb...)
		}
	}
	mateRow := make([]int, len(probes)) // -1: no usable mate
	for i, s := range probes {
		r, ok := row[mateOf[s.Identity]]
		if !ok {
			r = -1
		}
		mateRow[i] = r
	}

	results := make([]probeResult, len(probes))
	var live []int // probes with an embedding
	for p, s := range probes {
		if !s.Failed {
			live = append(live, p)
		}
	}
	rows := len(owner)
	// Workers take blocks of probes; each gallery row is read once per
	// block and stays in cache while it meets every probe of the block, so
	// the gallery is streamed from memory len(live)/probeBlock times.
	var next atomic.Int64
	blocks := (len(live) + probeBlock - 1) / probeBlock
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), blocks) {
		wg.Go(func() {
			sims := make([]float32, probeBlock*rows)
			for {
				b := int(next.Add(1)) - 1
				if b >= blocks {
					return
				}
				block := live[b*probeBlock : min((b+1)*probeBlock, len(live))]
				for r := range rows {
					v := mat[r*dim : (r+1)*dim : (r+1)*dim]
					for k, p := range block {
						sims[k*rows+r] = dot(v, probes[p].Emb)
					}
				}
				for k, p := range block {
					results[p] = rankMate(sims[k*rows:(k+1)*rows], mateRow[p])
				}
			}
		})
	}
	wg.Wait()

	var r1, r5 int
	var nonMated []float64
	for p, r := range results {
		if probes[p].Failed {
			continue
		}
		nonMated = append(nonMated, r.nonMated)
		if r.rank == 1 {
			r1++
		}
		if r.rank >= 1 && r.rank <= 5 {
			r5++
		}
	}
	res.Rank1 = float64(r1) / float64(len(probes))
	res.Rank5 = float64(r5) / float64(len(probes))
	res.TPIRAtFPIR = make(map[string]float64)
	if len(nonMated) > 0 {
		for _, l := range fpirLevels {
			t, _ := ThresholdForFAR(nonMated, l.fpir)
			hit := 0
			for p, r := range results {
				if !probes[p].Failed && r.rank == 1 && r.mate >= t {
					hit++
				}
			}
			res.TPIRAtFPIR[l.key] = float64(hit) / float64(len(probes))
		}
	}
	return res, nil
}

// probeBlock is the number of probes searched together.
const probeBlock = 8

// rankMate returns the mate's rank and score (mate = index into sims, -1
// when none) and the best non-mate score of one probe's similarities.
func rankMate(sims []float32, mate int) probeResult {
	best := float32(math.Inf(-1))
	for r, s := range sims {
		if r != mate && s > best {
			best = s
		}
	}
	res := probeResult{nonMated: float64(best)}
	if mate >= 0 {
		m := sims[mate]
		res.mate = float64(m)
		res.rank = 1
		for r, s := range sims {
			if r != mate && s >= m {
				res.rank++
			}
		}
	}
	return res
}

// dot returns the dot product of a and b (len(b) >= len(a)).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
