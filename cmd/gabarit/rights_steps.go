package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
	"gabarit/internal/rights"
	"gabarit/internal/store"
)

// The steps of answering a rights request from the command line: find the
// candidates, review them, record the identity check, act on the reviewed
// set; then read the sealed record and record the Art. 19 notices.

// requireRole checks that the account running the command is an enabled
// user holding role.
func requireRole(ctx context.Context, db *store.DB, role store.Role) error {
	u, err := db.User(ctx, actor())
	if err == nil && u.Disabled.IsZero() && u.Has(role) {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("%s is not a user with the %s role: %w", actor(), role, store.ErrForbidden)
}

func (e *cmdEnv) rightsShow(ctx context.Context, args []string) error {
	fs := e.flags("rights show", "usage: gabarit rights show [--json] ID\n\n"+
		"One request: kind, dates, contact, the next step, the selfies, the candidate set and its review,\n"+
		"the identity check, the outcome, the proof of erasure and the searches to notify (Art. 19).")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "request")
	if err != nil {
		return err
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	methods, err := app.IdentityMethods(dk.Dir)
	if err != nil {
		return err
	}
	v, err := dk.Vault(ctx)
	if err != nil {
		return err
	}
	d, err := app.RequestDetails(ctx, dk.DB, v, methods, id, time.Now(), true)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(d)
	}
	return printRequest(e, d)
}

func printRequest(e *cmdEnv, d app.RequestDetail) error {
	loc, err := dsr.Location(d.Zone)
	if err != nil {
		loc = time.UTC
	}
	day := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04") }
	w := e.stdout
	fmt.Fprintf(w, "request R-%d: %s, %s\n", d.ID, d.Kind, d.State)
	fmt.Fprintf(w, "received  %s (%s)\n", day(d.Received), loc)
	fmt.Fprintf(w, "deadline  %s", day(d.Deadline))
	if d.Extended {
		fmt.Fprintf(w, " (extended: %s)", d.ExtendReason)
	}
	if d.Overdue {
		fmt.Fprint(w, " OVERDUE")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "contact   %s\n", d.Contact)
	if d.Next != "" {
		fmt.Fprintf(w, "next      %s\n", d.Next)
	}
	if d.Reason != "" {
		fmt.Fprintf(w, "refused   %s\n", d.Reason)
	}
	fmt.Fprintf(w, "selfies   %d kept for the review\n", len(d.Selfies))
	if d.Identity != nil {
		fmt.Fprintf(w, "identity  %s, by %s on %s", d.Identity.Label, d.Identity.By, day(d.Identity.At))
		if d.Identity.Note != "" {
			fmt.Fprintf(w, ": %s", d.Identity.Note)
		}
		fmt.Fprintln(w)
	}
	if rv := d.Review; rv != nil {
		fmt.Fprintf(w, "candidates %d among %d faces (strict points %.4f alone, %.4f with a look-alike, at FPIR %g; %d pre-selected, %d selected)",
			rv.Total, rv.Gallery, rv.Strict, rv.Group, rv.FPIR, rv.Preselected, rv.Selected)
		if rv.ReviewedBy != "" {
			fmt.Fprintf(w, ", reviewed by %s", rv.ReviewedBy)
		} else if d.Closed == nil {
			fmt.Fprint(w, ", NOT REVIEWED")
		}
		fmt.Fprintln(w)
		if len(rv.Candidates) > 0 {
			printCandidates(e, rv.Candidates)
		}
	}
	if len(d.Result) > 0 {
		fmt.Fprintf(w, "result    %s\n", d.Result)
	}
	for _, n := range d.Notify {
		if n.NotifiedAt != nil {
			fmt.Fprintf(w, "notify    search %d: told by %s on %s\n", n.SearchID, n.NotifiedBy, day(*n.NotifiedAt))
		} else {
			fmt.Fprintf(w, "notify    search %d: NOT YET TOLD (gabarit rights notified --search %d %d)\n", n.SearchID, n.SearchID, d.ID)
		}
	}
	if d.RestrictionInForce != nil {
		fmt.Fprintf(w, "restriction in force: %v\n", *d.RestrictionInForce)
	}
	if d.Record != nil {
		fmt.Fprintf(w, "record    sealed, sha256 %s (gabarit rights record %d)\n", d.Record.SHA256, d.ID)
	}
	return nil
}

