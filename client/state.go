package client

// The PC's state: what it has verified, so that it never goes back.
//
// # State file format
//
// DIR/state.json, one JSON object, written by SaveState only (never edited in place):
//
//	{"format":"driveway-client-state/1","catalog":"contoso","sequence":42,"verified":"2026-11-21T12:00:00Z"}
//
//   - format (required): "driveway-client-state/1". A backwards-compatible change may add
//     members, which this version ignores; an incompatible one would change the format string,
//     and a file of another format is refused (not silently taken as "nothing seen").
//   - catalog (required, 1–256 bytes): the catalog of the release last verified. Get pins it:
//     a release of another catalog, even one signed by the same keys, is refused.
//   - sequence (required, at least 1): the newest release sequence verified from any edge.
//     Get refuses a response from a lower sequence (ErrOld) and raises it after every
//     verified response from a higher one.
//   - verified (RFC 3339): the PC's clock when that sequence was first verified (for people;
//     nothing checks it).
//   - log: with a transparency log configured (GetOptions.Log), the newest checkpoint of it
//     the PC has checked, as its note text (package releaselog: "driveway release log 1
//     CATALOG\nSIZE\nHASH\n", without the signature); Get requires every later checkpoint
//     to extend it (a consistency proof), so a log that forks or goes back is refused.
//     Absent: no log checked yet.
//
//	{"format":"driveway-client-state/1","catalog":"contoso","sequence":42,"verified":"2026-11-21T12:00:00Z","log":"driveway release log 1 contoso\n3\nBASE64\n"}
//
// A missing file means nothing seen yet (a new PC). Anything else that does not parse is an
// error that names the file and the member: the PC refuses to run rather than forget what it
// has seen (a deleted state is a deliberate reset; see docs/client.md). The file is at most
// MaxState bytes. SaveState writes DIR/state.json.tmp, fsyncs it, renames it over
// state.json and fsyncs the directory (where the system allows it), so a crash leaves either
// the old state or the new one. Test vectors: testdata/state/.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/releaselog"
)

// StateFormat is the first member of a state file.
const StateFormat = "driveway-client-state/1"

// StateFile is the state file's name in the state directory.
const StateFile = "state.json"

// MaxState is the largest state file read.
const MaxState = 64 << 10

// ErrState marks a state file that cannot be read or written.
var ErrState = errors.New("client: state")

// State is what a PC has verified.
type State struct {
	Catalog  string                 // "" with Sequence 0: nothing seen yet
	Sequence uint64                 // the newest release sequence verified
	Verified time.Time              // when it was first verified (the PC's clock)
	Log      *releaselog.Checkpoint // the newest log checkpoint checked; nil: none
}

type stateWire struct {
	Format   *string    `json:"format"`
	Catalog  *string    `json:"catalog"`
	Sequence *uint64    `json:"sequence"`
	Verified *time.Time `json:"verified,omitempty"`
	Log      *string    `json:"log,omitempty"`
}

// ParseState decodes a state file's bytes (see the format above).
func ParseState(b []byte) (State, error) {
	if len(b) > MaxState {
		return State{}, fmt.Errorf("%d bytes (at most %d)", len(b), MaxState)
	}
	var w stateWire
	if err := json.Unmarshal(b, &w); err != nil {
		return State{}, fmt.Errorf("not a state file: %v", err)
	}
	switch {
	case w.Format == nil:
		return State{}, errors.New(`member "format" missing`)
	case *w.Format != StateFormat:
		return State{}, fmt.Errorf(`member "format" is %q; this driveway reads %q (a newer driveway wrote it?)`, clip(*w.Format), StateFormat)
	case w.Catalog == nil:
		return State{}, errors.New(`member "catalog" missing`)
	case len(*w.Catalog) == 0 || len(*w.Catalog) > 256:
		return State{}, fmt.Errorf(`member "catalog" is %d bytes (1 to 256)`, len(*w.Catalog))
	case w.Sequence == nil:
		return State{}, errors.New(`member "sequence" missing`)
	case *w.Sequence == 0:
		return State{}, errors.New(`member "sequence" is 0 (at least 1)`)
	}
	s := State{Catalog: *w.Catalog, Sequence: *w.Sequence}
	if w.Verified != nil {
		s.Verified = *w.Verified
	}
	if w.Log != nil {
		cp, err := releaselog.ParseCheckpoint([]byte(*w.Log))
		if err != nil {
			return State{}, fmt.Errorf(`member "log": %v`, err)
		}
		s.Log = &cp
	}
	return s, nil
}

// AppendState encodes s as a state file (s.Sequence at least 1, s.Catalog not empty).
func AppendState(dst []byte, s State) []byte {
	f := StateFormat
	w := stateWire{Format: &f, Catalog: &s.Catalog, Sequence: &s.Sequence}
	if !s.Verified.IsZero() {
		v := s.Verified.UTC()
		w.Verified = &v
	}
	if s.Log != nil {
		t := string(s.Log.Text())
		w.Log = &t
	}
	b, _ := json.Marshal(w) // strings, an integer and a time: cannot fail
	dst = append(dst, b...)
	return append(dst, '\n')
}

// LoadState reads dir's state file; a missing file is the zero State.
func LoadState(dir string) (State, error) {
	p := filepath.Join(dir, StateFile)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrState, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxState+1))
	if err != nil {
		return State{}, fmt.Errorf("%w: %s: %v", ErrState, p, err)
	}
	s, err := ParseState(b)
	if err != nil {
		return State{}, fmt.Errorf("%w: %s: %v (it records the newest release this PC verified; move it away only to reset the PC on purpose)", ErrState, p, err)
	}
	return s, nil
}

// SaveState writes s as dir's state file atomically: a temporary file, fsync, rename,
// fsync of the directory.
func SaveState(dir string, s State) error {
	if s.Sequence == 0 || s.Catalog == "" {
		return fmt.Errorf("%w: nothing to save (sequence %d, catalog %q)", ErrState, s.Sequence, s.Catalog)
	}
	if err := atomicfile.Write(filepath.Join(dir, StateFile), AppendState(nil, s), 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	return nil
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
