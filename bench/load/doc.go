// Package load drives an edge with offer requests over HTTP and measures it: the load
// generator of `driveway bench load` and bench report, its latency histogram (Histogram),
// and the release lookup benchmark (Lookups).
//
// [Run] replays requests against an edge over HTTP, closed loop (workers, each waiting for
// its answer) or open loop (requests due at fixed times whatever the answers, latency
// measured from the time each was due). It has two engines. The fasthttp engine runs a
// goroutine per connection with fasthttp's client; it does both loops and in-memory
// connections for tests. The epoll engine (load_epoll_linux.go, the default for open loops
// on Linux) runs on one locked thread: every connection in one epoll set, each request
// written from prebuilt bytes when it is due, waits in epoll_pwait2 with a nanosecond
// timeout, answers parsed only as far as status, length and Connection. It costs about half
// the CPU per request of the fasthttp engine and allocates nothing per request, so on a
// machine whose cores the generator shares with the servers it disturbs less what it
// measures: at half load the fixed-answer server's p99 was 4.2 ms with it and 6.3 ms with
// the fasthttp engine in the same session (`driveway bench load --engine fasthttp|epoll`).
//
// Requests come from bench.GenerateDevices' populations (ReadRequests).
package load
