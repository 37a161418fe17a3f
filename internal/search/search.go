// Package search finds the faces of a person from one photo: probe image →
// its face → template → vector index → exact re-scoring of the candidates
// with the stored templates → an open-set decision calibrated for the
// gallery's size → results, each with its strength and traced to its
// image, its source and the source's legal basis.
//
// Every search states its purpose and is recorded, with its audit entry, in
// the same transaction (who, when, purpose, case, the probe's SHA-256, the
// operating point, every face returned with its similarity and band); the
// probe image itself is never stored, only the searched face's crop,
// sealed, for the verifiers. A search without a purpose is refused before
// anything is computed. "No match" is an answer: when no stored face is a
// match the result is empty, never the nearest stranger.
//
// The decision (package openset) holds a stated false-positive
// identification rate (FPIR, the share of searches for someone who is not
// held that return anything) whatever the number of stored faces: the
// operating point rises with the gallery's size. It uses the evidence the
// gallery holds: a face whose look-alikes among the candidates also
// resemble the probe is the person's far more often than a lone face at the
// same similarity. Nothing is cut silently: every match is counted and
// recorded (up to MaxResults, and then the count says how many more).
// Going below the operating point is an exploratory search, allowed to the
// examiner role with a stated reason, audited as such, its extra results
// marked weak.
//
// The index answers fast and may be approximate or stale; the store is the
// truth. Every candidate is looked up in the store (a face deleted since the
// index was saved is dropped and reported in Result.Stale) and re-scored
// with its decrypted template, so that similarities are exact. A face whose
// template cannot be opened (altered or swapped bytes) is put in quarantine
// and left out; the search goes on without it (Quarantine). The faces of
// people who objected or whose processing is restricted are dropped
// (Engine.Hide) before the decision, so they are neither returned nor
// recorded, nor count as evidence for others.
package search

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/openset"
	"gabarit/internal/store"
	"gabarit/internal/vindex"
)

// Errors of a search request.
var (
	// ErrNoPurpose refuses a search that does not state its purpose.
	ErrNoPurpose = errors.New("a search must state its purpose")
	// ErrBadRequest reports an invalid k, threshold or face number.
	ErrBadRequest = errors.New("invalid search request")
	// ErrBelowOperatingPoint refuses a threshold below the calibrated
	// operating point from a caller who may not explore, or without a
	// stated reason.
	ErrBelowOperatingPoint = errors.New("threshold below the operating point")
)

// MaxK is the most results one page may hold.
const MaxK = 1000

// MaxResults is the most results one search records: a search that more
// faces match says so (Result.Truncated) and counts them all
// (Result.Above).
const MaxResults = 10000

// DefaultFPIR is the target false-positive identification rate when the
// policy sets none: the share of searches for a person who is not held
// that return anything.
const DefaultFPIR = 0.01

// LowQuality is the probe face quality under which a search warns that its
// results are less reliable: on celeba-dev, such probes were missed twice
// as often (docs/ACCURACY.md).
const LowQuality = 0.3

// Engine runs searches.
type Engine struct {
	An      face.Analyzer
	Store   Store
	Keys    Opener
	Index   vindex.Index
	ModelID string // the embedder of the probe; only faces of this model are compared
	// Decider sets the operating points for the gallery's size and decides
	// which candidates match; required.
	Decider *openset.Decider
	// FPIR is the policy's target false-positive identification rate; 0
	// means DefaultFPIR.
	FPIR float64
	// Margin widens the index query below the floor (approximate scores);
	// candidates are then re-scored exactly. Default 0.05.
	Margin float64
	// Hide, when set, is called once per search, before its candidates are
	// checked, and returns the function asked about every candidate with
	// its decrypted template: a candidate for which it returns true (its
	// person objected or is restricted) is dropped before the decision,
	// and appears neither in the results nor in the search's record. An
	// error of either fails the search. Nil hides nothing. (Once per
	// search: the vault checks once that its list is current.)
	Hide func(ctx context.Context) (func(t []float32) (bool, error), error)
	// SealProbe, when set, returns the searched face's crop of the probe
	// photo, sealed, to be kept with the search record for the verifiers.
	// Nil keeps no crop.
	SealProbe func(ctx context.Context, probe []byte, f face.Face) ([]byte, error)
}

