package eval

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gabarit/internal/face"
	"gabarit/internal/openset"
	"gabarit/internal/rights/preselect"
)

// RightsConfig says how to measure rights requests' candidate sets.
type RightsConfig struct {
	Selfies     []int   // numbers of selfies per request, e.g. 1, 2, 3
	FPIR        float64 // target FPIR of the pre-selection (rights.StrictFPIR)
	SelfieMatch float64 // least similarity of two selfies of one request
	MinPhotos   int     // least photos an identity needs besides its selfies (default 3)
}

// RightsRow is one number of selfies.
type RightsRow struct {
	Selfies  int `json:"selfies"`
	Requests int `json:"requests"` // one per identity with enough photos
	// Refused: requests whose selfies did not agree (SelfieMatch): refused
	// before any search, counted apart from the rest.
	Refused int `json:"refused"`
	Gallery int `json:"gallery_faces"` // mean over the requests
	// Own faces: the person's photos' subject faces left in the gallery.
	Own int `json:"own_faces"`
	// CandidateRecall and PreselectedRecall: the share of the person's
	// faces in the candidate set, and pre-selected.
	CandidateRecall   float64 `json:"candidate_recall"`
	PreselectedRecall float64 `json:"preselected_recall"`
	// Strangers: faces of other identities in the candidate set, per
	// request; StrangersPreselected, in all requests together;
	// RequestsWithStranger: the share of requests with one or more
	// strangers pre-selected (the empirical FPIR of the pre-selection).
	Strangers            float64 `json:"strangers_per_request"`
	StrangersPreselected int     `json:"strangers_preselected"`
	RequestsWithStranger float64 `json:"requests_with_stranger_preselected"`
	Candidates           float64 `json:"candidates_per_request"`
	Strict               float64 `json:"strict_operating_point"` // mean over the requests
	Group                float64 `json:"group_point"`            // mean over the requests
}

// Rights measures the candidate sets of rights requests on labelled
// photos, as rights.Engine builds them (package preselect): for every identity with enough
// photos and each number k of selfies, the subject faces of its first k
// photos are the selfies and every face of every other photo is the
// gallery (the person's other photos included). The person's faces are the
// subject faces of their other photos; strangers are the faces of photos
// of other identities (distractor photos included). Faces of the person's
// photos other than the subject are left out of both counts. The decider's
// single-face tail sets the points, as in production.
func Rights(photos []Photo, dec *openset.Decider, cfg RightsConfig) ([]RightsRow, error) {
	if dec == nil || dec.Check() != nil {
		return nil, errors.New("eval rights: a decider is required")
	}
	if cfg.MinPhotos <= 0 {
		cfg.MinPhotos = 3
	}
	byID := map[string][]int{}
	var ids []string
	for i, p := range photos {
		if p.Distractor || p.Identity == "" || p.Subject < 0 {
			continue
		}
		if _, ok := byID[p.Identity]; !ok {
			ids = append(ids, p.Identity)
		}
		byID[p.Identity] = append(byID[p.Identity], i)
	}
	slices.Sort(ids)
	var rows []RightsRow
	for _, k := range cfg.Selfies {
		if k < 1 {
			return nil, fmt.Errorf("eval rights: %d selfies", k)
		}
		row := RightsRow{Selfies: k}
		var recallC, recallP, strangers, cands, strict, group, gallery float64
		var own, withStranger int
		for _, id := range ids {
			mine := byID[id]
			if len(mine) < k+cfg.MinPhotos {
				continue
			}
			row.Requests++
			selfiePhotos := mine[:k]
			var selfies [][]float32
			for _, i := range selfiePhotos {
				selfies = append(selfies, photos[i].Faces[photos[i].Subject].Emb)
			}
			if !agree(selfies, cfg.SelfieMatch) {
				row.Refused++
				continue
			}
			sc := preselect.NewScorer(selfies)
			type scoredFace struct {
				score, best   float64
				own, stranger bool
				emb           []float32
				quality       float64
			}
			var faces []scoredFace
			for i, p := range photos {
				if slices.Contains(selfiePhotos, i) {
					continue
				}
				for j, f := range p.Faces {
					s, _, best := sc.Score(f.Emb)
					sf := scoredFace{score: s, best: best, emb: f.Emb, quality: f.Quality}
					switch {
					case p.Identity == id && j == p.Subject:
						sf.own = true
					case p.Identity == id:
						// another face in the person's photo: unknown
					default:
						sf.stranger = true
					}
					faces = append(faces, sf)
				}
			}
			n := len(faces)
			floor := preselect.PointsFor(dec, n, cfg.FPIR).Floor
			var in []scoredFace
			var cs []openset.Candidate
			for _, f := range faces {
				if f.best >= floor {
					in = append(in, f)
					cs = append(cs, openset.Candidate{Similarity: f.score, Quality: f.quality, Template: f.emb})
				}
			}
			pts, ds := preselect.Preselect(dec, cs, n, cfg.FPIR)
			var o, oc2, op, sc2, sp int
			for _, f := range faces {
				if f.own {
					o++
				}
			}
			for i, f := range in {
				pre := ds[i].Preselected
				switch {
				case f.own:
					oc2++
					if pre {
						op++
					}
				case f.stranger:
					sc2++
					if pre {
						sp++
					}
				}
			}
			c, oc := len(in), oc2
			if o > 0 {
				recallC += float64(oc) / float64(o)
				recallP += float64(op) / float64(o)
			}
			own += o
			strangers += float64(sc2)
			cands += float64(c)
			row.StrangersPreselected += sp
			if sp > 0 {
				withStranger++
			}
			strict += pts.Strict
			group += pts.Group
			gallery += float64(n)
		}
		if m := row.Requests - row.Refused; m > 0 {
			f := float64(m)
			row.CandidateRecall, row.PreselectedRecall = recallC/f, recallP/f
			row.Strangers, row.Candidates = strangers/f, cands/f
			row.RequestsWithStranger = float64(withStranger) / f
			row.Strict, row.Group, row.Gallery, row.Own = strict/f, group/f, int(math.Round(gallery/f)), own
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// agree reports whether every two of ts reach min.
func agree(ts [][]float32, min float64) bool {
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if c, err := face.Embedding(ts[i]).Cosine(ts[j]); err != nil || c < min {
				return false
			}
		}
	}
	return true
}