func printCandidates(e *cmdEnv, cs []app.CandidateView) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FACE\tSCORE\tPER SELFIE\tBAND\tSTRANGERS\tPRE\tSELECTED")
	for _, c := range cs {
		sims := make([]string, len(c.Similarities))
		for i, s := range c.Similarities {
			sims[i] = fmt.Sprintf("%.3f", s)
		}
		mark := func(b bool) string {
			if b {
				return "yes"
			}
			return "-"
		}
		band := c.Band
		if c.Added {
			band += " (added)"
		}
		fmt.Fprintf(tw, "  %d\t%.4f\t%s\t%s\t%g\t%s\t%s\n", c.FaceID, c.Score, strings.Join(sims, " "), band, c.Strangers,
			mark(c.Preselected), mark(c.Selected))
	}
	_ = tw.Flush()
}

func (e *cmdEnv) rightsCandidates(ctx context.Context, args []string) error {
	fs := e.flags("rights candidates", "usage: gabarit rights candidates [--json] ID\n\n"+
		"Checks that the request's selfies show one person (the request is refused otherwise), then finds\n"+
		"every stored face that may be the person's, all of them whatever their date, scored against the\n"+
		"selfies together. Only faces at the strict operating point are pre-selected; nothing is done to\n"+
		"them until the set is reviewed (gabarit rights review) and acted on (gabarit rights process).")
	asJSON := fs.Bool("json", false, "print JSON")
	return e.rightsStep(ctx, fs, args, false, func(eng *rights.Engine, id int64) error {
		f, err := eng.Find(ctx, id, actor())
		if err != nil {
			return err
		}
		if f.Refused {
			if *asJSON {
				return json.NewEncoder(e.stdout).Encode(map[string]any{"id": id, "state": f.Request.State, "refused": true, "reason": f.Request.Reason})
			}
			fmt.Fprintf(e.stdout, "request %d refused: %s\n", id, f.Request.Reason)
			return nil
		}
		rv := app.NewReviewView(f.Review, true)
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(rv)
		}
		fmt.Fprintf(e.stdout, "request %d: %d candidate(s) among %d faces; %d pre-selected at the strict points %.4f alone, %.4f with a look-alike (FPIR %g)\n",
			id, rv.Total, rv.Gallery, rv.Preselected, rv.Strict, rv.Group, rv.FPIR)
		if rv.Beyond > 0 {
			fmt.Fprintf(e.stdout, "%d more faces over the floor were left out (the least similar)\n", rv.Beyond)
		}
		if f.Unreadable > 0 {
			fmt.Fprintf(e.stdout, "%d stored face(s) could not be compared: their template cannot be opened (gabarit quarantine list)\n", f.Unreadable)
		}
		printCandidates(e, rv.Candidates)
		return nil
	})
}

func (e *cmdEnv) rightsReview(ctx context.Context, args []string) error {
	fs := e.flags("rights review", "usage: gabarit rights review [--select IDS] [--deselect IDS] [--none] [--json] ID\n\n"+
		"Records the review of the request's candidate set: the selection so far (the pre-selection until\n"+
		"a first review), with --deselect faces taken out and --select faces put in (a face that is not a\n"+
		"candidate is added, with its score); --none starts from an empty selection. Exactly the\n"+
		"selected faces are acted on.")
	sel := fs.String("select", "", "face ids to act on, comma-separated")
	desel := fs.String("deselect", "", "face ids not to act on, comma-separated")
	none := fs.Bool("none", false, "start from no face selected")
	asJSON := fs.Bool("json", false, "print JSON")
	return e.rightsStep(ctx, fs, args, false, func(eng *rights.Engine, id int64) error {
		add, err := app.ParseFaceIDs(*sel)
		if err != nil {
			return usageErr(e, fs, "--select: %v", err)
		}
		drop, err := app.ParseFaceIDs(*desel)
		if err != nil {
			return usageErr(e, fs, "--deselect: %v", err)
		}
		rv, err := eng.Store.RightsReview(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("request %d: %w", id, rights.ErrNoCandidates)
		}
		if err != nil {
			return err
		}
		var want []int64
		if !*none {
			want = rv.Selected()
		}
		want = slices.DeleteFunc(append(want, add...), func(f int64) bool { return slices.Contains(drop, f) })
		rv, err = eng.Review(ctx, id, want, actor())
		if err != nil {
			return err
		}
		v := app.NewReviewView(rv, true)
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(v)
		}
		fmt.Fprintf(e.stdout, "request %d reviewed: %d of %d candidate(s) selected\n", id, v.Selected, v.Total)
		printCandidates(e, v.Candidates)
		return nil
	})
}

