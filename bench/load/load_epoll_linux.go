package load

// The epoll engine: an open loop on one thread. The fasthttp engine's open loop (load.go)
// hands each due request to one of Concurrency goroutines through a channel; every request
// then costs two goroutine wake-ups and the client's own work, about 45 µs of CPU on this
// kind of machine, and on a machine whose cores it shares with the server the generator's
// scheduling shows up as milliseconds of latency that are not the server's. This engine
// keeps every connection in one epoll set and does everything on one locked OS thread:
// write the due request's prebuilt bytes on an idle connection, wait in epoll_pwait2 with a
// nanosecond timeout until the next request is due or an answer arrives, read the answer
// and parse just enough of it (status line, Content-Length, Connection: close). It does
// not allocate per request. It speaks plain HTTP/1.1 to servers that answer with a
// Content-Length (the edge, fasthttp, nginx with static files); a chunked answer counts as
// an "other" error.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const epollEngineAvailable = true

// econn is one connection of the epoll engine.
type econn struct {
	fd   int // -1: not connected
	busy bool
	out  []byte // the request's bytes not yet written
	in   []byte // the answer read so far (its capacity is reused)
	hdr  int    // with an answer's header read: its length, else 0
	body int    // the body's length once the header is read
	due  int64  // the request's intended time, ns since the start
	sent int64  // when it was written, ns since the start
}

// epollLoad is Run's open loop on the epoll engine; o has its defaults filled in, uri is
// the URL to POST to and hostPort where it is.
func epollLoad(ctx context.Context, o Options, uri, hostPort string) (Result, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return Result{}, err
	}
	addr, err := net.ResolveTCPAddr("tcp", hostPort)
	if err != nil {
		return Result{}, fmt.Errorf("bench: load: %v", err)
	}
	r := &epollRun{o: o, st: new(workerStats), conns: make([]econn, o.Concurrency), idle: make([]int, 0, o.Concurrency),
		perReq: float64(time.Second) / o.Rate}
	if r.sa, r.family, err = sockaddrOf(addr); err != nil {
		return Result{}, err
	}
	reqs := make([][]byte, len(o.Bodies))
	for i, b := range o.Bodies {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: driveway-bench\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
			u.RequestURI(), u.Host, o.ContentType, len(b))
		reqs[i] = append([]byte(head), b...)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unpin, err := pinThread(o.CPUs)
	if err != nil {
		return Result{}, err
	}
	defer unpin()
	defer lowerTimerSlack()()
	if r.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return Result{}, fmt.Errorf("bench: load: epoll: %v", err)
	}
	defer unix.Close(r.ep)
	defer func() {
		for i := range r.conns {
			r.hangUp(i)
		}
	}()
	for i := range r.conns {
		r.conns[i].fd = -1
		r.dial(i) // a failure here is counted when a request needs the connection
		r.idle = append(r.idle, i)
	}
	r.start = time.Now()
	stopped, err := r.loop(ctx, reqs)
	if err != nil {
		return Result{}, err
	}
	return mergeStats(o, uri, time.Since(r.start), stopped, []*workerStats{r.st}), nil
}

// pinThread pins the calling (locked) thread to cpus, when any are given; the function it
// returns gives the thread every CPU again before it goes back to the pool.
func pinThread(cpus []int) (unpin func(), err error) {
	if len(cpus) == 0 {
		return func() {}, nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil { // this thread only
		return nil, fmt.Errorf("bench: load: pinning the generator to CPUs %v: %v", cpus, err)
	}
	return func() {
		var all unix.CPUSet
		for c := range runtime.NumCPU() {
			all.Set(c)
		}
		unix.SchedSetaffinity(0, &all)
	}, nil
}

// lowerTimerSlack sets the calling thread's timer slack to 1 ns and returns what restores
// it: the waits in epoll_pwait2 end when the next request is due, and with the default slack
// (50 µs) they would end up to that much later.
func lowerTimerSlack() (restore func()) {
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) != nil {
		return func() {}
	}
	return func() { unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0) }
}

// epollRun is one open loop of the epoll engine, on one locked thread: every connection
// in one epoll set, requests written when they are due, answers read as they come.
type epollRun struct {
	o      Options
	sa     unix.Sockaddr // where to connect
	family int
	ep     int // the epoll set
	st     *workerStats
	conns  []econn
	idle   []int // connections without a request; fd -1: dial first
	busy   int   // connections with a request
	start  time.Time
	perReq float64 // ns between intended times
}

func (r *epollRun) now() int64 { return int64(time.Since(r.start)) }

// dueAt is request i's intended time, ns since the start.
func (r *epollRun) dueAt(i int64) int64 { return int64(float64(i) * r.perReq) }

// inRun reports whether request i belongs to the run (its duration and request count).
func (r *epollRun) inRun(i int64) bool {
	return r.dueAt(i) < int64(r.o.Duration) && (r.o.Requests == 0 || i < r.o.Requests)
}

