package eval

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"gabarit/internal/openset"
)

// Photo is one photo of an open-set evaluation, with every face found in
// it.
type Photo struct {
	Set        string // the folder of the set
	Identity   string // the person the photo is labelled with; "" when unlabelled
	File       string
	Distractor bool // from a set of other people only
	Subject    int  // index in Faces of the photo's subject; -1 without faces
	Faces      []PhotoFace
}

// PhotoFace is one face of a Photo.
type PhotoFace struct {
	Emb     []float32 // L2-normalised template
	Quality float64
	Size    float64 // box height, pixels
}

// ImpostorScores returns the similarity of the subject face of each photo
// to every face of every photo of another labelled identity: the
// comparisons a search for a person makes with the faces of other people.
// Photos without a label or a subject probe nothing; unlabelled photos'
// faces are compared with every probe.
func ImpostorScores(photos []Photo) []float64 {
	per := make([][]float64, len(photos))
	parallelFor(len(photos), func(i int) {
		a := photos[i]
		if a.Identity == "" || a.Subject < 0 {
			return
		}
		q := a.Faces[a.Subject].Emb
		var local []float64
		for _, b := range photos {
			if b.Identity == a.Identity {
				continue
			}
			for _, f := range b.Faces {
				local = append(local, float64(dot(q, f.Emb)))
			}
		}
		per[i] = local
	})
	var out []float64
	for _, l := range per {
		out = append(out, l...)
	}
	return out
}

// TailFARs are the false-accept rates at which FitTail places its points.
var TailFARs = []float64{1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7}

