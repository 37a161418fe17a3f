// Package rights carries out data-subject requests keyed by face (GDPR
// Arts. 15, 17, 18, 21): a request is registered with one or more selfies
// and a contact; processing checks the selfies against each other, finds
// every stored face of the person, and answers by kind — an access package,
// an erasure with its proof, a suppression entry that keeps the person out
// of every later ingest and search, or a restriction that hides them from
// search until lifted.
//
// Selfies are never kept as images: their templates go to the vault (kind
// selfie), sealed, and are deleted when the request closes. If the identity
// check fails the answer is the same whether or not the person is held: the
// request is refused with a neutral reason and nothing about the store is
// revealed. There is no limit on how many requests a person makes or on
// how old the data is: the match runs over every stored face, exhaustively
// (not through the approximate index), so that no face of the person is
// missed.
package rights

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/dsr/access"
	"gabarit/internal/face"
	"gabarit/internal/keyring"
	"gabarit/internal/store"
	"gabarit/internal/vault"
	"gabarit/internal/vindex"
)

// Store is what requests read and change; *store.DB implements it.
type Store interface {
	CreateRightsRequest(ctx context.Context, r dsr.Request, actor string) (int64, error)
	RightsRequest(ctx context.Context, id int64) (dsr.Request, error)
	UpdateRightsRequest(ctx context.Context, id int64, actor string, fn func(r *dsr.Request, now time.Time) error) (dsr.Request, error)
	AllTemplates(ctx context.Context, fn func(faceID, sourceID int64, modelID string, template []byte) error) error
	FaceRefs(ctx context.Context, ids []int64) (map[int64]store.FaceRef, error)
	Faces(ctx context.Context, imageID int64) ([]store.Face, error)
	Image(ctx context.Context, id int64) (store.Image, error)
	Source(ctx context.Context, id int64) (store.Source, error)
	SearchesReturning(ctx context.Context, faceIDs []int64) ([]store.Search, error)
	Confirmations(ctx context.Context, searchID int64) (map[int64]store.Confirmation, error)
	EraseFaces(ctx context.Context, faceIDs []int64, actor, object string) (faces, images []int64, err error)
}

// Vault keeps selfie, objection and restriction templates; *vault.Vault
// implements it.
type Vault interface {
	Add(ctx context.Context, kind vault.Kind, requestID int64, modelID string, templates [][]float32) ([]int64, error)
	Templates(ctx context.Context, requestID int64, kind vault.Kind) ([][]float32, error)
	RemoveRequest(ctx context.Context, requestID int64, kind vault.Kind) (int, error)
}

// Opener decrypts stored templates; *keyring.Keyring implements it.
type Opener interface {
	Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error)
}

// Engine registers and processes requests.
type Engine struct {
	An      face.Analyzer
	Store   Store
	Keys    Opener
	Vault   Vault
	Index   vindex.Index // erasures delete from it
	ModelID string
	// Match is the least similarity between a selfie and a stored face for
	// the face to be the person's (the pack's same-person threshold).
	Match float64
	// SelfieMatch is the least similarity between any two selfies of a
	// request: stricter than Match, since a request hands over data.
	SelfieMatch float64
	// Image reads an image's bytes from its source, for access packages.
	Image func(ctx context.Context, src store.Source, locator string) ([]byte, error)
	// Controller, DPO and Authority are printed in access packages.
	Controller, DPO, Authority string
	// OutDir is where access packages are written.
	OutDir string
}

// ErrNotOpen refuses to process a closed request.
var ErrNotOpen = errors.New("request is closed")

// RefusedIdentity is the reason given when the identity check fails. It is
// the same whether or not the person is in the store.
const RefusedIdentity = "identity check failed: the selfies do not show one and the same person clearly enough; send new selfies with a new request"

