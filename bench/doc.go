// Package bench makes realistic workloads for driveway: label trees the size of a real
// driver ecosystem, and populations of PCs asking for offers. Validation and build
// benchmarks read the trees; edge load tests replay the PCs' requests over HTTP.
//
// # Label trees
//
// [GenerateLabels] writes a tree in the layout of docs/labels.md (products, submissions,
// driver metadata, shipping labels, and the four catalog-wide files), in the shapes of the
// hardware dashboard's exports (catalogs/examples/contoso). catalogs.Load and
// Tree.Validate accept it with no problem at all, errors or warnings.
//
// The world it describes:
//
//   - Hardware vendors: the real large ones (Intel, Realtek, AMD, NVIDIA, Qualcomm, …, with
//     their PCI, USB and ACPI vendor ids) and a synthetic tail, about 60 at 10,000 labels,
//     growing with the square root of the size. Larger vendors publish more (Zipf).
//   - Fifteen PC makers (OEMs) with their PCI subsystem vendor ids and a few dozen models
//     each; a model has SMBIOS fields in its maker's style and the CHIDs computed from them.
//   - Products: one driver line of a vendor (NIC, WLAN, Bluetooth, audio, camera, touchpad,
//     chipset, sensors, graphics, storage, card reader, USB host, fingerprint), with a few
//     chips; OEMs' system firmware (UEFI resources, always targeted at CHIDs); OEMs'
//     extension INFs for a vendor's device in their systems. Each product has a few to a few
//     dozen submissions, each with a higher version and a later date.
//   - Labels: typically one per OEM a submission ships to, publishing the chips' IDs with
//     that OEM's SUBSYS (PCI, HDAUDIO) or its own product ids (USB, HID); about ten
//     hardware IDs per label with a long tail to a few hundred. About 75% automatic, 15%
//     manual, 5% dynamic update only; flights, gradual rollouts at every stage, a few
//     paused, cancelled (with rollback), floored, ceilinged, co-engineered, restricted to
//     the test-key or CoDev audience, expanded, or shared with an OEM that republishes them.
//
// Everything follows from Labels and Seed: the same options give byte-identical files,
// and no date depends on the wall clock (the world's "now" is 2026-11-21). Products are
// generated one at a time and written while the next is made, so memory stays flat at any
// size; most of the time of a large tree goes into creating its files.
//
// # Devices
//
// [GenerateDevices] writes offer requests (docs/offers.md), one per line, for PCs drawn
// from the OEMs' models: the devices their labels target (with the model's SUBSYS, in
// Windows' order of hardware and compatible IDs), their maker's USB and HID devices, chips
// that are everywhere, and the many devices no label knows (root-enumerated, ACPI, bridges,
// hubs, monitors). OS builds, scans, CHIDs or SMBIOS fields, installed drivers and Insider
// channels come in realistic proportions.
//
// # Load
//
// [Load] replays requests against an edge over HTTP, closed loop (workers, each waiting for
// its answer) or open loop (requests due at fixed times whatever the answers, latency
// measured from the time each was due). It has two engines. The fasthttp engine runs a
// goroutine per connection with fasthttp's client; it does both loops and in-memory
// connections for tests. The epoll engine (load_epoll_linux.go, the default for open loops
// on Linux) runs on one locked thread: every connection in one epoll set, each request
// written from prebuilt bytes when it is due, waits in epoll_pwait2 with a nanosecond
// timeout, answers parsed only as far as status, length and Connection. It costs about half
// the CPU per request of the fasthttp engine and allocates nothing per request, so on a
// machine whose cores the generator shares with the servers it disturbs less what it
// measures: at half load the fixed-answer server's p99 was 4.2 ms with it and 6.3 ms with
// the fasthttp engine in the same session (`driveway bench load --engine fasthttp|epoll`).
//
// # Use
//
//	st, err := bench.GenerateLabels("/tmp/labels", bench.LabelOptions{Labels: 100_000, Compact: true})
//	…
//	f, _ := os.Create("/tmp/devices.ndjson")
//	_, err = bench.GenerateDevices(f, bench.DeviceOptions{PCs: 10_000, Labels: "/tmp/labels"})
package bench