func (e *cmdEnv) rightsIdentity(ctx context.Context, args []string) error {
	fs := e.flags("rights identity", "usage: gabarit rights identity --method METHOD [--note TEXT] [--json] ID\n\n"+
		"Records how the requester's identity was established (GDPR Art. 12(6)); nothing is disclosed or\n"+
		"changed before it. The methods are the controller's (records.json, \"identity_methods\"); see them\n"+
		"with gabarit rights show --json ID.")
	method := fs.String("method", "", "how the identity was established")
	note := fs.String("note", "", "what was seen or checked (which document, which account, who)")
	asJSON := fs.Bool("json", false, "print JSON")
	return e.rightsStep(ctx, fs, args, false, func(eng *rights.Engine, id int64) error {
		if *method == "" {
			return usageErr(e, fs, "want --method")
		}
		r, err := eng.Identify(ctx, id, *method, *note, actor())
		if err != nil {
			return err
		}
		return printRequestView(e, r, *asJSON)
	})
}

func (e *cmdEnv) rightsProcess(ctx context.Context, args []string) error {
	fs := e.flags("rights process", "usage: gabarit rights process --confirm N [--json] ID\n\n"+
		"Acts on exactly the reviewed set, once the identity check is recorded: an access package, an\n"+
		"erasure with its proof, a suppression entry, or a restriction. --confirm is the number of\n"+
		"selected faces you confirm acting on (a review that changed since is refused); a request left\n"+
		"in progress by an interrupted run is finished without it.")
	confirm := fs.Int("confirm", -1, "the number of reviewed faces to act on")
	asJSON := fs.Bool("json", false, "print JSON")
	return e.rightsStep(ctx, fs, args, true, func(eng *rights.Engine, id int64) error {
		r, err := eng.Store.RightsRequest(ctx, id)
		if err != nil {
			return err
		}
		resume := r.Acting()
		if *confirm < 0 && !resume && !r.State.Final() {
			return usageErr(e, fs, "want --confirm N: the number of reviewed faces to act on (see gabarit rights show %d)", id)
		}
		out, err := eng.Process(ctx, id, *confirm, actor())
		if errors.Is(err, rights.ErrNotOpen) {
			return fmt.Errorf("request %d is already %s", id, r.State)
		}
		if err != nil {
			return err
		}
		res := map[string]any{"id": id, "state": out.Request.State, "acted_on": out.ActedOn}
		switch {
		case out.Package != "":
			res["package"] = out.Package
			res["package_sha256"] = out.PackageSHA
		case out.Proof != nil:
			res["erased"] = out.Erased
			res["erased_images"] = out.ErasedImages
			res["proof"] = out.Proof
			res["notify_searches"] = out.Recipients
		case out.Request.Kind == dsr.Restriction:
			res["restricted"] = true
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(res)
		}
		fmt.Fprintf(e.stdout, "request %d: %s, acted on %d face(s)", id, out.Request.State, out.ActedOn)
		switch {
		case out.Package != "":
			fmt.Fprintf(e.stdout, "; access package %s (sha256 %s)", out.Package, out.PackageSHA)
		case out.Proof != nil:
			fmt.Fprintf(e.stdout, "; %d faces and %d images erased, proof %s", out.Erased, out.ErasedImages,
				map[bool]string{true: "passed", false: "FAILED"}[out.Proof.OK])
			if len(out.Recipients) > 0 {
				fmt.Fprintf(e.stdout, "; tell the users of searches %v (Art. 19)", out.Recipients)
			}
		}
		fmt.Fprintln(e.stdout)
		return nil
	})
}