// FitTail measures an impostor tail: a point at each of TailFARs that at
// least minCount impostor scores support, and the slope of log10 FAR
// against the score over the points from FAR 1e-4 on (least squares), for
// extrapolation beyond the last point.
func FitTail(impostors []float64, minCount int) (points []openset.TailPoint, slope float64, err error) {
	s := slices.Clone(impostors)
	slices.Sort(s)
	n := float64(len(s))
	for _, far := range TailFARs {
		k := int(math.Floor(far * n)) // impostors at or above the point
		if k < minCount {
			break
		}
		score := s[len(s)-k]
		got := float64(len(s)-sort.SearchFloat64s(s, score)) / n
		if len(points) > 0 && (score <= points[len(points)-1].Score || got >= points[len(points)-1].FAR) {
			continue
		}
		points = append(points, openset.TailPoint{Score: score, FAR: got})
	}
	if len(points) < 3 {
		return nil, 0, fmt.Errorf("fit tail: %d impostor scores support only %d points", len(s), len(points))
	}
	var xs, ys []float64
	for _, p := range points {
		if p.FAR <= 1e-4*1.0001 {
			xs = append(xs, p.Score)
			ys = append(ys, math.Log10(p.FAR))
		}
	}
	if len(xs) < 2 {
		xs, ys = nil, nil
		for _, p := range points[len(points)-2:] {
			xs = append(xs, p.Score)
			ys = append(ys, math.Log10(p.FAR))
		}
	}
	mx, my := mean(xs), mean(ys)
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	slope = sxy / sxx
	if !(slope < 0) {
		return nil, 0, fmt.Errorf("fit tail: slope %v is not negative", slope)
	}
	return points, slope, nil
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// OpenSetConfig sets the protocol of OpenSet.
type OpenSetConfig struct {
	Folds       int       // identities of the main set are split into this many folds (default 4)
	MatedProbes int       // photos of each gallery identity searched as mated probes (default 3)
	Sizes       []int     // gallery sizes in faces; 0 or more than available: the whole gallery
	FPIR        float64   // target false-positive identification rate (default 0.01)
	Rules       []Rule    // the decision rules measured
	Seed        int64     // for the choice of identities of the smaller galleries
	Log         io.Writer // progress; nil for none
}

// Rule is one decision rule of an open-set search: it returns the gallery
// faces a search returns.
type Rule struct {
	Name string
	// Prepare is called once per fold with the calibration photos (the
	// fold's gallery identities and distractors; never the fold's held-out
	// identities) and returns the decision for a gallery.
	Prepare func(cal []Photo, fpir float64) (Decide, error)
}

// Decide returns the indexes of the gallery faces returned for probe q,
// given sims (q's similarity to every gallery face, in order) and the
// gallery.
type Decide func(q []float32, sims []float32, g *Gallery) []int

// Gallery is the gallery of one open-set run.
type Gallery struct {
	Faces    []PhotoFace
	Identity []string // "" for a face of nobody known (a distractor or a background face)
}

// OpenSetRow is one rule at one gallery size.
type OpenSetRow struct {
	Rule     string  `json:"rule"`
	Faces    int     `json:"gallery_faces"`
	People   int     `json:"gallery_identities"` // labelled identities with photos in the gallery
	NonMated int     `json:"non_mated_searches"`
	Mated    int     `json:"mated_searches"`
	FPIR     float64 `json:"fpir"` // non-mated searches that returned anything
	FNIR     float64 `json:"fnir"` // mated searches that returned none of the person's faces (failures included)
	// Recall is the share of the person's gallery faces returned, over
	// mated searches.
	Recall float64 `json:"recall"`
	// StrangersPerMated is the mean number of other people's faces
	// returned by a mated search.
	StrangersPerMated float64 `json:"strangers_per_mated_search"`
	// StrangersPerNonMated is the mean number of faces a non-mated search
	// returned.
	StrangersPerNonMated float64 `json:"faces_per_non_mated_search"`
	// The same rates for probes whose face has a quality under
	// LowQualityProbe.
	LowQualityMated    int     `json:"low_quality_mated"`
	LowQualityFNIR     float64 `json:"low_quality_fnir"`
	LowQualityNonMated int     `json:"low_quality_non_mated"`
	LowQualityFPIR     float64 `json:"low_quality_fpir"`
}

// LowQualityProbe is the probe face quality under which OpenSet reports
// rates apart (the search warns about such probes).
const LowQualityProbe = 0.3

// OpenSet measures decision rules as open-set identification on photos of
// a main set (labelled identities) and distractors, with k-fold
// cross-validation over the main set's identities: in fold f, the
// identities whose rank mod Folds is f are held out (never in the gallery:
// every photo of theirs is a non-mated search); of every other identity,
// the first MatedProbes photos (in name order) are mated searches and
// every face of the others is in the gallery (the photo's subject face
// labelled with the identity, other faces as nobody); every face of every
// distractor photo is in the gallery too. A rule is prepared (calibrated)
// on the fold's gallery identities and distractors only. Smaller galleries
// keep a seeded random subset of the gallery identities and the same share
// of distractor faces. A mated search is a hit when any returned face is
// labelled with the person; a non-mated search is a false positive when it
// returns anything. Probes without a face count as misses (mated) and are
// not searched (non-mated).
func OpenSet(photos []Photo, cfg OpenSetConfig) ([]OpenSetRow, error) {
	if cfg.Folds == 0 {
		cfg.Folds = 4
	}
	if cfg.MatedProbes == 0 {
		cfg.MatedProbes = 3
	}
	if cfg.FPIR == 0 {
		cfg.FPIR = 0.01
	}
	var ids []string
	byID := map[string][]int{}
	var distractors []int
	for i, p := range photos {
		switch {
		case p.Distractor:
			distractors = append(distractors, i)
		case p.Identity != "":
			if byID[p.Identity] == nil {
				ids = append(ids, p.Identity)
			}
			byID[p.Identity] = append(byID[p.Identity], i)
		}
	}
	slices.Sort(ids)
	if len(ids) < cfg.Folds {
		return nil, fmt.Errorf("open set: %d identities for %d folds", len(ids), cfg.Folds)
	}
	type acc struct {
		faces, people, nonMated, mated, fp, miss int
		recall, strangersMated, facesNonMated    float64
		lqMated, lqMiss, lqNonMated, lqFP        int
	}
	accs := make([][]acc, len(cfg.Rules))
	for r := range accs {
		accs[r] = make([]acc, len(cfg.Sizes))
	}
	for fold := range cfg.Folds {
		var heldOut, kept []string
		for i, id := range ids {
			if i%cfg.Folds == fold {
				heldOut = append(heldOut, id)
			} else {
				kept = append(kept, id)
			}
		}
		var cal []Photo
		for _, id := range kept {
			for _, i := range byID[id] {
				cal = append(cal, photos[i])
			}
		}
		for _, i := range distractors {
			cal = append(cal, photos[i])
		}
		decides := make([]Decide, len(cfg.Rules))
		for r, rule := range cfg.Rules {
			d, err := rule.Prepare(cal, cfg.FPIR)
			if err != nil {
				return nil, fmt.Errorf("open set: fold %d: %s: %w", fold, rule.Name, err)
			}
			decides[r] = d
		}
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(fold)))
		order := slices.Clone(kept)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var distFaces []PhotoFace
		for _, i := range distractors {
			distFaces = append(distFaces, photos[i].Faces...)
		}
		rng.Shuffle(len(distFaces), func(i, j int) { distFaces[i], distFaces[j] = distFaces[j], distFaces[i] })
		var nonMated []PhotoFace
		for _, id := range heldOut {
			for _, i := range byID[id] {
				if p := photos[i]; p.Subject >= 0 {
					nonMated = append(nonMated, p.Faces[p.Subject])
				}
			}
		}
		// The full gallery, then as many identities (in the shuffled
		// order) as fit with their share of distractors.
		full := len(distFaces)
		for _, id := range kept {
			for j, i := range byID[id] {
				if j >= cfg.MatedProbes {
					full += len(photos[i].Faces)
				}
			}
		}
		share := float64(len(distFaces)) / float64(full)
		for si, size := range cfg.Sizes {
			if size <= 0 || size > full {
				size = full
			}
			g := &Gallery{}
			var people []string
			for _, id := range order {
				if float64(len(g.Faces)) >= float64(size)*(1-share) {
					break
				}
				people = append(people, id)
				for j, i := range byID[id] {
					if j < cfg.MatedProbes {
						continue
					}
					p := photos[i]
					for k, f := range p.Faces {
						g.Faces = append(g.Faces, f)
						if k == p.Subject {
							g.Identity = append(g.Identity, id)
						} else {
							g.Identity = append(g.Identity, "")
						}
					}
				}
			}
			nd := max(0, size-len(g.Faces))
			for _, f := range distFaces[:min(nd, len(distFaces))] {
				g.Faces = append(g.Faces, f)
				g.Identity = append(g.Identity, "")
			}
			type probe struct {
				q  []float32
				id string // "" for non-mated
				lq bool   // quality under LowQualityProbe
			}
			var probes []probe
			var failedMated int
			for _, id := range people {
				for j, i := range byID[id] {
					if j >= cfg.MatedProbes {
						break
					}
					p := photos[i]
					if p.Subject < 0 {
						failedMated++
						continue
					}
					f := p.Faces[p.Subject]
					probes = append(probes, probe{f.Emb, id, f.Quality < LowQualityProbe})
				}
			}
			for _, f := range nonMated {
				probes = append(probes, probe{f.Emb, "", f.Quality < LowQualityProbe})
			}
			sims := make([][]float32, len(probes))
			parallelFor(len(probes), func(i int) {
				s := make([]float32, len(g.Faces))
				for j, f := range g.Faces {
					s[j] = dot(probes[i].q, f.Emb)
				}
				sims[i] = s
			})
			ownCount := map[string]int{}
			for _, id := range g.Identity {
				ownCount[id]++
			}
			for r := range cfg.Rules {
				a := &accs[r][si]
				a.faces += len(g.Faces)
				a.people += len(people)
				a.mated += failedMated
				a.miss += failedMated
				for i, p := range probes {
					got := decides[r](p.q, sims[i], g)
					if p.id == "" {
						a.nonMated++
						if len(got) > 0 {
							a.fp++
						}
						if p.lq {
							a.lqNonMated++
							if len(got) > 0 {
								a.lqFP++
							}
						}
						a.facesNonMated += float64(len(got))
						continue
					}
					a.mated++
					own := 0
					for _, j := range got {
						if g.Identity[j] == p.id {
							own++
						}
					}
					if own == 0 {
						a.miss++
					}
					if p.lq {
						a.lqMated++
						if own == 0 {
							a.lqMiss++
						}
					}
					a.recall += float64(own) / float64(max(ownCount[p.id], 1))
					a.strangersMated += float64(len(got) - own)
				}
			}
		}
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "fold %d of %d done\n", fold+1, cfg.Folds)
		}
	}
	var rows []OpenSetRow
	for si := range cfg.Sizes {
		for r, rule := range cfg.Rules {
			a := accs[r][si]
			rows = append(rows, OpenSetRow{Rule: rule.Name, Faces: a.faces / cfg.Folds, People: a.people / cfg.Folds,
				NonMated: a.nonMated, Mated: a.mated,
				FPIR: ratio(a.fp, a.nonMated), FNIR: ratio(a.miss, a.mated),
				Recall: a.recall / float64(max(a.mated, 1)), StrangersPerMated: a.strangersMated / float64(max(a.mated, 1)),
				StrangersPerNonMated: a.facesNonMated / float64(max(a.nonMated, 1)),
				LowQualityMated:      a.lqMated, LowQualityFNIR: ratio(a.lqMiss, a.lqMated),
				LowQualityNonMated: a.lqNonMated, LowQualityFPIR: ratio(a.lqFP, a.lqNonMated)})
		}
	}
	return rows, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// parallelFor runs f(0..n-1) on every core.
