package eval

import (
	"fmt"
	"math"
	"slices"

	"gabarit/internal/openset"
)

// Levers are the decision rules tried beyond the calibrated threshold
// (docs/ACCURACY.md reports each): quality gates, per-probe score
// normalisation, and person-level evidence from groups of look-alike
// candidates.
func Levers() []Rule {
	return []Rule{
		QualityGate("gallery quality ≥ 0.2", 0.2),
		ZNorm("per-probe z-norm"),
		Decided("look-alikes, no quality gate", 0),
		Decided("look-alikes of quality ≥ 0.2 (the default)", DefaultMinQuality),
	}
}

// QualityGate is the calibrated rule over gallery faces of quality at
// least q only: lower-quality faces are never returned, and the tail is
// fitted on the same faces.
func QualityGate(name string, q float64) Rule {
	return Rule{Name: name, Prepare: func(cal []Photo, fpir float64) (Decide, error) {
		c, err := CalibrateTail(keepQuality(cal, q))
		if err != nil {
			return nil, err
		}
		return func(_ []float32, sims []float32, g *Gallery) []int {
			n := 0
			for _, f := range g.Faces {
				if f.Quality >= q {
					n++
				}
			}
			t := c.OperatingPoint(n, fpir)
			var out []int
			for j, s := range sims {
				if float64(s) >= t && g.Faces[j].Quality >= q {
					out = append(out, j)
				}
			}
			return out
		}, nil
	}}
}

// keepQuality returns photos without their faces of quality under q (a
// subject under q makes the photo probe nothing).
func keepQuality(photos []Photo, q float64) []Photo {
	out := make([]Photo, len(photos))
	for i, p := range photos {
		np := p
		np.Faces = nil
		np.Subject = -1
		for k, f := range p.Faces {
			if f.Quality < q {
				continue
			}
			if k == p.Subject {
				np.Subject = len(np.Faces)
			}
			np.Faces = append(np.Faces, f)
		}
		out[i] = np
	}
	return out
}

// ZNorm normalises each search's similarities by their mean and standard
// deviation over the whole gallery (computable exactly from the gallery's
// mean and covariance), and applies the operating point to normalised
// scores, with a tail fitted on normalised impostor scores.
func ZNorm(name string) Rule {
	return Rule{Name: name, Prepare: func(cal []Photo, fpir float64) (Decide, error) {
		var gal []PhotoFace
		for _, p := range cal {
			gal = append(gal, p.Faces...)
		}
		var imp []float64
		for _, a := range cal {
			if a.Identity == "" || a.Subject < 0 {
				continue
			}
			q := a.Faces[a.Subject].Emb
			var all []float32
			for _, f := range gal {
				all = append(all, dot(q, f.Emb))
			}
			mu, sd := meanSD(all)
			for _, b := range cal {
				if b.Identity == a.Identity {
					continue
				}
				for _, f := range b.Faces {
					imp = append(imp, (float64(dot(q, f.Emb))-mu)/sd/10) // scaled into (-1, 1) for the tail
				}
			}
		}
		pts, slope, err := FitTail(imp, 10)
		if err != nil {
			return nil, err
		}
		c, err := openset.New(pts, slope)
		if err != nil {
			return nil, err
		}
		return func(_ []float32, sims []float32, g *Gallery) []int {
			mu, sd := meanSD(sims)
			t := c.OperatingPoint(len(g.Faces), fpir)
			var out []int
			for j, s := range sims {
				if (float64(s)-mu)/sd/10 >= t {
					out = append(out, j)
				}
			}
			return out
		}, nil
	}}
}

func meanSD(xs []float32) (mu, sd float64) {
	for _, x := range xs {
		mu += float64(x)
	}
	mu /= float64(len(xs))
	for _, x := range xs {
		sd += (float64(x) - mu) * (float64(x) - mu)
	}
	return mu, math.Sqrt(sd / float64(len(xs)))
}

// Link is the similarity at which two stored faces are taken as the same
// person when grouping candidates: the pairwise threshold at a false-accept
// rate of 1e-4 on celeba-dev.
const Link = 0.4525

// DefaultMinQuality is the least quality of a stored face that takes part
// in look-alike evidence.
const DefaultMinQuality = 0.2

// BuildDecider fits a decider on labelled photos: the single-face tail
// (ImpostorScores), the group tail (the second-best similarity of each
// subject to each other identity's subject faces), and the given minimum
// quality, with faces under it left out of both.
func BuildDecider(photos []Photo, minQ float64) (*openset.Decider, error) {
	photos = keepQuality(photos, minQ)
	single, err := CalibrateTail(photos)
	if err != nil {
		return nil, err
	}
	pts, slope, err := FitTail(mthBest(photos, 2), TailSupport)
	if err != nil {
		return nil, fmt.Errorf("group tail: %w", err)
	}
	group, err := openset.New(pts, slope)
	if err != nil {
		return nil, err
	}
	d := &openset.Decider{Single: single, Group: group, Link: Link, FloorFAR: DefaultFloorFAR, MinQuality: minQ}
	return d, d.Check()
}

// Decided is the product's decision (openset.Decider) fitted on the
// calibration photos.
func Decided(name string, minQ float64) Rule {
	return Rule{Name: name, Prepare: func(cal []Photo, fpir float64) (Decide, error) {
		d, err := BuildDecider(cal, minQ)
		if err != nil {
			return nil, err
		}
		return func(_ []float32, sims []float32, g *Gallery) []int {
			floor := d.Single.Score(d.FloorFAR)
			var cands []openset.Candidate
			var at []int
			for j, s := range sims {
				if float64(s) >= floor {
					f := g.Faces[j]
					cands = append(cands, openset.Candidate{Similarity: float64(s), Quality: f.Quality, Template: f.Emb})
					at = append(at, j)
				}
			}
			_, vs := d.Decide(cands, len(g.Faces), fpir)
			var out []int
			for i, v := range vs {
				if v.Match {
					out = append(out, at[i])
				}
			}
			return out
		}, nil
	}}
}

// DefaultFloorFAR is the pairwise false-accept rate of the least
// similarity of a candidate. At 1e-2 the FNIR was the same and mated
// searches returned 2.4 strangers' faces on average instead of 1.3 (full
// celeba-dev gallery, docs/ACCURACY.md).
const DefaultFloorFAR = 3e-3

// mthBest returns, for the subject of each labelled photo and each other
// labelled identity with m or more faces, the m-th best similarity of the
// subject to that identity's subject faces.
func mthBest(photos []Photo, m int) []float64 {
	by := map[string][][]float32{}
	for _, p := range photos {
		if p.Identity != "" && p.Subject >= 0 {
			by[p.Identity] = append(by[p.Identity], p.Faces[p.Subject].Emb)
		}
	}
	var out []float64
	for _, a := range photos {
		if a.Identity == "" || a.Subject < 0 {
			continue
		}
		q := a.Faces[a.Subject].Emb
		for id, faces := range by {
			if id == a.Identity || len(faces) < m {
				continue
			}
			ss := make([]float64, len(faces))
			for i, f := range faces {
				ss[i] = float64(dot(q, f))
			}
			slices.Sort(ss)
			out = append(out, ss[len(ss)-m])
		}
	}
	return out
}

// TailCounts returns how many impostor comparisons BuildDecider fits its
// single-face and group tails on.
func TailCounts(photos []Photo, minQ float64) (single, group int) {
	photos = keepQuality(photos, minQ)
	return len(ImpostorScores(photos)), len(mthBest(photos, 2))
}
