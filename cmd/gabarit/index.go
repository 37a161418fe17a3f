package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gabarit/internal/store"
)

func (e *cmdEnv) index(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "index", args,
		subcommand{"status", e.indexStatus},
		subcommand{"forget", e.indexForget})
}

// indexStatusJSON is what `gabarit index status --json` prints.
type indexStatusJSON struct {
	Outbox struct {
		Head       int64  `json:"head"`
		Pruned     int64  `json:"pruned"`
		Operations int64  `json:"operations"`
		Oldest     string `json:"oldest,omitempty"`
	} `json:"outbox"`
	Remote []indexCursorJSON `json:"remote"`
}

type indexCursorJSON struct {
	Name           string `json:"name"`
	Model          string `json:"model"`
	Dim            int    `json:"dim"`
	Applied        int64  `json:"applied_seq"`
	Behind         int64  `json:"behind"`
	PendingDeletes int64  `json:"pending_deletes"`
	Created        string `json:"created"`
	Moved          string `json:"moved"`
}

// stamp is how commands print a time in JSON and text: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func cursorJSON(c store.IndexCursorState) indexCursorJSON {
	return indexCursorJSON{Name: c.Name, Model: c.ModelID, Dim: c.Dim, Applied: c.Applied, Behind: c.Behind,
		PendingDeletes: c.PendingDeletes, Created: stamp(c.Created), Moved: stamp(c.Moved)}
}

func (e *cmdEnv) indexStatus(ctx context.Context, args []string) error {
	fs := e.flags("index status", "usage: gabarit index status [--json]\n\n"+
		"Prints the index outbox (the changes of faces that vector indexes apply) and every remote index\n"+
		"(Weaviate collection) following it: how many changes it has not applied yet, and how many faces\n"+
		"some replica still holds after their deletion. The outbox is pruned only up to the remote index\n"+
		"furthest behind: one no longer used keeps it growing until `gabarit index forget` forgets it.")
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 {
		return usageErr(e, fs, "no arguments expected")
	}
	dk, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer dk.Close()
	st, err := dk.IndexState(ctx)
	if err != nil {
		return err
	}
	var out indexStatusJSON
	out.Outbox.Head, out.Outbox.Pruned, out.Outbox.Operations = st.Outbox.Head, st.Outbox.Pruned, st.Outbox.Operations
	if !st.Outbox.Oldest.IsZero() {
		out.Outbox.Oldest = stamp(st.Outbox.Oldest)
	}
	out.Remote = []indexCursorJSON{}
	for _, c := range st.Remote {
		out.Remote = append(out.Remote, cursorJSON(c))
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	fmt.Fprintf(e.stdout, "index outbox: head %d, %d operations kept (pruned up to %d", out.Outbox.Head, out.Outbox.Operations, out.Outbox.Pruned)
	if out.Outbox.Oldest != "" {
		fmt.Fprintf(e.stdout, "; oldest %s", out.Outbox.Oldest)
	}
	fmt.Fprintln(e.stdout, ")")
	if len(out.Remote) == 0 {
		fmt.Fprintln(e.stdout, "no remote index")
	}
	for _, c := range out.Remote {
		fmt.Fprintf(e.stdout, "%s: model %s, applied %d, %d changes behind, %d pending deletes, last moved %s\n",
			printable(c.Name), printable(c.Model), c.Applied, c.Behind, c.PendingDeletes, c.Moved)
	}
	return nil
}

func (e *cmdEnv) indexForget(ctx context.Context, args []string) error {
	fs := e.flags("index forget", "usage: gabarit index forget --confirm [--collection-gone] NAME\n\n"+
		"Forgets a remote index no longer used (an admin's command, audited as index.forget): drops its\n"+
		"Weaviate collection from the cluster given by --index (or GABARIT_INDEX), then forgets its place\n"+
		"in the index outbox, its pending deletes and its sealed rotation secret, so that the outbox is\n"+
		"pruned again. NAME is as `gabarit index status` prints it. Stop the instances that use it first;\n"+
		"opening it again fills a new collection from the store. --collection-gone: the collection no\n"+
		"longer exists anywhere (its cluster was deleted); nothing is dropped, and the audit entry says so.")
	var df dataFlags
	df.register(fs)
	confirm := fs.Bool("confirm", false, "required: the collection and its place in the outbox are gone for good")
	gone := fs.Bool("collection-gone", false, "the collection no longer exists: forget it without dropping anything")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 1 {
		return usageErr(e, fs, "want one index name (see gabarit index status)")
	}
	if !*confirm {
		return usageErr(e, fs, "--confirm required: the collection is dropped and the index forgotten for good")
	}
	name := fs.Arg(0)
	dk, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := requireAdmin(ctx, dk.DB, nil); err != nil {
		return err
	}
	was, err := dk.ForgetIndex(ctx, name, actor(), *gone)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w (see gabarit index status)", err)
	}
	if err != nil {
		return err
	}
	what := "its collection dropped"
	if *gone {
		what = "nothing dropped (--collection-gone)"
	}
	fmt.Fprintf(e.stdout, "forgot %s (model %s, %d changes behind, %d pending deletes); %s\n",
		printable(was.Name), printable(was.ModelID), was.Behind, was.PendingDeletes, what)
	return nil
}
