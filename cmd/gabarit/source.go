package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/store"
	"gabarit/internal/vstore"
)

func (e *cmdEnv) source(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "source", args,
		subcommand{"add", e.sourceAdd},
		subcommand{"list", e.sourceList},
		subcommand{"suspend", func(ctx context.Context, a []string) error { return e.sourceState(ctx, a, store.StateSuspended) }},
		subcommand{"resume", func(ctx context.Context, a []string) error { return e.sourceState(ctx, a, store.StateActive) }},
		subcommand{"retire", e.sourceRetire})
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
	dataDir, err := app.DataDir(df.dir)
	if err != nil {
		return err
	}
	src, err := app.Declaration{Kind: *kind, Path: *path, Controller: *controller, Purpose: *purpose, LegalBasis: *basis,
		Art9: *art9, Jurisdiction: *jurisdiction, Retention: *retention, DataDir: dataDir}.Validate("--")
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
			s.Images, s.Faces, printable(s.Controller), printable(s.Path))
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

// sourceRetire retires a source for good: see app.RetireSource.
func (e *cmdEnv) sourceRetire(ctx context.Context, args []string) error {
	fs := e.flags("source retire", "usage: gabarit source retire ID --confirm [--reason TEXT] [--json]\n\n"+
		"Retires a source for good: nothing more is ingested from it, its data key is destroyed (its\n"+
		"templates become unreadable everywhere, backups included) and its images and faces are deleted\n"+
		"from the store and the vector index. Its declaration and the audit log stay. Audited\n"+
		"(source.retire). Without --confirm it only says what would be destroyed. Run it again to finish\n"+
		"a retirement that was interrupted.")
	var ff faceFlags
	fs.StringVar(&ff.cache, "cache", "", "installation directory, for the model pack whose vector index is updated (default $GABARIT_CACHE or ~/.cache/gabarit)")
	fs.StringVar(&ff.pack, "pack", "default", "model pack whose vector index is updated: a name under the installation's packs/ or a directory")
	var df dataFlags
	df.register(fs)
	confirm := fs.Bool("confirm", false, "retire the source: this cannot be undone")
	reason := fs.String("reason", "", "why the source is retired, kept in the audit log (no names or e-mail addresses)")
	asJSON := fs.Bool("json", false, `print {"source_id":…,"already_retired":…,"images":…,"faces":…}`)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "source")
	if err != nil {
		return err
	}
	if !*confirm {
		return e.retirePreview(ctx, fs, &df, id, *asJSON)
	}
	k, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer k.Close()
	held, err := k.DB.SourceHoldings(ctx, id)
	if err != nil {
		return noSource(err, id)
	}
	o := app.Retirement{Actor: actor(), Reason: *reason}
	// The faces leave the pack's index at once; without a pack, the saved
	// index is rebuilt from the store when it is next opened.
	var h *vstore.Handle
	if held.Faces > 0 {
		m, merr := ff.manifest()
		if merr != nil {
			fmt.Fprintln(e.stderr, "gabarit source retire: no model pack to open the vector index with; it is rebuilt from the store when next opened")
		} else {
			if h, err = k.OpenIndex(ctx, m.Embedder.ID(), m.Embedder.Dim); err != nil {
				return err
			}
			defer h.Close()
			o.Index = h.Index
		}
	}
	rep, err := app.RetireSource(ctx, k.DB, k.Keys, id, o)
	if h != nil {
		if saveErr := h.Save(context.WithoutCancel(ctx)); saveErr != nil {
			err = errors.Join(err, saveErr)
		}
	}
	if err != nil {
		return fmt.Errorf("%w (run gabarit source retire %d --confirm again to finish)", err, id)
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(rep)
	}
	if rep.AlreadyRetired {
		fmt.Fprintf(e.stdout, "source %d was already retired; %s and %s left over were deleted\n", id,
			howMany(rep.Images, "image"), howMany(rep.Faces, "face"))
		return nil
	}
	fmt.Fprintf(e.stdout, "source %d is retired: its data key is destroyed, and %s and %s are deleted\n", id,
		howMany(rep.Images, "image"), howMany(rep.Faces, "face"))
	return nil
}

// retirePreview says what retiring source id would destroy and exits 2:
// retiring needs --confirm.
func (e *cmdEnv) retirePreview(ctx context.Context, fs *flag.FlagSet, df *dataFlags, id int64, asJSON bool) error {
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	src, err := k.DB.Source(ctx, id)
	if err != nil {
		return noSource(err, id)
	}
	h, err := k.DB.SourceHoldings(ctx, id)
	if err != nil {
		return err
	}
	retired := h.State == store.StateDeleted
	if retired && h.Images == 0 && !h.Key {
		if asJSON {
			return json.NewEncoder(e.stdout).Encode(app.RetireReport{SourceID: id, AlreadyRetired: true})
		}
		fmt.Fprintf(e.stdout, "source %d is already retired; nothing of it is left\n", id)
		return nil
	}
	if asJSON {
		if err := json.NewEncoder(e.stdout).Encode(app.RetireReport{SourceID: id, AlreadyRetired: retired,
			Images: h.Images, Faces: h.Faces}); err != nil {
			return err
		}
	} else if retired {
		fmt.Fprintf(e.stdout, "source %d is retired, but %s and %s are left (an interrupted retirement)\n", id,
			howMany(h.Images, "image"), howMany(h.Faces, "face"))
	} else {
		fmt.Fprintf(e.stdout, "source %d (%s %s, %s) holds %s and %s.\n"+
			"Retiring it destroys its data key (its templates become unreadable everywhere, backups included),\n"+
			"deletes those images and faces from the store and the vector index, and ends its ingestion.\n",
			id, src.Kind, src.Locator, src.Controller, howMany(h.Images, "image"), howMany(h.Faces, "face"))
	}
	if retired {
		return usageErr(e, fs, "add --confirm to finish retiring source %d", id)
	}
	return usageErr(e, fs, "add --confirm to retire source %d: this cannot be undone", id)
}

// noSource says "no source N" for a source that is not there.
func noSource(err error, id int64) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no source %d (see gabarit source list)", id)
	}
	return err
}

// howMany says "1 image", "2 images".
func howMany(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
