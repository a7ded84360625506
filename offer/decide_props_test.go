package offer_test

// Properties of the decision procedure over a generated catalog and random requests
// (math/rand with fixed seeds, so a failure reproduces).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/offer"
)

// Generated catalogs draw from small universes so that labels collide on hardware IDs,
// CHIDs and extension ids.
var (
	genOS = []string{"X64_TH1", "X64_RS1", "X64_RS3", "X64_RS5", "X64_VB", "X64_CO", "X64_NI", "X64_GE",
		"ARM64_RS3", "ARM64_VB", "ARM64_NI", "SERVER_X64_RS1", "SERVER_X64_RS5", "SERVER_X64_GE", "RS1", "VB"}
	genReleases = []string{"TH1", "TH2", "RS1", "RS2", "RS3", "RS4", "RS5", "19H1", "VB", "FE", "CO", "NI", "GE"}
	genBuilds   = []int{10240, 14393, 15063, 16299, 17134, 17763, 18363, 19041, 19045, 20348, 22000, 22621, 22631, 26100, 28000}
	genScans    = []string{"scheduled", "scheduled", "scheduled", "user", "plugin", "upgrade", "optional", "devmgr"}
	genChannels = []string{"Canary", "Dev", "Beta", "ReleasePreview"}
	genExtIDs   = []string{extX, extY}
)

func genHWID(i int) string { return fmt.Sprintf(`GEN\DEV_%02d&REV_01`, i) }

const genNumHWIDs = 12

func genCHID(i int) string { return gid(100 + i) }

const genNumCHIDs = 6

// genTime is a random time between two days, on a whole hour.
func genTime(r *rand.Rand, from, to string) time.Time {
	a, b := at(day(from)), at(day(to))
	return a.Add(time.Duration(r.Int63n(int64(b.Sub(a)/time.Hour))) * time.Hour)
}

func genDate(r *rand.Rand) string { return genTime(r, "2023-01-01", "2026-11-01").Format("2006-01-02") }

func genVersion(r *rand.Rand) string {
	return fmt.Sprintf("%d.%d.%d.%d", 1+r.Intn(3), r.Intn(12), r.Intn(3), r.Intn(200))
}

// genPercent is a percent with up to two decimals, above lo basis points.
func genPercent(r *rand.Rand, lo int) (int, string) {
	bp := lo + 1 + r.Intn(10000-lo)
	if r.Intn(4) == 0 {
		bp = (bp + 99) / 100 * 100
		if bp > 10000 {
			bp = 10000
		}
	}
	return bp, fmt.Sprintf("%d.%02d", bp/100, bp%100)
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.Intn(len(s))] }

func subset(r *rand.Rand, n, max int, item func(int) string) []string {
	k := 1 + r.Intn(max)
	seen := map[int]bool{}
	var out []string
	for len(out) < k {
		i := r.Intn(n)
		if !seen[i] {
			seen[i] = true
			out = append(out, item(i))
		}
	}
	return out
}

// releaseOf is the release index of an OS code of genOS.
func releaseOf(os string) int {
	code := os[strings.LastIndex(os, "_")+1:]
	for i, r := range genReleases {
		if r == code {
			return i
		}
	}
	panic(os)
}

