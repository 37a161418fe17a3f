// Package search finds the faces of a person from one photo: probe image →
// its face → template → vector index → exact re-scoring of the candidates
// with the stored templates → results above the threshold, each traced to
// its image, its source and the source's legal basis.
//
// Every search states its purpose and is recorded, with its audit entry, in
// the same transaction (who, when, purpose, case, the probe's SHA-256, k,
// threshold, returned face ids); the probe image itself is never stored. A
// search without a purpose is refused before anything is computed. "No
// match" is an answer: when no stored face reaches the threshold the result
// is empty, never the nearest stranger.
//
// The index answers fast and may be approximate or stale; the store is the
// truth. Every candidate is looked up in the store (a face deleted since the
// index was saved is dropped and reported in Result.Stale) and re-scored
// with its decrypted template, so that similarities are exact and the
// threshold is applied to them. Then the faces of people who objected or
// whose processing is restricted are dropped (Engine.Hide), before anything
// is returned or recorded.
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

// MaxResults is the most results one search records: a search whose
// threshold more faces reach says so (Result.Truncated) and counts them
// all (Result.Above).
const MaxResults = 10000

// DefaultFPIR is the target false-positive identification rate when the
// policy sets none: the share of searches for a person who is not held
// that return anything at the operating point.
const DefaultFPIR = 0.01

// LowQuality is the probe face quality under which a search warns that its
// results are less reliable.
const LowQuality = 0.3

// Calibration turns similarities into open-set evidence for a gallery of a
// given size; *openset.Calibration implements it.
type Calibration interface {
	// OperatingPoint returns the least similarity at which a search for a
	// person who is not held returns anything, among n stored faces, in at
	// most a share fpir of searches.
	OperatingPoint(n int, fpir float64) float64
	// Strangers returns the number of faces of other people expected at
	// similarity s or above among n stored faces.
	Strangers(s float64, n int) float64
}

// Store resolves candidates and records searches; *store.DB implements it.
type Store interface {
	FaceRefs(ctx context.Context, ids []int64) (map[int64]store.FaceRef, error)
	RecordSearch(ctx context.Context, s store.Search) (searchID, auditID int64, err error)
}

// Opener decrypts a stored template; *keyring.Keyring implements it.
type Opener interface {
	Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error)
}

// Engine runs searches.
type Engine struct {
	An      face.Analyzer
	Store   Store
	Keys    Opener
	Index   vindex.Index
	ModelID string // the embedder of the probe; only faces of this model are compared
	// Margin widens the index query below the threshold (approximate
	// scores); candidates are then re-scored exactly. Default 0.05.
	Margin float64
	// Hide, when set, is asked about every candidate that reaches the
	// threshold, with its decrypted template: a candidate for which it
	// returns true (its person objected or is restricted) is dropped, and
	// appears neither in the results nor in the search's audit record.
	// An error fails the search. Nil hides nothing. Hidden candidates
	// take places in the index query, so a search may return fewer than k
	// hits when many of the best candidates are hidden.
	Hide func(ctx context.Context, t []float32) (bool, error)
	// Calibration sets the operating point and rates the results; required.
	Calibration Calibration
	// FPIR is the policy's target false-positive identification rate; 0
	// means DefaultFPIR.
	FPIR float64
	// SealProbe, when set, returns the searched face's crop of the probe
	// photo, sealed, to be kept with the search record for the verifiers.
	// Nil keeps no crop.
	SealProbe func(ctx context.Context, probe []byte, f face.Face) ([]byte, error)
}

// Request is one search.
type Request struct {
	Actor   string // who searches (audited); required
	Purpose string // why; required
	Case    string // case reference; optional
	K       int    // results on the first page, 1..MaxK; every face above the threshold is recorded
	// Threshold, when set, is the least cosine similarity of a match, in
	// [-1, 1]. Nil means the operating point. A threshold above the
	// operating point narrows the search; one below it is an exploratory
	// search, allowed only when MayExplore is true and Reason states why
	// (ErrBelowOperatingPoint otherwise).
	Threshold  *float64
	Reason     string // why an exploratory search goes below the operating point
	MayExplore bool   // the caller's role allows exploratory searches
	Face       int    // which face of the probe (as numbered by the analyzer); -1: the best
	Probe      []byte // the encoded probe photo; never stored
}

