// Command gabarit is a lawful face search engine. This binary holds the face
// path: setup of the runtime and models, detection, comparison, evaluation
// and benchmarks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

const usage = `gabarit — lawful face search engine

Usage:
  gabarit source add --kind folder|archive|video --path P --controller TEXT --purpose TEXT
                     --legal-basis BASIS --art9 CONDITION --jurisdiction CC --retention DURATION [--json]
  gabarit source list [--json]             the declared sources
  gabarit source suspend|resume ID         stop / restart ingesting a source
  gabarit source retire --confirm ID       destroy a source's data key and delete its images and faces
  gabarit ingest [--json] SOURCE_ID        detect, embed, encrypt, store and index a source (resumable)
  gabarit search --purpose TEXT [--case REF] [--k N | --all] [--threshold T --reason TEXT] [--face I] [--json] PHOTO
  gabarit purge [--json]                   delete what is past its source's retention period (and probe crops after 6 months)
  gabarit reindex                          rebuild the vector index from the store
  gabarit index status [--json] | forget --confirm NAME   the index outbox and the remote indexes following it
  gabarit quarantine list [--json] | release ID | erase ID   faces whose template cannot be opened
  gabarit serve [--addr HOST:PORT] [--trusted-proxy CIDR]   the REST API, web console, rights portal and /metrics
  gabarit confirm SEARCH_ID FACE_ID        confirm a result as a verifier (two make an identification)
  gabarit reject SEARCH_ID FACE_ID --reason TEXT   reject a result as a verifier: never an identification
  gabarit user add --roles R[,R…] [--password-file F] NAME
                                           users and roles (admin, operator, investigator, verifier, dpo,
                                           auditor, examiner)
  gabarit user password --password-file F NAME   set a console password (admin)
  gabarit user roles --roles R[,R…] NAME | disable NAME | enable NAME   (admin)
  gabarit policy show [--json] | set --fpir RATE   the searches' target false-positive identification rate
  gabarit rights request --kind access|erasure|objection|restriction --selfie PHOTO… --contact TEXT [--json]
  gabarit rights candidates ID             check the selfies, find every face that may be the person's
  gabarit rights review [--select IDS] [--deselect IDS] ID   exactly the faces to act on
  gabarit rights identity --method M [--note TEXT] ID        how the requester was identified
  gabarit rights process --confirm N ID    act on the N reviewed faces (package, erasure, objection, restriction)
  gabarit rights show|list [--json]        one request, or the register of requests, deadlines and outcomes
  gabarit rights refuse|record|notified|extend|lift          see gabarit help rights SUBCOMMAND
  gabarit audit verify|list                check the audit log's hash chain and witnesses; print it (filters)
  gabarit audit head | witness-reset       the signed last entry to keep off the machine; reset after a check
  gabarit export records [--md]            record of processing activities (GDPR Art. 30)
  gabarit export authority --out DIR       records, sources, search statistics, audit log + verification
  gabarit backup --out FILE [--json]       one file: the store, the vault, records.json (never the master key)
  gabarit restore --from FILE --data DIR [--json]   into a new directory holding only the master key
  gabarit setup [--gpu] [--yunet DIR]      install ONNX Runtime, the model pack and test photos (from npm)
  gabarit faces [--json] FILE...           detect faces, landmarks and quality
  gabarit compare [--json] A B             same person? (largest face of each photo)
  gabarit eval pairs|ident|makepairs|calibrate|search [flags]
  gabarit bench pipeline|search [flags]
  gabarit version
  gabarit help [COMMAND [SUBCOMMAND]]      this text, or a command's usage and flags
  gabarit completion bash|zsh              shell completion: source <(gabarit completion bash)

Common flags (after the command): --data DIR (or GABARIT_DATA), --store URL, --pack DIR, --device cpu|cuda,
--threads N, --workers N, --min-face PX, --memory-budget SIZE, --cache DIR. Flags go before or after the arguments;
commands that print data print text, and JSON with --json. Exit codes: 0 done, 1 failed or done in
part, 2 wrong arguments. Run "gabarit help COMMAND" for details.
Environment: GABARIT_DATA (data directory, default ~/.local/share/gabarit), GABARIT_CACHE
(installation directory, default ~/.cache/gabarit), GABARIT_MASTER_KEY_FILE (master key file,
default DATA/master.key; every instance over one PostgreSQL store needs the same key), GABARIT_STORE
(a postgres:// URL: the store in PostgreSQL; default the SQLite file DATA/gabarit.db) or GABARIT_STORE_FILE
(a file whose first line is that URL), GABARIT_MEMORY_BUDGET (memory for the images decoded at once, default 768M).
`

