package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/driveway/driveway/catalogs/chid"
)

const offersDocPath = "../../docs/offers.md"

// encoded is a member name as an encoder appends it: "name": in a raw string literal.
const encoded = `"([a-zA-Z]+)":`

// TestOffersDocExample holds the example response of docs/offers.md to what `driveway offer`
// answers today: the bundled example tree built and asked the bundled example request at the
// example's own clock (its dates are absolute, so not the tests' clock). The release id
// depends on the signing key, so the page writes it as "sha256:…".
func TestOffersDocExample(t *testing.T) {
	doc, err := os.ReadFile(offersDocPath)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := docBlock(string(doc), "<!-- offer-example:", "<!-- offer-example end -->")
	if !ok {
		t.Fatal("docs/offers.md has no example response between <!-- offer-example: … --> and <!-- offer-example end -->")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	cat := filepath.Join(dir, "cat")
	labels := filepath.Join("..", "..", "catalogs", "examples", "contoso")
	request := filepath.Join("..", "..", "catalogs", "examples", "requests", "contoso-model-b13.json")
	for _, args := range [][]string{
		{"keygen", "--unencrypted", "--out", key},
		{"build", "--labels", labels, "--out", cat, "--key", key + ".key", "--now", exampleNow, "--quiet"},
	} {
		if code, _, stderr := runCLIAt(exampleClock, nil, args...); code != exitOK {
			t.Fatalf("%s: exit %d: %s", args[0], code, stderr)
		}
	}
	code, got, stderr := runCLIAt(exampleClock, nil, "offer", "--catalog", cat, "--key", key+".pub", "--now", exampleNow, "--indent", "--request", request)
	if code != exitOK {
		t.Fatalf("offer: exit %d: %s", code, stderr)
	}
	got = regexp.MustCompile(`"id": "sha256:[0-9a-f]{64}"`).ReplaceAllString(got, `"id": "sha256:…"`)
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("the example response in docs/offers.md is not what driveway offer answers now; replace it with this (the release id written sha256:…) and check the prose around it still holds:\n%s", got)
	}
}

// docBlock returns the body of the first fenced code block after the line starting with
// begin, which must come before end.
func docBlock(doc, begin, end string) (string, bool) {
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", false
	}
	part := doc[i:j]
	open := strings.Index(part, "```")
	if open < 0 {
		return "", false
	}
	part = part[open:]
	nl := strings.IndexByte(part, '\n')
	close := strings.LastIndex(part, "```")
	if nl < 0 || close <= nl {
		return "", false
	}
	return part[nl+1 : close], true
}

// TestOffersDocMembers holds docs/offers.md to the decoder and the encoders: every request
// member the decoder reads, every response member the encoders write (offer's, the edge's
// statement and proofs, GET /v1/release) is named on the page.
func TestOffersDocMembers(t *testing.T) {
	doc, err := os.ReadFile(offersDocPath)
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(path)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	members := map[string]string{} // member -> where it comes from
	// add takes the members re finds in path; with literals, only inside its raw string
	// literals (what an encoder appends), not in its comments.
	add := func(re, path string, min int) {
		src := read(path)
		if re == encoded {
			src = strings.Join(regexp.MustCompile("`[^`]*`").FindAllString(src, -1), "\n")
		}
		n := 0
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(src, -1) {
			members[m[1]] = path
			n++
		}
		if n < min {
			t.Fatalf("%s: %d members matched %s; the pattern no longer matches how members are written there", path, n, re)
		}
	}
	add(`case "([a-zA-Z]+)":`, "offer/decode.go", 20)
	add(encoded, "offer/response.go", 20)
	add(encoded, "statement/records.go", 4)
	add("json:\"([a-zA-Z]+)[\",]", "serve/generation.go", 8) // GET /v1/release
	add("json:\"([a-zA-Z]+)[\",]", "serve/releaselog.go", 2) // its "log"
	for _, f := range chid.FieldNames {
		members[f] = "catalogs/chid (smbios)"
	}
	for m, from := range members {
		if !strings.Contains(string(doc), "`"+m+"`") && !strings.Contains(string(doc), `"`+m+`"`) {
			t.Errorf("docs/offers.md does not name member %q (from %s): document it", m, from)
		}
	}
}
