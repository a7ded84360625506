package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/serve"
)

func cmdServe(e *env, args []string) int {
	fs := e.flags("serve", `
Serve runs an edge: it answers POST /v1/offers (docs/offers.md; ?explain=1) from the newest
verified release, and GET /v1/release, /healthz, /readyz and /metrics (Prometheus).

Releases come from a catalog directory (--catalog, a build's --out: new releases are noticed
with inotify and by polling) or from an origin (--origin URL: any static HTTP server holding
a build's output; its timestamp is polled with conditional GETs and the release it names and
its missing shards are downloaded into --cache). The edge serves exactly the release the
newest valid timestamp (DIR/timestamp.json) names, verified as 'driveway verify' does; a bad
signature or timestamp, a wrong shard, a rollback, another catalog or an expired release is
refused, logged and counted, and the current release keeps serving. When the served release
or its timestamp expires and nothing newer verifies, offers get a 503 and /readyz fails
(--stale-ok extends). --state keeps what the edge has seen across restarts, so that it can
never be shown an older release (docs/architecture.md, Trust). With --log-key, every
release must also be in the catalog's transparency log (DIR/log, ORIGIN/log) at a checkpoint
that extends the newest one in --state: a release missing from the log, or a log that forked
from what the edge saw (a split view), is refused with reason log.

With --spool DIR the edge also takes install reports (POST /v1/reports: what a PC's install
of an offered driver did) and appends them to NDJSON files in DIR, rotated by size and age,
for a log shipper to collect and 'driveway rollout measure' to read (docs/deployment.md,
Install reports). A 202 means written and fsynced (group commit); when the spool cannot
store (directory gone or read-only, disk full, --spool-max-total, --spool-min-free) the
answer is 503 with Retry-After, and offers never wait on it. --report-secret-file is
required with --spool: device ids are stored as HMAC pseudonyms keyed with the fleet's
secret. Reports are kept --report-retention. Without --spool, POST /v1/reports is a 404.

Logs are JSON on stderr. SIGTERM or SIGINT stops accepting connections and lets requests in
flight finish (at most --shutdown-timeout).`)
	catalog := fs.String("catalog", "", "serve releases from this catalog `DIR`")
	origin := fs.String("origin", "", "serve releases fetched from this origin `URL`")
	cache := fs.String("cache", "", "the edge's own `DIR`: with --origin, where fetched releases are kept (required); with --catalog, where the edge keeps its own copy of the shards it maps (default: a temporary directory)")
	keys := fs.StringArray("key", nil, "public key `FILE` to verify releases with (required; repeat for several)")
	threshold := fs.Int("threshold", 1, "distinct keys that must have signed")
	state := fs.String("state", "", "keep what the edge has seen in this `FILE` (default: CACHE/edge-state.json when --cache is given)")
	catalogName := fs.String("catalog-name", "", "serve only this catalog `NAME` (default: the first release's, kept in --state)")
	logKeyFile := fs.String("log-key", "", "check every release against the catalog's transparency log (DIR/log or ORIGIN/log) signed by this log public key `FILE`")
	listen := fs.String("listen", "127.0.0.1:8080", "the `ADDR` to listen on")
	adminListen := fs.String("admin-listen", "", "answer /metrics, /v1/release and ?explain=1 only on this `ADDR` (operators'), not on --listen (PCs')")
	tlsCert := fs.String("tls-cert", "", "speak HTTPS with this PEM certificate chain `FILE` (reloaded when it changes; with --tls-key)")
	tlsKey := fs.String("tls-key", "", "the PEM private key `FILE` of --tls-cert")
	sampleFile := fs.String("sample-requests", "", "append one in --sample-every offer requests to `FILE`, device ids hashed and instance paths removed: a population for driveway diff")
	sampleEvery := fs.Int("sample-every", 1000, "with --sample-requests: sample one request in `N`")
	accessLog := fs.String("access-log", "", "append one JSON line per request to `FILE` (- for stdout): time, peer, method, path, query, status, bytes, µs; never bodies")
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
	spoolSync := fs.Duration("spool-sync", rollout.DefaultSyncEvery, "group-commit window: an idle spool writer waits this long for more reports before it writes and fsyncs (negative: none)")
	spoolQueue := fs.Int("spool-queue", rollout.DefaultQueue, "reports waiting for the spool writer at most (more are answered 503)")
	spoolMaxTotal := fs.Int64("spool-max-total", rollout.DefaultMaxTotalBytes, "refuse reports (503) while the spool directory holds this many `BYTES`")
	spoolMinFree := fs.Int64("spool-min-free", rollout.DefaultMinFreeBytes, "refuse reports (503) rather than leave less than this many `BYTES` free on the spool's file system (-1: no bound)")
	spoolMinFreePct := fs.Float64("spool-min-free-percent", rollout.DefaultMinFreePercent, "likewise, in percent of the file system's size (-1: no bound)")
	reportSecret := fs.String("report-secret-file", "", "with --spool: the fleet's report secret (`FILE`, at least 32 bytes, the same on every edge): device ids are stored as HMAC-SHA256 pseudonyms keyed with it")
	reportRetention := fs.Duration("report-retention", rollout.DefaultRetention, "keep reports this long: older ones are refused, and closed spool files past it that no shipper took are deleted")
	reportMaxAhead := fs.Duration("report-max-ahead", rollout.DefaultMaxAhead, "refuse reports dated further than this ahead of the edge's clock")
	reportTokenTTL := fs.Duration("report-token-ttl", 0, "take a report this long after the offer it is on (its reportToken; default --report-retention)")
	limitDevice := fs.String("report-limit-device", fmt.Sprintf("%d/1h", serve.DefaultReportsPerDevice), "reports one device id may send this edge, as `N/DURATION` (past it: 429; off: none)")
	limitSource := fs.String("report-limit-source", fmt.Sprintf("%d/1m", serve.DefaultReportsPerSource), "reports one client network (/24 or /48) may send this edge, as `N/DURATION` (past it: 429; off: none)")
	trustedProxies := fs.StringSlice("trusted-proxy", nil, "a `CIDR` of the load balancers in front of this edge (repeatable): for their requests the client is the nearest X-Forwarded-For address outside them")
	blockCache := fs.Int64("block-cache", serve.DefaultBlockCache, "budget in `BYTES` for decoded shard blocks (0: none)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long requests in flight may take to finish at shutdown")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fixed := fs.Int("fixed-answer", 0, "the benchmark baseline: driveway bench fixed-answer --bytes `N` (kept for the commands of earlier reports)")
	_ = fs.MarkHidden("fixed-answer")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return e.usageError("serve", fmt.Sprintf("--log-level %q: want debug, info, warn or error", *logLevel))
	}
	if *fixed > 0 {
		return serveFixedAnswer(e, "serve", *fixed, *listen)
	}
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
	if *catalog != "" {
		// Fail fast on a typo: a catalog directory that is not there yet would only make
		// an edge that is never ready.
		if fi, err := os.Stat(*catalog); err != nil || !fi.IsDir() {
			return e.fail("serve", fmt.Errorf("--catalog %s is not a directory: give the --out of driveway build (it may hold no release yet, but it must exist)", *catalog))
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
	// From here on every line on stderr is JSON, failures too.
	fatal := func(err error) int {
		log.Error("driveway serve cannot start", "error", oneLine(err.Error()))
		return exitFailure
	}
	statePath := *state
	if statePath == "" && *cache != "" {
		statePath = filepath.Join(*cache, "edge-state.json")
	}
	if statePath == "" {
		log.Warn("no --state: what this edge has seen is kept in memory only, so after a restart it could be shown an older release while that release's timestamp is unexpired")
	}
	limits := serve.ReportLimits{}
	for _, l := range []struct {
		flag, v string
		n       *int
		window  *time.Duration
	}{{"--report-limit-device", *limitDevice, &limits.PerDevice, &limits.DeviceWindow}, {"--report-limit-source", *limitSource, &limits.PerSource, &limits.SourceWindow}} {
		if l.v == "off" {
			*l.n = -1
			continue
		}
		count, per, ok := strings.Cut(l.v, "/")
		n, err := strconv.Atoi(count)
		d, derr := time.ParseDuration(per)
		if !ok || err != nil || derr != nil || n < 1 || d <= 0 {
			return e.usageError("serve", fmt.Sprintf("%s %q: want N/DURATION, such as 120/1h, or off", l.flag, l.v))
		}
		*l.n, *l.window = n, d
	}
	var proxies []netip.Prefix
	for _, c := range *trustedProxies {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				return e.usageError("serve", fmt.Sprintf("--trusted-proxy %q: want a CIDR such as 10.0.0.0/8 or an address", c))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, p.Masked())
	}
	var secret []byte
	if *spool != "" {
		if *reportSecret == "" {
			return e.usageError("serve", "--spool needs --report-secret-file: device ids are stored as pseudonyms keyed with the fleet's secret (head -c 32 /dev/urandom | base64 > FILE, the same file on every edge)")
		}
		if secret, err = rollout.LoadSecret(*reportSecret); err != nil {
			return fatal(err)
		}
	}
	var logKey note.Verifier
	if *logKeyFile != "" {
		if logKey, err = releaselog.LoadVerifier(*logKeyFile); err != nil {
			return fatal(err)
		}
	}
	var access io.Writer
	switch *accessLog {
	case "":
	case "-":
		access = e.stdout
	default:
		f, err := os.OpenFile(*accessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fatal(fmt.Errorf("--access-log: %w", err))
		}
		defer f.Close()
		access = f
	}
	var sample serve.SampleOptions
	if *sampleFile != "" {
		if *sampleEvery < 1 {
			return e.usageError("serve", "--sample-every must be 1 or more")
		}
		f, err := os.OpenFile(*sampleFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fatal(fmt.Errorf("--sample-requests: %w", err))
		}
		defer f.Close()
		sample = serve.SampleOptions{Out: f, Every: *sampleEvery}
	}
	version := readVersion()
	srv, err := serve.New(serve.Config{
		AccessLog: access, Sample: sample,
		Version: version.Version, Revision: version.Revision,
		AdminOnly: *adminListen != "", TLSCert: *tlsCert, TLSKey: *tlsKey,
		Catalog: *catalog, Origin: *origin, Cache: *cache, Keys: verifiers, Threshold: *threshold,
		Poll: *poll, BackoffMax: *backoffMax, OriginTimeout: *originTimeout,
		StaleOK: *staleOK, AllowTimeOverride: *allowTime,
		Limits:      offer.Limits{MaxBody: *maxBody, MaxDevices: *maxDevices, MaxIDs: *maxIDs, MaxString: *maxString},
		ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout,
		MaxConns: *maxConns, BlockCache: cacheBytes, Logger: log, Clock: e.now,
		State: statePath, CatalogName: *catalogName, LogKey: logKey,
		Spool: rollout.SpoolOptions{Dir: *spool, Secret: secret, MaxFileBytes: *spoolMaxBytes, MaxFileAge: *spoolMaxAge, SyncEvery: *spoolSync, Queue: *spoolQueue,
			MaxTotalBytes: *spoolMaxTotal, MinFreeBytes: *spoolMinFree, MinFreePercent: *spoolMinFreePct, Retention: *reportRetention, MaxAhead: *reportMaxAhead},
		ReportLimits: limits, ReportTokenTTL: *reportTokenTTL, TrustedProxies: proxies,
	})
	if err != nil {
		return fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		srv.Shutdown(context.Background())
		return fatal(err)
	}
	var adminLn net.Listener
	if *adminListen != "" {
		if adminLn, err = net.Listen("tcp", *adminListen); err != nil {
			ln.Close()
			srv.Shutdown(context.Background())
			return fatal(fmt.Errorf("--admin-listen: %w", err))
		}
		log.Info("admin listening", "addr", adminLn.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "pid", os.Getpid(), "version", readVersion().Version, "tls", *tlsCert != "")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	if adminLn != nil {
		go func() { served <- srv.ServeAdmin(adminLn) }()
	}
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
		log.Error("driveway serve stopped with an error", "error", oneLine(err.Error()))
		return exitFailure
	}
	log.Info("stopped")
	return exitOK
}