// genLabel makes a random label that passes validation.
func genLabel(r *rand.Rand, id string) L {
	l := L{ID: id}
	infs := 1
	if r.Intn(5) == 0 {
		infs = 2
	}
	for k := 0; k < infs; k++ {
		inf := INF{
			OS:    subset(r, len(genOS), 2, func(i int) string { return genOS[i] }),
			HWIDs: subset(r, genNumHWIDs, 3, genHWID),
			Date:  genDate(r), Version: genVersion(r),
		}
		if r.Intn(3) == 0 {
			inf.Score = fmt.Sprintf("0x%02X", r.Intn(256))
		}
		if r.Intn(15) == 0 {
			inf.State = "pendingAdd"
		}
		if r.Intn(20) == 0 {
			inf.CHIDs = subset(r, genNumCHIDs, 2, genCHID)
		}
		if k == 0 {
			l.INF = inf
			continue
		}
		// A second INF, often a twin of the first (same rows or same date and version):
		// the cases where only tie-breaks decide.
		if r.Intn(2) == 0 {
			inf.OS, inf.HWIDs, inf.Score = l.INF.OS, l.INF.HWIDs, l.INF.Score
		}
		if r.Intn(2) == 0 {
			inf.Date, inf.Version = l.INF.Date, l.INF.Version
		}
		l.More = append(l.More, inf)
	}
	l.Cat = pick(r, []string{"auto", "auto", "auto", "auto+du", "manual", "manual", "du"})
	if r.Intn(12) == 0 {
		l.ExtSub, l.Cat = true, pick(r, []string{"auto", "auto+du"})
		l.INF.Class, l.INF.ExtensionID = "Extension", pick(r, genExtIDs)
		for i := range l.More {
			l.More[i].Class, l.More[i].ExtensionID = "Extension", pick(r, genExtIDs)
		}
	} else if r.Intn(20) == 0 {
		l.INF.ExtensionID = pick(r, genExtIDs)
	}
	if r.Intn(5) == 0 {
		for _, c := range subset(r, genNumCHIDs, 2, genCHID) {
			if r.Intn(8) == 0 {
				c += "=pendingAdd"
			}
			l.CHIDs = append(l.CHIDs, c)
		}
	}
	if r.Intn(12) == 0 {
		l.Audiences = []string{testRegistryKey}
	}
	l.S10 = r.Intn(5) == 0
	l.CoEng = r.Intn(25) == 0
	l.FlightSign = r.Intn(30) == 0
	l.GoLive = genTime(r, "2025-06-01", "2026-12-15")
	// Floors and ceilings within the releases of the live rows (L021, L022, L024).
	lo, hi := -1, -1
	for _, inf := range append([]INF{l.INF}, l.More...) {
		if inf.State == "pendingAdd" {
			continue
		}
		for _, os := range inf.OS {
			rel := releaseOf(os)
			if lo < 0 || rel < lo {
				lo = rel
			}
			if rel > hi {
				hi = rel
			}
		}
	}
	if lo >= 0 && r.Intn(6) == 0 {
		f := lo + r.Intn(hi-lo+1)
		l.Floor = genReleases[f]
		if l.Floor == "TH1" {
			l.Floor = "TH"
		}
		lo = f
	}
	if lo >= 0 && r.Intn(8) == 0 {
		l.Ceiling = genReleases[lo+r.Intn(hi-lo+1)]
		if l.Ceiling == "TH1" {
			l.Ceiling = "TH"
		}
	}
	d := map[string]any{}
	if r.Intn(5) < 2 || l.CoEng {
		start := genTime(r, "2025-06-01", "2026-11-20")
		approved := ""
		if r.Intn(10) < 7 {
			approved = start.Add(time.Duration(r.Intn(90*24)) * time.Hour).Format(time.RFC3339)
		}
		d["flight"] = flight(start.Format(time.RFC3339), approved, subset(r, len(genChannels), 3, func(i int) string { return genChannels[i] })...)
	}
	if r.Intn(2) == 0 {
		var stages []string
		t, bp := genTime(r, "2026-06-01", "2026-11-15"), 0
		for n := 1 + r.Intn(3); n > 0 && bp < 10000; n-- {
			var pct string
			bp, pct = genPercent(r, bp)
			stages = append(stages, t.Format(time.RFC3339)+"="+pct)
			t = t.Add(time.Duration(1+r.Intn(20*24)) * time.Hour)
		}
		d["rollout"] = rollout(r.Intn(10) == 0, stages...)
	}
	if r.Intn(12) == 0 {
		d["cancelled"] = cancelled(genTime(r, "2026-06-01", "2026-12-31").Format(time.RFC3339), r.Intn(2) == 0)
	}
	if len(d) > 0 {
		l.Dist = d
	}
	return l
}