// Register records a request of kind with the templates of the selfies'
// largest faces (the photos themselves are not kept) and returns it. A
// selfie without a face is refused before anything is registered (an
// error wrapping face.ErrNoFace): that says nothing about the store.
func (e *Engine) Register(ctx context.Context, kind dsr.Kind, selfies [][]byte, contact, actor string) (dsr.Request, error) {
	if len(selfies) == 0 {
		return dsr.Request{}, fmt.Errorf("%w: at least one selfie", dsr.ErrInvalid)
	}
	r, err := dsr.NewRequest(kind, contact, time.Now(), "")
	if err != nil {
		return dsr.Request{}, err
	}
	var templates [][]float32
	for i, b := range selfies {
		an, err := e.An.Analyze(ctx, b)
		if err != nil {
			return dsr.Request{}, fmt.Errorf("selfie %d: %w", i+1, err)
		}
		j := face.Largest(an.Faces)
		if j < 0 {
			return dsr.Request{}, fmt.Errorf("selfie %d: %w: nothing registered; every selfie must show the person's face", i+1, face.ErrNoFace)
		}
		templates = append(templates, an.Faces[j].Embedding)
	}
	id, err := e.Store.CreateRightsRequest(ctx, r, actor)
	if err != nil {
		return dsr.Request{}, err
	}
	if _, err := e.Vault.Add(ctx, vault.Selfie, id, e.ModelID, templates); err != nil {
		return dsr.Request{}, fmt.Errorf("keep the selfies' templates: %w", err)
	}
	return e.Store.RightsRequest(ctx, id)
}

// Outcome is what processing a request did.
type Outcome struct {
	Request      dsr.Request
	MatchedFaces int
	Package      string // access: the package's path
	Erased       int    // erasure, objection: faces erased
	ErasedImages int    // images erased with them (left without any face)
	Proof        *Proof // erasure, objection: the check made after erasing
	Recipients   []int64
}

// Proof is the check that follows an erasure: a search with the selfies at
// threshold 0 (every face of the store ranked) returns none of the erased
// faces, and the store holds none of them.
type Proof struct {
	Searched     int  `json:"searched_at_threshold_0"` // hits examined
	ErasedInHits int  `json:"erased_faces_returned"`   // must be 0
	ErasedStored int  `json:"erased_faces_stored"`     // must be 0
	OK           bool `json:"ok"`
}

