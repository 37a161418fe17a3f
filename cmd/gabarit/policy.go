package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gabarit/internal/app"
	"gabarit/internal/search"
	"gabarit/internal/store"
)

func (e *cmdEnv) policy(ctx context.Context, args []string) error {
	return e.dispatch(ctx, "policy", args,
		subcommand{"show", e.policyShow},
		subcommand{"set", e.policySet})
}

// policyJSON is the policy as `gabarit policy show --json` prints it.
type policyJSON struct {
	FPIR    float64 `json:"search_fpir"`
	Default bool    `json:"default"`          // never set: the default
	SetBy   string  `json:"set_by,omitempty"` // who set it last
	SetAt   string  `json:"set_at,omitempty"`
}

func (e *cmdEnv) policyShow(ctx context.Context, args []string) error {
	fs := e.flags("policy show", "usage: gabarit policy show [--json]\n\n"+
		"Prints the searches' target false-positive identification rate (FPIR): the share of searches\n"+
		"for a person who is not held that may return anyone. Searches set their operating point for\n"+
		"the gallery's size from it.")
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
	fpir, err := app.SearchFPIR(ctx, dk.DB)
	if err != nil {
		return err
	}
	out := policyJSON{FPIR: fpir, Default: true}
	st, err := dk.DB.Setting(ctx, app.SettingFPIR)
	switch {
	case err == nil:
		out.Default, out.SetBy, out.SetAt = false, st.By, stamp(st.At)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if out.Default {
		fmt.Fprintf(e.stdout, "search FPIR %g (the default)\n", out.FPIR)
	} else {
		fmt.Fprintf(e.stdout, "search FPIR %g (set by %s at %s)\n", out.FPIR, out.SetBy, out.SetAt)
	}
	return nil
}

func (e *cmdEnv) policySet(ctx context.Context, args []string) error {
	fs := e.flags("policy set", fmt.Sprintf("usage: gabarit policy set --fpir RATE\n\n"+
		"Sets the searches' target false-positive identification rate (an admin's command, audited as\n"+
		"policy.set), from %g to %g; the default is %g. A lower rate raises the operating point: fewer\n"+
		"strangers, more people held missed (docs/ACCURACY.md has the measured trade-off). A running\n"+
		"server reads it when it starts.", app.MinFPIR, app.MaxFPIR, search.DefaultFPIR))
	var df dataFlags
	df.register(fs)
	fpir := fs.String("fpir", "", "target FPIR, e.g. 0.01 for 1%")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() != 0 || *fpir == "" {
		return usageErr(e, fs, "want --fpir RATE")
	}
	if _, err := app.ParseFPIR(*fpir); err != nil {
		return usageErr(e, fs, "%v", err)
	}
	dk, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := requireAdmin(ctx, dk.DB, nil); err != nil {
		return err
	}
	if err := app.SetSearchFPIR(ctx, dk.DB, *fpir, actor()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "search FPIR set to %s\n", *fpir)
	return nil
}
