package offer_test

// Tests of the decision procedure (spec/offers.md, steps 0–8) against real releases: each
// test writes a small label tree (fixture helpers below), builds and signs it with package
// build, opens it with index.OpenRelease and decides requests with an Engine. Every
// decision is checked twice: the offers, and the explain verdict of the candidates that
// matter.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/signing"
)

// The fixed time line of the fixtures.
var (
	buildTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)    // when releases are built
	goLive    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)    // default goLiveDate
	decideAt  = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) // default "now" of a decision
)

// Hardware IDs of the default device, most specific first.
const (
	hwA  = `ACME\DEV_0001&SUBSYS_0001&REV_01`
	hwB  = `ACME\DEV_0001&SUBSYS_0001`
	cmpA = `ACME\DEV_0001&REV_01`
	cmpB = `ACME\DEV_0001`
)

// The publisher of every fixture product (partners.json gives it every entitlement).
const seller = "27691110"

// ---------------------------------------------------------------------------------------
// Label trees.

// INF is one INF of a fixture submission and the grid rows a label publishes from it: one
// row per (OS code, hardware ID).
type INF struct {
	Name        string   // default "drv.inf" for a label's first INF
	Class       string   // default "Net"
	Date        string   // DriverDate, YYYY-MM-DD; default 2025-01-01
	Version     string   // DriverVersion; default 1.0.0.0
	Score       string   // FeatureScore ("0x10"); "" = null (0xFF)
	ExtensionID string   // ExtensionId; "" = null
	CHIDs       []string // InstallationComputerHardwareIds
	OS          []string // OS codes: "X64_VB" = WINDOWS_v100_X64_VB_FULL; full codes as they are. Default X64_VB
	HWIDs       []string // default hwA
	State       string   // the rows' distributionState; default added
}

// L is one shipping label with its own product and submission. Zero fields take defaults
// that make an automatic, live, untargeted label for hwA on VB (amd64/client).
type L struct {
	ID         string // label id; the product is "7"+ID and the submission "8"+ID
	INF               // the label's (first) INF and its rows
	More       []INF  // more INFs of the same submission, with their rows
	Cat        string // "auto" (default), "du", "auto+du", "manual"
	S10        bool   // publishToWindows10s
	CoEng      bool   // isCoEngineered
	FlightSign bool   // the product isFlightSign
	ExtSub     bool   // the submission isExtensionInf
	GoLive     time.Time
	Dest       string   // destination; default windowsUpdate
	CHIDs      []string // targeting chids (state added unless given as "guid=state")
	Audiences  []string // restrictedToAudiences
	Floor      string
	Ceiling    string
	FloorBuild int
	CeilBuild  int
	Dist       map[string]any // distribution (see flight, rollout, cancelled)
}

// flight returns a distribution flight; approved may be "".
func flight(start, approved string, channels ...string) map[string]any {
	f := map[string]any{"channels": channels, "start": start}
	if approved != "" {
		f["approved"] = approved
	}
	return f
}

// rollout returns a distribution rollout from "time=percent" stages.
func rollout(paused bool, stages ...string) map[string]any {
	var st []map[string]any
	for _, s := range stages {
		at, pct, _ := strings.Cut(s, "=")
		st = append(st, map[string]any{"at": at, "percent": json.Number(pct)})
	}
	return map[string]any{"stages": st, "paused": paused}
}

// cancelled returns a distribution cancel.
func cancelled(at string, rollback bool) map[string]any {
	return map[string]any{"at": at, "rollback": rollback, "reason": "PnP errors"}
}

