package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/internal/conformance"
	"github.com/driveway/driveway/internal/testclock"
)

// The conformance scenarios (testdata/conformance, a copy of shared/conformance) run here
// exactly as shared/conformance/run.py runs them against the binary: keygen, build with the
// scenario's --now and flags, then offer --key --now for every request.

// runCLI runs the command line in process, at the tests' clock (testclock).
func runCLI(stdin []byte, args ...string) (code int, stdout, stderr string) {
	return runCLIAt(testclock.Now, stdin, args...)
}

// runCLIAt runs the command line in process with now as its clock.
func runCLIAt(now func() time.Time, stdin []byte, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runAt(now, args, bytes.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

// testNow is the tests' clock as a --now flag's value.
func testNow() string { return testclock.Now().Format(time.RFC3339) }

var codeLine = regexp.MustCompile(`^\s*([LW]\d{3})\b`)

func TestConformance(t *testing.T) {
	scenarios := conformance.Load(t)
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		sc := scenarios[name]
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			labels := filepath.Join(work, "labels")
			os.MkdirAll(labels, 0o755)
			conformance.WriteTree(t, labels, sc.Labels)
			key := filepath.Join(work, "k")
			if code, _, stderr := runCLI(nil, "keygen", "--unencrypted", "--out", key); code != 0 {
				t.Fatalf("keygen: %d %s", code, stderr)
			}
			catalog := filepath.Join(work, "catalog")
			args := append([]string{"build", "--labels", labels, "--out", catalog, "--key", key + ".key", "--now", sc.Now}, sc.Build.Flags...)
			at, err := time.Parse(time.RFC3339, sc.Now)
			if err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLIAt(func() time.Time { return at }, nil, args...) // the scenario's clock: its dates are absolute
			var codes []string
			seen := map[string]bool{}
			for _, line := range strings.Split(stderr, "\n") {
				if m := codeLine.FindStringSubmatch(line); m != nil && m[1][0] == 'L' && !seen[m[1]] {
					seen[m[1]] = true
					codes = append(codes, m[1])
				}
			}
			sort.Strings(codes)
			want := append([]string(nil), sc.Build.Codes...)
			sort.Strings(want)
			if !sc.Build.OK {
				if code == 0 {
					t.Errorf("build succeeded, want failure with %v", want)
				}
				if fmt.Sprint(codes) != fmt.Sprint(want) {
					t.Errorf("build codes %v, want %v", codes, want)
				}
				return
			}
			if code != 0 {
				t.Fatalf("build failed (%d): %s", code, stderr)
			}
			if sc.Build.Codes != nil && fmt.Sprint(codes) != fmt.Sprint(want) {
				t.Errorf("build codes %v, want %v", codes, want)
			}
			for _, r := range sc.Requests {
				now := r.Now
				if now == "" {
					now = sc.Now
				}
				code, stdout, stderr := runCLI(r.Request, "offer", "--catalog", catalog, "--key", key+".pub", "--now", now)
				if code != 0 {
					t.Errorf("[%s] offer exited %d: %s", r.Name, code, stderr)
					continue
				}
				var got struct {
					Offers []conformance.Offer `json:"offers"`
				}
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Errorf("[%s] offer printed no JSON: %v: %s", r.Name, err, stdout)
					continue
				}
				if g, w := sortedKeys(got.Offers), sortedKeys(r.Offers); g != w {
					t.Errorf("[%s] offers\n got %s\nwant %s", r.Name, g, w)
				}
			}
		})
	}
}

func sortedKeys(os []conformance.Offer) string {
	var ks []string
	for _, o := range os {
		ks = append(ks, fmt.Sprintf("(%s %s %s)", o.InstanceID, o.Kind, o.LabelID))
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}
