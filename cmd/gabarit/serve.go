package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"gabarit/internal/pipeline"
	"gabarit/internal/server"
)

// envTrustedProxies lists the trusted reverse proxies when --trusted-proxy
// is not given.
const envTrustedProxies = "GABARIT_TRUSTED_PROXIES"

func (e *cmdEnv) serve(ctx context.Context, args []string) error {
	fs := e.flags("serve", "usage: gabarit serve [--addr HOST:PORT] [flags]\n\n"+
		"Serves the REST API (/api/v1, described at /api/v1/openapi.json), the web console (/), the\n"+
		"public rights portal (/portal), /metrics and health probes, over the data directory. It holds\n"+
		"the directory's writer lock: ingest, purge and rights processing go through it while it runs.\n"+
		"It reads the configuration the other commands read: --data, --store (or $GABARIT_STORE,\n"+
		"$GABARIT_STORE_FILE), --index, $GABARIT_MASTER_KEY_FILE and $GABARIT_AUDIT_WITNESS.\n"+
		"Users sign in with a password set by `gabarit user add --password-file`. On SIGINT/SIGTERM it\n"+
		"finishes requests in flight, stops a running ingest at a safe point and saves the index.\n"+
		"Over a PostgreSQL store, ingest jobs are shared: each is split into --job-parts parts that any\n"+
		"instance claims, one at a time, and a part whose instance died is taken over after --job-lease.\n"+
		"Behind a reverse proxy, name it with --trusted-proxy (or $"+envTrustedProxies+", comma-separated):\n"+
		"only then is its X-Forwarded-For (or Forwarded) believed for the client's address, which the\n"+
		"rate limits count by; without it every client counts as the proxy.")
	var ff faceFlags
	ff.register(fs)
	var df dataFlags
	df.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	purgeEvery := fs.Duration("purge-every", time.Hour, "interval of the retention purge (0: never)")
	jobParts := fs.Int("job-parts", 4, "parts an ingest job is split into, run by whichever instances over the store claim them (1 to 64)")
	jobLease := fs.Duration("job-lease", 30*time.Second, "how long an instance's claim on a part of an ingest job holds unrenewed: a dead instance's part is taken over after it")
	var proxies multiFlag
	fs.Var(&proxies, "trusted-proxy", "address or CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable or comma-separated; default $"+envTrustedProxies+")")
	insecure := fs.Bool("insecure-cookies", false, "send the session cookie over plain HTTP on a non-loopback address (behind a TLS proxy that rewrites nothing, never on an open network)")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	if fs.NArg() > 0 {
		return usageErr(e, fs, "unexpected arguments")
	}
	if *jobParts < 1 || *jobParts > 64 {
		return usageErr(e, fs, "--job-parts %d: give 1 to 64", *jobParts)
	}
	if *jobLease < time.Second {
		return usageErr(e, fs, "--job-lease %s: give at least 1s", *jobLease)
	}
	if len(proxies) == 0 {
		if v := os.Getenv(envTrustedProxies); v != "" {
			proxies = multiFlag{v}
		}
	}
	trusted, err := server.ParseTrustedProxies(proxies)
	if err != nil {
		return usageErr(e, fs, "%v", err)
	}
	ff.minFaceFrac = -1 // probes and selfies: a face may be small in its photo
	dk, err := df.open(ctx, true)
	if err != nil {
		return err
	}
	defer dk.Close()
	kit, err := ff.open(ctx, pipeline.Config{})
	if err != nil {
		return err
	}
	defer kit.Close()
	h, err := dk.OpenIndex(ctx, kit.ModelID(), kit.Dim())
	if err != nil {
		return err
	}
	defer h.Close()
	v, err := dk.Vault(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	loopback := false
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil {
		loopback = ap.Addr().IsLoopback()
	}
	if !loopback && !*insecure {
		fmt.Fprintln(e.stderr, "gabarit serve: not on loopback: session cookies are marked Secure, so sign-in works only through HTTPS (put a TLS proxy in front)")
	}
	every := *purgeEvery
	if every == 0 {
		every = -1
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(server.Config{Data: dk, Model: kit, Index: h, Vault: v, Log: logger,
		SecureCookies: !loopback && !*insecure, PurgeEvery: every, TrustedProxies: trusted, Budget: ff.budget,
		JobParts: *jobParts, JobLease: *jobLease})
	if err != nil {
		ln.Close()
		return err
	}
	served := dk.Dir
	if dk.Config.Postgres() {
		served += " with the store " + dk.Config.RedactedStore()
	}
	fmt.Fprintf(e.stdout, "gabarit serving %s on http://%s/ (console), /portal (rights portal), /api/v1 (API), /metrics (admins and auditors)\n",
		served, ln.Addr())
	return srv.Serve(ctx, ln)
}