// loop sends the requests when they are due and reads the answers until every request of
// the run has been sent and answered (or ctx ends it); it returns why it stopped.
func (r *epollRun) loop(ctx context.Context, reqs [][]byte) (stopped string, err error) {
	var events [256]unix.EpollEvent
	next := int64(0)                     // the next request to send
	const tick = int64(time.Millisecond) // the longest wait: timeouts and ctx are checked as often
	lastCheck := int64(0)
	for {
		t := r.now()
		if stopped == "" {
			switch {
			case !r.inRun(next):
				stopped = "duration" // every request of the run has been sent
				if r.o.Requests > 0 && next >= r.o.Requests {
					stopped = "requests"
				}
			case done(ctx):
				stopped = ctxReason(ctx)
				for i := next; r.dueAt(i) <= t && r.inRun(i); i++ {
					r.st.unsent++ // due but never sent: the run was cut short
				}
			}
		}
		for stopped == "" && r.dueAt(next) <= t && r.inRun(next) && len(r.idle) > 0 {
			r.sendNext(reqs[next%int64(len(reqs))], r.dueAt(next), t)
			next++
			t = r.now()
		}
		// With every connection busy, the due requests wait and will count as late.
		if stopped != "" && r.busy == 0 {
			return stopped, nil
		}
		if t-lastCheck >= tick { // requests past their timeout
			lastCheck = t
			for i := range r.conns {
				if r.conns[i].busy && t-r.conns[i].sent > int64(r.o.Timeout) {
					r.fail(i, errTimeout, t)
				}
			}
		}
		// Wait for an answer, until the next request is due when a connection is free for it.
		wait := tick
		if stopped == "" && len(r.idle) > 0 {
			wait = min(wait, max(0, r.dueAt(next)-t))
		}
		n, err := epollWait(r.ep, events[:], time.Duration(wait))
		if err != nil && err != unix.EINTR {
			return "", fmt.Errorf("bench: load: epoll_pwait2: %v", err)
		}
		for _, ev := range events[:n] {
			r.event(ev)
		}
	}
}

// sendNext sends req, due at due, on an idle connection, dialling it first when it has
// none; a failed dial counts as a request that got no connection.
func (r *epollRun) sendNext(req []byte, due, t int64) {
	i := r.idle[len(r.idle)-1]
	r.idle = r.idle[:len(r.idle)-1]
	if r.conns[i].fd < 0 {
		if err := r.dial(i); err != nil {
			r.st.requests++
			r.st.hist.Record(time.Duration(r.now() - due))
			r.st.errs[errConnect]++
			r.idle = append(r.idle, i)
			return
		}
	}
	r.send(i, req, due, t)
}

// event handles what epoll says of one connection: writable (the rest of a request) or
// readable (an answer, a hang-up).
func (r *epollRun) event(ev unix.EpollEvent) {
	i := int(ev.Fd)
	c := &r.conns[i]
	if c.fd < 0 {
		return
	}
	if ev.Events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		w, err := unix.Write(c.fd, c.out)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			r.fail(i, errConnection, r.now())
			return
		}
		c.out = c.out[max(0, w):]
		if len(c.out) == 0 {
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(i)}
			unix.EpollCtl(r.ep, unix.EPOLL_CTL_MOD, c.fd, &ev)
		}
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		r.receive(i)
	}
}

// dial connects conn i and adds it to the epoll set.
func (r *epollRun) dial(i int) error {
	c := &r.conns[i]
	fd, err := unix.Socket(r.family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// A blocking connect bounded by the send timeout, then non-blocking: this engine is
	// for loopback and local networks, where a connect takes microseconds.
	tv := unix.NsecToTimeval(int64(r.o.Timeout))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if err := unix.Connect(fd, r.sa); err != nil {
		unix.Close(fd)
		return err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(i)}
	if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return err
	}
	c.fd = fd
	return nil
}