func (e *cmdEnv) rightsRefuse(ctx context.Context, args []string) error {
	fs := e.flags("rights refuse", "usage: gabarit rights refuse --reason TEXT [--json] ID\n\n"+
		"Refuses a request, with the reason the person will be given (for example: the identity could not\n"+
		"be established). The selfies are deleted.")
	reason := fs.String("reason", "", "why")
	asJSON := fs.Bool("json", false, "print JSON")
	return e.rightsStep(ctx, fs, args, false, func(eng *rights.Engine, id int64) error {
		if strings.TrimSpace(*reason) == "" {
			return usageErr(e, fs, "want --reason")
		}
		r, err := eng.Refuse(ctx, id, *reason, actor())
		if err != nil {
			return err
		}
		return printRequestView(e, r, *asJSON)
	})
}

func (e *cmdEnv) rightsRecord(ctx context.Context, args []string) error {
	fs := e.flags("rights record", "usage: gabarit rights record [--json] ID\n\n"+
		"Opens the sealed record of what was done for a request, and to which faces (erased, suppressed,\n"+
		"restricted or disclosed), with the candidates the review left out. Only a user with the dpo role\n"+
		"may read it; each reading is audited.")
	asJSON := fs.Bool("json", false, "print JSON")
	return e.rightsStep(ctx, fs, args, false, func(eng *rights.Engine, id int64) error {
		if db, ok := eng.Store.(*store.DB); ok {
			if err := requireRole(ctx, db, store.RoleDPO); err != nil {
				return err
			}
		}
		rec, err := eng.OpenRecord(ctx, id, actor())
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(rec)
		}
		fmt.Fprintf(e.stdout, "request %d (%s), acted on by %s on %s\n", rec.RequestID, rec.Kind, rec.ActedBy, rec.ActedAt.Format(time.RFC3339))
		if rec.Identity != nil {
			fmt.Fprintf(e.stdout, "identity: %s by %s; %s\n", rec.Identity.Method, rec.Identity.By, rec.Identity.Note)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FACE\tACTED ON\tSCORE\tBAND\tPRE-SELECTED\tSOURCE\tLOCATOR")
		for _, f := range rec.Faces {
			fmt.Fprintf(tw, "%d\tyes\t%.4f\t%s\t%v\t%d\t%s\n", f.FaceID, f.Score, f.Band, f.Preselected, f.SourceID, printable(f.Locator))
		}
		for _, f := range rec.Others {
			fmt.Fprintf(tw, "%d\tno\t%.4f\t%s\t%v\t\t\n", f.FaceID, f.Score, f.Band, f.Preselected)
		}
		return tw.Flush()
	})
}

func (e *cmdEnv) rightsNotified(ctx context.Context, args []string) error {
	fs := e.flags("rights notified", "usage: gabarit rights notified --search SEARCH ID\n\n"+
		"Records that the users of a search that had returned faces since erased were told of the\n"+
		"erasure (GDPR Art. 19).")
	search := fs.Int64("search", 0, "the search whose users were told")
	return e.rightsStep(ctx, fs, args, false, func(eng *rights.Engine, id int64) error {
		if *search <= 0 {
			return usageErr(e, fs, "want --search SEARCH")
		}
		if err := eng.Notified(ctx, id, *search, actor()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "request %d: notice to the users of search %d recorded\n", id, *search)
		return nil
	})
}

// rightsStep runs one step of answering a request: it parses fs (with the
// face and data flags) and the request's ID, wires the engine (under the
// writer lock when exclusive) and calls run.
func (e *cmdEnv) rightsStep(ctx context.Context, fs *flag.FlagSet, args []string, exclusive bool, run func(eng *rights.Engine, id int64) error) error {
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "request")
	if err != nil {
		return err
	}
	eng, cleanup, err := e.rightsEngine(ctx, &ff, &df, exclusive)
	if err != nil {
		return err
	}
	defer cleanup()
	return run(eng, id)
}
