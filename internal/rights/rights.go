// Package rights carries out data-subject requests keyed by face (GDPR
// Arts. 15, 17, 18, 21). A request is registered with one or more selfies
// and a contact, then answered in three steps, so that nothing is erased,
// suppressed, restricted or disclosed about anyone else:
//
//  1. Find: the selfies are checked against each other, and every stored
//     face that may be the person's is found, exhaustively (not through the
//     approximate index): the candidate set. Each candidate is scored
//     against all the selfies together (their mean template: agreement
//     across selfies, not any one of them), with its band and the number
//     of strangers' faces expected at its score in a gallery of this size;
//     only candidates at the strict operating point are pre-selected.
//  2. Review: the DPO sees the selfies beside every candidate, deselects or
//     adds faces, and records how the requester's identity was established
//     (a method from the controller's list, with a note).
//  3. Act, on exactly the reviewed set: an access package, an erasure with
//     its proof, a suppression that keeps the person out of every later
//     ingest and search, or a restriction that hides them from search until
//     lifted. Which faces were acted on is kept in a record sealed for the
//     DPO; the audit log keeps counts.
//
// Selfies are never kept as images: their templates go to the vault (kind
// selfie), sealed, and the crops of their faces are kept sealed for the
// review; both are deleted when the request closes. If the selfies do not
// show one person the answer is the same whether or not the person is
// held: the request is refused with a neutral reason and nothing about the
// store is revealed. There is no limit on how many requests a person makes
// or on how old the data is.
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
	"strings"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/dsr/access"
	"gabarit/internal/face"
	"gabarit/internal/fsutil"
	"gabarit/internal/keyring"
	"gabarit/internal/openset"
	"gabarit/internal/rights/preselect"
	"gabarit/internal/store"
	"gabarit/internal/vault"
	"gabarit/internal/vindex"
)

// Store is what requests read and change; *store.DB implements it.
type Store interface {
	CreateRightsRequest(ctx context.Context, r dsr.Request, actor string) (int64, error)
	RightsRequest(ctx context.Context, id int64) (dsr.Request, error)
	UpdateRightsRequest(ctx context.Context, id int64, actor string, fn func(r *dsr.Request, now time.Time) error) (dsr.Request, error)
	CloseRightsRequest(ctx context.Context, id int64, actor string, rec *store.RightsRecord, fn func(r *dsr.Request, now time.Time) error) (dsr.Request, error)
	SaveRightsCandidates(ctx context.Context, id int64, actor string, rv store.RightsReview) error
	RightsReview(ctx context.Context, id int64) (store.RightsReview, error)
	ReviewRightsCandidates(ctx context.Context, id int64, actor string, selected []int64, added []store.RightsCandidate) (store.RightsReview, error)
	RecordRightsIdentity(ctx context.Context, id int64, actor, method, note string) (dsr.Request, error)
	RightsIdentity(ctx context.Context, id int64) (store.RightsIdentity, error)
	AddRightsSelfies(ctx context.Context, id int64, selfies []store.RightsSelfie) error
	RightsSelfies(ctx context.Context, id int64) ([]store.RightsSelfie, error)
	RightsRecordOf(ctx context.Context, id int64) (store.RightsRecord, error)
	PutRightsPackage(ctx context.Context, p store.RightsPackage) error
	RightsPackageOf(ctx context.Context, id int64) (store.RightsPackage, error)
	RecordRightsNotice(ctx context.Context, id, searchID int64, actor string) error
	AppendAudit(ctx context.Context, tx *store.Tx, e store.AuditEntry) (int64, error)
	AllTemplates(ctx context.Context, fn func(faceID, sourceID int64, modelID string, template []byte) error) error
	FaceCountUpTo(ctx context.Context, modelID string, maxID int64) (n, maxStored int64, err error)
	Face(ctx context.Context, id int64) (store.Face, error)
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
	Requests(ctx context.Context, kind vault.Kind) ([]int64, error)
}

