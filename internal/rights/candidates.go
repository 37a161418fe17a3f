package rights

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/openset"
	"gabarit/internal/rights/preselect"
	"gabarit/internal/store"
	"gabarit/internal/vault"
)

// Bands of a candidate (see preselect).
const (
	BandStrong   = preselect.BandStrong
	BandProbable = preselect.BandProbable
	BandWeak     = preselect.BandWeak
)

func (e *Engine) fpir() float64 {
	if e.FPIR > 0 && e.FPIR < 1 {
		return e.FPIR
	}
	return StrictFPIR
}

// Found is the answer of Find: the candidate set, or the refused request
// when the selfies do not show one person.
type Found struct {
	Request dsr.Request
	Review  store.RightsReview
	Refused bool
	// Unreadable counts the stored faces that could not be compared with
	// the selfies: faces in quarantine, their template unreadable (see
	// Quarantine). The DPO is told: the person may be among them.
	Unreadable int
}

// Quarantine records faces whose sealed template cannot be opened; a Store
// that also implements it (as *store.DB does) has such faces skipped and
// counted as unreadable: they are put in quarantine (audited once), and
// faces already in quarantine are not opened. With a Store that does not,
// such a face fails the step.
type Quarantine interface {
	QuarantineFace(ctx context.Context, id int64, found, reason, actor string) (bool, error)
	QuarantinedIDs(ctx context.Context, modelID string) (map[int64]bool, error)
}

// opened is what opening a stored template gave: the template, or nil when
// the face is skipped (its source shredded, or the face in quarantine).
// quarantined is true for the latter.
func (e *Engine) opened(ctx context.Context, held map[int64]bool, faceID, sourceID int64, modelID string, blob []byte, actor string) (t []float32, quarantined bool, err error) {
	if held[faceID] {
		return nil, true, nil
	}
	t, err = e.Keys.Open(ctx, sourceID, faceID, modelID, blob)
	if errors.Is(err, keyring.ErrShredded) {
		return nil, false, nil
	}
	if q, ok := e.Store.(Quarantine); ok && errors.Is(err, keyring.ErrBadTemplate) {
		// One damaged record never stops a request: it is put in
		// quarantine and counted as unreadable.
		if _, err := q.QuarantineFace(ctx, faceID, store.FoundByRights, keyring.TemplateFault(err), actor); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("face %d: %w", faceID, err)
	}
	return t, false, nil
}

// quarantined returns the ids of the faces of e's model in quarantine;
// none when the store keeps no quarantine.
func (e *Engine) quarantined(ctx context.Context) (map[int64]bool, error) {
	if q, ok := e.Store.(Quarantine); ok {
		return q.QuarantinedIDs(ctx, e.ModelID)
	}
	return nil, nil
}

// Find checks that request id's selfies show one person (refusing the
// request with RefusedIdentity otherwise) and builds its candidate set:
// every stored face whose similarity to any selfie reaches the floor,
// compared exhaustively, scored against the selfies together, the ones at
// the strict operating point pre-selected. It replaces an earlier set,
// which must then be reviewed again; a request being acted on fails with
// ErrActing.
func (e *Engine) Find(ctx context.Context, id int64, actor string) (Found, error) {
	r, err := e.open(ctx, id)
	if err != nil {
		return Found{Request: r}, err
	}
	if r.Acting() {
		return Found{}, fmt.Errorf("request %d: %w", id, ErrActing)
	}
	selfies, err := e.Vault.Templates(ctx, id, vault.Selfie)
	if err != nil {
		return Found{}, err
	}
	if !e.sameSelfies(selfies) {
		r, err := e.Store.CloseRightsRequest(ctx, id, actor, nil, func(r *dsr.Request, now time.Time) error {
			return r.Advance(now, dsr.Refused, RefusedIdentity)
		})
		if err != nil {
			return Found{}, err
		}
		return Found{Request: r, Refused: true}, e.closeRequest(ctx, id)
	}
	cands, n, unreadable, err := e.scan(ctx, preselect.NewScorer(selfies), actor)
	if err != nil {
		return Found{}, err
	}
	var in []scored
	floor := preselect.PointsFor(e.Decider, n, e.fpir()).Floor
	for _, c := range cands {
		if c.best >= floor {
			in = append(in, c)
		}
	}
	oc := make([]openset.Candidate, len(in))
	for i, c := range in {
		oc[i] = openset.Candidate{Similarity: c.score, Quality: c.quality, Template: c.template}
	}
	p, ds := preselect.Preselect(e.Decider, oc, n, e.fpir())
	rv := store.RightsReview{RequestID: id, Gallery: n, Selfies: len(selfies), Floor: p.Floor, Strict: p.Strict, Group: p.Group, FPIR: e.fpir()}
	for i, c := range in {
		rv.Candidates = append(rv.Candidates, store.RightsCandidate{FaceID: c.id, Score: c.score, Similarities: c.sims,
			Band: ds[i].Band, Strangers: ds[i].Strangers, Preselected: ds[i].Preselected})
	}
	slices.SortFunc(rv.Candidates, func(a, b store.RightsCandidate) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.FaceID, b.FaceID))
	})
	if len(rv.Candidates) > MaxCandidates {
		rv.Beyond = len(rv.Candidates) - MaxCandidates
		rv.Candidates = rv.Candidates[:MaxCandidates]
	}
	if err := e.Store.SaveRightsCandidates(ctx, id, actor, rv); err != nil {
		return Found{}, err
	}
	rv, err = e.Store.RightsReview(ctx, id)
	return Found{Request: r, Review: rv, Unreadable: unreadable}, err
}

