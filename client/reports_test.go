package client_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/driveway/driveway/client"
)

// TestPendingVectors: every file in testdata/pending parses (ok-*) or is refused (bad-*);
// ok-one.json is byte for byte what AppendPending writes.
func TestPendingVectors(t *testing.T) {
	files, _ := filepath.Glob("testdata/pending/*.json")
	if len(files) < 8 {
		t.Fatalf("%d vectors", len(files))
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		rs, err := client.ParsePending(b)
		name := filepath.Base(f)
		switch {
		case strings.HasPrefix(name, "ok-") && err != nil:
			t.Errorf("%s: %v", name, err)
		case strings.HasPrefix(name, "bad-") && err == nil:
			t.Errorf("%s: accepted as %+v", name, rs)
		case strings.HasPrefix(name, "bad-"):
			t.Logf("%s: %v", name, err)
		}
	}
	b, _ := os.ReadFile("testdata/pending/ok-one.json")
	rs, _ := client.ParsePending(b)
	if len(rs) != 1 || rs[0].Build != 22631 || rs[0].Result != "installed" {
		t.Fatalf("ok-one.json: %+v", rs)
	}
	if got := client.AppendPending(nil, rs); string(got) != string(b) {
		t.Errorf("AppendPending:\n%s\nwant:\n%s", got, b)
	}
	b, _ = os.ReadFile("testdata/pending/bad-no-token.json")
	if _, err := client.ParsePending(b); err == nil || !strings.Contains(err.Error(), `report 0: member "reportToken"`) {
		t.Errorf("bad-no-token.json: %v", err)
	}
}

// TestPendingFiles: save, load, empty removes the file, the newest MaxPending are kept, a
// broken file is an error naming it.
func TestPendingFiles(t *testing.T) {
	dir := t.TempDir()
	if rs, err := client.LoadPending(dir); err != nil || rs != nil {
		t.Fatalf("none: %v %v", rs, err)
	}
	var many []client.Report
	for i := range client.MaxPending + 10 {
		many = append(many, client.Report{DeviceID: "d", LabelID: fmt.Sprint(i), InstanceID: "i", Result: "installed", Time: "2026-11-21T12:00:00Z", ReportToken: "t"})
	}
	if err := client.SavePending(dir, many); err != nil {
		t.Fatal(err)
	}
	rs, err := client.LoadPending(dir)
	if err != nil || len(rs) != client.MaxPending || !reflect.DeepEqual(rs, many[10:]) {
		t.Fatalf("%d reports, %v", len(rs), err)
	}
	if err := client.SavePending(dir, nil); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Fatalf("left %v", es)
	}
	os.WriteFile(filepath.Join(dir, client.PendingFile), []byte(`{"format":"driveway-client-reports/1","reports":[`), 0o644)
	if _, err := client.LoadPending(dir); err == nil || !strings.Contains(err.Error(), client.PendingFile) {
		t.Fatalf("broken: %v", err)
	}
}

// FuzzPending: ParsePending never panics, and what it accepts round-trips through
// AppendPending.
func FuzzPending(f *testing.F) {
	files, _ := filepath.Glob("testdata/pending/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := client.ParsePending(b)
		if err != nil {
			return
		}
		again, err := client.ParsePending(client.AppendPending(nil, rs))
		if err != nil || len(again) != len(rs) || (len(rs) > 0 && !reflect.DeepEqual(again, rs)) {
			t.Fatalf("round trip of %+v: %+v, %v", rs, again, err)
		}
	})
}
