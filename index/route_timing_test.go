package index

// Benchmarks of the edge's first step for one device: each of its hardware and compatible
// IDs hashed, routed to one of 16 shards and probed, as offer does. The IDs have real shapes
// (PCI with SUBSYS and REV, HDAUDIO, USB, HID, ACPI, a UEFI resource, a class code), and a
// device sends eleven of them, most of them compatible IDs no record names: two probes hit,
// nine miss. The naive baseline is a Go map holding the same records.
// index_timing_test.go measures one synthetic 45-byte key (Hash45, Route45) and single
// probes (GetMiss, GetHit*) of one shard; this file, real key shapes and a whole device.
//
//	go test ./index -run '^$' -bench 'HashHWID|RouteProbe' -benchmem -count 3
//
// Measured on the shared 2-vCPU AMD EPYC VM (linux/amd64, go1.26.8) while other work ran
// (load average about 3), medians of 3 runs; 16 shards holding 40,000 records (2 IDs of
// each of 20,000 devices, ~230-byte values, 16 records a block), the block cache warm:
//
//	BenchmarkHashHWID/acpi-12          3.8 ns/op    3 170 MB/s
//	BenchmarkHashHWID/hid-27           7.2 ns/op    3 770 MB/s
//	BenchmarkHashHWID/usb-30           7.2 ns/op    4 180 MB/s
//	BenchmarkHashHWID/pci-44          10.0 ns/op    4 400 MB/s
//	BenchmarkHashHWID/uefi-53         11.8 ns/op    4 500 MB/s
//	BenchmarkHashHWID/hdaudio-58      13.9 ns/op    4 180 MB/s
//	BenchmarkRouteProbe                606 ns/op      55 ns/id   0 allocs/op
//	BenchmarkRouteProbeMap             223 ns/op      20 ns/id   0 allocs/op
//
// Hashing is a small part of a probe. A device's whole ID list costs about 0.6 µs warm,
// under 3 times the map: a hit reads the slot, the block index, the cached block's offset
// table and the record (9 MB of decoded blocks, so each is likely a cache miss), a miss one
// or two slots, where the map touches fewer lines.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// realHWIDs are IDs of the shapes a PC sends, by kind and length.
var realHWIDs = []struct{ name, id string }{
	{"acpi", `ACPI\PNP0C0A`},
	{"usb", `USB\VID_046D&PID_C52B&REV_1211`},
	{"hid", `HID\VID_06CB&PID_CE26&COL02`},
	{"pci", `PCI\VEN_8086&DEV_15F3&SUBSYS_0A5417AA&REV_03`},
	{"uefi", `UEFI\RES_{5B2C0A1F-3E4D-4A8B-9C1E-2F3A4B5C6D7E}&REV_1`},
	{"hdaudio", `HDAUDIO\FUNC_01&VEN_10EC&DEV_0257&SUBSYS_17AA2258&REV_1000`},
}

func BenchmarkHashHWID(b *testing.B) {
	for _, h := range realHWIDs {
		k := []byte(h.id)
		want := Hash(k)
		b.Run(fmt.Sprintf("%s-%d", h.name, len(k)), func(b *testing.B) {
			b.SetBytes(int64(len(k)))
			b.ReportAllocs()
			for b.Loop() {
				if Hash(k) != want {
					b.Fatal("Hash changed")
				}
			}
		})
	}
}

const (
	routeDevices = 20000
	routeShards  = 16
)

var routeVendors = []uint16{0x8086, 0x10EC, 0x14E4, 0x1022, 0x10DE, 0x168C, 0x1B21, 0x17CB}

