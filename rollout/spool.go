package rollout

// Spool files.
//
// An edge appends the reports it accepts to a spool directory, one JSON line each:
//
//	{"device":"3f0c…(32 hex digits)","labelId":"1152921504606978202","result":"installed",
//	 "time":"2026-11-21T11:00:00Z","build":22631,"chid":"8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814",
//	 "received":"2026-11-21T12:00:00.5Z"}
//
// device is the PC's pseudonym: the first 16 bytes of HMAC-SHA256(fleet secret, deviceId) in
// lowercase hex (Pseudonym), the same on every edge that shares the secret, so measures count
// distinct machines across edges without the spool holding any PC's id. labelId, result,
// time, build and chid are the report's (build and chid are left out when the PC sent none);
// received is the edge's clock when the request arrived; source (16 hex digits, when the edge
// knows it) is a pseudonym of the network the report came from, HMAC-SHA256(fleet secret,
// "source" and the client's /24 or /48 prefix), which measures count to tell failures seen
// from many places from a burst from one. errorCode is the report's error code when it is a
// number (ErrorCode: an HRESULT, Win32 or device-manager problem code, "0x" and 1 to 8 hex
// digits or 1 to 10 decimal digits), written in its canonical form ("0x" and 8 lowercase hex
// digits, or decimal without leading zeros); any other text a PC puts there is not kept, as
// it could hold anything. The flight report (rollout/flight) counts the codes. Nothing else
// of a report is kept: no deviceId, no instanceId (it can hold serial numbers). Lines that
// edges wrote before pseudonyms ("deviceId" instead of "device", with instanceId and a
// free-form errorCode) are still read; their errorCode is kept only when it is a number.
//
// The file being written is named
//
//	reports-<UTC time it was opened, 20261121T120000.000000000Z>.ndjson.open
//
// and is renamed to the same name without ".open" when it is rotated (by size or age) or the
// edge shuts down: a log shipper (Vector, Fluent Bit, rsync) takes the closed files and may
// delete them. Every line of a file was received less than MaxFileAge after the time in its
// name.
//
// Durability. Reports are written by group commit: the writer takes what is queued (what
// arrived while it wrote the last commit, or within SyncEvery), writes it with one write,
// fsyncs the file (and the directory when a file is created or renamed), checks that the
// file is still where shippers look, and only then tells each waiting request that its
// reports are stored, which the edge answers 202. A write that fails is cut off again
// (the file is truncated to its last commit), so the lines in the files are exactly the
// reports written (SpoolStats.Written; a file that cannot even be truncated is closed out
// with its torn tail, which readers skip and count). When the spool cannot store (its
// directory is gone, read-only, full, over MaxTotalBytes, the file system under
// MinFreeBytes or MinFreePercent free, the queue full), the requests are refused and the
// edge answers 503 with Retry-After;
// nothing of a refused request is kept, except that a commit which outlives its request's
// AckTimeout may still land (the PC sends it again: measures count machines, so a report
// twice counts once). An edge killed mid-write leaves an .open file whose last line may be
// torn: the next OpenSpool cuts it at its last newline and renames it for the shippers
// (so one spool directory belongs to one edge process at a time).
//
// Retention. The edge deletes closed files that are older than Retention (whose newest line
// was received more than Retention ago) and that no shipper took; reports dated more than
// Retention before the edge's clock are refused, and `rollout measure` ignores reports older
// than its window, which is at most DefaultRetention.

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/driveway/driveway/catalogs/chid"
)

// Why a spool refuses reports: SpoolError.Reason, the edge's 503 answers and metrics.
const (
	ReasonQueue    = "queue"     // the queue (Queue reports, MaxWaiting requests) is full
	ReasonTimeout  = "timeout"   // the commit took longer than AckTimeout
	ReasonClosed   = "closed"    // the spool is closing (the edge shuts down)
	ReasonMissing  = "missing"   // the directory is gone, or the file vanished from it
	ReasonReadOnly = "read-only" // the file system refuses writes (read-only, permissions)
	ReasonDiskFull = "disk-full" // no space left (ENOSPC, EDQUOT)
	ReasonIO       = "io"        // any other I/O error
	ReasonCap      = "cap"       // the directory's files reached MaxTotalBytes
	ReasonReserve  = "reserve"   // the file system is down to MinFreeBytes or MinFreePercent free
)

// SpoolReasons are the Reason* values, in the order SpoolStats.Errors counts them.
var SpoolReasons = [...]string{ReasonQueue, ReasonTimeout, ReasonClosed, ReasonMissing, ReasonReadOnly, ReasonDiskFull, ReasonIO, ReasonCap, ReasonReserve}

