package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// SourceKind is the kind of a declared, closed collection.
type SourceKind string

// The kinds of source.
const (
	KindFolder     SourceKind = "folder"
	KindArchive    SourceKind = "archive"
	KindVideo      SourceKind = "video"
	KindEnrollment SourceKind = "enrollment"
)

// LegalBasis is a GDPR Art. 6(1) lawful basis.
type LegalBasis string

// The lawful bases of GDPR Art. 6(1)(a)–(f).
const (
	BasisConsent             LegalBasis = "consent"
	BasisContract            LegalBasis = "contract"
	BasisLegalObligation     LegalBasis = "legal-obligation"
	BasisVitalInterests      LegalBasis = "vital-interests"
	BasisPublicTask          LegalBasis = "public-task"
	BasisLegitimateInterests LegalBasis = "legitimate-interests"
)

// SourceState is the lifecycle state of a source.
type SourceState string

// Name is the state as people see it: a deleted source is "retired" (its
// images and faces are deleted and its data key destroyed; its declaration
// stays, for the record of processing and the audit log).
func (s SourceState) Name() string {
	if s == StateDeleted {
		return "retired"
	}
	return string(s)
}

// The states of a source. Only an active source accepts new images.
const (
	StateActive    SourceState = "active"
	StateSuspended SourceState = "suspended"
	StateDeleted   SourceState = "deleted"
)

// Source is a declared collection of images and the legal frame under
// which its faces are processed.
type Source struct {
	ID            int64
	Kind          SourceKind
	Locator       string // where the collection lives (directory, archive, stream)
	Controller    string // the controller responsible for the processing
	Purpose       string
	LegalBasis    LegalBasis
	Art9Condition string        // the GDPR Art. 9(2) condition, e.g. "9(2)(a) explicit consent"
	Jurisdiction  string        // ISO 3166-1 alpha-2 code, upper case
	Retention     time.Duration // how long each image is kept after ingestion; > 0, milliseconds stored
	CreatedBy     string
	CreatedAt     time.Time // set by CreateSource from the store clock
	State         SourceState
}

func validKind(k SourceKind) bool {
	switch k {
	case KindFolder, KindArchive, KindVideo, KindEnrollment:
		return true
	}
	return false
}

func validBasis(b LegalBasis) bool {
	switch b {
	case BasisConsent, BasisContract, BasisLegalObligation, BasisVitalInterests, BasisPublicTask, BasisLegitimateInterests:
		return true
	}
	return false
}

func validState(s SourceState) bool {
	switch s {
	case StateActive, StateSuspended, StateDeleted:
		return true
	}
	return false
}

func validJurisdiction(j string) bool {
	return len(j) == 2 && j[0] >= 'A' && j[0] <= 'Z' && j[1] >= 'A' && j[1] <= 'Z'
}

// validate reports the first missing or unknown field of s, wrapping ErrInvalid.
func (s Source) validate() error {
	blank := func(v string) bool { return strings.TrimSpace(v) == "" }
	switch {
	case !validKind(s.Kind):
		return fmt.Errorf("unknown kind %q: %w", s.Kind, ErrInvalid)
	case blank(s.Locator):
		return fmt.Errorf("locator required: %w", ErrInvalid)
	case blank(s.Controller):
		return fmt.Errorf("controller required: %w", ErrInvalid)
	case blank(s.Purpose):
		return fmt.Errorf("purpose required: %w", ErrInvalid)
	case !validBasis(s.LegalBasis):
		return fmt.Errorf("unknown legal basis %q: %w", s.LegalBasis, ErrInvalid)
	case blank(s.Art9Condition):
		return fmt.Errorf("art. 9 condition required: %w", ErrInvalid)
	case !validJurisdiction(s.Jurisdiction):
		return fmt.Errorf("jurisdiction %q is not a 2-letter upper-case code: %w", s.Jurisdiction, ErrInvalid)
	case s.Retention.Milliseconds() <= 0:
		return fmt.Errorf("retention %v must be at least 1ms: %w", s.Retention, ErrInvalid)
	case blank(s.CreatedBy):
		return fmt.Errorf("created by required: %w", ErrInvalid)
	case s.State != "" && !validState(s.State):
		return fmt.Errorf("unknown state %q: %w", s.State, ErrInvalid)
	}
	return nil
}

