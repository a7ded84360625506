package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDemo runs the README's main command: the example is built, verified, answered from the
// command line and then by the edge over HTTP, and both answers agree.
func TestDemo(t *testing.T) {
	code, stdout, stderr := runCLI(nil, "demo", "--dir", t.TempDir())
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
