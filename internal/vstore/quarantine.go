package vstore

import (
	"context"
	"errors"
	"fmt"

	"gabarit/internal/keyring"
	"gabarit/internal/store"
)

// ErrStillDamaged refuses to release a face from quarantine: its sealed
// template still cannot be opened.
var ErrStillDamaged = errors.New("the face's template still cannot be opened")

// QuarantineStore is what Release and Erase need of the store; *store.DB
// implements it.
type QuarantineStore interface {
	QuarantinedFaceByID(ctx context.Context, id int64) (store.QuarantinedFace, error)
	FaceRefs(ctx context.Context, ids []int64) (map[int64]store.FaceRef, error)
	ReleaseFace(ctx context.Context, id int64, actor string) error
	EraseQuarantined(ctx context.Context, id int64, actor string) (images []int64, err error)
}

// Release re-checks the sealed template of face id, in quarantine (else
// store.ErrNotFound): when it opens now (restored from a backup, say), the
// face leaves quarantine, audited face.quarantine.release by actor, and is
// added to h's index when h is not nil and of the face's model (save h to
// keep it there).
// A template that still cannot be opened fails with ErrStillDamaged and
// the face stays in quarantine.
func Release(ctx context.Context, st QuarantineStore, keys Opener, h *Handle, id int64, actor string) error {
	if _, err := st.QuarantinedFaceByID(ctx, id); err != nil {
		return err
	}
	refs, err := st.FaceRefs(ctx, []int64{id})
	if err != nil {
		return err
	}
	ref, ok := refs[id]
	if !ok {
		return fmt.Errorf("face %d: %w", id, store.ErrNotFound)
	}
	v, err := keys.Open(ctx, ref.SourceID, id, ref.ModelID, ref.Template)
	if errors.Is(err, keyring.ErrBadTemplate) {
		return fmt.Errorf("face %d: %s: %w", id, keyring.TemplateFault(err), ErrStillDamaged)
	}
	if err != nil {
		return fmt.Errorf("face %d: %w", id, err)
	}
	if err := st.ReleaseFace(ctx, id, actor); err != nil {
		return err
	}
	if h != nil && ref.ModelID == h.modelID {
		if err := h.Index.Add(ctx, []int64{id}, [][]float32{v}); err != nil {
			return fmt.Errorf("index face %d: %w", id, err)
		}
	}
	return nil
}

// Erase erases face id, in quarantine (else store.ErrNotFound), from the
// store (audited faces.erase by actor, with its image if no other face is
// left in it) and from h's index when h is not nil (it is not there, unless
// the index was loaded before the face was quarantined). It returns the
// images erased.
func Erase(ctx context.Context, st QuarantineStore, h *Handle, id int64, actor string) ([]int64, error) {
	images, err := st.EraseQuarantined(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	if h != nil {
		if err := h.Index.Delete(context.WithoutCancel(ctx), []int64{id}); err != nil {
			return images, fmt.Errorf("delete face %d from the index: %w", id, err)
		}
	}
	return images, nil
}

var _ QuarantineStore = (*store.DB)(nil)
