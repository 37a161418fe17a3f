package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/source"
	"gabarit/internal/source/archive"
	"gabarit/internal/source/folder"
	"gabarit/internal/source/video"
	"gabarit/internal/store"
)

func (e *cmdEnv) source(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "source", args,
		subcommand{"add", e.sourceAdd},
		subcommand{"list", e.sourceList},
		subcommand{"suspend", func(ctx context.Context, a []string) error { return e.sourceState(ctx, a, store.StateSuspended) }},
		subcommand{"resume", func(ctx context.Context, a []string) error { return e.sourceState(ctx, a, store.StateActive) }})
}

// bases are the GDPR Art. 6(1) lawful bases, in the order of the article.
var bases = []store.LegalBasis{store.BasisConsent, store.BasisContract, store.BasisLegalObligation,
	store.BasisVitalInterests, store.BasisPublicTask, store.BasisLegitimateInterests}

func (e *cmdEnv) sourceAdd(ctx context.Context, args []string) error {
	fs := e.flags("source add", "usage: gabarit source add --kind folder|archive|video --path P --controller TEXT --purpose TEXT \\\n"+
		"         --legal-basis BASIS --art9 CONDITION --jurisdiction CC --retention DURATION [--json]\n\n"+
		"Declares a closed collection and the legal frame under which its faces are processed.\n"+
		"There is no crawler: a source is a folder, an archive or video files on this machine.")
	var df dataFlags
	df.register(fs)
	var (
		kind         = fs.String("kind", "", "folder, archive (zip, tar, tar.gz) or video (a file or a folder of videos)")
		path         = fs.String("path", "", "where the collection is, on this machine")
		controller   = fs.String("controller", "", "the controller responsible for the processing (GDPR Art. 4(7))")
		purpose      = fs.String("purpose", "", "why the faces of this collection are processed")
		basis        = fs.String("legal-basis", "", "GDPR Art. 6(1) basis: "+joinBases())
		art9         = fs.String("art9", "", "GDPR Art. 9(2) condition: 9(2)(a) … 9(2)(j), or a name such as explicit-consent")
		jurisdiction = fs.String("jurisdiction", "", "ISO 3166-1 alpha-2 country code of the governing law, e.g. FR")
		retention    = fs.String("retention", "", "how long each image is kept after ingestion: 30d, 6m, 1y, 720h …")
		asJSON       = fs.Bool("json", false, `print {"id":…}`)
	)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if fs.NArg() > 0 {
		return usageErr(e, fs, "unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	src, err := validateSource(*kind, *path, *controller, *purpose, *basis, *art9, *jurisdiction, *retention)
	if err != nil {
		return usageErr(e, fs, "%v", err)
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	src.CreatedBy = actor()
	var id int64
	err = k.db.Tx(ctx, func(tx *store.Tx) error {
		if id, err = tx.CreateSource(ctx, src); err != nil {
			return err
		}
		detail, err := json.Marshal(map[string]any{"kind": src.Kind, "legal_basis": src.LegalBasis,
			"art9": src.Art9Condition, "jurisdiction": src.Jurisdiction, "retention_ms": src.Retention.Milliseconds()})
		if err != nil {
			return err
		}
		_, err = tx.AppendAudit(ctx, store.AuditEntry{Actor: src.CreatedBy, Action: "source.add",
			Object: fmt.Sprintf("source/%d", id), Detail: detail})
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]int64{"id": id})
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}

// usageErr prints a usage error and returns exit status 2.
func usageErr(e *cmdEnv, fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(e.stderr, "gabarit %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	return exitError{2}
}

func joinBases() string {
	s := make([]string, len(bases))
	for i, b := range bases {
		s[i] = string(b)
	}
	return strings.Join(s, "|")
}

// validateSource checks every field of a declaration and that the
// collection can be opened, and returns the source to create.
func validateSource(kind, path, controller, purpose, basis, art9, jurisdiction, retention string) (store.Source, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"--kind", kind}, {"--path", path}, {"--controller", controller},
		{"--purpose", purpose}, {"--legal-basis", basis}, {"--art9", art9}, {"--jurisdiction", jurisdiction},
		{"--retention", retention}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return store.Source{}, fmt.Errorf("missing %s: every source declares its controller, purpose, legal basis, Art. 9 condition, jurisdiction and retention", strings.Join(missing, ", "))
	}
	src := store.Source{Kind: store.SourceKind(kind), Controller: strings.TrimSpace(controller),
		Purpose: strings.TrimSpace(purpose), LegalBasis: store.LegalBasis(basis)}
	if !contains(bases, src.LegalBasis) {
		return src, fmt.Errorf("--legal-basis %q: want one of %s", basis, joinBases())
	}
	var err error
	if src.Art9Condition, err = source.ParseArt9(art9); err != nil {
		return src, fmt.Errorf("--art9: %w", err)
	}
	cc := strings.ToUpper(strings.TrimSpace(jurisdiction))
	if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
		return src, fmt.Errorf("--jurisdiction %q: want an ISO 3166-1 alpha-2 code such as FR", jurisdiction)
	}
	src.Jurisdiction = cc
	if src.Retention, err = source.ParseRetention(retention); err != nil {
		return src, fmt.Errorf("--retention: %w", err)
	}
	if src.Locator, err = filepath.Abs(path); err != nil {
		return src, fmt.Errorf("--path: %w", err)
	}
	switch src.Kind {
	case store.KindFolder:
		_, err = folder.Open(src.Locator, source.Limits{})
	case store.KindArchive:
		_, err = archive.Open(src.Locator, source.Limits{})
	case store.KindVideo:
		_, err = video.New(src.Locator, video.Options{})
	default:
		return src, fmt.Errorf("--kind %q: want folder, archive or video", kind)
	}
	if err != nil {
		return src, fmt.Errorf("--path: %w", err)
	}
	return src, nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// sourceJSON is one source in `gabarit source list --json`.
type sourceJSON struct {
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

func (e *cmdEnv) sourceList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("source list", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "one JSON array")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	srcs, err := k.db.Sources(ctx)
	if err != nil {
		return err
	}
	counts, err := k.db.SourceCounts(ctx)
	if err != nil {
		return err
	}
	out := sourcesJSON(srcs, counts)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tBASIS\tART. 9\tJUR.\tRETENTION\tIMAGES\tFACES\tCONTROLLER\tPATH")
	for _, s := range out {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, s.Kind, s.State, s.LegalBasis,
			s.Art9[:min(7, len(s.Art9))], s.Jurisdiction, days(time.Duration(s.RetentionMS)*time.Millisecond),
			s.Images, s.Faces, s.Controller, s.Path)
	}
	return tw.Flush()
}

// days prints a retention period in days when it is a whole number of them.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// sourcesJSON converts sources and their counts to their JSON shape.
func sourcesJSON(srcs []store.Source, counts map[int64][2]int64) []sourceJSON {
	out := make([]sourceJSON, len(srcs))
	for i, s := range srcs {
		c := counts[s.ID]
		out[i] = sourceJSON{ID: s.ID, Kind: string(s.Kind), Path: s.Locator, Controller: s.Controller, Purpose: s.Purpose,
			LegalBasis: string(s.LegalBasis), Art9: s.Art9Condition, Jurisdiction: s.Jurisdiction,
			RetentionMS: s.Retention.Milliseconds(), State: string(s.State), CreatedBy: s.CreatedBy, CreatedAt: s.CreatedAt,
			Images: c[0], Faces: c[1]}
	}
	return out
}

// sourceState suspends a source (nothing more is ingested from it) or
// resumes it, audited.
func (e *cmdEnv) sourceState(ctx context.Context, args []string, state store.SourceState) error {
	name := map[store.SourceState]string{store.StateSuspended: "suspend", store.StateActive: "resume"}[state]
	fs := e.flags("source "+name, "usage: gabarit source "+name+" ID\n\n"+
		"Suspends a source (no further ingestion; what is held stays until its retention ends or it is\n"+
		"erased) or resumes it. Audited.")
	var df dataFlags
	df.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "source")
	if err != nil {
		return err
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	err = k.db.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.SetSourceState(ctx, id, state); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: actor(), Action: "source." + name,
			Object: fmt.Sprintf("source/%d", id), Detail: json.RawMessage(fmt.Sprintf(`{"state":%q}`, state))})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "source %d is %s\n", id, state)
	return nil
}
