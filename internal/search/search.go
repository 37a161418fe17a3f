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
)

// MaxK is the most results one search may ask for.
const MaxK = 1000

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
}

// Request is one search.
type Request struct {
	Actor     string  // who searches (audited); required
	Purpose   string  // why; required
	Case      string  // case reference; optional
	K         int     // most results, 1..MaxK
	Threshold float64 // the least cosine similarity of a match, in [-1, 1]
	Face      int     // which face of the probe (as numbered by the analyzer); -1: the largest
	Probe     []byte  // the encoded probe photo; never stored
}

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
}

// Result is the answer to a search.
type Result struct {
	Hits       []Hit // best first; empty means no match
	SearchID   int64
	AuditID    int64
	ProbeFaces int       // faces found in the probe
	ProbeFace  face.Face // the face searched (its template zeroed)
	// Stale lists ids the index returned that the store no longer holds:
	// the caller should delete them from the index.
	Stale []int64
}

// Search runs req. The probe's faces are found first; a probe without a
// face is refused with face.ErrNoFace, and is audited like any search.
func (e *Engine) Search(ctx context.Context, req Request) (Result, error) {
	switch {
	case strings.TrimSpace(req.Purpose) == "":
		return Result{}, ErrNoPurpose
	case strings.TrimSpace(req.Actor) == "":
		return Result{}, fmt.Errorf("%w: actor required", ErrBadRequest)
	case req.K < 1 || req.K > MaxK:
		return Result{}, fmt.Errorf("%w: k = %d, want 1..%d", ErrBadRequest, req.K, MaxK)
	case math.IsNaN(req.Threshold) || req.Threshold < -1 || req.Threshold > 1:
		return Result{}, fmt.Errorf("%w: threshold %v, want a cosine in [-1, 1]", ErrBadRequest, req.Threshold)
	case len(req.Probe) == 0:
		return Result{}, fmt.Errorf("%w: empty probe", ErrBadRequest)
	}
	rec := store.Search{Actor: req.Actor, Purpose: req.Purpose, CaseRef: req.Case,
		ProbeSHA256: sha256.Sum256(req.Probe), K: req.K, Threshold: req.Threshold}
	an, err := e.An.Analyze(ctx, req.Probe)
	if err != nil {
		return Result{}, fmt.Errorf("probe: %w", err)
	}
	faces := an.Faces
	res := Result{ProbeFaces: len(faces)}
	i := req.Face
	switch {
	case len(faces) == 0:
		res.SearchID, res.AuditID, err = e.Store.RecordSearch(ctx, rec)
		if err != nil {
			return Result{}, err
		}
		return res, fmt.Errorf("probe: %w", face.ErrNoFace)
	case i < 0:
		i = face.Largest(faces)
	case i >= len(faces):
		return Result{}, fmt.Errorf("%w: face %d asked, the probe has %d (numbered from 0)", ErrBadRequest, i, len(faces))
	}
	q := faces[i].Embedding
	res.ProbeFace = faces[i]
	res.ProbeFace.Embedding = nil

	res.Hits, res.Stale, err = e.match(ctx, q, req.K, req.Threshold)
	if err != nil {
		return Result{}, err
	}
	rec.Returned = make([]int64, len(res.Hits))
	for j, h := range res.Hits {
		rec.Returned[j] = h.FaceID
	}
	res.SearchID, res.AuditID, err = e.Store.RecordSearch(ctx, rec)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// match queries the index, then keeps the candidates the store still holds
// whose exact similarity reaches threshold.
func (e *Engine) match(ctx context.Context, q []float32, k int, threshold float64) (hits []Hit, stale []int64, err error) {
	margin := e.Margin
	if margin == 0 {
		margin = 0.05
	}
	cand, err := e.Index.Search(ctx, q, max(2*k, k+20), float32(threshold-margin), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("index: %w", err)
	}
	ids := make([]int64, len(cand))
	for i, c := range cand {
		ids[i] = c.ID
	}
	refs, err := e.Store.FaceRefs(ctx, ids)
	if err != nil {
		return nil, nil, err
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
			return nil, nil, fmt.Errorf("face %d: %w", ref.ID, err)
		}
		sim, err := face.Embedding(q).Cosine(t)
		if err != nil {
			return nil, nil, fmt.Errorf("face %d: %w", ref.ID, err)
		}
		if sim < threshold {
			continue
		}
		if e.Hide != nil {
			hide, err := e.Hide(ctx, t)
			if err != nil {
				return nil, nil, fmt.Errorf("face %d: hide check: %w", ref.ID, err)
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
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits, stale, nil
}