// Defaults of SpoolOptions.
const (
	DefaultMaxFileBytes   = 64 << 20
	DefaultMaxFileAge     = time.Hour
	DefaultSyncEvery      = 2 * time.Millisecond
	DefaultMaxTotalBytes  = 1 << 30
	DefaultMinFreeBytes   = 1 << 30
	DefaultMinFreePercent = 5
	DefaultQueue          = 65536
	DefaultMaxWaiting     = 1024
	DefaultAckTimeout     = 5 * time.Second
	// MinSecretBytes is the shortest fleet secret a spool takes.
	MinSecretBytes = 32
)

// SpoolOptions configure a Spool. Zero values take the defaults.
type SpoolOptions struct {
	Dir string
	// Secret is the fleet's report secret, shared by every edge whose reports are measured
	// together, at least MinSecretBytes: device ids are stored as HMAC-SHA256 pseudonyms
	// keyed with it (Pseudonym). Required; LoadSecret reads one from a file.
	Secret       []byte
	MaxFileBytes int64         // rotate when a file reaches this size; default 64 MiB
	MaxFileAge   time.Duration // rotate a file this old; default 1h
	// MaxTotalBytes caps the directory: reports are refused while its files add up to this
	// much (shippers that delete what they took make room); default 1 GiB.
	MaxTotalBytes int64
	// MinFreeBytes and MinFreePercent are the file system's reserve: reports are refused
	// when writing them would leave less free (statfs) than either, so that a report flood
	// never takes the room a release needs. Defaults 1 GiB and 5; negative: no such bound.
	MinFreeBytes   int64
	MinFreePercent float64
	// Retention is how long reports are kept: closed files whose newest line is older are
	// deleted, and the edge refuses reports dated earlier. Default DefaultRetention.
	Retention time.Duration
	// MaxAhead is how far ahead of the edge's clock a report's time may be; default
	// DefaultMaxAhead. (Read by the edge's decoder, not the spool.)
	MaxAhead time.Duration
	// SyncEvery is the group-commit window: an idle writer waits this long after the first
	// report for more before it writes and fsyncs; reports that arrive while a commit is
	// under way share the next one at once. Default 2 ms (BenchmarkReports: four to five
	// times fewer fsyncs under load, each acknowledgement up to 2 ms later); negative: no
	// window, the writer commits as soon as it is free.
	SyncEvery  time.Duration
	Queue      int           // reports queued or being written at most; default 65536
	MaxWaiting int           // requests waiting for their commit at most; default 1024
	AckTimeout time.Duration // how long Commit.Wait waits; default 5 s
	// Clock is required: file names, rotation by age and retention read it (a spool never
	// reads the system clock itself).
	Clock  func() time.Time
	Logger *slog.Logger // write errors (once per episode), recoveries, deletions; nil: discarded

	// Fault injection (tests); nil: the operating system's. Create opens a new spool file
	// (O_CREATE|O_EXCL); the spool uses its Sync, Truncate and Stat methods when it has
	// them. Rename gives a closed file its final name. Statfs reports the free and total
	// bytes of the file system holding dir.
	Create func(path string) (io.WriteCloser, error)
	Rename func(oldpath, newpath string) error
	Statfs func(dir string) (free, total uint64, err error)
}

// SpoolError is why a spool refused reports.
type SpoolError struct {
	Reason string // a Reason* value
	Err    error
}

func (e *SpoolError) Error() string {
	if e.Err == nil {
		return "rollout: spool: " + e.Reason
	}
	return "rollout: spool: " + e.Reason + ": " + e.Err.Error()
}

func (e *SpoolError) Unwrap() error { return e.Err }

// SpoolState is whether a spool stores reports now.
type SpoolState struct {
	Storing bool      // the last commit succeeded (or none was tried)
	Reason  string    // when not: why (a Reason* value)
	Err     string    // and the error
	Since   time.Time // when the spool last changed between storing and not (Clock)
}

// SpoolStats count what a spool did.
type SpoolStats struct {
	Written   int64 // reports written and synced to spool files
	Commits   int64 // group commits that stored reports
	Files     int64 // files closed out (rotated, or at shutdown)
	Recovered int64 // files a previous run left open, closed out at start
	Expired   int64 // closed files deleted past Retention
	// Refused counts the group commits that could not store, by reason (the order of
	// SpoolReasons; queue, timeout and closed refuse requests before any commit: the edge
	// counts those).
	Refused [len(SpoolReasons)]int64
	Bytes   int64  // the directory's files, as last measured
	Free    uint64 // free bytes of its file system, as last measured (0: unknown)
	State   SpoolState
}

