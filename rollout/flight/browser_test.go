package flight

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser finds a Chromium to render the page with (Debian's chromium-headless-shell or
// chromium): under CI=true a missing one fails the test, elsewhere it skips.
func browser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium: install Debian's chromium-headless-shell (.ci/run does)")
	}
	t.Skip("no Chromium (apt-get install chromium-headless-shell)")
	return ""
}

// rendered is what the page shows once its script has run.
type rendered struct {
	Ready    string `json:"ready"`
	Label    string `json:"label"`
	Scripts  int    `json:"scripts"`
	Injected bool   `json:"injected"`
	Title    string `json:"title"`
	Plots    []struct {
		Name      string  `json:"name"`
		Width     float64 `json:"width"`
		Height    float64 `json:"height"`
		Bars      int     `json:"bars"`
		Series    int     `json:"series"`
		Bounds    int     `json:"bounds"`
		Decisions int     `json:"decisions"`
	} `json:"plots"`
	Rows map[string]int `json:"rows"`
}

const inspect = `(() => {
  const plots = Array.from(document.querySelectorAll("svg.plot")).map(s => {
    const r = s.getBoundingClientRect();
    return {name: s.dataset.plot, width: r.width, height: r.height,
      bars: Array.from(s.querySelectorAll("rect.bar")).filter(b => b.getBoundingClientRect().height > 0).length,
      series: Array.from(s.querySelectorAll("path.series")).filter(p => p.getTotalLength() > 0).length,
      bounds: s.querySelectorAll("line.bound").length, decisions: s.querySelectorAll("g.decision").length};
  });
  const rows = {};
  document.querySelectorAll("table[id]").forEach(t => { rows[t.id] = t.tBodies[0].rows.length; });
  return {ready: document.documentElement.dataset.ready || "", label: document.documentElement.dataset.label || "",
    scripts: document.scripts.length, injected: window.injected !== undefined, title: document.title, plots, rows};
})()`

// render opens the page in a headless Chromium, runs then (after the page's own script has
// had its turn: the load event), and returns what the page shows and the script errors the
// browser reported (uncaught exceptions and console errors), seen from the tab's start.
func render(t *testing.T, bin, page string, then ...chromedp.Action[chromedp.Void]) (rendered, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1000, 1400))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	var mu sync.Mutex
	var errs []string
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			errs = append(errs, fmt.Sprintf("exception at line %d: %s", d.LineNumber+1, text))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				errs = append(errs, "console."+string(ev.Type)+": "+strings.Join(args, " "))
			}
		}
	}))
	defer bcancel()
	steps := append([]chromedp.Action[chromedp.Void]{chromedp.Navigate("file://" + page), chromedp.WaitReady(chromedp.CSS("body"))}, then...)
	if err := chromedp.Do(bctx, steps...); err != nil {
		t.Fatalf("chromium (%s): %v", bin, err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[rendered](inspect))
	if err != nil {
		t.Fatalf("chromium (%s): reading the page: %v", bin, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got, append([]string(nil), errs...)
}

// TestReportInBrowser: the page, opened in a real headless Chromium, runs its script with no
// error, shows every plot at a size with its bars, lines, bounds and decision marks, keeps
// the hostile name and reason as text, and sorts a table by the column clicked. A copy of
// the page with a broken script proves the test sees script errors.
func TestReportInBrowser(t *testing.T) {
	bin := browser(t)
	r := makeFixture(t).report(t)
	var b bytes.Buffer
	must(t, r.WriteHTML(&b))
	dir := t.TempDir()
	page := filepath.Join(dir, "flight.html")
	must(t, os.WriteFile(page, b.Bytes(), 0o644))

	var order string
	got, errs := render(t, bin, page,
		chromedp.WaitReady(chromedp.CSS(`html[data-ready="1"]`)),
		chromedp.Click(chromedp.CSS(`#stages thead th:nth-child(4)`)), // machines, ascending
		chromedp.Click(chromedp.CSS(`#stages thead th:nth-child(4)`)), // descending
		chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
			var err error
			order, err = chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#stages tbody tr")).map(r => r.cells[0].textContent).join(" ")`)(ctx, tab)
			return err
		}))
	if len(errs) > 0 {
		t.Errorf("script errors: %q", errs)
	}
	if got.Ready != "1" || got.Label != labelID || got.Scripts != 2 || got.Injected {
		t.Errorf("page state %+v; want ready, label %s, its two scripts and nothing injected", got, labelID)
	}
	if !strings.Contains(got.Title, "3001") {
		t.Errorf("title %q", got.Title)
	}
	want := map[string][4]int{ // bars, series, bounds (at least), decisions
		"timeline": {0, 3, 0, 3}, "stage-failures": {3, 0, 3, 0}, "stage-kernel": {2, 0, 3, 0}, "stage-pnp": {0, 0, 3, 0},
		"cohort-failures": {6, 0, 3, 0}, "cohort-kernel": {2, 0, 3, 0}, "cohort-pnp": {0, 0, 3, 0}, "error-codes": {3, 0, 0, 0},
	}
	seen := map[string]bool{}
	for _, p := range got.Plots {
		seen[p.Name] = true
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected plot %q", p.Name)
			continue
		}
		if p.Width < 200 || p.Height < 150 || p.Bars != w[0] || p.Series != w[1] || p.Bounds < w[2] || p.Decisions != w[3] {
			t.Errorf("plot %s: %+v; want a visible plot with %d bars, %d lines, %d bounds and %d decisions", p.Name, p, w[0], w[1], w[2], w[3])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("plots %v, want %d", seen, len(want))
	}
	if got.Rows["stages"] != 4 || got.Rows["cohorts"] != 6 || got.Rows["decisions"] != 3 || got.Rows["error-codes"] != 3 || got.Rows["rolled-back"] != 3 {
		t.Errorf("table rows %v", got.Rows)
	}
	// Descending by machines: 1,200, 600, 150, and the planned stage (no count) kept after.
	if order != "25% 5% 1% 50%" {
		t.Errorf("stages sorted by machines, descending: %q", order)
	}

	broken := filepath.Join(dir, "broken.html")
	must(t, os.WriteFile(broken, bytes.Replace(b.Bytes(), []byte(`"use strict";`), []byte(`"use strict"; noSuchFunction();`), 1), 0o644))
	got, errs = render(t, bin, broken)
	if len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), "noSuchFunction") || got.Ready == "1" {
		t.Errorf("a broken script: errors %q, ready %q; want the exception seen", errs, got.Ready)
	}
}
