package serve

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/signing"
)

// TestGenerationRefcount swaps generations as fast as it can while readers acquire and
// release them: a reader never holds a freed generation, and every replaced generation is
// freed exactly once, after its last reader.
func TestGenerationRefcount(t *testing.T) {
	p, err := newPool(0, newMetrics())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{m: newMetrics(), pool: p}
	var made []*generation
	newGen := func(seq uint64) *generation {
		g := &generation{seq: seq, pool: p}
		g.refs.Store(1)
		p.gens.Add(1)
		made = append(made, g)
		return g
	}
	s.swap(newGen(1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad atomic.Int64
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				g := s.acquire()
				if g.freed.Load() {
					bad.Add(1)
				}
				reads.Add(1)
				g.release()
			}
		})
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	seq := uint64(2)
	for ; time.Now().Before(deadline) && seq < 100000; seq++ {
		s.swap(newGen(seq))
	}
	close(stop)
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d reads of a freed generation", bad.Load())
	}
	for _, g := range made[:len(made)-1] {
		if !g.freed.Load() || g.refs.Load() != 0 {
			t.Fatalf("generation %d: freed %t, refs %d", g.seq, g.freed.Load(), g.refs.Load())
		}
	}
	if cur := made[len(made)-1]; cur.freed.Load() || cur.refs.Load() != 1 || p.gens.Load() != 1 {
		t.Errorf("current generation: freed %t, refs %d; live %d", cur.freed.Load(), cur.refs.Load(), p.gens.Load())
	}
	t.Logf("%d swaps, %d reads", seq-1, reads.Load())
}

// TestPanicAnswers500: a panic while answering (here: a generation without an engine) is
// answered with a 500, and the generation's reference is given back.
func TestPanicAnswers500(t *testing.T) {
	_, pub, _ := signing.GenerateKey(signing.Ed25519, nil)
	v, err := signing.ParseVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Catalog: t.TempDir(), Keys: []*signing.Verifier{v}, DisableInotify: true, Poll: time.Hour, Clock: testclock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	g := &generation{seq: 7, pool: s.pool, expires: testclock.Now().Add(time.Hour)}
	g.refs.Store(1)
	s.pool.gens.Add(1)
	s.swap(g)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/offers")
	ctx.Request.Header.SetContentType("application/json")
	ctx.Request.SetBody([]byte(`{"deviceId":"d","os":{"build":19045,"arch":"amd64"},"devices":[]}`))
	s.Handler()(&ctx)
	if ctx.Response.StatusCode() != 500 {
		t.Errorf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if n := g.refs.Load(); n != 1 {
		t.Errorf("refs %d after the panic, want 1", n)
	}
}

// TestNeedsAClock: the edge never reads the system clock on its own; a configuration
// without one is refused, naming the field.
func TestNeedsAClock(t *testing.T) {
	_, err := New(Config{Catalog: t.TempDir(), Keys: make([]*signing.Verifier, 1), DisableInotify: true})
	if err == nil || !strings.Contains(err.Error(), "Config.Clock") {
		t.Errorf("New without a clock: %v", err)
	}
}
