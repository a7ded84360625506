package load

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"time"

	"github.com/driveway/driveway/index"
)

// LookupOptions configure Lookups.
type LookupOptions struct {
	Keys       int   // random lookups per pass; default 200,000
	Seed       int64 // default 1
	BlockCache int64 // bytes of decoded blocks; default 64 MiB (what driveway serve uses)
}

// LookupResult is what Lookups measured.
type LookupResult struct {
	Keys       int     `json:"keys"`       // distinct HWID keys in the release
	Lookups    int     `json:"lookups"`    // per pass
	ColdPerSec float64 `json:"coldPerSec"` // first pass: page cache evicted, no decoded block cached
	WarmPerSec float64 `json:"warmPerSec"` // second pass over the same keys
	ColdNanos  float64 `json:"coldNanos"`  // mean per lookup
	WarmNanos  float64 `json:"warmNanos"`
	Evicted    bool    `json:"evicted"` // the shard files were dropped from the page cache first
}

// Lookups measures HWID lookups in the newest release of dir: it reads every HWID key, drops
// the shard files from the page cache (posix_fadvise DONTNEED), maps the release afresh and
// looks up random keys twice, cold then warm. The release is read, not verified (measure a
// release you trust: driveway verify first).
func Lookups(dir string, opts LookupOptions) (LookupResult, error) {
	if opts.Keys <= 0 {
		opts.Keys = 200000
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.BlockCache <= 0 {
		opts.BlockCache = 64 << 20
	}
	var res LookupResult
	rel, err := index.OpenRelease(dir, &index.VerifyOptions{Unverified: true, Shallow: true, IgnoreExpiry: true})
	if err != nil {
		return res, err
	}
	var keys [][]byte
	for _, sh := range rel.HWID {
		if err := sh.Scan(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil }); err != nil {
			rel.Close()
			return res, err
		}
	}
	rel.Close()
	if len(keys) == 0 {
		return res, fmt.Errorf("bench: release in %s has no HWID keys", dir)
	}
	res.Keys = len(keys)
	r := rand.New(rand.NewSource(opts.Seed))
	sample := make([][]byte, opts.Keys)
	for i := range sample {
		sample[i] = keys[r.Intn(len(keys))]
	}
	res.Lookups = len(sample)

	// Evict the shards from the page cache, then map them afresh.
	res.Evicted = true
	files, _ := filepath.Glob(filepath.Join(dir, index.ShardsDir, "*.shard"))
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return res, err
		}
		if !evictPageCache(f) {
			res.Evicted = false
		}
		f.Close()
	}
	rel, err = index.OpenRelease(dir, &index.VerifyOptions{Unverified: true, Shallow: true, IgnoreExpiry: true, Cache: index.NewCacheBudget(opts.BlockCache)})
	if err != nil {
		return res, err
	}
	defer rel.Close()
	pass := func() (float64, error) {
		start := time.Now()
		for _, k := range sample {
			h := index.Hash(k)
			if _, ok, err := rel.HWID[index.RouteHash(h, len(rel.HWID))].GetHash(k, h); err != nil || !ok {
				return 0, fmt.Errorf("bench: key %q not found: %v", k, err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(len(sample)), nil
	}
	if res.ColdNanos, err = pass(); err != nil {
		return res, err
	}
	if res.WarmNanos, err = pass(); err != nil {
		return res, err
	}
	res.ColdPerSec, res.WarmPerSec = 1e9/res.ColdNanos, 1e9/res.WarmNanos
	return res, nil
}
