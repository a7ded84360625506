package report

// The stages over one release: its request population, lookups, in-process decide
// throughput, and the edge under load beside the fixed-answer baseline and nginx.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/bench/load"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/signing"
)

// loadPlan is how long and how hard the load stages run.
type loadPlan struct {
	concurrency []int
	point       time.Duration // each closed-loop run
	half        time.Duration // each open-loop run at half load
	warm        time.Duration
	decide      time.Duration // each in-process decide run
	pcs         int
	wholePCs    int           // whole PCs (gen-devices --whole-pc)
	inFlight    int           // open loop: most requests in flight
	stalls      time.Duration // the machine's stall probe
}

func (r *reporter) plan() loadPlan {
	if r.o.Quick {
		return loadPlan{concurrency: []int{4, 16, 64}, point: 1500 * time.Millisecond, half: 3 * time.Second, warm: 2 * time.Second, stalls: time.Second,
			decide: time.Second, pcs: 1000, wholePCs: 100, inFlight: 64}
	}
	return loadPlan{concurrency: []int{1, 4, 16, 64, 256}, point: 4 * time.Second, half: 8 * time.Second, warm: 4 * time.Second, stalls: 5 * time.Second,
		decide: 2 * time.Second, pcs: 2000, wholePCs: 300, inFlight: 64}
}

// measureRelease runs the stages over the release of n labels.
func (r *reporter) measureRelease(ctx context.Context, n int) {
	p := r.plan()
	tree, cat := r.trees[n], r.catalogs[n]
	pcsFile := filepath.Join(r.work, "pcs-"+sizeName(n)+".ndjson")
	var one, twenty, whole [][]byte
	genArgs := []string{"bench", "gen-devices", "--labels", tree, "--pcs", strconv.Itoa(p.pcs), "--out", pcsFile}
	wholeFile := filepath.Join(r.work, "pcs-"+sizeName(n)+"-whole.ndjson")
	wholeArgs := []string{"bench", "gen-devices", "--labels", tree, "--pcs", strconv.Itoa(p.wholePCs), "--whole-pc", "--out", wholeFile}
	st := r.stage(ctx, "requests: "+strconv.Itoa(p.pcs)+" PCs, "+strconv.Itoa(p.wholePCs)+" whole PCs", r.cmd(genArgs...)+"; "+r.cmd(wholeArgs...), 3*time.Minute, r.reserveEdge()-time.Minute,
		func(ctx context.Context, st *Stage) error {
			for _, args := range [][]string{genArgs, wholeArgs} {
				if c := r.child(ctx, 0, nil, args...); c.err != nil {
					return c.err
				}
			}
			for _, c := range []struct {
				file    string
				devices int
				into    *[][]byte
			}{{pcsFile, 1, &one}, {pcsFile, 20, &twenty}, {wholeFile, 0, &whole}} {
				f, err := os.Open(c.file)
				if err != nil {
					return err
				}
				*c.into, err = load.ReadRequests(f, c.devices)
				f.Close()
				if err != nil {
					return err
				}
				if len(*c.into) == 0 {
					return fmt.Errorf("no PC with %d devices", c.devices)
				}
			}
			return nil
		})
	if st.Status != stageOK {
		return
	}
	r.res.Edge = &EdgeFigures{Labels: n, Bodies1: len(one), Bodies20: len(twenty), BodiesWhole: len(whole), Max: map[string]float64{}, Missing: map[string]string{},
		URLs: map[string]string{}}
	r.res.Edge.WholeDevices, r.res.Edge.WholeBytes = meanDevices(whole)

	lookArgs := []string{"bench", "lookups", "--catalog", cat, "--json"}
	r.stage(ctx, "lookups", r.cmd(lookArgs...), 2*time.Minute, r.reserveEdge()-90*time.Second, func(ctx context.Context, st *Stage) error {
		var out tailBuffer
		out.max = 1 << 20
		if c := r.child(ctx, 0, &out, lookArgs...); c.err != nil {
			return c.err
		}
		var l load.LookupResult
		if err := json.Unmarshal(out.bytes(), &l); err != nil {
			return fmt.Errorf("driveway bench lookups --json: %w", err)
		}
		r.res.Lookups = &l
		return nil
	})

	r.stage(ctx, "decide in-process", "DRIVEWAY_BENCH_LABELS="+strconv.Itoa(n)+" go test ./offer -run '^$' -bench BenchmarkDecide (the nearest standalone measurement)",
		2*time.Minute, r.reserveEdge()-2*time.Minute, func(ctx context.Context, st *Stage) error {
			return r.decide(ctx, cat, one, twenty, whole, p.decide)
		})

	r.edge(ctx, cat, tree, pcsFile, wholeFile, one, twenty, whole, p)
	r.reports(ctx, cat, pcsFile, one, p) // after the first edge has stopped: not beside it
}

