package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/driveway/driveway/bench/baseline"
)

func cmdBenchFixedAnswer(e *env, args []string) int {
	fs := e.benchFlags("fixed-answer", `
Fixed-answer serves the baseline the edge is measured against: fasthttp with the edge's
listener settings answering every request, whatever its method, path and body, with the same
JSON body of --bytes bytes (an offer response with no offers, padded), doing no work. bench
report and scripts/bench-edge.sh run it beside the edge; the edge's throughput and CPU per
request are reported as ratios to it. It runs until SIGTERM or SIGINT.`)
	n := fs.Int("bytes", 500, "the answer's size in `BYTES`")
	listen := fs.String("listen", "127.0.0.1:8081", "`ADDR` to listen on")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *n <= 0 {
		return e.usageError("bench fixed-answer", fmt.Sprintf("--bytes %d: want a positive size", *n))
	}
	return serveFixedAnswer(e, "bench fixed-answer", *n, *listen)
}

// serveFixedAnswer runs the fixed-answer baseline on listen until SIGTERM or SIGINT (also
// behind serve's hidden --fixed-answer, which earlier reports name).
func serveFixedAnswer(e *env, name string, bytes int, listen string) int {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return e.fail(name, err)
	}
	f := baseline.NewFixedAnswer(bytes)
	fmt.Fprintf(e.stderr, "driveway %s: listening on %s, answering %d bytes\n", name, ln.Addr(), len(baseline.Body(bytes)))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- f.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = f.Shutdown(sctx)
		cancel()
		if serr := <-served; err == nil {
			err = serr
		}
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return e.fail(name, err)
	}
	return exitOK
}
