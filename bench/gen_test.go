package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/offer"
)

// shapeLabels is the size of the tree the validity and shape tests share.
const shapeLabels = 2000

var shared struct {
	once  sync.Once
	dir   string
	stats LabelStats
	tree  *catalogs.Tree
	probs catalogs.Problems
	err   error
}

// sharedTree generates, loads and validates one tree of shapeLabels labels for the tests
// that only read it.
func sharedTree(t *testing.T) (string, LabelStats, *catalogs.Tree, catalogs.Problems) {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "bench-shape-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		shared.stats, shared.err = GenerateLabels(filepath.Join(dir, "labels"), LabelOptions{Labels: shapeLabels, Seed: 1})
		if shared.err != nil {
			return
		}
		tree, probs, err := catalogs.Load(filepath.Join(dir, "labels"), nil)
		if err != nil {
			shared.err = err
			return
		}
		shared.tree, shared.probs = tree, append(probs, tree.Validate(&catalogs.ValidateOptions{Now: WorldNow()})...)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return filepath.Join(shared.dir, "labels"), shared.stats, shared.tree, shared.probs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// readTree returns every file of a tree by slash-separated path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGenerateLabelsDeterministic(t *testing.T) {
	base := t.TempDir()
	gen := func(name string, opts LabelOptions) map[string][]byte {
		dir := filepath.Join(base, name)
		if _, err := GenerateLabels(dir, opts); err != nil {
			t.Fatal(err)
		}
		return readTree(t, dir)
	}
	for _, compact := range []bool{false, true} {
		a := gen("a"+boolName(compact), LabelOptions{Labels: 400, Seed: 7, Compact: compact})
		b := gen("b"+boolName(compact), LabelOptions{Labels: 400, Seed: 7, Compact: compact, Workers: 1})
		if len(a) != len(b) {
			t.Fatalf("compact=%v: %d files, then %d files with the same seed", compact, len(a), len(b))
		}
		for name, data := range a {
			if !bytes.Equal(data, b[name]) {
				t.Fatalf("compact=%v: %s differs between two generations with the same seed", compact, name)
			}
		}
	}
	c := gen("c", LabelOptions{Labels: 400, Seed: 8})
	a := readTree(t, filepath.Join(base, "a-indented"))
	same := len(a) == len(c)
	for name, data := range a {
		if !bytes.Equal(data, c[name]) {
			same = false
			break
		}
	}
	if same {
		t.Error("seeds 7 and 8 gave the same tree")
	}
}

func boolName(compact bool) string {
	if compact {
		return "-compact"
	}
	return "-indented"
}

func TestGenerateLabelsRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateLabels(dir, LabelOptions{Labels: 10}); err == nil {
		t.Fatal("GenerateLabels wrote into a directory that holds a file")
	}
}

func TestGenerateLabelsValid(t *testing.T) {
	_, _, _, probs := sharedTree(t)
	var errs, warns []string
	superseded := 0
	for _, p := range probs {
		// A driver superseded everywhere by a newer one of the same hardware IDs is what a
		// real catalog holds too (validate says so: W001, every row outranked): the
		// generator's driver updates leave the older labels live, as publishers do.
		if p.Code == "W001" && strings.HasPrefix(p.Message, "every row is outranked") {
			superseded++
			continue
		}
		if p.Warning() {
			warns = append(warns, p.String())
		} else {
			errs = append(errs, p.String())
		}
	}
	if len(errs) > 0 {
		t.Errorf("%d errors (codes %v); the first:\n%s", len(errs), catalogs.Problems(probs).Codes(), strings.Join(errs[:min(10, len(errs))], "\n"))
	}
	if len(warns) > 0 {
		t.Errorf("%d warnings; the first:\n%s", len(warns), strings.Join(warns[:min(10, len(warns))], "\n"))
	}
	t.Logf("%d of %d labels superseded everywhere by a newer driver (W001)", superseded, shapeLabels)
	if superseded*2 > shapeLabels {
		t.Errorf("%d of %d labels are superseded everywhere (W001): a benchmark tree most of whose labels are never offered measures little", superseded, shapeLabels)
	}
}

// shape counts what a tree holds, read back through catalogs.
type shape struct {
	wu, auto, manual, duOnly, both, chid, audience, rollout, paused, cancelled, rollback int
	inFlight, floor, ceiling, coEng, shares, pending, extension, expansion, firmware     int
	twoPart, legacy, arm64, x86, server, testKey                                         int
	maxHWIDs                                                                             int
	hwids                                                                                map[string]bool
}

