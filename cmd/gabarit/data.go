package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"

	"gabarit/internal/app"
)

// dataFlags are the flags of every command that uses the data directory.
type dataFlags struct {
	dir   string
	index string
	fs    *flag.FlagSet // its output (the command's standard error) receives warnings
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	d.fs = fs
	fs.StringVar(&d.dir, "data", "", "data directory (default $"+app.EnvData+" or ~/.local/share/gabarit)")
	fs.StringVar(&d.index, "index", app.IndexHNSW, "vector index: hnsw (approximate, default) or flat (exact)")
}

// dataKit is an open data directory.
type dataKit = app.Data

// open opens the data directory (see app.OpenData). With exclusive, it also
// takes the directory's writer lock.
func (d *dataFlags) open(ctx context.Context, exclusive bool) (*dataKit, error) {
	dir, err := app.DataDir(d.dir)
	if err != nil {
		return nil, err
	}
	k, err := app.OpenData(ctx, dir, d.index, exclusive)
	if err == nil && d.fs != nil {
		k.Warnings = d.fs.Output()
	}
	return k, err
}

// actor names who runs a command, for the audit log: the operating-system
// account, since the command line has no other authentication.
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid-%d", os.Getuid())
}
