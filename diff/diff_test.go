package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driveway/driveway/bench"
	"github.com/driveway/driveway/build"
	"github.com/driveway/driveway/catalogs/examples"
	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/offer"
	"github.com/driveway/driveway/signing"
)

// exampleNow is the time the bundled example describes (its dates are absolute), so tests
// of its answers run at it whatever the tests' clock: never at the calendar date.
var exampleNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// newSigner makes a throwaway signing key in dir.
func newSigner(t testing.TB, dir string) *signing.Signer {
	t.Helper()
	priv, _, err := signing.GenerateKey(signing.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "test.key")
	if err := os.WriteFile(p, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := signing.LoadSigner(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// buildTree builds a label tree into a new catalog at now and returns an engine of it.
func buildTree(t testing.TB, tree string, now time.Time) *offer.Engine {
	t.Helper()
	out := filepath.Join(t.TempDir(), "catalog")
	if _, err := build.Build(context.Background(), build.Options{Labels: tree, Out: out, Signers: []*signing.Signer{newSigner(t, t.TempDir())}, Now: now}); err != nil {
		t.Fatal(err)
	}
	return openEngine(t, out)
}

func openEngine(t testing.TB, dir string) *offer.Engine {
	t.Helper()
	rel, err := index.OpenRelease(dir, &index.VerifyOptions{Unverified: true, IgnoreExpiry: true, Cache: index.NewCacheBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rel.Close() })
	src, err := offer.SourceOf(rel)
	if err != nil {
		t.Fatal(err)
	}
	e, err := offer.NewEngine(src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// exampleTree copies the bundled example tree into a temporary directory.
func exampleTree(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "contoso")
	err := fs.WalkDir(examples.Contoso, "contoso", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(p, "contoso"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(examples.Contoso, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// toasterPC is a request whose one device is the example's toaster.
func toasterPC(id string) string {
	return `{"deviceId":"` + id + `","os":{"build":22631},"devices":[{"instanceId":"HID\\TOASTER&COL02\\7&1&0","hardwareIds":["HID\\TOASTER&COL02"]}]}`
}

// TestPopulationErrors: a bad line stops the replay with its file:line, the request error's
// code and JSON pointer, and nothing else; the first bad line is named whatever the workers.
func TestPopulationErrors(t *testing.T) {
	e := buildTree(t, exampleTree(t), exampleNow)
	good := toasterPC("pc-1")
	long := `{"deviceId":"x","os":{"build":22631},"devices":[],"pad":"` + strings.Repeat("a", offer.DefaultLimits.MaxBody) + `"}`
	for _, tc := range []struct {
		name, population string
		line             int
		want             string // in the error
	}{
		{"not json", good + "\n{nope\n", 2, "pcs.ndjson:2: bad-json"},
		{"wrong type", good + "\n\n" + `{"deviceId":"x","os":{"build":"22631"},"devices":[]}` + "\n", 3, "pcs.ndjson:3: bad-type at /os/build"},
		{"missing", `{"os":{"build":22631},"devices":[]}`, 1, "pcs.ndjson:1: missing"},
		{"bad id", good + "\n" + `{"deviceId":"x","os":{"build":22631},"devices":[{"instanceId":"a","hardwareIds":[7]}]}`, 2, "at /devices/0/hardwareIds/0"},
		{"long line", good + "\n" + long + "\n" + good + "\n", 2, "pcs.ndjson:2: limit"},
		{"first of two", strings.Repeat(good+"\n", 600) + "[]\n" + strings.Repeat(good+"\n", 600) + "{\n", 601, "pcs.ndjson:601: "},
		{"nul", good + "\n\x00\n", 2, "pcs.ndjson:2: bad-json"},
	} {
		for _, workers := range []int{1, 4} {
			_, err := Run(e, e, strings.NewReader(tc.population), &Options{Now: exampleNow, Name: "pcs.ndjson", Workers: workers})
			var le *LineError
			if !errors.As(err, &le) || le.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s, %d workers: Run = %v; want a LineError at line %d containing %q", tc.name, workers, err, tc.line, tc.want)
			}
		}
	}
}

// TestPopulationLines: blank lines are skipped but counted, CRLF and a last line without a
// newline are read, and every PC is replayed once whatever the number of workers.
func TestPopulationLines(t *testing.T) {
	e := buildTree(t, exampleTree(t), exampleNow)
	var b strings.Builder
	n := 0
	for i := range 2000 {
		switch i % 7 {
		case 3:
			b.WriteString("\n")
		case 5:
			b.WriteString("  \r\n")
		default:
			n++
			b.WriteString(toasterPC(fmt.Sprint("pc-", i)) + "\r\n")
		}
	}
	b.WriteString(toasterPC("last")) // no newline
	n++
	for _, workers := range []int{1, 2, 7} {
		rep, err := Run(e, e, strings.NewReader(b.String()), &Options{Now: exampleNow, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if rep.PCs != n || rep.Changed != 0 || rep.Unchanged != n || len(rep.Changes) != 0 || len(rep.Labels) != 0 {
			t.Errorf("%d workers: %d PCs, %d changed, %d unchanged, %d changes; want %d, 0, %d, 0", workers, rep.PCs, rep.Changed, rep.Unchanged, len(rep.Changes), n, n)
		}
	}
	if _, err := Run(e, e, strings.NewReader(""), &Options{}); err == nil || !strings.Contains(err.Error(), "Now") {
		t.Errorf("Run without Now = %v; want an error naming Options.Now", err)
	}
}

// TestGenDevices: the population driveway bench gen-devices writes is read whole, and a
// release diffed with itself changes nothing.
func TestGenDevices(t *testing.T) {
	tree := filepath.Join(t.TempDir(), "labels")
	if _, err := bench.GenerateLabels(tree, bench.LabelOptions{Labels: 300, Compact: true}); err != nil {
		t.Fatal(err)
	}
	var pop bytes.Buffer
	st, err := bench.GenerateDevices(&pop, bench.DeviceOptions{PCs: 400, Labels: tree})
	if err != nil {
		t.Fatal(err)
	}
	e := buildTree(t, tree, exampleNow)
	rep, err := Run(e, e, &pop, &Options{Now: exampleNow, Name: "gen-devices"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PCs != st.PCs || rep.Changed != 0 {
		t.Errorf("%d PCs replayed, %d changed; want %d, 0", rep.PCs, rep.Changed, st.PCs)
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct {
		in       string
		str      string
		changed  int
		total    int
		exceeded bool
	}{
		{"5%", "5%", 5, 100, false},
		{"5%", "5%", 6, 100, true},
		{" 0.5 % ", "0.5%", 1, 100, true},
		{"0%", "0%", 0, 100, false},
		{"0%", "0%", 1, 10000, true},
		{"100%", "100%", 7, 7, false},
		{"10", "10", 10, 20, false},
		{"10", "10", 11, 20, true},
		{"0", "0", 1, 20, true},
	} {
		l, err := ParseLimit(tc.in)
		if err != nil || l.String() != tc.str || l.Exceeded(tc.changed, tc.total) != tc.exceeded {
			t.Errorf("ParseLimit(%q) = %v, %v; Exceeded(%d, %d) = %v; want %s, %v", tc.in, l, err, tc.changed, tc.total, l.Exceeded(tc.changed, tc.total), tc.str, tc.exceeded)
		}
	}
	for _, bad := range []string{"", "abc", "-1", "101%", "-1%", "5%%", "1.5", "NaN%"} {
		if l, err := ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) = %v; want an error", bad, l)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		n, total int
		want     string
	}{{37, 10000, "0.37%"}, {0, 10, "0%"}, {0, 0, "0%"}, {1, 3, "33.33%"}, {10, 10, "100%"}, {1, 1000000, "<0.01%"}, {1, 2, "50%"}} {
		if got := Percent(tc.n, tc.total); got != tc.want {
			t.Errorf("Percent(%d, %d) = %q; want %q", tc.n, tc.total, got, tc.want)
		}
	}
}
