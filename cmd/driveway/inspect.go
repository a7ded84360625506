package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/catalogs/ostable"
	"github.com/driveway/driveway/index"
)

func cmdInspect(e *env, args []string) int {
	fs := e.flags("inspect", `
Inspect shows what the newest release of a catalog directory holds: the manifest (sequence,
times, counts, control table), the shard layout (size, keys, blocks, compression ratio), and
with --hwid every entry for one hardware ID: its rows and, per OS family and release, the rows
an edge would consider there (offered-forward expanded), each row with its label's control
state at --now (cancelled, paused, rolling out, in flight, named by a block). With --label,
one label's record and control state.`)
	catalog := fs.String("catalog", "", "the catalog `DIR` (required)")
	keys := fs.StringArray("key", nil, "public key `FILE` to verify the release first")
	hwid := fs.String("hwid", "", "list every entry for this hardware `ID`")
	label := fs.String("label", "", "show this label `ID`")
	asJSON := fs.Bool("json", false, "print JSON")
	nowFlag := fs.String("now", "", "the `TIME` control states are shown at (RFC 3339); default: now")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("inspect", err.Error())
	}
	if *catalog == "" {
		return e.usageError("inspect", "--catalog is required")
	}
	rel, err := openForReading(e, "inspect", *catalog, *keys, 1, now)
	if err != nil {
		return e.fail("inspect", err)
	}
	defer rel.Close()
	tab, err := ostable.Parse(rel.Manifest.OSTable)
	if err != nil {
		return e.fail("inspect", err)
	}
	var control compiled.Control
	if err := json.Unmarshal(rel.Manifest.Control, &control); err != nil {
		return e.fail("inspect", err)
	}
	switch {
	case *hwid != "":
		return inspectHWID(e, rel, tab, &control, now, *hwid, *asJSON)
	case *label != "":
		return inspectLabel(e, rel, tab, &control, *label, *asJSON)
	}
	return inspectRelease(e, rel, &control, *asJSON)
}

type shardLayout struct {
	Kind        string  `json:"kind"`
	Shard       int     `json:"shard"`
	Name        string  `json:"name"`
	Bytes       int64   `json:"bytes"`
	Keys        int     `json:"keys"`
	Blocks      int     `json:"blocks"`
	RawBytes    int64   `json:"rawBlockBytes"`
	StoredBytes int64   `json:"storedBlockBytes"`
	Ratio       float64 `json:"compressionRatio"`
}

