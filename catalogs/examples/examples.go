// Package examples holds the bundled example catalog and requests, embedded so that
// `driveway demo` runs anywhere with nothing but the binary.
//
// contoso/ is a small realistic label tree: the dashboard docs' toaster driver (RS5-certified,
// expanded by its owner and published on the extended TH1 row with floor RS3), a NIC in two
// versions (the newer one in a gradual rollout, and held by a block on one laptop model), an
// extension INF for it, a UEFI firmware capsule targeted by CHIDs, and a camera beta behind
// the Test Registry Key. requests/ holds offer requests against it.
package examples

import "embed"

// Contoso is the example label tree, rooted at "contoso".
//
//go:embed contoso
var Contoso embed.FS

// Requests are example offer requests, under "requests".
//
//go:embed requests
var Requests embed.FS