// Store resolves candidates and records searches; *store.DB implements it.
type Store interface {
	FaceRefs(ctx context.Context, ids []int64) (map[int64]store.FaceRef, error)
	RecordSearch(ctx context.Context, s store.Search) (searchID, auditID int64, err error)
}

// Quarantine records faces whose sealed template cannot be opened; a Store
// that also implements it (as *store.DB does) has such faces skipped: the
// search goes on without them, they are put in quarantine (audited once)
// and reported in Result.Stale, and faces already in quarantine are
// dropped without being opened. With a Store that does not, such a face
// fails the search.
type Quarantine interface {
	QuarantineFace(ctx context.Context, id int64, found, reason, actor string) (bool, error)
	QuarantinedAmong(ctx context.Context, ids []int64) (map[int64]bool, error)
}

// Opener decrypts a stored template; *keyring.Keyring implements it.
type Opener interface {
	Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error)
}

// Request is one search.
type Request struct {
	Actor   string // who searches (audited); required
	Purpose string // why; required
	Case    string // case reference; optional
	K       int    // results on the first page, 1..MaxK; every match is recorded
	// Threshold, when set, is the least cosine similarity of a result, in
	// [-1, 1]. Nil means the operating point. A threshold at or above the
	// operating point narrows the search to matches at least that similar;
	// one below it is an exploratory search, allowed only when MayExplore
	// is true and Reason states why (ErrBelowOperatingPoint otherwise):
	// it also returns the faces at or above it that are not matches, as
	// weak results.
	Threshold  *float64
	Reason     string // why an exploratory search goes below the operating point
	MayExplore bool   // the caller's role allows exploratory searches
	Face       int    // which face of the probe, from 0 in face.ReadingOrder; -1: the best
	Probe      []byte // the encoded probe photo; never stored
	// Analysis, when set, is Probe's analysis, made by the caller to show
	// the photo's faces before the search (the console's detect step):
	// Probe is not analysed again. It must be the analysis of Probe by
	// the engine's analyzer; nil analyses Probe here.
	Analysis *face.Analysis
}

// Band names for the strength of a result.
const (
	// BandStrong: a match at which fewer than a tenth of the target FPIR's
	// strangers are expected in a gallery of this size.
	BandStrong = "strong"
	// BandProbable: a match.
	BandProbable = "probable"
	// BandWeak: not a match; only exploratory searches return such
	// results.
	BandWeak = "weak"
)

// Hit is one stored face that matches the probe.
type Hit struct {
	FaceID     int64
	ImageID    int64
	SourceID   int64
	Locator    string // the image's path inside its source
	LegalBasis store.LegalBasis
	Controller string
	Similarity float64  // exact cosine similarity with the probe
	Box        face.Box // in the stored image's pixels
	TimeCode   *time.Duration
	Band       string // BandStrong, BandProbable or BandWeak
	// Strangers is the number of faces (or, for a match carried by its
	// look-alikes, groups of faces) of other people expected to reach this
	// result's evidence in a gallery of this size.
	Strangers float64
	// Support counts the other candidates that look like the same person
	// as this one.
	Support int
}