// Keys decrypts stored templates and seals the request's own data (selfie
// crops, the record of what was done); *keyring.Keyring implements it.
type Keys interface {
	Open(ctx context.Context, sourceID, faceID int64, modelID string, blob []byte) ([]float32, error)
	SealBytes(purpose string, binding, plain []byte) ([]byte, error)
	OpenBytes(purpose string, binding, blob []byte) ([]byte, error)
}

// PurposeRightsRequest names the data key that seals what a rights request
// keeps: the crops of its selfies' faces and its record.
const PurposeRightsRequest = "rights request"

// StrictFPIR is the default target false-positive identification rate of
// the pre-selection: in a thousand requests from people who are not held,
// about one would have a stranger's face pre-selected. A search's default
// is ten times looser (1%): a rights request erases or discloses.
const StrictFPIR = 0.001

// MaxCandidates bounds a candidate set, the most similar first: the DPO
// reviews every candidate. Faces over the floor beyond it are counted.
const MaxCandidates = 1000

// Engine registers and answers requests.
type Engine struct {
	// Reserve, when set, runs a decode of a stored photo (for the access
	// package) within the process's memory budget.
	Reserve func(photo []byte, decode func() error) error
	An      face.Analyzer
	Store   Store
	Keys    Keys
	Vault   Vault
	Index   vindex.Index // erasures delete from it
	ModelID string
	// Decider holds the model's open-set calibration: the single-face tail
	// sets the strict operating point and the candidates' floor.
	Decider *openset.Decider
	// FPIR is the target FPIR of the pre-selection (StrictFPIR when 0).
	FPIR float64
	// Match is the least similarity of a face to a person's mean selfie
	// template for a suppression or restriction to keep it out of later
	// ingests and searches (the pack's same-person threshold).
	Match float64
	// SelfieMatch is the least similarity between any two selfies of a
	// request: stricter than Match, since a request hands over data.
	SelfieMatch float64
	// Workers is how many goroutines compare the stored faces with the
	// selfies (GOMAXPROCS when 0); see scan.
	Workers int
	// Crop cuts a selfie's face from its photo (a JPEG), for the review.
	Crop func(photo []byte, f face.Face) ([]byte, error)
	// Methods are how the DPO may establish a requester's identity.
	Methods []dsr.IdentityMethod
	// Image reads an image's bytes from its source, for access packages.
	Image func(ctx context.Context, src store.Source, locator string) ([]byte, error)
	// Controller, DPO and Authority are printed in access packages.
	Controller, DPO, Authority string
	// OutDir, when set, is where access packages are also written as
	// files (the CLI); each is kept in the store, sealed, whichever
	// instance made it (Package reads it back).
	OutDir string
}

// Errors of the steps, tested with errors.Is.
var (
	// ErrNotOpen refuses to work on a closed request.
	ErrNotOpen = errors.New("request is closed")
	// ErrNotFound: the request has no candidate set yet.
	ErrNoCandidates = errors.New("no candidate set: find the candidates first")
	// ErrNotReviewed: the DPO has not reviewed the candidate set.
	ErrNotReviewed = errors.New("the candidate set is not reviewed")
	// ErrNoIdentity: how the requester was identified is not recorded.
	ErrNoIdentity = errors.New("the requester's identity check is not recorded")
	// ErrStale: the reviewed set is not the one the DPO confirmed.
	ErrStale = errors.New("the reviewed set changed")
	// ErrActing: the request is being acted on; its set cannot change.
	ErrActing = errors.New("the request is being acted on")
)

// RefusedIdentity is the reason given when the identity check fails. It is
// the same whether or not the person is in the store.
const RefusedIdentity = "identity check failed: the selfies do not show one and the same person clearly enough; send new selfies with a new request"

