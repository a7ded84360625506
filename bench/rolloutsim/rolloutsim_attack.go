package rolloutsim

// The forged-report attack (Options.ForgedReports, `bench rollout-sim --forged-reports N`).
//
// On the first step of day 1 an attacker on one network (198.51.100.0/24, from which no
// simulated PC reports) goes after the good driver whose rollout began on day 0, in the order
// an attacker would try:
//
//  1. N kernel-crash reports on the label under made-up device ids with made-up report
//     tokens: every one must be refused (403), as reports are bound to offers;
//  2. then the way round the tokens, since offer requests are anonymous: it makes up N
//     device ids that fall in the label's first-stage rollout bucket (the bucket function is
//     public), asks the edge for offers as each of them (a PC with the label's chip and the
//     baseline driver), and reports each offered install as a kernel crash with the token
//     that came with its offer. The edge takes these (up to its per-network limit), but
//     they all come from one network, so the controller must hold the label as
//     uncorroborated (the policy's MinFailureSources) instead of pausing or cancelling it,
//     while the bad driver, whose failures come from PCs everywhere, is still stopped at its
//     first stage.
//
// With MinFailureSources at 1 (the policy without corroboration) the same attack cancels or
// pauses the good driver: the test of the attack runs both.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	ro "github.com/driveway/driveway/rollout"
)

// Attack is what the forged-report attack did and what came of it.
type Attack struct {
	Day     float64 `json:"day"`
	Label   string  `json:"label"`
	Name    string  `json:"name"`
	Network string  `json:"network"` // the attacker's
	Devices int     `json:"devices"` // made-up devices (ForgedReports)
	// Forged reports with made-up tokens: sent and refused with 403.
	ForgedSent    int `json:"forgedSent"`
	ForgedRefused int `json:"forgedRefused"`
	// Offers the made-up devices were given, their crash reports sent, taken (202) and
	// refused by the edge's limits (429).
	Offers         int `json:"offers"`
	ReportsSent    int `json:"reportsSent"`
	ReportsTaken   int `json:"reportsTaken"`
	ReportsLimited int `json:"reportsLimited"`
	// What the controller made of the label afterwards: steps it held it as uncorroborated,
	// and whether it paused or cancelled it or held a cohort of it.
	HeldUncorroborated int  `json:"heldUncorroborated"`
	Stopped            bool `json:"stopped"`
}

const simAttackNetwork = "198.51.100"

// attack runs the forged-report attack at now (see the file's comment).
func (s *sim) attack(ctx context.Context, now time.Time) error {
	target := s.chips[0] // the good driver whose rollout began on day 0
	if target.bad || target.startDay != 0 {
		return fmt.Errorf("rollout-sim: the attack's target must be the good driver starting on day 0")
	}
	a := &Attack{Day: simRound2(simDay(now)), Label: target.newLabel, Name: target.name, Network: simAttackNetwork + ".0/24", Devices: s.opts.ForgedReports}
	s.res.Attack = a
	nowParam := "?now=" + now.Format(time.RFC3339)
	var tpl *simPC
	for _, pc := range s.pcs {
		if pc.devices[0].chip == target {
			tpl = pc
			break
		}
	}
	if tpl == nil {
		return fmt.Errorf("rollout-sim: no simulated PC has the %s to pose as", target.name)
	}
	crash := func(id, token string, i int) ro.Report {
		return ro.Report{DeviceID: id, LabelID: target.newLabel, InstanceID: fmt.Sprintf("PCI\\VEN_%s&DEV_%s\\4&%08x&0&00E0", target.ven, target.dev, i),
			Result: "kernel-crash-after-install", Time: now, Build: tpl.build, CHID: tpl.chid, ReportToken: token}
	}
	addr := func(i int) string { return fmt.Sprintf("%s.%d", simAttackNetwork, 1+i%254) }

	// 1. Made-up tokens.
	var batch []ro.Report
	for i := range a.Devices {
		batch = append(batch, crash(fmt.Sprintf("forged-%d", i), "AQ"+strings.Repeat(string(rune('A'+i%26)), ro.TokenLen-2), i))
		if len(batch) == ro.MaxBatch || i == a.Devices-1 {
			code, body, err := s.post(ctx, "/v1/reports", batch, addr(i))
			if err != nil {
				return err
			}
			a.ForgedSent += len(batch)
			switch code {
			case http.StatusForbidden:
				a.ForgedRefused += len(batch)
			case http.StatusAccepted:
			default:
				return fmt.Errorf("rollout-sim: the attack's forged reports: %d %.200s", code, body)
			}
			batch = batch[:0]
		}
	}

	// 2. Offers under made-up ids in the first stage's buckets, and crash reports with their
	// tokens.
	bp := uint64(s.policy.For("Net").Ladder[0] * 100)
	if bp == 0 {
		bp = 1
	}
	var reports []ro.Report
	var req []byte
	tried := 0
	for n := 0; a.Offers < a.Devices && tried < a.Devices*int(10000/bp)*4+1000; n++ {
		id := fmt.Sprintf("made-up-%d", n)
		if xxhash.Sum64String(target.newLabel+"\x00"+id)%10000 >= bp {
			continue
		}
		tried++
		fake := *tpl
		fake.id = id
		for k := range fake.devices {
			d := &fake.devices[k]
			d.label, d.date, d.version = d.chip.oldLabel, d.chip.oldDate, d.chip.oldVersion
		}
		req = fake.appendRequest(req[:0])
		code, body, err := s.postRaw(ctx, "/v1/offers"+nowParam, req, addr(n))
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("rollout-sim: the attack's offer request: %d %.200s", code, body)
		}
		var r simResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return fmt.Errorf("rollout-sim: the attack's offer request: %w", err)
		}
		for _, o := range r.Offers {
			if o.LabelID == target.newLabel && o.ReportToken != "" {
				a.Offers++
				reports = append(reports, crash(id, o.ReportToken, n))
			}
		}
	}
	for len(reports) > 0 {
		batch := reports[:min(len(reports), ro.MaxBatch)]
		reports = reports[len(batch):]
		code, body, err := s.post(ctx, "/v1/reports", batch, addr(0))
		if err != nil {
			return err
		}
		a.ReportsSent += len(batch)
		switch code {
		case http.StatusAccepted:
			a.ReportsTaken += len(batch)
			s.sentReports.Add(int64(len(batch)))
		case http.StatusTooManyRequests:
			a.ReportsLimited += len(batch)
		default:
			return fmt.Errorf("rollout-sim: the attack's reports: %d %.200s", code, body)
		}
	}
	return nil
}

// post sends reports as JSON from addr (X-Forwarded-For).
func (s *sim) post(ctx context.Context, path string, reports []ro.Report, addr string) (int, []byte, error) {
	body, err := json.Marshal(reports)
	if err != nil {
		return 0, nil, err
	}
	return s.postRaw(ctx, path, body, addr)
}

func (s *sim) postRaw(ctx context.Context, path string, body []byte, addr string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("rollout-sim: the attack: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