// Spool appends reports to files in a directory from one background goroutine.
type Spool struct {
	opts SpoolOptions
	log  *slog.Logger
	macs sync.Pool // hash.Hash: HMAC-SHA256 keyed with the secret

	mu       sync.Mutex
	pending  []*Commit
	bytes    int // of pending
	queued   int // reports pending or being written
	waiting  int // commits pending or being written
	closed   bool
	wake     chan struct{}
	done     chan struct{}
	overload struct {
		last  time.Time // the last overload log line (Clock)
		count int64     // refusals since
	}

	// The writer's own.
	cur       *spoolFile
	lastName  time.Time
	unrenamed []string // closed files whose rename failed, tried again
	dirBytes  int64
	lastScan  time.Time
	lastSweep time.Time
	failing   bool
	episode   struct {
		reason  string
		since   time.Time
		refused int64
	}

	state atomic.Pointer[SpoolState]
	stats struct {
		written, commits, files, recovered, expired, bytes atomic.Int64
		free                                               atomic.Uint64
		refused                                            [len(SpoolReasons)]atomic.Int64
	}
	closeOnce sync.Once
}

// Commit is one request's reports on their way to a spool file.
type Commit struct {
	s     *Spool
	lines []byte
	n     int
	done  chan struct{}
	err   error
}

// OpenSpool creates the directory if needed, closes out the files a previous run left open,
// deletes files past retention, and starts the writer.
func OpenSpool(opts SpoolOptions) (*Spool, error) {
	switch {
	case opts.Dir == "":
		return nil, errors.New("rollout: a spool needs a directory")
	case opts.Clock == nil:
		return nil, errors.New("rollout: SpoolOptions.Clock is required")
	case len(opts.Secret) == 0:
		return nil, errors.New("rollout: a spool needs the fleet's report secret (SpoolOptions.Secret, --report-secret-file): device ids are stored as pseudonyms keyed with it")
	case len(opts.Secret) < MinSecretBytes:
		return nil, fmt.Errorf("rollout: the report secret is %d bytes; at least %d (head -c 32 /dev/urandom | base64)", len(opts.Secret), MinSecretBytes)
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxFileAge <= 0 {
		opts.MaxFileAge = DefaultMaxFileAge
	}
	if opts.MaxTotalBytes <= 0 {
		opts.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	if opts.MinFreePercent == 0 {
		opts.MinFreePercent = DefaultMinFreePercent
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MaxAhead <= 0 {
		opts.MaxAhead = DefaultMaxAhead
	}
	if opts.SyncEvery == 0 {
		opts.SyncEvery = DefaultSyncEvery
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.MaxWaiting <= 0 {
		opts.MaxWaiting = DefaultMaxWaiting
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Create == nil {
		opts.Create = func(p string) (io.WriteCloser, error) {
			return os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL|os.O_APPEND, 0o644)
		}
	}
	if opts.Rename == nil {
		opts.Rename = os.Rename
	}
	if opts.Statfs == nil {
		opts.Statfs = statfs
	}
	opts.Secret = append([]byte(nil), opts.Secret...)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("rollout: spool: %w", err)
	}
	s := &Spool{opts: opts, log: opts.Logger.With("spool", opts.Dir), wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.macs.New = func() any { return newMAC(s.opts.Secret) }
	now := opts.Clock()
	s.state.Store(&SpoolState{Storing: true, Since: now})
	s.recover()
	s.sweep(now)
	go s.run()
	return s, nil
}

// LoadSecret reads a fleet report secret from a file: its bytes, without trailing
// whitespace, at least MinSecretBytes. Keep the file readable by the edge alone.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rollout: report secret: %w", err)
	}
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) < MinSecretBytes {
		return nil, fmt.Errorf("rollout: report secret %s: %d bytes; at least %d (head -c 32 /dev/urandom | base64 > %s)", path, len(b), MinSecretBytes, path)
	}
	return b, nil
}

// Pseudonym is what a spool stores of a device id: the first 16 bytes of
// HMAC-SHA256(secret, deviceID), in lowercase hex.
func Pseudonym(secret []byte, deviceID string) string {
	return string(appendPseudonym(nil, newMAC(secret), deviceID))
}

// SourcePseudonym is what a spool stores of the network a report came from: the first 8
// bytes of HMAC-SHA256(secret, "source " + prefix), in lowercase hex, where prefix is the
// client address's /24 (IPv4) or /48 (IPv6) in its text form ("198.51.100.0/24").
func SourcePseudonym(secret []byte, prefix netip.Prefix) string {
	m := newMAC(secret)
	io.WriteString(m, "source "+prefix.String())
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:8])
}

// SourcePrefix is the network of a client address that SourcePseudonym names: its /24 for
// IPv4 (IPv4-mapped IPv6 included), its /48 for IPv6.
func SourcePrefix(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, _ := addr.WithZone("").Prefix(bits)
	return p
}

func newMAC(secret []byte) hash.Hash { return hmac.New(sha256.New, secret) }

func appendPseudonym(b []byte, m hash.Hash, deviceID string) []byte {
	m.Reset()
	io.WriteString(m, deviceID)
	var sum [sha256.Size]byte
	return hex.AppendEncode(b, m.Sum(sum[:0])[:16])
}