// Result is the answer to a search.
type Result struct {
	// Hits are the first K results, best first; empty means no match.
	// Every result is in the search's record (store.Search.Results) and
	// in All.
	Hits      []Hit
	Above     int     // results found (all recorded unless Truncated)
	Truncated bool    // more than MaxResults results were found
	Threshold float64 // the least similarity of a result
	// OperatingPoint is the least similarity of a match on its own
	// evidence; GroupPoint the least second-best similarity of a group of
	// look-alike candidates all of which match.
	OperatingPoint float64
	GroupPoint     float64
	FPIR           float64 // the target FPIR of the operating points
	Gallery        int     // faces in the gallery
	Exploratory    bool    // the threshold is below the operating point
	Reason         string  // why, for an exploratory search
	SearchID       int64
	AuditID        int64
	ProbeFaces     int             // faces found in the probe
	ProbeFace      face.Face       // the face searched (its template zeroed)
	Probe          store.ProbeFace // which face was searched, and why
	// Stale lists ids the index returned that the store no longer holds,
	// or holds in quarantine (see Quarantine): the caller should delete
	// them from the index.
	Stale []int64
	// All is every result (at most MaxResults), best first; Hits is its
	// first K.
	All []Hit
}

// Returned lists the ids of every result, in rank order.
func (r Result) Returned() []int64 {
	ids := make([]int64, len(r.All))
	for i, h := range r.All {
		ids[i] = h.FaceID
	}
	return ids
}

