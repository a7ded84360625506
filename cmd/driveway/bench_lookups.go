package main

import (
	"encoding/json"
	"fmt"

	"github.com/driveway/driveway/bench/load"
)

func cmdBenchLookups(e *env, args []string) int {
	fs := e.benchFlags("lookups", `
Lookups measures hardware ID lookups in the newest release of a catalog directory: it drops the
shard files from the page cache, maps the release afresh with an empty block cache, and looks
up random keys of the release twice, cold then warm, printing lookups per second of each pass.`)
	catalog := fs.String("catalog", "", "the catalog `DIR` (required)")
	n := fs.Int("keys", 200000, "random lookups per pass")
	seed := fs.Int64("seed", 1, "random seed")
	cache := fs.Int64("block-cache", 64<<20, "bytes of decoded blocks cached (as driveway serve)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	if *catalog == "" {
		return e.usageError("bench lookups", "--catalog is required")
	}
	r, err := load.Lookups(*catalog, load.LookupOptions{Keys: *n, Seed: *seed, BlockCache: *cache})
	if err != nil {
		return e.fail("bench lookups", err)
	}
	if *asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	evicted := "page cache evicted first"
	if !r.Evicted {
		evicted = "page cache NOT evicted (fadvise failed): the cold pass is warmer than it says"
	}
	fmt.Fprintf(e.stdout, "%d lookups over %d keys (%s)\ncold: %.0f lookups/s (%.0f ns each)\nwarm: %.0f lookups/s (%.0f ns each)\n",
		r.Lookups, r.Keys, evicted, r.ColdPerSec, r.ColdNanos, r.WarmPerSec, r.WarmNanos)
	return exitOK
}