// dist builds a distribution from its parts: "flight", "rollout", "cancelled" alternating
// with values.
func dist(kv ...any) map[string]any {
	d := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

// Tree is a whole fixture: labels plus the optional catalog-wide files (nil: absent).
type Tree struct {
	Labels    []L
	Audiences []map[string]any
	Blocks    []map[string]any
}

// osCode expands a short OS code: "X64_VB" is WINDOWS_v100_X64_VB_FULL, "VB" the x86 client
// code WINDOWS_v100_VB_FULL; full codes ("WINDOWS_7_X64") stay as they are.
func osCode(s string) string {
	if strings.HasPrefix(s, "WINDOWS_") {
		return s
	}
	return "WINDOWS_v100_" + s + "_FULL"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (inf INF) withDefaults(name string) INF {
	inf.Name = orDefault(inf.Name, name)
	inf.Class = orDefault(inf.Class, "Net")
	inf.Date = orDefault(inf.Date, "2025-01-01")
	inf.Version = orDefault(inf.Version, "1.0.0.0")
	inf.State = orDefault(inf.State, "added")
	if len(inf.OS) == 0 {
		inf.OS = []string{"X64_VB"}
	}
	if len(inf.HWIDs) == 0 {
		inf.HWIDs = []string{hwA}
	}
	return inf
}

// bundleOf is the bundle an OS code's rows go in.
func bundleOf(code string) string {
	switch {
	case strings.Contains(code, "ARM64"):
		return "arm64"
	case strings.Contains(code, "X64"):
		return "amd64"
	}
	return "x86"
}

// write writes the tree into dir. With perm, the labels are written in a shuffled order and
// the grid rows, CHIDs and INFs inside each label are shuffled too (the answer must not
// depend on any of it).
func (tr *Tree) write(t testing.TB, dir string, perm *rand.Rand) {
	t.Helper()
	put := func(rel string, v any) {
		t.Helper()
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("partners.json", []map[string]any{{"sellerId": seller, "name": "Acme", "coEngineering": true, "ceilingAccess": true}})
	if tr.Audiences != nil {
		put("audiences.json", tr.Audiences)
	}
	if tr.Blocks != nil {
		put("blocks.json", tr.Blocks)
	}
	order := make([]int, len(tr.Labels))
	for i := range order {
		order[i] = i
	}
	if perm != nil {
		perm.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	for _, i := range order {
		files := tr.Labels[i].files(perm)
		names := make([]string, 0, len(files))
		for rel := range files {
			names = append(names, rel)
		}
		sort.Strings(names)
		if perm != nil {
			perm.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		}
		for _, rel := range names {
			put(rel, files[rel])
		}
	}
}

// files returns the documents of a label's product, submission, metadata and label.
func (l L) files(perm *rand.Rand) map[string]any {
	pid, sid := "7"+l.ID, "8"+l.ID
	if len(l.ID) >= 19 {
		pid, sid = l.ID, l.ID // "7"+ID would not be a 64-bit id
	}
	infs := []INF{l.INF.withDefaults("drv.inf")}
	for i, m := range l.More {
		infs = append(infs, m.withDefaults(fmt.Sprintf("drv%d.inf", i+2)))
	}
	// driverMetadata.json: bundle -> INF -> OS code -> pnp; an INF with OS codes of several
	// architectures is in several bundles.
	bundles := map[string]map[string]any{}
	var rows []map[string]any
	for _, inf := range infs {
		var ext any
		if inf.ExtensionID != "" {
			ext = inf.ExtensionID
		}
		var score any
		if inf.Score != "" {
			score = inf.Score
		}
		for _, os := range inf.OS {
			code := osCode(os)
			bundle := bundleOf(code)
			if bundles[bundle] == nil {
				bundles[bundle] = map[string]any{"Locales": []string{"English"}, "InfInfoMap": map[string]any{}}
			}
			infMap := bundles[bundle]["InfInfoMap"].(map[string]any)
			if infMap[inf.Name] == nil {
				infMap[inf.Name] = map[string]any{
					"InfClass": inf.Class, "DriverVersion": inf.Version, "DriverDate": inf.Date + "T00:00:00", "ExtensionId": ext,
					"Provider": "Acme", "ClassGuid": "{4d36e972-e325-11ce-bfc1-08002be10318}",
					"InstallationComputerHardwareIds": orEmpty(inf.CHIDs), "OSPnPInfoMap": map[string]any{},
				}
			}
			grid := infMap[inf.Name].(map[string]any)["OSPnPInfoMap"].(map[string]any)
			if grid[code] == nil {
				grid[code] = map[string]any{}
			}
			for _, h := range inf.HWIDs {
				grid[code].(map[string]any)[strings.ToLower(h)] = map[string]any{"Manufacturer": "Acme", "DeviceDescription": "device " + h, "FeatureScore": score}
				rows = append(rows, map[string]any{"bundleId": bundle, "infId": inf.Name, "operatingSystemCode": code,
					"pnpString": strings.ToLower(h), "distributionState": inf.State})
			}
		}
	}
	var chids []map[string]any
	for _, c := range l.CHIDs {
		id, state, ok := strings.Cut(c, "=")
		if !ok {
			state = "added"
		}
		chids = append(chids, map[string]any{"chid": id, "distributionState": state})
	}
	if perm != nil {
		perm.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		perm.Shuffle(len(chids), func(i, j int) { chids[i], chids[j] = chids[j], chids[i] })
	}
	auto, du, manual := false, false, false
	switch orDefault(l.Cat, "auto") {
	case "auto":
		auto = true
	case "du":
		du = true
	case "auto+du":
		auto, du = true, true
	case "manual":
		manual = true
	default:
		panic("fixture: category " + l.Cat)
	}
	gl := l.GoLive
	if gl.IsZero() {
		gl = goLive
	}
	targeting := map[string]any{"hardwareIds": rows, "chids": orEmptyMaps(chids), "restrictedToAudiences": orEmpty(l.Audiences)}
	if l.Floor != "" || l.Ceiling != "" {
		isp := map[string]any{}
		if l.Floor != "" {
			isp["flooring"] = l.Floor
		}
		if l.Ceiling != "" {
			isp["ceiling"] = l.Ceiling
		}
		targeting["inServicePublishInfo"] = isp
	}
	if l.FloorBuild != 0 || l.CeilBuild != 0 {
		ce := map[string]any{}
		if l.FloorBuild != 0 {
			ce["flooringBuildNumber"] = l.FloorBuild
		}
		if l.CeilBuild != 0 {
			ce["ceilingBuildNumber"] = l.CeilBuild
		}
		targeting["coEngDriverPublishInfo"] = ce
	}
	label := map[string]any{
		"id": json.Number(l.ID), "productId": json.Number(pid), "submissionId": json.Number(sid),
		"name": "label " + l.ID, "destination": orDefault(l.Dest, "windowsUpdate"),
		"targeting": targeting,
		"publishingSpecifications": map[string]any{
			"goLiveDate": gl.Format(time.RFC3339), "isAutoInstallDuringOSUpgrade": du, "isAutoInstallOnApplicableSystems": auto,
			"manualAcquisition": manual, "publishToWindows10s": l.S10,
			"additionalInfoForMsApproval": map[string]any{"isCoEngineered": l.CoEng, "hasUiSoftware": false},
		},
	}
	if l.Dist != nil {
		label["distribution"] = l.Dist
	}
	base := "products/" + pid
	sub := base + "/submissions/" + sid
	return map[string]any{
		base + "/product.json": map[string]any{"id": json.Number(pid), "productName": "product " + pid, "isTestSign": false,
			"isFlightSign": l.FlightSign, "requestedSignatures": []string{}, "testHarness": "hlk", "ownerSellerId": seller},
		sub + "/submission.json": map[string]any{"id": json.Number(sid), "productId": json.Number(pid), "name": "submission " + sid,
			"type": "initial", "isExtensionInf": l.ExtSub,
			"package": map[string]any{"url": "https://cdn.example.com/" + sid + ".cab", "sha256": strings.Repeat("ab", 32), "size": 1000}},
		sub + "/driverMetadata.json":              map[string]any{"BundleInfoMap": bundles},
		sub + "/shippingLabels/" + l.ID + ".json": label,
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMaps(s []map[string]any) []map[string]any {
	if s == nil {
		return []map[string]any{}
	}
	return s
}

// ---------------------------------------------------------------------------------------
// Releases.

// scratchDir is a temporary directory removed when the test ends: in /dev/shm when there is
// one, because a build fsyncs every file it publishes, and on a busy disk the fsyncs of the
// hundreds of fixture releases cost more than everything else the tests do.
func scratchDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "driveway-offer-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// buildOpts adjusts a build (shard counts).
type buildOpts struct {
	hwidShards, labelShards int
}

// buildDir builds the label tree in dir (zero shard counts: the build defaults) and opens
// the release as an Engine, with a block cache.
func buildDir(t testing.TB, dir string, o buildOpts) *offer.Engine {
	t.Helper()
	ctx := context.Background()
	priv, pub, err := signing.GenerateKey(signing.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := scratchDir(t)
	keyFile := filepath.Join(tmp, "k.key")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := signing.LoadSigner(ctx, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signing.ParseVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "catalog")
	rep, err := build.Build(ctx, build.Options{Labels: dir, Out: out, Signers: []*signing.Signer{s}, Now: buildTime,
		HWIDShards: o.hwidShards, LabelShards: o.labelShards, Workers: 1})
	if err != nil {
		var msgs []string
		if rep != nil {
			for _, p := range rep.Problems {
				msgs = append(msgs, fmt.Sprint(p))
			}
		}
		t.Fatalf("build: %v\n%s", err, strings.Join(msgs, "\n"))
	}
	// The cases decide at times months around buildTime, given to Decide; expiry is the
	// edge's concern (serve's tests), so the release opens without a clock.
	rel, err := index.OpenRelease(out, &index.VerifyOptions{Keys: []*signing.Verifier{v}, IgnoreExpiry: true, Cache: index.NewCacheBudget(64 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rel.Close() })
	src, err := offer.SourceOf(rel)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := offer.NewEngine(src)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// release writes and builds a fixture tree.
func release(t testing.TB, tr Tree) *offer.Engine {
	t.Helper()
	dir := scratchDir(t)
	tr.write(t, dir, nil)
	return buildDir(t, dir, buildOpts{hwidShards: 1, labelShards: 1}) // fewer files to fsync; shard counts: TestPropertyTreeOrderAndShards
}

// ---------------------------------------------------------------------------------------
// Requests.

// Q is an offer request; zero fields are left out of the JSON (the decoder's defaults).
type Q struct {
	DeviceID   string            `json:"deviceId"`
	OS         QOS               `json:"os"`
	Scan       string            `json:"scan,omitempty"`
	Target     int               `json:"targetBuild,omitempty"`
	CHIDs      []*string         `json:"chids,omitempty"`
	SMBIOS     map[string]string `json:"smbios,omitempty"`
	TargetRing string            `json:"targetRing,omitempty"`
	Audiences  []string          `json:"audiences,omitempty"`
	Insider    string            `json:"insider,omitempty"`
	Devices    []D               `json:"devices"`
}

// QOS is the request's os object.
type QOS struct {
	Build    int    `json:"build"`
	Revision int    `json:"revision,omitempty"`
	Arch     string `json:"arch,omitempty"`
	SKU      string `json:"sku,omitempty"`
	SMode    bool   `json:"sMode,omitempty"`
}

// D is one device of a request.
type D struct {
	InstanceID string   `json:"instanceId"`
	HW         []string `json:"hardwareIds"`
	Compat     []string `json:"compatibleIds,omitempty"`
	Driver     *Drv     `json:"driver,omitempty"`
	Ext        []Ext    `json:"extensions,omitempty"`
}

// Drv is an installed driver.
type Drv struct {
	Date    string `json:"date"`
	Version string `json:"version"`
	Rank    string `json:"rank,omitempty"`
	Generic bool   `json:"generic,omitempty"`
}

// Ext is an installed extension INF.
type Ext struct {
	ID      string `json:"extensionId"`
	Date    string `json:"date"`
	Version string `json:"version"`
}

// dev is the default device: hardware IDs hwA, hwB; compatible IDs cmpA, cmpB; no driver.
func dev() D {
	return D{InstanceID: `ACME\DEV_0001\1`, HW: []string{hwA, hwB}, Compat: []string{cmpA, cmpB}}
}

// withDriver is dev() with an installed driver.
func withDriver(date, version, rank string) D {
	d := dev()
	d.Driver = &Drv{Date: date, Version: version, Rank: rank}
	return d
}

// q returns a request for build with the given devices (default: dev()).
func q(build int, devices ...D) Q {
	if len(devices) == 0 {
		devices = []D{dev()}
	}
	return Q{DeviceID: "pc-1", OS: QOS{Build: build}, Devices: devices}
}

func chids(ids ...string) []*string {
	out := make([]*string, len(ids))
	for i := range ids {
		if ids[i] != "" {
			out[i] = &ids[i]
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------
// Responses.

// Response is an offer response (spec/offers.md), in AppendResponse's field order: the tests
// decode answers into it, and the stdlib baseline of BenchmarkResponse encodes from it.
type Response struct {
	Release Release   `json:"release"`
	Offers  []Offer   `json:"offers"`
	Explain []Explain `json:"explain,omitempty"`
}

// Release identifies the release that answered.
type Release struct {
	Sequence uint64 `json:"sequence"`
	ID       string `json:"id"`
}

// Offer is one offer of a response.
type Offer struct {
	InstanceID    string   `json:"instanceId"`
	Kind          string   `json:"kind"`
	Category      string   `json:"category"`
	LabelID       string   `json:"labelId"`
	ProductID     string   `json:"productId"`
	SubmissionID  string   `json:"submissionId"`
	INF           string   `json:"inf"`
	Class         string   `json:"class"`
	HardwareID    string   `json:"hardwareId"`
	Rank          string   `json:"rank"`
	DriverDate    string   `json:"driverDate"`
	DriverVersion string   `json:"driverVersion"`
	Package       Package  `json:"package"`
	Rollout       *Rollout `json:"rollout,omitempty"`
}

// Package is where an offer's driver package is.
type Package struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	Size   uint64 `json:"size"`
}

// Rollout is an offer's gradual-rollout state, when it is throttled.
type Rollout struct {
	Bucket  int     `json:"bucket"`
	Percent float64 `json:"percent"`
}

// Explain is the explain entry of one device.
type Explain struct {
	InstanceID string      `json:"instanceId"`
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one explained candidate row.
type Candidate struct {
	LabelID    string `json:"labelId"`
	HardwareID string `json:"hardwareId"`
	Row        string `json:"row"`
	Rank       string `json:"rank"`
	Verdict    string `json:"verdict"`
	Detail     string `json:"detail"`
}

func (c Candidate) String() string {
	return fmt.Sprintf("%s %s [%s] rank %s: %s (%s)", c.LabelID, c.HardwareID, c.Row, c.Rank, c.Verdict, c.Detail)
}

var verdicts = map[string]bool{"offered": true, "not-live": true, "not-yet": true, "cancelled": true, "os-family": true,
	"below-floor": true, "above-ceiling": true, "smode": true, "audience": true, "flight": true, "flight-ended": true,
	"chid": true, "chid-less-specific": true, "blocked": true, "paused": true, "rollout": true, "category": true,
	"outranked": true, "not-better": true}

var kinds = map[string]bool{"automatic": true, "optional": true, "dynamic": true, "extension": true, "rollback": true}

// decided is a request decided by an engine: the response with explain, and its raw bytes
// with and without.
type decided struct {
	Response
	plain, explained []byte
}

// decide decodes a request, decides it at now without and with explain, and checks what
// must hold of every answer: valid JSON, the same offers with and without explain, closed
// lists of kinds and verdicts, and one "offered" candidate per offer.
func decide(t testing.TB, eng *offer.Engine, q Q, now time.Time) decided {
	t.Helper()
	body, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	return decideBody(t, eng, body, now)
}

func decideBody(t testing.TB, eng *offer.Engine, body []byte, now time.Time) decided {
	t.Helper()
	var req offer.Request
	if e := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); e != nil {
		t.Fatalf("decode %s: %v", body, e)
	}
	var res offer.Result
	eng.Decide(&req, now, false, &res)
	plain := offer.AppendResponse(nil, &req, &res, eng.OS())
	eng.Decide(&req, now, true, &res)
	explained := offer.AppendResponse(nil, &req, &res, eng.OS())
	d := decided{plain: plain, explained: explained}
	for _, b := range [][]byte{plain, explained} {
		if !json.Valid(b) {
			t.Fatalf("response is not valid JSON: %s", b)
		}
	}
	if err := json.Unmarshal(explained, &d.Response); err != nil {
		t.Fatal(err)
	}
	var p Response
	if err := json.Unmarshal(plain, &p); err != nil {
		t.Fatal(err)
	}
	if p.Explain != nil {
		t.Errorf("a response without explain has an explain array")
	}
	if !reflect.DeepEqual(p.Offers, d.Offers) {
		t.Errorf("explain changes the offers:\nwithout: %s\nwith:    %s", offerList(p.Offers), offerList(d.Offers))
	}
	if len(d.Explain) != len(req.Devices) {
		t.Errorf("explain has %d devices, the request %d", len(d.Explain), len(req.Devices))
	}
	offered := 0
	for _, e := range d.Explain {
		for _, c := range e.Candidates {
			if !verdicts[c.Verdict] {
				t.Errorf("verdict %q is not in the closed list: %v", c.Verdict, c)
			}
			if c.Detail == "" {
				t.Errorf("candidate without detail: %v", c)
			}
			if c.Verdict == "offered" {
				offered++
				found := false
				for _, o := range d.Offers {
					if o.InstanceID == e.InstanceID && o.LabelID == c.LabelID && o.HardwareID == c.HardwareID && o.Rank == c.Rank {
						found = true
					}
				}
				if !found {
					t.Errorf("candidate %v is offered but no offer matches", c)
				}
			}
		}
	}
	for _, o := range d.Offers {
		if !kinds[o.Kind] {
			t.Errorf("offer kind %q is not in the closed list", o.Kind)
		}
	}
	if offered != len(d.Offers) {
		t.Errorf("%d offers, %d candidates offered:\n%s", len(d.Offers), offered, d.explainText())
	}
	return d
}

// offerList prints offers as "label:kind" (with "#device" when not the first device).
func offerList(offers []Offer) string {
	var s []string
	for _, o := range offers {
		s = append(s, o.LabelID+":"+o.Kind)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// offers returns the offers as "label:kind", prefixed "N/" for device N > 0.
func (d decided) offers() []string {
	out := []string{}
	for _, o := range d.Offers {
		s := o.LabelID + ":" + o.Kind
		for i, e := range d.Explain {
			if e.InstanceID == o.InstanceID && i > 0 {
				s = strconv.Itoa(i) + "/" + s
				break
			}
		}
		out = append(out, s)
	}
	return out
}

func (d decided) explainText() string {
	var b strings.Builder
	for i, e := range d.Explain {
		fmt.Fprintf(&b, "  device %d %s\n", i, e.InstanceID)
		for _, c := range e.Candidates {
			fmt.Fprintf(&b, "    %v\n", c)
		}
	}
	return b.String()
}

// candidates returns the candidates a key names: "label" or "label token…", every token
// found in the candidate's hardware ID and row ("3001 RS1", "3001 ACME\\DEV_0001"); a
// leading "N/" names device N.
func (d decided) candidates(key string) []Candidate {
	devIdx := 0
	if i := strings.Index(key, "/"); i > 0 && i < 3 {
		devIdx, _ = strconv.Atoi(key[:i])
		key = key[i+1:]
	}
	f := strings.Fields(key)
	if devIdx >= len(d.Explain) {
		return nil
	}
	var out []Candidate
	for _, c := range d.Explain[devIdx].Candidates {
		if c.LabelID != f[0] {
			continue
		}
		ok := true
		for _, tok := range f[1:] {
			if !strings.Contains(c.HardwareID+" "+c.Row+" rank="+c.Rank, tok) {
				ok = false
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// check compares offers and verdicts with what a case wants. want maps a candidate key
// (see candidates) to "verdict" or "verdict: detail substring"; every candidate the key
// names must have it.
func (d decided) check(t testing.TB, offers []string, want map[string]string) {
	t.Helper()
	if offers == nil {
		offers = []string{}
	}
	if got := d.offers(); !reflect.DeepEqual(got, offers) {
		t.Errorf("offers = %v; want %v\n%s", got, offers, d.explainText())
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		verdict, detail, _ := strings.Cut(want[k], ": ")
		cs := d.candidates(k)
		if len(cs) == 0 {
			t.Errorf("no candidate %q\n%s", k, d.explainText())
			continue
		}
		for _, c := range cs {
			if c.Verdict != verdict || !strings.Contains(c.Detail, detail) {
				t.Errorf("candidate %q: %s (%s); want %s (%s)\n%s", k, c.Verdict, c.Detail, verdict, detail, d.explainText())
			}
		}
	}
}

// ---------------------------------------------------------------------------------------
// The cases.

// tcase is one table case: a tree, a request and a time (zero: decideAt), with the offers
// and verdicts it must give.
type tcase struct {
	name   string
	tree   Tree
	req    Q
	now    time.Time
	offers []string
	want   map[string]string
}

func runCases(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eng := release(t, tc.tree)
			now := tc.now
			if now.IsZero() {
				now = decideAt
			}
			decide(t, eng, tc.req, now).check(t, tc.offers, tc.want)
		})
	}
}

func labels(ls ...L) Tree { return Tree{Labels: ls} }

// day is an RFC 3339 time at midnight UTC.
func day(d string) string { return d + "T00:00:00Z" }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// gid is a synthetic GUID (CHIDs, audiences).
func gid(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// The built-in audience of a catalog without audiences.json.
const testRegistryKey = "00000000-0000-0000-0000-000000000001"

func (q Q) with(f func(*Q)) Q {
	f(&q)
	return q
}

func onArch(build int, arch, sku string) Q {
	r := q(build)
	r.OS.Arch, r.OS.SKU = arch, sku
	return r
}

func insider(build int, channel string) Q {
	r := q(build)
	r.Insider = channel
	return r
}

func scan(build int, kind string, devices ...D) Q {
	r := q(build, devices...)
	r.Scan = kind
	return r
}

func device(id string) Q {
	r := q(19045)
	r.DeviceID = id
	return r
}

// TestVerdicts decides one case per verdict of the closed list (and the edges around it),
// checking the offers and the verdict and detail of the candidates concerned.
func TestVerdicts(t *testing.T) {
	none := []string{}
	auto := []string{"3001:automatic"}
	coEngFlight := dist("flight", flight(day("2026-11-01"), "", "Dev"))
	cases := []tcase{
		{name: "offered", tree: labels(L{ID: "3001"}), req: q(19045), offers: auto,
			want: map[string]string{"3001": "offered: offered as automatic"}},

		// 2.1 live
		{name: "not-live/pendingAdd", tree: labels(L{ID: "3001", INF: INF{State: "pendingAdd"}}), req: q(19045), offers: none,
			want: map[string]string{"3001": "not-live: row is pendingAdd"}},
		{name: "not-live/pendingRemove next to a live row", tree: labels(
			L{ID: "3001", INF: INF{HWIDs: []string{hwA}, State: "pendingRemove"}, More: []INF{{HWIDs: []string{hwB}}}}),
			req: q(19045), offers: auto,
			want: map[string]string{"3001 rank=00FF0000": "not-live: row is pendingRemove", "3001 rank=00FF0001": "offered"}},

		// 2.2 go-live and cancel
		{name: "not-yet", tree: labels(L{ID: "3001", GoLive: at(day("2026-12-01"))}), req: q(19045), offers: none,
			want: map[string]string{"3001": "not-yet: goes live 2026-12-01T00:00:00Z"}},
		{name: "not-yet/at go-live", tree: labels(L{ID: "3001", GoLive: at(day("2026-12-01"))}), req: q(19045),
			now: at(day("2026-12-01")), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "cancelled/at the cancel", tree: labels(L{ID: "3001", Dist: dist("cancelled", cancelled("2026-11-20T08:00:00Z", false))}),
			req: q(19045), now: at("2026-11-20T08:00:00Z"), offers: none,
			want: map[string]string{"3001": "cancelled: cancelled 2026-11-20T08:00:00Z: PnP errors"}},
		{name: "cancelled/just before", tree: labels(L{ID: "3001", Dist: dist("cancelled", cancelled("2026-11-20T08:00:00Z", false))}),
			req: q(19045), now: at("2026-11-20T07:59:59Z"), offers: auto, want: map[string]string{"3001": "offered"}},

		// 2.3 OS family and offered forward
		{name: "os-family/arm64 device", tree: labels(L{ID: "3001"}), req: onArch(19045, "arm64", ""), offers: none,
			want: map[string]string{"3001": "os-family: row is for amd64/client VB, device is arm64/client VB"}},
		{name: "os-family/server device", tree: labels(L{ID: "3001"}), req: onArch(20348, "amd64", "server"), offers: none,
			want: map[string]string{"3001": "os-family: row is for amd64/client VB, device is amd64/server FE"}},
		{name: "os-family/x86 row on amd64", tree: labels(L{ID: "3001", INF: INF{OS: []string{"VB"}}}), req: q(19045), offers: none,
			want: map[string]string{"3001": "os-family: row is for x86/client VB"}},
		{name: "below-floor/row certified above the device", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_NI"}}}),
			req: q(19045), offers: none, want: map[string]string{"3001": "below-floor: row certified from NI > VB"}},

		// 2.4 floors and ceilings
		{name: "below-floor/label floor", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_RS1"}}, Floor: "NI"}),
			req: q(19045), offers: none, want: map[string]string{"3001": "below-floor: floor NI > VB"}},
		{name: "below-floor/label floor reached", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_RS1"}}, Floor: "NI"}),
			req: q(22621), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "below-floor/build floor", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_GE"}}, CoEng: true, FloorBuild: 26200, Dist: coEngFlight}),
			req: insider(26100, "Dev"), offers: none, want: map[string]string{"3001": "below-floor: build floor 26200 > 26100"}},
		{name: "below-floor/build floor reached", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_GE"}}, CoEng: true, FloorBuild: 26200, Dist: coEngFlight}),
			req: insider(26200, "Dev"), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "above-ceiling/release", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_VB", "X64_CO"}}, Ceiling: "CO"}),
			req: q(22621), offers: none, want: map[string]string{"3001": "above-ceiling: ceiling CO < NI"}},
		{name: "above-ceiling/at the ceiling", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_VB", "X64_CO"}}, Ceiling: "CO"}),
			req: q(22000), offers: auto},
		{name: "above-ceiling/build", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_GE"}}, CoEng: true, CeilBuild: 26300, Dist: coEngFlight}),
			req: insider(26400, "Dev"), offers: none, want: map[string]string{"3001": "above-ceiling: build ceiling 26300 < 26400"}},
		{name: "above-ceiling/build reached", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_GE"}}, CoEng: true, CeilBuild: 26300, Dist: coEngFlight}),
			req: insider(26300, "Dev"), offers: auto, want: map[string]string{"3001": "offered"}},

		// 2.5 S mode
		{name: "smode", tree: labels(L{ID: "3001"}), req: q(19045).with(func(q *Q) { q.OS.SMode = true }), offers: none,
			want: map[string]string{"3001": "smode: S mode device"}},
		{name: "smode/published to 10 S", tree: labels(L{ID: "3001", S10: true}), req: q(19045).with(func(q *Q) { q.OS.SMode = true }),
			offers: auto, want: map[string]string{"3001": "offered"}},

		// 2.6 audiences
		{name: "audience/targetRing match", tree: labels(L{ID: "3001", Audiences: []string{testRegistryKey}}),
			req: q(19045).with(func(q *Q) { q.TargetRing = "Drivers" }), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "audience/no match", tree: labels(L{ID: "3001", Audiences: []string{testRegistryKey}}),
			req: q(19045).with(func(q *Q) { q.TargetRing = "Other"; q.Audiences = []string{"Drivers"} }), offers: none,
			want: map[string]string{"3001": "audience: restricted to audiences the device is not in"}},
		{name: "audience/name match", tree: Tree{Labels: []L{{ID: "3001", Audiences: []string{gid(77)}}}, Audiences: coDev},
			req: q(19045).with(func(q *Q) { q.Audiences = []string{"Other", "CoDev"} }), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "audience/name mismatch", tree: Tree{Labels: []L{{ID: "3001", Audiences: []string{gid(77)}}}, Audiences: coDev},
			req: q(19045).with(func(q *Q) { q.Audiences = []string{"codev"}; q.TargetRing = "Drivers" }), offers: none,
			want: map[string]string{"3001": "audience"}},

		// 2.7 flights
		{name: "flight/unapproved, not an insider", tree: labels(L{ID: "3001", Dist: dist("flight", flight(day("2026-11-01"), "", "Dev", "Beta"))}),
			req: q(19045), offers: none, want: map[string]string{"3001": "flight: in flight to Dev, Beta; device insider channel: none"}},
		{name: "flight/unapproved, other channel", tree: labels(L{ID: "3001", Dist: dist("flight", flight(day("2026-11-01"), "", "Dev"))}),
			req: insider(19045, "Canary"), offers: none, want: map[string]string{"3001": "flight: in flight to Dev; device insider channel: Canary"}},
		{name: "flight/unapproved, in the channel", tree: labels(L{ID: "3001", Dist: dist("flight", flight(day("2026-11-01"), "", "Dev", "Beta"))}),
			req: insider(19045, "Beta"), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "flight/approval in the future", tree: labels(L{ID: "3001", Dist: dist("flight", flight(day("2026-11-01"), day("2026-11-22"), "Dev"))}),
			req: q(19045), offers: none, want: map[string]string{"3001": "flight"}},
		{name: "flight/approved since the build", tree: labels(L{ID: "3001", Dist: dist("flight", flight(day("2026-11-01"), day("2026-11-21"), "Dev"))}),
			req: q(19045), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "flight/approved before the build", tree: labels(L{ID: "3001", Dist: dist("flight", flight(day("2025-04-01"), day("2025-05-01"), "Dev"))}),
			req: q(19045), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "flight/co-engineered stays gated", tree: labels(L{ID: "3001", CoEng: true, Dist: dist("flight", flight(day("2026-11-01"), day("2026-11-02"), "Dev"))}),
			req: q(19045), offers: none, want: map[string]string{"3001": "flight: in flight to Dev; device insider channel: none"}},
		{name: "flight/co-engineered, insider", tree: labels(L{ID: "3001", CoEng: true, Dist: dist("flight", flight(day("2026-11-01"), day("2026-11-02"), "Dev"))}),
			req: insider(19045, "Dev"), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "flight/co-engineered without a flight", tree: labels(L{ID: "3001", CoEng: true}),
			req: insider(19045, "Dev"), offers: none, want: map[string]string{"3001": "flight: in flight to none; device insider channel: Dev"}},
		{name: "flight/flight-signed stays gated", tree: labels(L{ID: "3001", FlightSign: true, Dist: dist("flight", flight(day("2025-04-01"), day("2025-05-01"), "Beta"))}),
			req: insider(19045, "Dev"), offers: none, want: map[string]string{"3001": "flight: in flight to Beta; device insider channel: Dev"}},
		{name: "flight/flight-signed, insider", tree: labels(L{ID: "3001", FlightSign: true, Dist: dist("flight", flight(day("2025-04-01"), day("2025-05-01"), "Beta"))}),
			req: insider(19045, "Beta"), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "flight-ended", tree: labels(L{ID: "3001", CoEng: true, Dist: dist("flight", flight(day("2026-09-01"), "", "Dev"))}),
			req: insider(19045, "Dev"), offers: none, want: map[string]string{"3001": "flight-ended: co-engineered flight ended 2026-10-31T00:00:00Z"}},
		{name: "flight-ended/a second before", tree: labels(L{ID: "3001", CoEng: true, Dist: dist("flight", flight(day("2026-09-01"), "", "Dev"))}),
			req: insider(19045, "Dev"), now: at("2026-10-30T23:59:59Z"), offers: auto, want: map[string]string{"3001": "offered"}},

		// 2.8 CHIDs
		{name: "chid/label, no match", tree: labels(L{ID: "3001", CHIDs: []string{gid(1)}}),
			req: q(19045).with(func(q *Q) { q.CHIDs = chids(gid(2), "", gid(3)) }), offers: none,
			want: map[string]string{"3001": "chid: no CHID of the device is among the label's CHIDs"}},
		{name: "chid/label, no CHIDs in the request", tree: labels(L{ID: "3001", CHIDs: []string{gid(1)}}),
			req: q(19045), offers: none, want: map[string]string{"3001": "chid: no CHID of the device is among the label's CHIDs"}},
		{name: "chid/label, match on HardwareID-14", tree: labels(L{ID: "3001", CHIDs: []string{gid(9), gid(1)}}),
			req:    q(19045).with(func(q *Q) { q.CHIDs = chids(gid(2), "", "", "", "", "", "", "", "", "", "", "", "", "", gid(1)) }),
			offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "chid/label CHID not live", tree: labels(L{ID: "3001", CHIDs: []string{gid(1) + "=pendingAdd", gid(5)}}),
			req: q(19045).with(func(q *Q) { q.CHIDs = chids(gid(1)) }), offers: none, want: map[string]string{"3001": "chid: label"}},
		{name: "chid/INF, no match", tree: labels(L{ID: "3001", INF: INF{CHIDs: []string{gid(1)}}}),
			req: q(19045).with(func(q *Q) { q.CHIDs = chids(gid(2)) }), offers: none,
			want: map[string]string{"3001": "chid: no CHID of the device is among the INF's CHIDs"}},
		{name: "chid/INF, match", tree: labels(L{ID: "3001", INF: INF{CHIDs: []string{gid(1)}}}),
			req: q(19045).with(func(q *Q) { q.CHIDs = chids(gid(2), gid(1)) }), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "chid/label matches, INF does not", tree: labels(L{ID: "3001", CHIDs: []string{gid(2)}, INF: INF{CHIDs: []string{gid(1)}}}),
			req: q(19045).with(func(q *Q) { q.CHIDs = chids(gid(2)) }), offers: none, want: map[string]string{"3001": "chid: INF"}},
		{name: "chid/from smbios", tree: labels(L{ID: "3001", CHIDs: []string{smbiosCHID(5)}}),
			req: q(19045).with(func(q *Q) { q.SMBIOS = smbios }), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "chid/from smbios, other model", tree: labels(L{ID: "3001", CHIDs: []string{smbiosCHID(5)}}),
			req: q(19045).with(func(q *Q) { q.SMBIOS = otherModel() }), offers: none, want: map[string]string{"3001": "chid"}},
		{name: "chid/chids win over smbios", tree: labels(L{ID: "3001", CHIDs: []string{smbiosCHID(5)}}),
			req: q(19045).with(func(q *Q) { q.SMBIOS = smbios; q.CHIDs = chids(gid(1)) }), offers: none, want: map[string]string{"3001": "chid: label"}},
		{name: "chid/chids win over smbios, match", tree: labels(L{ID: "3001", CHIDs: []string{gid(1)}}),
			req: q(19045).with(func(q *Q) { q.SMBIOS = smbios; q.CHIDs = chids(gid(1)) }), offers: auto, want: map[string]string{"3001": "offered"}},

		// CHID levels below 16299: HardwareID-3 is more specific than HardwareID-9.
		{name: "chid-less-specific", tree: labels(chidLabel("3001", gid(3), "2025-01-01"), chidLabel("3002", gid(9), "2025-06-01")),
			req: q(15063).with(twoLevels), offers: []string{"3001:automatic"},
			want: map[string]string{"3001": "offered", "3002": "chid-less-specific: matches on HardwareID-9; another label matches the more specific HardwareID-3"}},
		{name: "chid-less-specific/best level of the label", tree: labels(chidLabel("3001", gid(3), "2025-01-01"), chidLabel("3002", gid(9), "2025-06-01", gid(3))),
			req: q(15063).with(twoLevels), offers: []string{"3002:automatic"},
			want: map[string]string{"3001": "outranked: outranked by 3002", "3002": "offered"}},
		{name: "chid-less-specific/16299 ranks, not levels", tree: labels(chidLabel("3001", gid(3), "2025-01-01"), chidLabel("3002", gid(9), "2025-06-01")),
			req: q(16299).with(twoLevels), offers: []string{"3002:automatic"},
			want: map[string]string{"3001": "outranked: outranked by 3002", "3002": "offered"}},
		{name: "chid-less-specific/untargeted labels compete as usual", tree: labels(chidLabel("3001", gid(3), "2025-01-01"), chidLabel("3002", gid(9), "2025-06-01"),
			L{ID: "3003", INF: INF{OS: []string{"X64_RS1"}, Date: "2025-09-01"}}),
			req: q(15063).with(twoLevels), offers: []string{"3003:automatic"},
			want: map[string]string{"3001": "outranked: outranked by 3003", "3002": "chid-less-specific", "3003": "offered"}},
		{name: "chid-less-specific/only survivors count", tree: labels(chidLabel("3001", gid(3), "2025-01-01", "", "paused"), chidLabel("3002", gid(9), "2025-06-01")),
			req: q(15063).with(twoLevels), offers: []string{"3002:automatic"},
			want: map[string]string{"3001": "paused", "3002": "offered"}},

		// The first failing check gives the verdict.
		{name: "first failing check/not-yet before os-family", tree: labels(L{ID: "3001", GoLive: at(day("2026-12-01"))}), req: onArch(19045, "arm64", ""),
			offers: nil, want: map[string]string{"3001": "not-yet"}},
		{name: "first failing check/smode before audience", tree: labels(L{ID: "3001", Audiences: []string{testRegistryKey}}),
			req: q(19045).with(func(q *Q) { q.OS.SMode = true }), offers: nil, want: map[string]string{"3001": "smode"}},
		{name: "first failing check/flight before chid", tree: labels(L{ID: "3001", CHIDs: []string{gid(1)}, Dist: dist("flight", flight(day("2026-11-01"), "", "Dev"))}),
			req: q(19045), offers: nil, want: map[string]string{"3001": "flight"}},
		{name: "first failing check/blocked before rollout", tree: Tree{Labels: []L{{ID: "42", Dist: dist("rollout", rollout(true, day("2026-11-01")+"=1"))}},
			Blocks: []map[string]any{{"id": "5", "labels": []string{"42"}}}}, req: q(19045), offers: nil, want: map[string]string{"42": "blocked"}},
		{name: "first failing check/below-floor before above-ceiling", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_RS1", "X64_RS5"}}, Floor: "RS5", Ceiling: "RS5"}),
			req: q(17134), offers: nil, want: map[string]string{"3001 RS1": "below-floor: floor RS5 > RS4", "3001 RS5": "below-floor: row certified from RS5 > RS4"}},

		// 2.9 blocks
		{name: "blocked/by label", tree: Tree{Labels: []L{{ID: "3001"}, {ID: "3002", INF: INF{HWIDs: []string{hwB}}}},
			Blocks: []map[string]any{{"id": "41235678", "reason": "r", "labels": []string{"3001"}}}},
			req: q(19045), offers: []string{"3002:automatic"},
			want: map[string]string{"3001": "blocked: blocked by 41235678", "3002": "offered"}},
		{name: "blocked/by hardware ID", tree: Tree{Labels: []L{{ID: "3001"}},
			Blocks: []map[string]any{{"id": "7", "labels": []string{"3001"}, "hardwareIds": []string{`acme\dev_0001&subsys_0001`}}}},
			req: q(19045), offers: none, want: map[string]string{"3001": "blocked: blocked by 7"}},
		{name: "blocked/hardware ID not on the device", tree: Tree{Labels: []L{{ID: "3001"}},
			Blocks: []map[string]any{{"id": "7", "labels": []string{"3001"}, "hardwareIds": []string{`ACME\DEV_0002`}}}},
			req: q(19045), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "blocked/by CHID, every label", tree: Tree{Labels: []L{{ID: "3001"}, {ID: "3002", INF: INF{HWIDs: []string{hwB}}}},
			Blocks: []map[string]any{{"id": "8", "chids": []string{gid(3)}}}},
			req: q(19045).with(func(q *Q) { q.CHIDs = chids(gid(1), gid(2), gid(3)) }), offers: none,
			want: map[string]string{"3001": "blocked: blocked by 8", "3002": "blocked: blocked by 8"}},
		{name: "blocked/CHID not on the device", tree: Tree{Labels: []L{{ID: "3001"}}, Blocks: []map[string]any{{"id": "8", "chids": []string{gid(3)}}}},
			req: q(19045).with(func(q *Q) { q.CHIDs = chids(gid(1)) }), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "blocked/build range, inside", tree: Tree{Labels: []L{{ID: "3001"}}, Blocks: []map[string]any{{"id": "9", "minBuild": 22000, "maxBuild": 22631}}},
			req: q(22631), offers: none, want: map[string]string{"3001": "blocked: blocked by 9"}},
		{name: "blocked/build range, below", tree: Tree{Labels: []L{{ID: "3001"}}, Blocks: []map[string]any{{"id": "9", "minBuild": 22000, "maxBuild": 22631}}},
			req: q(19045), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "blocked/build range, above", tree: Tree{Labels: []L{{ID: "3001"}}, Blocks: []map[string]any{{"id": "9", "minBuild": 22000, "maxBuild": 22631}}},
			req: q(26100), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "blocked/conditions are ANDed", tree: Tree{Labels: []L{{ID: "3001"}},
			Blocks: []map[string]any{{"id": "10", "labels": []string{"3001"}, "hardwareIds": []string{hwA}, "chids": []string{gid(3)}, "minBuild": 22000}}},
			req: q(22621).with(func(q *Q) { q.CHIDs = chids(gid(4)) }), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "blocked/conditions all hold", tree: Tree{Labels: []L{{ID: "3001"}},
			Blocks: []map[string]any{{"id": "10", "labels": []string{"3001"}, "hardwareIds": []string{hwA}, "chids": []string{gid(3)}, "minBuild": 22000}}},
			req: q(22621).with(func(q *Q) { q.CHIDs = chids(gid(4), gid(3)) }), offers: none, want: map[string]string{"3001": "blocked: blocked by 10"}},
		{name: "blocked/other label", tree: Tree{Labels: []L{{ID: "3001"}}, Blocks: []map[string]any{{"id": "11", "labels": []string{"3002"}}}},
			req: q(19045), offers: auto, want: map[string]string{"3001": "offered"}},

		// 2.10 the throttle (buckets from buckets.json: label 42: device-0001 8615, device-0002 8433, PCé 3820)
		{name: "rollout/bucket above", tree: labels(L{ID: "42", Dist: dist("rollout", rollout(false, day("2026-11-01")+"=50"))}),
			req: device("device-0001"), offers: none, want: map[string]string{"42": "rollout: bucket 8615 ≥ 5000 (50%)"}},
		{name: "rollout/bucket below", tree: labels(L{ID: "42", Dist: dist("rollout", rollout(false, day("2026-11-01")+"=50"))}),
			req: device("PCé"), offers: []string{"42:automatic"}, want: map[string]string{"42": "offered"}},
		{name: "rollout/bucket equal to the share", tree: labels(L{ID: "42", Dist: dist("rollout", rollout(false, day("2026-11-01")+"=38.2"))}),
			req: device("PCé"), offers: none, want: map[string]string{"42": "rollout: bucket 3820 ≥ 3820 (38.2%)"}},
		{name: "rollout/a basis point more", tree: labels(L{ID: "42", Dist: dist("rollout", rollout(false, day("2026-11-01")+"=38.21"))}),
			req: device("PCé"), offers: []string{"42:automatic"}, want: map[string]string{"42": "offered"}},
		{name: "rollout/before the first stage", tree: labels(L{ID: "42", Dist: dist("rollout", rollout(false, day("2026-11-22")+"=100"))}),
			req: device("PCé"), offers: none, want: map[string]string{"42": "rollout: bucket 3820 ≥ 0 (0%)"}},
		{name: "rollout/the last stage passed", tree: labels(L{ID: "42", Dist: dist("rollout", rollout(false, day("2026-11-01")+"=1", day("2026-11-21")+"=90"))}),
			req: device("device-0002"), offers: []string{"42:automatic"}, want: map[string]string{"42": "offered"}},
		{name: "paused", tree: labels(L{ID: "42", Dist: dist("rollout", rollout(true, day("2026-11-01")+"=50"))}),
			req: device("PCé"), offers: none, want: map[string]string{"42": "paused: rollout paused"}},
		{name: "rollout/below 16299 waits for 100%", tree: labels(L{ID: "42", INF: INF{OS: []string{"X64_RS1"}}, Dist: dist("rollout", rollout(false, day("2026-11-01")+"=99.99"))}),
			req: device("PCé").with(func(q *Q) { q.OS.Build = 15063 }), offers: none,
			want: map[string]string{"42": "rollout: builds below 16299 wait for 100% (now 99.99%)"}},
		{name: "rollout/below 16299 at 100%", tree: labels(L{ID: "42", INF: INF{OS: []string{"X64_RS1"}}, Dist: dist("rollout", rollout(false, day("2026-11-01")+"=50", day("2026-11-20")+"=100"))}),
			req: device("device-0001").with(func(q *Q) { q.OS.Build = 15063 }), offers: []string{"42:automatic"}, want: map[string]string{"42": "offered"}},
		{name: "paused/below 16299", tree: labels(L{ID: "42", INF: INF{OS: []string{"X64_RS1"}}, Dist: dist("rollout", rollout(true, day("2026-11-01")+"=100"))}),
			req: device("PCé").with(func(q *Q) { q.OS.Build = 15063 }), offers: none, want: map[string]string{"42": "paused"}},
		{name: "rollout/devmgr 16299-19040 bypasses a pause", tree: labels(L{ID: "42", INF: INF{OS: []string{"X64_RS3"}}, Dist: dist("rollout", rollout(true, day("2026-11-01")+"=1"))}),
			req: scan(17763, "devmgr").with(func(q *Q) { q.DeviceID = "device-0001" }), offers: []string{"42:automatic"}, want: map[string]string{"42": "offered"}},
		{name: "rollout/devmgr 16299-19040 bypasses the throttle", tree: labels(L{ID: "42", INF: INF{OS: []string{"X64_RS3"}}, Dist: dist("rollout", rollout(false, day("2026-11-01")+"=1"))}),
			req: scan(16299, "devmgr").with(func(q *Q) { q.DeviceID = "device-0001" }), offers: []string{"42:automatic"}, want: map[string]string{"42": "offered"}},
		{name: "rollout/devmgr does not bypass for manual labels", tree: labels(L{ID: "42", Cat: "manual", INF: INF{OS: []string{"X64_RS3"}}, Dist: dist("rollout", rollout(true, day("2026-11-01")+"=100"))}),
			req: scan(17763, "devmgr"), offers: none, want: map[string]string{"42": "paused"}},
		{name: "rollout/devmgr on 19041+ is a user scan", tree: labels(L{ID: "42", INF: INF{OS: []string{"X64_RS3"}}, Dist: dist("rollout", rollout(true, day("2026-11-01")+"=100"))}),
			req: scan(19041, "devmgr"), offers: none, want: map[string]string{"42": "paused"}},
		{name: "rollout/devmgr below 16299 waits for 100%", tree: labels(L{ID: "42", INF: INF{OS: []string{"X64_RS1"}}, Dist: dist("rollout", rollout(false, day("2026-11-01")+"=50"))}),
			req: scan(15063, "devmgr").with(func(q *Q) { q.DeviceID = "PCé" }), offers: none, want: map[string]string{"42": "rollout: builds below 16299"}},
		{name: "rollout/audience-restricted labels are never throttled", tree: labels(L{ID: "42", Audiences: []string{testRegistryKey}, Dist: dist("rollout", rollout(true, day("2026-11-01")+"=1"))}),
			req: device("device-0001").with(func(q *Q) { q.TargetRing = "Drivers" }), offers: []string{"42:automatic"}, want: map[string]string{"42": "offered"}},

		// step 6 leftovers
		{name: "category/automatic label in an optional scan", tree: labels(L{ID: "3001"}), req: scan(19045, "optional"), offers: none,
			want: map[string]string{"3001": "category: not offered in a optional scan on build 19045"}},
		{name: "category/manual label, device has a driver (1909)", tree: labels(L{ID: "3001", Cat: "manual", INF: INF{OS: []string{"X64_RS5"}}},
			L{ID: "3002", INF: INF{OS: []string{"X64_RS5"}, HWIDs: []string{hwB}}}),
			req: q(18363, withDriver("2020-01-01", "1.0.0.0", "")), offers: []string{"3002:automatic"},
			want: map[string]string{"3001": "category: not offered in a scheduled scan on build 18363", "3002": "offered"}},
		{name: "outranked", tree: labels(L{ID: "3001"}, L{ID: "3002", INF: INF{HWIDs: []string{hwB}, Date: "2026-01-01"}}),
			req: q(19045), offers: auto, want: map[string]string{"3001": "offered", "3002": "outranked: outranked by 3001"}},
		{name: "not-better", tree: labels(L{ID: "3001"}), req: q(19045, withDriver("2025-06-01", "2.0.0.0", "")), offers: none,
			want: map[string]string{"3001": "not-better: installed driver 2.0.0.0 (2025-06-01) is as good or better"}},
		{name: "not-better/the same driver", tree: labels(L{ID: "3001"}), req: q(19045, withDriver("2025-01-01", "1.0.0.0", "")), offers: none,
			want: map[string]string{"3001": "not-better"}},
	}
	runCases(t, cases)
}

// chidLabel is an automatic label on RS1 targeting CHIDs; the optional extra arguments are
// another CHID and "paused" (a paused rollout).
func chidLabel(id, chid, date string, more ...string) L {
	l := L{ID: id, INF: INF{OS: []string{"X64_RS1"}, Date: date}, CHIDs: []string{chid}}
	if len(more) > 0 && more[0] != "" {
		l.CHIDs = append(l.CHIDs, more[0])
	}
	if len(more) > 1 && more[1] == "paused" {
		l.Dist = dist("rollout", rollout(true, day("2026-01-01")+"=100"))
	}
	return l
}

// twoLevels gives the device gid(3) as HardwareID-3 and gid(9) as HardwareID-9.
func twoLevels(q *Q) {
	q.CHIDs = chids("", "", "", gid(3), "", "", "", "", "", gid(9))
}

// coDev is an audiences.json with a named audience (gid(77)) and the Test Registry Key.
var coDev = []map[string]any{
	{"id": testRegistryKey, "audienceName": "Test_Registry_Key", "match": map[string]any{"targetRing": "Drivers"}},
	{"id": gid(77), "audienceName": "CoDev", "match": map[string]any{"audience": "CoDev"}},
}

// smbios is the SMBIOS of the example request contoso-model-b13.json.
var smbios = map[string]string{
	"manufacturer": "Contoso", "family": "Contoso Laptops", "productName": "Model B 13", "skuNumber": "CTS-B13-0042",
	"biosVendor": "Contoso BIOS", "biosVersion": "1.7.0", "biosMajorRelease": "01", "biosMinorRelease": "07",
	"enclosureType": "9", "baseboardManufacturer": "Contoso", "baseboardProduct": "B13-MB",
}

func otherModel() map[string]string {
	m := map[string]string{}
	for k, v := range smbios {
		m[k] = v
	}
	m["productName"] = "Model C 15"
	return m
}

// smbiosCHID is HardwareID-n of smbios.
func smbiosCHID(n int) string {
	var f chid.Fields
	for i, name := range chid.FieldNames {
		f[i] = smbios[name]
	}
	ids, present := chid.Compute(&f)
	if present&(1<<n) == 0 {
		panic("no HardwareID-" + strconv.Itoa(n))
	}
	return ids[n].String()
}

// The installed drivers of the step 6 matrix, against labels dated 2025-03-01..2025-05-01
// with ranks 00FF0000 and 00FF0001.
var installed = []struct {
	name string
	drv  *Drv
}{
	{"none", nil},
	{"generic", &Drv{Date: "2026-06-01", Version: "9.0.0.0", Generic: true}},
	{"older", &Drv{Date: "2024-01-01", Version: "1.0.0.0"}},
	{"newer", &Drv{Date: "2026-06-01", Version: "9.0.0.0"}},
	{"newer, worse rank", &Drv{Date: "2026-06-01", Version: "9.0.0.0", Rank: "00FF0002"}},
	{"older, better rank", &Drv{Date: "2024-01-01", Version: "1.0.0.0", Rank: "00000000"}},
}

// TestChoose is step 6 for every scan kind, on both sides of 19041, with every kind of
// installed driver. The trees, all rows on RS5:
//
//	3001 AUTO        hwB  rank 00FF0001  2025-03-01 3.0.0.0
//	3002 manual      hwA  rank 00FF0000  2025-05-01 5.0.0.0
//	3003 DU only     hwA  rank 00FF0000  2025-04-01 4.0.0.0
//
// so the order is 3002 > 3003 > 3001; OPT = {3002, 3003}, DU = {3003}, AUTO = {3001}. The
// second tree has no 3001. The expected offers are read off the spec's text of step 6, one
// column per installed driver (none, generic, older, newer, newer with a worse rank, older
// with a better rank). Upgrade scans come from build 17134 (no row applies there) to the
// build of the row.
func TestChoose(t *testing.T) {
	a := L{ID: "3001", Cat: "auto", INF: INF{OS: []string{"X64_RS5"}, HWIDs: []string{hwB}, Date: "2025-03-01", Version: "3.0.0.0"}}
	m := L{ID: "3002", Cat: "manual", INF: INF{OS: []string{"X64_RS5"}, HWIDs: []string{hwA}, Date: "2025-05-01", Version: "5.0.0.0"}}
	u := L{ID: "3003", Cat: "du", INF: INF{OS: []string{"X64_RS5"}, HWIDs: []string{hwA}, Date: "2025-04-01", Version: "4.0.0.0"}}
	const (
		both   = "3001:automatic 3002:optional"
		auto   = "3001:automatic"
		dyn    = "3003:dynamic"
		opt    = "3002:optional"
		mAuto  = "3002:automatic"
		nothin = ""
	)
	// A driver that is not generic is beaten only when older (or ranked worse, when its rank
	// is given): columns 3 and 6 block everything, column 5 nothing.
	beats := func(offers string) [6]string { return [6]string{offers, offers, offers, nothin, offers, nothin} }
	trees := []struct {
		name string
		tree Tree
		want map[string][6]string
	}{
		{"auto+manual+du", labels(a, m, u), map[string][6]string{
			// AUTO best → automatic; 19041+: OPT best (3002) beats 3001 → optional.
			"scheduled 19045": beats(both),
			"user 19045":      beats(both),
			"devmgr 19045":    beats(both), // a user scan from 2004 on
			"plugin 19045":    beats(auto), // no optional offers for plugin
			// Below 19041 OPT only when AUTO gives nothing: here it gives 3001.
			"scheduled 17763": beats(auto),
			"user 17763":      beats(auto),
			"plugin 17763":    beats(auto),
			"devmgr 17763":    beats(mAuto), // AUTO ∪ OPT: 3002
			"upgrade 17763":   beats(dyn),   // DU ∪ AUTO: 3003
			"upgrade 19045":   beats(dyn),
			"optional 17763":  beats(opt),
			"optional 19045":  beats(opt),
		}},
		{"manual+du", labels(m, u), map[string][6]string{
			"scheduled 19045": beats(opt),
			"user 19045":      beats(opt),
			"devmgr 19045":    beats(opt),
			"plugin 19045":    {},
			// Below 19041, AUTO gives nothing: OPT installs when there is no driver or a generic one.
			"scheduled 17763": {mAuto, mAuto},
			"user 17763":      {mAuto, mAuto},
			"plugin 17763":    {mAuto, mAuto},
			"devmgr 17763":    beats(mAuto),
			"upgrade 17763":   beats(dyn),
			"upgrade 19045":   beats(dyn),
			"optional 17763":  beats(opt),
			"optional 19045":  beats(opt),
		}},
	}
	for _, tr := range trees {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			eng := release(t, tr.tree)
			keys := make([]string, 0, len(tr.want))
			for k := range tr.want {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				kind, b, _ := strings.Cut(k, " ")
				build, _ := strconv.Atoi(b)
				for i, inst := range installed {
					d := dev()
					d.Driver = inst.drv
					r := scan(build, kind, d)
					if kind == "upgrade" {
						r.OS.Build, r.Target = 17134, build
					}
					got := decide(t, eng, r, decideAt)
					want := strings.Fields(tr.want[k][i])
					if want == nil {
						want = []string{}
					}
					if !reflect.DeepEqual(got.offers(), want) {
						t.Errorf("%s scan on %d, installed %s: offers = %v; want %v\n%s", kind, build, inst.name, got.offers(), want, got.explainText())
					}
					for _, c := range got.Explain[0].Candidates {
						switch c.Verdict {
						case "offered", "outranked", "not-better", "category":
						default:
							t.Errorf("%s scan on %d, installed %s: %v; want offered, outranked, not-better or category", kind, build, inst.name, c)
						}
					}
				}
			}
		})
	}
}

// TestChooseVerdicts checks the verdicts step 6 gives the candidates it does not offer.
func TestChooseVerdicts(t *testing.T) {
	a := L{ID: "3001", Cat: "auto", INF: INF{OS: []string{"X64_RS5"}, HWIDs: []string{hwB}, Date: "2025-03-01", Version: "3.0.0.0"}}
	m := L{ID: "3002", Cat: "manual", INF: INF{OS: []string{"X64_RS5"}, HWIDs: []string{hwA}, Date: "2025-05-01", Version: "5.0.0.0"}}
	u := L{ID: "3003", Cat: "du", INF: INF{OS: []string{"X64_RS5"}, HWIDs: []string{hwA}, Date: "2025-04-01", Version: "4.0.0.0"}}
	upgrade := func(from, to int, devices ...D) Q {
		r := scan(from, "upgrade", devices...)
		r.Target = to
		return r
	}
	cases := []tcase{
		{name: "scheduled 2004+", tree: labels(a, m, u), req: q(19045), offers: []string{"3001:automatic", "3002:optional"},
			want: map[string]string{"3001": "offered: offered as automatic", "3002": "offered: offered as optional", "3003": "outranked: outranked by 3002"}},
		{name: "plugin 2004+", tree: labels(a, m, u), req: scan(19045, "plugin"), offers: []string{"3001:automatic"},
			want: map[string]string{"3002": "category: not offered in a plugin scan on build 19045", "3003": "category"}},
		{name: "scheduled 1809", tree: labels(a, m, u), req: q(17763), offers: []string{"3001:automatic"},
			want: map[string]string{"3002": "category: not offered in a scheduled scan on build 17763", "3003": "category"}},
		{name: "upgrade", tree: labels(a, m, u), req: upgrade(17134, 17763), offers: []string{"3003:dynamic"},
			want: map[string]string{"3003": "offered: offered as dynamic", "3001": "outranked: outranked by 3003", "3002": "category: not offered in a upgrade scan on build 17763"}},
		{name: "optional", tree: labels(a, m, u), req: scan(17763, "optional"), offers: []string{"3002:optional"},
			want: map[string]string{"3001": "category: not offered in a optional scan", "3003": "outranked: outranked by 3002"}},
		{name: "devmgr 1809", tree: labels(a, m, u), req: scan(17763, "devmgr"), offers: []string{"3002:automatic"},
			want: map[string]string{"3001": "outranked: outranked by 3002", "3003": "outranked: outranked by 3002"}},
		{name: "devmgr 2004 is a user scan", tree: labels(a, m, u), req: scan(19041, "devmgr"), offers: []string{"3001:automatic", "3002:optional"},
			want: map[string]string{"3003": "outranked: outranked by 3002"}},
		{name: "nothing beats a newer driver", tree: labels(a, m, u), req: q(19045, withDriver("2026-06-01", "9.0.0.0", "")), offers: nil,
			want: map[string]string{"3001": "not-better: installed driver 9.0.0.0 (2026-06-01)", "3002": "not-better"}},
		{name: "optional pick must beat the automatic pick", tree: labels(
			L{ID: "3001", INF: INF{HWIDs: []string{hwA}, Date: "2025-03-01"}}, L{ID: "3002", Cat: "manual", INF: INF{HWIDs: []string{hwB}, Date: "2025-09-01"}}),
			req: q(19045), offers: []string{"3001:automatic"},
			want: map[string]string{"3001": "offered", "3002": "outranked: outranked by 3001"}},
		{name: "optional pick beats the installed driver the automatic one does not", tree: labels(a, m),
			req: q(19045, withDriver("2025-04-01", "4.0.0.0", "")), offers: []string{"3002:optional"},
			want: map[string]string{"3001": "not-better", "3002": "offered: offered as optional"}},
		{name: "installed rank decides before the date", tree: labels(a),
			req: q(19045, withDriver("2026-06-01", "9.0.0.0", "00FF0002")), offers: []string{"3001:automatic"},
			want: map[string]string{"3001": "offered"}},
		{name: "installed rank equal: the date decides", tree: labels(a),
			req: q(19045, withDriver("2025-03-01", "2.9.0.0", "00FF0001")), offers: []string{"3001:automatic"},
			want: map[string]string{"3001": "offered"}},
		{name: "installed rank equal: not newer", tree: labels(a),
			req: q(19045, withDriver("2025-03-01", "3.0.0.0", "00FF0001")), offers: nil,
			want: map[string]string{"3001": "not-better"}},
		{name: "installed rank better", tree: labels(a),
			req: q(19045, withDriver("2020-01-01", "1.0.0.0", "00FF0000")), offers: nil,
			want: map[string]string{"3001": "not-better"}},
		{name: "generic driver below 19041: OPT installs", tree: labels(m),
			req:    q(17763, D{InstanceID: "x", HW: []string{hwA}, Driver: &Drv{Date: "2026-01-01", Version: "10.0.0.0", Generic: true}}),
			offers: []string{"3002:automatic"}, want: map[string]string{"3002": "offered: offered as automatic"}},
		// Step 6 checks the pick against the installed driver: the best AUTO candidate by
		// rank is older than the installed driver (no installed rank), so nothing is offered,
		// although a worse-ranked AUTO candidate is newer. (See the report: the spec can also
		// be read as "the best of those that beat the installed driver".)
		// "Each pick must be better than installed" is a condition of the choice: the
		// best-ranked candidate is older than the installed driver (no installed rank given,
		// so dates decide), the next one is newer and is the pick.
		{name: "the best-ranked candidate does not beat the installed driver", tree: labels(
			L{ID: "3001", INF: INF{HWIDs: []string{hwA}, Date: "2024-01-01"}}, L{ID: "3002", INF: INF{HWIDs: []string{hwB}, Date: "2026-01-01"}}),
			req: q(19045, withDriver("2025-01-01", "1.0.0.0", "")), offers: []string{"3002:automatic"},
			want: map[string]string{"3001": "not-better", "3002": "offered: offered as automatic"}},
		{name: "with the installed rank, the order decides as a whole", tree: labels(
			L{ID: "3001", INF: INF{HWIDs: []string{hwA}, Date: "2024-01-01"}}, L{ID: "3002", INF: INF{HWIDs: []string{hwB}, Date: "2026-01-01"}}),
			req: q(19045, withDriver("2025-01-01", "1.0.0.0", "00FF0000")), offers: nil,
			want: map[string]string{"3001": "not-better", "3002": "not-better"}},
	}
	runCases(t, cases)
}

// TestRankAndOrder is steps 3 and 4: the rank of a candidate and the order of candidates.
func TestRankAndOrder(t *testing.T) {
	cases := []tcase{
		{name: "hardware ID position", tree: labels(L{ID: "3001", INF: INF{HWIDs: []string{hwB}, Date: "2026-01-01"}}, L{ID: "3002", INF: INF{Date: "2020-01-01"}}),
			req: q(19045), offers: []string{"3002:automatic"},
			want: map[string]string{"3002": "offered", "3002 rank=00FF0000": "offered", "3001 rank=00FF0001": "outranked: outranked by 3002"}},
		{name: "compatible ID position", tree: labels(L{ID: "3001", INF: INF{HWIDs: []string{cmpB}, Date: "2026-01-01"}}, L{ID: "3002", INF: INF{HWIDs: []string{cmpA}, Date: "2020-01-01"}}),
			req: q(19045), offers: []string{"3002:automatic"},
			want: map[string]string{"3002 rank=00FF2000": "offered", "3001 rank=00FF2001": "outranked: outranked by 3002"}},
		{name: "hardware ID before compatible ID", tree: labels(L{ID: "3001", INF: INF{HWIDs: []string{cmpA}, Date: "2026-01-01"}}, L{ID: "3002", INF: INF{HWIDs: []string{hwB}, Date: "2020-01-01"}}),
			req: q(19045), offers: []string{"3002:automatic"},
			want: map[string]string{"3002 rank=00FF0001": "offered", "3001 rank=00FF2000": "outranked: outranked by 3002"}},
		{name: "compatible IDs count from 0x2000 whatever the hardware IDs", tree: labels(L{ID: "3001", INF: INF{HWIDs: []string{cmpA}}}),
			req:    q(19045, D{InstanceID: "x", HW: []string{`ACME\A`, `ACME\B`, `ACME\C`}, Compat: []string{`ACME\D`, cmpA}}),
			offers: []string{"3001:automatic"}, want: map[string]string{"3001 rank=00FF2001": "offered"}},
		{name: "IDs compare case-insensitively", tree: labels(L{ID: "3001", INF: INF{HWIDs: []string{hwB}}}),
			req: q(19045, D{InstanceID: "x", HW: []string{strings.ToLower(hwA), strings.ToLower(hwB)}}), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 rank=00FF0001": "offered"}},
		{name: "FeatureScore from the INF", tree: labels(L{ID: "3001", INF: INF{Score: "0x10", HWIDs: []string{hwB}, Date: "2020-01-01"}}, L{ID: "3002", INF: INF{Date: "2026-01-01"}}),
			req: q(19045), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 rank=00100001": "offered", "3002 rank=00FF0000": "outranked: outranked by 3001"}},
		{name: "FeatureScore beats the position of a compatible ID", tree: labels(L{ID: "3001", INF: INF{Score: "0x00", HWIDs: []string{cmpB}}}, L{ID: "3002", INF: INF{Score: "0x01"}}),
			req: q(19045), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 rank=00002001": "offered", "3002 rank=00010000": "outranked: outranked by 3001"}},
		{name: "FeatureScore 0xFE", tree: labels(L{ID: "3001", INF: INF{Score: "0xFE"}}), req: q(19045), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 rank=00FE0000": "offered"}},
		{name: "a label takes its lowest rank", tree: labels(
			L{ID: "3001", INF: INF{HWIDs: []string{hwA, cmpB}, Date: "2020-01-01"}}, L{ID: "3002", INF: INF{HWIDs: []string{hwB}, Date: "2026-01-01"}}),
			req: q(19045), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 rank=00FF0000": "offered", "3001 rank=00FF2001": "outranked: outranked by 3001", "3002": "outranked: outranked by 3001"}},
		{name: "a label takes its lowest rank (only its worse row on the device)", tree: labels(
			L{ID: "3001", INF: INF{HWIDs: []string{hwA, cmpB}, Date: "2020-01-01"}}, L{ID: "3002", INF: INF{HWIDs: []string{hwB}, Date: "2026-01-01"}}),
			req: q(19045, D{InstanceID: "x", HW: []string{hwB}, Compat: []string{cmpB}}), offers: []string{"3002:automatic"},
			want: map[string]string{"3001 rank=00FF2000": "outranked: outranked by 3002", "3002": "offered"}},
		{name: "offer names the row that gave the rank", tree: labels(L{ID: "3001", INF: INF{HWIDs: []string{cmpA, hwB}}}),
			req: q(19045), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 rank=00FF0001": "offered", "3001 rank=00FF2000": "outranked"}},
		{name: "same rank: newer date", tree: labels(L{ID: "3001", INF: INF{Date: "2025-01-01", Version: "9.0.0.0"}}, L{ID: "3002", INF: INF{Date: "2025-01-02", Version: "1.0.0.0"}}),
			req: q(19045), offers: []string{"3002:automatic"}, want: map[string]string{"3001": "outranked: outranked by 3002"}},
		{name: "same date: higher version, numerically", tree: labels(L{ID: "3001", INF: INF{Version: "1.9.0.0"}}, L{ID: "3002", INF: INF{Version: "1.10.0.0"}}),
			req: q(19045), offers: []string{"3002:automatic"}, want: map[string]string{"3001": "outranked: outranked by 3002"}},
		{name: "same version: later goLiveDate", tree: labels(L{ID: "3001", GoLive: at(day("2026-02-01"))}, L{ID: "3002", GoLive: at(day("2026-03-01"))}),
			req: q(19045), offers: []string{"3002:automatic"}, want: map[string]string{"3001": "outranked: outranked by 3002"}},
		{name: "all tied: smaller label id, numerically", tree: labels(L{ID: "1000"}, L{ID: "999"}),
			req: q(19045), offers: []string{"999:automatic"}, want: map[string]string{"1000": "outranked: outranked by 999"}},
		{name: "all tied: 19-digit ids", tree: labels(L{ID: "1152921504606978422"}, L{ID: "999999999999999999"}),
			req: q(19045), offers: []string{"999999999999999999:automatic"}, want: map[string]string{"1152921504606978422": "outranked: outranked by 999999999999999999"}},
		// Two INFs of one label for the same hardware ID, one for RS1 and one for VB: both
		// rows apply on VB with the same rank, and step 4's order (newer date) picks the INF.
		{name: "one label, two INFs of the same rank: the newer INF", tree: labels(
			L{ID: "3001", INF: INF{Name: "old.inf", OS: []string{"X64_RS1"}, Date: "2020-01-01"}, More: []INF{{Name: "new.inf", OS: []string{"X64_VB"}, Date: "2024-01-01"}}}),
			req: q(19045), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 VB": "offered", "3001 RS1": "outranked: outranked by 3001"}},
		{name: "one label, two INFs: the old one below the newer's release", tree: labels(
			L{ID: "3001", INF: INF{Name: "old.inf", OS: []string{"X64_RS1"}, Date: "2020-01-01"}, More: []INF{{Name: "new.inf", OS: []string{"X64_VB"}, Date: "2024-01-01"}}}),
			req: q(18363), offers: []string{"3001:automatic"},
			want: map[string]string{"3001 RS1": "offered", "3001 VB": "below-floor: row certified from VB > 19H1"}},
	}
	runCases(t, cases)
}

// TestTwinINFs: a label whose two INFs tie on everything for one hardware ID (same OS
// code, rank, date and version) offers the one with the smaller name, whatever the order of
// its rows in the label file.
func TestTwinINFs(t *testing.T) {
	for _, names := range [][2]string{{"z.inf", "a.inf"}, {"a.inf", "z.inf"}} {
		eng := release(t, labels(L{ID: "3001", INF: INF{Name: names[0]}, More: []INF{{Name: names[1]}}}))
		got := decide(t, eng, q(19045), decideAt)
		if len(got.Offers) != 1 || got.Offers[0].INF != "a.inf" {
			t.Errorf("INFs %v: offers %s; want a.inf\n%s", names, got.plain, got.explainText())
		}
	}
}

// TestOfferFields checks every field of an offer against the label it comes from.
func TestOfferFields(t *testing.T) {
	eng := release(t, labels(L{ID: "3001", INF: INF{Name: "e1d.inf", Class: "Net", Date: "2024-01-11", Version: "12.19.1.37", Score: "0x0D"},
		Dist: dist("rollout", rollout(false, day("2026-11-01")+"=12.34"))}))
	// The first device in the rollout.
	var id string
	var bucket int
	for i := 0; ; i++ {
		id = fmt.Sprintf("device-%04d", i)
		if bucket = offer.Bucket(3001, []byte(id)); bucket < 1234 {
			break
		}
	}
	got := decide(t, eng, device(id).with(func(q *Q) { q.Devices[0].Compat = nil }), decideAt)
	if len(got.Offers) != 1 {
		t.Fatalf("offers = %v; want one\n%s", got.offers(), got.explainText())
	}
	o := got.Offers[0]
	want := Offer{InstanceID: `ACME\DEV_0001\1`, Kind: "automatic", Category: "automatic", LabelID: "3001", ProductID: "73001", SubmissionID: "83001",
		INF: "e1d.inf", Class: "Net", HardwareID: hwA, Rank: "000D0000", DriverDate: "2024-01-11", DriverVersion: "12.19.1.37"}
	want.Package.URL, want.Package.SHA256, want.Package.Size = "https://cdn.example.com/83001.cab", strings.Repeat("ab", 32), 1000
	want.Rollout = &Rollout{Bucket: bucket, Percent: 12.34}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("offer = %+v\nwant    %+v", o, want)
	}
	if !bytes.Contains(got.plain, []byte(`"rollout":{"bucket":`+strconv.Itoa(bucket)+`,"percent":12.34}`)) {
		t.Errorf("rollout not printed as the spec shows it: %s", got.plain)
	}
	// Without a throttle there is no rollout object; a manual label's category is manual.
	eng = release(t, labels(L{ID: "3001", Cat: "manual"}))
	got = decide(t, eng, q(19045), decideAt)
	if len(got.Offers) != 1 || got.Offers[0].Rollout != nil || got.Offers[0].Category != "manual" || got.Offers[0].Kind != "optional" {
		t.Errorf("manual label: %s", got.plain)
	}
	if bytes.Contains(got.plain, []byte("rollout")) {
		t.Errorf("an offer without a throttle has a rollout: %s", got.plain)
	}
}

// Extension ids: extY sorts before extX.
const (
	extX = "e2f84ce7-8efa-411c-aa69-97454ca4cb57"
	extY = "11111111-2222-4333-8444-555555555555"
)

// TestExtensions is step 7. The base driver 3001 and the extension INFs are on RS1.
func TestExtensions(t *testing.T) {
	base := L{ID: "3001", INF: INF{OS: []string{"X64_RS1"}, HWIDs: []string{hwB}}}
	ext := func(id, extID, date, version string, hwid string) L {
		return L{ID: id, ExtSub: true, INF: INF{Name: "ext" + id + ".inf", Class: "Extension", ExtensionID: extID,
			OS: []string{"X64_RS1"}, HWIDs: []string{hwid}, Date: date, Version: version}}
	}
	e1 := ext("2001", extX, "2025-02-01", "1.0.0.0", hwA)
	twoIDs := ext("2003", extX, "2025-02-01", "1.0.0.0", hwA)
	twoIDs.INF.HWIDs = []string{hwA, hwB}
	e2 := ext("2002", extX, "2025-03-01", "1.0.0.0", cmpB) // newer than 2001, worse rank
	e3 := ext("2003", extY, "2025-01-01", "1.0.0.0", hwB)
	withExt := func(build, rev int, exts ...Ext) Q {
		d := dev()
		d.Ext = exts
		r := q(build, d)
		r.OS.Revision = rev
		return r
	}
	twoDevices := q(17763, dev(), D{InstanceID: `ACME\DEV_0001\2`, HW: []string{hwA, hwB}})
	manualExt := L{ID: "2004", Cat: "manual", INF: INF{Name: "m.inf", ExtensionID: extX, OS: []string{"X64_RS1"}, Date: "2025-06-01"}}
	duExt := ext("2005", extX, "2025-06-01", "1.0.0.0", hwA)
	duExt.Cat = "du"
	upgrade := scan(16299, "upgrade")
	upgrade.OS.Build, upgrade.Target = 15063, 17763
	cases := []tcase{
		{name: "16299.191", tree: labels(base, e1), req: withExt(16299, 191), offers: []string{"3001:automatic"},
			want: map[string]string{"3001": "offered", "2001": "below-floor: extension INFs need build 16299.192 or later"}},
		{name: "16299.192", tree: labels(base, e1), req: withExt(16299, 192), offers: []string{"3001:automatic", "2001:extension"},
			want: map[string]string{"3001": "offered: offered as automatic", "2001": "offered: offered as extension"}},
		{name: "15063", tree: labels(base, e1), req: withExt(15063, 9999), offers: []string{"3001:automatic"},
			want: map[string]string{"2001": "below-floor: extension"}},
		{name: "17763", tree: labels(base, e1), req: withExt(17763, 0), offers: []string{"3001:automatic", "2001:extension"}},
		{name: "without a base driver", tree: labels(e1), req: withExt(17763, 0), offers: []string{"2001:extension"}},
		{name: "grouped by extension id, newest of each; rank does not count", tree: labels(base, e1, e2, e3), req: withExt(17763, 0),
			offers: []string{"3001:automatic", "2003:extension", "2002:extension"},
			want:   map[string]string{"2001": "outranked: outranked by 2002", "2002": "offered", "2003": "offered"}},
		{name: "same date: higher version", tree: labels(ext("2001", extX, "2025-02-01", "1.0.0.10", cmpB), ext("2002", extX, "2025-02-01", "1.0.0.9", hwA)),
			req: withExt(17763, 0), offers: []string{"2001:extension"}, want: map[string]string{"2002": "outranked: outranked by 2001"}},
		{name: "installed extension newer", tree: labels(base, e1, e2, e3), req: withExt(17763, 0, Ext{ID: extX, Date: "2025-04-01", Version: "0.0.0.1"}),
			offers: []string{"3001:automatic", "2003:extension"},
			want:   map[string]string{"2002": "not-better: the installed extension is as new or newer", "2001": "outranked: outranked by 2002"}},
		{name: "installed extension the same", tree: labels(e2), req: withExt(17763, 0, Ext{ID: extX, Date: "2025-03-01", Version: "1.0.0.0"}),
			offers: nil, want: map[string]string{"2002": "not-better"}},
		{name: "installed extension older", tree: labels(e2), req: withExt(17763, 0, Ext{ID: extX, Date: "2025-03-01", Version: "0.9.0.0"}),
			offers: []string{"2002:extension"}, want: map[string]string{"2002": "offered"}},
		{name: "installed extension of another id", tree: labels(e2), req: withExt(17763, 0, Ext{ID: extY, Date: "2026-03-01", Version: "9.0.0.0"}),
			offers: []string{"2002:extension"}},
		{name: "manual extension INF is not offered", tree: labels(base, manualExt), req: withExt(17763, 0), offers: []string{"3001:automatic"},
			want: map[string]string{"2004": "category: not offered in a scheduled scan on build 17763: extension INFs are offered from automatic labels"}},
		{name: "manual extension INF in an optional scan", tree: labels(base, manualExt), req: scan(17763, "optional"), offers: nil,
			want: map[string]string{"2004": "category", "3001": "category"}},
		{name: "DU extension in a scheduled scan", tree: labels(base, duExt), req: withExt(17763, 0), offers: []string{"3001:automatic"},
			want: map[string]string{"2005": "category"}},
		{name: "DU extension in an upgrade scan", tree: labels(base, duExt), req: upgrade, offers: []string{"3001:dynamic", "2005:extension"},
			want: map[string]string{"2005": "offered: offered as extension"}},
		{name: "base driver before extensions, device by device", tree: labels(base, e1), req: twoDevices,
			offers: []string{"3001:automatic", "2001:extension", "1/3001:automatic", "1/2001:extension"}},
		{name: "one label, two extension INFs of different ids", tree: labels(L{ID: "2001", ExtSub: true,
			INF:  INF{Name: "a.inf", Class: "Extension", ExtensionID: extX, OS: []string{"X64_RS1"}},
			More: []INF{{Name: "b.inf", Class: "Extension", ExtensionID: extY, OS: []string{"X64_RS1"}}}}),
			req: withExt(17763, 0), offers: []string{"2001:extension", "2001:extension"}, want: map[string]string{"2001": "offered"}},
		{name: "one label, two extension INFs of one id: the newer, whatever its rank", tree: labels(L{ID: "2001", ExtSub: true,
			INF:  INF{Name: "a.inf", Class: "Extension", ExtensionID: extX, OS: []string{"X64_RS1"}, Date: "2025-01-01"},
			More: []INF{{Name: "b.inf", Class: "Extension", ExtensionID: extX, OS: []string{"X64_RS1"}, HWIDs: []string{cmpB}, Date: "2025-06-01"}}}),
			req: withExt(17763, 0), offers: []string{"2001:extension"},
			want: map[string]string{"2001 rank=00FF2001": "offered", "2001 rank=00FF0000": "outranked: outranked by 2001"}},
		{name: "one extension INF through two hardware IDs: offered once", tree: labels(twoIDs), req: withExt(17763, 0),
			offers: []string{"2003:extension"}, want: map[string]string{"2003 rank=00FF0000": "offered", "2003 rank=00FF0001": "outranked: outranked by 2003"}},
		{name: "a base INF and an extension INF in one label", tree: labels(L{ID: "3001",
			INF:  INF{Name: "a.inf", OS: []string{"X64_RS1"}},
			More: []INF{{Name: "b.inf", Class: "Extension", ExtensionID: extX, OS: []string{"X64_RS1"}}}}),
			req: withExt(17763, 0), offers: []string{"3001:automatic", "3001:extension"}, want: map[string]string{"3001": "offered"}},
		{name: "an extension does not outrank the base driver", tree: labels(base, ext("2001", extX, "2027-01-01", "9.0.0.0", hwA)), req: withExt(17763, 0),
			offers: []string{"3001:automatic", "2001:extension"}, want: map[string]string{"3001": "offered"}},
	}
	runCases(t, cases)
}

// TestRollback is step 8: 3001 (2025-06-01 6.0.0.0) is cancelled on 2026-11-01; the device
// has its driver.
func TestRollback(t *testing.T) {
	bad := func(rollback bool, os ...string) L {
		if len(os) == 0 {
			os = []string{"X64_VB"}
		}
		return L{ID: "3001", INF: INF{OS: os, Date: "2025-06-01", Version: "6.0.0.0"}, Dist: dist("cancelled", cancelled(day("2026-11-01"), rollback))}
	}
	older := L{ID: "3002", INF: INF{HWIDs: []string{hwB}, Date: "2025-01-01", Version: "1.0.0.0"}}
	manual := L{ID: "3003", Cat: "manual", INF: INF{Date: "2024-06-01", Version: "0.5.0.0"}}
	du := L{ID: "3004", Cat: "du", INF: INF{Date: "2024-06-01", Version: "0.5.0.0"}}
	has := q(19045, withDriver("2025-06-01", "6.0.0.0", ""))
	cases := []tcase{
		{name: "rollback to an older driver", tree: labels(bad(true), older), req: has, offers: []string{"3002:rollback"},
			want: map[string]string{"3001": "cancelled: cancelled 2026-11-01T00:00:00Z: PnP errors", "3002": "offered: offered as rollback"}},
		{name: "the installed rank does not matter", tree: labels(bad(true), older), req: q(19045, withDriver("2025-06-01", "6.0.0.0", "00000000")),
			offers: []string{"3002:rollback"}},
		{name: "without rollback", tree: labels(bad(false), older), req: has, offers: nil,
			want: map[string]string{"3001": "cancelled", "3002": "not-better"}},
		{name: "another driver installed", tree: labels(bad(true), older), req: q(19045, withDriver("2025-06-01", "6.0.0.1", "")), offers: nil,
			want: map[string]string{"3002": "not-better"}},
		{name: "before the cancel", tree: labels(bad(true), older), req: has, now: at(day("2026-10-31")), offers: nil,
			want: map[string]string{"3001": "not-better", "3002": "not-better"}},
		{name: "best of AUTO and OPT", tree: labels(bad(true), older, manual), req: has, offers: []string{"3003:rollback"},
			want: map[string]string{"3003": "offered: offered as rollback", "3002": "outranked: outranked by 3003"}},
		{name: "DU-only labels are in OPT", tree: labels(bad(true), du), req: has, offers: []string{"3004:rollback"}},
		{name: "in an optional scan too", tree: labels(bad(true), older), req: scan(19045, "optional", withDriver("2025-06-01", "6.0.0.0", "")),
			offers: []string{"3002:rollback"}},
		{name: "nothing to roll back to", tree: labels(bad(true)), req: has, offers: nil, want: map[string]string{"3001": "cancelled"}},
		{name: "a generic driver is never rolled back", tree: labels(bad(true), older),
			req:    q(19045, D{InstanceID: "x", HW: []string{hwA, hwB}, Driver: &Drv{Date: "2025-06-01", Version: "6.0.0.0", Generic: true}}),
			offers: []string{"3002:automatic"}},
		{name: "the remaining candidates must apply", tree: labels(bad(true), L{ID: "3002", INF: INF{HWIDs: []string{hwB}}, Dist: dist("rollout", rollout(true, day("2026-01-01")+"=100"))}),
			req: has, offers: nil, want: map[string]string{"3002": "paused"}},
		// The cancelled label's row is for NI, the device runs VB: it is not that label's driver
		// on this OS, and deciding with or without explain must agree.
		{name: "the cancelled row is for a later release", tree: labels(bad(true, "X64_NI"), older), req: has, offers: nil,
			want: map[string]string{"3001": "cancelled", "3002": "not-better"}},
		{name: "the cancelled row is for another family", tree: labels(bad(true, "ARM64_VB"), older), req: has, offers: nil,
			want: map[string]string{"3001": "cancelled", "3002": "not-better"}},
	}
	runCases(t, cases)
}

// TestForward covers offered-forward and OS families (step 0 and 2.3).
func TestForward(t *testing.T) {
	rs1 := L{ID: "3001", INF: INF{OS: []string{"X64_RS1"}}}
	legacy := func(code string) L { return L{ID: "3001", INF: INF{OS: []string{code}}} }
	auto := []string{"3001:automatic"}
	upgrade := func(from, to int) Q {
		r := scan(from, "upgrade")
		r.Target = to
		return r
	}
	x86 := func(build int) Q { return onArch(build, "x86", "") }
	cases := []tcase{
		{name: "RS1 row on NI", tree: labels(rs1), req: q(22621), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "RS1 row on a build newer than the table", tree: labels(rs1), req: q(28000), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "RS1 row on TH2", tree: labels(rs1), req: q(10586), offers: nil, want: map[string]string{"3001": "below-floor: row certified from RS1 > TH2"}},
		{name: "RS1 row on the RS1 base build", tree: labels(rs1), req: q(14393), offers: auto},
		{name: "RS1 row, arm64 device", tree: labels(rs1), req: onArch(22621, "arm64", ""), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "RS1 row, x86 device", tree: labels(rs1), req: x86(19045), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "RS1 row, server", tree: labels(rs1), req: onArch(26100, "amd64", "server"), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "server row on a server", tree: labels(legacy("SERVER_X64_RS1")), req: onArch(20348, "amd64", "server"), offers: auto},
		{name: "server row on a client", tree: labels(legacy("SERVER_X64_RS1")), req: q(20348), offers: nil,
			want: map[string]string{"3001": "os-family: row is for amd64/server RS1, device is amd64/client FE"}},
		{name: "arm64 row on arm64", tree: labels(legacy("ARM64_RS3")), req: onArch(26100, "arm64", ""), offers: auto},
		{name: "x86 row on x86", tree: labels(legacy("RS1")), req: x86(19045), offers: auto},
		{name: "WINDOWS_7_X64 on 7601", tree: labels(legacy("WINDOWS_7_X64")), req: q(7601), offers: auto, want: map[string]string{"3001": "offered"}},
		{name: "WINDOWS_7_X64 on 7600", tree: labels(legacy("WINDOWS_7_X64")), req: q(7600), offers: auto},
		{name: "WINDOWS_7_X64 on 9200", tree: labels(legacy("WINDOWS_7_X64")), req: q(9200), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "WINDOWS_7_X64 on 9600", tree: labels(legacy("WINDOWS_7_X64")), req: q(9600), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "WINDOWS_7_X64 on 10240", tree: labels(legacy("WINDOWS_7_X64")), req: q(10240), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "WINDOWS_7 on x86 7601", tree: labels(legacy("WINDOWS_7")), req: x86(7601), offers: auto},
		{name: "WINDOWS_7 on amd64 7601", tree: labels(legacy("WINDOWS_7")), req: q(7601), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "WINDOWS_v63_X64 on 9600", tree: labels(legacy("WINDOWS_v63_X64")), req: q(9600), offers: auto},
		{name: "WINDOWS_v63_X64 on 10240", tree: labels(legacy("WINDOWS_v63_X64")), req: q(10240), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "a build between the eras", tree: labels(rs1), req: q(8000), offers: nil, want: map[string]string{"3001": "os-family"}},
		{name: "upgrade to the row's release", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_NI"}}}), req: upgrade(19045, 22621),
			offers: []string{"3001:dynamic"}, want: map[string]string{"3001": "offered: offered as dynamic"}},
		{name: "upgrade to a release below the row", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_NI"}}}), req: upgrade(22621, 19045),
			offers: nil, want: map[string]string{"3001": "below-floor: row certified from NI > VB"}},
		{name: "upgrade from Windows 7", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_TH1"}}}), req: upgrade(7601, 10240),
			offers: []string{"3001:dynamic"}},
		{name: "upgrade applies the floor to the target", tree: labels(L{ID: "3001", INF: INF{OS: []string{"X64_RS1"}}, Floor: "NI"}),
			req: upgrade(19045, 22621), offers: []string{"3001:dynamic"}},
	}
	runCases(t, cases)
}

// bucketVectors is conformance/buckets.json.
type bucketVectors struct {
	Share struct {
		Devices   string  `json:"devices"`
		InRollout int     `json:"inRollout"`
		LabelID   string  `json:"labelId"`
		Percent   float64 `json:"percent"`
	} `json:"share"`
	Vectors []struct {
		LabelID  string `json:"labelId"`
		DeviceID string `json:"deviceId"`
		XXH64    string `json:"xxh64"`
		Bucket   int    `json:"bucket"`
	} `json:"vectors"`
}

func readBuckets(t testing.TB) bucketVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "conformance", "buckets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v bucketVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBucket checks Bucket against every vector of conformance/buckets.json and the share
// of 100,000 devices in a 25% rollout.
func TestBucket(t *testing.T) {
	v := readBuckets(t)
	if len(v.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, x := range v.Vectors {
		label, err := strconv.ParseUint(x.LabelID, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := offer.Bucket(label, []byte(x.DeviceID)); got != x.Bucket {
			t.Errorf("Bucket(%s, %q) = %d; want %d", x.LabelID, x.DeviceID, got, x.Bucket)
		}
		sum, _ := strconv.ParseUint(x.XXH64, 16, 64)
		if sum%10000 != uint64(x.Bucket) {
			t.Errorf("vector %s %q: xxh64 %s mod 10000 is not %d", x.LabelID, x.DeviceID, x.XXH64, x.Bucket)
		}
	}
	if v.Share.Devices != "device-000000 .. device-099999" || v.Share.Percent != 25 {
		t.Fatalf("share vector changed: %+v", v.Share)
	}
	label, _ := strconv.ParseUint(v.Share.LabelID, 10, 64)
	in := 0
	id := []byte("device-000000")
	for i := 0; i < 100000; i++ {
		copy(id[7:], fmt.Sprintf("%06d", i))
		if offer.Bucket(label, id) < int(v.Share.Percent*100) {
			in++
		}
	}
	if in != v.Share.InRollout {
		t.Errorf("%d of 100000 devices in a 25%% rollout of label %s; want %d", in, v.Share.LabelID, v.Share.InRollout)
	}
}

// TestBucketDecides checks that the engine throttles with the buckets of the vectors: for
// every vector of label 1152921504606978422, a rollout at the bucket's percent leaves the
// device out and one basis point more lets it in.
func TestBucketDecides(t *testing.T) {
	v := readBuckets(t)
	const label = "1152921504606978422"
	for _, x := range v.Vectors {
		if x.LabelID != label {
			continue
		}
		pct := func(bp int) string { return strconv.FormatFloat(float64(bp)/100, 'f', -1, 64) }
		for _, c := range []struct {
			bp     int
			offers []string
		}{{x.Bucket, nil}, {x.Bucket + 1, []string{label + ":automatic"}}} {
			t.Run(fmt.Sprintf("%s at %d", x.DeviceID, c.bp), func(t *testing.T) {
				t.Parallel()
				eng := release(t, labels(L{ID: label, Dist: dist("rollout", rollout(false, day("2026-11-01")+"="+pct(c.bp)))}))
				r := q(19045)
				r.DeviceID = x.DeviceID
				verdict := "rollout: bucket " + strconv.Itoa(x.Bucket) + " ≥ " + strconv.Itoa(c.bp)
				if c.offers != nil {
					verdict = "offered"
				}
				decide(t, eng, r, decideAt).check(t, c.offers, map[string]string{label: verdict})
			})
		}
	}
}
