package catalogs

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	// problemCode is how a rule's code is written in this package's source: a quoted
	// literal ("L021", "W002"; E for any future class).
	problemCode = regexp.MustCompile(`"([LEW][0-9]{3})"`)
	// docCodeRow is a code's row in docs/labels.md: "| L021 | …".
	docCodeRow = regexp.MustCompile(`(?m)^\| ([LEW][0-9]{3}) \|`)
	// docCodeMention is any code named in the page's text.
	docCodeMention = regexp.MustCompile(`\b[LEW][0-9]{3}\b`)
)

// TestLabelsDocCodes holds docs/labels.md to the code: every problem code this package can
// emit has a row there, and every code the page names is one the package emits.
func TestLabelsDocCodes(t *testing.T) {
	emitted := map[string][]string{} // code -> files
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range problemCode.FindAllStringSubmatch(string(b), -1) {
			emitted[m[1]] = append(emitted[m[1]], f)
		}
	}
	if len(emitted) < 40 {
		t.Fatalf("found %d problem codes in the source; the pattern %s no longer matches how codes are written", len(emitted), problemCode)
	}
	doc, err := os.ReadFile("../docs/labels.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range docCodeRow.FindAllStringSubmatch(string(doc), -1) {
		if rows[m[1]] {
			t.Errorf("docs/labels.md has two rows for %s", m[1])
		}
		rows[m[1]] = true
	}
	var missing []string
	for code, in := range emitted {
		if !rows[code] {
			missing = append(missing, code+" (emitted in "+strings.Join(dedupe(in), ", ")+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("docs/labels.md does not document %s: add a row to its Validation codes tables saying what it means and how to fix it", m)
	}
	seen := map[string]bool{}
	for _, code := range docCodeMention.FindAllString(string(doc), -1) {
		if _, ok := emitted[code]; !ok && !seen[code] {
			seen[code] = true
			t.Errorf("docs/labels.md names %s, which package catalogs never emits: remove it or fix the code", code)
		}
	}
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
