package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/retention"
)

func (e *cmdEnv) purge(ctx context.Context, args []string) error {
	fs := e.flags("purge", "usage: gabarit purge [--json]\n\n"+
		"Deletes every image kept past its source's retention period, with its faces, templates and\n"+
		"index entries. Each purge is audited.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, `print {"images":…,"faces":…}`)
	at := fs.String("now", "", "purge as if it were this RFC 3339 time (for checks; default: now)")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageErr(e, fs, "--now: %v", err)
		}
		if t.Before(now) {
			return usageErr(e, fs, "--now must not be in the past")
		}
		now = t
	}
	dk, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer dk.Close()
	m, err := ff.manifest()
	if err != nil {
		return err
	}
	h, err := dk.OpenIndex(ctx, m.Embedder.ID(), m.Embedder.Dim)
	if err != nil {
		return err
	}
	defer h.Close()
	rep, err := retention.Purge(ctx, dk.DB, h.Index, now, actor())
	if err == nil {
		// The index outbox's old operations go too, as the server's
		// housekeeping does (an index saved before them is rebuilt).
		_, err = dk.DB.PruneIndexOutbox(ctx, now.Add(-app.OutboxKeep))
	}
	if saveErr := h.Save(context.WithoutCancel(ctx)); saveErr != nil {
		err = errors.Join(err, saveErr)
	}
	if err != nil {
		return fmt.Errorf("purge (%d images purged before the error): %w", rep.Images, err)
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]int64{"images": int64(rep.Images), "faces": int64(rep.Faces),
			"probe_crops": rep.ProbeCrops})
	}
	fmt.Fprintf(e.stdout, "purged %d images and %d faces past their retention period, and %d probe crops of searches older than %d days\n",
		rep.Images, rep.Faces, rep.ProbeCrops, int(retention.ProbeCropRetention.Hours()/24))
	return nil
}

func (e *cmdEnv) reindex(ctx context.Context, args []string) error {
	fs := e.flags("reindex", "usage: gabarit reindex [--index hnsw|flat|weaviate://…] [--new-rotation]\n\n"+
		"Rebuilds the vector index from the encrypted templates of the store. With a Weaviate index,\n"+
		"--new-rotation first drops the collection and draws a new secret rotation for its vectors\n"+
		"(after a copy of the cluster's disks leaked, say); searches find nothing until it is refilled.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	newRotation := fs.Bool("new-rotation", false, "Weaviate index only: drop the collection and draw a new rotation secret before refilling it")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	dk, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer dk.Close()
	m, err := ff.manifest()
	if err != nil {
		return err
	}
	start := time.Now()
	if *newRotation {
		if dk.Config.IndexKind() != config.IndexWeaviate {
			fmt.Fprintln(e.stderr, "gabarit reindex: --new-rotation is for a Weaviate index (--index weaviate://…): "+
				"an embedded index sends no vector anywhere")
			return exitError{2}
		}
		if err := dk.NewIndexRotation(ctx, m.Embedder.ID(), m.Embedder.Dim); err != nil {
			return err
		}
	}
	h, err := dk.RebuildIndex(ctx, m.Embedder.ID(), m.Embedder.Dim)
	if err != nil {
		return err
	}
	defer h.Close()
	n, err := h.Index.Len(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "indexed %d faces in %.1f s (%s)\n", n, time.Since(start).Seconds(), dk.IndexPath(m.Embedder.ID()))
	return nil
}