// Append queues a request's reports, received at received, for the next group commit. It
// never waits: when the spool is closing or its queue is full it returns a *SpoolError at
// once. Wait on the Commit for the reports to be stored. Reports must have passed
// DecodeReports (others are refused with an *Error).
func (s *Spool) Append(rs []Report, received time.Time) (*Commit, error) {
	if len(rs) == 0 {
		c := &Commit{s: s, done: make(chan struct{})}
		close(c.done)
		return c, nil
	}
	m := s.macs.Get().(hash.Hash)
	var lines []byte
	for i := range rs {
		if err := spoolable(&rs[i]); err != nil {
			s.macs.Put(m)
			return nil, err
		}
		lines = appendLine(lines, &rs[i], received, m)
	}
	s.macs.Put(m)
	c := &Commit{s: s, lines: lines, n: len(rs), done: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, &SpoolError{ReasonClosed, errors.New("the spool is closing")}
	case s.queued+c.n > s.opts.Queue || s.waiting >= s.opts.MaxWaiting:
		err := fmt.Errorf("%d reports of %d requests are waiting for the writer (at most %d reports, %d requests)", s.queued, s.waiting, s.opts.Queue, s.opts.MaxWaiting)
		s.mu.Unlock()
		s.overloaded(ReasonQueue, err)
		return nil, &SpoolError{ReasonQueue, err}
	}
	s.pending = append(s.pending, c)
	s.bytes += len(lines)
	s.queued += c.n
	s.waiting++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return c, nil
}

// Wait waits until the commit's reports are stored (nil), refused (a *SpoolError), or
// AckTimeout passes (a *SpoolError with ReasonTimeout; the reports may still be stored).
func (c *Commit) Wait() error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	t := time.NewTimer(c.s.opts.AckTimeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.err
	case <-t.C:
		err := fmt.Errorf("the reports were not stored within %s", c.s.opts.AckTimeout)
		c.s.overloaded(ReasonTimeout, err)
		return &SpoolError{ReasonTimeout, err}
	}
}

// overloaded logs queue-full and timeout refusals, at most once a minute (Clock).
func (s *Spool) overloaded(reason string, err error) {
	now := s.opts.Clock()
	s.mu.Lock()
	s.overload.count++
	if !s.overload.last.IsZero() && now.Sub(s.overload.last) < time.Minute {
		s.mu.Unlock()
		return
	}
	n := s.overload.count
	s.overload.last, s.overload.count = now, 0
	s.mu.Unlock()
	s.log.Warn("report spool overloaded: answering 503 (the PCs send again later)", "reason", reason, "error", err.Error(), "refused_requests", n)
}

// Stats returns the counters and the state.
func (s *Spool) Stats() SpoolStats {
	st := SpoolStats{Written: s.stats.written.Load(), Commits: s.stats.commits.Load(), Files: s.stats.files.Load(),
		Recovered: s.stats.recovered.Load(), Expired: s.stats.expired.Load(), Bytes: s.stats.bytes.Load(), Free: s.stats.free.Load(),
		State: *s.state.Load()}
	for i := range st.Refused {
		st.Refused[i] = s.stats.refused[i].Load()
	}
	return st
}

// State says whether the spool stores reports now.
func (s *Spool) State() SpoolState { return *s.state.Load() }

// Close writes what is queued, closes the current file (renaming it to its final name) and
// stops the writer. Append after Close is refused.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	})
	<-s.done
	return nil
}

// spoolFile is the file being written; every byte of it up to size is committed.
type spoolFile struct {
	w      io.WriteCloser
	path   string
	size   int64
	opened time.Time
}

// housekeepEvery is how often the writer rotates old files, retries renames and sweeps.
const housekeepEvery = time.Second

func (s *Spool) run() {
	defer close(s.done)
	tick := time.NewTicker(housekeepEvery)
	defer tick.Stop()
	var linger *time.Timer
	for {
		select {
		case <-s.wake:
		case <-tick.C:
			s.housekeep()
			continue
		}
		// An idle writer waits a moment for more reports, so that one fsync stores many.
		if s.opts.SyncEvery > 0 && !s.full() {
			if linger == nil {
				linger = time.NewTimer(s.opts.SyncEvery)
			} else {
				linger.Reset(s.opts.SyncEvery)
			}
		window:
			for {
				select {
				case <-linger.C:
					break window
				case <-s.wake:
					if s.full() {
						linger.Stop()
						break window
					}
				}
			}
		}
		// Then it commits back to back while reports keep coming.
		for {
			select {
			case <-tick.C: // a flood must not starve housekeeping
				s.housekeep()
			default:
			}
			batch, closing := s.take()
			if len(batch) > 0 {
				s.commit(batch)
			}
			if closing && len(batch) == 0 {
				s.finish()
				return
			}
			if len(batch) == 0 {
				break
			}
		}
	}
}