// added is a face the DPO adds to a review of a gallery of n faces: its
// band by its own score.
func (e *Engine) added(id int64, score float64, sims []float64, p preselect.Points, n int) store.RightsCandidate {
	return store.RightsCandidate{FaceID: id, Score: score, Similarities: sims, Band: p.Band(score),
		Strangers: e.Decider.Single.Strangers(score, n)}
}

type scored struct {
	id                   int64
	score, best, quality float64
	sims                 []float64
	template             []float32
}

// scan compares every stored face of the model with the selfies and
// returns those whose best similarity reaches the floor of the gallery
// (its size counted first, so that only candidates are kept in memory),
// in id order, with the number of faces compared. Faces of crypto-shredded
// sources are unreadable and skipped (already erased); faces in
// quarantine, or whose template cannot be opened, are skipped and counted
// (unreadable). The scan is exhaustive and exact whichever way it runs:
// on a RangeStore, by e.workers() goroutines over PartsPerWorker parts
// each of the model's id range (see scanRanges); otherwise by one
// goroutine through AllTemplates.
func (e *Engine) scan(ctx context.Context, s *preselect.Scorer, actor string) (out []scored, n, unreadable int, err error) {
	rs, ranged := e.Store.(RangeStore)
	var count, lo, hi int64
	if ranged {
		count, lo, hi, err = rs.FaceIDRange(ctx, e.ModelID)
	} else {
		count, _, err = e.Store.FaceCountUpTo(ctx, e.ModelID, math.MaxInt64)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	held, err := e.quarantined(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	// The floor rises with the gallery; faces erased during the scan
	// could lower it a little: keep what the floor of half the gallery
	// admits (Find applies the floor of the faces compared).
	loosest := preselect.PointsFor(e.Decider, int(count/2), e.fpir()).Floor
	if ranged {
		// Faces added after the range was read have greater ids: like the
		// serial scan's snapshot, the scan does not see them. Each page of
		// a part is read as it stands: a face erased meanwhile may or may
		// not be compared.
		w := e.workers()
		out, n, unreadable, err = e.scanRanges(ctx, rs, s, held, loosest, lo, hi, w, w*PartsPerWorker, actor)
	} else {
		err = e.Store.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, blob []byte) error {
			if modelID != e.ModelID {
				return nil
			}
			t, quarantined, err := e.opened(ctx, held, faceID, sourceID, modelID, blob, actor)
			if quarantined {
				unreadable++
			}
			if t == nil || err != nil {
				return err
			}
			n++
			score, sims, best := s.Score(t)
			if best >= loosest {
				out = append(out, scored{id: faceID, score: score, best: best, sims: sims, template: t})
			}
			return nil
		})
	}
	if err != nil {
		return nil, 0, 0, err
	}
	// Look-alike evidence leaves out low-quality faces: read the
	// candidates' qualities.
	for i := range out {
		f, err := e.Store.Face(ctx, out[i].id)
		if err != nil {
			return nil, 0, 0, err
		}
		out[i].quality = f.Quality
	}
	return out, n, unreadable, nil
}

// Review records the DPO's review of request id's candidate set: exactly
// the faces in selected are acted on. A selected face that is not a
// candidate (one the person pointed out, say) is added to the set with its
// score. A request being acted on fails with ErrActing.
func (e *Engine) Review(ctx context.Context, id int64, selected []int64, actor string) (store.RightsReview, error) {
	r, err := e.open(ctx, id)
	if err != nil {
		return store.RightsReview{}, err
	}
	if r.Acting() {
		return store.RightsReview{}, fmt.Errorf("request %d: %w", id, ErrActing)
	}
	rv, err := e.Store.RightsReview(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.RightsReview{}, fmt.Errorf("request %d: %w", id, ErrNoCandidates)
	}
	if err != nil {
		return store.RightsReview{}, err
	}
	known := map[int64]bool{}
	for _, c := range rv.Candidates {
		known[c.FaceID] = true
	}
	var added []store.RightsCandidate
	var sc *preselect.Scorer
	var held map[int64]bool
	for _, f := range slices.Compact(slices.Sorted(slices.Values(selected))) {
		if known[f] {
			continue
		}
		if sc == nil {
			selfies, err := e.Vault.Templates(ctx, id, vault.Selfie)
			if err != nil {
				return store.RightsReview{}, err
			}
			if sc = preselect.NewScorer(selfies); sc == nil {
				return store.RightsReview{}, fmt.Errorf("request %d has no selfies left: %w", id, store.ErrNotFound)
			}
			if held, err = e.quarantined(ctx); err != nil {
				return store.RightsReview{}, err
			}
		}
		t, quarantined, err := e.template(ctx, f, held, actor)
		if err != nil {
			return store.RightsReview{}, err
		}
		if quarantined {
			// Its template cannot be opened, so it has no score; it can
			// still be acted on (erasing needs no template).
			p := preselect.PointsFor(e.Decider, rv.Gallery, rv.FPIR)
			added = append(added, e.added(f, 0, nil, p, rv.Gallery))
			continue
		}
		if t == nil {
			return store.RightsReview{}, fmt.Errorf("face %d: %w", f, store.ErrNotFound)
		}
		score, sims, _ := sc.Score(t)
		p := preselect.PointsFor(e.Decider, rv.Gallery, rv.FPIR)
		added = append(added, e.added(f, score, sims, p, rv.Gallery))
	}
	return e.Store.ReviewRightsCandidates(ctx, id, actor, selected, added)
}

// sameSelfies reports whether there is at least one selfie template and
// every two of them are of one person at SelfieMatch.
func (e *Engine) sameSelfies(ts [][]float32) bool {
	if len(ts) == 0 {
		return false
	}
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if c, err := face.Embedding(ts[i]).Cosine(ts[j]); err != nil || c < e.SelfieMatch {
				return false
			}
		}
	}
	return true
}