// Register records a request of kind with the templates of the selfies'
// largest faces, and those faces' crops sealed for the review (the photos
// themselves are not kept), and returns it. A selfie without a face is
// refused before anything is registered (an error wrapping face.ErrNoFace):
// that says nothing about the store.
func (e *Engine) Register(ctx context.Context, kind dsr.Kind, selfies [][]byte, contact, actor string) (dsr.Request, error) {
	if len(selfies) == 0 {
		return dsr.Request{}, fmt.Errorf("%w: at least one selfie", dsr.ErrInvalid)
	}
	r, err := dsr.NewRequest(kind, contact, time.Now(), "")
	if err != nil {
		return dsr.Request{}, err
	}
	var templates [][]float32
	var faces []face.Face
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
		faces = append(faces, an.Faces[j])
	}
	id, err := e.Store.CreateRightsRequest(ctx, r, actor)
	if err != nil {
		return dsr.Request{}, err
	}
	if _, err := e.Vault.Add(ctx, vault.Selfie, id, e.ModelID, templates); err != nil {
		return dsr.Request{}, fmt.Errorf("keep the selfies' templates: %w", err)
	}
	if e.Crop != nil {
		kept := make([]store.RightsSelfie, 0, len(faces))
		for i, f := range faces {
			jpg, err := e.Crop(selfies[i], f)
			if err != nil {
				return dsr.Request{}, fmt.Errorf("selfie %d: crop its face: %w", i+1, err)
			}
			sealed, err := e.Keys.SealBytes(PurposeRightsRequest, selfieBinding(id, i+1), jpg)
			clear(jpg)
			if err != nil {
				return dsr.Request{}, err
			}
			kept = append(kept, store.RightsSelfie{N: i + 1, Quality: f.Quality, Crop: sealed})
		}
		if err := e.Store.AddRightsSelfies(ctx, id, kept); err != nil {
			return dsr.Request{}, err
		}
	}
	return e.Store.RightsRequest(ctx, id)
}

func selfieBinding(id int64, n int) []byte { return fmt.Appendf(nil, "rights/%d/selfie/%d", id, n) }

func recordBinding(id int64) []byte { return fmt.Appendf(nil, "rights/%d/record", id) }

