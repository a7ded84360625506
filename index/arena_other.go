//go:build !unix

package index

// arena falls back to the Go heap where there are no anonymous mappings.
type arena struct{}

func (a *arena) alloc(n int) []byte { return make([]byte, n) }
func (a *arena) release()           {}