// Band names for the strength of a result.
const (
	// BandStrong: fewer than a tenth of the target FPIR's strangers are
	// expected at this score in a gallery of this size.
	BandStrong = "strong"
	// BandProbable: at or above the operating point.
	BandProbable = "probable"
	// BandWeak: below the operating point; only exploratory searches
	// return such results.
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
	// Strangers is the number of faces of other people expected at this
	// similarity or above in a gallery of this size.
	Strangers float64
	// Support counts the other returned faces that look like the same
	// person as this one.
	Support int
}

// Result is the answer to a search.
type Result struct {
	// Hits are the first K results, best first; empty means no match.
	// Every result is in the search's record (store.Search.Results),
	// where the other pages are read.
	Hits           []Hit
	Above          int     // faces at or above Threshold (all recorded unless Truncated)
	Truncated      bool    // more than MaxResults faces reached the threshold
	Threshold      float64 // the threshold applied
	OperatingPoint float64 // the calibrated operating point for this gallery
	FPIR           float64 // the target FPIR of the operating point
	Gallery        int     // faces in the gallery
	Exploratory    bool    // the threshold is below the operating point
	SearchID       int64
	AuditID        int64
	ProbeFaces     int             // faces found in the probe
	ProbeFace      face.Face       // the face searched (its template zeroed)
	Probe          store.ProbeFace // which face was searched, and why
	// Stale lists ids the index returned that the store no longer holds:
	// the caller should delete them from the index.
	Stale []int64

	// All is every result at or above Threshold (at most MaxResults), best
	// first; Hits is its first K.
	All []Hit
}

// Returned lists the ids of every result, in rank order; Hits is the
// first page of them.
func (r Result) Returned() []int64 {
	ids := make([]int64, len(r.All))
	for i, h := range r.All {
		ids[i] = h.FaceID
	}
	return ids
}

// Search runs req. The probe's faces are found first; a probe without a
// face is refused with face.ErrNoFace, and is audited like any search.
// Then the operating point is set for the gallery's size (Calibration,
// FPIR), every stored face at or above the threshold is found (up to
// MaxResults), rated (band, expected strangers, support) and recorded with
// the search; Result.Hits is the first K of them.
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
	case e.Calibration == nil:
		return Result{}, errors.New("search: no calibration for this model")
	}
	fpir := e.FPIR
	if fpir == 0 {
		fpir = DefaultFPIR
	}
	res := Result{FPIR: fpir, Gallery: e.Index.Len()}
	res.OperatingPoint = e.Calibration.OperatingPoint(res.Gallery, fpir)
	res.Threshold = res.OperatingPoint
	if req.Threshold != nil {
		res.Threshold = *req.Threshold
	}
	reason := strings.TrimSpace(req.Reason)
	if res.Threshold < res.OperatingPoint {
		switch {
		case !req.MayExplore:
			return Result{}, fmt.Errorf("%w: %.4f asked, the operating point for %d faces at FPIR %g is %.4f; "+
				"only a user allowed to run exploratory searches may go lower, with a stated reason",
				ErrBelowOperatingPoint, res.Threshold, res.Gallery, fpir, res.OperatingPoint)
		case reason == "":
			return Result{}, fmt.Errorf("%w: %.4f asked, under the operating point %.4f: state the reason of this exploratory search",
				ErrBelowOperatingPoint, res.Threshold, res.OperatingPoint)
		case len(reason) > 500:
			return Result{}, fmt.Errorf("%w: the reason is longer than 500 bytes", ErrBadRequest)
		}
		res.Exploratory = true
	} else {
		reason = "" // a reason only matters below the operating point
	}
	rec := store.Search{Actor: req.Actor, Purpose: req.Purpose, CaseRef: req.Case,
		ProbeSHA256: sha256.Sum256(req.Probe), K: req.K, Threshold: res.Threshold,
		OperatingPoint: res.OperatingPoint, FPIR: fpir, Gallery: res.Gallery, Exploratory: reason}
	an, err := e.An.Analyze(ctx, req.Probe)
	if err != nil {
		return Result{}, fmt.Errorf("probe: %w", err)
	}
	faces := an.Faces
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
		res.Probe.Warning = fmt.Sprintf("low-quality face (%.2f < %.2f): small, blurred or turned away; "+
			"its results are less reliable, and a better photo of the person is worth searching", f.Quality, LowQuality)
	}
	rec.ProbeFace = &res.Probe
	q := f.Embedding
	res.ProbeFace = f
	res.ProbeFace.Embedding = nil

	res.All, res.Above, res.Stale, err = e.match(ctx, q, res.Threshold)
	if err != nil {
		return Result{}, err
	}
	res.Truncated = res.Above > len(res.All)
	e.rate(res.All, res.Gallery, fpir, res.OperatingPoint)
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