func measure(tree *catalogs.Tree) shape {
	s := shape{hwids: map[string]bool{}}
	epoch := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	os := ostable.Default()
	for _, l := range tree.Labels() {
		ids := map[string]bool{}
		for _, r := range l.Rows {
			ids[r.HWID] = true
			s.hwids[r.HWID] = true
			if r.State != "added" {
				s.pending++
			}
			if (strings.HasPrefix(r.HWID, `PCI\`) || strings.HasPrefix(r.HWID, `HDAUDIO\`)) && !strings.Contains(r.HWID, "SUBSYS_") {
				s.twoPart++
			}
			c, _ := os.LookupOSCode(r.OSCode)
			switch {
			case c.Legacy:
				s.legacy++
			case c.Family == ostable.ARM64Client:
				s.arm64++
			case c.Family == ostable.X86Client:
				s.x86++
			case c.Family == ostable.AMD64Server:
				s.server++
			}
		}
		s.maxHWIDs = max(s.maxHWIDs, len(ids))
		if l.Destination != "windowsUpdate" {
			s.shares++
			continue
		}
		s.wu++
		p := l.Publishing
		switch {
		case p.AutoApplicable && p.AutoDU:
			s.auto++
			s.both++
		case p.AutoApplicable:
			s.auto++
		case p.AutoDU:
			s.duOnly++
		case p.Manual:
			s.manual++
		}
		if len(l.LiveCHIDs()) > 0 {
			s.chid++
		}
		if len(l.Audiences) > 0 {
			s.audience++
			if l.Audiences[0] == catalogs.TestRegistryKey().ID {
				s.testKey++
			}
		}
		d := l.Distribution
		if d.Rollout != nil {
			s.rollout++
			if d.Rollout.Paused {
				s.paused++
			}
		}
		if d.Cancelled != nil {
			s.cancelled++
			if d.Cancelled.Rollback {
				s.rollback++
			}
		}
		if d.Flight != nil && d.Flight.Approved.After(epoch) {
			s.inFlight++
		}
		if l.Floor != "" {
			s.floor++
		}
		if l.Ceiling != "" {
			s.ceiling++
		}
		if p.CoEngineered {
			s.coEng++
		}
		if l.Submission.IsExtensionInf {
			s.extension++
		}
		if l.Submission.Expansion != nil {
			s.expansion++
		}
		if inf := l.Submission.INF(l.Rows[0].Bundle, l.Rows[0].INF); inf != nil && inf.Class == "Firmware" {
			s.firmware++
			if len(l.LiveCHIDs()) == 0 {
				s.firmware = -1 << 30 // reported below
			}
		}
	}
	return s
}

func TestGenerateLabelsShape(t *testing.T) {
	_, st, tree, _ := sharedTree(t)
	labels := tree.Labels()
	if st.Labels != shapeLabels || len(labels) != shapeLabels {
		t.Fatalf("asked for %d labels, wrote %d, read back %d", shapeLabels, st.Labels, len(labels))
	}
	if len(tree.Products) != st.Products {
		t.Errorf("stats say %d products, the tree has %d", st.Products, len(tree.Products))
	}
	s := measure(tree)
	if len(s.hwids) != st.HWIDs {
		t.Errorf("stats say %d distinct hardware IDs, the tree has %d", st.HWIDs, len(s.hwids))
	}
	t.Logf("%+v", st)
	t.Logf("labels: %d windowsUpdate (auto %d, of which DU too %d; manual %d; DU only %d), %d shares; CHIDs %d, audiences %d, rollouts %d (%d paused), cancelled %d (%d rollback), in flight %d, floors %d, ceilings %d, co-engineered %d, extension %d, expansion %d, firmware %d; rows: pending %d, two-part %d, legacy %d, arm64 %d, x86 %d, server %d; largest label %d HWIDs",
		s.wu, s.auto, s.both, s.manual, s.duOnly, s.shares, s.chid, s.audience, s.rollout, s.paused, s.cancelled, s.rollback,
		s.inFlight, s.floor, s.ceiling, s.coEng, s.extension, s.expansion, s.firmware, s.pending, s.twoPart, s.legacy, s.arm64, s.x86, s.server, s.maxHWIDs)

	between := func(what string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s = %.3f, want between %.3f and %.3f", what, got, lo, hi)
		}
	}
	wu := float64(s.wu)
	between("HWIDs per label", float64(st.LabelHWIDs)/float64(st.Labels), 6, 16)
	between("rows per label HWID", float64(st.Rows)/float64(st.LabelHWIDs), 1.3, 3.5)
	between("distinct HWIDs per label", float64(st.HWIDs)/float64(st.Labels), 1.5, 8)
	between("submissions per product", float64(st.Submissions)/float64(st.Products), 2, 8)
	between("automatic share", float64(s.auto)/wu, 0.65, 0.85)
	between("automatic+DU share", float64(s.both)/wu, 0.08, 0.25)
	between("manual share", float64(s.manual)/wu, 0.10, 0.22)
	between("DU-only share", float64(s.duOnly)/wu, 0.02, 0.09)
	between("CHID share", float64(s.chid)/wu, 0.02, 0.10)
	between("audience share", float64(s.audience)/wu, 0.01, 0.06)
	between("rollout share", float64(s.rollout)/wu, 0.06, 0.20)
	between("share labels", float64(s.shares)/float64(len(labels)), 0.002, 0.03)
	if s.firmware < 0 {
		t.Error("a firmware label has no CHIDs")
	}
	for what, n := range map[string]int{"paused rollouts": s.paused, "cancelled": s.cancelled, "rollbacks": s.rollback,
		"labels in flight": s.inFlight, "floors": s.floor, "ceilings": s.ceiling, "co-engineered": s.coEng,
		"extension INFs": s.extension, "expansions": s.expansion, "firmware": s.firmware, "pending rows": s.pending,
		"two-part IDs": s.twoPart, "pre-Windows 10 rows": s.legacy, "ARM64 rows": s.arm64, "x86 rows": s.x86,
		"server rows": s.server, "test-key audiences": s.testKey} {
		if n <= 0 {
			t.Errorf("no %s in %d labels", what, shapeLabels)
		}
	}
	if s.maxHWIDs < 40 {
		t.Errorf("the largest label has %d HWIDs; want a long tail (some labels with 50-200)", s.maxHWIDs)
	}

	// Ids grow with time, and so do each product's versions and dates.
	for _, p := range tree.Products {
		var prevDate int32
		var prevVersion uint64
		for _, sub := range p.Submissions {
			inf := sub.Metadata.Bundles[0].INFs[0]
			if inf.Date <= prevDate || inf.Version <= prevVersion {
				t.Fatalf("product %s: submission %s (%s, %s) does not supersede the one before", p.ID, sub.ID, inf.DateText, inf.VersionText)
			}
			prevDate, prevVersion = inf.Date, inf.Version
		}
	}
	ids := map[string]bool{}
	for _, l := range labels {
		if ids[l.ID] || len(l.ID) != 19 {
			t.Fatalf("label id %s is repeated or not 19 digits", l.ID)
		}
		ids[l.ID] = true
		if l.Publishing != nil && (l.Publishing.GoLive.Year() < 2022 || l.Publishing.GoLive.After(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))) {
			t.Errorf("label %s goes live %v, outside 2022–2026-11", l.ID, l.Publishing.GoLive)
		}
	}
}

// request mirrors the offer request for the checks encoding/json can make.
type request struct {
	DeviceID *string `json:"deviceId"`
	OS       *struct {
		Build int    `json:"build"`
		Arch  string `json:"arch"`
		SKU   string `json:"sku"`
	} `json:"os"`
	Scan        string    `json:"scan"`
	TargetBuild int       `json:"targetBuild"`
	CHIDs       []*string `json:"chids"`
	SMBIOS      *struct{} `json:"smbios"`
	Devices     *[]reqDev `json:"devices"`
	Insider     string    `json:"insider"`
	TargetRing  string    `json:"targetRing"`
	Audiences   []string  `json:"audiences"`
}

type reqDev struct {
	InstanceID    string   `json:"instanceId"`
	HardwareIDs   []string `json:"hardwareIds"`
	CompatibleIDs []string `json:"compatibleIds"`
	Driver        *struct {
		Date    string `json:"date"`
		Version string `json:"version"`
		Generic bool   `json:"generic"`
	} `json:"driver"`
	Extensions []struct {
		ID string `json:"extensionId"`
	} `json:"extensions"`
}

func generateDevices(t *testing.T, opts DeviceOptions) ([]byte, DeviceStats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := GenerateDevices(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != st.Bytes {
		t.Errorf("stats say %d bytes, wrote %d", st.Bytes, buf.Len())
	}
	return buf.Bytes(), st
}

func TestGenerateDevices(t *testing.T) {
	dir, _, tree, _ := sharedTree(t)
	const pcs = 600
	out, st := generateDevices(t, DeviceOptions{PCs: pcs, Seed: 3, Labels: dir})
	again, _ := generateDevices(t, DeviceOptions{PCs: pcs, Seed: 3, Labels: dir})
	if !bytes.Equal(out, again) {
		t.Error("two generations with the same seed differ")
	}
	other, _ := generateDevices(t, DeviceOptions{PCs: pcs, Seed: 4, Labels: dir})
	if bytes.Equal(out, other) {
		t.Error("seeds 3 and 4 gave the same devices")
	}

	published := map[string]bool{}
	for _, l := range tree.Labels() {
		for _, r := range l.Rows {
			if r.Live() && l.Destination == "windowsUpdate" {
				published[r.HWID] = true
			}
		}
	}
	dec := offer.NewDecoder(offer.Limits{})
	var req offer.Request
	deviceIDs := map[string]bool{}
	builds := map[int]int{}
	var lines, devices, known, withCHIDs, withSMBIOS, server, arm64, upgrade, insiders int
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		lines++
		if e := dec.Decode(line, &req); e != nil {
			t.Fatalf("line %d does not decode as an offer request: %v", lines, e)
		}
		var r request
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
		if r.DeviceID == nil || len(*r.DeviceID) == 0 || len(*r.DeviceID) > 128 || r.OS == nil || r.Devices == nil {
			t.Fatalf("line %d lacks deviceId, os or devices", lines)
		}
		if deviceIDs[*r.DeviceID] {
			t.Fatalf("line %d repeats deviceId %s", lines, *r.DeviceID)
		}
		deviceIDs[*r.DeviceID] = true
		if n := len(*r.Devices); n < 5 || n > 40 {
			t.Errorf("line %d has %d devices, want 5–40", lines, n)
		}
		if r.Scan == "upgrade" && r.TargetBuild <= r.OS.Build {
			t.Errorf("line %d upgrades from %d to %d", lines, r.OS.Build, r.TargetBuild)
		}
		if r.CHIDs != nil {
			withCHIDs++
			if len(r.CHIDs) != 15 {
				t.Errorf("line %d has %d chids, want 15 (null where not generated)", lines, len(r.CHIDs))
			}
		}
		if r.SMBIOS != nil {
			withSMBIOS++
		}
		switch {
		case r.OS.SKU == "server":
			server++
		case r.OS.Arch == "arm64":
			arm64++
		case r.Insider != "":
			insiders++
		default:
			builds[r.OS.Build]++
		}
		if r.Scan == "upgrade" {
			upgrade++
		}
		instances := map[string]bool{}
		for _, d := range *r.Devices {
			devices++
			if instances[d.InstanceID] {
				t.Errorf("line %d repeats instanceId %s", lines, d.InstanceID)
			}
			instances[d.InstanceID] = true
			if len(d.HardwareIDs) == 0 || len(d.HardwareIDs) > 64 || len(d.CompatibleIDs) > 64 {
				t.Errorf("line %d: device %s has %d hardware and %d compatible IDs", lines, d.InstanceID, len(d.HardwareIDs), len(d.CompatibleIDs))
			}
			isKnown := false
			for _, h := range append(append([]string{d.InstanceID}, d.HardwareIDs...), d.CompatibleIDs...) {
				if len(h) > 512 {
					t.Errorf("line %d: a string of %d bytes", lines, len(h))
				}
				if published[catalogs.NormalizeHWID(h)] {
					isKnown = true
				}
			}
			if isKnown {
				known++
			}
		}
	}
	if lines != pcs || st.PCs != pcs {
		t.Fatalf("%d lines, stats say %d PCs, want %d", lines, st.PCs, pcs)
	}
	if devices != st.Devices || known != st.Known {
		t.Errorf("stats say %d devices (%d known), the output has %d (%d known)", st.Devices, st.Known, devices, known)
	}
	t.Logf("%+v; builds %v; chids %d, smbios %d, server %d, arm64 %d, insiders %d, upgrades %d", st, builds, withCHIDs, withSMBIOS, server, arm64, insiders, upgrade)
	between := func(what string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s = %.3f, want between %.3f and %.3f", what, got, lo, hi)
		}
	}
	n := float64(pcs)
	between("share of PCs on 19045", float64(builds[19045])/n, 0.3, 0.5)
	between("share of PCs on 22631", float64(builds[22631])/n, 0.2, 0.4)
	between("share of PCs on 26100", float64(builds[26100])/n, 0.08, 0.22)
	between("share of PCs sending chids", float64(withCHIDs)/n, 0.75, 0.93)
	between("share of PCs sending smbios", float64(withSMBIOS)/n, 0.04, 0.17)
	between("devices per PC", float64(devices)/n, 10, 30)
	between("share of devices a label knows", float64(known)/float64(devices), 0.2, 0.75)
}

func TestGenerateDevicesNeedsLabels(t *testing.T) {
	if _, err := GenerateDevices(&bytes.Buffer{}, DeviceOptions{PCs: 1}); err == nil {
		t.Fatal("GenerateDevices without a label tree did not fail")
	}
}

func TestJSONWriterMatchesEncodingJSON(t *testing.T) {
	// The writer's indented form is MarshalIndent's, so exports and generated trees diff cleanly.
	var w jsonWriter
	w.reset(true)
	w.beginObject()
	w.rawField("id", "1152921504606847201")
	w.strField("s", "pci\\ven_8086&dev_15f3 \"q\" \x01 é")
	w.name("empty")
	w.beginArray()
	w.endArray()
	w.strings("list", []string{"a", "b"})
	w.name("obj")
	w.beginObject()
	w.boolField("t", true)
	w.rawField("n", "null")
	w.endObject()
	w.endObject()
	got := string(w.finish())
	var v any
	dec := json.NewDecoder(strings.NewReader(got))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// encoding/json sorts map keys; compare member sets through a round trip instead of order.
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	norm := func(s string) []string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		for i := range lines {
			lines[i] = strings.TrimSuffix(lines[i], ",")
		}
		sort.Strings(lines)
		return lines
	}
	if g, w := norm(got), norm(want.String()); strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("indented output differs from encoding/json:\n%s\nwant\n%s", got, want.String())
	}
}

func TestGenerateLabelsProgress(t *testing.T) {
	var calls [][2]int
	st, err := GenerateLabels(filepath.Join(t.TempDir(), "labels"), LabelOptions{Labels: 300, Compact: true,
		Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 2 {
		t.Fatalf("Progress was called %d times for 300 labels", len(calls))
	}
	for i, c := range calls {
		if c[1] != 300 || c[0] > 300 || (i > 0 && c[0] < calls[i-1][0]) {
			t.Fatalf("Progress calls %v: want done growing to total 300", calls)
		}
	}
	if last := calls[len(calls)-1]; last[0] != st.Labels {
		t.Errorf("last Progress call says %d done, wrote %d", last[0], st.Labels)
	}
}

// TestGenerateDevicesWholePC: whole PCs have 100 to 200 device nodes with unique instance
// ids, most of them known to no label, and each decodes as an offer request under the edge's
// default limits.
func TestGenerateDevicesWholePC(t *testing.T) {
	dir, _, _, _ := sharedTree(t)
	const pcs = 40
	out, st := generateDevices(t, DeviceOptions{PCs: pcs, Seed: 5, Labels: dir, WholePC: true})
	again, _ := generateDevices(t, DeviceOptions{PCs: pcs, Seed: 5, Labels: dir, WholePC: true})
	if !bytes.Equal(out, again) {
		t.Error("two generations with the same seed differ")
	}
	dec := offer.NewDecoder(offer.Limits{})
	var req offer.Request
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 4<<20)
	lines := 0
	for sc.Scan() {
		lines++
		if e := dec.Decode(sc.Bytes(), &req); e != nil {
			t.Fatalf("line %d does not decode as an offer request under the default limits: %v", lines, e)
		}
		if n := len(req.Devices); n < 100 || n > 200 {
			t.Errorf("line %d has %d devices, want 100–200", lines, n)
		}
		seen := map[string]bool{}
		for _, d := range req.Devices {
			if seen[string(d.InstanceID)] {
				t.Errorf("line %d repeats instanceId %s", lines, d.InstanceID)
			}
			seen[string(d.InstanceID)] = true
		}
	}
	if lines != pcs || st.PCs != pcs {
		t.Fatalf("%d lines, %d PCs; want %d", lines, st.PCs, pcs)
	}
	if share := float64(st.Known) / float64(st.Devices); share > 0.25 || share < 0.03 {
		t.Errorf("%.2f of whole-PC devices known to a label; want most unknown (3–25%%)", share)
	}
	t.Logf("%+v: %.0f devices and %.0f IDs per PC", st, float64(st.Devices)/pcs, float64(st.IDs)/pcs)
}
