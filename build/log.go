package build

// The transparency log of releases (package releaselog): every release published into a
// catalog directory that has a log, or by a build given the log key, appends its release
// statement to DIR/log. The append is prepared (the whole log read and checked) before the
// release is published, so a log that does not verify stops the build before anything is
// written; its files are written after the release's envelope and before the timestamp that
// makes edges serve it, so a build stopped in between leaves a release no timestamp names.

import (
	"fmt"

	"github.com/driveway/driveway/index"
	"github.com/driveway/driveway/releaselog"
)

// checkLogKey refuses, before anything is written, to publish into a catalog that has a log
// without the log key: edges that check the log would refuse the release.
func checkLogKey(out string, key *releaselog.Key) error {
	if key == nil && releaselog.Exists(out) {
		return fmt.Errorf("build: %s has a transparency log (%s/): sign with its key (--log-key), or edges that check the log refuse the release", out, releaselog.Dir)
	}
	return nil
}

// prepareLog prepares the append of m's statement to the log of out (nil without a key).
func prepareLog(out string, m *index.Manifest, key *releaselog.Key) (*releaselog.Pending, error) {
	if key == nil {
		return nil, nil
	}
	if len(m.Statement) == 0 {
		return nil, fmt.Errorf("build: release %d has no release statement to log (its previous release was built before statements: make a full build)", m.Sequence)
	}
	p, err := releaselog.Prepare(out, &releaselog.Entry{Catalog: m.Catalog, Sequence: m.Sequence, Statement: m.Statement}, key)
	if err != nil {
		return nil, fmt.Errorf("build: nothing published: %w", err)
	}
	return p, nil
}

// writeLog writes a prepared append; it returns the new checkpoint for the report.
func writeLog(p *releaselog.Pending, seq uint64) (string, error) {
	if p == nil {
		return "", nil
	}
	cp, err := p.Write()
	if err != nil {
		return "", fmt.Errorf("build: release %d is published but not in the log, and no timestamp names it (edges do not serve it): %w; run the build again", seq, err)
	}
	return cp.String(), nil
}
