package diff

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/driveway/driveway/offer"
)

var (
	fuzzOnce   sync.Once
	fuzzEngine *offer.Engine
)

// FuzzRun feeds arbitrary populations to the replay: it never panics or hangs, a bad line
// is a LineError naming a line the input has, and a population it accepts is replayed whole
// (one PC a non-blank line).
func FuzzRun(f *testing.F) {
	fuzzOnce.Do(func() { fuzzEngine = buildTree(f, exampleTree(f), exampleNow) })
	for _, s := range []string{
		toasterPC("a") + "\n" + toasterPC("b"),
		"\n\n\r\n",
		`{"deviceId":"x","os":{"build":19045,"arch":"arm64"},"scan":"upgrade","targetBuild":22631,"devices":[{"instanceId":"i","hardwareIds":["PCI\\VEN_8086&DEV_15F3&SUBSYS_00008086&REV_03"],"driver":{"date":"2023-05-01","version":"1.2.3.4"}}]}`,
		"{\n}",
		toasterPC("a") + "\n[1,2\n" + toasterPC("c"),
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Run(fuzzEngine, fuzzEngine, bytes.NewReader(data), &Options{Now: exampleNow, Name: "fuzz", Workers: 2})
		lines := bytes.Count(data, []byte("\n")) + 1
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 || le.Line > lines || le.Err == nil || !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("Run = %v; want a LineError within the %d lines", err, lines)
			}
			return
		}
		n := 0
		for _, l := range strings.Split(string(data), "\n") {
			if !blank([]byte(l)) {
				n++
			}
		}
		if rep.PCs != n || rep.Changed != 0 {
			t.Fatalf("%d PCs, %d changed; want %d, 0 (a release against itself)", rep.PCs, rep.Changed, n)
		}
	})
}
