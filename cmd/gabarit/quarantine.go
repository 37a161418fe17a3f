package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"gabarit/internal/store"
	"gabarit/internal/vstore"
)

// quarantine lists, releases and erases the faces whose sealed template
// cannot be opened (see store.QuarantineFace).
func (e *cmdEnv) quarantine(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "quarantine", args,
		subcommand{"list", e.quarantineList},
		subcommand{"release", e.quarantineRelease},
		subcommand{"erase", e.quarantineErase})
}

// quarantineUsage ends the usage of each quarantine subcommand.
const quarantineUsage = "A face is put in quarantine when its sealed template cannot be opened (altered or swapped\n" +
	"bytes in the database): searches, the vector index and rights requests skip it instead of failing,\n" +
	"and the audit log records it once (face.quarantine)."

func (e *cmdEnv) quarantineList(ctx context.Context, args []string) error {
	fs := e.flags("quarantine list", "usage: gabarit quarantine list [--json]\n\n"+
		"Lists the faces in quarantine: when, which operation found it and why.\n\n"+quarantineUsage)
	var df dataFlags
	df.register(fs)
	asJSON := fs.Bool("json", false, "one JSON array")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 {
		return usageErr(e, fs, "no arguments expected")
	}
	k, err := df.open(ctx, false)
	if err != nil {
		return err
	}
	defer k.Close()
	q, err := k.DB.Quarantined(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if q == nil {
			q = []store.QuarantinedFace{}
		}
		return json.NewEncoder(e.stdout).Encode(q)
	}
	if len(q) == 0 {
		fmt.Fprintln(e.stdout, "no face in quarantine")
		return nil
	}
	fmt.Fprintf(e.stdout, "%-8s %-8s %-7s %-20s %-7s %s\n", "FACE", "IMAGE", "SOURCE", "SINCE", "FOUND", "REASON")
	for _, f := range q {
		fmt.Fprintf(e.stdout, "%-8d %-8d %-7d %-20s %-7s %s\n", f.FaceID, f.ImageID, f.SourceID,
			f.At.UTC().Format("2006-01-02 15:04:05"), f.Found, f.Reason)
	}
	fmt.Fprintf(e.stdout, "%s in quarantine: restore the database from a backup and run gabarit quarantine release ID,\n"+
		"or delete the face with gabarit quarantine erase ID\n", howMany(int64(len(q)), "face"))
	return nil
}

func (e *cmdEnv) quarantineRelease(ctx context.Context, args []string) error {
	fs := e.flags("quarantine release", "usage: gabarit quarantine release FACE_ID\n\n"+
		"Opens the face's template again: if it opens now (restored from a backup, say), the face leaves\n"+
		"quarantine (audited face.quarantine.release) and is back in searches and the vector index;\n"+
		"if not, it stays. An admin's or operator's command.\n\n"+quarantineUsage)
	return e.quarantineAct(ctx, fs, args, func(ctx context.Context, k *dataKit, h *vstore.Handle, id int64) error {
		err := vstore.Release(ctx, k.DB, k.Keys, h, id, actor())
		if errors.Is(err, vstore.ErrStillDamaged) {
			return fmt.Errorf("face %d stays in quarantine: its template still cannot be opened; "+
				"restore the database from a backup made before the damage, or erase the face", id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "face %d left quarantine: its template opens again\n", id)
		return nil
	})
}

func (e *cmdEnv) quarantineErase(ctx context.Context, args []string) error {
	fs := e.flags("quarantine erase", "usage: gabarit quarantine erase FACE_ID\n\n"+
		"Deletes a face in quarantine from the store and the vector index, with its image when no other\n"+
		"face is left in it (audited faces.erase). It cannot be undone. An admin's or operator's command.\n\n"+
		quarantineUsage)
	return e.quarantineAct(ctx, fs, args, func(ctx context.Context, k *dataKit, h *vstore.Handle, id int64) error {
		images, err := vstore.Erase(ctx, k.DB, h, id, actor())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "face %d erased, and %s left without a face\n", id, howMany(int64(len(images)), "image"))
		return nil
	})
}

// quarantineAct runs act on the face id of args, with the data directory
// locked and the model pack's vector index open (nil without a pack: it
// is then brought in step when next opened), and saves the index.
func (e *cmdEnv) quarantineAct(ctx context.Context, fs *flag.FlagSet, args []string,
	act func(ctx context.Context, k *dataKit, h *vstore.Handle, id int64) error) error {
	var ff faceFlags
	fs.StringVar(&ff.cache, "cache", "", "installation directory, for the model pack whose vector index is updated (default $GABARIT_CACHE or ~/.cache/gabarit)")
	fs.StringVar(&ff.pack, "pack", "default", "model pack whose vector index is updated: a name under the installation's packs/ or a directory")
	var df dataFlags
	df.register(fs)
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	id, err := idArg(e, fs, "face")
	if err != nil {
		return err
	}
	k, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer k.Close()
	if err := requireAnyRole(ctx, k.DB, store.RoleAdmin, store.RoleOperator); err != nil {
		return err
	}
	if _, err := k.DB.QuarantinedFaceByID(ctx, id); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("face %d is not in quarantine (gabarit quarantine list shows those that are)", id)
	} else if err != nil {
		return err
	}
	var h *vstore.Handle
	if m, merr := ff.manifest(); merr != nil {
		fmt.Fprintf(e.stderr, "gabarit %s: no model pack to open the vector index with; it is brought in step when next opened\n", fs.Name())
	} else {
		if h, err = k.OpenIndex(ctx, m.Embedder.ID(), m.Embedder.Dim); err != nil {
			return err
		}
		defer h.Close()
	}
	err = act(ctx, k, h, id)
	if h != nil && err == nil {
		err = h.Save(context.WithoutCancel(ctx))
	}
	return err
}

// requireAnyRole checks that the command's user holds one of roles; any
// user may while no user is registered yet (as for the first admin).
func requireAnyRole(ctx context.Context, db *store.DB, roles ...store.Role) error {
	users, err := db.Users(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		return nil
	}
	u, err := db.User(ctx, actor())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil && u.Disabled.IsZero() && slices.ContainsFunc(roles, u.Has) {
		return nil
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return fmt.Errorf("%s is not a user with the %s role: %w", actor(), strings.Join(names, " or "), store.ErrForbidden)
}
