package main

import (
	"encoding/json"
	"fmt"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/signing"
)

func cmdVerify(e *env, args []string) int {
	fs := e.flags("verify", `
Verify checks the newest release of a catalog directory offline, with nothing but its files
and the public key: the signature over the manifest, every shard's size and sha256, the
structure of every shard (every offset in bounds, every block decompresses to its declared
size with its checksum, every key sorted, found through the hash table and routed to the
shard that holds it), expiry and the manifest's shard list. It prints one line per check and
exits 0 only if every check holds; a failure names the file and the fault.

Key rotation: repeat --key and set --threshold to require several signatures.`)
	catalog := fs.String("catalog", "", "the catalog `DIR` (a build's --out) (required)")
	keys := fs.StringArray("key", nil, "public key `FILE` (required; repeat for several)")
	threshold := fs.Int("threshold", 1, "distinct keys that must have signed")
	ignoreExpiry := fs.Bool("ignore-expiry", false, "accept an expired release (archives)")
	shallow := fs.Bool("shallow", false, "check sizes and hashes but not the structure of every shard")
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	nowFlag := fs.String("now", "", "check expiry at `TIME` (RFC 3339) instead of now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("verify", err.Error())
	}
	if *catalog == "" || len(*keys) == 0 {
		return e.usageError("verify", "--catalog and --key are required")
	}
	verifiers, err := loadVerifiers(*keys)
	if err != nil {
		return e.fail("verify", err)
	}
	type check struct {
		Check string `json:"check"`
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}
	var checks []check
	m, err := index.Verify(*catalog, &index.VerifyOptions{Keys: verifiers, Threshold: *threshold, Now: now, IgnoreExpiry: *ignoreExpiry, Shallow: *shallow},
		func(s index.Step) {
			c := check{Check: s.What, OK: s.Err == nil}
			if s.Err != nil {
				c.Error = oneLine(s.Err.Error())
			}
			checks = append(checks, c)
			if !*asJSON {
				if c.OK {
					fmt.Fprintf(e.stdout, "ok    %s\n", c.Check)
				} else {
					fmt.Fprintf(e.stdout, "FAIL  %s: %s\n", c.Check, c.Error)
				}
			}
		})
	if *asJSON {
		out := struct {
			OK       bool    `json:"ok"`
			Sequence uint64  `json:"sequence,omitempty"`
			Checks   []check `json:"checks"`
		}{OK: err == nil, Checks: checks}
		if m != nil {
			out.Sequence = m.Sequence
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	}
	if err != nil {
		if !*asJSON {
			fmt.Fprintf(e.stderr, "driveway verify: %s does not verify\n", *catalog)
		}
		return exitFailure
	}
	if !*asJSON {
		fmt.Fprintf(e.stderr, "release %d of %s verifies\n", m.Sequence, m.Catalog)
	}
	return exitOK
}

func loadVerifiers(paths []string) ([]*signing.Verifier, error) {
	var vs []*signing.Verifier
	for _, p := range paths {
		v, err := signing.LoadVerifier(p)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, nil
}
