package build

// The row spill: the grid rows of a build's compiled labels, on disk from the moment each
// product is built (or taken from the cache) until its HWID shard is written, so that the
// rows of the whole catalog (2 million at 100,000 labels, 20 million at 1,000,000) are never
// in memory.
//
// The spill is a temporary directory beside Options.Out (".<out>.build-spill-*": on the
// release's file system, not the system's temporary directory, which may be memory), holding
// one file per HWID shard. Each file is a sequence of rows, in no order:
//
//	row = unit:uvarint hwidLength:uvarint hwid row:14 bytes (label:8 inf:2 slot family score flags, appendRow)
//
// which is about 57 bytes a row (117 MB at 100,000 labels, measured with du during a build).
// unit numbers the product directory whose build wrote the row: a unit taken from the cache
// whose summary then does not decode is built again from its files, and the rows it spilled
// are void.
//
// A shard's writer reads its file whole, leaves out the rows of void units and of the labels
// the build left out (invalid labels, under --skip-invalid), groups the rest by hardware ID
// and encodes the records (compiled.AppendHWID sorts each record's rows, so the order of the
// file does not matter), one shard per worker at a time. The directory is removed when the
// build ends, whether it succeeded or not.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/driveway/driveway/catalogs"
	"github.com/driveway/driveway/catalogs/compiled"
	"github.com/driveway/driveway/index"
)

// rowSpill is one build's spill. add is safe for concurrent use; rows is called once per
// shard, after every add.
type rowSpill struct {
	dir    string
	shards []spillShard
	mu     sync.Mutex
	void   map[int]bool // units whose rows are left out
}

type spillShard struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	rows int // written
	err  error
}

// newRowSpill creates the spill of a build into out with n HWID shards.
func newRowSpill(out string, n int) (*rowSpill, error) {
	out = filepath.Clean(out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".build-spill-")
	if err != nil {
		return nil, fmt.Errorf("build: a directory for the grid rows beside %s: %w", out, err)
	}
	s := &rowSpill{dir: dir, shards: make([]spillShard, n), void: map[int]bool{}}
	for i := range s.shards {
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
		if err != nil {
			s.remove()
			return nil, fmt.Errorf("build: %w", err)
		}
		s.shards[i].f, s.shards[i].w = f, bufio.NewWriterSize(f, 64<<10)
	}
	return s, nil
}

// add appends the rows of unit's labels to their shards' files and drops them from the
// labels. A shard leaves out rows by their label's IDValue; a label whose id is not valid
// (catalogs.ValidID: the loader's L002 made it "", whose IDValue is label 0's) is invalid,
// so never in a release, and its rows are not spilled, lest they pass for label 0's.
// The rows are the build's own encoding (compiledLabel.rows, checked when read from a cache
// entry); add fails only if they do not parse.
func (s *rowSpill) add(unit int, labels []compiledLabel) error {
	bufs := make([][]byte, len(s.shards))
	counts := make([]int, len(s.shards))
	for i := range labels {
		l := &labels[i]
		rows, n := l.rows, l.nrows
		l.rows, l.nrows = nil, 0
		if !catalogs.ValidID(l.id) {
			continue
		}
		for j := 0; j < n; j++ {
			whole, hwid, _, rest, ok := nextHWIDRow(rows)
			if !ok {
				return fmt.Errorf("build: label %s: its grid rows do not parse after %d of %d", l.id, j, n)
			}
			rows = rest
			sh := index.Route(hwid, len(s.shards))
			bufs[sh] = append(binary.AppendUvarint(bufs[sh], uint64(unit)), whole...)
			counts[sh]++
		}
		if len(rows) != 0 {
			return fmt.Errorf("build: label %s: %d bytes after its %d grid rows", l.id, len(rows), n)
		}
	}
	for n, b := range bufs {
		if len(b) == 0 {
			continue
		}
		sh := &s.shards[n]
		sh.mu.Lock()
		if sh.err == nil {
			_, sh.err = sh.w.Write(b)
		}
		sh.rows += counts[n]
		sh.mu.Unlock()
	}
	return nil
}

// voidUnit leaves the rows unit spilled out of every shard.
func (s *rowSpill) voidUnit(unit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.void[unit] = true
}

// rows reads shard n's rows back, less those of void units and of the labels in skip (by
// IDValue), grouped by hardware ID (hwids[i]'s rows are groups[i]), and removes the shard's
// file. It returns the number of rows kept too. It is called after every add and voidUnit.
func (s *rowSpill) rows(n int, skip map[uint64]bool) (hwids []string, groups [][]compiled.Row, kept int, err error) {
	sh := &s.shards[n]
	err = sh.err
	if err == nil {
		err = sh.w.Flush()
	}
	if cerr := sh.f.Close(); err == nil {
		err = cerr
	}
	var b []byte
	if err == nil {
		b, err = os.ReadFile(sh.f.Name())
	}
	os.Remove(sh.f.Name())
	if err != nil {
		return nil, nil, 0, fmt.Errorf("build: the grid rows of HWID shard %d (%s): %w", n, s.dir, err)
	}
	group := map[string]int{}
	read := 0
	for len(b) > 0 {
		unit, ku := binary.Uvarint(b)
		var hwid, r []byte
		ok := ku > 0
		if ok {
			_, hwid, r, b, ok = nextHWIDRow(b[ku:])
		}
		if !ok {
			return nil, nil, 0, fmt.Errorf("build: the grid rows of HWID shard %d (%s) are damaged after %d rows", n, s.dir, read)
		}
		read++
		row := decodeRow(r)
		if skip[row.Label] || s.void[int(unit)] {
			continue
		}
		g, ok := group[string(hwid)]
		if !ok {
			g = len(hwids)
			hwids = append(hwids, string(hwid))
			group[hwids[g]] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], row)
		kept++
	}
	if read != sh.rows {
		return nil, nil, 0, fmt.Errorf("build: HWID shard %d's spill (%s) holds %d grid rows, %d were written", n, s.dir, read, sh.rows)
	}
	return hwids, groups, kept, nil
}

// remove removes the spill's directory.
func (s *rowSpill) remove() {
	for i := range s.shards {
		if f := s.shards[i].f; f != nil {
			f.Close()
		}
	}
	os.RemoveAll(s.dir)
}
