package flight

// The HTML page. One file, nothing fetched: the styles, the plots (inline SVG, plot.go), the
// report's JSON (in a script element of type application/json, id "flight-data", for
// anyone who wants the numbers) and a small script that sorts a table by the column
// clicked (a cell's data-sort, when it has one, is its key; an empty key sorts last). The page reads the same without the script. When the script has run, it sets
// data-ready="1" on the html element (the browser test waits for it).

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/driveway/driveway/catalogs"
)

// maxCohortBars is how many cohorts (the most machines first) the cohort plots show; the
// table lists them all.
const maxCohortBars = 12

// WriteHTML writes the report as a self-contained HTML page.
func (r *Report) WriteHTML(w io.Writer) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("flight: %w", err)
	}
	var stageLabels []string
	var stageMeasures []Judged
	for _, s := range r.Stages {
		if !s.Planned {
			stageLabels = append(stageLabels, catalogs.FormatBasisPoints(s.BasisPoints)+"% "+s.Start.Format("Jan 2"))
			stageMeasures = append(stageMeasures, s.Judged)
		}
	}
	var cohortLabels []string
	var cohortMeasures []Judged
	for i, c := range r.Cohorts {
		if i == maxCohortBars {
			break
		}
		cohortLabels = append(cohortLabels, cohortName(c.Release, c.CHID))
		cohortMeasures = append(cohortMeasures, c.Judged)
	}
	var codeBars []bar
	for _, e := range r.Errors {
		codeBars = append(codeBars, bar{label: e.Code, value: float64(e.Machines), note: fmt.Sprintf("%s: %d machines, %d reports", e.Code, e.Machines, e.Reports)})
	}
	v := struct {
		*Report
		Data                                            template.JS
		TimelinePlot, StagePlots, CohortPlots, CodePlot template.HTML
	}{
		Report:       r,
		Data:         template.JS(data), // encoding/json escapes <, > and &: no "</script" in it
		TimelinePlot: template.HTML(timelinePlot(r.Timeline, r.Decisions)),
		StagePlots:   template.HTML(ratePanels("stage", stageLabels, stageMeasures, r.Policy)),
		CohortPlots:  template.HTML(ratePanels("cohort", cohortLabels, cohortMeasures, r.Policy)),
		CodePlot:     template.HTML(barPanel("error-codes", "machines per error code", "", codeBars, nil)),
	}
	return page.Execute(w, v)
}

// cohortName is a cohort's short name: its release and the CHID's first group.
func cohortName(release, chid string) string {
	if len(chid) > 8 && chid != "unknown" {
		chid = chid[:8] + "…"
	}
	return release + " " + chid
}

var funcs = template.FuncMap{
	"pct": func(bp int) string { return catalogs.FormatBasisPoints(bp) + "%" },
	"rate": func(v float64) string {
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".") + "%"
	},
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") },
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"fail": func(j Judged) float64 { return 100 - j.SuccessPercent },
}

