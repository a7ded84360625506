// Package serve is the edge server: it answers POST /v1/offers (spec/offers.md;
// docs/offers.md) from the newest verified catalog release, over fasthttp, and keeps
// answering while releases come and go.
//
// Releases come from a catalog directory (Config.Catalog: a build's --out, watched with
// inotify and polled) or from an origin over HTTP (Config.Origin: any static file server
// holding a build's output; fetched with conditional GETs into Config.Cache). A release is
// verified exactly as `driveway verify` does, with the same index functions, before it is
// served; a release that does not verify (bad signature, wrong shard, a sequence not newer
// than the one served, expired) is logged, counted and refused, and the current one keeps
// serving. A swap never fails or blocks a request: requests hold a reference to the
// generation they started on, and its shards are unmapped after the last one.
//
// Endpoints:
//
//	POST /v1/offers[?explain=1][&now=RFC3339]  the offer procedure (now only with AllowTimeOverride)
//	POST /v1/reports                           install reports, appended to Config.Spool (404 without one)
//	GET  /v1/release                           the served release: sequence, id, dates, counts
//	GET  /healthz                              200 while the process runs
//	GET  /readyz                               200 while a verified, unexpired release is served
//	GET  /metrics                              Prometheus text format
//
// Statuses: 200; 202 (reports stored: {"accepted":n}); 400 (a malformed request,
// with offer's JSON error); 404; 405 (with Allow); 408 (a client too slow to send its request
// within ReadTimeout); 413 (a body over Limits.MaxBody, or a reports body over
// rollout.MaxBodySize); 415 (a POST without Content-Type: application/json); 431 (headers too
// large); 500 (a bug, logged); 503 (no release loaded yet, over MaxConns, or reports the
// spool cannot store now, with Retry-After). Error bodies are
// {"error":{"code":…,"message":…,"field":…}}.
//
// Usage:
//
//	srv, err := serve.New(serve.Config{Catalog: "/srv/catalog", Keys: keys, Logger: log})
//	ln, err := net.Listen("tcp", "127.0.0.1:8080")
//	go srv.Serve(ln)
//	…
//	err = srv.Shutdown(ctx) // in-flight requests finish
//
// A Server is safe for concurrent use. It keeps no state between requests: edges serving the
// same release answer identically.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/mod/sumdb/note"

	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/signing"
)