// batchBytes is the most a commit writes (at least one request's reports).
func (s *Spool) batchBytes() int { return int(min(s.opts.MaxFileBytes, 4<<20)) }

// full reports whether a commit's worth is pending, or the spool is closing.
func (s *Spool) full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || s.bytes >= s.batchBytes()
}

// take removes the pending commits for one write.
func (s *Spool) take() ([]*Commit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, 0
	for n < len(s.pending) && (n == 0 || size+len(s.pending[n].lines) <= s.batchBytes()) {
		size += len(s.pending[n].lines)
		n++
	}
	batch := append([]*Commit(nil), s.pending[:n]...)
	s.pending = append(s.pending[:0], s.pending[n:]...)
	s.bytes -= size
	return batch, s.closed
}

// settle tells a batch's requests how their commit went.
func (s *Spool) settle(batch []*Commit, err error) {
	n := 0
	for _, c := range batch {
		c.err = err
		n += c.n
	}
	s.mu.Lock()
	s.queued -= n
	s.waiting -= len(batch)
	s.mu.Unlock()
	for _, c := range batch {
		close(c.done)
	}
}

// commit writes and syncs one batch, then settles it.
func (s *Spool) commit(batch []*Commit) {
	var buf []byte
	n := 0
	for _, c := range batch {
		buf = append(buf, c.lines...)
		n += c.n
	}
	now := s.opts.Clock()
	fail := func(reason string, err error) {
		s.stats.refused[reasonIndex(reason)].Add(1)
		s.trouble(reason, err, now, int64(n))
		s.settle(batch, &SpoolError{reason, err})
	}
	if reason, err := s.room(int64(len(buf)), now); reason != "" {
		fail(reason, err)
		return
	}
	if f := s.cur; f != nil && s.stillThere(f) != nil {
		s.drop() // removed since the last commit (with its directory, or by hand): start anew
	}
	if f := s.cur; f != nil && (now.Sub(f.opened) >= s.opts.MaxFileAge || f.size > 0 && f.size+int64(len(buf)) > s.opts.MaxFileBytes) {
		s.closeOut()
	}
	if s.cur == nil {
		if err := s.create(now); err != nil {
			fail(classify(err), err)
			return
		}
	}
	f := s.cur
	if _, err := f.w.Write(buf); err != nil {
		s.undo()
		fail(classify(err), err)
		return
	}
	if sy, ok := f.w.(interface{ Sync() error }); ok {
		if err := sy.Sync(); err != nil {
			// After a failed fsync the file's pages are in doubt: cut it back and start anew.
			s.undo()
			s.closeOut()
			fail(classify(err), err)
			return
		}
	}
	if err := s.stillThere(f); err != nil {
		// The directory or the file was removed or replaced: what was written is not where
		// shippers look, and the next file cannot go there either.
		s.drop()
		fail(ReasonMissing, err)
		return
	}
	f.size += int64(len(buf))
	s.dirBytes += int64(len(buf))
	s.stats.bytes.Store(s.dirBytes)
	s.stats.written.Add(int64(n))
	s.stats.commits.Add(1)
	s.fine(now)
	s.settle(batch, nil)
}

// room says whether n more bytes may be written: the file system's reserve, the cap.
func (s *Spool) room(n int64, now time.Time) (string, error) {
	free, total, err := s.opts.Statfs(s.opts.Dir)
	switch {
	case err != nil && !errors.Is(err, errors.ErrUnsupported):
		return classify(err), err
	case err == nil:
		s.stats.free.Store(free)
		left := int64(free) - n
		if s.opts.MinFreeBytes > 0 && left < s.opts.MinFreeBytes {
			return ReasonReserve, fmt.Errorf("the file system has %s free; reports stop at %s free (MinFreeBytes) so that releases can always be stored",
				sizeOf(int64(free)), sizeOf(s.opts.MinFreeBytes))
		}
		if s.opts.MinFreePercent > 0 && total > 0 && float64(left) < s.opts.MinFreePercent/100*float64(total) {
			return ReasonReserve, fmt.Errorf("the file system has %s free of %s; reports stop at %g%% free (MinFreePercent) so that releases can always be stored",
				sizeOf(int64(free)), sizeOf(int64(total)), s.opts.MinFreePercent)
		}
	}
	if s.dirBytes+n > s.opts.MaxTotalBytes && now.Sub(s.lastScan) >= time.Second {
		s.scan(now) // shippers may have taken files since
	}
	if s.dirBytes+n > s.opts.MaxTotalBytes {
		return ReasonCap, fmt.Errorf("the spool directory holds %s; its cap is %s (MaxTotalBytes): ship and remove closed files", sizeOf(s.dirBytes), sizeOf(s.opts.MaxTotalBytes))
	}
	return "", nil
}