// hangUp closes conn i (the next request on the slot dials again).
func (r *epollRun) hangUp(i int) {
	c := &r.conns[i]
	if c.fd >= 0 {
		unix.EpollCtl(r.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
		unix.Close(c.fd)
	}
	c.fd, c.out, c.in, c.hdr, c.body = -1, nil, c.in[:0], 0, 0
}

// release ends conn i's request; drop hangs the connection up.
func (r *epollRun) release(i int, drop bool) {
	if r.conns[i].busy {
		r.conns[i].busy = false
		r.busy--
		r.idle = append(r.idle, i)
	}
	if drop {
		r.hangUp(i)
	}
}

// fail ends conn i's request, if it has one, with an error of kind.
func (r *epollRun) fail(i int, kind int, t int64) {
	if c := &r.conns[i]; c.busy {
		r.st.requests++
		r.st.hist.Record(time.Duration(t - c.due))
		r.st.errs[kind]++
	}
	r.release(i, true)
}

// finish records conn i's answer, in c.in[:c.hdr+c.body].
func (r *epollRun) finish(i int, t int64) {
	c := &r.conns[i]
	code, closing := parseStatus(c.in[:c.hdr])
	r.st.answer(time.Duration(t-c.due), code, c.in[c.hdr:c.hdr+c.body])
	extra := len(c.in) > c.hdr+c.body
	if extra {
		r.st.errs[errOther]++ // bytes nobody asked for: the connection cannot be trusted
	}
	c.in, c.hdr, c.body = c.in[:0], 0, 0
	r.release(i, closing || extra)
}

// send writes req on conn i, as much as the socket takes; the rest goes when epoll says
// the socket is writable.
func (r *epollRun) send(i int, req []byte, due, t int64) {
	c := &r.conns[i]
	c.busy, c.due, c.sent, c.out = true, due, t, req
	r.busy++
	if t-due > int64(r.o.LateAfter) {
		r.st.late++
	}
	n, err := unix.Write(c.fd, c.out)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		n = 0
	case err != nil:
		r.fail(i, errConnection, r.now())
		return
	}
	c.out = c.out[n:]
	if len(c.out) > 0 { // the socket's buffer is full: finish when it is writable
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT, Fd: int32(i)}
		unix.EpollCtl(r.ep, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
}

// receive reads what conn i has for us.
func (r *epollRun) receive(i int) {
	c := &r.conns[i]
	for {
		if len(c.in) == cap(c.in) {
			c.in = append(c.in, make([]byte, max(4096, cap(c.in)))...)[:len(c.in)]
		}
		n, err := unix.Read(c.fd, c.in[len(c.in):cap(c.in)])
		if err == unix.EAGAIN {
			return
		}
		if err == unix.EINTR {
			continue
		}
		t := r.now()
		if err != nil || n == 0 {
			r.fail(i, errConnection, t)
			return
		}
		if !c.busy {
			r.st.errs[errOther]++ // an answer to nothing
			r.hangUp(i)
			return
		}
		prev := len(c.in)
		c.in = c.in[:prev+n]
		if c.hdr == 0 {
			from := max(0, prev-3)
			end := bytes.Index(c.in[from:], crlf2)
			if end < 0 {
				if len(c.in) > 64<<10 {
					r.fail(i, errOther, t)
					return
				}
				continue
			}
			c.hdr = from + end + len(crlf2)
			body, ok := contentLength(c.in[:c.hdr])
			if !ok {
				r.fail(i, errOther, t)
				return
			}
			c.body = body
		}
		if len(c.in) >= c.hdr+c.body {
			r.finish(i, t)
			return
		}
	}
}

var crlf2 = []byte("\r\n\r\n")

// epollWait is epoll_pwait2(2): epoll_wait with a timeout in nanoseconds rather than
// milliseconds, so that a request goes out when it is due and not up to a millisecond late.
func epollWait(ep int, events []unix.EpollEvent, d time.Duration) (int, error) {
	ts := unix.NsecToTimespec(int64(d))
	n, _, e := syscall.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(ep), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(unsafe.Pointer(&ts)), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sockaddrOf is addr for connect(2), with its address family.
func sockaddrOf(addr *net.TCPAddr) (unix.Sockaddr, int, error) {
	if ip4 := addr.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: addr.Port}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET, nil
	}
	if ip6 := addr.IP.To16(); ip6 != nil {
		sa := &unix.SockaddrInet6{Port: addr.Port}
		copy(sa.Addr[:], ip6)
		return sa, unix.AF_INET6, nil
	}
	return nil, 0, errors.New("bench: load: " + addr.String() + ": not an IP address")
}

// parseStatus reads an answer's header: its status code (0 when the status line is not
// HTTP/1.x NNN) and whether the server closes the connection after it.
func parseStatus(h []byte) (code int, closing bool) {
	if len(h) >= 12 && bytes.HasPrefix(h, []byte("HTTP/1.")) && h[8] == ' ' {
		code = digits(h[9:12])
		closing = h[7] == '0' // HTTP/1.0 closes unless asked otherwise, and we do not ask
	}
	if v, ok := headerValue(h, "connection"); ok {
		closing = asciiEqualFold(v, "close")
	}
	return max(code, 0), closing
}

// contentLength is the body length an answer's header announces; false when it has none
// or the body is chunked (this engine reads only answers with a length).
func contentLength(h []byte) (int, bool) {
	if _, chunked := headerValue(h, "transfer-encoding"); chunked {
		return 0, false
	}
	v, ok := headerValue(h, "content-length")
	if !ok {
		return 0, false
	}
	n := digits(v)
	return n, n >= 0 && n <= 64<<20
}

// digits is the decimal number b spells, -1 when b is empty, has anything but digits or
// is longer than 9 digits.
func digits(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// headerValue finds the header field name (lower case) among an answer's header lines (the
// status line first) and returns its value without surrounding blanks.
func headerValue(h []byte, name string) ([]byte, bool) {
	for len(h) > 0 {
		line := h
		if i := bytes.Index(h, []byte("\r\n")); i >= 0 {
			line, h = h[:i], h[i+2:]
		} else {
			h = nil
		}
		if len(line) > len(name) && line[len(name)] == ':' && asciiEqualFold(line[:len(name)], name) {
			return bytes.Trim(line[len(name)+1:], " \t"), true
		}
	}
	return nil, false
}

// asciiEqualFold reports whether b is lower, ignoring ASCII case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
