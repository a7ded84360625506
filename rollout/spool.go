package rollout

// Spool files.
//
// An edge appends the reports it accepts to a spool directory, one JSON line each (the
// Report format, with "received"). The file being written is named
//
//	reports-<UTC time it was opened, 20261121T120000.000000000Z>.ndjson.open
//
// and is renamed to the same name without ".open" when it is rotated (by size or age) or the
// edge shuts down: a log shipper (Vector, Fluent Bit, rsync) takes the closed files and may
// delete them; the edge never reads them again. Lines are written in batches and fsynced at
// least every SyncEvery, so a crash loses at most that much and may leave a torn last line;
// readers skip a torn line and count it. Appending never waits: when the queue is full or the
// disk refuses a write (full), reports are dropped and counted, and offers are never slowed.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SpoolOptions configure a Spool. Zero values take the defaults.
type SpoolOptions struct {
	Dir          string
	MaxFileBytes int64            // rotate when a file reaches this size; default 64 MiB
	MaxFileAge   time.Duration    // rotate a file this old; default 1h
	SyncEvery    time.Duration    // fsync at least this often; default 1s
	Queue        int              // reports waiting to be written; default 65536
	Clock        func() time.Time // file names and rotation by age; required (a spool never reads the system clock itself)
	// Create opens a new spool file; nil: a new file (O_EXCL). Tests inject faults with it
	// (a full disk, a stuck writer).
	Create func(path string) (io.WriteCloser, error)
}

// SpoolStats count what a spool did.
type SpoolStats struct {
	Accepted     int64 // queued
	Written      int64 // written to a file
	DroppedQueue int64 // dropped: the queue was full
	DroppedDisk  int64 // dropped: the file system refused the write
	Files        int64 // files closed (rotated)
}

// Spool appends reports to files in a directory from one background goroutine.
type Spool struct {
	opts  SpoolOptions
	queue chan []byte
	done  chan struct{}
	stats struct {
		accepted, written, droppedQueue, droppedDisk, files atomic.Int64
	}
	closeOnce sync.Once
}

// OpenSpool creates the directory if needed and starts the writer.
func OpenSpool(opts SpoolOptions) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("rollout: a spool needs a directory")
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = 64 << 20
	}
	if opts.MaxFileAge <= 0 {
		opts.MaxFileAge = time.Hour
	}
	if opts.SyncEvery <= 0 {
		opts.SyncEvery = time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 65536
	}
	if opts.Clock == nil {
		return nil, errors.New("rollout: SpoolOptions.Clock is required")
	}
	if opts.Create == nil {
		opts.Create = func(p string) (io.WriteCloser, error) {
			return os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("rollout: spool: %w", err)
	}
	s := &Spool{opts: opts, queue: make(chan []byte, opts.Queue), done: make(chan struct{})}
	go s.run()
	return s, nil
}

// Append queues a report; it never blocks. It returns false when the report was dropped
// because the queue is full.
func (s *Spool) Append(r *Report) bool {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // lines are data, not HTML: keep & < > as they are
	if enc.Encode(r) != nil {
		return false
	}
	select {
	case s.queue <- b.Bytes(): // Encode ends the line
		s.stats.accepted.Add(1)
		return true
	default:
		s.stats.droppedQueue.Add(1)
		return false
	}
}

// Stats returns the counters.
func (s *Spool) Stats() SpoolStats {
	return SpoolStats{s.stats.accepted.Load(), s.stats.written.Load(), s.stats.droppedQueue.Load(), s.stats.droppedDisk.Load(), s.stats.files.Load()}
}

// Close writes what is queued, syncs and closes the current file (renaming it to its final
// name). Append must not be called after Close.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() { close(s.queue) })
	<-s.done
	return nil
}

// spoolFile is the file being written.
type spoolFile struct {
	w       io.WriteCloser
	buf     *bufio.Writer
	path    string
	size    int64
	opened  time.Time
	pending int64 // lines buffered, not yet known to be written
}

