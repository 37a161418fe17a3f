package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gabarit/internal/dsr"
	"gabarit/internal/face"
	"gabarit/internal/pipeline"
	"gabarit/internal/rights"
	"gabarit/internal/source"
	"gabarit/internal/source/archive"
	"gabarit/internal/store"
	"gabarit/internal/vault"
)

func (e *cmdEnv) rights(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "rights", args,
		subcommand{"request", e.rightsRequest},
		subcommand{"process", e.rightsProcess},
		subcommand{"list", e.rightsList},
		subcommand{"extend", e.rightsExtend},
		subcommand{"lift", e.rightsLift})
}

// requestJSON is a request as the rights commands print it. The contact is
// not printed: it is where the answer goes, not part of the register's view.
type requestJSON struct {
	ID           int64           `json:"id"`
	Kind         string          `json:"kind"`
	State        string          `json:"state"`
	Received     time.Time       `json:"received"`
	Due          time.Time       `json:"due"`
	Deadline     time.Time       `json:"deadline"`
	Extended     bool            `json:"extended"`
	Overdue      bool            `json:"overdue"`
	Late         bool            `json:"late"`
	Reason       string          `json:"reason,omitempty"`
	Closed       *time.Time      `json:"closed,omitempty"`
	MatchedFaces int             `json:"matched_faces"`
	Result       json.RawMessage `json:"result,omitempty"`
}

// registerJSON converts the rights register and counts the requests
// overdue at now.
func registerJSON(reqs []dsr.Request, now time.Time) (out []requestJSON, overdue int) {
	out = make([]requestJSON, len(reqs))
	for i, r := range reqs {
		out[i] = toRequestJSON(r, now)
		if out[i].Overdue {
			overdue++
		}
	}
	return out, overdue
}

func toRequestJSON(r dsr.Request, now time.Time) requestJSON {
	j := requestJSON{ID: r.ID, Kind: string(r.Kind), State: string(r.State), Received: r.Received, Due: r.Due,
		Deadline: r.Deadline(), Extended: r.Extended, Overdue: r.Overdue(now), Late: r.Late(), Reason: r.Reason,
		MatchedFaces: len(r.Matches), Result: r.Result}
	if !r.Closed.IsZero() {
		c := r.Closed
		j.Closed = &c
	}
	return j
}

