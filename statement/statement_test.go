package statement_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/driveway/driveway/catalogs/chid"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/signing"
	"github.com/driveway/driveway/statement"
)

var update = flag.Bool("update", false, "rewrite testdata/ from the code (check the diff)")

// TestProofMatchesTlog checks the tree's root and every proof against tlog's own
// ProveRecord and CheckRecord for trees of 1 to 70 records.
func TestProofMatchesTlog(t *testing.T) {
	for n := 1; n <= 70; n++ {
		leaves := make([]tlog.Hash, n)
		var stored []tlog.Hash
		for i := range leaves {
			leaves[i] = tlog.RecordHash([]byte(fmt.Sprintf("record %d\n", i)))
			hs, err := tlog.StoredHashes(int64(i), []byte(fmt.Sprintf("record %d\n", i)), tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(idx))
				for k, x := range idx {
					out[k] = stored[x]
				}
				return out, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, hs...)
		}
		read := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for k, x := range idx {
				out[k] = stored[x]
			}
			return out, nil
		})
		tree, err := statement.NewTree(leaves)
		if err != nil {
			t.Fatal(err)
		}
		root, _ := tlog.TreeHash(int64(n), read)
		if tree.Root() != root {
			t.Fatalf("n=%d: root %v, tlog %v", n, tree.Root(), root)
		}
		for i := range n {
			want, err := tlog.ProveRecord(int64(n), int64(i), read)
			if err != nil {
				t.Fatal(err)
			}
			got := tree.Proof(int64(i))
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("n=%d i=%d: proof %v, tlog %v", n, i, got, want)
			}
			if err := tlog.CheckRecord(got, int64(n), root, int64(i), leaves[i]); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			var js []string
			out := tree.AppendProof([]byte("x"), int64(i))
			if err := json.Unmarshal(out[1:], &js); err != nil || len(js) != len(want) || out[0] != 'x' {
				t.Fatalf("n=%d i=%d: AppendProof: %q %v", n, i, out, err)
			}
			for k, h := range want {
				if js[k] != base64.StdEncoding.EncodeToString(h[:]) {
					t.Fatalf("n=%d i=%d: AppendProof's hash %d is %s; want %v", n, i, k, js[k], h)
				}
			}
			if enc, _ := json.Marshal(js); !bytes.Equal(out[1:], enc) {
				t.Fatalf("n=%d i=%d: AppendProof = %s; want %s", n, i, out[1:], enc)
			}
		}
	}
}

// vectorLabels are the label records of the test vectors.
func vectorLabels(t *testing.T) map[uint64][]byte {
	ext, _ := chid.Parse("e2f84ce7-8efa-411c-aa69-97454ca4cb57")
	var sum [32]byte
	for i := range sum {
		sum[i] = byte(i * 7)
	}
	d := []compiled.LabelData{
		{ID: 3001, Product: 13635, Submission: 1152921504628295137, Flags: compiled.FlagWindowsUpdate | compiled.FlagAutoApplicable | compiled.FlagAutoDU,
			PackageSize: 1843200, PackageSHA256: sum, URL: "https://packages.example/contoso/e1d-12.19.1.37.cab", Name: "e1d",
			INFs: []compiled.INFData{{Name: "e1d.inf", Class: "Net", Date: 19733, Version: 12<<48 | 19<<32 | 1<<16 | 37},
				{Name: "e1dext.inf", Class: "Extension", Date: 19733, Version: 12<<48 | 19<<32 | 1<<16 | 37, Extension: &ext}}},
		{ID: 3002, Product: 13636, Submission: 77, Flags: compiled.FlagWindowsUpdate | compiled.FlagManual,
			PackageSize: 10, PackageSHA256: sum, URL: "https://packages.example/\"quoted\" ü.cab", Name: "manual",
			INFs: []compiled.INFData{{Name: "m.inf", Class: "Media", Date: 0, Version: 1}}},
		{ID: 3003, Product: 1, Submission: 2, PackageSize: 3, PackageSHA256: sum, URL: "u", Name: "none"},
	}
	out := map[uint64][]byte{}
	for i := range d {
		rec, err := compiled.AppendLabel(nil, &d[i])
		if err != nil {
			t.Fatal(err)
		}
		out[d[i].ID] = rec
	}
	return out
}