func inspectRelease(e *env, rel *index.Release, control *compiled.Control, asJSON bool) int {
	m := rel.Manifest
	var layout []shardLayout
	for _, ref := range m.Shards {
		sh := rel.HWID
		if ref.Kind == index.KindLabel {
			sh = rel.Label
		}
		info := sh[ref.Shard].Info()
		l := shardLayout{ref.Kind, ref.Shard, ref.Name, ref.Size, info.Keys, info.Blocks, info.RawBlockBytes, info.StoredBlockBytes, 0}
		if info.StoredBlockBytes > 0 {
			l.Ratio = float64(info.RawBlockBytes) / float64(info.StoredBlockBytes)
		}
		layout = append(layout, l)
	}
	if asJSON {
		b, _ := json.MarshalIndent(struct {
			ID       string          `json:"id"`
			Manifest *index.Manifest `json:"manifest"`
			Layout   []shardLayout   `json:"layout"`
		}{rel.ID, m, layout}, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	w := e.stdout
	fmt.Fprintf(w, "release %d of %s  %s\n", m.Sequence, m.Catalog, rel.ID)
	fmt.Fprintf(w, "created %s, expires %s\n", m.Created.Format(time.RFC3339), m.Expires.Format(time.RFC3339))
	fmt.Fprintf(w, "%d labels, %d rows, %d hardware IDs, %d keys\n", m.Counts.Labels, m.Counts.Rows, m.Counts.HWIDs, m.Counts.Keys)
	fmt.Fprintf(w, "routing: %s seed %d, %d HWID shards, %d label shards\n", m.Routing.Hash, m.Routing.Seed, m.Routing.HWIDShards, m.Routing.LabelShards)
	fmt.Fprintf(w, "control: %d labels not fully live, %d blocks, %d audiences\n", len(control.Labels), len(control.Blocks), len(control.Audiences))
	for _, lc := range control.Labels {
		fmt.Fprintf(w, "  label %s: %s\n", lc.Label, controlSummary(&lc))
	}
	for _, b := range control.Blocks {
		fmt.Fprintf(w, "  block %s: %s\n", b.ID, b.Reason)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tshard\tbytes\tkeys\tblocks\traw\tstored\tratio\t name\t")
	var total shardLayout
	for _, l := range layout {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t %s\t\n", l.Kind, l.Shard, l.Bytes, l.Keys, l.Blocks, l.RawBytes, l.StoredBytes, l.Ratio, l.Name)
		total.Bytes += l.Bytes
		total.Keys += l.Keys
		total.Blocks += l.Blocks
		total.RawBytes += l.RawBytes
		total.StoredBytes += l.StoredBytes
	}
	ratio := 0.0
	if total.StoredBytes > 0 {
		ratio = float64(total.RawBytes) / float64(total.StoredBytes)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t\t\n", len(layout), total.Bytes, total.Keys, total.Blocks, total.RawBytes, total.StoredBytes, ratio)
	tw.Flush()
	return exitOK
}

func controlSummary(lc *compiled.LabelControl) string {
	var parts []string
	if f := lc.Flight; f != nil {
		s := "flight to " + strings.Join(f.Channels, ", ")
		if !f.Approved.IsZero() {
			s += ", approved " + f.Approved.Format(time.RFC3339)
		}
		parts = append(parts, s)
	}
	if r := lc.Rollout; r != nil {
		var st []string
		for _, s := range r.Stages {
			st = append(st, catalogs.FormatBasisPoints(s.BasisPoints)+"% from "+s.At.Format(time.RFC3339))
		}
		s := "rollout " + strings.Join(st, " → ")
		if r.Paused {
			s += " (paused)"
		}
		parts = append(parts, s)
	}
	if c := lc.Cancelled; c != nil {
		s := "cancelled " + c.At.Format(time.RFC3339)
		if c.Rollback {
			s += " with rollback"
		}
		if c.Reason != "" {
			s += ": " + c.Reason
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// rowJSON is one compiled row as inspect shows it.
type rowJSON struct {
	Label    string `json:"label"`
	Family   string `json:"family"`
	Release  string `json:"release"`
	INF      string `json:"inf"`
	Version  string `json:"driverVersion"`
	Date     string `json:"driverDate"`
	Score    string `json:"featureScore"`
	State    string `json:"state"`
	Extended bool   `json:"extended,omitempty"`
	Category string `json:"category"`
	Control  string `json:"control,omitempty"` // the label's control state (rowControl)
}

// rowControl is a label's control state at a time in a few words, for a row's state column:
// "" when the label is fully live and no block names it.
func rowControl(control *compiled.Control, label string, now time.Time) string {
	var parts []string
	for i := range control.Labels {
		lc := &control.Labels[i]
		if lc.Label != label {
			continue
		}
		if c := lc.Cancelled; c != nil {
			if now.Before(c.At) {
				parts = append(parts, "to be cancelled "+c.At.Format("2006-01-02"))
			} else {
				parts = append(parts, "cancelled")
			}
		}
		if r := lc.Rollout; r != nil {
			switch p := catalogs.FormatBasisPoints(r.Scheduled(now)); {
			case r.Paused:
				parts = append(parts, "paused (stages at "+p+"%)")
			case r.Scheduled(now) < 10000:
				parts = append(parts, "rollout "+p+"%")
			}
		}
		if f := lc.Flight; f != nil && (f.Approved.IsZero() || now.Before(f.Approved)) {
			parts = append(parts, "in flight")
		}
	}
	for _, b := range control.Blocks {
		for _, l := range b.Labels {
			if l == label {
				parts = append(parts, "blocked by "+b.ID+" where it matches")
			}
		}
	}
	return strings.Join(parts, ", ")
}

func inspectHWID(e *env, rel *index.Release, tab *ostable.Table, control *compiled.Control, now time.Time, id string, asJSON bool) int {
	key := catalogs.NormalizeHWID(id)
	shard := index.Route([]byte(key), len(rel.HWID))
	v, ok, err := rel.HWID[shard].Get([]byte(key))
	if err != nil {
		return e.fail("inspect", err)
	}
	if !ok {
		fmt.Fprintf(e.stderr, "driveway inspect: %s is in no label of release %d (it would be in HWID shard %d)\n", key, rel.Manifest.Sequence, shard)
		return exitFailure
	}
	rec, err := compiled.ParseHWID(v)
	if err != nil {
		return e.fail("inspect", err)
	}
	rows := make([]rowJSON, rec.NumRows())
	for i := range rows {
		r := rec.Row(i)
		rows[i] = rowJSON{Label: fmt.Sprint(r.Label), Family: r.Family.String(), Release: tab.SlotName(r.Slot),
			Score: fmt.Sprintf("%02X", r.Score), State: r.State(), Extended: r.Flags&compiled.RowExtended != 0,
			Control: rowControl(control, fmt.Sprint(r.Label), now)}
		if l, ok := lookupLabel(rel, r.Label); ok {
			if inf, ok := l.INF(int(r.INF)); ok {
				rows[i].INF, rows[i].Version = string(inf.Name), catalogs.FormatVersion(inf.Version)
				rows[i].Date = catalogs.DateOfDays(inf.Date).Format("2006-01-02")
			}
			rows[i].Category = "automatic"
			if l.Flags&compiled.FlagManual != 0 {
				rows[i].Category = "manual"
			}
		}
	}
	// The entries: for every family and slot with rows, which rows an edge considers.
	type entry struct {
		Family  string   `json:"family"`
		Release string   `json:"release"`
		Labels  []string `json:"labels"`
	}
	var entries []entry
	for f := ostable.Family(0); f < ostable.NumFamilies; f++ {
		for s := ostable.Slot(0); int(s) < tab.NumSlots(); s++ {
			start, n := rec.Cell(f, s)
			if n == 0 {
				continue
			}
			en := entry{Family: f.String(), Release: tab.SlotName(s)}
			for i := start; i < start+n; i++ {
				en.Labels = append(en.Labels, rows[i].Label)
			}
			entries = append(entries, en)
		}
	}
	if asJSON {
		b, _ := json.MarshalIndent(struct {
			HardwareID string    `json:"hardwareId"`
			Shard      int       `json:"shard"`
			Rows       []rowJSON `json:"rows"`
			Entries    []entry   `json:"entries"`
		}{key, shard, rows, entries}, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%s  (HWID shard %d, %d rows)\n\n", key, shard, len(rows))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "label\trow\tinf\tversion\tdate\tscore\tstate\tcategory")
	for _, r := range rows {
		state := r.State
		if r.Extended {
			state += " (expanded)"
		}
		if r.Control != "" {
			state += "; " + r.Control
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Label, r.Family, r.Release, r.INF, r.Version, r.Date, r.Score, state, r.Category)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "\nentries (family, release -> labels considered there; releases are offered forward):\n")
	writeEntries(e.stdout, entries, func(en entry) (string, string, []string) { return en.Family, en.Release, en.Labels })
	return exitOK
}

// writeEntries prints runs of consecutive releases with the same labels on one line.
func writeEntries[T any](w io.Writer, entries []T, get func(T) (string, string, []string)) {
	for i := 0; i < len(entries); {
		f, r, labels := get(entries[i])
		j := i + 1
		last := r
		for j < len(entries) {
			f2, r2, l2 := get(entries[j])
			if f2 != f || strings.Join(l2, ",") != strings.Join(labels, ",") {
				break
			}
			last = r2
			j++
		}
		span := r
		if last != r {
			span = r + " … " + last
		}
		fmt.Fprintf(w, "  %-13s %-14s %s\n", f, span, strings.Join(labels, ", "))
		i = j
	}
}

func lookupLabel(rel *index.Release, id uint64) (compiled.Label, bool) {
	key := compiled.LabelKey(id)
	v, ok, err := rel.Label[index.Route(key[:], len(rel.Label))].Get(key[:])
	if err != nil || !ok {
		return compiled.Label{}, false
	}
	l, err := compiled.ParseLabel(v)
	return l, err == nil
}

func inspectLabel(e *env, rel *index.Release, tab *ostable.Table, control *compiled.Control, id string, asJSON bool) int {
	n := catalogs.IDValue(id)
	l, ok := lookupLabel(rel, n)
	if !ok || fmt.Sprint(n) != id {
		fmt.Fprintf(e.stderr, "driveway inspect: label %s is not in release %d\n", id, rel.Manifest.Sequence)
		return exitFailure
	}
	var lc *compiled.LabelControl
	for i := range control.Labels {
		if control.Labels[i].Label == id {
			lc = &control.Labels[i]
		}
	}
	type infJSON struct {
		Name      string `json:"name"`
		Class     string `json:"class"`
		Version   string `json:"version"`
		Date      string `json:"date"`
		Extension string `json:"extension,omitempty"`
		CHIDs     int    `json:"chids"`
	}
	out := struct {
		Label      string                 `json:"label"`
		Name       string                 `json:"name"`
		Product    string                 `json:"product"`
		Submission string                 `json:"submission"`
		GoLive     string                 `json:"goLive"`
		Flags      []string               `json:"flags"`
		Floor      string                 `json:"floor,omitempty"`
		Ceiling    string                 `json:"ceiling,omitempty"`
		Package    string                 `json:"package"`
		Audiences  int                    `json:"audiences"`
		CHIDs      int                    `json:"chids"`
		INFs       []infJSON              `json:"infs"`
		Control    *compiled.LabelControl `json:"control"`
	}{Label: id, Name: string(l.Name), Product: fmt.Sprint(l.Product), Submission: fmt.Sprint(l.Submission),
		GoLive: time.Unix(l.GoLive, 0).UTC().Format(time.RFC3339), Package: fmt.Sprintf("%s (%d bytes, sha256 %x)", l.URL, l.PackageSize, l.PackageSHA256),
		Audiences: l.Audiences.Len(), CHIDs: l.CHIDs.Len(), Control: lc}
	for i, name := range []string{"windowsUpdate", "autoInstallOnApplicableSystems", "autoInstallDuringOSUpgrade", "manual", "windows10S", "coEngineered", "flightSigned", "extensionINF"} {
		if l.Flags&(1<<i) != 0 {
			out.Flags = append(out.Flags, name)
		}
	}
	if l.FloorSlot != ostable.NoSlot {
		out.Floor = tab.SlotName(l.FloorSlot)
	}
	if l.CeilSlot != ostable.NoSlot {
		out.Ceiling = tab.SlotName(l.CeilSlot)
	}
	for i := 0; i < l.NumINFs(); i++ {
		inf, _ := l.INF(i)
		ij := infJSON{Name: string(inf.Name), Class: string(inf.Class), Version: catalogs.FormatVersion(inf.Version),
			Date: catalogs.DateOfDays(inf.Date).Format("2006-01-02"), CHIDs: inf.CHIDs.Len()}
		if inf.HasExtension {
			ij.Extension = inf.Extension.String()
		}
		out.INFs = append(out.INFs, ij)
	}
	if asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	w := e.stdout
	fmt.Fprintf(w, "label %s: %s\n", out.Label, out.Name)
	fmt.Fprintf(w, "product %s, submission %s, live from %s\n", out.Product, out.Submission, out.GoLive)
	fmt.Fprintf(w, "flags: %s\n", strings.Join(out.Flags, ", "))
	if out.Floor != "" || out.Ceiling != "" {
		fmt.Fprintf(w, "floor %s, ceiling %s\n", orNone(out.Floor), orNone(out.Ceiling))
	}
	fmt.Fprintf(w, "package: %s\n", out.Package)
	fmt.Fprintf(w, "audiences: %d, CHIDs: %d\n", out.Audiences, out.CHIDs)
	for _, inf := range out.INFs {
		ext := ""
		if inf.Extension != "" {
			ext = ", extension " + inf.Extension
		}
		fmt.Fprintf(w, "inf %s (%s) %s %s, %d CHIDs%s\n", inf.Name, inf.Class, inf.Version, inf.Date, inf.CHIDs, ext)
	}
	if lc == nil {
		fmt.Fprintln(w, "control: fully live, no control entry")
	} else {
		fmt.Fprintf(w, "control: %s\n", controlSummary(lc))
	}
	return exitOK
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
