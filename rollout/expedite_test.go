package rollout

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExpedite (issue 20, item 5): an operator moves a healthy label to 100% at once,
// recorded with who and why; an unhealthy, paused, cancelled, finished or thin one is refused
// with the reason, unless forced (and the record says forced); the audit log keeps it.
func TestExpedite(t *testing.T) {
	dir := t.TempDir()
	recent := t0.Add(-time.Hour) // inside the dwell: the controller would hold it
	old := t0.Add(-10 * 24 * time.Hour)
	tree := stepTree(t, dir,
		rolloutAt(stage(recent, "5")),                                    // 3001 healthy
		rolloutAt(stage(recent, "5")),                                    // 3002 5% failed
		rolloutAt(stage(recent, "5")),                                    // 3003 40 machines
		`{"rollout": {"stages": [`+stage(old, "1")+`], "paused": true}}`, // 3004 paused
		rolloutAt(stage(old, "100")),                                     // 3005 finished
	)
	m := measures(map[string][3]int{"3001": {1000, 0, 0}, "3002": {1000, 50, 0}, "3003": {40, 0, 0}, "3004": {1000, 0, 0}, "3005": {1000, 0, 0}})
	who := ExpediteOptions{By: "alice@example.com", Reason: "the fix for the Contoso docks"}
	d, err := Expedite(tree, "3001", m, &DefaultPolicy, t0, who)
	if err != nil || d.Action != Expedited || d.From != 500 || d.To != 10000 || d.By != who.By ||
		!strings.Contains(d.Reason, "expedited: the fix for the Contoso docks (healthy: success 100.00%") {
		t.Fatalf("healthy label: %+v, %v", d, err)
	}
	if got := d.String(); got != "3001 expedite 5% -> 100% by alice@example.com: "+d.Reason {
		t.Errorf("String: %s", got)
	}
	for id, want := range map[string]string{
		"3002": "not healthy enough to expedite (pause: success 95.00% < 97.00%",
		"3003": "not healthy enough to expedite (hold: not enough data: 40 machines",
		"3004": "is paused",
		"3005": "at 100% already",
		"3999": "not in the tree",
	} {
		if _, err := Expedite(tree, id, m, &DefaultPolicy, t0, who); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", id, err, want)
		}
	}
	if _, err := Expedite(tree, "3001", m, &DefaultPolicy, t0, ExpediteOptions{By: "alice"}); err == nil {
		t.Error("an expedite without a reason was taken")
	}
	forced, err := Expedite(tree, "3002", m, &DefaultPolicy, t0, ExpediteOptions{By: "bob", Reason: "security fix", Force: true})
	if err != nil || !strings.Contains(forced.Reason, "(forced: health not checked)") {
		t.Fatalf("forced: %+v, %v", forced, err)
	}

	// Applied, the label is at 100% from now; the audit log holds both decisions.
	if changed, err := Apply(dir, []Decision{d, forced}); err != nil || len(changed) != 2 {
		t.Fatalf("apply: %v, %v", changed, err)
	}
	audit := filepath.Join(dir, "audit.ndjson")
	if err := AppendAudit(audit, []Decision{d, forced, {Label: "3003", Action: Hold}}, t0); err != nil {
		t.Fatal(err)
	}
	tree2 := stepTree(t, dir)
	for _, l := range tree2.Labels() {
		if l.ID == "3001" || l.ID == "3002" {
			if bp := scheduled(l.Distribution.Rollout, t0); bp != 10000 {
				t.Errorf("%s after the expedite: %d bp", l.ID, bp)
			}
		}
	}
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []AuditRecord
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var r AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 || recs[0].By != "alice@example.com" || recs[1].By != "bob" || !recs[0].Time.Equal(t0.UTC()) || recs[1].Action != Expedited {
		t.Errorf("audit log: %+v (a hold is not a change and is not logged)", recs)
	}
}

// TestExpediteAheadOfSchedule: a healthy label whose publisher has stages still to come is
// expedited (those stages give way), where the controller would follow the schedule.
func TestExpediteAheadOfSchedule(t *testing.T) {
	dir := t.TempDir()
	tree := stepTree(t, dir, rolloutAt(stage(t0.Add(-time.Hour), "5"), stage(t0.Add(48*time.Hour), "25")))
	m := measures(map[string][3]int{"3001": {1000, 0, 0}})
	if ds := Step(tree, m, &DefaultPolicy, t0); len(ds) != 1 || ds[0].Action != Hold || !strings.Contains(ds[0].Reason, "publisher's schedule") {
		t.Fatalf("the controller: %v", ds)
	}
	d, err := Expedite(tree, "3001", m, &DefaultPolicy, t0, ExpediteOptions{By: "alice", Reason: "fix"})
	if err != nil || d.From != 500 || len(d.dist.Rollout.Stages) != 2 || d.dist.Rollout.Stages[1].BasisPoints != 10000 || !d.dist.Rollout.Stages[1].At.Equal(t0) {
		t.Fatalf("%+v, %v; want stages 5%% then 100%% now", d, err)
	}
}