func (s *Spool) run() {
	defer close(s.done)
	var cur *spoolFile
	tick := time.NewTicker(s.opts.SyncEvery)
	defer tick.Stop()
	for {
		select {
		case line, ok := <-s.queue:
			if !ok {
				s.finish(cur)
				return
			}
			now := s.opts.Clock()
			if cur != nil && (cur.size+int64(len(line)) > s.opts.MaxFileBytes || now.Sub(cur.opened) >= s.opts.MaxFileAge) {
				s.finish(cur)
				cur = nil
			}
			if cur == nil {
				path := filepath.Join(s.opts.Dir, "reports-"+now.UTC().Format("20060102T150405.000000000Z")+".ndjson.open")
				w, err := s.opts.Create(path)
				if err != nil {
					s.stats.droppedDisk.Add(1)
					continue
				}
				cur = &spoolFile{w: w, buf: bufio.NewWriterSize(w, 64<<10), path: path, opened: now}
			}
			if _, err := cur.buf.Write(line); err != nil {
				s.stats.droppedDisk.Add(cur.pending + 1)
				cur.pending = 0
				s.abandon(cur)
				cur = nil
				continue
			}
			cur.pending++
			cur.size += int64(len(line))
		case <-tick.C:
			if cur != nil && s.opts.Clock().Sub(cur.opened) >= s.opts.MaxFileAge {
				s.finish(cur) // a quiet edge still closes its file when it is old enough
				cur = nil
				continue
			}
			if cur != nil && !s.sync(cur) {
				s.abandon(cur)
				cur = nil
			}
		}
	}
}

// sync writes the buffered lines and fsyncs; lines the file system refuses are counted as
// dropped and false is returned.
func (s *Spool) sync(f *spoolFile) bool {
	if err := f.buf.Flush(); err != nil {
		s.stats.droppedDisk.Add(f.pending)
		f.pending = 0
		return false
	}
	s.stats.written.Add(f.pending)
	f.pending = 0
	if sy, ok := f.w.(interface{ Sync() error }); ok {
		if err := sy.Sync(); err != nil {
			return false
		}
	}
	return true
}

// finish syncs, closes and renames a file to its final name.
func (s *Spool) finish(f *spoolFile) {
	if f == nil {
		return
	}
	s.sync(f)
	s.abandon(f)
}

// abandon closes a file as it is (what was written stays) and gives it its final name.
func (s *Spool) abandon(f *spoolFile) {
	f.w.Close()
	os.Rename(f.path, strings.TrimSuffix(f.path, ".open"))
	s.stats.files.Add(1)
}

// ReadStats count what ReadSpools read.
type ReadStats struct {
	Files   int `json:"files"`
	Lines   int `json:"lines"`
	Torn    int `json:"torn"`    // a last line cut short (a crash mid-write): skipped
	Invalid int `json:"invalid"` // complete lines that are not valid reports: skipped
}

// ReadSpools reads every spool file (closed and open) under dirs, in name order, and calls fn
// for each valid report.
func ReadSpools(dirs []string, fn func(*Report)) (ReadStats, error) {
	var st ReadStats
	var files []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if !d.IsDir() && strings.HasPrefix(name, "reports-") && (strings.HasSuffix(name, ".ndjson") || strings.HasSuffix(name, ".ndjson.open")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("rollout: %w", err)
		}
	}
	sort.Strings(files)
	for _, p := range files {
		if err := readSpool(p, &st, fn); err != nil {
			return st, err
		}
	}
	return st, nil
}

func readSpool(path string, st *ReadStats, fn func(*Report)) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(path, ".open") {
		// Rotated between the listing and now: the same lines under the final name.
		f, err = os.Open(strings.TrimSuffix(path, ".open"))
	}
	if err != nil {
		return fmt.Errorf("rollout: %w", err)
	}
	defer f.Close()
	st.Files++
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			complete := line[len(line)-1] == '\n'
			var rep Report
			if json.Unmarshal(line, &rep) == nil && checkSpooled(&rep) {
				st.Lines++
				fn(&rep)
			} else if !complete {
				st.Torn++
			} else {
				st.Invalid++
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rollout: %s: %w", path, err)
		}
	}
}

// checkSpooled applies the report rules to a spooled line, which carries "received".
func checkSpooled(r *Report) bool {
	received := r.Received
	r.Received = time.Time{}
	ok := r.check("") == nil
	r.Received = received
	return ok
}
