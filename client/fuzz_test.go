package client_test

import (
	"os"
	"testing"
	"time"

	"github.com/driveway/driveway/client"
)

// FuzzResponse feeds Verify's parser of responses and proofs arbitrary bytes: it must never
// panic, and whatever it accepts as a proof has at most MaxHashes hashes. Seeded from the
// proof vector of package statement and a genuine-looking response.
func FuzzResponse(f *testing.F) {
	if b, err := os.ReadFile("../statement/testdata/proof.json"); err == nil {
		f.Add([]byte(`{"release":{"sequence":42},"offers":[{"labelId":"3001","proof":` + string(b) + `}]}`))
	}
	if b, err := os.ReadFile("../statement/testdata/statement.dsse"); err == nil {
		f.Add([]byte(`{"release":{"sequence":42},"statement":` + string(b) + `,"offers":[]}`))
	}
	f.Add([]byte(`{"offers":[{"proof":{"index":-1,"record":"","hashes":["AAAA"]}}]}`))
	f.Add([]byte(`{"offers":[{"proof":null}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := client.ParseResponse(body)
		if err == nil {
			for _, o := range r.Offers {
				if o.Proof != nil && (len(o.Proof.Hashes) > client.MaxHashes || o.Proof.Index < 0) {
					t.Fatalf("accepted proof %+v", o.Proof)
				}
			}
		}
		client.Verify(body, []byte(`{"devices":[]}`), client.Options{Now: time.Unix(0, 0)})
	})
}