// genTree makes n labels with distinct ids of 1 to 18 digits.
func genTree(r *rand.Rand, n int) Tree {
	var tr Tree
	seen := map[string]bool{}
	for len(tr.Labels) < n {
		digits := 1 + r.Intn(18)
		max := int64(1)
		for i := 0; i < digits; i++ {
			max *= 10
		}
		id := fmt.Sprint(1 + r.Int63n(max-1))
		if seen[id] {
			continue
		}
		seen[id] = true
		tr.Labels = append(tr.Labels, genLabel(r, id))
	}
	tr.Blocks = []map[string]any{
		{"id": "900", "labels": []string{tr.Labels[0].ID}, "hardwareIds": []string{genHWID(3)}},
		{"id": "901", "chids": []string{genCHID(5)}, "minBuild": 22000},
	}
	return tr
}

// genRequest makes a random request; hwids, when given, are the hardware IDs its devices
// draw from first.
func genRequest(r *rand.Rand, hwids []string) Q {
	rq := Q{DeviceID: fmt.Sprintf("dev-%d", r.Intn(1000000)), OS: QOS{Build: pick(r, genBuilds), Revision: r.Intn(300)}}
	switch r.Intn(10) {
	case 0:
		rq.OS.Arch = "arm64"
	case 1:
		rq.OS.Arch = "x86"
	case 2:
		rq.OS.SKU = "server"
	}
	rq.OS.SMode = r.Intn(10) == 0
	rq.Scan = pick(r, genScans)
	if rq.Scan == "upgrade" {
		rq.Target = pick(r, genBuilds)
	}
	if r.Intn(2) == 0 {
		ids := make([]string, 15)
		for _, c := range subset(r, genNumCHIDs, 3, func(i int) string { return fmt.Sprint(i) }) {
			var i int
			fmt.Sscan(c, &i)
			ids[r.Intn(15)] = genCHID(i)
		}
		rq.CHIDs = chids(ids...)
	}
	if r.Intn(5) == 0 {
		rq.TargetRing = "Drivers"
	}
	if r.Intn(3) == 0 {
		rq.Insider = pick(r, genChannels)
	}
	for n := 1 + r.Intn(4); n > 0; n-- {
		d := D{InstanceID: fmt.Sprintf(`GEN\DEV\%d`, n)}
		d.HW = subset(r, genNumHWIDs, 3, genHWID)
		if len(hwids) > 0 && r.Intn(3) > 0 {
			d.HW[0] = pick(r, hwids)
		}
		if r.Intn(2) == 0 {
			d.Compat = subset(r, genNumHWIDs, 2, genHWID)
		}
		switch r.Intn(5) {
		case 0, 1:
		case 2:
			d.Driver = &Drv{Date: genDate(r), Version: genVersion(r), Generic: true}
		default:
			d.Driver = &Drv{Date: genDate(r), Version: genVersion(r)}
			if r.Intn(2) == 0 {
				d.Driver.Rank = fmt.Sprintf("%08X", r.Intn(0x100)<<16|r.Intn(3))
			}
		}
		if r.Intn(5) == 0 {
			d.Ext = []Ext{{ID: pick(r, genExtIDs), Date: genDate(r), Version: genVersion(r)}}
		}
		rq.Devices = append(rq.Devices, d)
	}
	return rq
}

// propSizes are the catalog and request counts of the property tests: smaller with -short.
func propSizes() (labels, requests int) {
	if testing.Short() {
		return 30, 100
	}
	return 60, 300
}

// genNow returns a decision time within 20 days of decideAt.
func genNow(r *rand.Rand) time.Time {
	return decideAt.Add(time.Duration(r.Intn(40*24)-20*24) * time.Hour)
}

// answer decides a request body without and with explain and returns both responses.
func answer(t testing.TB, eng *offer.Engine, body []byte, now time.Time) (plain, explained []byte) {
	t.Helper()
	var req offer.Request
	if e := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); e != nil {
		t.Fatalf("decode %s: %v", body, e)
	}
	var res offer.Result
	eng.Decide(&req, now, false, &res)
	plain = offer.AppendResponse(nil, &req, &res, eng.OS())
	eng.Decide(&req, now, true, &res)
	return plain, offer.AppendResponse(nil, &req, &res, eng.OS())
}

