package offer

import (
	"strings"
	"testing"
)

// TestBlockNamesAny checks a block's HWID match, whose length filter must never rule out a
// named ID: short, long and over-255-byte IDs (which share one length member).
func TestBlockNamesAny(t *testing.T) {
	named := []string{"A", strings.Repeat("B", 63), strings.Repeat("C", 64), strings.Repeat("D", 254),
		strings.Repeat("E", 255), strings.Repeat("F", 300)}
	b := block{hwids: map[string]bool{}}
	for _, h := range named {
		b.hwids[h] = true
		b.hwidLens.add(len(h))
	}
	for _, h := range named {
		if !b.namesAny([][]byte{[]byte("OTHER"), []byte(h)}) {
			t.Errorf("a block naming a %d-byte ID does not match it", len(h))
		}
		// The same length, another ID.
		other := []byte(strings.Repeat("Z", len(h)))
		if b.namesAny([][]byte{other}) {
			t.Errorf("a block matches an unnamed %d-byte ID", len(h))
		}
	}
	for _, n := range []int{2, 65, 256, 1000} {
		if b.hwidLens.has(n) != (n >= 255) {
			t.Errorf("lengthSet.has(%d) = %v", n, b.hwidLens.has(n))
		}
	}
	if b.namesAny(nil) {
		t.Error("a block matches a device without IDs")
	}
}
