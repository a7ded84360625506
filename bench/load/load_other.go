//go:build !linux

package load

import "time"

// A pacer sleeps between the open loop's requests (Go's timers here; see load_linux.go).
type pacer struct{}

func newPacer() *pacer                 { return &pacer{} }
func (p *pacer) sleep(d time.Duration) { time.Sleep(d) }
func (p *pacer) close()                {}
