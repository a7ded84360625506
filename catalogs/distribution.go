package catalogs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// distributionJSON is the shape of a label's "distribution" in labels.md.
type distributionJSON struct {
	Author    *authorJSON    `json:"author,omitempty"`
	Flight    *flightJSON    `json:"flight,omitempty"`
	Rollout   *rolloutJSON   `json:"rollout,omitempty"`
	Cancelled *cancelledJSON `json:"cancelled,omitempty"`
}

type authorJSON struct {
	SellerID string `json:"sellerId,omitempty"`
	Role     string `json:"role,omitempty"`
}

type flightJSON struct {
	Channels []string `json:"channels"`
	Start    string   `json:"start"`
	Approved string   `json:"approved,omitempty"`
}

type rolloutJSON struct {
	Stages   []stageJSON   `json:"stages"`
	Paused   bool          `json:"paused"`
	Clusters []clusterJSON `json:"clusters,omitempty"`
}

type clusterJSON struct {
	CHID     string      `json:"chid"`
	MinBuild int         `json:"minBuild,omitempty"`
	MaxBuild int         `json:"maxBuild,omitempty"`
	HWID     string      `json:"hardwareId,omitempty"`
	Percent  json.Number `json:"percent"`
}

type stageJSON struct {
	At      string      `json:"at"`
	Percent json.Number `json:"percent"`
}

type cancelledJSON struct {
	At       string `json:"at"`
	Rollback bool   `json:"rollback"`
	Reason   string `json:"reason,omitempty"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// MarshalJSON encodes a distribution in the shape of labels.md.
func (d Distribution) MarshalJSON() ([]byte, error) {
	var out distributionJSON
	if a := d.Author; a != nil {
		out.Author = &authorJSON{a.SellerID, a.Role}
	}
	if f := d.Flight; f != nil {
		fj := &flightJSON{Channels: f.Channels, Start: formatTime(f.Start)}
		if fj.Channels == nil {
			fj.Channels = []string{}
		}
		if !f.Approved.IsZero() {
			fj.Approved = formatTime(f.Approved)
		}
		out.Flight = fj
	}
	if r := d.Rollout; r != nil {
		rj := &rolloutJSON{Stages: []stageJSON{}, Paused: r.Paused}
		for _, s := range r.Stages {
			rj.Stages = append(rj.Stages, stageJSON{formatTime(s.At), json.Number(FormatBasisPoints(s.BasisPoints))})
		}
		for _, c := range r.Clusters {
			rj.Clusters = append(rj.Clusters, clusterJSON{c.CHID.String(), c.MinBuild, c.MaxBuild, c.HWID, json.Number(FormatBasisPoints(c.BasisPoints))})
		}
		out.Rollout = rj
	}
	if c := d.Cancelled; c != nil {
		out.Cancelled = &cancelledJSON{formatTime(c.At), c.Rollback, c.Reason}
	}
	return json.Marshal(out)
}

// SetDistribution returns a shipping label file with its "distribution" member set to d,
// every other byte unchanged: the member's value is replaced where it is, or the member is
// added after the last one. The value is indented like the file's other members.
func SetDistribution(label []byte, d Distribution) ([]byte, error) {
	root, err := parseJSON(label)
	if err != nil {
		return nil, fmt.Errorf("catalogs: label file: %w", err)
	}
	if root.kind != jsonObject {
		return nil, fmt.Errorf("catalogs: label file is not a JSON object")
	}
	value, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var indent string
	if len(root.members) > 0 {
		indent = lineIndent(label, root.members[0].val.start)
	}
	if indent != "" {
		var b bytes.Buffer
		json.Indent(&b, value, indent, strings.Repeat(" ", len(indent)))
		value = b.Bytes()
	}
	var out bytes.Buffer
	if v := root.member("distribution"); v != nil {
		out.Write(label[:v.start])
		out.Write(value)
		out.Write(label[v.end:])
		return out.Bytes(), nil
	}
	at := root.end - 1 // the closing brace
	sep := ""
	if len(root.members) > 0 {
		at = root.members[len(root.members)-1].val.end
		sep = ","
	}
	out.Write(label[:at])
	if indent != "" {
		fmt.Fprintf(&out, "%s\n%s\"distribution\": %s", sep, indent, value)
	} else {
		fmt.Fprintf(&out, "%s\"distribution\":%s", sep, value)
	}
	out.Write(label[at:])
	return out.Bytes(), nil
}

// lineIndent returns the white space at the start of the line holding offset pos, or ""
// when the document is on one line.
func lineIndent(b []byte, pos int) string {
	start := bytes.LastIndexByte(b[:pos], '\n')
	if start < 0 {
		return ""
	}
	end := start + 1
	for end < len(b) && (b[end] == ' ' || b[end] == '\t') {
		end++
	}
	return string(b[start+1 : end])
}
