// Package server is gabarit's HTTP front end: the REST API under /api/v1
// (described by the OpenAPI document it serves at /api/v1/openapi.json),
// the web console for operators, investigators, verifiers, DPOs, auditors
// and admins, the public rights portal, health and readiness probes and
// Prometheus metrics, in one process over one data directory.
//
// Every route declares who may call it (see routes.go); the rule is
// enforced here, on the server, for every request, and tested as a matrix
// of each role against each route. Console users log in with a password
// (argon2id) and get a session cookie (HttpOnly, SameSite=Strict, Secure
// unless served on loopback over plain HTTP) and a CSRF token that every
// state-changing request must echo; API clients send bearer tokens, which
// are stored hashed and can be listed and revoked. Errors are JSON
// {"code","message"} and never carry internal details: those go to the
// log, under the request id the error names.
//
// The server holds its data directory's writer lock for its lifetime (its
// vector index file). Over a PostgreSQL store, many servers, each with its
// own data directory and the same master key, share the rest: ingest jobs
// are rows split into parts that the instances claim under a lease, one
// part per instance at a time (another takes a part over when its lease
// expires), the retention purge runs under a leader
// lease, access packages are sealed in the store, the vault is read from
// the store before every search and ingest batch, and each instance's index
// follows the store's index outbox every few seconds (at once for the
// changes it makes itself).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/membudget"
	"gabarit/internal/rights"
	"gabarit/internal/search"
	"gabarit/internal/store"
	"gabarit/internal/vault"
	"gabarit/internal/vstore"
)

// Config is what a server serves.
type Config struct {
	Data  *app.Data      // opened with its writer lock
	Model app.Model      // the face path
	Index *vstore.Handle // the vector index of Model, caught up with the store
	Vault *vault.Vault
	Log   *slog.Logger

	// SecureCookies marks the session cookie Secure (HTTPS only). Serve
	// sets it unless the server listens on loopback over plain HTTP.
	SecureCookies bool
	// PurgeEvery is the interval of the retention purge (default 1 h; < 0: never).
	PurgeEvery time.Duration
	// CatchUpEvery is how often the vector index applies the changes of
	// faces made by other instances (the store's index outbox; default
	// 5 s; < 0: never).
	CatchUpEvery time.Duration
	// JobParts is how many parts an ingest job is split into, each run by
	// whichever instance claims it (default 4; 1 to store.MaxJobParts).
	JobParts int
	// JobLease is how long an instance's claim on a part of an ingest job
	// holds without being renewed (default 30 s): a part whose instance
	// died is taken over by another this long after its last renewal. The
	// owner renews it every sixth of it.
	JobLease time.Duration
	// SessionTTL is how long a console session lasts (default 8 h).
	SessionTTL time.Duration
	// MaxUpload is the largest request body with photos (default 20 MiB).
	MaxUpload int64
	// Analyses is the most photos analysed at once by searches and rights
	// requests (default GOMAXPROCS); the others wait their turn.
	Analyses int
	// Budget is the process's memory budget, shared with the face path
	// (pipeline.Config.Budget), or nil for none: the server reserves in it
	// the photos it decodes besides their analysis (face thumbnails).
	Budget *membudget.Budget
	// BudgetWait is the longest a photo waits for its memory in the budget
	// before the request is refused with 503 (default 20 s).
	BudgetWait time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TrustedProxies are the reverse proxies whose X-Forwarded-For (or
	// Forwarded) is believed for the client's address (see clientAddr);
	// none: forwarding headers are ignored (see ParseTrustedProxies).
	TrustedProxies []netip.Prefix
}

// Server serves the API, the console and the portal.
type Server struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
	routes  []*route
	metrics *metrics
	search  *search.Engine
	rights  *rights.Engine
	jobs    *jobs
	logins  *limiter // failed sign-ins, by client address
	portal  *limiter // portal requests registered, by client address
	slots   chan struct{}
	ready   func() error

	// instance is this server's random id among the instances over the
	// store: it owns the jobs it claims and the leader leases it holds.
	instance string
	// oldPackages is the folder of the access packages made before they
	// were kept in the store (rightsPackage reads them from there).
	oldPackages string

	// portalStatus limits the portal's status look-ups (reference and
	// code), and faceCheck its checks of selfies, by client address.
	portalStatus *limiter
	faceCheck    *limiter
	once         *shownOnce  // new API tokens, shown once after a redirect
	probes       *probeCache // photos detected, until their search (probecache.go)

	// loginAccounts limits failed sign-ins by account, portalFailed the
	// portal's refused requests (a bad photo, no face, a bad form) by
	// client address, apart from those registered.
	loginAccounts *limiter
	portalFailed  *limiter

	indexMu sync.Mutex // serialises index saves
	bg      sync.WaitGroup
}