// deviceIDs returns the IDs a PCI device sends, most specific first: four hardware IDs and
// seven compatible IDs, as Windows lists them.
func deviceIDs(i int) [][]byte {
	ven, dev := routeVendors[i%len(routeVendors)], uint16(i/len(routeVendors))
	sub, rev := uint32(i)*2654435761, uint8(i)
	cc := []string{"020000", "028000", "040300", "010802"}[i%4]
	ids := []string{
		fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X&SUBSYS_%08X&REV_%02X`, ven, dev, sub, rev),
		fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X&SUBSYS_%08X`, ven, dev, sub),
		fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X&CC_%s`, ven, dev, cc),
		fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X&CC_%s`, ven, dev, cc[:4]),
		fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X&REV_%02X`, ven, dev, rev),
		fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X`, ven, dev),
		fmt.Sprintf(`PCI\VEN_%04X&CC_%s`, ven, cc),
		fmt.Sprintf(`PCI\VEN_%04X&CC_%s`, ven, cc[:4]),
		fmt.Sprintf(`PCI\VEN_%04X`, ven),
		fmt.Sprintf(`PCI\CC_%s`, cc),
		fmt.Sprintf(`PCI\CC_%s`, cc[:4]),
	}
	out := make([][]byte, len(ids))
	for j, s := range ids {
		out[j] = []byte(s)
	}
	return out
}

// routeWorld is a release's HWID shards holding the two SUBSYS IDs of every device, and the
// ID lists of devices to look up.
func routeWorld(b *testing.B) (shards []*Shard, recs []record, devices [][][]byte) {
	b.Helper()
	r := rand.New(rand.NewPCG(21, 21))
	for i := range routeDevices {
		for _, k := range deviceIDs(i)[:2] {
			v := fmt.Appendf(nil, `{"hwid":%q,"rows":[`, k)
			for j := range 5 {
				v = fmt.Appendf(v, `{"label":%d,"family":%d,"slot":%d},`, r.IntN(100000), j%3, r.IntN(40))
			}
			recs = append(recs, record{k, append(v, "]}"...)})
		}
	}
	slices.SortFunc(recs, func(a, b record) int { return bytes.Compare(a.key, b.key) })
	cache := NewCacheBudget(1 << 30)
	for n := range routeShards {
		data, _ := writeShard(b, WriterOptions{Kind: KindHWID, Shard: n, Shards: routeShards}, routed(recs, n, routeShards))
		s, err := OpenBytes(data, &Options{Cache: cache})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		shards = append(shards, s)
	}
	for _, rec := range recs { // warm: every block decoded and cached
		if _, ok, err := shards[Route(rec.key, routeShards)].Get(rec.key); !ok || err != nil {
			b.Fatalf("Get(%q) = %v, %v", rec.key, ok, err)
		}
	}
	for _, i := range r.Perm(routeDevices)[:1024] {
		devices = append(devices, deviceIDs(i))
	}
	return shards, recs, devices
}

// BenchmarkRouteProbe looks up every ID of one device per op: hash, route, probe.
func BenchmarkRouteProbe(b *testing.B) {
	shards, _, devices := routeWorld(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		hits := 0
		for _, id := range devices[i%len(devices)] {
			h := Hash(id)
			if _, ok, err := shards[RouteHash(h, routeShards)].GetHash(id, h); ok {
				hits++
			} else if err != nil {
				b.Fatal(err)
			}
		}
		if hits != 2 {
			b.Fatalf("device %d: %d hits; want 2", i%len(devices), hits)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(devices[0])), "ns/id")
}

// BenchmarkRouteProbeMap is the naive baseline: the same records in a Go map.
func BenchmarkRouteProbeMap(b *testing.B) {
	_, recs, devices := routeWorld(b)
	m := make(map[string][]byte, len(recs))
	for _, rec := range recs {
		m[string(rec.key)] = rec.value
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		hits := 0
		for _, id := range devices[i%len(devices)] {
			if _, ok := m[string(id)]; ok {
				hits++
			}
		}
		if hits != 2 {
			b.Fatalf("device %d: %d hits; want 2", i%len(devices), hits)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(devices[0])), "ns/id")
}
