package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secret is the password of the URLs below: no message may hold it.
const secret = "s3cretPW"

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "store-url")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoad: where each setting comes from, and what is refused with which
// flag or variable named; no error message holds the password.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	withPW := "postgres://gabarit:" + secret + "@127.0.0.1:55432/gabarit?sslmode=disable"
	noPW := "postgres://gabarit@127.0.0.1:55432/gabarit"
	tests := []struct {
		name    string
		flags   Flags
		env     map[string]string
		store   string // the Config's Store when no error
		errName string // the Error's Name, when an error is wanted
		errText string // a part of its message
	}{
		{name: "default SQLite", env: map[string]string{EnvData: dir}},
		{name: "flag URL without password", flags: Flags{Data: dir, Store: noPW}, store: noPW},
		{name: "postgresql scheme", flags: Flags{Data: dir, Store: "postgresql://u@h/db"}, store: "postgresql://u@h/db"},
		{name: "socket URL", flags: Flags{Data: dir, Store: "postgres:///gabarit?host=/run/pg"}, store: "postgres:///gabarit?host=/run/pg"},
		{name: "env URL with password", flags: Flags{Data: dir}, env: map[string]string{EnvStore: withPW}, store: withPW},
		{name: "flag wins over env", flags: Flags{Data: dir, Store: noPW}, env: map[string]string{EnvStore: withPW}, store: noPW},
		{name: "flag with password", flags: Flags{Data: dir, Store: withPW}, errName: "--store", errText: EnvStoreFile},
		{name: "flag with password parameter", flags: Flags{Data: dir, Store: noPW + "?password=" + secret}, errName: "--store", errText: "holds a password"},
		{name: "unknown scheme", flags: Flags{Data: dir}, env: map[string]string{EnvStore: "mysql://root:" + secret + "@h/db"},
			errName: EnvStore, errText: "unknown scheme mysql://"},
		{name: "key=value DSN", flags: Flags{Data: dir, Store: "host=h user=u password=" + secret}, errName: "--store", errText: "key=value"},
		{name: "a file path", flags: Flags{Data: dir, Store: "/var/lib/gabarit.db"}, errName: "--store", errText: "not a store URL"},
		{name: "no database", flags: Flags{Data: dir, Store: "postgres://u@h:5432"}, errName: "--store", errText: "names no database"},
		{name: "two path elements", flags: Flags{Data: dir, Store: "postgres://u@h/a/b"}, errName: "--store", errText: "one database name"},
		{name: "bad URL", flags: Flags{Data: dir}, env: map[string]string{EnvStore: "postgres://u:" + secret + "%zz@h/db"},
			errName: EnvStore, errText: "percent-encode"},
		{name: "both variables", flags: Flags{Data: dir}, env: map[string]string{EnvStore: noPW, EnvStoreFile: "/x"},
			errName: EnvStoreFile, errText: "set one of them"},
		{name: "master key flag", flags: Flags{Data: dir, MasterKey: true}, errName: "--master-key", errText: EnvMasterKeyFile},
		{name: "master key variable", flags: Flags{Data: dir}, env: map[string]string{EnvMasterKey: secret}, errName: EnvMasterKey, errText: EnvMasterKeyFile},
		{name: "relative witness", flags: Flags{Data: dir}, env: map[string]string{EnvAuditWitness: "w/head"}, errName: EnvAuditWitness, errText: "absolute"},
		{name: "unknown index", flags: Flags{Data: dir, Index: "ivf"}, errName: "--index", errText: "want hnsw, flat or a weaviate://"},
		{name: "weaviate without address", flags: Flags{Data: dir, Index: "weaviate://"}, errName: "--index", errText: "no address"},
		{name: "weaviate bad level", flags: Flags{Data: dir}, env: map[string]string{EnvIndex: "weaviate://h:1?write=some"},
			errName: "--index", errText: "want one, quorum or all"},
		{name: "weaviate unknown parameter", flags: Flags{Data: dir, Index: "weaviate://h:1?shard=2"}, errName: "--index", errText: `unknown parameter "shard"`},
		{name: "weaviate gRPC count", flags: Flags{Data: dir, Index: "weaviate://h:1,h:2?grpc=h:3"}, errName: "--index", errText: "2 nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tt.flags, env(tt.env))
			if tt.errName != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Name != tt.errName || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Load: %v, want an error of %s saying %q", err, tt.errName, tt.errText)
				}
				if !errors.Is(err, ErrInvalid) || ce.Flag() != strings.HasPrefix(tt.errName, "--") {
					t.Errorf("%v: Is(ErrInvalid) %v, Flag %v", err, errors.Is(err, ErrInvalid), ce.Flag())
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the message holds the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != dir || c.Store != tt.store || c.Index != IndexHNSW || c.KeyFile() != filepath.Join(dir, "master.key") {
				t.Errorf("got %+v (key file %s)", c, c.KeyFile())
			}
			wantDialect, wantTarget := DialectSQLite, filepath.Join(dir, "gabarit.db")
			if tt.store != "" {
				wantDialect, wantTarget = DialectPostgres, tt.store
			}
			if c.Dialect() != wantDialect || c.Postgres() != (tt.store != "") || c.StoreTarget() != wantTarget {
				t.Errorf("dialect %s, target %s; want %s, %s", c.Dialect(), c.StoreTarget(), wantDialect, wantTarget)
			}
		})
	}
}