// decide measures decode + decide + encode in this process over the release in cat: one
// goroutine, then GOMAXPROCS, for 1- and 20-device requests.
func (r *reporter) decide(ctx context.Context, cat string, one, twenty, whole [][]byte, each time.Duration) error {
	v, err := signing.LoadVerifier(r.key + ".pub")
	if err != nil {
		return err
	}
	now := time.Now() // a report measures this machine now: its releases are built at the wall clock
	rel, err := index.OpenRelease(cat, &index.VerifyOptions{Keys: []*signing.Verifier{v}, Now: now, Cache: index.NewCacheBudget(64 << 20)})
	if err != nil {
		return err
	}
	defer rel.Close()
	src, err := offer.SourceOf(rel)
	if err != nil {
		return err
	}
	eng, err := offer.NewEngine(src)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		devices int // 0: whole PCs
		bodies  [][]byte
	}{{1, one}, {20, twenty}, {0, whole}} {
		if _, err := decideRun(ctx, eng, c.bodies, 1, 0, now); err != nil { // warm-up: one pass
			return err
		}
		for _, g := range []int{1, runtime.GOMAXPROCS(0)} {
			fig, err := decideRun(ctx, eng, c.bodies, g, each, now)
			if err != nil {
				return err
			}
			fig.Devices = c.devices
			r.res.Decide = append(r.res.Decide, fig)
		}
		floor, err := floorRun(ctx, rel, c.bodies, each/2)
		if err != nil {
			return err
		}
		floor.Devices = c.devices
		r.res.Floor = append(r.res.Floor, floor)
	}
	return nil
}