// CreateSource validates s and inserts it; see Tx.CreateSource.
func (db *DB) CreateSource(ctx context.Context, s Source) (id int64, err error) {
	err = db.Tx(ctx, func(tx *Tx) error {
		id, err = tx.CreateSource(ctx, s)
		return err
	})
	return id, err
}

// CreateSource validates s and inserts it, returning its id. Every field
// except ID, CreatedAt and State is required; an empty State means active.
// CreatedAt is taken from the store clock. A missing field, an unknown kind,
// basis or state, a jurisdiction that is not two upper-case letters or a
// retention under 1ms fails with ErrInvalid.
func (tx *Tx) CreateSource(ctx context.Context, s Source) (int64, error) {
	if err := s.validate(); err != nil {
		return 0, fmt.Errorf("create source: %w", err)
	}
	if s.State == "" {
		s.State = StateActive
	}
	var id int64
	err := tx.tx.QueryRowContext(ctx, `
INSERT INTO sources (kind, locator, controller, purpose, legal_basis, art9_condition,
	jurisdiction, retention_ms, created_by, created_at, state)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		s.Kind, s.Locator, s.Controller, s.Purpose, s.LegalBasis, s.Art9Condition,
		s.Jurisdiction, s.Retention.Milliseconds(), s.CreatedBy, ms(tx.now()), s.State).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create source: %w", err)
	}
	return id, nil
}

const sourceColumns = `id, kind, locator, controller, purpose, legal_basis, art9_condition,
	jurisdiction, retention_ms, created_by, created_at, state`

func scanSource(sc scanner) (Source, error) {
	var s Source
	var retentionMS, createdAt int64
	err := sc.Scan(&s.ID, &s.Kind, &s.Locator, &s.Controller, &s.Purpose, &s.LegalBasis,
		&s.Art9Condition, &s.Jurisdiction, &retentionMS, &s.CreatedBy, &createdAt, &s.State)
	s.Retention = time.Duration(retentionMS) * time.Millisecond
	s.CreatedAt = fromMS(createdAt)
	return s, err
}

// Source returns the source with the given id, or ErrNotFound.
func (db *DB) Source(ctx context.Context, id int64) (Source, error) {
	row := db.r.QueryRowContext(ctx, `SELECT `+sourceColumns+` FROM sources WHERE id = ?`, id)
	return one(row, scanSource, fmt.Sprintf("source %d", id))
}

// Sources returns every source, in id order, whatever its state.
func (db *DB) Sources(ctx context.Context) ([]Source, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+sourceColumns+` FROM sources ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	out, err := collect(rows, scanSource)
	if err != nil {
		return nil, fmt.Errorf("sources: %w", err)
	}
	return out, nil
}

// SetSourceState sets the state of a source; see Tx.SetSourceState.
func (db *DB) SetSourceState(ctx context.Context, id int64, state SourceState) error {
	return db.Tx(ctx, func(tx *Tx) error { return tx.SetSourceState(ctx, id, state) })
}

// SetSourceState sets the state of source id. An unknown state fails with
// ErrInvalid, a missing source with ErrNotFound.
func (tx *Tx) SetSourceState(ctx context.Context, id int64, state SourceState) error {
	if !validState(state) {
		return fmt.Errorf("set source %d state: unknown state %q: %w", id, state, ErrInvalid)
	}
	res, err := tx.tx.ExecContext(ctx, `UPDATE sources SET state = ? WHERE id = ?`, state, id)
	if err != nil {
		return fmt.Errorf("set source %d state: %w", id, err)
	}
	return affectedOne(res, fmt.Sprintf("set source %d state", id))
}

// affectedOne turns "no row changed" into ErrNotFound.
func affectedOne(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// SourceCounts returns, by source id, how many images and faces each source
// holds now (sources with none are absent).
func (db *DB) SourceCounts(ctx context.Context) (map[int64][2]int64, error) {
	rows, err := db.r.QueryContext(ctx, `
SELECT i.source_id, count(DISTINCT i.id), count(f.id) FROM images i LEFT JOIN faces f ON f.image_id = i.id
GROUP BY i.source_id`)
	if err != nil {
		return nil, fmt.Errorf("source counts: %w", err)
	}
	type row struct{ id, images, faces int64 }
	list, err := collect(rows, func(sc scanner) (r row, err error) {
		err = sc.Scan(&r.id, &r.images, &r.faces)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("source counts: %w", err)
	}
	out := make(map[int64][2]int64, len(list))
	for _, r := range list {
		out[r.id] = [2]int64{r.images, r.faces}
	}
	return out, nil
}
