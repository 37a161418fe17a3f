package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"gabarit/internal/face"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// TestDeleteRetiredImages: a source's images are deleted wholesale, with
// their faces, only once it is retired; images of other sources named by
// mistake stay; a second call deletes nothing and does not fail.
func TestDeleteRetiredImages(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.Open(t)
	a := storetest.Source(t, db, store.BasisConsent, time.Hour)
	b := storetest.Source(t, db, store.BasisConsent, time.Hour)
	add := func(src int64, name string) (int64, []int64) {
		t.Helper()
		fs := []store.Face{{Box: face.Box{W: 5, H: 5}, ModelID: "m", Dim: 2, Template: []byte{1}},
			{Box: face.Box{X: 6, W: 5, H: 5}, ModelID: "m", Dim: 2, Template: []byte{2}}}
		img, faces, err := db.AddImage(ctx, store.Image{SourceID: src, SHA256: sha256.Sum256([]byte(name)), Locator: name,
			SizeBytes: 1, Width: 20, Height: 20}, fs)
		if err != nil {
			t.Fatal(err)
		}
		return img, faces
	}
	a1, f1 := add(a, "a1.jpg")
	a2, f2 := add(a, "a2.jpg")
	b1, _ := add(b, "b1.jpg")

	imgs, faces, err := db.SourceImageBatch(ctx, a, 10)
	if err != nil || !slices.Equal(imgs, []int64{a1, a2}) || !slices.Equal(faces, slices.Concat(f1, f2)) {
		t.Fatalf("batch of source %d: %v %v, %v", a, imgs, faces, err)
	}
	if imgs, _, _ := db.SourceImageBatch(ctx, a, 1); !slices.Equal(imgs, []int64{a1}) {
		t.Errorf("batch of 1: %v", imgs)
	}
	// Not retired: refused.
	if _, err := db.DeleteRetiredImages(ctx, a, []int64{a1}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("delete images of an active source: %v", err)
	}
	err = db.Tx(ctx, func(tx *store.Tx) error {
		_, err := tx.DeleteSourceProgress(ctx, a)
		return err
	})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("delete progress of an active source: %v", err)
	}
	if err := db.SetSourceState(ctx, a, store.StateDeleted); err != nil {
		t.Fatal(err)
	}
	got, err := db.DeleteRetiredImages(ctx, a, []int64{a1, a2, b1})
	if err != nil || !slices.Equal(got, slices.Concat(f1, f2)) {
		t.Fatalf("deleted faces %v, %v; want %v", got, err, slices.Concat(f1, f2))
	}
	if h, err := db.SourceHoldings(ctx, a); err != nil || h.Images != 0 || h.Faces != 0 || h.State != store.StateDeleted {
		t.Errorf("source %d holds %+v, %v", a, h, err)
	}
	if h, _ := db.SourceHoldings(ctx, b); h.Images != 1 || h.Faces != 2 {
		t.Errorf("the other source lost images: %+v", h)
	}
	if got, err := db.DeleteRetiredImages(ctx, a, []int64{a1, a2}); err != nil || len(got) != 0 {
		t.Errorf("second delete: %v, %v", got, err)
	}
	if _, err := db.SourceHoldings(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("holdings of an unknown source: %v", err)
	}
}
