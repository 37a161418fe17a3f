package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestCreateSourceValidation(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	tests := []struct {
		name    string
		mod     func(*Source)
		wantErr error
	}{
		{name: "valid", mod: func(*Source) {}},
		{name: "valid enrollment with consent", mod: func(s *Source) { s.Kind = KindEnrollment; s.LegalBasis = BasisConsent }},
		{name: "valid suspended", mod: func(s *Source) { s.State = StateSuspended }},
		{name: "missing kind", mod: func(s *Source) { s.Kind = "" }, wantErr: ErrInvalid},
		{name: "unknown kind", mod: func(s *Source) { s.Kind = "website" }, wantErr: ErrInvalid},
		{name: "missing locator", mod: func(s *Source) { s.Locator = "" }, wantErr: ErrInvalid},
		{name: "blank controller", mod: func(s *Source) { s.Controller = "  " }, wantErr: ErrInvalid},
		{name: "missing purpose", mod: func(s *Source) { s.Purpose = "" }, wantErr: ErrInvalid},
		{name: "missing legal basis", mod: func(s *Source) { s.LegalBasis = "" }, wantErr: ErrInvalid},
		{name: "unknown legal basis", mod: func(s *Source) { s.LegalBasis = "scraped" }, wantErr: ErrInvalid},
		{name: "missing art 9 condition", mod: func(s *Source) { s.Art9Condition = "" }, wantErr: ErrInvalid},
		{name: "missing jurisdiction", mod: func(s *Source) { s.Jurisdiction = "" }, wantErr: ErrInvalid},
		{name: "lower-case jurisdiction", mod: func(s *Source) { s.Jurisdiction = "fr" }, wantErr: ErrInvalid},
		{name: "3-letter jurisdiction", mod: func(s *Source) { s.Jurisdiction = "FRA" }, wantErr: ErrInvalid},
		{name: "zero retention", mod: func(s *Source) { s.Retention = 0 }, wantErr: ErrInvalid},
		{name: "negative retention", mod: func(s *Source) { s.Retention = -time.Hour }, wantErr: ErrInvalid},
		{name: "sub-millisecond retention", mod: func(s *Source) { s.Retention = time.Microsecond }, wantErr: ErrInvalid},
		{name: "missing created by", mod: func(s *Source) { s.CreatedBy = "" }, wantErr: ErrInvalid},
		{name: "unknown state", mod: func(s *Source) { s.State = "paused" }, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validSource()
			tt.mod(&s)
			id, err := db.CreateSource(context.Background(), s)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CreateSource err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && id <= 0 {
				t.Errorf("CreateSource id = %d, want > 0", id)
			}
		})
	}
}

func TestSourceRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newTestClock()
	db := openTest(t, WithClock(clock.Now))

	want := validSource()
	id, err := db.CreateSource(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.CreatedAt, want.State = id, clock.Now(), StateActive
	got, err := db.Source(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Source = %+v\nwant     %+v", got, want)
	}

	id2 := mustSource(t, db, func(s *Source) { s.Kind = KindVideo })
	if err := db.SetSourceState(ctx, id, StateSuspended); err != nil {
		t.Fatal(err)
	}
	all, err := db.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != id || all[1].ID != id2 || all[0].State != StateSuspended || all[1].Kind != KindVideo {
		t.Errorf("Sources = %+v", all)
	}

	if _, err := db.Source(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Source(999) err = %v, want ErrNotFound", err)
	}
	if err := db.SetSourceState(ctx, 999, StateDeleted); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetSourceState(999) err = %v, want ErrNotFound", err)
	}
	if err := db.SetSourceState(ctx, id, "gone"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetSourceState(gone) err = %v, want ErrInvalid", err)
	}
}

func TestSchemaChecksBackValidation(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	// Even a writer that bypasses CreateSource cannot store an unlawful source.
	_, err := db.w.Exec(`INSERT INTO sources (kind, locator, controller, purpose, legal_basis, art9_condition,
		jurisdiction, retention_ms, created_by, created_at) VALUES ('folder', 'l', 'c', 'p', 'none', 'a', 'FR', 1, 'u', 0)`)
	if err == nil {
		t.Error("schema accepted an unknown legal basis")
	}
}