// SelfieCrop returns the JPEG crop of selfie n's face of request id, while
// the request is open. Never log it.
func (e *Engine) SelfieCrop(ctx context.Context, id int64, n int) ([]byte, error) {
	ss, err := e.Store.RightsSelfies(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, s := range ss {
		if s.N == n {
			return e.Keys.OpenBytes(PurposeRightsRequest, selfieBinding(id, n), s.Crop)
		}
	}
	return nil, fmt.Errorf("selfie %d of rights request %d: %w", n, id, store.ErrNotFound)
}

// open reads request id and fails with ErrNotOpen when it is closed.
func (e *Engine) open(ctx context.Context, id int64) (dsr.Request, error) {
	r, err := e.Store.RightsRequest(ctx, id)
	if err != nil {
		return dsr.Request{}, err
	}
	if r.State.Final() {
		// A run that stopped right after closing it left the selfies'
		// templates in the vault: they go now.
		if err := e.closeRequest(ctx, id); err != nil {
			return r, err
		}
		return r, fmt.Errorf("request %d is %s: %w", id, r.State, ErrNotOpen)
	}
	return r, nil
}

// Identify records how the requester of request id was identified: a
// method of e.Methods and the DPO's note (required by some methods). The
// request becomes verified. Nothing is disclosed or changed before this.
func (e *Engine) Identify(ctx context.Context, id int64, method, note, actor string) (dsr.Request, error) {
	r, err := e.open(ctx, id)
	if err != nil {
		return r, err
	}
	m, ok := dsr.FindIdentityMethod(e.Methods, method)
	if !ok {
		ids := make([]string, len(e.Methods))
		for i, m := range e.Methods {
			ids[i] = m.ID
		}
		return dsr.Request{}, fmt.Errorf("identity method %q: want one of %s: %w", method, strings.Join(ids, ", "), dsr.ErrInvalid)
	}
	note = strings.TrimSpace(note)
	if m.NoteRequired && note == "" {
		return dsr.Request{}, fmt.Errorf("identity method %q: say how in the note: %w", method, dsr.ErrInvalid)
	}
	if len(note) > 1000 {
		return dsr.Request{}, fmt.Errorf("identity note: at most 1000 characters: %w", dsr.ErrInvalid)
	}
	if r.Current() != dsr.Received {
		return dsr.Request{}, fmt.Errorf("request %d: the identity check is already recorded: %w", id, dsr.ErrIllegalTransition)
	}
	return e.Store.RecordRightsIdentity(ctx, id, actor, method, note)
}

// Refuse closes request id with reason (for example, the identity could
// not be established). The selfies are deleted.
func (e *Engine) Refuse(ctx context.Context, id int64, reason, actor string) (dsr.Request, error) {
	if _, err := e.open(ctx, id); err != nil {
		return dsr.Request{}, err
	}
	r, err := e.Store.CloseRightsRequest(ctx, id, actor, nil, func(r *dsr.Request, now time.Time) error {
		return r.Advance(now, dsr.Refused, strings.TrimSpace(reason))
	})
	if err != nil {
		return r, err
	}
	return r, e.closeRequest(ctx, id)
}

// Outcome is what acting on a request did.
type Outcome struct {
	Request      dsr.Request
	ActedOn      int    // faces in the reviewed set
	Package      string // access: the package's path, when written to OutDir
	PackageSHA   string // access: its SHA-256, also in the request's result
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

// Process acts on request id, on exactly its reviewed set: it needs the
// identity check recorded and the candidate set reviewed. expect, when not
// negative, is the number of faces the DPO confirmed acting on: a reviewed
// set of another size fails with ErrStale and nothing is done. A request
// an earlier run left in progress is finished on the set that run froze.
func (e *Engine) Process(ctx context.Context, id int64, expect int, actor string) (Outcome, error) {
	r, err := e.open(ctx, id)
	if err != nil {
		return Outcome{Request: r}, err
	}
	switch r.Current() {
	case dsr.Received:
		return Outcome{}, fmt.Errorf("request %d: %w: record how the requester's identity was established first", id, ErrNoIdentity)
	case dsr.Verified:
		rv, err := e.Store.RightsReview(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return Outcome{}, fmt.Errorf("request %d: %w", id, ErrNoCandidates)
		}
		if err != nil {
			return Outcome{}, err
		}
		if rv.ReviewedBy == "" {
			return Outcome{}, fmt.Errorf("request %d: %w: review it first", id, ErrNotReviewed)
		}
		sel := rv.Selected()
		if expect >= 0 && expect != len(sel) {
			return Outcome{}, fmt.Errorf("request %d: %w: %d face(s) are selected, not the %d confirmed; look at the review again", id, ErrStale, len(sel), expect)
		}
		r, err = e.Store.UpdateRightsRequest(ctx, id, actor, func(r *dsr.Request, now time.Time) error {
			r.Matches = sel
			return r.Advance(now, dsr.InProgress, "")
		})
		if err != nil {
			return Outcome{}, err
		}
	}
	return e.act(ctx, r, actor)
}

// act carries out in-progress request r on r.Matches, seals the record of
// what was done and closes the request.
func (e *Engine) act(ctx context.Context, r dsr.Request, actor string) (Outcome, error) {
	faces := slices.Clone(r.Matches)
	rec, err := e.newRecord(ctx, r, faces, actor)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{ActedOn: len(faces)}
	var result Result
	switch r.Kind {
	case dsr.Access:
		result, err = e.access(ctx, r, faces, rec, &out)
	case dsr.Erasure:
		result, err = e.erase(ctx, r, actor, faces, &out)
	case dsr.Objection:
		// Never collect again, then stop processing what is held.
		if _, err = e.keepOut(ctx, r.ID, vault.Objection, nil, actor); err == nil {
			result, err = e.erase(ctx, r, actor, faces, &out)
		}
	case dsr.Restriction:
		var unreadable int
		if unreadable, err = e.keepOut(ctx, r.ID, vault.Restriction, faces, actor); err == nil {
			n := len(faces)
			result.Restricted, result.UnreadableFaces = &n, unreadable
		}
	}
	if err != nil {
		return Outcome{}, err
	}
	n := len(faces)
	result.ActedOn = &n
	rec.Result = result
	sealed, sum, err := e.sealRecord(r.ID, rec)
	if err != nil {
		return Outcome{}, err
	}
	result.RecordSHA = sum
	js, err := json.Marshal(result)
	if err != nil {
		return Outcome{}, err
	}
	r, err = e.Store.CloseRightsRequest(ctx, r.ID, actor, &store.RightsRecord{Sealed: sealed, SHA256: sum, Faces: len(faces)},
		func(r *dsr.Request, now time.Time) error {
			r.Matches = nil // which faces: in the sealed record only
			r.Result = js
			return r.Advance(now, dsr.Completed, "")
		})
	if err != nil {
		return Outcome{}, err
	}
	out.Request = r
	return out, e.closeRequest(ctx, r.ID)
}

// keepOut puts the person in the vault as kind: their mean selfie template
// (later faces that resemble the selfies together, not any one of them),
// and the templates of faces, the reviewed set (so that exactly those are
// hidden, whatever their similarity to the selfies).
//
// A face of the set in quarantine has no template to put in the vault: it
// is counted in unreadable, and stays out of searches while in quarantine.
func (e *Engine) keepOut(ctx context.Context, id int64, kind vault.Kind, faces []int64, actor string) (unreadable int, err error) {
	selfies, err := e.Vault.Templates(ctx, id, vault.Selfie)
	if err != nil {
		return 0, err
	}
	ts := [][]float32{}
	if m := preselect.MeanTemplate(selfies); m != nil {
		ts = append(ts, m)
	}
	var held map[int64]bool
	if len(faces) > 0 {
		if held, err = e.quarantined(ctx); err != nil {
			return 0, err
		}
	}
	for _, f := range faces {
		t, quarantined, err := e.template(ctx, f, held, actor)
		if err != nil {
			return 0, err
		}
		if quarantined {
			unreadable++
		}
		if t != nil {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return unreadable, nil
	}
	// A run resumed after a crash adds them again: the vault's entries of
	// the request are replaced, not doubled.
	if _, err := e.Vault.RemoveRequest(ctx, id, kind); err != nil {
		return 0, err
	}
	_, err = e.Vault.Add(ctx, kind, id, e.ModelID, ts)
	return unreadable, err
}

// closeRequest deletes the selfie templates of a closed request.
// SweepClosed removes the selfie templates of every closed request (or
// one no longer in the register) from the vault: a process killed between
// closing a request and removing them (closeRequest) leaves them there,
// and nothing else would come back for them. It returns how many requests
// it cleaned. The server runs it with its housekeeping.
func (e *Engine) SweepClosed(ctx context.Context) (int, error) {
	ids, err := e.Vault.Requests(ctx, vault.Selfie)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		r, err := e.Store.RightsRequest(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, err
		}
		if err == nil && !r.State.Final() {
			continue
		}
		if err := e.closeRequest(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (e *Engine) closeRequest(ctx context.Context, id int64) error {
	_, err := e.Vault.RemoveRequest(ctx, id, vault.Selfie)
	return err
}

// erase erases faces from the store and the index, then proves it with a
// search of the selfies at threshold 0.
func (e *Engine) erase(ctx context.Context, r dsr.Request, actor string, ids []int64, out *Outcome) (Result, error) {
	recipients, err := e.Store.SearchesReturning(ctx, ids)
	if err != nil {
		return Result{}, err
	}
	faces, images, err := e.Store.EraseFaces(ctx, ids, actor, fmt.Sprintf("rights/%d", r.ID))
	if err != nil {
		return Result{}, err
	}
	// Every face of the set leaves the index, not only those erased now: a
	// run that stopped between the store and the index left some there.
	if len(ids) > 0 {
		if err := e.Index.Delete(context.WithoutCancel(ctx), ids); err != nil {
			return Result{}, fmt.Errorf("delete erased faces from the index: %w", err)
		}
	}
	out.Erased, out.ErasedImages = len(faces), len(images)
	erased := map[int64]bool{}
	for _, id := range ids {
		erased[id] = true
	}
	selfies, err := e.Vault.Templates(ctx, r.ID, vault.Selfie)
	if err != nil {
		return Result{}, err
	}
	// The erased faces were among the selfies' nearest; a search for many
	// more than them shows none comes back. Asking for every face of a
	// large approximate index would walk the whole graph for nothing.
	held, err := e.Index.Len(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("vector index: %w", err)
	}
	k := min(held, max(1000, 10*len(ids)))
	p := &Proof{}
	for _, s := range selfies {
		hits, err := e.Index.Search(ctx, s, max(1, k), 0)
		if err != nil {
			return Result{}, err
		}
		p.Searched += len(hits)
		for _, h := range hits {
			if erased[h.ID] {
				p.ErasedInHits++
			}
		}
	}
	left, err := e.Store.FaceRefs(ctx, ids)
	if err != nil {
		return Result{}, err
	}
	p.ErasedStored = len(left)
	p.OK = p.ErasedInHits == 0 && p.ErasedStored == 0
	out.Proof = p
	out.Recipients = []int64{}
	for _, s := range recipients {
		out.Recipients = append(out.Recipients, s.ID)
	}
	n := len(faces)
	return Result{Erased: &n, ErasedImages: len(images), Proof: p, Notify: out.Recipients}, nil
}

// access writes the access package of faces and returns the result to
// record: its SHA-256 and counts.
func (e *Engine) access(ctx context.Context, r dsr.Request, faces []int64, rec *Record, out *Outcome) (Result, error) {
	refs, err := e.Store.FaceRefs(ctx, faces)
	if err != nil {
		return Result{}, err
	}
	p := access.Package{RequestID: r.ID, Received: r.Received, Due: r.Deadline(), Generated: time.Now(), Zone: r.Zone,
		Controller: e.Controller, DPO: e.DPO, Authority: e.Authority, Reserve: e.Reserve}
	score := map[int64]float64{}
	for _, f := range rec.Faces {
		score[f.FaceID] = f.Score
	}
	sources := map[int64]store.Source{}
	for _, id := range faces {
		ref, ok := refs[id]
		if !ok {
			continue
		}
		src, ok := sources[ref.SourceID]
		if !ok {
			if src, err = e.Store.Source(ctx, ref.SourceID); err != nil {
				return Result{}, err
			}
			sources[ref.SourceID] = src
		}
		img, err := e.Store.Image(ctx, ref.ImageID)
		if err != nil {
			return Result{}, err
		}
		others, err := e.Store.Faces(ctx, ref.ImageID)
		if err != nil {
			return Result{}, err
		}
		f := access.Face{FaceID: id, ImageID: ref.ImageID, SourceID: ref.SourceID, Locator: ref.Locator,
			SourceKind: string(src.Kind), Controller: src.Controller, Purpose: src.Purpose, LegalBasis: string(src.LegalBasis),
			Art9: src.Art9Condition, Retention: src.Retention, Collected: img.IngestedAt, RetentionDeadline: img.RetentionDeadline,
			TimeCode: ref.TimeCode, Box: [4]float64{ref.Box.X, ref.Box.Y, ref.Box.W, ref.Box.H}, Similarity: score[id]}
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
	searches, err := e.Store.SearchesReturning(ctx, faces)
	if err != nil {
		return Result{}, err
	}
	mine := map[int64]bool{}
	for _, id := range faces {
		mine[id] = true
	}
	for _, s := range searches {
		as := access.Search{ID: s.ID, At: s.At, Actor: s.Actor, Purpose: s.Purpose, Case: s.CaseRef}
		conf, err := e.Store.Confirmations(ctx, s.ID)
		if err != nil {
			return Result{}, err
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

	held, err := e.quarantined(ctx)
	if err != nil {
		return Result{}, err
	}
	p.UnreadableFaces = len(held)
	var buf bytes.Buffer
	sum, err := access.Write(ctx, &buf, p)
	if err != nil {
		return Result{}, err
	}
	out.PackageSHA = fmt.Sprintf("%x", sha256.Sum256(buf.Bytes()))
	sealed, err := e.Keys.SealBytes(PurposeRightsRequest, packageBinding(r.ID), buf.Bytes())
	if err != nil {
		return Result{}, fmt.Errorf("seal the access package: %w", err)
	}
	if err := e.Store.PutRightsPackage(ctx, store.RightsPackage{RequestID: r.ID, Sealed: sealed, SHA256: out.PackageSHA,
		Size: int64(buf.Len())}); err != nil {
		return Result{}, err
	}
	if e.OutDir != "" {
		path := PackagePath(e.OutDir, r.ID)
		if err := writeAtomic(path, buf.Bytes()); err != nil {
			return Result{}, err
		}
		out.Package = path
	}
	return Result{PackageSHA: out.PackageSHA, Faces: &sum.Faces, Images: sum.Images,
		Unreadable: sum.Unreadable, UnreadableFaces: len(held), Searches: sum.Searches}, nil
}

func packageBinding(id int64) []byte { return fmt.Appendf(nil, "rights/%d/access-package", id) }

// ErrPackageAltered: the access package kept in the store does not match
// the SHA-256 recorded when it was made.
var ErrPackageAltered = errors.New("the access package does not match its recorded SHA-256")

// Package returns the access package of request id, kept sealed in the
// store by whichever instance acted on the request, after checking it
// against the SHA-256 kept with it; store.ErrNotFound when the store holds
// none (a request not acted on, or answered before packages were kept in
// the store: see PackagePath), ErrPackageAltered when its sealed bytes do
// not open or it does not match.
func (e *Engine) Package(ctx context.Context, id int64) ([]byte, error) {
	p, err := e.Store.RightsPackageOf(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := e.Keys.OpenBytes(PurposeRightsRequest, packageBinding(id), p.Sealed)
	if errors.Is(err, keyring.ErrTampered) { // altered, or sealed for another request
		return nil, fmt.Errorf("open the access package of request %d: %w: %w", id, ErrPackageAltered, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open the access package of request %d: %w", id, err)
	}
	if sum := sha256.Sum256(b); fmt.Sprintf("%x", sum) != p.SHA256 {
		return nil, fmt.Errorf("access package of request %d: %w", id, ErrPackageAltered)
	}
	return b, nil
}

// PackagePath is where the access package of request id is written in dir.
func PackagePath(dir string, id int64) string {
	return filepath.Join(dir, fmt.Sprintf("rights-%d-access.zip", id))
}

// writeAtomic writes data to path (mode 0600), creating its directory.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFile(path, data, 0o600, true)
}

// template opens the stored template of face id, or nil when the face is
// gone, its source crypto-shredded, or it is in quarantine (its template
// cannot be opened: see Quarantine).
// held is the set of faces in quarantine (Engine.quarantined).
func (e *Engine) template(ctx context.Context, id int64, held map[int64]bool, actor string) (t []float32, quarantined bool, err error) {
	f, err := e.Store.Face(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	refs, err := e.Store.FaceRefs(ctx, []int64{id})
	if err != nil {
		return nil, false, err
	}
	ref, ok := refs[id]
	if !ok || f.ModelID != e.ModelID {
		return nil, false, nil
	}
	return e.opened(ctx, held, id, ref.SourceID, f.ModelID, f.Template, actor)
}