// TestVectors builds the records, tree, statement and a proof of testdata/ from fixed
// label records and the Ed25519 key of signing/testdata, and compares them byte for byte.
func TestVectors(t *testing.T) {
	labels := vectorLabels(t)
	var b statement.Builder
	var records []byte
	for _, id := range []uint64{3002, 3001, 3003} { // any order: Finish sorts
		if err := b.Add(id, labels[id]); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uint64{3001, 3002, 3003} {
		text, err := statement.AppendRecord(nil, id, labels[id])
		if err != nil {
			t.Fatal(err)
		}
		r, err := statement.ParseRecord(text)
		if err != nil {
			t.Fatalf("label %d: %v\n%s", id, err, text)
		}
		if r.Label != id {
			t.Fatalf("parsed label %d", r.Label)
		}
		records = append(records, text...)
		records = append(records, "--\n"...)
	}
	recs, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.LoadSigner(context.Background(), "../signing/testdata/openssl-ed25519.key", nil)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) // a vector, not a clock
	st := &statement.Statement{Catalog: "contoso-example", Sequence: 42, Created: created, Expires: created.Add(7 * 24 * time.Hour),
		Records: recs.Tree().Len(), TreeHash: recs.Tree().Root()}
	env, err := statement.Sign(st, signer)
	if err != nil {
		t.Fatal(err)
	}
	l3001, err := compiled.ParseLabel(labels[3001])
	if err != nil {
		t.Fatal(err)
	}
	proof, _ := recs.AppendProof(nil, 3001, &l3001)
	files := map[string][]byte{
		"records.txt":    records,
		"record.txt":     records[:bytes.Index(records, []byte("--\n"))],
		"statement.dsse": append(env, '\n'),
		"proof.json":     append(proof[len(`"proof":`):], '\n'),
	}
	for name, want := range files {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the code's (run with -update after checking):\n%s\nwant\n%s", path, got, want)
		}
	}
	// The stored vectors check on their own: statement signature, proof to its tree hash.
	stored, _ := os.ReadFile("testdata/statement.dsse")
	v, _ := signing.LoadVerifier("../signing/testdata/openssl-ed25519.pub")
	got, err := statement.Open(bytes.TrimSpace(stored), 1, v)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Index  int64
		Record string
		Hashes []tlog.Hash
	}
	pj, _ := os.ReadFile("testdata/proof.json")
	if err := json.Unmarshal(pj, &p); err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(p.Hashes, got.Records, got.TreeHash, p.Index, tlog.RecordHash([]byte(p.Record))); err != nil {
		t.Fatalf("the stored proof: %v", err)
	}
}

// A record has one spelling: every byte changed to a space, newline, quote, backslash or a
// letter no field holds, and every truncation, is refused. (A digit changed to another
// digit is another valid record: it is the tree that tells them apart.)
func TestParseRecordCanonical(t *testing.T) {
	text, err := statement.AppendRecord(nil, 3001, vectorLabels(t)[3001])
	if err != nil {
		t.Fatal(err)
	}
	for i := range text {
		for _, c := range []byte{' ', 'Z', '\n', '"', '\\'} {
			b := bytes.Clone(text)
			if b[i] == c || (inQuotes(text, i) && c != '"') { // another valid name
				continue
			}
			b[i] = c
			if r, err := statement.ParseRecord(b); err == nil {
				t.Errorf("byte %d = %q: parsed %+v", i, c, r)
			}
		}
		if _, err := statement.ParseRecord(text[:i]); err == nil && text[i-1] != '\n' { // whole inf lines off: a record of fewer INFs
			t.Errorf("truncated to %d bytes: parsed", i)
		}
	}
}

// inQuotes reports whether byte i of a record is inside a quoted string.
func inQuotes(text []byte, i int) bool {
	in := false
	for k := bytes.LastIndexByte(text[:i], '\n') + 1; k < i; k++ {
		switch {
		case in && text[k] == '\\':
			k++
		case text[k] == '"':
			in = !in
		}
	}
	return in
}

// TestRecordJSONEscaped: the record an edge writes per offer, escaped as it is written, is
// exactly the JSON string of the record (what a PC unquotes and hashes), for the vectors and
// for fields with quotes, backslashes, control and non-ASCII characters.
func TestRecordJSONEscaped(t *testing.T) {
	labels := vectorLabels(t)
	for _, u := range []string{`https://p.example/a"b\c?x=<1>&y=2`, "https://p.example/\x00\t\n\u00e9\U0001F600\xff", `\\""`, ""} {
		d := compiled.LabelData{ID: 9, Product: 1, Submission: 2, URL: u, PackageSize: 3,
			INFs: []compiled.INFData{{Name: `n"a\me.inf`, Class: "Cl\u00e4ss", Date: 19000, Version: 1 << 48}}}
		rec, err := compiled.AppendLabel(nil, &d)
		if err != nil {
			t.Fatal(err)
		}
		labels[9] = rec
		for id, rec := range labels {
			l, err := compiled.ParseLabel(rec)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := statement.AppendLabelRecord(nil, id, &l)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false) // the edge writes <, > and & as they are
			enc.Encode(string(plain))
			want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			got, err := statement.AppendLabelRecordJSON([]byte(`"`), id, &l)
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, '"'); !bytes.Equal(got, want) {
				t.Fatalf("label %d (url %q):\n got %s\nwant %s", id, u, got, want)
			}
		}
	}
}

// TestAppendDate holds AppendDate's civil arithmetic to time's DateOnly layout: every day of
// years 0 to 9999 and a margin on each side (where it hands over to time), and the extremes.
func TestAppendDate(t *testing.T) {
	const first, last = -719528 - 1000, 2932896 + 1000 // 0000-01-01 and 9999-12-31, ± 1000 days
	check := func(days int32) {
		want := time.Unix(int64(days)*86400, 0).UTC().AppendFormat([]byte("x"), time.DateOnly)
		if got := statement.AppendDate([]byte("x"), days); !bytes.Equal(got, want) {
			t.Fatalf("AppendDate(%d) = %q; want %q", days, got, want)
		}
	}
	for days := int32(first); days <= last; days++ {
		check(days)
	}
	for _, days := range []int32{math.MinInt32, math.MinInt32 + 1, math.MaxInt32 - 1, math.MaxInt32} {
		check(days)
	}
}