func (e *cmdEnv) rightsRequest(ctx context.Context, args []string) error {
	fs := e.flags("rights request", "usage: gabarit rights request --kind access|erasure|objection|restriction --selfie PHOTO [--selfie PHOTO…] --contact TEXT\n\n"+
		"Registers a data-subject request keyed by face. The selfies' templates are kept, encrypted, until\n"+
		"the request closes; the photos are not kept. Prints {\"id\",\"state\",\"due\",…}. There is no limit on\n"+
		"how many requests a person makes.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	kind := fs.String("kind", "", "access, erasure, objection or restriction")
	contact := fs.String("contact", "", "where the answer goes (address, e-mail)")
	var selfies multiFlag
	fs.Var(&selfies, "selfie", "a photo of the person (repeat for more; they must match each other)")
	if err := fs.Parse(args); err != nil {
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
		b, err := os.ReadFile(p)
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
	return json.NewEncoder(e.stdout).Encode(toRequestJSON(r, time.Now()))
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
	v, err := dk.vault(ctx)
	if err != nil {
		dk.Close()
		kit.Close()
		return nil, nil, err
	}
	org, err := loadOrganisation(dk.dir)
	if err != nil {
		dk.Close()
		kit.Close()
		return nil, nil, err
	}
	m := kit.manifest
	eng := &rights.Engine{An: analyzer{kit.pipe}, Store: dk.db, Keys: dk.keys, Vault: v, ModelID: m.Embedder.ID(),
		Match: m.Thresholds.SamePerson, SelfieMatch: selfieMatch, Image: readSourceImage,
		Controller: org.Controller, DPO: org.DPO, Authority: org.Authority, OutDir: filepath.Join(dk.dir, "rights")}
	cleanup := func() {
		if eng.Index != nil {
			eng.Index.Close()
		}
		dk.Close()
		kit.Close()
	}
	if exclusive {
		h, err := dk.openIndex(ctx, m.Embedder.ID(), m.Embedder.Dim)
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

// selfieMatch is the least similarity between two selfies of one request:
// the threshold at a false-accept rate of 1e-4 on celeba-dev (`gabarit eval
// calibrate --root ../shared/data/celeba-dev --far 1e-4`: 0.4525, FAR
// 0.0000997 over 3,089,514 impostor pairs, TAR 0.810), ten times stricter
// than the search threshold (FAR 1e-3), since a request hands data over. At
// 1e-5 the threshold would be 0.679 with a TAR of only 0.394 on these
// in-the-wild photos: too many genuine requests refused.
const selfieMatch = 0.4525

func (e *cmdEnv) rightsProcess(ctx context.Context, args []string) error {
	fs := e.flags("rights process", "usage: gabarit rights process [--json] ID\n\n"+
		"Verifies the request's selfies against each other, finds every stored face of the person\n"+
		"(all of them, whatever their date) and carries the request out: an access package, an erasure\n"+
		"with its proof, a suppression entry, or a restriction. Prints {\"state\",\"matched_faces\",…}.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "request")
	if err != nil {
		return err
	}
	eng, cleanup, err := e.rightsEngine(ctx, &ff, &df, true)
	if err != nil {
		return err
	}
	defer cleanup()
	out, err := eng.Process(ctx, id, actor())
	if errors.Is(err, rights.ErrNotOpen) {
		return fmt.Errorf("request %d is already %s", id, out.Request.State)
	}
	if err != nil {
		return err
	}
	res := map[string]any{"id": id, "state": out.Request.State, "matched_faces": out.MatchedFaces}
	if out.Request.Reason != "" {
		res["reason"] = out.Request.Reason
	}
	switch {
	case out.Package != "":
		res["package"] = out.Package
	case out.Proof != nil:
		res["erased"] = out.Erased
		res["erased_images"] = out.ErasedImages
		res["proof"] = out.Proof
		res["notify_searches"] = out.Recipients
	case out.Request.Kind == dsr.Restriction && out.Request.State == dsr.Completed:
		res["restricted"] = true
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "request %d: %s, %d matching faces", id, out.Request.State, out.MatchedFaces)
	switch {
	case out.Request.Reason != "":
		fmt.Fprintf(e.stdout, " (%s)", out.Request.Reason)
	case out.Package != "":
		fmt.Fprintf(e.stdout, "; access package %s", out.Package)
	case out.Proof != nil:
		fmt.Fprintf(e.stdout, "; %d faces and %d images erased, proof %s", out.Erased, out.ErasedImages,
			map[bool]string{true: "passed", false: "FAILED"}[out.Proof.OK])
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func (e *cmdEnv) rightsList(ctx context.Context, args []string) error {
	fs := e.flags("rights list", "usage: gabarit rights list [--json]\n\nThe register of rights requests, with deadlines and outcomes.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "one JSON array")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	reqs, err := dk.db.RightsRequests(ctx)
	if err != nil {
		return err
	}
	out, _ := registerJSON(reqs, time.Now())
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
	if err := fs.Parse(args); err != nil {
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
	r, err := dk.db.UpdateRightsRequest(ctx, id, actor(), func(r *dsr.Request, now time.Time) error {
		return r.Extend(now, *months, *reason)
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(e.stdout).Encode(toRequestJSON(r, time.Now()))
}

func (e *cmdEnv) rightsLift(ctx context.Context, args []string) error {
	fs := e.flags("rights lift", "usage: gabarit rights lift ID\n\n"+
		"Lifts the restriction a completed restriction request put in place (GDPR Art. 18(3)): the\n"+
		"person's faces are shown by searches again. Audited.")
	var df dataFlags
	df.register(fs)
	if err := fs.Parse(args); err != nil {
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
	r, err := dk.db.RightsRequest(ctx, id)
	if err != nil {
		return err
	}
	if r.Kind != dsr.Restriction || r.State != dsr.Completed {
		return fmt.Errorf("request %d is a %s request in state %s: only a completed restriction can be lifted", id, r.Kind, r.State)
	}
	v, err := dk.vault(ctx)
	if err != nil {
		return err
	}
	n, err := v.RemoveRequest(ctx, id, vault.Restriction)
	if err != nil {
		return err
	}
	if _, err := dk.db.AppendAudit(ctx, nil, store.AuditEntry{Actor: actor(), Action: "rights.restriction-lifted",
		Object: fmt.Sprintf("rights/%d", id), Detail: json.RawMessage(fmt.Sprintf(`{"entries":%d}`, n))}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "restriction of request %d lifted\n", id)
	return nil
}

// readSourceImage reads an image of a source by its locator, for an access
// package: beneath a folder's root, or from an archive.
func readSourceImage(ctx context.Context, src store.Source, locator string) ([]byte, error) {
	const limit = source.DefaultMaxFileBytes
	switch src.Kind {
	case store.KindFolder:
		root, err := os.OpenRoot(src.Locator)
		if err != nil {
			return nil, err
		}
		defer root.Close()
		f, err := root.Open(filepath.FromSlash(locator))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f, limit)
	case store.KindArchive:
		a, err := archive.Open(src.Locator, source.Limits{})
		if err != nil {
			return nil, err
		}
		var data []byte
		errFound := errors.New("found")
		err = a.Walk(ctx, func(it source.Item, err error) error {
			if err != nil || it.Locator != locator {
				return nil
			}
			rc, err := it.Open()
			if err != nil {
				return err
			}
			defer rc.Close()
			if data, err = readLimited(rc, limit); err != nil {
				return err
			}
			return errFound
		})
		if errors.Is(err, errFound) {
			return data, nil
		}
		if err == nil {
			err = os.ErrNotExist
		}
		return nil, err
	}
	return nil, fmt.Errorf("%s sources keep no still image", src.Kind)
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = source.ErrTooLarge
	}
	return b, err
}