// Search runs req. The probe's faces are found first; a probe without a
// face is refused with face.ErrNoFace, and is audited like any search.
// Then the operating points are set for the gallery's size (Decider,
// FPIR), every stored face that matches is found (up to MaxResults),
// rated (band, expected strangers, support) and recorded with the search;
// Result.Hits is the first K of them.
func (e *Engine) Search(ctx context.Context, req Request) (Result, error) {
	switch {
	case strings.TrimSpace(req.Purpose) == "":
		return Result{}, ErrNoPurpose
	case strings.TrimSpace(req.Actor) == "":
		return Result{}, fmt.Errorf("%w: actor required", ErrBadRequest)
	case req.K < 1 || req.K > MaxK:
		return Result{}, fmt.Errorf("%w: k = %d, want 1..%d", ErrBadRequest, req.K, MaxK)
	case req.Threshold != nil && (math.IsNaN(*req.Threshold) || *req.Threshold < -1 || *req.Threshold > 1):
		return Result{}, fmt.Errorf("%w: threshold %v, want a cosine in [-1, 1]", ErrBadRequest, *req.Threshold)
	case len(req.Probe) == 0:
		return Result{}, fmt.Errorf("%w: empty probe", ErrBadRequest)
	}
	if err := e.Decider.Check(); err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	fpir := e.FPIR
	if fpir == 0 {
		fpir = DefaultFPIR
	}
	gallery, err := e.Index.Len(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("index: %w", err)
	}
	res := Result{FPIR: fpir, Gallery: gallery}
	pts := e.Decider.Points(res.Gallery, fpir)
	res.OperatingPoint, res.GroupPoint = pts.Single, pts.Group
	res.Threshold = res.OperatingPoint
	if req.Threshold != nil {
		res.Threshold = *req.Threshold
	}
	reason := strings.TrimSpace(req.Reason)
	if res.Threshold < res.OperatingPoint {
		switch {
		case !req.MayExplore:
			return Result{}, fmt.Errorf("%w: %.4f asked, the operating point for %d faces at FPIR %g is %.4f; "+
				"only an examiner may run an exploratory search below it, with a stated reason",
				ErrBelowOperatingPoint, res.Threshold, res.Gallery, fpir, res.OperatingPoint)
		case reason == "":
			return Result{}, fmt.Errorf("%w: %.4f asked, under the operating point %.4f: state the reason of this exploratory search",
				ErrBelowOperatingPoint, res.Threshold, res.OperatingPoint)
		case len(reason) > 500:
			return Result{}, fmt.Errorf("%w: the reason is longer than 500 bytes", ErrBadRequest)
		}
		res.Exploratory, res.Reason = true, reason
	} else {
		reason = "" // a reason only matters below the operating point
	}
	rec := store.Search{Actor: req.Actor, Purpose: req.Purpose, CaseRef: req.Case,
		ProbeSHA256: sha256.Sum256(req.Probe), K: req.K, Threshold: res.Threshold,
		OperatingPoint: res.OperatingPoint, GroupPoint: res.GroupPoint, FPIR: fpir, Gallery: res.Gallery, Exploratory: reason}
	an := req.Analysis
	if an == nil {
		a, err := e.An.Analyze(ctx, req.Probe)
		if err != nil {
			return Result{}, fmt.Errorf("probe: %w", err)
		}
		an = &a
	}
	faces := slices.Clone(an.Faces)
	face.ReadingOrder(faces) // as a person numbers them
	res.ProbeFaces = len(faces)
	i := req.Face
	switch {
	case len(faces) == 0:
		res.SearchID, res.AuditID, err = e.Store.RecordSearch(ctx, rec)
		if err != nil {
			return Result{}, err
		}
		return res, fmt.Errorf("probe: %w", face.ErrNoFace)
	case i >= len(faces):
		return Result{}, fmt.Errorf("%w: face %d asked, the probe has %d (numbered from 0)", ErrBadRequest, i, len(faces))
	}
	chosen := "asked"
	if i < 0 {
		i, chosen = BestFace(faces), "best quality"
	}
	f := faces[i]
	res.Probe = store.ProbeFace{Index: i, Faces: len(faces), Quality: f.Quality,
		Box: [4]float64{f.Box.X, f.Box.Y, f.Box.W, f.Box.H}, Chosen: chosen}
	if f.Quality < LowQuality {
		res.Probe.Warning = fmt.Sprintf("low-quality face (%.2f, under %.2f): small, blurred or turned away; "+
			"such faces are missed twice as often, and a better photo of the person is worth searching", f.Quality, LowQuality)
	}
	rec.ProbeFace = &res.Probe
	res.ProbeFace = f
	res.ProbeFace.Embedding = nil

	res.All, res.Above, res.Stale, err = e.match(ctx, req.Actor, f.Embedding, res.Threshold, fpir, res.Gallery, pts)
	if err != nil {
		return Result{}, err
	}
	res.Truncated = res.Above > len(res.All)
	res.Hits = res.All[:min(req.K, len(res.All))]
	rec.Above = res.Above
	rec.Returned = res.Returned()
	rec.Results = make([]store.SearchResult, len(res.All))
	for j, h := range res.All {
		rec.Results[j] = store.SearchResult{FaceID: h.FaceID, Similarity: h.Similarity, Band: h.Band,
			Strangers: h.Strangers, Support: h.Support}
	}
	if e.SealProbe != nil {
		if rec.ProbeCrop, err = e.SealProbe(ctx, req.Probe, f); err != nil {
			return Result{}, fmt.Errorf("probe crop: %w", err)
		}
	}
	res.SearchID, res.AuditID, err = e.Store.RecordSearch(ctx, rec)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// BestFace returns the index of the face of best quality, the larger on a
// tie (faces of quality 0 are ranked by size), or -1 if faces is empty.
func BestFace(faces []face.Face) int {
	best := -1
	for i, f := range faces {
		if best < 0 || f.Quality > faces[best].Quality ||
			(f.Quality == faces[best].Quality && f.Box.Area() > faces[best].Box.Area()) {
			best = i
		}
	}
	return best
}

// candidate is a stored face compared with the probe.
type candidate struct {
	hit      Hit
	quality  float64
	template []float32
}

// match finds the candidates of q (every stored face at or above the
// floor, or the threshold if lower), decides which match, and returns the
// results at or above threshold: the matches, and in an exploratory search
// the other candidates as weak results; at most MaxResults of them, best
// first, with their count. The index is asked for more candidates until it
// returns fewer than asked, so nothing is cut at any k.
func (e *Engine) match(ctx context.Context, actor string, q []float32, threshold, fpir float64, gallery int, pts openset.Points) (hits []Hit, above int, stale []int64, err error) {
	margin := e.Margin
	if margin == 0 {
		margin = 0.05
	}
	least := math.Min(pts.Floor, threshold)
	var found []vindex.Hit
	for k := 256; ; k *= 4 {
		found, err = e.Index.Search(ctx, q, k, float32(least-margin))
		if err != nil {
			return nil, 0, nil, fmt.Errorf("index: %w", err)
		}
		if len(found) < k || k >= 4*MaxResults {
			break
		}
	}
	ids := make([]int64, len(found))
	for i, c := range found {
		ids[i] = c.ID
	}
	refs, err := e.Store.FaceRefs(ctx, ids)
	if err != nil {
		return nil, 0, nil, err
	}
	qr, _ := e.Store.(Quarantine)
	held := map[int64]bool{}
	if qr != nil {
		if held, err = qr.QuarantinedAmong(ctx, ids); err != nil {
			return nil, 0, nil, err
		}
	}
	var hide func([]float32) (bool, error)
	if e.Hide != nil {
		if hide, err = e.Hide(ctx); err != nil {
			return nil, 0, nil, fmt.Errorf("hide check: %w", err)
		}
	}
	var cands []candidate
	for _, c := range found {
		ref, ok := refs[c.ID]
		if !ok || held[c.ID] {
			stale = append(stale, c.ID)
			continue
		}
		if ref.ModelID != e.ModelID {
			continue // another embedder's template: not comparable
		}
		t, err := e.Keys.Open(ctx, ref.SourceID, ref.ID, ref.ModelID, ref.Template)
		if errors.Is(err, keyring.ErrShredded) {
			stale = append(stale, c.ID) // its source was erased: unreadable, never shown
			continue
		}
		if qr != nil && errors.Is(err, keyring.ErrBadTemplate) {
			// One damaged record never stops a search: it is put in
			// quarantine and left out, neither shown nor counted.
			if _, err := qr.QuarantineFace(ctx, ref.ID, store.FoundBySearch, keyring.TemplateFault(err), actor); err != nil {
				return nil, 0, nil, err
			}
			stale = append(stale, c.ID)
			continue
		}
		if err != nil {
			return nil, 0, nil, fmt.Errorf("face %d: %w", ref.ID, err)
		}
		sim, err := face.Embedding(q).Cosine(t)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("face %d: %w", ref.ID, err)
		}
		if sim < least {
			continue
		}
		if hide != nil {
			hidden, err := hide(t)
			if err != nil {
				return nil, 0, nil, fmt.Errorf("face %d: hide check: %w", ref.ID, err)
			}
			if hidden {
				continue
			}
		}
		cands = append(cands, candidate{quality: ref.Quality, template: t,
			hit: Hit{FaceID: ref.ID, ImageID: ref.ImageID, SourceID: ref.SourceID, Locator: ref.Locator,
				LegalBasis: ref.LegalBasis, Controller: ref.Controller, Similarity: sim, Box: ref.Box, TimeCode: ref.TimeCode}})
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.hit.Similarity, a.hit.Similarity), cmp.Compare(a.hit.FaceID, b.hit.FaceID))
	})
	oc := make([]openset.Candidate, len(cands))
	for i, c := range cands {
		oc[i] = openset.Candidate{Similarity: c.hit.Similarity, Quality: c.quality, Template: c.template}
	}
	_, verdicts := e.Decider.Decide(oc, gallery, fpir)
	for i, v := range verdicts {
		c := &cands[i]
		c.hit.Strangers, c.hit.Support = v.Strangers, v.Support
		switch {
		case !v.Match:
			c.hit.Band = BandWeak
		case v.Strangers <= fpir/10:
			c.hit.Band = BandStrong
		default:
			c.hit.Band = BandProbable
		}
		switch {
		case threshold > pts.Single: // narrowed: matches at least that similar
			if v.Match && c.hit.Similarity >= threshold {
				hits = append(hits, c.hit)
			}
		case v.Match, c.hit.Similarity >= threshold && threshold < pts.Single: // every match; weak ones when exploring
			hits = append(hits, c.hit)
		}
	}
	above = len(hits)
	if len(hits) > MaxResults {
		hits = hits[:MaxResults]
	}
	return hits, above, stale, nil
}
