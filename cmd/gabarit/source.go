package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
)

func (e *cmdEnv) source(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "source", args,
		subcommand{"add", e.sourceAdd},
		subcommand{"list", e.sourceList},
		subcommand{"suspend", func(ctx context.Context, a []string) error { return e.sourceState(ctx, a, store.StateSuspended) }},
		subcommand{"resume", func(ctx context.Context, a []string) error { return e.sourceState(ctx, a, store.StateActive) }})
}

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
		basis        = fs.String("legal-basis", "", "GDPR Art. 6(1) basis: "+app.JoinBases())
		art9         = fs.String("art9", "", "GDPR Art. 9(2) condition: 9(2)(a) … 9(2)(j), or a name such as explicit-consent")
		jurisdiction = fs.String("jurisdiction", "", "ISO 3166-1 alpha-2 country code of the governing law, e.g. FR")
		retention    = fs.String("retention", "", "how long each image is kept after ingestion: 30d, 6m, 1y, 720h …")
		asJSON       = fs.Bool("json", false, `print {"id":…}`)
	)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() > 0 {
		return usageErr(e, fs, "unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	src, err := app.Declaration{Kind: *kind, Path: *path, Controller: *controller, Purpose: *purpose, LegalBasis: *basis,
		Art9: *art9, Jurisdiction: *jurisdiction, Retention: *retention}.Validate("--")
	if err != nil {
		return usageErr(e, fs, "%v", err)
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	id, err := app.AddSource(ctx, k.DB, src, actor())
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

func (e *cmdEnv) sourceList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("source list", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "one JSON array")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	srcs, err := k.DB.Sources(ctx)
	if err != nil {
		return err
	}
	counts, err := k.DB.SourceCounts(ctx)
	if err != nil {
		return err
	}
	out := app.SourceViews(srcs, counts)
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

// sourceState suspends a source (nothing more is ingested from it) or
// resumes it, audited.
func (e *cmdEnv) sourceState(ctx context.Context, args []string, state store.SourceState) error {
	name := map[store.SourceState]string{store.StateSuspended: "suspend", store.StateActive: "resume"}[state]
	fs := e.flags("source "+name, "usage: gabarit source "+name+" ID\n\n"+
		"Suspends a source (no further ingestion; what is held stays until its retention ends or it is\n"+
		"erased) or resumes it. Audited.")
	var df dataFlags
	df.register(fs)
	if err := parseArgs(fs, args); err != nil {
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
	if err := app.SetSourceState(ctx, k.DB, id, state, actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "source %d is %s\n", id, state)
	return nil
}
