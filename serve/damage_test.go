package serve_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/bench/load"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/serve"
	"github.com/driveway/driveway/signing"
)

// hammer sends offer requests from 8 clients until stop is closed (bounded: at most a
// minute and a million requests), counting answers by status and 200s whose body is not
// the expected one.
type hammer struct {
	client        *fasthttp.Client
	byStatus      sync.Map // int -> *atomic.Int64
	wrong, total  atomic.Int64
	stop          chan struct{}
	wg            sync.WaitGroup
	firstWrongMsg atomic.Value
}

func startHammer(t *testing.T, base string, req, want []byte) *hammer {
	client := &fasthttp.Client{MaxConnsPerHost: 16, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	h := &hammer{stop: make(chan struct{}), client: client}
	deadline := time.Now().Add(time.Minute)
	for range 8 {
		h.wg.Go(func() {
			rq, rs := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(rq)
			defer fasthttp.ReleaseResponse(rs)
			for h.total.Load() < 1_000_000 && time.Now().Before(deadline) {
				select {
				case <-h.stop:
					return
				default:
				}
				rq.Reset()
				rq.Header.SetMethod("POST")
				rq.SetRequestURI(base + "/v1/offers")
				rq.Header.SetContentType("application/json")
				rq.SetBody(req)
				code := 0
				if err := client.DoTimeout(rq, rs, 5*time.Second); err == nil {
					code = rs.StatusCode()
				}
				h.total.Add(1)
				n, _ := h.byStatus.LoadOrStore(code, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				if code == 200 && !bytes.HasSuffix(stripProofs(rs.Body()), want) {
					if h.wrong.Add(1) == 1 {
						h.firstWrongMsg.Store(string(rs.Body()))
					}
				}
			}
		})
	}
	return h
}

// benchLoad runs `driveway bench load`'s generator (load.Run: a closed loop of 8
// connections) against base until the returned function is called (bounded: a minute).
func benchLoad(t *testing.T, base string, req []byte) func() *load.Result {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan *load.Result, 1)
	go func() {
		res, err := load.Run(ctx, load.Options{URL: base + "/v1/offers", Bodies: [][]byte{req}, Concurrency: 8, Duration: time.Minute,
			Engine: load.EngineFasthttp})
		if err != nil {
			t.Errorf("bench load: %v", err)
		}
		done <- &res
	}()
	return func() *load.Result {
		cancel()
		return <-done
	}
}

func (h *hammer) finish() map[int]int64 {
	close(h.stop)
	h.wg.Wait()
	h.client.CloseIdleConnections()
	out := map[int]int64{}
	h.byStatus.Range(func(k, v any) bool {
		out[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// TestShardsChangedUnderTheEdge: a served shard rewritten in place with the same bytes
// (`cp` over it), truncated, or changed in place at the same size, while clients hammer
// the edge. Before, the edge mapped the catalog's files: the cp and the truncate killed it
// (SIGBUS), and the same-size change answered `"offers":[]` with /readyz 200, silently.
//
// Done to the catalog directory, none of it reaches the edge, which maps its own copies:
// every answer is the right 200. Done to the edge's own copies (which nothing should ever
// touch), the edge still never dies, never answers from changed bytes once it has seen the
// change (inotify: at once; else the next poll), and every answer that is not a correct 200
// is a 500 counted as a fault or a 503 of a withdrawn release, logged and counted as a
// refusal; when the files are sound again, it serves again.
func TestShardsChangedUnderTheEdge(t *testing.T) {
	for _, target := range []string{"catalog", "own copy"} {
		t.Run(target, func(t *testing.T) { testShardsChanged(t, target == "own copy") })
	}
}

func testShardsChanged(t *testing.T, ownCopy bool) {
	for _, tc := range []struct {
		name     string
		damage   func(t *testing.T, path string, good []byte)
		withdraw bool // the release must be withdrawn (other bytes), not served on (same bytes)
	}{
		{"cp of the same bytes", func(t *testing.T, path string, good []byte) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0) // what cp does to an existing file
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // the file is empty meanwhile: readers of the mapping fault
			f.Write(good)
			f.Close()
		}, false},
		{"truncated", func(t *testing.T, path string, good []byte) {
			if err := os.Truncate(path, int64(len(good)/3)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"changed in place, same size", func(t *testing.T, path string, good []byte) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			bad := append([]byte(nil), good...)
			for i := len(bad) / 4; i < len(bad)-64; i++ {
				bad[i] ^= 0x5a
			}
			f.WriteAt(bad, 0)
			f.Close()
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t)
			sc := conformance.LoadOne(t, "01-forward-and-floor.json")
			now := mustTime(t, sc.Now)
			work := t.TempDir()
			conformance.WriteTree(t, filepath.Join(work, "labels"), sc.Labels)
			dir := filepath.Join(work, "catalog")
			buildRelease(t, filepath.Join(work, "labels"), dir, k, now, 0)
			req := sc.Requests[1].Request
			want := offersPart(t, dir, k, req, now)
			clock := newClock(now)
			cache := filepath.Join(work, "edge")
			_, base := startServer(t, serve.Config{Catalog: dir, Cache: cache, Keys: []*signing.Verifier{k.verifier}, Clock: clock.now, Poll: 20 * time.Millisecond})
			// Every shard with keys is damaged: whichever the request reads.
			m := manifestOf(t, dir)
			var paths []string
			var goods [][]byte
			for _, s := range m.Shards {
				if s.Keys == 0 {
					continue
				}
				p := filepath.Join(dir, index.ShardsDir, s.Name)
				if ownCopy {
					p = filepath.Join(cache, index.ShardsDir, s.Name)
				}
				paths, goods = append(paths, p), append(goods, mustRead(t, p))
			}
			withdraw := tc.withdraw && ownCopy
			h := startHammer(t, base, req, want)
			stopLoad := benchLoad(t, base, req)
			waitFor(t, 5*time.Second, "answers before the damage", func() bool { return h.total.Load() > 200 })
			for i, p := range paths {
				tc.damage(t, p, goods[i])
			}
			if !ownCopy {
				time.Sleep(200 * time.Millisecond) // ten polls of answers after the damage
			}
			if withdraw {
				waitFor(t, 5*time.Second, "the damaged release refused", func() bool {
					return metric(t, base, `driveway_edge_refused_releases_total{reason="shard"}`) >= 1
				})
				// Repaired the right way (new files, renamed), if the edge has not already
				// copied its shards again from the catalog: served again.
				for i, p := range paths {
					if err := os.WriteFile(p+".tmp", goods[i], 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(p+".tmp", p); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitFor(t, 10*time.Second, "served again", func() bool {
				code, body := post(t, base+"/v1/offers", req)
				return code == 200 && bytes.HasSuffix(body, want)
			})
			// Once the edge has seen the change, no answer comes from the changed bytes.
			wrongBefore := h.wrong.Load()
			time.Sleep(100 * time.Millisecond)
			if n := h.wrong.Load() - wrongBefore; n != 0 {
				t.Errorf("%d wrong answers after the edge had seen the change", n)
			}
			counts := h.finish()
			load := stopLoad()
			faults := metric(t, base, "driveway_edge_faults_total")
			if load == nil || load.Requests == 0 {
				t.Fatalf("bench load sent nothing: %+v", load)
			}
			t.Logf("bench load: %d requests, by status %v, errors %v", load.Requests, load.Statuses, load.Errors)
			for code, n := range load.Statuses {
				counts[code] += n // judged with the hammer's answers below
			}
			if !ownCopy && (load.OK != load.Requests || len(load.Errors) != 0) {
				t.Errorf("the catalog's files changed: bench load had %d of %d requests answered with an offer response, errors %v; want all",
					load.OK, load.Requests, load.Errors)
			}
			t.Logf("answers by status %v; wrong 200s %d; faults %v", counts, h.wrong.Load(), faults)
			for code, n := range counts {
				switch {
				case code == 200, code == 503 && withdraw, code == 503 && ownCopy && !tc.withdraw:
				case code == 500:
					if float64(n) > faults {
						t.Errorf("%d answers 500, but %v faults counted", n, faults)
					}
				default:
					t.Errorf("%d answers with status %d", n, code)
				}
			}
			if !ownCopy && (h.wrong.Load() > 0 || counts[200] != h.total.Load()+load.Statuses[200]) {
				t.Errorf("the catalog's files changed: %d wrong answers (first: %v), %d of %d answers 200; want every answer right",
					h.wrong.Load(), h.firstWrongMsg.Load(), counts[200], h.total.Load())
			}
		})
	}
}