// afterRelease returns a response body from its offers on: the part that does not name the
// release.
func afterRelease(t testing.TB, body []byte) []byte {
	t.Helper()
	i := bytes.Index(body, []byte(`,"offers":`))
	if i < 0 || !bytes.HasPrefix(body, []byte(`{"release":{"sequence":`)) {
		t.Fatalf("response does not start with the release and offers: %s", body)
	}
	return body[i:]
}

// TestPropertyTreeOrderAndShards builds one generated catalog three times: as generated
// with 1 HWID shard and 1 label shard, and written in shuffled orders (labels, files, grid
// rows, CHIDs) with 16/7 and 16/1 shards. Every request must get the same bytes from all
// three, release line aside.
func TestPropertyTreeOrderAndShards(t *testing.T) {
	t.Parallel()
	nLabels, nRequests := propSizes()
	r := rand.New(rand.NewSource(1))
	tr := genTree(r, nLabels)
	engines := make([]*offer.Engine, 3)
	for i, o := range []buildOpts{{1, 1}, {16, 7}, {16, 1}} {
		dir := scratchDir(t)
		var perm *rand.Rand
		if i > 0 {
			perm = rand.New(rand.NewSource(int64(100 + i)))
		}
		tr.write(t, dir, perm)
		engines[i] = buildDir(t, dir, o)
	}
	offered := 0
	for n := 0; n < nRequests; n++ {
		rq := genRequest(r, nil)
		body, err := json.Marshal(rq)
		if err != nil {
			t.Fatal(err)
		}
		now := genNow(r)
		plain0, explained0 := answer(t, engines[0], body, now)
		offered += bytes.Count(plain0, []byte(`"kind":`))
		if n%8 == 0 {
			decideBody(t, engines[0], body, now) // the checks every answer passes
		}
		for i, eng := range engines[1:] {
			plain, explained := answer(t, eng, body, now)
			// The answer and the explained answer, byte for byte.
			a, b := afterRelease(t, plain0), afterRelease(t, plain)
			if bytes.Equal(a, b) && bytes.Equal(afterRelease(t, explained0), afterRelease(t, explained)) {
				continue
			}
			diff := candidateDiff(decideBody(t, engines[0], body, now), decideBody(t, eng, body, now))
			t.Fatalf("request %d at %s: build %d answers differently from build 0\nrequest: %s\nbuild 0: %s\nbuild %d: %s\nexplain differs (as sets: %q)",
				n, now.Format(time.RFC3339), i+1, body, a, i+1, b, diff)
		}
	}
	if offered < nRequests/4 {
		t.Errorf("only %d offers for %d requests: the generator hardly exercises the procedure", offered, nRequests)
	}
	t.Logf("%d requests, %d offers", nRequests, offered)
}

// candidateDiff compares the candidates two answers explain for each device, with their
// verdicts, in any order, and returns the first difference ("" for none).
func candidateDiff(a, b decided) string {
	if len(a.Explain) != len(b.Explain) {
		return "not the same devices"
	}
	for d := range a.Explain {
		count := map[string]int{}
		for _, c := range a.Explain[d].Candidates {
			count[c.String()]++
		}
		for _, c := range b.Explain[d].Candidates {
			count[c.String()]--
		}
		for k, n := range count {
			if n != 0 {
				return fmt.Sprintf("device %d: %+d × %s", d, n, k)
			}
		}
	}
	return ""
}