// Config configures a Server. Exactly one of Catalog and Origin is required, and Keys; every other zero value takes the default written on its field.
type Config struct {
	// Version and Revision name the binary in driveway_build_info (the CLI's version).
	Version, Revision string
	// AdminOnly answers the operator views (/metrics, /v1/release, offers with explain) only
	// through ServeAdmin; Serve's listener answers them 404 and 403 (serve/admin.go).
	AdminOnly bool
	// Sample, when its Out is set, writes a privacy-safe sample of the offer requests
	// (serve/sample.go), for driveway diff --population.
	Sample SampleOptions
	// AccessLog, when set, gets one JSON line per request answered (serve/access.go).
	AccessLog io.Writer
	// TLSCert and TLSKey are PEM files of a certificate chain and its key: both listeners
	// speak HTTPS, and a renewed pair is picked up without a restart (serve/tls.go).
	TLSCert, TLSKey string
	// Catalog is a catalog directory (a build's --out) to serve the newest verified release
	// of. New releases are noticed with inotify (Linux) and by polling every Poll.
	Catalog string
	// Origin is the base URL of an origin holding a build's output (ORIGIN/manifest,
	// ORIGIN/shards/<sha256>.shard), polled every Poll. Cache is required with it.
	Origin string
	// Cache is the directory where releases fetched from Origin are kept (a catalog
	// directory itself); at start the release its timestamp names is served at once, if
	// fresh. With Catalog, Cache is where the edge keeps its own copy of every shard it
	// serves (verified as it is copied, and mapped from there), so that nothing done to the
	// catalog directory's files can change the mapped bytes (serve/damage.go); "": a new
	// directory under the system's temporary directory, removed at Shutdown.
	Cache string
	// Keep is how many releases Cache keeps; default 2.
	Keep int

	// Keys verify a release's signature; Threshold distinct keys must have signed
	// (default 1). They are root 1 of the catalog's trust (package trust): every role,
	// until a root file of the catalog rotates them.
	Keys      []*signing.Verifier
	Threshold int
	// State is the file where the edge keeps what it has seen (the newest timestamp and
	// release, the root adopted, the catalog pinned), so that a restart cannot be shown an
	// older release; "": kept in memory only. It must be the edge's own.
	State string
	// LogKey, when set, makes the edge check every release it loads against the catalog's
	// transparency log (DIR/log, or ORIGIN/log; package releaselog): the release's statement
	// must be in the log at its checkpoint, signed with this key, and the checkpoint must
	// extend the newest one the edge verified before (kept in State). A release that is not
	// in the log, or a log that forks from what the edge saw, is refused (reason "log") and
	// the release served stays. nil: no log is checked (serve/releaselog.go).
	LogKey note.Verifier
	// CatalogName pins the catalog served; "": the catalog of the first release served
	// (kept in State). A release or timestamp of another catalog is refused.
	CatalogName string
	// MaxTimestampValidity refuses a timestamp valid for longer than this from now; default
	// 7 days (a pipeline signs them for hours).
	MaxTimestampValidity time.Duration
	// MaxValidity refuses a release valid for longer than this (expires - created); default
	// index.DefaultMaxValidity, 30 days.
	MaxValidity time.Duration

	// Poll is how often the source is checked: default 1 s for Catalog, 10 s for Origin.
	Poll time.Duration
	// BackoffMax caps the exponential backoff after a failed origin fetch; default 2 min.
	BackoffMax time.Duration
	// OriginTimeout bounds each request to the origin (the manifest, one shard); default 60 s.
	OriginTimeout time.Duration
	// Client fetches from the origin; nil: a net/http client with OriginTimeout.
	Client *http.Client
	// DisableInotify makes a Catalog edge rely on polling alone.
	DisableInotify bool

	// StaleOK is how long after its expiry a release keeps being served (and a release
	// expired less than StaleOK ago is still accepted); 0: not at all. Past it, offers are
	// answered with no offers and /readyz fails.
	StaleOK time.Duration
	// AllowTimeOverride accepts POST /v1/offers?now=RFC3339 (tests, simulations); without
	// it, a now parameter is a 400.
	AllowTimeOverride bool

	// Limits bound a request (body, devices, IDs per list, string length); zero fields
	// take offer.DefaultLimits. A body over Limits.MaxBody is a 413.
	Limits offer.Limits
	// ReadTimeout bounds reading one request, headers and body (default 5 s); WriteTimeout
	// writing its response (default 5 s); IdleTimeout a keep-alive connection waiting for
	// its next request (default 60 s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns is the most connections served at once (default 10,000); more get a 503.
	MaxConns int
	// BlockCache is the byte budget for decoded shard blocks (index.CacheBudget), shared by
	// every open shard; default 64 MiB; negative: no cache (every lookup decodes).
	BlockCache int64

	// Spool, when Spool.Dir is set, enables POST /v1/reports: install reports are checked
	// (rollout.DecodeReports, against the served release's labels and Clock), stamped
	// "received" with Clock's time and appended to NDJSON files in Spool.Dir for a log
	// shipper to collect (see rollout's spool format and docs/deployment.md). A 202 means
	// the reports are written and fsynced (group commit); when the spool cannot store them
	// the answer is 503 with Retry-After. Spool.Secret, the fleet's report secret, is
	// required: device ids are stored as pseudonyms keyed with it. Zero fields take
	// rollout's defaults (rotate at 64 MiB or 1 h, a 2 ms commit window, at most 1 GiB in
	// the directory, refuse below 1 GiB or 5% free, keep 30 days); a zero Spool.Clock is
	// Clock, a nil Spool.Logger is Logger. Without Spool.Dir, POST /v1/reports is a 404.
	Spool rollout.SpoolOptions
	// ReportLimits bound the reports one device and one client network may send (429 past
	// them; see serve/limits.go). ReportTokenTTL is how long after an offer a report on it
	// is taken (the offer's reportToken); default Spool.Retention, else
	// rollout.DefaultTokenTTL.
	ReportLimits   ReportLimits
	ReportTokenTTL time.Duration
	// TrustedProxies are the networks of the load balancers in front of the edge: for a
	// request from one of them, the client is the nearest address of X-Forwarded-For that is
	// not in them (report sources and limits). Empty: the peer address is the client.
	TrustedProxies []netip.Prefix

	// Clock is the time source for answers, release expiry and report stamps. Required:
	// the edge never reads the system clock on its own (the command passes time.Now, tests
	// and simulations their own clock).
	Clock func() time.Time
	// Logger receives structured logs; nil: discarded.
	Logger *slog.Logger
}

