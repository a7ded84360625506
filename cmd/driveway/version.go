package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// buildVersion and buildRevision name a build that carries no VCS information of its own:
// the Dockerfile's context has no .git, so it sets them at link time
// (-ldflags "-X main.buildVersion=v1.2.3 -X main.buildRevision=COMMIT"). A set buildVersion
// replaces the module version; buildRevision is used only when the binary has no
// vcs.revision.
var buildVersion, buildRevision string

// versionInfo is what 'driveway version --json' prints. Everything but OS and Arch comes
// from the binary's build information (runtime/debug.ReadBuildInfo, as 'go version -m'
// shows it); the vcs members are absent when the build stamped none.
type versionInfo struct {
	Version   string `json:"version"`   // the module version: v1.2.3, a pseudo-version (+dirty), or (devel)
	GoVersion string `json:"goVersion"` // the toolchain that built the binary
	VCS       string `json:"vcs,omitempty"`
	Revision  string `json:"vcsRevision,omitempty"`
	Time      string `json:"vcsTime,omitempty"` // the revision's commit time, RFC 3339
	Modified  *bool  `json:"vcsModified,omitempty"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// readVersion returns this binary's version information.
func readVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	return versionFrom(bi, ok)
}

// versionFrom turns build information (nil when ok is false) into a versionInfo.
func versionFrom(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Version: "(devel)", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if ok && bi != nil {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs":
				v.VCS = s.Value
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				m := s.Value == "true"
				v.Modified = &m
			}
		}
	}
	if buildVersion != "" {
		v.Version = buildVersion
	}
	if v.Revision == "" && buildRevision != "" {
		v.Revision = buildRevision
	}
	return v
}

// String is the one line 'driveway version' prints:
// "driveway v1.2.3 go1.26.8 linux/amd64 revision 5c033ba… 2026-12-03T10:00:00Z modified".
func (v versionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "driveway %s %s %s/%s", v.Version, v.GoVersion, v.OS, v.Arch)
	if v.Revision != "" {
		fmt.Fprintf(&b, " revision %s", v.Revision)
	}
	if v.Time != "" {
		fmt.Fprintf(&b, " %s", v.Time)
	}
	if v.Modified != nil && *v.Modified {
		b.WriteString(" modified")
	}
	return b.String()
}

func cmdVersion(e *env, args []string) int {
	fs := e.flags("version", `
Version prints driveway's version, the Go version that built it, the VCS revision, its time
and whether the tree was modified (from the binary's build information, as 'go version -m'
shows it), and the platform. 'driveway --version' does the same.`)
	asJSON := fs.Bool("json", false, "print it as JSON: version, goVersion, vcs, vcsRevision, vcsTime, vcsModified, os, arch")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	v := readVersion()
	if *asJSON {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return e.fail("version", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	}
	fmt.Fprintln(e.stdout, v.String())
	return exitOK
}