// TestPropertyRolloutMonotone raises one label's rollout percent and decides the same
// requests on both releases: every device offered the label before is offered it after, a
// device that had an offer still has one, and a device's answer changes only where the
// label's own verdict changed.
func TestPropertyRolloutMonotone(t *testing.T) {
	t.Parallel()
	nLabels, nRequests := propSizes()
	r := rand.New(rand.NewSource(2))
	tr := genTree(r, nLabels)
	const raised = 3 // labels whose percent is raised, one release each
	var changes []rolloutChange
	var hwids []string
	for k := 0; k < raised; k++ {
		// A plain automatic label everybody on amd64 client can get, rolled out to a random
		// share since before the decisions.
		i := 1 + k*(len(tr.Labels)-1)/raised
		x := &tr.Labels[i]
		x.INF.OS, x.INF.State, x.More, x.CHIDs, x.Audiences = []string{"X64_TH1"}, "", nil, nil, nil
		x.INF.CHIDs, x.Floor, x.Ceiling, x.CoEng, x.FlightSign, x.ExtSub, x.INF.ExtensionID = nil, "", "", false, false, false, ""
		x.Cat, x.GoLive = "auto", goLive
		lo, _ := genPercent(r, 0)
		hi, _ := genPercent(r, lo)
		if hi == lo {
			lo = hi - 1
		}
		changes = append(changes, rolloutChange{label: x.ID, bp: [2]int{lo, hi}})
		hwids = append(hwids, x.INF.HWIDs...)
	}
	pct := func(bp int) string { return fmt.Sprintf("%d.%02d", bp/100, bp%100) }
	for k := range changes {
		c := &changes[k]
		for v := 0; v < 2; v++ {
			for j := range tr.Labels {
				if x := &tr.Labels[j]; raisedIndex(changes, x.ID) >= 0 {
					bp := changes[raisedIndex(changes, x.ID)].bp[0]
					if x.ID == c.label {
						bp = c.bp[v]
					}
					x.Dist = dist("rollout", rollout(false, day("2026-01-01")+"="+pct(bp)))
				}
			}
			dir := scratchDir(t)
			tr.write(t, dir, nil)
			c.engine[v] = buildDir(t, dir, buildOpts{})
		}
	}
	gained, emptied := 0, 0
	for n := 0; n < nRequests; n++ {
		rq := genRequest(r, hwids)
		rq.OS.Arch, rq.OS.SKU = "", ""
		now := genNow(r)
		body, err := json.Marshal(rq)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			a, _ := answer(t, c.engine[0], body, now)
			b, _ := answer(t, c.engine[1], body, now)
			if bytes.Equal(afterRelease(t, a), afterRelease(t, b)) {
				continue // (the label's verdicts may differ, but not the answer)
			}
			lo, hi := decideBody(t, c.engine[0], body, now), decideBody(t, c.engine[1], body, now)
			for d := range rq.Devices {
				before, after := deviceOffers(lo, d), deviceOffers(hi, d)
				if before == after {
					continue
				}
				if strings.Contains(" "+before+" ", " "+c.label+":") && !strings.Contains(" "+after+" ", " "+c.label+":") {
					t.Errorf("raising label %s from %s%% to %s%% removed it from device %d: %q -> %q\n%s", c.label, pct(c.bp[0]), pct(c.bp[1]), d, before, after, hi.explainText())
				}
				if verdictsOf(lo, d, c.label) == verdictsOf(hi, d, c.label) {
					t.Errorf("device %d: offers changed %q -> %q though label %s's verdicts did not", d, before, after, c.label)
				}
				if strings.Contains(" "+after+" ", " "+c.label+":") {
					gained++
				}
				if before != "" && after == "" {
					// A pick is the best candidate that beats the installed driver, so a
					// label getting in can replace a device's offer but never leave it
					// with none.
					emptied++
					t.Errorf("raising label %s from %s%% to %s%% left device %d with no offer: %q -> nothing\n%s", c.label, pct(c.bp[0]), pct(c.bp[1]), d, before, hi.explainText())
				}
			}
		}
	}
	if gained == 0 {
		t.Errorf("no device gained a raised label: the property was not exercised")
	}
	t.Logf("%d requests × %d raised labels: %d devices gained the label, %d lost every offer", nRequests, raised, gained, emptied)
}

// rolloutChange is a label whose rollout percent goes from bp[0] to bp[1], with the
// releases built with each.
type rolloutChange struct {
	label  string
	bp     [2]int
	engine [2]*offer.Engine
}

func raisedIndex(cs []rolloutChange, id string) int {
	for i, c := range cs {
		if c.label == id {
			return i
		}
	}
	return -1
}

// deviceOffers lists the offers of device d as "label:kind …".
func deviceOffers(got decided, d int) string {
	var s []string
	for _, o := range got.Offers {
		if o.InstanceID == got.Explain[d].InstanceID {
			s = append(s, o.LabelID+":"+o.Kind)
		}
	}
	return strings.Join(s, " ")
}