// DefaultBlockCache is Config.BlockCache's default.
const DefaultBlockCache = 64 << 20

func (c *Config) setDefaults() {
	if c.Keep <= 0 {
		c.Keep = 2
	}
	if c.Threshold <= 0 {
		c.Threshold = 1
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
		if c.Origin != "" {
			c.Poll = 10 * time.Second
		}
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 2 * time.Minute
	}
	if c.OriginTimeout <= 0 {
		c.OriginTimeout = 60 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.OriginTimeout}
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10000
	}
	if c.BlockCache == 0 {
		c.BlockCache = DefaultBlockCache
	}
	if c.Limits.MaxBody <= 0 {
		c.Limits.MaxBody = offer.DefaultLimits.MaxBody
	}
	if c.Spool.Clock == nil {
		c.Spool.Clock = c.Clock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Spool.Logger == nil {
		c.Spool.Logger = c.Logger
	}
}

// Server is an edge server. Make one with New.
type Server struct {
	cfg Config
	// noProofs leaves the statement and proofs out of offer answers: benchmarks only, to
	// measure what they cost in one run (export_test.go).
	noProofs bool
	log      *slog.Logger
	hs       *fasthttp.Server
	m        *metrics
	runtime  *runtimeMetrics // go_* and process_* series
	pool     *pool
	cur      atomic.Pointer[generation]

	handler fasthttp.RequestHandler
	admin   *fasthttp.Server // the admin listener's server (Config.AdminOnly)
	certs   *certReloader    // Config.TLSCert's pair
	access  *accessLog       // Config.AccessLog
	sample  *sampler         // Config.Sample
	states  sync.Pool        // *reqState
	bufs    sync.Pool        // *[]byte for /metrics

	stale   atomic.Bool // the served release is past expiry + StaleOK (for logging the change once)
	staleOK atomic.Bool // the served release is served only because of StaleOK (likewise)
	trust   *edgeTrust
	// recheck asks the watcher to check the served shards at once (a fault was seen);
	// faultLogged limits the fault log to one line per episode.
	recheck     chan struct{}
	faultLogged atomic.Bool
	// own is where a Catalog edge copies the shards it maps (its shards/ subdirectory);
	// ownTemp: made by New, removed by Shutdown.
	own      string
	ownTemp  bool
	ctx      context.Context
	cancel   context.CancelFunc
	bg       sync.WaitGroup
	loadMu   sync.Mutex // one load at a time
	shutdown sync.Once
	tooLarge []byte // the 413 body, naming the limit

	spool       *rollout.Spool        // nil: no POST /v1/reports
	tokens      *rollout.ReportTokens // with a spool: every offer carries a report token
	deviceLimit *windowLimiter        // nil: no limit
	sourceLimit *windowLimiter
	spoolMu     sync.RWMutex // read-held while appending; Shutdown takes it to close the spool
	spoolClosed bool
}

