// Package config is the one configuration the command line and the server
// read: the data directory, the store (SQLite in the data directory, or a
// PostgreSQL database shared by several instances), the vector index, the
// master key file and the outside audit witness. It is filled from flags
// over environment variables over defaults, validated once, and printed
// only in a redacted form: a database password never appears in a message.
//
// Secrets are never taken from a command line, where the process list and
// the shell history show them: the master key only from a file
// (GABARIT_MASTER_KEY_FILE), a store URL that holds a password only from
// GABARIT_STORE or from a file (GABARIT_STORE_FILE).
package config

import (
	"errors"
	"fmt"
	"gabarit/internal/vindex/weaviate"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Environment variables read by Load.
const (
	EnvData      = "GABARIT_DATA"       // the data directory
	EnvStore     = "GABARIT_STORE"      // the store URL
	EnvStoreFile = "GABARIT_STORE_FILE" // a file whose first line is the store URL
	EnvIndex     = "GABARIT_INDEX"      // the vector index: hnsw, flat or a weaviate:// URL
	// EnvMasterKeyFile names the master key file (default DATA/master.key);
	// keyring.EnvMasterKeyFile is the same variable.
	EnvMasterKeyFile = "GABARIT_MASTER_KEY_FILE"
	// EnvMasterKey is refused: a key is only ever read from a file.
	EnvMasterKey    = "GABARIT_MASTER_KEY"
	EnvAuditWitness = "GABARIT_AUDIT_WITNESS" // a second audit witness file, absolute
)

// Index kinds.
const (
	IndexHNSW = "hnsw" // approximate, the default
	IndexFlat = "flat" // exact
	// IndexWeaviate is the kind of a weaviate:// index URL: a collection
	// of a Weaviate cluster, shared by every instance.
	IndexWeaviate = "weaviate"
)

// Store dialects, as store.DB.Dialect names them.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// StoreFileName is the SQLite store's file in the data directory.
const StoreFileName = "gabarit.db"

// MasterKeyFileName is the master key's file in the data directory when
// GABARIT_MASTER_KEY_FILE names none.
const MasterKeyFileName = "master.key"

// maxStoreFile bounds what is read of GABARIT_STORE_FILE.
const maxStoreFile = 64 << 10

// ErrInvalid is matched (errors.Is) by every error of Load and Validate.
var ErrInvalid = errors.New("invalid configuration")

// Error is a configuration error: Name is the flag ("--store") or the
// environment variable (GABARIT_STORE_FILE) at fault. Its message never
// holds a password.
type Error struct {
	Name string
	Err  error
}

func (e *Error) Error() string { return e.Name + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Flag reports whether the error is in a command-line flag (a usage error).
func (e *Error) Flag() bool { return strings.HasPrefix(e.Name, "--") }

func invalid(name, format string, args ...any) error {
	return &Error{Name: name, Err: fmt.Errorf(format, args...)}
}

// Flags are the values given on the command line; empty means not given.
type Flags struct {
	Data  string // --data
	Store string // --store
	Index string // --index
	// MasterKey is set when a --master-key flag was given: always
	// refused, its value never kept.
	MasterKey bool
}

// Config is the configuration of one gabarit process. Zero fields have
// their default meaning (see each), so a literal Config{DataDir: d, Index:
// IndexFlat} is an SQLite data directory with its own master key.
type Config struct {
	// DataDir is the data directory, absolute: the SQLite store (unless
	// Store names a PostgreSQL database), the master key by default, the
	// vector index, the audit witness and the writer lock.
	DataDir string
	// Store is "" for the SQLite file gabarit.db in DataDir, or a
	// postgres:// or postgresql:// URL. It may hold a password: print it
	// only through RedactedStore.
	Store string
	// Index is IndexHNSW or IndexFlat, whose files are under
	// DataDir/index, or a weaviate:// URL (see weaviate.ParseConfig): a
	// Weaviate cluster, shared by every instance over the store.
	Index string
	// MasterKeyFile is the master key's file; "" means DataDir/master.key.
	// Every instance over one PostgreSQL store must be given the same key.
	MasterKeyFile string
	// AuditWitness is a second audit witness file outside the data
	// directory (absolute), or "".
	AuditWitness string
}

// Load fills a Config from flags over the environment (read with getenv,
// os.Getenv in the programs) over the defaults, and validates it.
// GABARIT_STORE_FILE is read from disk.
func Load(f Flags, getenv func(string) string) (Config, error) {
	var c Config
	if f.MasterKey {
		return c, invalid("--master-key", "the master key is never taken from the command line, where the process list "+
			"and the shell history show it: put it in a file (mode 0600) and name the file with %s", EnvMasterKeyFile)
	}
	if getenv(EnvMasterKey) != "" {
		return c, invalid(EnvMasterKey, "is not read: put the master key in a file (mode 0600) and name the file with %s, "+
			"then unset %s", EnvMasterKeyFile, EnvMasterKey)
	}
	var err error
	if c.DataDir, err = dataDir(f.Data, getenv); err != nil {
		return c, err
	}
	if c.Store, err = loadStore(f.Store, getenv); err != nil {
		return c, err
	}
	c.Index = f.Index
	if c.Index == "" {
		c.Index = getenv(EnvIndex)
	}
	if c.Index == "" {
		c.Index = IndexHNSW
	}
	if k := getenv(EnvMasterKeyFile); k != "" {
		if c.MasterKeyFile, err = filepath.Abs(k); err != nil {
			return c, invalid(EnvMasterKeyFile, "%v", err)
		}
	}
	c.AuditWitness = getenv(EnvAuditWitness)
	return c, c.Validate()
}

// DataDir resolves the data directory: dir if given, else $GABARIT_DATA,
// else ~/.local/share/gabarit; always absolute.
func DataDir(dir string, getenv func(string) string) (string, error) {
	return dataDir(dir, getenv)
}

func dataDir(dir string, getenv func(string) string) (string, error) {
	name := "--data"
	if dir == "" {
		dir, name = getenv(EnvData), EnvData
	}
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", invalid(name, "%v", err)
		}
		return abs, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", invalid("--data", "no data directory: give --data or set %s (%v)", EnvData, err)
	}
	return filepath.Join(home, ".local", "share", "gabarit"), nil
}