// TestLoadPaths: relative directories and key files are made absolute,
// and the data directory defaults under the home directory.
func TestLoadPaths(t *testing.T) {
	t.Chdir(t.TempDir())
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(Flags{Data: "data", Index: IndexFlat}, env(map[string]string{EnvMasterKeyFile: "keys/master.key",
		EnvAuditWitness: "/mnt/witness/head"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(wd, "data") || c.KeyFile() != filepath.Join(wd, "keys", "master.key") ||
		c.AuditWitness != "/mnt/witness/head" || c.Index != IndexFlat {
		t.Errorf("got %s", c)
	}
	t.Setenv("HOME", wd)
	c, err = Load(Flags{}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(wd, ".local", "share", "gabarit") {
		t.Errorf("default data directory %s", c.DataDir)
	}
	c, err = Load(Flags{}, env(map[string]string{EnvData: "d2"}))
	if err != nil || c.DataDir != filepath.Join(wd, "d2") {
		t.Errorf("GABARIT_DATA=d2: %v %s", err, c.DataDir)
	}
}

// TestStoreFile: the store URL is the first line of GABARIT_STORE_FILE; a
// file that every user may read is refused when it holds a password.
func TestStoreFile(t *testing.T) {
	dir := t.TempDir()
	withPW := "postgres://gabarit:" + secret + "@127.0.0.1:55432/gabarit"
	noPW := "postgres://gabarit@127.0.0.1:55432/gabarit"
	tests := []struct {
		name    string
		path    string
		store   string
		errText string
	}{
		{name: "first line, mode 0600", path: writeFile(t, "  "+withPW+"  \r\nsecond line\n", 0o600), store: withPW},
		{name: "group-readable", path: writeFile(t, withPW+"\n", 0o640), store: withPW},
		{name: "world-readable without password", path: writeFile(t, noPW, 0o644), store: noPW},
		{name: "world-readable with password", path: writeFile(t, withPW, 0o644), errText: "chmod 600"},
		{name: "empty", path: writeFile(t, "\nsecond\n", 0o600), errText: "no store URL on its first line"},
		{name: "not a URL", path: writeFile(t, "gabarit:"+secret+"@h/db", 0o600), errText: "not a store URL"},
		{name: "missing", path: filepath.Join(dir, "none"), errText: "no such file"},
		{name: "a directory", path: dir, errText: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(Flags{Data: dir}, env(map[string]string{EnvStoreFile: tt.path}))
			if tt.errText != "" {
				var ce *Error
				if !errors.As(err, &ce) || ce.Name != EnvStoreFile || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Load: %v, want %s saying %q", err, EnvStoreFile, tt.errText)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the message holds the password: %v", err)
				}
				return
			}
			if err != nil || c.Store != tt.store {
				t.Fatalf("Load: %v, store %s", err, Redact(c.Store))
			}
		})
	}
}

// TestRedacted: String, %v, %+v, %#v, a slog record and RedactedStore never
// print the password, and still say where the store is.
func TestRedacted(t *testing.T) {
	dir := t.TempDir()
	for _, store := range []string{
		"postgres://gabarit:" + secret + "@db.example:5432/gabarit?sslmode=require",
		"postgres://gabarit@db.example:5432/gabarit?sslmode=require&password=" + secret,
	} {
		c, err := Load(Flags{Data: dir}, env(map[string]string{EnvStore: store}))
		if err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		slog.New(slog.NewTextHandler(&log, nil)).Info("config", "config", c)
		for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), log.String(), c.RedactedStore()} {
			if strings.Contains(s, secret) {
				t.Errorf("printed with the password: %s", s)
			}
			if !strings.Contains(s, "db.example:5432/gabarit") || !strings.Contains(s, "xxxxx") {
				t.Errorf("printed without the store: %s", s)
			}
		}
		if c.StoreTarget() != store {
			t.Errorf("StoreTarget %s lost the password", Redact(c.StoreTarget()))
		}
	}
	c := Config{DataDir: dir, Index: IndexHNSW}
	if got, want := c.String(), "data="+dir+" store="+filepath.Join(dir, "gabarit.db")+" (sqlite) index=hnsw master_key_file="+
		filepath.Join(dir, "master.key")+" audit_witness=none"; got != want {
		t.Errorf("String\n got %s\nwant %s", got, want)
	}
	if Redact("") != "" || Redact("postgres://u@h/db") != "postgres://u@h/db" {
		t.Error("Redact changes a URL without password")
	}
}

// TestValidate: a literal Config is checked as Load checks it.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"SQLite", Config{DataDir: "/d", Index: IndexFlat}, true},
		{"PostgreSQL", Config{DataDir: "/d", Index: IndexHNSW, Store: "postgres://u@h/db"}, true},
		{"relative data", Config{DataDir: "d", Index: IndexFlat}, false},
		{"no data", Config{Index: IndexFlat}, false},
		{"no index", Config{DataDir: "/d"}, false},
		{"bad store", Config{DataDir: "/d", Index: IndexFlat, Store: "/d/other.db"}, false},
		{"relative witness", Config{DataDir: "/d", Index: IndexFlat, AuditWitness: "head"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.c.Validate(); (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Validate: %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestLoadWeaviateIndex(t *testing.T) {
	dir := t.TempDir()
	const u = "weaviate://127.0.0.1:55680,127.0.0.1:55690?grpc=127.0.0.1:55681,127.0.0.1:55691&replicas=2&shards=4&compression=rq&read=one"
	c, err := Load(Flags{Data: dir}, env(map[string]string{EnvIndex: u}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Index != u || c.IndexKind() != IndexWeaviate {
		t.Fatalf("index %q kind %q, want the URL and %q", c.Index, c.IndexKind(), IndexWeaviate)
	}
	// The flag wins over the variable.
	if c, err := Load(Flags{Data: dir, Index: IndexFlat}, env(map[string]string{EnvIndex: u})); err != nil || c.IndexKind() != IndexFlat {
		t.Fatalf("--index flat over %s: %q, %v", EnvIndex, c.Index, err)
	}
}
