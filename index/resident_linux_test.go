//go:build linux

package index

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// mappingRSS is the resident bytes of the process's mapping of path (/proc/self/smaps).
func mappingRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	var rss int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			rss += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rss
}

// TestBlockPagesLeaveRSS checks, in resident bytes of the shard's mapping, that after Check
// (which reads every block through the mapping) the block pages are no longer resident:
// what stays is the header, hash table and block index that lookups read; and that lookups
// after the drops (each block cached drops its pages again) read the right values.
func TestBlockPagesLeaveRSS(t *testing.T) {
	recs := make([]record, 60000)
	for i := range recs {
		recs[i] = record{fmt.Appendf(nil, "key%06d", i), fmt.Appendf(nil, `{"label":%d,"name":"device %d","rows":[%d,%d,%d,%d]}`, i, i*7919%100003, i%97, i%89, i%83, i%79)}
	}
	data, _ := writeShard(t, WriterOptions{Kind: "label", BlockRecords: 16}, recs)
	path := writeFile(t, data)
	s, err := Open(path, &Options{Cache: NewCacheBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	zstdBlocks := 0
	for b := range s.state {
		if s.entry(b).codec == codecZstd {
			zstdBlocks++
		}
	}
	if zstdBlocks != len(s.state) || s.ftr.storedBytes < 1<<20 {
		t.Fatalf("want a shard of zstd blocks over 1 MiB: %d of %d blocks zstd, %d stored bytes", zstdBlocks, len(s.state), s.ftr.storedBytes)
	}
	page := int64(os.Getpagesize())
	// Not blocks: the header page, the page the table starts in, the table and the index.
	rest := int64(len(data)) - int64(s.ftr.storedBytes) + 3*page

	if err := s.Check(); err != nil { // reads every block through the mapping
		t.Fatal(err)
	}
	if got := mappingRSS(t, path); got > rest {
		t.Errorf("after Check: %d bytes of the %d-byte mapping resident; want at most %d (%d stored block bytes)", got, len(data), rest, s.ftr.storedBytes)
	}
	for _, r := range recs { // every block decoded into the cache, its pages dropped
		if v, ok, err := s.Get(r.key); !ok || err != nil || string(v) != string(r.value) {
			t.Fatalf("Get(%q) = %q, %v, %v", r.key, v, ok, err)
		}
	}
	for _, r := range recs { // cached: the stored bytes are not read again
		if v, ok, err := s.Get(r.key); !ok || err != nil || string(v) != string(r.value) {
			t.Fatalf("Get(%q) = %q, %v, %v", r.key, v, ok, err)
		}
	}
}