// exitError carries an exit status to main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "gabarit:", printable(err.Error()))
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := &cmdEnv{stdin: os.Stdin, stdout: stdout, stderr: stderr, logger: logger}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "setup":
		return env.setup(ctx, rest)
	case "faces":
		return env.faces(ctx, rest)
	case "compare":
		return env.compare(ctx, rest)
	case "eval":
		return env.eval(ctx, rest)
	case "bench":
		return env.bench(ctx, rest)
	case "source":
		return env.source(ctx, rest)
	case "ingest":
		return env.ingest(ctx, rest)
	case "search":
		return env.search(ctx, rest)
	case "purge":
		return env.purge(ctx, rest)
	case "reindex":
		return env.reindex(ctx, rest)
	case "index":
		return env.index(ctx, rest)
	case "quarantine":
		return env.quarantine(ctx, rest)
	case "audit":
		return env.audit(ctx, rest)
	case "export":
		return env.export(ctx, rest)
	case "backup":
		return env.backup(ctx, rest)
	case "restore":
		return env.restore(ctx, rest)
	case "rights":
		return env.rights(ctx, rest)
	case "user":
		return env.user(ctx, rest)
	case "policy":
		return env.policy(ctx, rest)
	case "confirm":
		return env.confirm(ctx, rest)
	case "reject":
		return env.reject(ctx, rest)
	case "serve":
		return env.serve(ctx, rest)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	case "help", "-h", "--help":
		if cmd == "help" && len(rest) > 0 && rest[0] != "help" {
			return help(ctx, rest, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	case "completion":
		return completion(rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "gabarit: unknown command %q\n\n%s", cmd, usage)
	return exitError{2}
}

// cmdEnv holds what every command writes to.
type cmdEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	logger         *slog.Logger
}

// flags returns a flag set for the command name whose -h prints usage (the
// command line, a blank line, what it does) and then the flags.
func (e *cmdEnv) flags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// subcommand is one verb of a command with subcommands.
type subcommand struct {
	name string
	run  func(ctx context.Context, args []string) error
}

// dispatch runs the subcommand of cmd named by args[0], or prints the usage
// and returns exit status 2.
func (e *cmdEnv) dispatch(ctx context.Context, cmd string, args []string, subs ...subcommand) error {
	names := make([]string, len(subs))
	for i, sc := range subs {
		names[i] = sc.name
		if len(args) > 0 && args[0] == sc.name {
			return sc.run(ctx, args[1:])
		}
	}
	if len(args) > 0 && args[0] != "-h" && args[0] != "--help" {
		fmt.Fprintf(e.stderr, "gabarit %s: unknown subcommand %q\n", cmd, args[0])
	}
	fmt.Fprintf(e.stderr, "usage: gabarit %s %s [flags]\n", cmd, strings.Join(names, "|"))
	return exitError{2}
}

// idArg returns the command's one argument as a positive id, or reports a
// usage error naming what the id is of.
func idArg(e *cmdEnv, fs *flag.FlagSet, what string) (int64, error) {
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if fs.NArg() != 1 || err != nil || id <= 0 {
		return 0, usageErr(e, fs, "want one %s ID", what)
	}
	return id, nil
}

// parseArgs parses args with fs, flags accepted before and after the
// positional arguments (gabarit ingest 1 --json, as gabarit ingest --json
// 1): the flags are moved in front, in order, each with its value, and a
// "--" ends them as usual. A flag that takes a value and ends the
// arguments is left for fs to refuse.
func parseArgs(fs *flag.FlagSet, args []string) error {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // fs says it is not defined
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(positional) > 0 {
		flags = append(flags, "--")
	}
	return fs.Parse(append(flags, positional...))
}
