package rights_test

import (
	"context"
	"testing"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/vault"
)

// TestSweepClosed: a request closed by a run that was killed before it
// removed the selfies' templates from the vault has them removed by the
// sweep; an open request keeps its own.
func TestSweepClosed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	closed := f.request(t, dsr.Erasure, "alice1")
	open := f.request(t, dsr.Access, "bob1")
	for _, r := range []dsr.Request{closed, open} {
		if ts, err := f.v.Templates(ctx, r.ID, vault.Selfie); err != nil || len(ts) == 0 {
			t.Fatalf("request %d: %d selfie templates in the vault, %v", r.ID, len(ts), err)
		}
	}
	// The kill: the request is closed in the register, nothing more.
	if _, err := f.db.UpdateRightsRequest(ctx, closed.ID, "dpo", func(q *dsr.Request, now time.Time) error {
		return q.Advance(now, dsr.Refused, "the selfies do not show one person")
	}); err != nil {
		t.Fatal(err)
	}
	n, err := f.eng.SweepClosed(ctx)
	if err != nil || n != 1 {
		t.Fatalf("SweepClosed = %d, %v; want 1", n, err)
	}
	if ts, err := f.v.Templates(ctx, closed.ID, vault.Selfie); err != nil || len(ts) != 0 {
		t.Errorf("closed request: %d selfie templates left, %v", len(ts), err)
	}
	if ts, err := f.v.Templates(ctx, open.ID, vault.Selfie); err != nil || len(ts) == 0 {
		t.Errorf("open request: %d selfie templates, %v", len(ts), err)
	}
	if n, err := f.eng.SweepClosed(ctx); err != nil || n != 0 {
		t.Errorf("second sweep = %d, %v; want 0", n, err)
	}
}
