package report

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// describeMachine reads what the report says about the machine: CPU, memory, kernel, Go,
// the binary's revision, nginx, the load average and the free disk in work.
func describeMachine(work, nginx string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAverage(), DiskFree: diskFree(work)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		n := 0
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			switch k = strings.TrimSpace(k); {
			case !ok:
			case k == "model name" && m.CPU == "":
				m.CPU = strings.TrimSpace(v)
			case k == "processor":
				n++
			}
		}
		if n > 0 {
			m.CPUs = n
		}
	}
	if m.CPU == "" {
		m.CPU = runtime.GOARCH
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal, m.MemAvailable = kbField(b, "MemTotal"), kbField(b, "MemAvailable")
	}
	m.Kernel = runtime.GOOS
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.Revision = "unknown (built without VCS information)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, modified := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" {
			m.Revision = rev
			if modified {
				m.Revision += " with uncommitted changes"
			}
		}
	}
	if strings.HasPrefix(m.Revision, "unknown") {
		// No VCS stamp in the binary (go run, -buildvcs=false): the working directory's
		// checkout, which is what the report is run from.
		if rev, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			m.Revision = strings.TrimSpace(string(rev)) + " (the working directory's checkout)"
			if st, err := exec.Command("git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
				m.Revision += " with uncommitted changes"
			}
		}
	}
	if bin, err := findNginx(nginx); err == nil {
		m.Nginx = nginxVersion(bin)
	}
	return m
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute averages.
func loadAverage() [3]float64 {
	var la [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return la
	}
	for i, f := range strings.Fields(string(b)) {
		if i < 3 {
			la[i], _ = strconv.ParseFloat(f, 64)
		}
	}
	return la
}

// StallProbe is what the machine takes from threads that never sleep: one per CPU, each
// reading the clock in a loop, so that every CPU is busy as under load; a gap between two
// readings is time the thread was not running (the kernel's interrupts and other threads,
// and on a virtual machine the hypervisor). A latency percentile measured on this machine
// under load cannot be much below the gaps that happen as often.
type StallProbe struct {
	Seconds float64 `json:"seconds"`
	Threads int     `json:"threads"`
	Over05  int64   `json:"over05ms"` // gaps longer than 0.5 ms, all threads
	Over2   int64   `json:"over2ms"`
	Over5   int64   `json:"over5ms"`
	LostMs  float64 `json:"lostMs"` // the sum of the gaps longer than 0.5 ms
	WorstMs float64 `json:"worstMs"`
}

// probeStalls runs threads spinning threads for d (see StallProbe).
func probeStalls(d time.Duration, threads int) StallProbe {
	type gaps struct {
		over05, over2, over5 int64
		lost, worst          time.Duration
	}
	res := make([]gaps, threads)
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			g := &res[i]
			prev := time.Now()
			end := prev.Add(d)
			for prev.Before(end) {
				t := time.Now()
				if gap := t.Sub(prev); gap > 500*time.Microsecond {
					g.over05++
					g.lost += gap
					g.worst = max(g.worst, gap)
					if gap > 2*time.Millisecond {
						g.over2++
					}
					if gap > 5*time.Millisecond {
						g.over5++
					}
				}
				prev = t
			}
		})
	}
	wg.Wait()
	p := StallProbe{Seconds: d.Seconds(), Threads: threads}
	for _, g := range res {
		p.Over05, p.Over2, p.Over5 = p.Over05+g.over05, p.Over2+g.over2, p.Over5+g.over5
		p.LostMs += float64(g.lost) / 1e6
		p.WorstMs = max(p.WorstMs, float64(g.worst)/1e6)
	}
	return p
}
