package app

import (
	"context"
	"errors"
	"testing"

	"gabarit/internal/face"
	"gabarit/internal/membudget"
)

// TestReserveHoldsTheBudget: a photo decoded again after its analysis (the
// probe's crop, an access package's image) holds its estimate in the
// budget while it decodes, gives it back after, even on error, and is
// refused when it needs more than the whole budget.
func TestReserveHoldsTheBudget(t *testing.T) {
	box := face.Box{X: 200, Y: 100, W: 100, H: 100}
	photo := photoWithFace(t, 640, 480, box)
	b := membudget.New(64 << 20)
	var held int64
	crop, err := budgetedCrop(context.Background(), b, photo, box)
	if err != nil || len(crop) == 0 {
		t.Fatalf("crop: %d bytes, %v", len(crop), err)
	}
	boom := errors.New("boom")
	if err := Reserve(context.Background(), b, photo, func() error { held = b.InUse(); return boom }); !errors.Is(err, boom) {
		t.Fatalf("Reserve = %v", err)
	}
	if held < 640*480*3 {
		t.Errorf("held %d bytes while decoding a 640×480 photo", held)
	}
	if b.InUse() != 0 {
		t.Errorf("%d bytes still held after", b.InUse())
	}
	small := membudget.New(64 << 10)
	if err := Reserve(context.Background(), small, photo, func() error { t.Error("decoded over the budget"); return nil }); err == nil {
		t.Error("a photo needing more than the whole budget was not refused")
	}
	if err := Reserve(context.Background(), nil, photo, func() error { return nil }); err != nil {
		t.Errorf("without a budget: %v", err)
	}
}
