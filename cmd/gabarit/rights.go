package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/imageproc"
	"gabarit/internal/pipeline"
	"gabarit/internal/rights"
)

func (e *cmdEnv) rights(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "rights", args,
		subcommand{"request", e.rightsRequest},
		subcommand{"list", e.rightsList},
		subcommand{"show", e.rightsShow},
		subcommand{"candidates", e.rightsCandidates},
		subcommand{"review", e.rightsReview},
		subcommand{"identity", e.rightsIdentity},
		subcommand{"process", e.rightsProcess},
		subcommand{"refuse", e.rightsRefuse},
		subcommand{"record", e.rightsRecord},
		subcommand{"notified", e.rightsNotified},
		subcommand{"extend", e.rightsExtend},
		subcommand{"lift", e.rightsLift})
}

func (e *cmdEnv) rightsRequest(ctx context.Context, args []string) error {
	fs := e.flags("rights request", "usage: gabarit rights request --kind access|erasure|objection|restriction --selfie PHOTO [--selfie PHOTO…] --contact TEXT [--json]\n\n"+
		"Registers a data-subject request keyed by face. The selfies' templates, and the crops of their\n"+
		"faces for the review, are kept sealed until the request closes; the photos are not kept. Prints\n"+
		"the request's reference and due date ({\"id\",\"state\",\"due\",…} with --json). There is no limit\n"+
		"on how many requests a person makes. Then: gabarit rights candidates, review, identity, process.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	kind := fs.String("kind", "", "access, erasure, objection or restriction")
	contact := fs.String("contact", "", "where the answer goes (address, e-mail)")
	var selfies multiFlag
	fs.Var(&selfies, "selfie", "a photo of the person (repeat for more; they must match each other)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	k, err := dsr.ParseKind(*kind)
	if err != nil {
		return usageErr(e, fs, "--kind: %v", err)
	}
	if len(selfies) == 0 || strings.TrimSpace(*contact) == "" || fs.NArg() > 0 {
		return usageErr(e, fs, "want --kind, at least one --selfie and --contact")
	}
	var photos [][]byte
	for _, p := range selfies {
		b, err := imageproc.ReadFile(p, 0)
		if err != nil {
			return err
		}
		photos = append(photos, b)
	}
	ff.minFaceFrac = -1
	eng, cleanup, err := e.rightsEngine(ctx, &ff, &df, false)
	if err != nil {
		return err
	}
	defer cleanup()
	r, err := eng.Register(ctx, k, photos, *contact, actor())
	if errors.Is(err, face.ErrNoFace) {
		return fmt.Errorf("%w", err)
	}
	if err != nil {
		return err
	}
	return printRequestView(e, r, *asJSON)
}

// rightsEngine wires a rights.Engine: models, store, keyring, vault and
// (for processing) the vector index under the writer lock.
func (e *cmdEnv) rightsEngine(ctx context.Context, ff *faceFlags, df *dataFlags, exclusive bool) (*rights.Engine, func(), error) {
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return nil, nil, err
	}
	dk, err := df.open(ctx, exclusive)
	if err != nil {
		kit.Close()
		return nil, nil, err
	}
	v, err := dk.Vault(ctx)
	if err != nil {
		dk.Close()
		kit.Close()
		return nil, nil, err
	}
	eng, err := app.RightsEngine(dk, kit, v, nil)
	if err != nil {
		dk.Close()
		kit.Close()
		return nil, nil, err
	}
	m := kit.Manifest
	cleanup := func() {
		if eng.Index != nil {
			eng.Index.Close()
		}
		dk.Close()
		kit.Close()
	}
	if exclusive {
		h, err := dk.OpenIndex(ctx, m.Embedder.ID(), m.Embedder.Dim)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		eng.Index = h.Index
		prev := cleanup
		cleanup = func() {
			if err := h.Save(context.WithoutCancel(ctx)); err != nil {
				e.logger.Warn("save vector index", "err", err)
			}
			prev()
		}
	}
	return eng, cleanup, nil
}

func (e *cmdEnv) rightsList(ctx context.Context, args []string) error {
	fs := e.flags("rights list", "usage: gabarit rights list [--json]\n\nThe register of rights requests, with deadlines and outcomes.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "one JSON array")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	reqs, err := dk.DB.RightsRequests(ctx)
	if err != nil {
		return err
	}
	out, _ := app.RegisterView(reqs, time.Now())
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tRECEIVED\tDEADLINE\tFACES\tNOTE")
	for _, r := range out {
		note := ""
		switch {
		case r.Overdue:
			note = "OVERDUE"
		case r.Late:
			note = "answered late"
		case r.Extended:
			note = "extended"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Kind, r.State, r.Received.Format("2006-01-02 15:04"),
			r.Deadline.Format("2006-01-02"), r.MatchedFaces, note)
	}
	return tw.Flush()
}

func (e *cmdEnv) rightsExtend(ctx context.Context, args []string) error {
	fs := e.flags("rights extend", "usage: gabarit rights extend --months 1|2 --reason TEXT --notice-sent ID\n\n"+
		"Extends a request's deadline once, before the original deadline (GDPR Art. 12(3)). Tell the\n"+
		"person first, with the reason, then confirm it with --notice-sent.")
	var df dataFlags
	df.register(fs)
	months := fs.Int("months", 0, "1 or 2")
	reason := fs.String("reason", "", "why (complexity, number of requests)")
	notice := fs.Bool("notice-sent", false, "the person has been told, with the reason")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "request")
	if err != nil {
		return err
	}
	if !*notice {
		return usageErr(e, fs, "tell the person first, then confirm with --notice-sent")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	r, err := app.ExtendRequest(ctx, dk.DB, id, *months, *reason, actor())
	if err != nil {
		return err
	}
	return printRequestView(e, r, *asJSON)
}

func (e *cmdEnv) rightsLift(ctx context.Context, args []string) error {
	fs := e.flags("rights lift", "usage: gabarit rights lift ID\n\n"+
		"Lifts the restriction a completed restriction request put in place (GDPR Art. 18(3)): the\n"+
		"person's faces are shown by searches again. Audited.")
	var df dataFlags
	df.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "request")
	if err != nil {
		return err
	}
	// The writer lock: a running server holds the vault's restrictions in
	// memory, so lifting one goes through it (or waits for it to stop).
	dk, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer dk.Close()
	v, err := dk.Vault(ctx)
	if err != nil {
		return err
	}
	if err := app.LiftRestriction(ctx, dk.DB, v, id, actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "restriction of request %d lifted\n", id)
	return nil
}

// printRequestView prints a request as the register shows it: a line of
// text, or JSON.
func printRequestView(e *cmdEnv, r dsr.Request, asJSON bool) error {
	v := app.NewRequestView(r, time.Now())
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(v)
	}
	loc, err := dsr.Location(r.Zone)
	if err != nil {
		loc = time.UTC
	}
	fmt.Fprintf(e.stdout, "request R-%d: %s, %s; due %s (%s)", v.ID, v.Kind, v.State, v.Deadline.In(loc).Format("2006-01-02"), loc)
	if v.Reason != "" {
		fmt.Fprintf(e.stdout, "; refused: %s", v.Reason)
	}
	_, err = fmt.Fprintln(e.stdout)
	return err
}