// create opens a new file named after now (or just after the last name, so names never
// repeat) and syncs the directory.
func (s *Spool) create(now time.Time) error {
	t := now.UTC()
	if !t.After(s.lastName) {
		t = s.lastName.Add(time.Nanosecond)
	}
	var lastErr error
	for range 16 {
		path := filepath.Join(s.opts.Dir, fileName(t)+".open")
		if _, err := os.Lstat(strings.TrimSuffix(path, ".open")); err == nil {
			t, lastErr = t.Add(time.Nanosecond), fs.ErrExist
			continue
		}
		w, err := s.opts.Create(path)
		if errors.Is(err, fs.ErrExist) {
			t, lastErr = t.Add(time.Nanosecond), err
			continue
		}
		if err != nil {
			return err
		}
		if err := syncDir(s.opts.Dir); err != nil {
			w.Close()
			os.Remove(path)
			return err
		}
		s.lastName = t
		s.cur = &spoolFile{w: w, path: path, opened: now}
		return nil
	}
	return fmt.Errorf("no free file name: %w", lastErr)
}

func fileName(t time.Time) string {
	return "reports-" + t.UTC().Format("20060102T150405.000000000Z") + ".ndjson"
}

// undo cuts the current file back to its last commit; when it cannot, the file is closed
// out as it is (a torn last line, which readers skip and count).
func (s *Spool) undo() {
	f := s.cur
	if tr, ok := f.w.(interface{ Truncate(int64) error }); ok && tr.Truncate(f.size) == nil {
		sk, ok := f.w.(io.Seeker) // a file opened without O_APPEND writes at its offset
		if !ok {
			return
		}
		if _, err := sk.Seek(f.size, io.SeekStart); err == nil {
			return
		}
	}
	s.closeOut()
}

// stillThere checks that the current file is still at its path.
func (s *Spool) stillThere(f *spoolFile) error {
	st, ok := f.w.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return nil
	}
	fi, err := st.Stat()
	if err != nil {
		return err
	}
	at, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("the spool file was removed while being written: %w", err)
	}
	if !os.SameFile(fi, at) {
		return fmt.Errorf("the spool file %s was replaced while being written", f.path)
	}
	return nil
}

// drop forgets the current file, which is no longer in the directory.
func (s *Spool) drop() {
	s.cur.w.Close()
	s.cur = nil
}

// closeOut closes the current file and gives it its final name; an empty one is removed.
func (s *Spool) closeOut() {
	f := s.cur
	if f == nil {
		return
	}
	s.cur = nil
	f.w.Close()
	if f.size == 0 {
		os.Remove(f.path)
		return
	}
	s.stats.files.Add(1)
	s.rename(f.path)
}

// rename gives a closed file its final name, or remembers it to try again.
func (s *Spool) rename(path string) bool {
	final := strings.TrimSuffix(path, ".open")
	err := s.opts.Rename(path, final)
	if err == nil {
		err = syncDir(s.opts.Dir)
	}
	if err == nil {
		return true
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			return true // the file itself is gone (its directory was removed): nothing to rename
		}
	}
	for _, p := range s.unrenamed {
		if p == path {
			return false
		}
	}
	s.unrenamed = append(s.unrenamed, path)
	s.log.Error("report spool: a closed file keeps its .open name, which shippers skip; retrying", "file", path, "reason", classify(err), "error", err.Error())
	return false
}

// retryRenames tries the failed renames again.
func (s *Spool) retryRenames() {
	kept := s.unrenamed[:0]
	for _, p := range s.unrenamed {
		final := strings.TrimSuffix(p, ".open")
		err := s.opts.Rename(p, final)
		if err == nil {
			err = syncDir(s.opts.Dir)
		}
		switch {
		case err == nil:
			s.log.Info("report spool: a closed file got its final name", "file", final)
		case errors.Is(err, fs.ErrNotExist):
			if _, serr := os.Stat(p); errors.Is(serr, fs.ErrNotExist) {
				continue
			}
			kept = append(kept, p)
		default:
			kept = append(kept, p)
		}
	}
	s.unrenamed = kept
}

// finish closes the spool at Close.
func (s *Spool) finish() {
	s.closeOut()
	s.retryRenames()
}

// housekeep rotates a quiet edge's old file, retries renames and, once a minute, deletes
// files past retention and measures the directory.
func (s *Spool) housekeep() {
	now := s.opts.Clock()
	if f := s.cur; f != nil && now.Sub(f.opened) >= s.opts.MaxFileAge {
		s.closeOut()
	}
	if len(s.unrenamed) > 0 {
		s.retryRenames()
	}
	if now.Sub(s.lastSweep) >= time.Minute || now.Before(s.lastSweep) {
		s.sweep(now)
	}
}