var page = template.Must(template.New("flight").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="driveway rollout report">
<title>Flight report: label {{.Label.ID}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #1b1f24; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #d0d7de; }
.sub { color: #57606a; } .warn { color: #9a6700; } .bad { color: #cf222e; font-weight: 600; } .ok { color: #1a7f37; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { white-space: nowrap; cursor: pointer; background: #f6f8fa; user-select: none; } th[aria-sort]::after { content: " ↕"; color: #8c959f; }
td.n, th.n { text-align: right; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; }
svg.plot { background: #fff; border: 1px solid #eaeef2; max-width: 100%; height: auto; }
svg .title { font-weight: 600; font-size: 12px; } svg .tick { font-size: 10px; fill: #57606a; }
svg .grid { stroke: #eaeef2; } svg .bar { fill: #0969da; } svg .bar.dim { fill: #b6d4f5; }
svg .bound { stroke-width: 1.5; stroke-dasharray: 5 3; } svg .bound.advance { stroke: #1a7f37; } svg .bound.pause { stroke: #bf8700; } svg .bound.cancel { stroke: #cf222e; }
svg .boundlabel { font-size: 9px; } svg .boundlabel.advance { fill: #1a7f37; } svg .boundlabel.pause { fill: #bf8700; } svg .boundlabel.cancel { fill: #cf222e; }
svg .series { fill: none; stroke-width: 2; } svg .series.offered { stroke: #0969da; } svg .series.installed { stroke: #1a7f37; } svg .series.failed { stroke: #cf222e; }
svg .legend { font-size: 11px; } svg .legend.offered { fill: #0969da; } svg .legend.installed { fill: #1a7f37; } svg .legend.failed { fill: #cf222e; }
svg .decision line { stroke: #6e7781; stroke-dasharray: 2 3; } svg .decision text { font-size: 10px; fill: #24292f; }
svg .decision.pause line, svg .decision.cancel line { stroke: #cf222e; stroke-dasharray: none; }
svg .empty { fill: #8c959f; font-size: 12px; }
code { font-size: 12px; }
</style>
</head>
<body>
<h1>Flight report: label {{.Label.ID}}{{with .Label.Name}} — {{.}}{{end}}</h1>
<p class="sub">{{with .Label.INF}}<code>{{.}}</code>{{end}}{{with .Label.Class}} · class {{.}}{{end}}{{with .Label.Version}} · driver {{.}}{{end}}{{with .Label.Date}} ({{.}}){{end}} · <code>{{.Label.File}}</code></p>
<p><strong>{{.Label.State}}</strong>. {{.Flight.Machines}} machines reported ({{.Reports}} reports received {{time .Since}} – {{time .Generated}}):
{{.Flight.Installed}} installed, {{.Flight.Failed}} failed, success {{rate .Flight.SuccessPercent}}, kernel crashes {{rate .Flight.KernelCrashRate}}, PnP errors {{rate .Flight.PnPErrorRate}}.
{{if .Flight.BreaksCancel}}<span class="bad">Past the cancel bound: {{.Flight.BreaksCancel}}.</span>
{{else if .Flight.BreaksPause}}<span class="bad">Past the pause bound: {{.Flight.BreaksPause}}.</span>
{{else if .Flight.BreaksAdvance}}<span class="warn">Below what advancing needs: {{.Flight.BreaksAdvance}}.</span>
{{else if .Flight.Enough}}<span class="ok">Within every bound of the policy.</span>
{{else}}<span class="warn">{{.Flight.Note}}.</span>{{end}}</p>
<p class="sub">Bounds are the rollout policy's{{with .Policy.Class}} for class {{.}}{{end}}, judged here by raw rates over at least {{.Policy.MinLabelMachines}} machines (a label or stage) or {{.Policy.MinCohortMachines}} (a cohort); the controller also requires confidence and corroboration from several networks before it pauses or cancels.</p>

<h2>Offered and installed over time</h2>
<div class="plots">{{.TimelinePlot}}</div>
<p class="sub">Buckets of {{.Timeline.Bucket}}; machines are counted once, by their first install or failure report an edge received.</p>

<h2>Decisions</h2>
{{if .Decisions}}<table id="decisions"><thead><tr><th aria-sort="none">time</th><th aria-sort="none">action</th><th aria-sort="none">from</th><th aria-sort="none">to</th><th aria-sort="none">by</th><th aria-sort="none">reason</th></tr></thead><tbody>
{{range .Decisions}}<tr><td data-sort="{{iso .At}}">{{time .At}}</td><td>{{.Action}}</td><td class="n">{{pct .From}}</td><td class="n">{{pct .To}}</td><td>{{.By}}</td><td>{{.Reason}}{{with .BlockID}} (block <code>{{.}}</code>){{end}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="sub">No decisions: no audit log was given, or it has none for this label (<code>rollout step --audit FILE</code> writes it).</p>{{end}}

<h2>Per stage</h2>
<div class="plots">{{.StagePlots}}</div>
<table id="stages"><thead><tr><th aria-sort="none">stage</th><th aria-sort="none">from</th><th aria-sort="none">to</th><th class="n" aria-sort="none">machines</th><th class="n" aria-sort="none">failed</th><th class="n" aria-sort="none">kernel crashes</th><th class="n" aria-sort="none">PnP errors</th><th aria-sort="none">verdict</th></tr></thead><tbody>
{{range .Stages}}<tr><td data-sort="{{.BasisPoints}}">{{pct .BasisPoints}}</td><td data-sort="{{iso .Start}}">{{time .Start}}</td><td data-sort="{{iso .End}}">{{time .End}}</td>{{if .Planned}}<td colspan="5" class="sub" data-sort="">planned</td>{{else}}<td class="n">{{.Machines}}</td><td class="n">{{rate (fail .Judged)}}</td><td class="n">{{rate .KernelCrashRate}}</td><td class="n">{{rate .PnPErrorRate}}</td><td>{{template "verdict" .Judged}}</td>{{end}}</tr>
{{else}}<tr><td colspan="8" class="sub">The label has no rollout stages.</td></tr>
{{end}}</tbody></table>

<h2>Per cohort (OS release × model)</h2>
<div class="plots">{{.CohortPlots}}</div>
<table id="cohorts"><thead><tr><th aria-sort="none">release</th><th aria-sort="none">CHID</th><th class="n" aria-sort="none">machines</th><th class="n" aria-sort="none">failed</th><th class="n" aria-sort="none">kernel crashes</th><th class="n" aria-sort="none">PnP errors</th><th aria-sort="none">verdict</th></tr></thead><tbody>
{{range .Cohorts}}<tr><td>{{.Release}}</td><td><code>{{.CHID}}</code></td><td class="n">{{.Machines}}</td><td class="n">{{rate (fail .Judged)}}</td><td class="n">{{rate .KernelCrashRate}}</td><td class="n">{{rate .PnPErrorRate}}</td><td>{{template "verdict" .Judged}}</td></tr>
{{else}}<tr><td colspan="7" class="sub">No reports.</td></tr>
{{end}}</tbody></table>

<h2>Error codes seen most</h2>
{{if .Errors}}<div class="plots">{{.CodePlot}}</div>
<table id="error-codes"><thead><tr><th aria-sort="none">code</th><th class="n" aria-sort="none">machines</th><th class="n" aria-sort="none">reports</th></tr></thead><tbody>
{{range .Errors}}<tr><td><code>{{.Code}}</code></td><td class="n">{{.Machines}}</td><td class="n">{{.Reports}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="sub">No failure report carried a numeric error code.</p>{{end}}

<h2>Devices that rolled back</h2>
{{if .RolledBack}}<p>{{.RolledBackDevices}} devices{{if lt (len .RolledBack) .RolledBackDevices}}; the first {{len .RolledBack}}{{end}}. Devices are their spool pseudonyms: the report holds no PC's id.</p>
<table id="rolled-back"><thead><tr><th aria-sort="none">device</th><th aria-sort="none">first rollback</th><th aria-sort="none">release</th><th aria-sort="none">CHID</th><th aria-sort="none">error code</th></tr></thead><tbody>
{{range .RolledBack}}<tr><td><code>{{.Device}}</code></td><td data-sort="{{iso .At}}">{{time .At}}</td><td>{{.Release}}</td><td><code>{{.CHID}}</code></td><td><code>{{.ErrorCode}}</code></td></tr>
{{end}}</tbody></table>{{else}}<p class="sub">No device rolled back.</p>{{end}}

<p class="sub">Generated {{time .Generated}} by <code>driveway rollout report</code>. The numbers are in the page as JSON (<code>#flight-data</code>); <code>--json</code> prints the same.</p>
<script type="application/json" id="flight-data">{{.Data}}</script>
<script>
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("flight-data").textContent);
  document.querySelectorAll("table").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > col; });
        var key = function (r) { var c = r.cells[col]; return c.hasAttribute("data-sort") ? c.dataset.sort : c.textContent.trim(); };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
          if (x === "" || y === "") { return (x === "") - (y === ""); } // no value: last either way
          var d = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? d : -d;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.documentElement.dataset.label = data.label.id;
  document.documentElement.dataset.ready = "1";
})();
</script>
</body>
</html>
{{define "verdict"}}{{if .BreaksCancel}}<span class="bad">cancel: {{.BreaksCancel}}</span>{{else if .BreaksPause}}<span class="bad">pause: {{.BreaksPause}}</span>{{else if .BreaksAdvance}}<span class="warn">below advance: {{.BreaksAdvance}}</span>{{else if .Enough}}<span class="ok">within bounds</span>{{else}}<span class="sub">{{.Note}}</span>{{end}}{{end}}
`))