// verdictsOf lists the verdicts of a label's candidates on device d.
func verdictsOf(got decided, d int, label string) string {
	var s []string
	for _, c := range got.Explain[d].Candidates {
		if c.LabelID == label {
			s = append(s, c.Row+"="+c.Verdict)
		}
	}
	return strings.Join(s, " ")
}

// TestPropertyDeterministic decides random requests twice and on reused Results: the same
// request gives the same bytes, whatever the Result and Decoder decided before.
func TestPropertyDeterministic(t *testing.T) {
	t.Parallel()
	nLabels, nRequests := propSizes()
	r := rand.New(rand.NewSource(3))
	eng := release(t, genTree(r, nLabels))
	dec := offer.NewDecoder(offer.DefaultLimits)
	var req offer.Request
	var reused offer.Result
	var buf []byte
	for n := 0; n < nRequests; n++ {
		body, err := json.Marshal(genRequest(r, nil))
		if err != nil {
			t.Fatal(err)
		}
		now := genNow(r)
		explain := n%2 == 0
		// A fresh decoder, request and result.
		var freshReq offer.Request
		if e := offer.NewDecoder(offer.DefaultLimits).Decode(body, &freshReq); e != nil {
			t.Fatal(e)
		}
		var fresh offer.Result
		eng.Decide(&freshReq, now, explain, &fresh)
		want := offer.AppendResponse(nil, &freshReq, &fresh, eng.OS())
		// Twice on the reused ones, the second time into the reused buffer.
		for k := 0; k < 2; k++ {
			if e := dec.Decode(body, &req); e != nil {
				t.Fatal(e)
			}
			eng.Decide(&req, now, explain, &reused)
			buf = offer.AppendResponse(buf[:0], &req, &reused, eng.OS())
			if !bytes.Equal(buf, want) {
				t.Fatalf("request %d, pass %d: a reused Result answers\n%s\nwhere a fresh one answers\n%s\nrequest: %s", n, k, buf, want, body)
			}
		}
		// The same request once more on the fresh Result, with the other explain setting
		// in between.
		eng.Decide(&freshReq, now, !explain, &fresh)
		eng.Decide(&freshReq, now, explain, &fresh)
		if got := offer.AppendResponse(nil, &freshReq, &fresh, eng.OS()); !bytes.Equal(got, want) {
			t.Fatalf("request %d: the same request twice gives\n%s\nthen\n%s", n, want, got)
		}
	}
}

// TestPropertyConcurrent decides the same random requests from several goroutines on one
// Engine (each with its own Decoder and Result) and compares with the answers decided one
// at a time: the Engine is safe for concurrent use (run with -race).
func TestPropertyConcurrent(t *testing.T) {
	t.Parallel()
	nLabels, nRequests := propSizes()
	r := rand.New(rand.NewSource(4))
	eng := release(t, genTree(r, nLabels))
	type job struct {
		body []byte
		now  time.Time
		want []byte
	}
	jobs := make([]job, nRequests/2)
	for i := range jobs {
		body, err := json.Marshal(genRequest(r, nil))
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = job{body: body, now: genNow(r)}
		_, jobs[i].want = answer(t, eng, body, jobs[i].now)
	}
	const workers = 4
	errs := make(chan string, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			dec := offer.NewDecoder(offer.DefaultLimits)
			var req offer.Request
			var res offer.Result
			var out []byte
			for k := range jobs {
				j := &jobs[(k+w*len(jobs)/workers)%len(jobs)]
				if e := dec.Decode(j.body, &req); e != nil {
					errs <- e.Error()
					return
				}
				eng.Decide(&req, j.now, true, &res)
				out = offer.AppendResponse(out[:0], &req, &res, eng.OS())
				if !bytes.Equal(out, j.want) {
					errs <- fmt.Sprintf("worker %d: %s answered\n%s\nwant\n%s", w, j.body, out, j.want)
					return
				}
			}
			errs <- ""
		}(w)
	}
	for w := 0; w < workers; w++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}
