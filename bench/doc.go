// Package bench makes realistic workloads for driveway: label trees the size of a real
// driver ecosystem, and populations of PCs asking for offers. Validation and build
// benchmarks read the trees; edge load tests (bench/load) replay the PCs' requests over HTTP.
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
// # The other bench packages
//
// Each has one job: bench/load drives an edge with these requests over HTTP and measures it;
// bench/baseline is the fixed-answer server it is compared with; bench/report runs the whole
// suite and writes REPORT.md; bench/rolloutsim runs the rollout health loop against a real
// edge over simulated days; bench/plot draws their SVG charts. Only bench/rolloutsim
// imports the server (cmd/driveway/layout_test.go holds the rules).
//
// # Use
//
//	st, err := bench.GenerateLabels("/tmp/labels", bench.LabelOptions{Labels: 100_000, Compact: true})
//	…
//	f, _ := os.Create("/tmp/devices.ndjson")
//	_, err = bench.GenerateDevices(f, bench.DeviceOptions{PCs: 10_000, Labels: "/tmp/labels"})
package bench