// rate gives every hit its band, expected strangers and support.
func (e *Engine) rate(hits []Hit, gallery int, fpir, op float64) {
	for i := range hits {
		h := &hits[i]
		h.Strangers = e.Calibration.Strangers(h.Similarity, gallery)
		switch {
		case h.Similarity < op:
			h.Band = BandWeak
		case h.Strangers <= fpir/10:
			h.Band = BandStrong
		default:
			h.Band = BandProbable
		}
	}
}

// match finds every stored face whose exact similarity to q reaches
// threshold, up to MaxResults of them (best first), and counts them all.
// The index is asked for more candidates until it returns fewer than
// asked, so the count is not cut at any k.
func (e *Engine) match(ctx context.Context, q []float32, threshold float64) (hits []Hit, above int, stale []int64, err error) {
	margin := e.Margin
	if margin == 0 {
		margin = 0.05
	}
	var cand []vindex.Hit
	for k := 256; ; k *= 4 {
		cand, err = e.Index.Search(ctx, q, k, float32(threshold-margin), nil)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("index: %w", err)
		}
		if len(cand) < k || k >= 4*MaxResults {
			break
		}
	}
	ids := make([]int64, len(cand))
	for i, c := range cand {
		ids[i] = c.ID
	}
	refs, err := e.Store.FaceRefs(ctx, ids)
	if err != nil {
		return nil, 0, nil, err
	}
	for _, c := range cand {
		ref, ok := refs[c.ID]
		if !ok {
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
		if err != nil {
			return nil, 0, nil, fmt.Errorf("face %d: %w", ref.ID, err)
		}
		sim, err := face.Embedding(q).Cosine(t)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("face %d: %w", ref.ID, err)
		}
		if sim < threshold {
			continue
		}
		if e.Hide != nil {
			hide, err := e.Hide(ctx, t)
			if err != nil {
				return nil, 0, nil, fmt.Errorf("face %d: hide check: %w", ref.ID, err)
			}
			if hide {
				continue
			}
		}
		hits = append(hits, Hit{FaceID: ref.ID, ImageID: ref.ImageID, SourceID: ref.SourceID, Locator: ref.Locator,
			LegalBasis: ref.LegalBasis, Controller: ref.Controller, Similarity: sim, Box: ref.Box, TimeCode: ref.TimeCode})
	}
	slices.SortFunc(hits, func(a, b Hit) int {
		return cmp.Or(cmp.Compare(b.Similarity, a.Similarity), cmp.Compare(a.FaceID, b.FaceID))
	})
	above = len(hits)
	if len(hits) > MaxResults {
		hits = hits[:MaxResults]
	}
	return hits, above, stale, nil
}
