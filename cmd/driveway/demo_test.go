package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/testclock"
)

// TestDemo runs the README's main command: the example is built, verified, answered from the
// command line and then by the edge over HTTP, and both answers agree. It runs on the tests'
// clock and again in 2027 and 2031: the demo runs at the example's own clock, so the day a
// user runs it changes nothing.
func TestDemo(t *testing.T) {
	for _, today := range []time.Time{testclock.Now(), time.Date(2027, 6, 1, 9, 0, 0, 0, time.UTC), time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)} {
		t.Run(today.Format("2006-01-02"), func(t *testing.T) { testDemo(t, today) })
	}
}

func testDemo(t *testing.T, today time.Time) {
	code, stdout, stderr := runCLIAt(func() time.Time { return today }, nil, "demo", "--dir", t.TempDir())
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, stderr)
	}
	// stdout holds the verify lines, then the CLI's answer, then the edge's.
	dec := json.NewDecoder(strings.NewReader(stdout[strings.Index(stdout, "{"):]))
	var answers []struct {
		Offers []struct{ LabelID, Kind string } `json:"offers"`
	}
	for dec.More() {
		var a struct {
			Offers []struct{ LabelID, Kind string } `json:"offers"`
		}
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("%v in:\n%s", err, stdout)
		}
		answers = append(answers, a)
	}
	if len(answers) != 2 || len(answers[0].Offers) != 4 {
		t.Fatalf("want two answers of 4 offers (CLI, then HTTP), got %+v", answers)
	}
	for i := range answers[0].Offers {
		if answers[0].Offers[i] != answers[1].Offers[i] {
			t.Errorf("offer %d: CLI %+v, edge %+v", i, answers[0].Offers[i], answers[1].Offers[i])
		}
	}
	if !strings.Contains(stderr, "the edge answered over HTTP") {
		t.Errorf("no word of the edge in:\n%s", stderr)
	}
}