// trouble records a failed commit: the first of an episode (or a new reason) is logged.
func (s *Spool) trouble(reason string, err error, now time.Time, reports int64) {
	if s.failing && s.episode.reason == reason {
		s.episode.refused += reports
		return
	}
	if !s.failing {
		s.episode.since = now
		s.episode.refused = 0
	}
	s.failing = true
	s.episode.reason = reason
	s.episode.refused += reports
	s.state.Store(&SpoolState{Reason: reason, Err: err.Error(), Since: s.episode.since})
	s.log.Error("report spool cannot store reports: answering 503 with Retry-After until it can", "reason", reason, "error", err.Error())
}

// fine records a commit that stored: the end of an episode is logged.
func (s *Spool) fine(now time.Time) {
	if !s.failing {
		return
	}
	s.failing = false
	s.state.Store(&SpoolState{Storing: true, Since: now})
	s.log.Info("report spool stores reports again", "after", s.episode.reason, "for", now.Sub(s.episode.since).String(),
		"refused_reports", s.episode.refused)
}

// classify maps an I/O error to a reason.
func classify(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.As(err, &errno) && errno == syscall.ENOTDIR:
		return ReasonMissing
	case errors.As(err, &errno) && (errno == syscall.ENOSPC || errno == syscall.EDQUOT):
		return ReasonDiskFull
	case errors.Is(err, fs.ErrPermission), errors.As(err, &errno) && errno == syscall.EROFS:
		return ReasonReadOnly
	}
	return ReasonIO
}

func reasonIndex(reason string) int {
	for i, r := range SpoolReasons {
		if r == reason {
			return i
		}
	}
	return len(SpoolReasons) - 1
}

func sizeOf(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// spoolFileTime is the time in a spool file's name (closed or open; a recovered file may
// carry a "-N" suffix).
func spoolFileTime(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, "reports-")
	if !ok || len(rest) < len("20060102T150405.000000000Z") {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405.000000000Z", rest[:len("20060102T150405.000000000Z")])
	return t, err == nil
}

// recover closes out the files a previous run left open (an edge killed, or a power cut):
// a torn last line is cut off at the last newline, and the file is renamed for shippers.
func (s *Spool) recover() {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		s.log.Error("report spool: cannot list the directory", "error", err.Error())
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, "reports-") || !strings.HasSuffix(name, ".ndjson.open") {
			continue
		}
		path := filepath.Join(s.opts.Dir, name)
		kept, cut, err := cutTorn(path)
		if err != nil {
			s.log.Error("report spool: cannot close out a file a previous run left open", "file", path, "error", err.Error())
			continue
		}
		if kept == 0 {
			os.Remove(path)
			continue
		}
		final := strings.TrimSuffix(path, ".open")
		for k := 1; ; k++ {
			if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
				break
			}
			final = strings.TrimSuffix(path, ".ndjson.open") + "-" + strconv.Itoa(k) + ".ndjson"
		}
		if err := s.opts.Rename(path, final); err != nil {
			s.log.Error("report spool: cannot rename a file a previous run left open", "file", path, "error", err.Error())
			continue
		}
		syncDir(s.opts.Dir)
		s.stats.recovered.Add(1)
		s.log.Warn("report spool: closed out a file a previous run left open (killed?)", "file", final, "bytes", kept, "torn_bytes_cut", cut)
	}
}

// cutTorn truncates a file after its last newline and syncs it; it returns the bytes kept
// and cut.
func cutTorn(path string) (kept, cut int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := fi.Size()
	end := size
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end < size {
		if err := f.Truncate(end); err != nil {
			return 0, 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, 0, err
	}
	return end, size - end, nil
}

// sweep deletes closed files whose newest line is past retention (by the time in their
// name: every line of a file was received within MaxFileAge of it) and measures the
// directory.
func (s *Spool) sweep(now time.Time) {
	s.lastSweep = now
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return
	}
	deleted := 0
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".ndjson") {
			continue
		}
		t, ok := spoolFileTime(name)
		if !ok || now.Sub(t) < s.opts.Retention+s.opts.MaxFileAge {
			continue
		}
		if err := os.Remove(filepath.Join(s.opts.Dir, name)); err == nil {
			deleted++
		}
	}
	if deleted > 0 {
		s.stats.expired.Add(int64(deleted))
		s.log.Info("report spool: deleted files past the retention window that no shipper took", "files", deleted, "retention", s.opts.Retention.String())
	}
	s.scan(now)
}

// scan measures the directory's files.
func (s *Spool) scan(now time.Time) {
	s.lastScan = now
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return
	}
	var n int64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	s.dirBytes = n
	s.stats.bytes.Store(n)
}

