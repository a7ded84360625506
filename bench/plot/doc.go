// Package plot draws the SVG line charts of the benchmark report and the rollout
// simulation: a Chart of Series, linear or logarithmic axes, self-contained SVG with no
// scripts or external references, so REPORT.md and a browser show it as it is.
package plot
