package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"

	"gabarit/internal/app"
	"gabarit/internal/config"
)

// dataFlags are the flags of every command that uses the data directory.
type dataFlags struct {
	dir       string
	store     string
	index     string
	masterKey bool          // a --master-key was given: refused by config.Load
	fs        *flag.FlagSet // its output (the command's standard error) receives warnings
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	d.fs = fs
	fs.StringVar(&d.dir, "data", "", "data directory (default $"+app.EnvData+" or ~/.local/share/gabarit)")
	fs.StringVar(&d.store, "store", "", "a postgres://USER@HOST:PORT/DATABASE URL to keep the store in PostgreSQL (no password here: ps shows it), "+
		"or nothing for SQLite in the data directory (default $"+config.EnvStore+" or the first line of the file $"+config.EnvStoreFile+")")
	fs.StringVar(&d.index, "index", "", "vector index: hnsw (approximate, in the data directory), flat (exact), or a "+
		"weaviate://HOST:PORT[,HOST:PORT…][?grpc=…&replicas=N&shards=N&compression=rq] URL: a Weaviate cluster shared by every "+
		"instance (default $"+config.EnvIndex+" or hnsw)")
	fs.Func("master-key", "refused: the master key is only read from a file, named by $"+config.EnvMasterKeyFile+
		" (default DATA/master.key)", func(string) error {
		d.masterKey = true // the value is dropped unread; config.Load refuses it
		return nil
	})
}

// config reads the configuration: these flags over the environment.
func (d *dataFlags) config() (config.Config, error) {
	c, err := config.Load(config.Flags{Data: d.dir, Store: d.store, Index: d.index, MasterKey: d.masterKey}, os.Getenv)
	var ce *config.Error
	if errors.As(err, &ce) && ce.Flag() && d.fs != nil {
		fmt.Fprintf(d.fs.Output(), "gabarit %s: %v\n", d.fs.Name(), err)
		return c, exitError{2}
	}
	return c, err
}

// dataKit is an open data directory.
type dataKit = app.Data

// open opens the data directory (see app.OpenData). With exclusive, it also
// takes the directory's writer lock.
func (d *dataFlags) open(ctx context.Context, exclusive bool) (*dataKit, error) {
	cfg, err := d.config()
	if err != nil {
		return nil, err
	}
	k, err := app.OpenData(ctx, cfg, exclusive)
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