// Process verifies the request's identity, finds the person's faces and
// carries out the request. It may be run again on a request that an
// earlier run left verified or in progress.
func (e *Engine) Process(ctx context.Context, id int64, actor string) (Outcome, error) {
	r, err := e.Store.RightsRequest(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	if r.State.Final() {
		return Outcome{Request: r}, fmt.Errorf("request %d is %s: %w", id, r.State, ErrNotOpen)
	}
	selfies, err := e.Vault.Templates(ctx, id, vault.Selfie)
	if err != nil {
		return Outcome{}, err
	}
	if current(r) == dsr.Received {
		if !e.sameSelfies(selfies) {
			r, err = e.advance(ctx, id, actor, dsr.Refused, RefusedIdentity)
			if err != nil {
				return Outcome{}, err
			}
			return Outcome{Request: r}, e.closeRequest(ctx, id)
		}
		if r, err = e.advance(ctx, id, actor, dsr.Verified, ""); err != nil {
			return Outcome{}, err
		}
	}
	matches, err := e.matches(ctx, selfies, e.Match)
	if err != nil {
		return Outcome{}, err
	}
	if current(r) == dsr.Verified {
		r, err = e.Store.UpdateRightsRequest(ctx, id, actor, func(r *dsr.Request, now time.Time) error {
			r.Matches = matches
			return r.Advance(now, dsr.InProgress, "")
		})
		if err != nil {
			return Outcome{}, err
		}
	}
	out := Outcome{MatchedFaces: len(matches)}
	var result any
	switch r.Kind {
	case dsr.Access:
		out.Package, result, err = e.access(ctx, r, matches)
	case dsr.Erasure:
		result, err = e.erase(ctx, r, actor, selfies, matches, &out)
	case dsr.Objection:
		// Never collect again, then stop processing what is held.
		if _, err = e.Vault.Add(ctx, vault.Objection, id, e.ModelID, selfies); err == nil {
			result, err = e.erase(ctx, r, actor, selfies, matches, &out)
		}
	case dsr.Restriction:
		if _, err = e.Vault.Add(ctx, vault.Restriction, id, e.ModelID, selfies); err == nil {
			result = map[string]any{"restricted_faces": len(matches), "hidden_from_search": true}
		}
	}
	if err != nil {
		return Outcome{}, err
	}
	js, err := json.Marshal(result)
	if err != nil {
		return Outcome{}, err
	}
	r, err = e.Store.UpdateRightsRequest(ctx, id, actor, func(r *dsr.Request, now time.Time) error {
		r.Matches = matches
		r.Result = js
		return r.Advance(now, dsr.Completed, "")
	})
	if err != nil {
		return Outcome{}, err
	}
	out.Request = r
	return out, e.closeRequest(ctx, id)
}

// current is the state a request is in for processing: while extended,
// the state it was extended in.
func current(r dsr.Request) dsr.State {
	if r.State == dsr.Extended {
		return r.ExtendedFrom
	}
	return r.State
}

func (e *Engine) advance(ctx context.Context, id int64, actor string, to dsr.State, reason string) (dsr.Request, error) {
	return e.Store.UpdateRightsRequest(ctx, id, actor, func(r *dsr.Request, now time.Time) error {
		return r.Advance(now, to, reason)
	})
}

// closeRequest deletes the selfie templates of a closed request.
func (e *Engine) closeRequest(ctx context.Context, id int64) error {
	_, err := e.Vault.RemoveRequest(ctx, id, vault.Selfie)
	return err
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

// matches returns, in id order, every stored face of the model whose
// similarity with any selfie is at least threshold. It decrypts and compares
// every template: a rights request must not miss a face through an
// approximate index. Faces of crypto-shredded sources are unreadable and
// skipped (they are already erased).
func (e *Engine) matches(ctx context.Context, selfies [][]float32, threshold float64) ([]int64, error) {
	out := []int64{}
	err := e.Store.AllTemplates(ctx, func(faceID, sourceID int64, modelID string, blob []byte) error {
		if modelID != e.ModelID {
			return nil
		}
		t, err := e.Keys.Open(ctx, sourceID, faceID, modelID, blob)
		if errors.Is(err, keyring.ErrShredded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("face %d: %w", faceID, err)
		}
		for _, s := range selfies {
			if c, err := face.Embedding(s).Cosine(t); err == nil && c >= threshold {
				out = append(out, faceID)
				break
			}
		}
		return nil
	})
	return out, err
}

// erase erases the matched faces from the store and the index, then proves
// it with a search at threshold 0.
func (e *Engine) erase(ctx context.Context, r dsr.Request, actor string, selfies [][]float32, matches []int64, out *Outcome) (any, error) {
	recipients, err := e.Store.SearchesReturning(ctx, matches)
	if err != nil {
		return nil, err
	}
	faces, images, err := e.Store.EraseFaces(ctx, matches, actor, fmt.Sprintf("rights/%d", r.ID))
	if err != nil {
		return nil, err
	}
	if len(faces) > 0 {
		if err := e.Index.Delete(context.WithoutCancel(ctx), faces); err != nil {
			return nil, fmt.Errorf("delete erased faces from the index: %w", err)
		}
	}
	out.Erased, out.ErasedImages = len(faces), len(images)
	erased := map[int64]bool{}
	for _, id := range faces {
		erased[id] = true
	}
	// The erased faces were the selfies' nearest; a search for many more
	// than them shows none comes back. Asking for every face of a large
	// approximate index would walk the whole graph for nothing.
	k := min(e.Index.Len(), max(1000, 10*len(faces)))
	p := &Proof{}
	for _, s := range selfies {
		hits, err := e.Index.Search(ctx, s, max(1, k), 0, nil)
		if err != nil {
			return nil, err
		}
		p.Searched += len(hits)
		for _, h := range hits {
			if erased[h.ID] {
				p.ErasedInHits++
			}
		}
	}
	left, err := e.Store.FaceRefs(ctx, faces)
	if err != nil {
		return nil, err
	}
	p.ErasedStored = len(left)
	p.OK = p.ErasedInHits == 0 && p.ErasedStored == 0
	out.Proof = p
	for _, s := range recipients {
		out.Recipients = append(out.Recipients, s.ID)
	}
	return map[string]any{"erased": len(faces), "erased_images": len(images), "proof": p,
		"notify_searches": out.Recipients}, nil
}

// access writes the access package of the matched faces and returns its path.
func (e *Engine) access(ctx context.Context, r dsr.Request, matches []int64) (string, any, error) {
	refs, err := e.Store.FaceRefs(ctx, matches)
	if err != nil {
		return "", nil, err
	}
	p := access.Package{RequestID: r.ID, Received: r.Received, Due: r.Deadline(), Generated: time.Now(),
		Controller: e.Controller, DPO: e.DPO, Authority: e.Authority}
	sources := map[int64]store.Source{}
	for _, id := range matches {
		ref, ok := refs[id]
		if !ok {
			continue
		}
		src, ok := sources[ref.SourceID]
		if !ok {
			if src, err = e.Store.Source(ctx, ref.SourceID); err != nil {
				return "", nil, err
			}
			sources[ref.SourceID] = src
		}
		img, err := e.Store.Image(ctx, ref.ImageID)
		if err != nil {
			return "", nil, err
		}
		others, err := e.Store.Faces(ctx, ref.ImageID)
		if err != nil {
			return "", nil, err
		}
		f := access.Face{FaceID: id, ImageID: ref.ImageID, SourceID: ref.SourceID, Locator: ref.Locator,
			SourceKind: string(src.Kind), Controller: src.Controller, Purpose: src.Purpose, LegalBasis: string(src.LegalBasis),
			Art9: src.Art9Condition, Retention: src.Retention, Collected: img.IngestedAt, RetentionDeadline: img.RetentionDeadline,
			TimeCode: ref.TimeCode, Box: [4]float64{ref.Box.X, ref.Box.Y, ref.Box.W, ref.Box.H}}
		for _, o := range others {
			if o.ID != id {
				f.Others = append(f.Others, [4]float64{o.Box.X, o.Box.Y, o.Box.W, o.Box.H})
			}
		}
		if e.Image != nil {
			loc := ref.Locator
			f.Image = func() ([]byte, error) { return e.Image(ctx, src, loc) }
		}
		p.Faces = append(p.Faces, f)
	}
	searches, err := e.Store.SearchesReturning(ctx, matches)
	if err != nil {
		return "", nil, err
	}
	mine := map[int64]bool{}
	for _, id := range matches {
		mine[id] = true
	}
	for _, s := range searches {
		as := access.Search{ID: s.ID, At: s.At, Actor: s.Actor, Purpose: s.Purpose, Case: s.CaseRef}
		conf, err := e.Store.Confirmations(ctx, s.ID)
		if err != nil {
			return "", nil, err
		}
		for _, id := range s.Returned {
			if !mine[id] {
				continue
			}
			as.FaceIDs = append(as.FaceIDs, id)
			for _, v := range conf[id].Verifiers {
				if !slices.Contains(as.Confirmed, v) {
					as.Confirmed = append(as.Confirmed, v)
				}
			}
		}
		p.Searches = append(p.Searches, as)
	}

	var buf bytes.Buffer
	sum, err := access.Write(ctx, &buf, p)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(e.OutDir, fmt.Sprintf("rights-%d-access.zip", r.ID))
	if err := writeAtomic(path, buf.Bytes()); err != nil {
		return "", nil, err
	}
	digest := sha256.Sum256(buf.Bytes())
	return path, map[string]any{"package_sha256": fmt.Sprintf("%x", digest), "faces": sum.Faces, "images": sum.Images,
		"unreadable_images": sum.Unreadable, "searches": sum.Searches}, nil
}

// writeAtomic writes data to path (mode 0600) through a synced temporary file.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".package-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort; the error is the one to report
	}
	return err
}
