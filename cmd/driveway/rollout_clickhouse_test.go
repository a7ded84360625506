package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/testclock"
	"github.com/driveway/driveway/rollout"
	"github.com/driveway/driveway/rollout/clickhouse"
	"github.com/driveway/driveway/rollout/clickhouse/chtest"
)

// TestRolloutMeasureClickHouse: `rollout measure --clickhouse URL` prints the measures
// `--reports DIR` prints for the same spool lines (but read.files: a table has none).
func TestRolloutMeasureClickHouse(t *testing.T) {
	if code, _, stderr := runCLI(nil, "rollout", "measure", "--now", testNow()); code != exitUsage || !strings.Contains(stderr, "--clickhouse") {
		t.Errorf("neither --reports nor --clickhouse: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(nil, "rollout", "measure", "--reports", t.TempDir(), "--clickhouse", "http://127.0.0.1:1", "--now", testNow()); code != exitUsage {
		t.Errorf("both --reports and --clickhouse: exit %d, %s", code, stderr)
	}
	srv := chtest.Start(t)
	now := testclock.Now()
	dir := t.TempDir()
	sp, err := rollout.OpenSpool(rollout.SpoolOptions{Dir: dir, Secret: []byte(strings.Repeat("k", 32)), Clock: func() time.Time { return now },
		MinFreeBytes: -1, MinFreePercent: -1})
	if err != nil {
		t.Fatal(err)
	}
	results := append([]string(nil), rollout.Results...)
	for i := 0; i < 300; i++ {
		r := rollout.Report{DeviceID: fmt.Sprintf("pc-%d", i%220), LabelID: fmt.Sprint(3001 + i%3), InstanceID: "x",
			Result: results[i%len(results)], Time: now.Add(-time.Duration(i) * time.Hour), Build: []int{22631, 19045, 0}[i%3],
			Source: fmt.Sprintf("%016x", i%7)}
		c, err := sp.Append([]rollout.Report{r}, now.Add(-time.Duration(i)*time.Hour+time.Minute))
		if err == nil {
			err = c.Wait()
		}
		if err != nil {
			sp.Close()
			t.Fatal(err)
		}
	}
	sp.Close()
	ddl, err := clickhouse.CreateTable("default.cli_reports")
	if err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, ddl)
	files, _ := filepath.Glob(filepath.Join(dir, "reports-*.ndjson"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srv.Insert(t, "default", "cli_reports", b)
	}

	code, spoolOut, stderr := runCLI(nil, "rollout", "measure", "--reports", dir, "--now", testNow())
	if code != exitOK {
		t.Fatalf("--reports: exit %d: %s", code, stderr)
	}
	code, chOut, stderr := runCLI(nil, "rollout", "measure", "--clickhouse", srv.URL, "--clickhouse-table", "default.cli_reports", "--now", testNow())
	if code != exitOK {
		t.Fatalf("--clickhouse: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "reports in ClickHouse") {
		t.Errorf("--clickhouse stderr: %s", stderr)
	}
	var want, got map[string]any
	if err := json.Unmarshal([]byte(spoolOut), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(chOut), &got); err != nil {
		t.Fatal(err)
	}
	want["read"].(map[string]any)["files"] = float64(0)
	if labels, _ := want["labels"].([]any); len(labels) != 3 {
		t.Fatalf("--reports measured %d labels, want 3:\n%s", len(labels), spoolOut)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("--clickhouse printed\n%s\nwant (as --reports)\n%s", chOut, spoolOut)
	}
	if code, _, stderr := runCLI(nil, "rollout", "measure", "--clickhouse", srv.URL, "--clickhouse-table", "no_such_table", "--now", testNow()); code == exitOK || !strings.Contains(stderr, "no_such_table") {
		t.Errorf("a missing table: exit %d, %s", code, stderr)
	}
}
