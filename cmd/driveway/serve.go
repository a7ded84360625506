package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
)

func cmdServe(e *env, args []string) int {
	fs := e.flags("serve", `
Serve runs an edge: it answers POST /v1/offers (spec/offers.md; ?explain=1) from the newest
verified release, and GET /v1/release, /healthz, /readyz and /metrics (Prometheus).

Releases come from a catalog directory (--catalog, a build's --out: new releases are noticed
with inotify and by polling) or from an origin (--origin URL: any static HTTP server holding
a build's output; the manifest is polled with conditional GETs and missing shards are
downloaded into --cache). Every release is verified as 'driveway verify' does before it is
served; a bad signature, a wrong shard, a rollback or an expired manifest is refused, logged
and counted, and the current release keeps serving. When the served release expires and
nothing newer verifies, offers are answered empty and /readyz fails (--stale-ok extends).

With --spool DIR the edge also takes install reports (POST /v1/reports: what a PC's install
of an offered driver did) and appends them to NDJSON files in DIR, rotated by size and age
and fsynced in batches, for a log shipper to collect and 'driveway rollout measure' to read
(docs/deployment.md, Install reports). Reports never slow offers: when the queue or the disk
is full they are dropped and counted. Without --spool, POST /v1/reports is a 404.

Logs are JSON on stderr. SIGTERM or SIGINT stops accepting connections and lets requests in
flight finish (at most --shutdown-timeout).`)
	catalog := fs.String("catalog", "", "serve releases from this catalog `DIR`")
	origin := fs.String("origin", "", "serve releases fetched from this origin `URL`")
	cache := fs.String("cache", "", "with --origin: the `DIR` to keep fetched releases in")
	keys := fs.StringArray("key", nil, "public key `FILE` to verify releases with (required; repeat for several)")
	threshold := fs.Int("threshold", 1, "distinct keys that must have signed")
	listen := fs.String("listen", "127.0.0.1:8080", "the `ADDR` to listen on")
	allowTime := fs.Bool("allow-time-override", false, "accept POST /v1/offers?now=RFC3339 (tests, simulations)")
	staleOK := fs.Duration("stale-ok", 0, "keep serving a release this long past its expiry")
	poll := fs.Duration("poll", 0, "how often to check for a new release (default 1s, 10s with --origin)")
	backoffMax := fs.Duration("backoff-max", 2*time.Minute, "longest wait between retries when the origin fails")
	originTimeout := fs.Duration("origin-timeout", 60*time.Second, "bound on each request to the origin")
	maxBody := fs.Int("max-body", offer.DefaultLimits.MaxBody, "largest request body in `BYTES` (larger: 413)")
	maxDevices := fs.Int("max-devices", offer.DefaultLimits.MaxDevices, "most devices in a request")
	maxIDs := fs.Int("max-ids", offer.DefaultLimits.MaxIDs, "most entries in a list of a request (at most 8192)")
	maxString := fs.Int("max-string", offer.DefaultLimits.MaxString, "longest string in a request, in bytes")
	readTimeout := fs.Duration("read-timeout", 5*time.Second, "time to read a request, headers and body")
	writeTimeout := fs.Duration("write-timeout", 5*time.Second, "time to write a response")
	idleTimeout := fs.Duration("idle-timeout", 60*time.Second, "how long a keep-alive connection may wait for its next request")
	maxConns := fs.Int("max-conns", 10000, "most connections served at once (more get a 503)")
	spool := fs.String("spool", "", "accept POST /v1/reports and append them to spool files in this `DIR`")
	spoolMaxBytes := fs.Int64("spool-max-bytes", 64<<20, "rotate a spool file at this many `BYTES`")
	spoolMaxAge := fs.Duration("spool-max-age", time.Hour, "rotate a spool file this old")
	spoolSync := fs.Duration("spool-sync", time.Second, "write and fsync spooled reports at least this often")
	spoolQueue := fs.Int("spool-queue", 65536, "reports waiting for the spool writer at most (more are dropped and counted)")
	blockCache := fs.Int64("block-cache", serve.DefaultBlockCache, "budget in `BYTES` for decoded shard blocks (0: none)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long requests in flight may take to finish at shutdown")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fixed := fs.Int("fixed-answer", 0, "benchmark baseline: answer every request with a fixed JSON body of `N` bytes")
	_ = fs.MarkHidden("fixed-answer")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return e.usageError("serve", fmt.Sprintf("--log-level %q: want debug, info, warn or error", *logLevel))
	}
	if *fixed <= 0 {
		switch {
		case (*catalog == "") == (*origin == ""):
			return e.usageError("serve", "give either --catalog or --origin")
		case *origin != "" && *cache == "":
			return e.usageError("serve", "--origin needs --cache")
		case len(*keys) == 0:
			return e.usageError("serve", "--key is required")
		case *threshold < 1 || *threshold > len(*keys):
			return e.usageError("serve", fmt.Sprintf("--threshold %d: want 1 to the %d keys given", *threshold, len(*keys)))
		}
	}
	verifiers, err := loadVerifiers(*keys)
	if err != nil {
		return e.fail("serve", err)
	}
	cacheBytes := *blockCache
	if cacheBytes == 0 {
		cacheBytes = -1 // serve.Config: negative means none
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	srv, err := serve.New(serve.Config{
		Catalog: *catalog, Origin: *origin, Cache: *cache, Keys: verifiers, Threshold: *threshold,
		Poll: *poll, BackoffMax: *backoffMax, OriginTimeout: *originTimeout,
		StaleOK: *staleOK, AllowTimeOverride: *allowTime,
		Limits:      offer.Limits{MaxBody: *maxBody, MaxDevices: *maxDevices, MaxIDs: *maxIDs, MaxString: *maxString},
		ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout,
		MaxConns: *maxConns, BlockCache: cacheBytes, Logger: log, FixedAnswer: *fixed, Clock: e.now,
		Spool: rollout.SpoolOptions{Dir: *spool, MaxFileBytes: *spoolMaxBytes, MaxFileAge: *spoolMaxAge, SyncEvery: *spoolSync, Queue: *spoolQueue},
	})
	if err != nil {
		return e.fail("serve", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		srv.Shutdown(context.Background())
		return e.fail("serve", err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "pid", os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served: // the listener failed
		srv.Shutdown(context.Background())
	case <-ctx.Done():
		log.Info("shutting down", "timeout", shutdownTimeout.String())
		sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		if serr := <-served; err == nil {
			err = serr
		}
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return e.fail("serve", err)
	}
	log.Info("stopped")
	return exitOK
}