// loadStore returns the store URL from --store, else GABARIT_STORE, else
// the first line of GABARIT_STORE_FILE, checked.
func loadStore(flagValue string, getenv func(string) string) (string, error) {
	env, file := getenv(EnvStore), getenv(EnvStoreFile)
	if env != "" && file != "" && flagValue == "" {
		return "", invalid(EnvStoreFile, "%s is set too: set one of them", EnvStore)
	}
	switch {
	case flagValue != "":
		s, err := parseStore("--store", flagValue)
		if err == nil && hasPassword(s) {
			return "", invalid("--store", "the URL holds a password, which the process list and the shell history show: "+
				"put the URL in a file (mode 0600) named by %s, or in %s, or keep the password in ~/.pgpass (PGPASSFILE)",
				EnvStoreFile, EnvStore)
		}
		return s, err
	case env != "":
		return parseStore(EnvStore, env)
	case file != "":
		return readStoreFile(file)
	}
	return "", nil
}

// readStoreFile reads the store URL from the first line of the file path.
// A file that holds a password and that every user may read is refused,
// as libpq refuses such a ~/.pgpass.
func readStoreFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", invalid(EnvStoreFile, "%v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", invalid(EnvStoreFile, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		return "", invalid(EnvStoreFile, "%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxStoreFile))
	if err != nil {
		return "", invalid(EnvStoreFile, "%v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", invalid(EnvStoreFile, "%s holds no store URL on its first line", path)
	}
	s, err := parseStore(EnvStoreFile, line)
	if err != nil {
		return "", err
	}
	if hasPassword(s) && fi.Mode().Perm()&0o004 != 0 {
		return "", invalid(EnvStoreFile, "%s holds the database password and every user of this machine may read it (mode %04o): "+
			"chmod 600 it (or 640 for the group gabarit runs in)", path, fi.Mode().Perm())
	}
	return s, nil
}

