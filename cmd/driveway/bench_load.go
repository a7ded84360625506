package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/driveway/driveway/bench/load"
)

func cmdBenchLoad(e *env, args []string) int {
	fs := e.benchFlags("load", `
Load drives an edge with offer requests over HTTP and reports requests/s, errors by kind,
latency percentiles (p50, p90, p99, p99.9, max) and offers per request.

The requests come from --population (gen-devices output: one request per line, sent in turn;
--devices N cuts each to its first N devices and leaves out the PCs with fewer) or --body
(one request, repeated).

Closed loop (the default): --concurrency workers, each sending its next request as soon as
the previous one is answered. Open loop (--rate R): requests are due R times a second
whatever the answers, and each one's latency is measured from the time it was due, so a
stall of the edge shows in every request it delayed; --concurrency then bounds the requests
in flight, and requests that go out more than 1 ms after they were due are counted late
(the generator or its connections could not keep up). The run stops after --duration or
--requests, whichever comes first, and in any case after --max-duration.

Engines: fasthttp (a goroutine per connection, fasthttp's client) and, for open loops on
Linux, epoll (the default there: one thread, every connection in one epoll set, about half
the CPU per request of fasthttp's, so the generator disturbs less what it measures).
--cpus pins the epoll engine's thread, for example --cpus 0 with the edge started under
"taskset -c 1": on one machine, the generator and the edge then each have a core.

Exit status: 0 when the run completed (its errors are reported), 1 when no request got an
answer, 2 on misuse.`)
	url := fs.String("url", "http://127.0.0.1:8080/v1/offers", "the edge's offer `URL` (a bare http://HOST:PORT means /v1/offers)")
	population := fs.String("population", "", "offer requests, one per line (gen-devices output), in `FILE` (- for stdin)")
	bodyFile := fs.String("body", "", "one offer request in `FILE` (- for stdin), sent every time")
	devices := fs.Int("devices", 0, "with --population: cut each request to its first `N` devices, leaving out PCs with fewer")
	concurrency := fs.Int("concurrency", 0, "workers (closed loop; default 16) or most requests in flight (open loop; default 64)")
	rate := fs.Float64("rate", 0, "open loop: requests per second (0: closed loop)")
	duration := fs.Duration("duration", 0, "how long to send (default 10s unless --requests is given)")
	requests := fs.Int64("requests", 0, "how many requests to send (0: no bound)")
	maxDuration := fs.Duration("max-duration", 0, "hard cap on the run (default --duration + 1m, or 10m)")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each request")
	engine := fs.String("engine", "", "`ENGINE` sending the requests: fasthttp or epoll (default epoll for open loops on Linux, else fasthttp)")
	cpus := fs.String("cpus", "", "pin the epoll engine's thread to these CPUs: a `LIST` such as 0 or 0,2-3")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if (*population == "") == (*bodyFile == "") {
		return e.usageError("bench load", "give either --population FILE or --body FILE")
	}
	if *devices < 0 || *concurrency < 0 || *rate < 0 || *duration < 0 || *requests < 0 || *maxDuration < 0 || *timeout <= 0 {
		return e.usageError("bench load", "--devices, --concurrency, --rate, --duration, --requests and --max-duration must not be negative, --timeout positive")
	}
	if *devices > 0 && *bodyFile != "" {
		return e.usageError("bench load", "--devices goes with --population")
	}
	cpuList, err := parseCPUList(*cpus)
	if err != nil {
		return e.usageError("bench load", "--cpus: "+err.Error())
	}
	var bodies [][]byte
	if *bodyFile != "" {
		b, err := e.readInput(*bodyFile)
		if err != nil {
			return e.fail("bench load", err)
		}
		bodies = [][]byte{b}
	} else {
		var r io.Reader = e.stdin
		if *population != "-" {
			f, err := os.Open(*population)
			if err != nil {
				return e.fail("bench load", err)
			}
			defer f.Close()
			r = f
		}
		if bodies, err = load.ReadRequests(r, *devices); err != nil {
			return e.fail("bench load", err)
		}
		if len(bodies) == 0 {
			what := "no requests"
			if *devices > 0 {
				what = fmt.Sprintf("no request with %d devices or more", *devices)
			}
			return e.fail("bench load", fmt.Errorf("%s in %s", what, *population))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := load.Run(ctx, load.Options{URL: *url, Bodies: bodies, Rate: *rate, Concurrency: *concurrency,
		Duration: *duration, Requests: *requests, MaxDuration: *maxDuration, Timeout: *timeout,
		Engine: *engine, CPUs: cpuList})
	if err != nil {
		return e.usageError("bench load", err.Error())
	}
	if *asJSON {
		b, err := json.MarshalIndent(&res, "", "  ")
		if err != nil {
			return e.fail("bench load", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		fmt.Fprint(e.stdout, res.String())
	}
	if res.Answered() == 0 {
		fmt.Fprintf(e.stderr, "driveway bench load: no request got an answer from %s\n", res.URL)
		return exitFailure
	}
	return exitOK
}

// parseCPUList reads a CPU list as taskset(1) and /sys write them: "0", "0,2-3"; empty: nil.
func parseCPUList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a || b >= 1024 {
			return nil, fmt.Errorf("%q: want CPU numbers and ranges such as 0,2-3", s)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