// Limits of requests.
const (
	maxJSONBody     = 64 << 10
	defaultUpload   = 20 << 20
	maxSelfies      = 5
	readTimeout     = 30 * time.Second
	writeTimeout    = 2 * time.Minute // a rights request or a large export
	idleTimeout     = 2 * time.Minute
	shutdownTimeout = 30 * time.Second
)

// Rate limits, per client address (an IPv6 client's /64) or per account,
// over a sliding window: a refused request waits until the oldest counted
// one leaves the window (Retry-After). Sign-ins count only when they fail;
// the portal counts registered requests and refused ones apart, so that
// bad photos do not use up the requests a person may register.
const (
	limitWindowLogins      = 10 * time.Minute
	failedLoginsPerAddr    = 20  // failed sign-ins per address, per 10 minutes
	failedLoginsPerAccount = 10  // failed sign-ins per account name, per 10 minutes
	portalPerAddr          = 10  // requests registered through the portal, per hour
	portalFailedPerAddr    = 30  // portal requests refused (bad photo, no face, bad form), per hour
	portalStatusPerAddr    = 60  // status look-ups, per hour
	faceChecksPerAddr      = 120 // selfie checks (one or several photos each), per hour
)

// New builds a server on cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Data == nil || cfg.Model == nil || cfg.Index == nil || cfg.Vault == nil {
		return nil, errors.New("server: data, model, index and vault are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CatchUpEvery == 0 {
		cfg.CatchUpEvery = defaultCatchUpEvery
	}
	if cfg.PurgeEvery == 0 {
		cfg.PurgeEvery = time.Hour
	}
	if cfg.JobParts <= 0 {
		cfg.JobParts = defaultJobParts
	}
	if cfg.JobParts > store.MaxJobParts {
		return nil, fmt.Errorf("server: %d parts per ingest job, at most %d", cfg.JobParts, store.MaxJobParts)
	}
	if cfg.JobLease <= 0 {
		cfg.JobLease = defaultJobLease
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = defaultUpload
	}
	if cfg.Analyses <= 0 {
		cfg.Analyses = max(1, runtimeCPUs())
	}
	if cfg.BudgetWait <= 0 {
		cfg.BudgetWait = 20 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if _, err := pageTemplates(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, slots: make(chan struct{}, cfg.Analyses)}
	s.metrics = newMetrics(s)
	se, err := app.SearchEngine(context.Background(), cfg.Data, cfg.Model, cfg.Vault, cfg.Index.Index)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.search = se
	re, err := app.RightsEngine(cfg.Data, cfg.Model, cfg.Vault, cfg.Index.Index)
	if err != nil {
		return nil, err
	}
	s.rights = re
	// Access packages are kept in the store, for every instance, not in a
	// folder of this one.
	s.oldPackages, re.OutDir = re.OutDir, ""
	s.instance = newInstanceID()
	s.jobs = newJobs(s)
	s.logins = newLimiter(failedLoginsPerAddr, limitWindowLogins)
	s.loginAccounts = newLimiter(failedLoginsPerAccount, limitWindowLogins)
	s.portal = newLimiter(portalPerAddr, time.Hour)
	s.portalFailed = newLimiter(portalFailedPerAddr, time.Hour)
	s.portalStatus = newLimiter(portalStatusPerAddr, time.Hour)
	s.faceCheck = newLimiter(faceChecksPerAddr, time.Hour)
	s.once = newShownOnce(5 * time.Minute)
	s.probes = newProbeCache(probeTTL, probeMaxItems, probeMaxBytes, cfg.Now)
	s.ready = func() error { return cfg.Data.DB.Ping(context.Background()) }
	s.handler = s.buildHandler()
	return s, nil
}

// Handler is the server's root handler (API, console, portal, probes,
// metrics), with its middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, lets requests in flight finish (up to 30 s), stops a
// running ingest at a safe point (what it committed is kept) and saves the
// vector index.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	bgCtx, stopBG := context.WithCancel(ctx)
	s.startBackground(bgCtx)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("shutdown: %w", serr))
	}
	stopBG()
	s.jobs.stop() // cancels a running ingest and waits for its safe point
	s.bg.Wait()
	if serr := s.saveIndex(context.Background()); serr != nil {
		err = errors.Join(err, serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// saveIndex writes the vector index to disk.
func (s *Server) saveIndex(ctx context.Context) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	return s.cfg.Index.Save(ctx)
}

// startBackground starts the scheduled work: the vector index's catch-up
// with the index outbox, the retention purge and the removal of expired
// sessions.
func (s *Server) startBackground(ctx context.Context) {
	s.followIndex(ctx)
	if s.cfg.PurgeEvery < 0 {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(s.cfg.PurgeEvery)
		defer t.Stop()
		for {
			s.housekeeping(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