var (
	schemeRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,31}$`)
	keywordDSN = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)
)

// parseStore checks a store URL given by name (a flag or a variable). Its
// messages never repeat the URL, which may hold a password.
func parseStore(name, s string) (string, error) {
	s = strings.TrimSpace(s)
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		if keywordDSN.MatchString(s) {
			return "", invalid(name, "a key=value connection string is not accepted: give a postgres://USER@HOST:PORT/DATABASE URL")
		}
		return "", invalid(name, "not a store URL: give a postgres://USER@HOST:PORT/DATABASE URL, "+
			"or nothing for the SQLite file %s in the data directory", StoreFileName)
	}
	if !schemeRE.MatchString(scheme) {
		return "", invalid(name, "not a store URL: give a postgres://USER@HOST:PORT/DATABASE URL")
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
	default:
		return "", invalid(name, "unknown scheme %s://: want postgres:// or postgresql:// (PostgreSQL), "+
			"or nothing for the SQLite file %s in the data directory", scheme, StoreFileName)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url's error quotes the whole URL: never pass it on.
		return "", invalid(name, "not a valid URL: percent-encode the special characters (@ : / ? #) of the user name and password")
	}
	if strings.Trim(u.Path, "/") == "" && u.Query().Get("dbname") == "" {
		return "", invalid(name, "the URL names no database: end it with /DATABASE, as in postgres://gabarit@127.0.0.1:5432/gabarit")
	}
	if strings.Contains(strings.Trim(u.Path, "/"), "/") {
		return "", invalid(name, "the URL's path must be one database name, as in postgres://gabarit@127.0.0.1:5432/gabarit")
	}
	return s, nil
}

// hasPassword reports whether a store URL holds a password.
func hasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return true // unknown: assume the worst
	}
	_, inUser := u.User.Password()
	return inUser || u.Query().Has("password")
}

// Redact returns the store URL s with its password, if any, replaced by
// xxxxx (in the user part or a password= parameter).
func Redact(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(an unreadable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Validate checks c: an absolute data directory, a known index, a
// PostgreSQL URL or nothing for the store, an absolute audit witness.
func (c Config) Validate() error {
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		return invalid("--data", "the data directory must be an absolute path")
	}
	switch {
	case c.Index == IndexHNSW, c.Index == IndexFlat:
	case c.IndexKind() == IndexWeaviate:
		if _, err := weaviate.ParseConfig(c.Index); err != nil {
			return invalid("--index", "%v", err)
		}
	default:
		return invalid("--index", "%q: want hnsw, flat or a weaviate://host:port[,host:port…] URL", c.Index)
	}
	if c.Store != "" {
		if _, err := parseStore("--store", c.Store); err != nil {
			return err
		}
	}
	if c.AuditWitness != "" && !filepath.IsAbs(c.AuditWitness) {
		return invalid(EnvAuditWitness, "%s: give an absolute path", c.AuditWitness)
	}
	return nil
}

// Dialect is DialectSQLite or DialectPostgres.
func (c Config) Dialect() string {
	if c.Store != "" {
		return DialectPostgres
	}
	return DialectSQLite
}

// Postgres reports whether the store is a PostgreSQL database.
func (c Config) Postgres() bool { return c.Dialect() == DialectPostgres }

// StoreTarget is what store.Open takes: the SQLite file's path, or the
// PostgreSQL URL (with its password, if any: never print it).
func (c Config) StoreTarget() string {
	if c.Store != "" {
		return c.Store
	}
	return filepath.Join(c.DataDir, StoreFileName)
}

// RedactedStore is StoreTarget without a password, for messages.
func (c Config) RedactedStore() string {
	if c.Store != "" {
		return Redact(c.Store)
	}
	return c.StoreTarget()
}

// KeyFile is the master key's file: MasterKeyFile, or master.key in the
// data directory.
func (c Config) KeyFile() string {
	if c.MasterKeyFile != "" {
		return c.MasterKeyFile
	}
	return filepath.Join(c.DataDir, MasterKeyFileName)
}

// IndexKind is IndexHNSW, IndexFlat or IndexWeaviate (for a weaviate://
// URL).
func (c Config) IndexKind() string {
	if strings.HasPrefix(c.Index, weaviate.Scheme+"://") {
		return IndexWeaviate
	}
	return c.Index
}

// String prints c on one line, without a password.
func (c Config) String() string {
	witness := c.AuditWitness
	if witness == "" {
		witness = "none"
	}
	return fmt.Sprintf("data=%s store=%s (%s) index=%s master_key_file=%s audit_witness=%s",
		c.DataDir, c.RedactedStore(), c.Dialect(), c.Index, c.KeyFile(), witness)
}

// GoString is String, so that %#v prints no password either.
func (c Config) GoString() string { return c.String() }

// LogValue is String, so that a logged Config holds no password.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
