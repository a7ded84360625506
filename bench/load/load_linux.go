package load

import (
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A pacer sleeps precisely between the open loop's requests. Go's timers wake up to a
// millisecond late on Linux, which would add up to a millisecond to every latency measured
// from the intended send time; an ordinary nanosleep(2) loses as much in the Go scheduler
// (its P is taken away while it sleeps and given back late). So the scheduler's goroutine is
// locked to its thread, the thread's timer slack is set to 1 ns, and short waits are a raw
// nanosleep that keeps the P: about 30 µs late on average. Holding a P while sleeping would
// take a core from the workers, so the process gets one more P (GOMAXPROCS + 1) while open
// loops run; and the pacer yields every few milliseconds so that Go does not preempt it at a
// moment of its choosing.
type pacer struct {
	slack     int // the thread's timer slack before, restored by close
	lastYield time.Time
}

// extraP counts the open loops running, which share one added P.
var extraP struct {
	sync.Mutex
	n    int
	orig int // GOMAXPROCS before the first
}

func newPacer() *pacer {
	extraP.Lock()
	if extraP.n == 0 {
		extraP.orig = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(extraP.orig + 1)
	}
	extraP.n++
	extraP.Unlock()
	runtime.LockOSThread()
	p := &pacer{slack: -1, lastYield: time.Now()}
	if old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); err == nil {
		if unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) == nil {
			p.slack = old
		}
	}
	return p
}

func (p *pacer) sleep(d time.Duration) {
	if time.Since(p.lastYield) > 5*time.Millisecond {
		runtime.Gosched()
		p.lastYield = time.Now()
		return // the caller checks the time again
	}
	if d > 2*time.Millisecond {
		time.Sleep(d - 2*time.Millisecond) // long waits: the runtime's timer, then precisely
		p.lastYield = time.Now()
		return
	}
	ts := unix.NsecToTimespec(int64(d))
	syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0) // EINTR: the caller checks the time again
}

func (p *pacer) close() {
	if p.slack >= 0 {
		unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(p.slack), 0, 0, 0)
	}
	runtime.UnlockOSThread()
	extraP.Lock()
	extraP.n--
	if extraP.n == 0 {
		runtime.GOMAXPROCS(extraP.orig)
	}
	extraP.Unlock()
}