func parallelFor(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// Threshold is the rule "every face at or above a fixed similarity".
func Threshold(name string, t float64) Rule {
	return Rule{Name: name, Prepare: func([]Photo, float64) (Decide, error) {
		return func(_ []float32, sims []float32, _ *Gallery) []int { return above(sims, t) }, nil
	}}
}

func above(sims []float32, t float64) []int {
	var out []int
	for j, s := range sims {
		if float64(s) >= t {
			out = append(out, j)
		}
	}
	return out
}

// Calibrated is the rule "every face at or above the operating point for
// the gallery's size", with the impostor tail fitted on the calibration
// photos.
func Calibrated(name string) Rule {
	return Rule{Name: name, Prepare: func(cal []Photo, fpir float64) (Decide, error) {
		c, err := CalibrateTail(cal)
		if err != nil {
			return nil, err
		}
		return func(_ []float32, sims []float32, g *Gallery) []int {
			return above(sims, c.OperatingPoint(len(g.Faces), fpir))
		}, nil
	}}
}

// CalibrateTail fits the impostor tail of photos (see ImpostorScores and
// FitTail, with at least 10 impostors behind each point).
func CalibrateTail(photos []Photo) (*openset.Calibration, error) {
	pts, slope, err := FitTail(ImpostorScores(photos), TailSupport)
	if err != nil {
		return nil, err
	}
	return openset.New(pts, slope)
}

// CrossDuplicate is the similarity at or above which two subject faces are
// taken as the same picture.
const CrossDuplicate = 0.95

// DropCrossDuplicates removes the photos whose subject face is a copy of
// the subject face of a photo of another identity (similarity at least
// CrossDuplicate): the same picture filed under two identities, which is
// label noise, not a stranger's resemblance. Both copies go.
func DropCrossDuplicates(photos []Photo) (kept []Photo, dropped []string) {
	drop := make([]bool, len(photos))
	parallelFor(len(photos), func(i int) {
		a := photos[i]
		if a.Identity == "" || a.Subject < 0 {
			return
		}
		for j, b := range photos {
			if j == i || b.Identity == "" || b.Subject < 0 || b.Identity == a.Identity {
				continue
			}
			if float64(dot(a.Faces[a.Subject].Emb, b.Faces[b.Subject].Emb)) >= CrossDuplicate {
				drop[i] = true
				return
			}
		}
	})
	for i, p := range photos {
		if drop[i] {
			dropped = append(dropped, p.File)
		} else {
			kept = append(kept, p)
		}
	}
	return kept, dropped
}

// TailSupport is the least number of impostor comparisons behind each
// point of a fitted tail. Requiring more (100, 300) fits the tail only
// where it is dense and extrapolates it further: FNIR fell, but the
// measured FPIR of the plain calibrated threshold rose to 2.05% at a 1%
// target (docs/ACCURACY.md); the tail's far end, label noise included, is
// kept.
const TailSupport = 10
