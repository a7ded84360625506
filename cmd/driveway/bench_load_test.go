package main

import (
	"slices"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"0", []int{0}},
		{"1,3", []int{1, 3}},
		{"0,2-4", []int{0, 2, 3, 4}},
		{"5-5", []int{5}},
	} {
		got, err := parseCPUList(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"x", "1,", ",1", "3-1", "-1", "1-", "0-1024", "1024", " 1"} {
		if got, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) = %v; want an error", bad, got)
		}
	}
}
