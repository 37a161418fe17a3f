package app

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gabarit/internal/source"
	"gabarit/internal/source/archive"
	"gabarit/internal/source/folder"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
)

// Bases are the GDPR Art. 6(1) lawful bases, in the order of the article.
var Bases = []store.LegalBasis{store.BasisConsent, store.BasisContract, store.BasisLegalObligation,
	store.BasisVitalInterests, store.BasisPublicTask, store.BasisLegitimateInterests}

// JoinBases lists the bases as "consent|contract|…".
func JoinBases() string {
	s := make([]string, len(Bases))
	for i, b := range Bases {
		s[i] = string(b)
	}
	return strings.Join(s, "|")
}

// Declaration is a source as declared, field by field, before validation.
type Declaration struct {
	Kind         string `json:"kind"`         // folder, archive or video
	Path         string `json:"path"`         // where the collection is, on this machine
	Controller   string `json:"controller"`   // GDPR Art. 4(7)
	Purpose      string `json:"purpose"`      // why its faces are processed
	LegalBasis   string `json:"legal_basis"`  // GDPR Art. 6(1)
	Art9         string `json:"art9"`         // GDPR Art. 9(2) condition
	Jurisdiction string `json:"jurisdiction"` // ISO 3166-1 alpha-2
	Retention    string `json:"retention"`    // 30d, 6m, 1y, 720h …
	// DataDir is the data directory the source is declared in, set by the
	// caller (never read from a request): a source may not hold it, nor
	// lie inside it.
	DataDir string `json:"-"`
}

// Validate checks every field of a declaration and that the collection
// can be opened, and returns the source to create. Errors name the field
// with prefix (e.g. "--" on the command line).
func (d Declaration) Validate(prefix string) (store.Source, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"kind", d.Kind}, {"path", d.Path}, {"controller", d.Controller},
		{"purpose", d.Purpose}, {"legal-basis", d.LegalBasis}, {"art9", d.Art9}, {"jurisdiction", d.Jurisdiction},
		{"retention", d.Retention}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, prefix+f.name)
		}
	}
	if len(missing) > 0 {
		return store.Source{}, fmt.Errorf("missing %s: every source declares its controller, purpose, legal basis, Art. 9 condition, jurisdiction and retention", strings.Join(missing, ", "))
	}
	src := store.Source{Kind: store.SourceKind(d.Kind), Controller: strings.TrimSpace(d.Controller),
		Purpose: strings.TrimSpace(d.Purpose), LegalBasis: store.LegalBasis(d.LegalBasis)}
	if !slices.Contains(Bases, src.LegalBasis) {
		return src, fmt.Errorf("%slegal-basis %q: want one of %s", prefix, d.LegalBasis, JoinBases())
	}
	var err error
	if src.Art9Condition, err = source.ParseArt9(d.Art9); err != nil {
		return src, fmt.Errorf("%sart9: %w", prefix, err)
	}
	cc := strings.ToUpper(strings.TrimSpace(d.Jurisdiction))
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return src, fmt.Errorf("%sjurisdiction %q: want an ISO 3166-1 alpha-2 code such as FR", prefix, d.Jurisdiction)
	}
	src.Jurisdiction = cc
	if src.Retention, err = source.ParseRetention(d.Retention); err != nil {
		return src, fmt.Errorf("%sretention: %w", prefix, err)
	}
	if src.Locator, err = filepath.Abs(d.Path); err != nil {
		return src, fmt.Errorf("%spath: %w", prefix, err)
	}
	if err := checkSourcePath(src.Locator, d.DataDir); err != nil {
		return src, fmt.Errorf("%spath: %w", prefix, err)
	}
	switch src.Kind {
	case store.KindFolder:
		_, err = folder.Open(src.Locator, source.Limits{})
	case store.KindArchive:
		_, err = archive.Open(src.Locator, source.Limits{})
	case store.KindVideo:
		_, err = video.New(src.Locator, video.Options{})
	default:
		return src, fmt.Errorf("%skind %q: want folder, archive or video", prefix, d.Kind)
	}
	if err != nil {
		return src, fmt.Errorf("%spath: %w", prefix, err)
	}
	return src, nil
}

// AddSource records a validated source declared by actor, with its audit
// entry, in one transaction.
func AddSource(ctx context.Context, db *store.DB, src store.Source, actor string) (int64, error) {
	src.CreatedBy = actor
	var id int64
	err := db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if id, err = tx.CreateSource(ctx, src); err != nil {
			return err
		}
		detail, err := json.Marshal(map[string]any{"kind": src.Kind, "legal_basis": src.LegalBasis,
			"art9": src.Art9Condition, "jurisdiction": src.Jurisdiction, "retention_ms": src.Retention.Milliseconds()})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: "source.add",
			Object: fmt.Sprintf("source/%d", id), Detail: detail})
		return err
	})
	return id, err
}

// SetSourceState suspends a source (nothing more is ingested from it) or
// resumes it, audited.
func SetSourceState(ctx context.Context, db *store.DB, id int64, state store.SourceState, actor string) error {
	action := map[store.SourceState]string{store.StateSuspended: "source.suspend", store.StateActive: "source.resume"}[state]
	if action == "" {
		return fmt.Errorf("state %q: %w", state, store.ErrInvalid)
	}
	return db.Tx(ctx, func(tx *store.Tx) error {
		if err := refuseRetired(ctx, tx, id, map[store.SourceState]string{store.StateSuspended: "suspended", store.StateActive: "resumed"}[state]); err != nil {
			return err
		}
		if err := tx.SetSourceState(ctx, id, state); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: actor, Action: action,
			Object: fmt.Sprintf("source/%d", id), Detail: json.RawMessage(fmt.Sprintf(`{"state":%q}`, state))})
		return err
	})
}

// SourceView is a source as the command line and the API show it.
type SourceView struct {
	ID           int64     `json:"id"`
	Kind         string    `json:"kind"`
	Path         string    `json:"path"`
	Controller   string    `json:"controller"`
	Purpose      string    `json:"purpose"`
	LegalBasis   string    `json:"legal_basis"`
	Art9         string    `json:"art9"`
	Jurisdiction string    `json:"jurisdiction"`
	RetentionMS  int64     `json:"retention_ms"`
	State        string    `json:"state"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
	Images       int64     `json:"images"`
	Faces        int64     `json:"faces"`
}

// SourceViews converts sources and their counts (images, faces by source).
func SourceViews(srcs []store.Source, counts map[int64][2]int64) []SourceView {
	out := make([]SourceView, len(srcs))
	for i, s := range srcs {
		c := counts[s.ID]
		out[i] = SourceView{ID: s.ID, Kind: string(s.Kind), Path: s.Locator, Controller: s.Controller, Purpose: s.Purpose,
			LegalBasis: string(s.LegalBasis), Art9: s.Art9Condition, Jurisdiction: s.Jurisdiction,
			RetentionMS: s.Retention.Milliseconds(), State: StateName(s.State), CreatedBy: s.CreatedBy, CreatedAt: s.CreatedAt,
			Images: c[0], Faces: c[1]}
	}
	return out
}
