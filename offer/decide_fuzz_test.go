package offer_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/driveway/driveway/offer"
)

// FuzzDecide feeds arbitrary bodies through the whole request path against the example
// catalog (catalogs/examples/contoso, built once): whatever decodes is decided with and
// without explain, at a time the fuzzer moves around the catalog's rollouts, and encoded.
// Nothing may panic, every answer must be valid JSON, explain must only add to the answer,
// and a Result reused across requests must answer as a fresh one.
//
//	go test ./offer -run '^$' -fuzz FuzzDecide -fuzztime 60s
func FuzzDecide(f *testing.F) {
	for _, glob := range []string{"testdata/requests/*.json", "../catalogs/examples/requests/*.json"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint16(0))
		}
	}
	f.Add([]byte(`{"deviceId":"x","os":{"build":16299,"revision":192},"scan":"devmgr","devices":[{"instanceId":"i","hardwareIds":["HID\\TOASTER&COL02"],"driver":{"date":"2025-01-01","version":"1.0.0.0","generic":true}}]}`), uint16(500))
	f.Add([]byte(`{"deviceId":"x","os":{"build":22631},"scan":"upgrade","targetBuild":26100,"chids":[null,null,null,null,null,"458d93b5-c0e0-5e41-9675-36c6d93dae68"],"devices":[{"instanceId":"i","hardwareIds":["PCI\\VEN_8086&DEV_15F3&SUBSYS_0A5417AA&REV_03"],"extensions":[{"extensionId":"e2f84ce7-8efa-411c-aa69-97454ca4cb57","date":"2020-01-01","version":"1.0.0.0"}]}]}`), uint16(2000))

	eng := buildDir(f, filepath.Join("..", "catalogs", "examples", "contoso"), buildOpts{})
	f.Fuzz(func(t *testing.T, body []byte, hours uint16) {
		var req offer.Request
		if e := offer.NewDecoder(offer.DefaultLimits).Decode(body, &req); e != nil {
			if out := offer.AppendError(nil, e); !json.Valid(out) {
				t.Fatalf("error answer is not valid JSON: %s", out)
			}
			return
		}
		// From two months before the example's "now" to three months after.
		now := decideAt.Add(time.Duration(int(hours)%(150*24)-60*24) * time.Hour)
		var res offer.Result
		eng.Decide(&req, now, false, &res)
		plain := offer.AppendResponse(nil, &req, &res, eng.OS())
		eng.Decide(&req, now, true, &res)
		explained := offer.AppendResponse(nil, &req, &res, eng.OS())
		for _, out := range [][]byte{plain, explained} {
			if !json.Valid(out) {
				t.Fatalf("answer is not valid JSON: %s\nrequest: %q", out, body)
			}
		}
		// {"release":…,"offers":[…]}\n, and the same with ,"explain":[…] before the brace.
		if !bytes.HasPrefix(explained, plain[:len(plain)-2]) || !bytes.HasPrefix(explained[len(plain)-2:], []byte(`,"explain":[`)) {
			t.Fatalf("explain changes the answer:\nwithout: %s\nwith:    %s", plain, explained)
		}
		eng.Decide(&req, now, false, &res)
		if again := offer.AppendResponse(nil, &req, &res, eng.OS()); !bytes.Equal(again, plain) {
			t.Fatalf("a reused Result answers\n%s\nwhere a fresh one answers\n%s", again, plain)
		}
	})
}