// floorRun measures the physical floor of bodies (FloorFigure) for d on one goroutine,
// after one pass to warm the block cache.
func floorRun(ctx context.Context, rel *index.Release, bodies [][]byte, d time.Duration) (FloorFigure, error) {
	dec := offer.NewDecoder(offer.Limits{})
	var req offer.Request
	var ids, probed int64
	lookup := func(id []byte) error {
		h := index.Hash(id)
		sh := rel.HWID[index.RouteHash(h, len(rel.HWID))]
		if !sh.MayContain(h) {
			return nil
		}
		probed++
		_, _, err := sh.GetHash(id, h)
		return err
	}
	one := func(body []byte) error {
		if e := dec.Decode(body, &req); e != nil {
			return fmt.Errorf("a request does not decode: %v", e)
		}
		for i := range req.Devices {
			dv := &req.Devices[i]
			for _, list := range [][][]byte{dv.HardwareIDs, dv.CompatibleIDs} {
				for _, id := range list {
					ids++
					if err := lookup(id); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	for _, b := range bodies {
		if err := one(b); err != nil {
			return FloorFigure{}, err
		}
	}
	ids, probed = 0, 0
	var n int64
	start := time.Now()
	for time.Since(start) < d || n == 0 {
		if n%32 == 0 && ctx.Err() != nil {
			return FloorFigure{}, ctx.Err()
		}
		if err := one(bodies[n%int64(len(bodies))]); err != nil {
			return FloorFigure{}, err
		}
		n++
	}
	elapsed := time.Since(start)
	return FloorFigure{Requests: n, IDsPerRequest: float64(ids) / float64(n), ProbedPerRequest: float64(probed) / float64(n),
		MicrosPerRequest: elapsed.Seconds() * 1e6 / float64(n)}, nil
}

// decideRun decodes, decides and encodes bodies in turn on g goroutines for d (0: one pass
// over the bodies on one goroutine).
func decideRun(ctx context.Context, eng *offer.Engine, bodies [][]byte, g int, d time.Duration, now time.Time) (DecideFigure, error) {
	var total, offers atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range g {
		wg.Go(func() {
			dec := offer.NewDecoder(offer.Limits{})
			var req offer.Request
			var res offer.Result
			var buf []byte
			var n, o int64
			for i := w * len(bodies) / g; ; i++ {
				if d == 0 && n == int64(len(bodies)) {
					break
				}
				if d > 0 && i%32 == 0 && (time.Now().After(end) || ctx.Err() != nil) {
					break
				}
				if e := dec.Decode(bodies[i%len(bodies)], &req); e != nil {
					failed.CompareAndSwap(nil, fmt.Errorf("request %d does not decode: %v", i%len(bodies), e))
					break
				}
				eng.Decide(&req, now, false, &res)
				buf = offer.AppendResponse(buf[:0], &req, &res, eng.OS())
				n++
				o += int64(len(res.Offers))
			}
			total.Add(n)
			offers.Add(o)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, ok := failed.Load().(error); ok {
		return DecideFigure{}, err
	}
	if ctx.Err() != nil {
		return DecideFigure{}, ctx.Err()
	}
	n := total.Load()
	fig := DecideFigure{Goroutines: g, Requests: n, Seconds: elapsed.Seconds()}
	if n > 0 {
		fig.MicrosPerRequest = elapsed.Seconds() * 1e6 * float64(g) / float64(n)
		fig.RPS = float64(n) / elapsed.Seconds()
		fig.OffersPerRequest = float64(offers.Load()) / float64(n)
	}
	return fig, nil
}

// loadTarget is one server under load.
type loadTarget struct {
	name   string
	url    string
	bodies [][]byte
	flag   string  // the bench load flags selecting its requests
	srv    *server // its process, for its CPU; nil: not read (nginx runs workers of its own)
}

// cpu is the CPU time the target's process has used so far (false: not read).
func (t loadTarget) cpu() (time.Duration, bool) {
	if t.srv == nil {
		return 0, false
	}
	return procCPU(t.srv.pid())
}

// edgeRun is one run of the edge stages: the edge on loopback, the baselines beside it,
// the loads against them all, and what they measured.
type edgeRun struct {
	r                       *reporter
	e                       *EdgeFigures
	p                       loadPlan
	cat, tree               string
	pcsFile, wholeFile      string
	one, twenty, whole      [][]byte // 1-device requests, 20-device requests, whole PCs
	edgeAddr, edgeLog       string
	edge, fixed, fixedWhole *server
	fixed20                 *server
	ngx                     *server
	targets                 []loadTarget
}

// edge runs the edge on loopback, the baselines beside it, and the load.
func (r *reporter) edge(ctx context.Context, cat, tree, pcsFile, wholeFile string, one, twenty, whole [][]byte, p loadPlan) {
	er := &edgeRun{r: r, e: r.res.Edge, p: p, cat: cat, tree: tree, pcsFile: pcsFile, wholeFile: wholeFile, one: one, twenty: twenty, whole: whole}
	defer func() { // in any case, whatever failed
		er.ngx.stop()
		er.fixedWhole.stop()
		er.fixed20.stop()
		er.fixed.stop()
		er.edge.stop()
	}()
	if !er.startEdge(ctx) || !er.warmUp(ctx) {
		return
	}
	// The fixed answer of the 1-device answer's size; and one of the whole-PC answer's size,
	// fed the same whole-PC bodies: what the HTTP share of such a request costs here.
	er.startFixed(ctx, "fixed", "start the fixed-answer baseline", "the fixed-answer server", er.e.BaselineBytes, one, "--devices 1", &er.fixed)
	er.startFixed(ctx, "fixed-whole", "start the fixed-answer baseline for whole PCs", "the fixed-answer server (whole PCs)", er.e.WholeResponseBytes, whole, "(whole PCs)", &er.fixedWhole)
	er.startFixed(ctx, "fixed-20", "start the fixed-answer baseline for 20-device requests", "the fixed-answer server (20 devices)", er.e.TwentyResponseBytes, twenty, "--devices 20", &er.fixed20)
	er.startNginx(ctx)
	for _, t := range er.targets {
		er.e.URLs[t.name] = t.url
	}
	if !er.closedLoops(ctx) {
		return
	}
	er.machineStalls(ctx)
	er.openLoops(ctx)
	er.memory(ctx)
	ctlArgs := []string{"build", "--control-only", "--labels", tree, "--out", cat, "--key", r.key + ".key", "--quiet"}
	r.stage(ctx, "control-only release and swap", r.cmd(ctlArgs...)+" # while the edge serves; then poll GET /v1/release every ms",
		40*time.Second, 0, func(ctx context.Context, st *Stage) error {
			return r.swap(ctx, er.edgeAddr, er.edgeLog, cat, ctlArgs)
		})
}

// loadCmd is the bench load command that reproduces a load of t, with extra flags.
func (er *edgeRun) loadCmd(t loadTarget, extra string) string {
	if t.flag == "(whole PCs)" {
		return fmt.Sprintf("driveway bench load --url %s --population %s %s", t.url, shellQuote(er.wholeFile), extra)
	}
	return fmt.Sprintf("driveway bench load --url %s --population %s %s %s", t.url, shellQuote(er.pcsFile), t.flag, extra)
}

// startEdge starts the edge over the release and waits until it is ready; the edge's
// three targets (1-device, 20-device and whole-PC requests) are the first ones.
func (er *edgeRun) startEdge(ctx context.Context) bool {
	r, e := er.r, er.e
	var err error
	if er.edgeAddr, err = freeAddr(); err != nil {
		r.res.Stages = append(r.res.Stages, &Stage{Name: "start the edge", Status: stageFailed, Reason: err.Error()})
		return false
	}
	er.edgeLog = filepath.Join(r.work, "edge.log")
	edgeArgs := []string{"serve", "--catalog", er.cat, "--key", r.key + ".pub", "--listen", er.edgeAddr}
	st := r.stage(ctx, "start the edge", r.cmd(edgeArgs...)+" # then poll GET /readyz until 200", 3*time.Minute, 2*time.Minute,
		func(ctx context.Context, st *Stage) error {
			var err error
			if er.edge, err = startServer("the edge", er.edgeLog, r.o.Driveway, edgeArgs...); err != nil {
				return err
			}
			d, err := er.edge.waitReady(ctx, "http://"+er.edgeAddr+"/readyz", fasthttp.MethodGet)
			if err != nil {
				return err
			}
			e.OpenSeconds = d.Seconds()
			if loads := swapTimes(er.edgeLog); len(loads) > 0 {
				e.LoadMs = loads[0]
			}
			return nil
		})
	edgeURL := "http://" + er.edgeAddr + "/v1/offers"
	er.targets = []loadTarget{
		{"edge-1", edgeURL, er.one, "--devices 1", er.edge},
		{"edge-20", edgeURL, er.twenty, "--devices 20", er.edge},
		{"edge-whole", edgeURL, er.whole, "(whole PCs)", er.edge},
	}
	return st.Status == stageOK
}

// warmUp pages the release in and fills the block cache, and measures the edge's mean
// answer sizes (1-device, 20-device and whole-PC), which the baselines then answer.
func (er *edgeRun) warmUp(ctx context.Context) bool {
	e, p, edgeURL := er.e, er.p, er.targets[0].url
	st := er.r.stage(ctx, "warm-up", er.loadCmd(er.targets[1], fmt.Sprintf("--concurrency 16 --duration %s", p.warm))+"; "+
		er.loadCmd(er.targets[0], fmt.Sprintf("--concurrency 16 --duration %s", p.warm/2)), time.Minute, 90*time.Second,
		func(ctx context.Context, st *Stage) error {
			tres, err := load.Run(ctx, load.Options{URL: edgeURL, Bodies: er.twenty, Concurrency: 16, Duration: p.warm})
			if err != nil {
				return err
			}
			if tres.OK == 0 {
				return fmt.Errorf("no 20-device request was answered 200: %s", oneLineText(tres.String()))
			}
			e.TwentyResponseBytes = int(math.Round(tres.MeanResponse()))
			res, err := load.Run(ctx, load.Options{URL: edgeURL, Bodies: er.one, Concurrency: 16, Duration: p.warm / 2})
			if err != nil {
				return err
			}
			if res.OK == 0 {
				return fmt.Errorf("no request was answered 200 with an offer response: %s", oneLineText(res.String()))
			}
			e.ResponseBytes = int(math.Round(res.MeanResponse()))
			e.BaselineBytes = baselineBytes
			wres, err := load.Run(ctx, load.Options{URL: edgeURL, Bodies: er.whole, Concurrency: 4, Duration: p.warm / 2})
			if err != nil {
				return err
			}
			if wres.OK == 0 {
				return fmt.Errorf("no whole-PC request was answered 200: %s", oneLineText(wres.String()))
			}
			e.WholeResponseBytes = int(math.Round(wres.MeanResponse()))
			return nil
		})
	return st.Status == stageOK
}

// startFixed starts a fixed-answer baseline (driveway bench fixed-answer) of size bytes
// into *srv and adds it as target name, fed bodies; a baseline that cannot start is
// recorded as missing.
func (er *edgeRun) startFixed(ctx context.Context, name, stage, what string, size int, bodies [][]byte, flag string, srv **server) {
	r := er.r
	addr, err := freeAddr()
	if err != nil {
		er.e.Missing[name] = err.Error()
		return
	}
	args := []string{"bench", "fixed-answer", "--bytes", strconv.Itoa(size), "--listen", addr}
	st := r.stage(ctx, stage, r.cmd(args...), 30*time.Second, 90*time.Second,
		func(ctx context.Context, st *Stage) error {
			var err error
			if *srv, err = startServer(what, filepath.Join(r.work, name+".log"), r.o.Driveway, args...); err != nil {
				return err
			}
			_, err = (*srv).waitReady(ctx, "http://"+addr+"/healthz", fasthttp.MethodGet)
			return err
		})
	if st.Status != stageOK {
		er.e.Missing[name] = st.Reason
		return
	}
	er.targets = append(er.targets, loadTarget{name, "http://" + addr + "/v1/offers", bodies, flag, *srv})
}

// startNginx starts nginx serving a static file of the baseline's size to the same POSTs.
func (er *edgeRun) startNginx(ctx context.Context) {
	r, e := er.r, er.e
	nginxBin, nerr := findNginx(r.o.Nginx)
	nginxAddr, aerr := freeAddr()
	nginxDir := filepath.Join(r.work, "nginx")
	st := r.stage(ctx, "start nginx", "nginx -p "+nginxDir+" -c "+nginxDir+"/nginx.conf (the configuration is below)", 30*time.Second, 90*time.Second,
		func(ctx context.Context, st *Stage) error {
			if nerr != nil {
				return skipError{nerr.Error()}
			}
			if aerr != nil {
				return aerr
			}
			var command string
			var err error
			if er.ngx, command, err = startNginx(nginxBin, nginxDir, nginxAddr, e.BaselineBytes); err != nil {
				return err
			}
			st.Command = command
			_, err = er.ngx.waitReady(ctx, "http://"+nginxAddr+"/v1/offers", fasthttp.MethodPost)
			return err
		})
	if st.Status == stageOK {
		er.targets = append(er.targets, loadTarget{"nginx", "http://" + nginxAddr + "/v1/offers", er.one, "--devices 1", nil})
	} else {
		e.Missing["nginx"] = st.Reason
	}
}

// closedLoops runs every target at every concurrency, the targets interleaved so that a
// change in the machine's load touches them alike; false when nothing was measured.
func (er *edgeRun) closedLoops(ctx context.Context) bool {
	r, e, p := er.r, er.e, er.p
	st := r.stage(ctx, "closed loops", er.loadCmd(loadTarget{"TARGET", "URL", nil, "--devices 1|20 (or the whole PCs)", nil}, fmt.Sprintf("--concurrency C --duration %s", p.point)),
		time.Duration(len(p.concurrency)*len(er.targets))*(p.point+2*time.Second), 80*time.Second,
		func(ctx context.Context, st *Stage) error {
			for _, c := range p.concurrency {
				for _, t := range er.targets {
					cpu0, cpuOK := t.cpu()
					res, err := load.Run(ctx, load.Options{URL: t.url, Bodies: t.bodies, Concurrency: c, Duration: p.point})
					if err != nil {
						return err
					}
					if ctx.Err() != nil {
						return ctx.Err()
					}
					pt := LoadPoint{Target: t.name, Result: res}
					if cpu1, ok := t.cpu(); ok && cpuOK && res.Requests > 0 {
						pt.ServerCPUMicros = float64((cpu1 - cpu0).Microseconds()) / float64(res.Requests)
					}
					e.Closed = append(e.Closed, pt)
					if res.RPS > e.Max[t.name] && res.OK > 0 {
						e.Max[t.name] = res.RPS
					}
					r.logf("  %-7s c=%-3d %8.0f req/s  p50 %.3f ms  p99 %.3f ms  errors %d", t.name, c, res.RPS, res.Latency.P50, res.Latency.P99, res.Requests-res.OK)
				}
			}
			return nil
		})
	return st.Status == stageOK || len(e.Closed) > 0
}

// machineStalls measures what the machine itself takes from busy threads: the floor under
// the tails of the open loops.
func (er *edgeRun) machineStalls(ctx context.Context) {
	r, p := er.r, er.p
	r.stage(ctx, "machine stalls", fmt.Sprintf("(in this process) %d threads, one per CPU, read the clock for %s; gaps over 0.5 ms counted", runtime.NumCPU(), p.stalls),
		p.stalls+5*time.Second, 45*time.Second, func(ctx context.Context, st *Stage) error {
			sp := probeStalls(p.stalls, runtime.NumCPU())
			r.res.Machine.Stalls = &sp
			r.logf("  stalls of busy threads: %d over 0.5 ms, %d over 2 ms, %d over 5 ms in %s × %d threads; worst %.1f ms",
				sp.Over05, sp.Over2, sp.Over5, p.stalls, sp.Threads, sp.WorstMs)
			return nil
		})
}

// openLoops runs each target at half of its own maximum: the latency a server shows with
// headroom, measured from the intended send times, with the edge's own handler histogram
// beside it.
func (er *edgeRun) openLoops(ctx context.Context) {
	r, e, p := er.r, er.e, er.p
	r.stage(ctx, "open loops at half load", er.loadCmd(loadTarget{"TARGET", "URL", nil, "--devices 1|20", nil}, fmt.Sprintf("--rate MAX/2 --concurrency %d --duration %s", p.inFlight, p.half)),
		time.Duration(len(er.targets))*(p.half+3*time.Second), 45*time.Second,
		func(ctx context.Context, st *Stage) error {
			for _, t := range er.targets {
				if e.Max[t.name] == 0 {
					continue
				}
				pt, err := er.openLoop(ctx, t)
				if err != nil {
					return err
				}
				e.Half = append(e.Half, pt)
				res := pt.Result
				r.logf("  %-7s %6.0f req/s asked, %6.0f done  p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  late %d%s", t.name, res.Rate, res.RPS,
					res.Latency.P50, res.Latency.P99, res.Latency.P999, res.Late, pt.handlerText())
			}
			return nil
		})
}

// openLoop is one target's open loop at half its maximum; for the edge, with the part of
// the latency its handler histogram saw (before and after).
func (er *edgeRun) openLoop(ctx context.Context, t loadTarget) (LoadPoint, error) {
	var before bucketCounts
	edgeTarget := strings.HasPrefix(t.name, "edge")
	if edgeTarget {
		var err error
		if before, err = scrapeHandler(metricsURL(t.url)); err != nil {
			return LoadPoint{}, err
		}
	}
	res, err := load.Run(ctx, load.Options{URL: t.url, Bodies: t.bodies, Rate: math.Round(er.e.Max[t.name] / 2), Concurrency: er.p.inFlight, Duration: er.p.half})
	if err != nil {
		return LoadPoint{}, err
	}
	if ctx.Err() != nil {
		return LoadPoint{}, ctx.Err()
	}
	pt := LoadPoint{Target: t.name, Result: res}
	if edgeTarget {
		after, err := scrapeHandler(metricsURL(t.url))
		if err != nil {
			return LoadPoint{}, err
		}
		run, err := after.since(before)
		if err != nil {
			return LoadPoint{}, err
		}
		h := run.latency()
		pt.Handler = &h
	}
	return pt, nil
}

// memory reads the edge's resident and peak memory after the loads.
func (er *edgeRun) memory(ctx context.Context) {
	e := er.e
	er.r.stage(ctx, "edge memory", "grep -E 'VmRSS|VmHWM' /proc/EDGE_PID/status # after the load runs", 10*time.Second, 40*time.Second,
		func(ctx context.Context, st *Stage) error {
			e.RSS, e.PeakRSS = procStatus(er.edge.pid(), "VmRSS"), procStatus(er.edge.pid(), "VmHWM")
			if e.RSS == 0 {
				return errors.New("no /proc/PID/status to read")
			}
			return nil
		})
}

// swap publishes a control-only release while the edge serves, and measures how soon the
// edge serves it: after the manifest was written (its mtime) and after the build exited.
func (r *reporter) swap(ctx context.Context, addr, edgeLog, cat string, args []string) error {
	before, err := servedSequence(addr)
	if err != nil {
		return err
	}
	loadsBefore := len(swapTimes(edgeLog))
	c := r.child(ctx, 0, nil, args...)
	exited := time.Now()
	if c.err != nil {
		return c.err
	}
	r.res.Edge.ControlSec = c.wall.Seconds()
	fi, err := os.Stat(filepath.Join(cat, index.ManifestFile))
	if err != nil {
		return err
	}
	written := fi.ModTime()
	for {
		seq, err := servedSequence(addr)
		if err == nil && seq > before {
			seen := time.Now()
			r.res.Edge.SwapMs = float64(seen.Sub(written).Microseconds()) / 1000
			r.res.Edge.SwapExitMs = float64(seen.Sub(exited).Microseconds()) / 1000
			break
		}
		if time.Since(exited) > 30*time.Second || ctx.Err() != nil {
			return fmt.Errorf("release %d still served 30 s after the control-only build", before)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the log line land
	if loads := swapTimes(edgeLog); len(loads) > loadsBefore {
		r.res.Edge.SwapLoadMs = loads[len(loads)-1]
	}
	return nil
}

// servedSequence is the sequence of the release the edge at addr serves.
func servedSequence(addr string) (uint64, error) {
	code, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/v1/release", 2*time.Second)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("GET /v1/release: %d", code)
	}
	var rel struct {
		Sequence uint64 `json:"sequence"`
	}
	err = json.Unmarshal(body, &rel)
	return rel.Sequence, err
}