// New makes a server: it checks the configuration, loads the newest verified release of the
// catalog (or of the cache, for an origin) if there is one, and starts noticing new
// releases. Without any release it still starts: offers get a 503 until one verifies.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, m: newMetrics(), runtime: newRuntimeMetrics(cfg.Version, cfg.Revision), recheck: make(chan struct{}, 1)}
	switch {
	case cfg.Clock == nil:
		return nil, errors.New("serve: Config.Clock is required (time.Now in production, the test's clock in tests)")
	case cfg.Catalog != "" && cfg.Origin != "":
		return nil, errors.New("serve: Catalog and Origin exclude each other")
	case cfg.Catalog == "" && cfg.Origin == "":
		return nil, errors.New("serve: Catalog or Origin is required")
	case cfg.Origin != "" && cfg.Cache == "":
		return nil, errors.New("serve: Origin needs a Cache directory")
	case len(cfg.Keys) == 0:
		return nil, errors.New("serve: at least one key is required to verify releases")
	case cfg.Threshold > len(cfg.Keys):
		return nil, fmt.Errorf("serve: threshold %d is more than the %d keys given", cfg.Threshold, len(cfg.Keys))
	default:
		s.handler = s.route
	}
	var err error
	if s.trust, err = newEdgeTrust(&cfg); err != nil {
		return nil, err
	}
	if cfg.Catalog != "" {
		if s.own, err = ownShardDir(cfg.Cache); err != nil {
			return nil, err
		}
		s.ownTemp = cfg.Cache == ""
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("serve: TLSCert and TLSKey go together")
	}
	if cfg.TLSCert != "" {
		if s.certs, err = newCertReloader(s, cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	if s.pool, err = newPool(cfg.BlockCache, s.m); err != nil {
		return nil, err
	}
	if cfg.Spool.Dir != "" {
		if s.spool, err = rollout.OpenSpool(cfg.Spool); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		if s.tokens, err = rollout.NewReportTokens(cfg.Spool.Secret); err != nil {
			s.spool.Close()
			return nil, fmt.Errorf("serve: %w", err)
		}
		s.tokens.TTL = cfg.ReportTokenTTL
		if s.tokens.TTL <= 0 {
			s.tokens.TTL = cfg.Spool.Retention
		}
		s.cfg.ReportLimits.setDefaults()
		l := s.cfg.ReportLimits
		s.deviceLimit = newWindowLimiter(l.PerDevice, l.DeviceWindow, 18)
		s.sourceLimit = newWindowLimiter(l.PerSource, l.SourceWindow, 14)
		s.m.enableReports(s.spool.Stats)
	}
	s.tooLarge = errorBody(offer.CodeLimit, fmt.Sprintf("the body is over %d bytes, the most this edge reads (its --max-body); send fewer devices a request", cfg.Limits.MaxBody))
	s.m.gauges = s.gauges()
	if c := s.pool.budget; c != nil {
		s.m.gauges = append(s.m.gauges,
			&gauge{"driveway_edge_block_cache_budget_bytes", "The decoded-block cache's budget (--block-cache).", func() (float64, bool) { return float64(c.Stats().Budget), true }},
			&gauge{"driveway_edge_block_cache_used_bytes", "Decoded shard blocks held in the cache.", func() (float64, bool) { return float64(c.Stats().Used), true }})
		s.m.cache = []*counterFunc{{"driveway_edge_block_decodes_total",
			"zstd shard blocks decoded, by whether the cache kept them (cached=\"false\": the cache was full, and the block is decoded again at its next use: a growing rate says --block-cache is too small).",
			[]string{`cached="true"`, `cached="false"`}, func(i int) uint64 {
				st := c.Stats()
				if i == 0 {
					return st.DecodedCached
				}
				return st.DecodedUncached
			}}}
	}
	lim := cfg.Limits
	s.states.New = func() any { return &reqState{dec: offer.NewDecoder(lim)} }
	if cfg.AdminOnly {
		s.admin = &fasthttp.Server{
			Handler: s.route, ErrorHandler: s.errorHandler, NoDefaultServerHeader: true, Concurrency: 256,
			ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout,
			MaxRequestBodySize: cfg.Limits.MaxBody, CloseOnShutdown: true, Logger: fasthttpLogger{cfg.Logger},
			ReduceMemoryUsage: true,
		}
		s.handler = s.public
	}
	if cfg.AccessLog != nil {
		s.access = newAccessLog(s, cfg.AccessLog)
		s.handler = s.access.wrap(s.handler)
		if s.admin != nil {
			s.admin.Handler = s.access.wrap(s.admin.Handler)
		}
	}
	s.hs = &fasthttp.Server{
		Handler:               s.handler,
		ErrorHandler:          s.errorHandler,
		Name:                  "",
		NoDefaultServerHeader: true,
		Concurrency:           cfg.MaxConns,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		MaxRequestBodySize:    cfg.Limits.MaxBody,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{cfg.Logger},
		// A connection gives its request and response bodies (a whole PC's: 50 KB and more)
		// and its read and write buffers back to fasthttp's pools after each request, rather
		// than keeping them for its next one: memory follows the requests being answered, not
		// the connections open (see docs/deployment.md, Memory).
		ReduceMemoryUsage: true,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.access != nil {
		s.bg.Go(func() { s.access.run(s.ctx) })
	}
	if cfg.Sample.Out != nil {
		if s.sample, err = newSampler(s, cfg.Sample); err != nil {
			return nil, err
		}
		s.bg.Go(func() { s.sample.run(s.ctx) })
	}
	dir := cfg.Catalog
	if cfg.Origin != "" {
		dir = cfg.Cache
	}
	w := &dirWatcher{s: s, dir: dir, source: "catalog"}
	if cfg.Origin != "" {
		w.source = "cache"
	}
	w.check()
	if cfg.Origin != "" {
		o := newOriginSync(s)
		s.bg.Go(func() { o.run(s.ctx) })
	} else {
		s.bg.Go(func() { w.run(s.ctx) })
	}
	return s, nil
}

// Serve answers requests on ln until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.hs.Serve(s.listener(ln)) }

// Handler is the request handler, for serving through other means (tests, in-memory
// listeners). Requests must come through a fasthttp.Server configured like Serve's for the
// body limit and timeouts to apply.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handler }

// Shutdown stops noticing releases, stops accepting connections, lets requests in flight
// finish (closing idle keep-alive connections), closes the report spool (writing and
// syncing what is queued), and then releases the served release: its shards are unmapped
// after the last request that reads them. If ctx ends first it returns ctx's error; the
// requests still running keep their release until they finish (reports still arriving then
// are answered 503).
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutdown.Do(func() {
		s.cancel()
		s.bg.Wait()
		err = s.hs.ShutdownWithContext(ctx)
		if s.admin != nil {
			if aerr := s.admin.ShutdownWithContext(ctx); err == nil {
				err = aerr
			}
		}
		if s.access != nil {
			s.access.flush() // the lines of the requests that finished during the shutdown
		}
		if s.spool != nil {
			s.spoolMu.Lock()
			s.spoolClosed = true
			s.spoolMu.Unlock()
			s.spool.Close()
		}
		s.loadMu.Lock()
		if g := s.cur.Swap(nil); g != nil {
			g.release()
		}
		s.loadMu.Unlock()
		s.pool.shutdown()
		if s.ownTemp { // mapped files may go: their mappings stay until unmapped
			os.RemoveAll(filepath.Dir(s.own))
		}
	})
	return err
}

// fasthttpLogger routes fasthttp's messages (mostly broken connections) to slog at debug
// level.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	if f.l.Enabled(context.Background(), slog.LevelDebug) {
		f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
	}
}

// install swaps g in and logs it.
func (s *Server) install(g *generation, source string) {
	prev := s.servedSeq()
	s.swap(g)
	s.stale.Store(false)
	s.staleOK.Store(false)
	s.log.Info("release swapped in", "sequence", g.seq, "previous", prev, "id", g.id, "source", source,
		"shards", len(g.shards), "opened", g.opened, "load_ms", float64(g.loadTime.Microseconds())/1000,
		"expires", g.expires.UTC().Format(time.RFC3339))
}

// refused logs and counts a refused release.
func (s *Server) refused(r *refusal, file string) {
	s.m.refuse(r.reason)
	msg := "release refused; the current release keeps serving"
	if s.servedSeq() == 0 {
		msg = "release refused; nothing is served until one verifies"
	}
	s.log.Warn(msg, "reason", r.reason, "file", file, "serving", s.servedSeq(), "error", r.err.Error())
}
