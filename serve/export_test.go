package serve

import "net"

// ShardStats reports shards mapped and unmapped so far, and open now.
func (s *Server) ShardStats() (mapped, unmapped uint64, open int) {
	return s.m.mapped.get(0), s.m.unmapped.get(0), s.pool.open()
}

// ServeConn serves one connection with the server's fasthttp settings.
func (s *Server) ServeConn(c net.Conn) error { return s.hs.ServeConn(c) }

// LiveGenerations is the number of loaded generations not yet freed.
func (s *Server) LiveGenerations() int64 { return s.pool.gens.Load() }

// SetNoProofs leaves the release statement and the offers' proofs out of answers (for the
// benchmarks' before-and-after in one run).
func (s *Server) SetNoProofs(v bool) { s.noProofs = v }

// RecordsMade is the number of times the edge made a release's package records from its
// label shards (not reused from the release before).
func (s *Server) RecordsMade() int64 { return s.pool.recordsMade.Load() }

// CountRequestForBench returns what the offer path does to count one answer.
func CountRequestForBench(s *Server) func() {
	return func() { s.m.request(routeOffers, 200) }
}
