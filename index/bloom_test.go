package index

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
)

// TestBloom: every key of a shard passes its filter (no false negative), and most absent
// keys do not (the filter earns its keep). MayContain is the filter's answer; no key in the
// shard starts at an empty slot (StartsEmpty), and many absent ones do.
func TestBloom(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, &WriterOptions{Kind: "hwid", Shard: 0, Shards: 1})
	var keys [][]byte
	for i := 0; i < 20000; i++ {
		keys = append(keys, []byte(fmt.Sprintf(`PCI\VEN_8086&DEV_%04X&SUBSYS_%08X`, i%4096, i)))
	}
	sortKeys(keys)
	for _, k := range keys {
		if err := w.Add(k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenBytes(buf.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.bloom) == 0 {
		t.Fatal("no filter built")
	}
	for _, k := range keys {
		if !s.bloom.has(Hash(k)) || !s.MayContain(Hash(k)) {
			t.Fatalf("%s is in the shard but not in its filter", k)
		}
		if s.StartsEmpty(Hash(k)) {
			t.Fatalf("%s is in the shard but its lookup starts at an empty slot", k)
		}
		if _, ok, err := s.Get(k); !ok || err != nil {
			t.Fatalf("Get(%s) = %v, %v", k, ok, err)
		}
	}
	falsePos, empty := 0, 0
	const absent = 100000
	for i := 0; i < absent; i++ {
		k := []byte(fmt.Sprintf(`PCI\VEN_10EC&DEV_%04X&CC_0200%02X`, i, i%256))
		if s.bloom.has(Hash(k)) {
			falsePos++
		}
		if s.MayContain(Hash(k)) != s.bloom.has(Hash(k)) {
			t.Fatalf("MayContain(%s) is not the filter's answer", k)
		}
		if s.StartsEmpty(Hash(k)) {
			empty++
		}
		if _, ok, _ := s.Get(k); ok {
			t.Fatalf("Get(%s) found an absent key", k)
		}
	}
	// The table is filled to 3/4 at most: at least a fifth of the absent keys start at an
	// empty slot.
	if empty < absent/5 {
		t.Errorf("%d of %d absent keys start at an empty slot; want at least a fifth", empty, absent)
	}
	if rate := float64(falsePos) / absent; rate > 0.03 {
		t.Errorf("false positive rate %.2f%%, want about 1%%", 100*rate)
	}
	t.Logf("false positives: %.2f%% (%d bytes of filter for %d keys)", 100*float64(falsePos)/absent, 8*len(s.bloom), len(keys))
}

func sortKeys(keys [][]byte) {
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
}