// spoolable checks what Append writes unescaped.
func spoolable(r *Report) error {
	switch {
	case r.DeviceID == "":
		return &Error{CodeMissing, "deviceId is required", "/deviceId"}
	case !validID(r.LabelID):
		return &Error{CodeBadValue, "labelId must be a decimal id", "/labelId"}
	case !knownResult(r.Result):
		return &Error{CodeBadValue, "result is not one of " + strings.Join(Results, ", "), "/result"}
	case r.Time.Year() < 1 || r.Time.Year() > 9999:
		return &Error{CodeBadValue, "time is not a time RFC 3339 can write", "/time"}
	case r.Build < 0 || r.Build > 1<<31-1:
		return &Error{CodeBadValue, "build must be a Windows build number", "/build"}
	}
	if r.CHID != "" {
		if id, err := chid.Parse(r.CHID); err != nil || id.String() != r.CHID {
			return &Error{CodeBadValue, "chid is not a lowercase GUID", "/chid"}
		}
	}
	return nil
}

// appendLine appends a report's spool line.
func appendLine(b []byte, r *Report, received time.Time, m hash.Hash) []byte {
	b = append(b, `{"device":"`...)
	b = appendPseudonym(b, m, r.DeviceID)
	b = append(b, `","labelId":"`...)
	b = append(b, r.LabelID...)
	b = append(b, `","result":"`...)
	b = append(b, r.Result...)
	b = append(b, `","time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if r.Build > 0 {
		b = append(b, `,"build":`...)
		b = strconv.AppendInt(b, int64(r.Build), 10)
	}
	if r.CHID != "" {
		b = append(b, `,"chid":"`...)
		b = append(b, r.CHID...)
		b = append(b, '"')
	}
	if code := ErrorCode(r.ErrorCode); code != "" {
		b = append(b, `,"errorCode":"`...)
		b = append(b, code...)
		b = append(b, '"')
	}
	if r.Source != "" { // its pseudonym (SourcePseudonym), the message built in place
		b = append(b, `,"source":"`...)
		start := len(b)
		b = append(b, "source "...)
		b = append(b, r.Source...)
		m.Reset()
		m.Write(b[start:])
		var sum [sha256.Size]byte
		b = hex.AppendEncode(b[:start], m.Sum(sum[:0])[:8])
		b = append(b, '"')
	}
	b = append(b, `,"received":"`...)
	b = received.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

// ErrorCode returns the canonical form of a report's error code when it is a number: "0x"
// (or "0X") and 1 to 8 hex digits as "0x" and 8 lowercase hex digits ("0x80070002"), or 1
// to 10 decimal digits below 2^32 without leading zeros ("10", a device-manager problem
// code); for anything else, "". Spools keep only these (see the format above).
func ErrorCode(s string) string {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		if len(s) > 10 {
			return ""
		}
		v, err := strconv.ParseUint(s[2:], 16, 32)
		if err != nil || strings.ContainsAny(s[2:], "+-_") {
			return ""
		}
		return fmt.Sprintf("0x%08x", v)
	}
	if s == "" || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return ""
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

// ReadStats count what ReadSpools read.
type ReadStats struct {
	Files   int `json:"files"`
	Lines   int `json:"lines"`
	Torn    int `json:"torn"`    // a last line cut short (a crash mid-write): skipped
	Invalid int `json:"invalid"` // complete lines that are not valid reports: skipped
}

// ReadSpools reads every spool file (closed and open) under dirs, in name order, and calls fn
// for each valid report. A report's DeviceID is the line's pseudonym.
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
			if rep, ok := parseSpooled(line); ok {
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

// spoolLine is a spool line as read: today's, or one written before pseudonyms (deviceId,
// instanceId, ignored, and a free-form errorCode).
type spoolLine struct {
	Device    string    `json:"device"`
	DeviceID  string    `json:"deviceId"`
	LabelID   string    `json:"labelId"`
	Result    string    `json:"result"`
	Time      time.Time `json:"time"`
	Build     int       `json:"build"`
	CHID      string    `json:"chid"`
	ErrorCode string    `json:"errorCode"`
	Source    string    `json:"source"`
	Received  time.Time `json:"received"`
}

// parseSpooled reads and checks one spool line.
func parseSpooled(line []byte) (Report, bool) {
	var l spoolLine
	if json.Unmarshal(line, &l) != nil {
		return Report{}, false
	}
	dev := l.Device
	if dev == "" {
		dev = l.DeviceID
	} else if l.DeviceID != "" {
		return Report{}, false
	}
	if dev == "" || len(dev) > 128 || !validID(l.LabelID) || !knownResult(l.Result) || l.Time.IsZero() || l.Received.IsZero() ||
		l.Build < 0 || l.Build > 1<<31-1 {
		return Report{}, false
	}
	if len(l.Source) > 64 {
		return Report{}, false
	}
	r := Report{DeviceID: dev, LabelID: l.LabelID, Result: l.Result, Time: l.Time, Build: l.Build, Received: l.Received, Source: l.Source,
		ErrorCode: ErrorCode(l.ErrorCode)}
	if l.CHID != "" {
		id, err := chid.Parse(l.CHID)
		if err != nil {
			return Report{}, false
		}
		r.CHID = id.String()
	}
	return r, true
}
