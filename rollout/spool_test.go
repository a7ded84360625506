package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/driveway/driveway/internal/testclock"
)

// testSecret is the tests' fleet secret.
var testSecret = []byte("the fleet secret of driveway's tests, not a secret")

// testSpool opens a spool with the tests' secret, a running test clock and no free-disk
// reserve (the machine's free space is not what these tests are about) unless opts say
// otherwise, and closes it at cleanup.
func testSpool(t *testing.T, opts SpoolOptions) *Spool {
	t.Helper()
	if opts.Secret == nil {
		opts.Secret = testSecret
	}
	if opts.Clock == nil {
		opts.Clock = testclock.Running()
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = -1
	}
	if opts.MinFreePercent == 0 {
		opts.MinFreePercent = -1
	}
	s, err := OpenSpool(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// store appends one request's reports and waits for their commit.
func store(s *Spool, rs ...*Report) error {
	batch := make([]Report, len(rs))
	for i, r := range rs {
		batch[i] = *r
	}
	c, err := s.Append(batch, t0)
	if err != nil {
		return err
	}
	return c.Wait()
}

func reason(err error) string {
	var se *SpoolError
	if errors.As(err, &se) {
		return se.Reason
	}
	return fmt.Sprint(err)
}

// onDisk counts the complete lines of the spool files in dir, the files, the empty ones
// and the open ones.
func onDisk(t *testing.T, dir string) (lines, files, empty, open int) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "reports-*"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files++
		if len(b) == 0 {
			empty++
		}
		if strings.HasSuffix(p, ".open") {
			open++
		}
		lines += bytes.Count(b, []byte{'\n'})
	}
	return
}

// logRecorder keeps the records a spool logs.
type logRecorder struct {
	mu   sync.Mutex
	recs []string // "LEVEL message"
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// lines is a copy of the records so far.
func (l *logRecorder) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

// count is how many records of level have msg in their message.
func (l *logRecorder) count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if strings.HasPrefix(r, level.String()+" ") && strings.Contains(r, msg) {
			n++
		}
	}
	return n
}

// budgetFile is a real spool file on a disk with a shared byte budget: a write beyond it
// writes what fits and fails with ENOSPC, as a full file system does.
type budgetFile struct {
	*os.File
	left *atomic.Int64
}

func (f *budgetFile) Write(p []byte) (int, error) {
	if f.left.Add(-int64(len(p))) >= 0 {
		return f.File.Write(p)
	}
	f.left.Add(int64(len(p)))
	fit := max(0, f.left.Swap(0))
	n, _ := f.File.Write(p[:fit])
	return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

func budgetCreate(left *atomic.Int64) func(string) (io.WriteCloser, error) {
	return func(p string) (io.WriteCloser, error) {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644) // no O_APPEND: the spool must seek back after a cut
		if err != nil {
			return nil, err
		}
		return &budgetFile{f, left}, nil
	}
}

// TestSpoolAckMeansWritten: when Wait returns nil the report is in a file, complete, before
// anything else happens; files rotate by size; Close leaves nothing open; the lines say
// what the format says and nothing more.
func TestSpoolAckMeansWritten(t *testing.T) {
	dir := t.TempDir()
	s := testSpool(t, SpoolOptions{Dir: dir, MaxFileBytes: 2000, SyncEvery: time.Millisecond})
	for i := range 100 {
		if err := store(s, report(fmt.Sprint("pc", i), "7", "installed", 22631, "")); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		if lines, _, _, _ := onDisk(t, dir); lines != i+1 || s.Stats().Written != int64(i+1) {
			t.Fatalf("after %d acknowledged reports: %d lines on disk, %d written", i+1, lines, s.Stats().Written)
		}
	}
	s.Close()
	lines, files, empty, open := onDisk(t, dir)
	if st := s.Stats(); lines != 100 || files < 2 || empty+open != 0 || st.Written != 100 || st.Files != int64(files) {
		t.Errorf("%d lines in %d files (%d empty, %d open), stats %+v: want 100 in several closed files", lines, files, empty, open, st)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "reports-*.ndjson"))
	first, _ := os.ReadFile(paths[0])
	line, _, _ := strings.Cut(string(first), "\n")
	want := fmt.Sprintf(`{"device":%q,"labelId":"7","result":"installed","time":%q,"build":22631,"received":%q}`,
		Pseudonym(testSecret, "pc0"), t0.UTC().Format(time.RFC3339Nano), t0.UTC().Format(time.RFC3339Nano))
	if line != want {
		t.Errorf("spool line\n got %s\nwant %s", line, want)
	}
	n := 0
	rs, err := ReadSpools([]string{dir}, func(r *Report) { n++ })
	if err != nil || n != 100 || rs.Torn+rs.Invalid != 0 {
		t.Errorf("read %d reports, %+v, %v", n, rs, err)
	}
}

// TestSpoolGroupCommit: requests that arrive while a commit is under way share the next
// one: 50 requests held up behind one slow file creation take at most three commits.
func TestSpoolGroupCommit(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	var once sync.Once
	s := testSpool(t, SpoolOptions{Dir: dir, Create: func(p string) (io.WriteCloser, error) {
		once.Do(func() { <-release })
		return os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	}})
	const requests = 50
	errs := make(chan error, requests)
	for i := range requests {
		go func() { errs <- store(s, report(fmt.Sprint("pc", i), "7", "installed", 0, "")) }()
	}
	for k := 0; ; k++ { // all of them queued or being written
		s.mu.Lock()
		w := s.waiting
		s.mu.Unlock()
		if w == requests {
			break
		}
		if k > 1e6 {
			t.Fatalf("%d of %d requests queued", w, requests)
		}
		runtime.Gosched()
	}
	close(release)
	for range requests {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	lines, _, _, _ := onDisk(t, dir)
	t.Logf("%d requests in %d commits", requests, st.Commits)
	if st.Written != requests || lines != requests || st.Commits > 3 {
		t.Errorf("%d written, %d lines, %d commits: want %d in at most 3 commits", st.Written, lines, st.Commits, requests)
	}
}

// TestSpoolDiskFull (issue 14: a disk that fills up): 12,800 reports into a disk with room
// for a few thousand. Every report is either acknowledged and on disk, or refused with
// disk-full; the lines on disk, Written and the acknowledgements agree; no empty files; one
// log line for the episode and one when space is back.
func TestSpoolDiskFull(t *testing.T) {
	dir := t.TempDir()
	var left atomic.Int64
	left.Store(1 << 20)
	logs := &logRecorder{}
	s := testSpool(t, SpoolOptions{Dir: dir, MaxFileBytes: 256 << 10, Create: budgetCreate(&left), Logger: slog.New(logs)})
	acked, refused := 0, 0
	batch := make([]*Report, MaxBatch)
	for i := range 200 {
		for k := range batch {
			batch[k] = report(fmt.Sprintf("pc-%d-%d", i, k), "7", "installed", 22631, "")
		}
		switch err := store(s, batch...); {
		case err == nil:
			acked += MaxBatch
		case reason(err) == ReasonDiskFull:
			refused += MaxBatch
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	lines, _, empty, _ := onDisk(t, dir)
	st := s.Stats()
	t.Logf("12800 reports: %d acknowledged, %d refused; %d lines on disk, %d written, %d commits refused", acked, refused, lines, st.Written, st.Refused[reasonIndex(ReasonDiskFull)])
	if acked == 0 || refused == 0 || lines != acked || st.Written != int64(acked) || empty != 0 {
		t.Errorf("acknowledged %d, refused %d, on disk %d, written %d, %d empty files: acknowledged, on disk and written agree; no empty files", acked, refused, lines, st.Written, empty)
	}
	if st.State.Storing || st.State.Reason != ReasonDiskFull || !strings.Contains(st.State.Err, "no space left") {
		t.Errorf("state %+v while the disk is full", st.State)
	}
	if n := logs.count(slog.LevelError, "cannot store reports"); n != 1 {
		t.Errorf("%d error lines for one disk-full episode, want 1: %q", n, logs.lines())
	}
	left.Store(1 << 20) // space again
	if err := store(s, report("pc-after", "7", "installed", 0, "")); err != nil {
		t.Fatal(err)
	}
	if n := logs.count(slog.LevelInfo, "stores reports again"); n != 1 || !s.State().Storing {
		t.Errorf("%d recovery lines, state %+v", n, s.State())
	}
	s.Close()
	if lines, _, _, _ := onDisk(t, dir); lines != acked+1 {
		t.Errorf("%d lines after recovery, want %d", lines, acked+1)
	}
}

// TestSpoolDirectoryRemoved (issue 14: the spool directory deleted while serving): what
// cannot be where shippers look is refused, not acknowledged into an unlinked file; once
// the directory is back, reports are stored again. The spool does not recreate it (it may
// be a mount point that went away).
func TestSpoolDirectoryRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	logs := &logRecorder{}
	s := testSpool(t, SpoolOptions{Dir: dir, Logger: slog.New(logs)})
	if err := store(s, report("pc-1", "7", "installed", 0, "")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	for i := range 5 {
		if err := store(s, report(fmt.Sprint("pc-gone-", i), "7", "installed", 0, "")); reason(err) != ReasonMissing {
			t.Errorf("report %d into a removed directory: %v, want %s", i, err, ReasonMissing)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the spool recreated its directory: %v", err)
	}
	if n := logs.count(slog.LevelError, "cannot store reports"); n != 1 {
		t.Errorf("%d error lines, want 1: %q", n, logs.lines())
	}
	os.MkdirAll(dir, 0o755)
	if err := store(s, report("pc-back", "7", "installed", 0, "")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if lines, _, _, open := onDisk(t, dir); lines != 1 || open != 0 || s.Stats().Written != 2 {
		t.Errorf("%d lines (%d open files), %d written: want the 1 report stored after the directory came back", lines, open, s.Stats().Written)
	}
}

// TestSpoolRecoversOpenFiles (issue 14: kill -9): files a killed edge left open are cut at
// their last newline and renamed for the shippers; empty or wholly torn ones are removed;
// a final name already taken gets a suffix.
func TestSpoolRecoversOpenFiles(t *testing.T) {
	dir := t.TempDir()
	var line []byte
	for i := range 3 {
		line = appendLine(line, report(fmt.Sprint("pc", i), "7", "installed", 0, ""), t0, newMAC(testSecret))
	}
	name := func(d time.Duration) string { return filepath.Join(dir, fileName(t0.Add(d))) }
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(name(0)+".open", append(append([]byte(nil), line...), line[:40]...))    // 3 lines and a torn one
	write(name(time.Second)+".open", line[:30])                                   // only a torn line
	write(name(2*time.Second)+".open", nil)                                       // empty
	write(name(3*time.Second), line)                                              // closed: untouched
	write(name(3*time.Second)+".open", append(append([]byte(nil), line...), '{')) // its final name is taken
	logs := &logRecorder{}
	s := testSpool(t, SpoolOptions{Dir: dir, Logger: slog.New(logs), Clock: func() time.Time { return t0 }})
	if open, _ := filepath.Glob(filepath.Join(dir, "*.open")); len(open) != 0 {
		t.Errorf("still open after OpenSpool: %v", open)
	}
	if b, err := os.ReadFile(name(0)); err != nil || !bytes.Equal(b, line) {
		t.Errorf("recovered file: %v, %q; want its 3 complete lines", err, b)
	}
	if b, err := os.ReadFile(strings.TrimSuffix(name(3*time.Second), ".ndjson") + "-1.ndjson"); err != nil || !bytes.Equal(b, line) {
		t.Errorf("recovered file whose name was taken: %v, %q", err, b)
	}
	for _, gone := range []string{name(time.Second), name(2 * time.Second)} {
		if _, err := os.Stat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: a file with no complete line was kept", gone)
		}
	}
	if st := s.Stats(); st.Recovered != 2 || logs.count(slog.LevelWarn, "closed out a file a previous run left open") != 2 {
		t.Errorf("recovered %d files, logs %q", st.Recovered, logs.lines())
	}
	var st ReadStats
	st, err := ReadSpools([]string{dir}, func(*Report) {})
	if err != nil || st.Lines != 9 || st.Torn+st.Invalid != 0 {
		t.Errorf("read %+v, %v; want 9 lines, none torn", st, err)
	}
}

// TestSpoolSizeCap: at MaxTotalBytes reports are refused (cap); once a shipper has taken
// files, they are stored again.
func TestSpoolSizeCap(t *testing.T) {
	dir := t.TempDir()
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := testSpool(t, SpoolOptions{Dir: dir, MaxTotalBytes: 8 << 10, MaxFileBytes: 2 << 10, Clock: clock})
	stored := 0
	var err error
	for i := 0; i < 1000; i++ {
		if err = store(s, report(fmt.Sprint("pc", i), "7", "installed", 0, "")); err != nil {
			break
		}
		stored++
	}
	if reason(err) != ReasonCap || stored == 0 {
		t.Fatalf("after %d reports: %v, want %s", stored, err, ReasonCap)
	}
	var size int64
	paths, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, p := range paths {
		fi, _ := os.Stat(p)
		size += fi.Size()
	}
	if size > 8<<10 {
		t.Errorf("the spool holds %d bytes, over its cap of %d", size, 8<<10)
	}
	closed, _ := filepath.Glob(filepath.Join(dir, "reports-*.ndjson"))
	for _, p := range closed { // the shipper takes them
		os.Remove(p)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if err := store(s, report("pc-after", "7", "installed", 0, "")); err != nil {
		t.Errorf("after the shipper took %d files: %v", len(closed), err)
	}
}

// TestSpoolReserve: reports stop short of the file system's reserve, in bytes or percent.
func TestSpoolReserve(t *testing.T) {
	var free atomic.Uint64
	const total = 100 << 20
	statfs := func(string) (uint64, uint64, error) { return free.Load(), total, nil }
	for _, tc := range []struct {
		name      string
		opts      SpoolOptions
		low, high uint64
	}{
		{"bytes", SpoolOptions{MinFreeBytes: 10 << 20, MinFreePercent: -1}, 10<<20 - 1, 11 << 20},
		{"percent", SpoolOptions{MinFreeBytes: -1, MinFreePercent: 20}, 19 << 20, 21 << 20},
	} {
		opts := tc.opts
		opts.Dir, opts.Statfs = t.TempDir(), statfs
		s := testSpool(t, opts)
		free.Store(tc.low)
		if err := store(s, report("pc", "7", "installed", 0, "")); reason(err) != ReasonReserve || !strings.Contains(err.Error(), "releases can always be stored") {
			t.Errorf("%s: %d bytes free: %v, want %s", tc.name, tc.low, err, ReasonReserve)
		}
		free.Store(tc.high)
		if err := store(s, report("pc", "7", "installed", 0, "")); err != nil {
			t.Errorf("%s: %d bytes free: %v", tc.name, tc.high, err)
		}
		if st := s.Stats(); st.Free != tc.high || st.Written != 1 {
			t.Errorf("%s: stats %+v", tc.name, st)
		}
	}
}

// TestSpoolStatfs: without a hook the spool measures the real file system.
func TestSpoolStatfs(t *testing.T) {
	if _, _, err := statfs(t.TempDir()); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no statfs here")
	}
	s := testSpool(t, SpoolOptions{Dir: t.TempDir()})
	if err := store(s, report("pc", "7", "installed", 0, "")); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Free == 0 || st.Bytes == 0 {
		t.Errorf("stats %+v: free space and spool size unmeasured", st)
	}
}

// TestSpoolRetention: closed files past the retention window are deleted at start and as
// the clock moves on; younger ones and the open file stay.
func TestSpoolRetention(t *testing.T) {
	dir := t.TempDir()
	line := appendLine(nil, report("pc", "7", "installed", 0, ""), t0, newMAC(testSecret))
	day := 24 * time.Hour
	oldest := filepath.Join(dir, fileName(t0.Add(-DefaultRetention-2*time.Hour)))
	older := filepath.Join(dir, fileName(t0.Add(-DefaultRetention+day)))
	young := filepath.Join(dir, fileName(t0.Add(-day)))
	for _, p := range []string{oldest, older, young} {
		os.WriteFile(p, line, 0o644)
	}
	var now atomic.Int64
	now.Store(t0.UnixNano())
	logs := &logRecorder{}
	s := testSpool(t, SpoolOptions{Dir: dir, Logger: slog.New(logs), Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	if err := store(s, report("pc", "7", "installed", 0, "")); err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if exists(oldest) || !exists(older) || !exists(young) {
		t.Errorf("at start: oldest kept %v, older %v, young %v; want only the oldest deleted", exists(oldest), exists(older), exists(young))
	}
	now.Add(int64(2 * day))
	// The writer sweeps once a second (of the machine's clock); a sweep deletes the file,
	// then counts and logs it, so wait for all three.
	swept := func() bool {
		return !exists(older) && s.Stats().Expired == 2 && logs.count(slog.LevelInfo, "past the retention window") == 2
	}
	for k := 0; !swept(); k++ {
		if k > 500 {
			t.Fatalf("the file that passed the retention window: kept %v, expired %d, logs %q", exists(older), s.Stats().Expired, logs.lines())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !exists(young) {
		t.Errorf("the young file was deleted; logs %q", logs.lines())
	}
}

// TestMeasureRetention: measures never count reports older than the retention window,
// whatever Since says.
func TestMeasureRetention(t *testing.T) {
	dir := t.TempDir()
	m := newMAC(testSecret)
	var b []byte
	for i, age := range []time.Duration{40 * 24 * time.Hour, 31 * 24 * time.Hour, 24 * time.Hour} {
		r := report(fmt.Sprint("pc", i), "7", "failed", 0, "")
		r.Time = t0.Add(-age)
		b = appendLine(b, r, r.Time, m)
	}
	os.WriteFile(filepath.Join(dir, fileName(t0)), b, 0o644)
	for _, since := range []time.Time{{}, t0.Add(-90 * 24 * time.Hour)} {
		ms, err := MeasureSpools([]string{dir}, MeasureOptions{Since: since}, t0)
		lm, ok := ms.Label("7")
		if err != nil || !ok || lm.Machines != 1 || !ms.Since.Equal(t0.Add(-DefaultRetention)) {
			t.Errorf("since %v: %+v, %v; want 1 machine, since the retention window", since, ms, err)
		}
	}
}

// TestSpoolPseudonyms: the spool keeps a keyed pseudonym of the device id, nothing of the
// instance id, and the error code only as a canonical number; edges sharing the secret agree, so measures count one
// machine across them; another secret gives another pseudonym.
func TestSpoolPseudonyms(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	sa, sb := testSpool(t, SpoolOptions{Dir: a}), testSpool(t, SpoolOptions{Dir: b})
	r := report("b7e1c0de-5d1e-4c0a-9f55-6a3e2f0d9b11", "7", "installed", 22631, "8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814")
	r.InstanceID, r.ErrorCode = `PCI\VEN_8086&DEV_15F3\3&11583659&0&FE`, "0x0000009F"
	if err := store(sa, r); err != nil {
		t.Fatal(err)
	}
	r.Result = "kernel-crash-after-install"
	if err := store(sb, r); err != nil {
		t.Fatal(err)
	}
	free := *r
	free.ErrorCode = "SN-4711 failed"
	if err := store(sb, &free); err != nil {
		t.Fatal(err)
	}
	sa.Close()
	sb.Close()
	var all []byte
	for _, dir := range []string{a, b} {
		paths, _ := filepath.Glob(filepath.Join(dir, "reports-*"))
		for _, p := range paths {
			data, _ := os.ReadFile(p)
			all = append(all, data...)
		}
	}
	for _, kept := range []string{r.DeviceID, "11583659", "VEN_8086", "0x0000009F", "deviceId", "instanceId", "SN-4711"} {
		if bytes.Contains(all, []byte(kept)) {
			t.Errorf("the spool keeps %q:\n%s", kept, all)
		}
	}
	if n := bytes.Count(all, []byte(`"errorCode":"0x0000009f"`)); n != 2 {
		t.Errorf("the canonical error code is in %d lines, want 2:\n%s", n, all)
	}
	p := Pseudonym(testSecret, r.DeviceID)
	if bytes.Count(all, []byte(`"device":"`+p+`"`)) != 3 || len(p) != 32 {
		t.Errorf("pseudonym %s not in all three lines:\n%s", p, all)
	}
	if Pseudonym([]byte("another fleet's secret, 32 bytes or more"), r.DeviceID) == p {
		t.Error("two secrets give the same pseudonym")
	}
	ms, err := MeasureSpools([]string{a, b}, MeasureOptions{}, t0)
	lm, ok := ms.Label("7")
	if err != nil || !ok || lm.Machines != 1 || lm.KernelCrash != 1 {
		t.Errorf("measures over two edges: %+v, %v; want 1 machine with a kernel crash", lm, err)
	}
}

// TestSpoolNeedsSecret: no secret, or a short one, is refused; LoadSecret trims the newline.
func TestSpoolNeedsSecret(t *testing.T) {
	for _, secret := range [][]byte{nil, []byte("short")} {
		if _, err := OpenSpool(SpoolOptions{Dir: t.TempDir(), Clock: testclock.Running(), Secret: secret}); err == nil || !strings.Contains(err.Error(), "secret") {
			t.Errorf("secret %q: %v", secret, err)
		}
	}
	p := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(p, append(append([]byte(nil), testSecret...), '\n'), 0o600)
	if b, err := LoadSecret(p); err != nil || !bytes.Equal(b, testSecret) {
		t.Errorf("LoadSecret: %q, %v", b, err)
	}
	os.WriteFile(p, []byte("short\n"), 0o600)
	if _, err := LoadSecret(p); err == nil {
		t.Error("a 5-byte secret loaded")
	}
}

// TestSpoolQueueAndTimeout: with the writer stuck, requests beyond the queue are refused at
// once; a request waits at most AckTimeout (its reports may still be stored later); Close
// stores what was queued; Append after Close is refused.
func TestSpoolQueueAndTimeout(t *testing.T) {
	dir := t.TempDir()
	stuck := make(chan struct{})
	s := testSpool(t, SpoolOptions{Dir: dir, Queue: 10, AckTimeout: 20 * time.Millisecond,
		Create: func(p string) (io.WriteCloser, error) {
			<-stuck
			return os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
		}})
	var commits []*Commit
	queueFull := 0
	for i := range 100 {
		c, err := s.Append([]Report{*report(fmt.Sprint("pc", i), "7", "installed", 0, "")}, t0)
		switch {
		case err == nil:
			commits = append(commits, c)
		case reason(err) == ReasonQueue:
			queueFull++
		default:
			t.Fatal(err)
		}
	}
	if len(commits) != 10 || queueFull != 90 {
		t.Errorf("%d queued, %d refused with a queue of 10", len(commits), queueFull)
	}
	if err := commits[0].Wait(); reason(err) != ReasonTimeout {
		t.Errorf("a stuck writer: %v, want %s", err, ReasonTimeout)
	}
	close(stuck)
	s.Close()
	for _, c := range commits[1:] {
		<-c.done
		if c.err != nil {
			t.Errorf("a queued commit after the writer came unstuck: %v", c.err)
		}
	}
	if st := s.Stats(); st.Written != 10 {
		t.Errorf("%d written, want the 10 queued", st.Written)
	}
	if _, err := s.Append([]Report{*report("pc", "7", "installed", 0, "")}, t0); reason(err) != ReasonClosed {
		t.Errorf("Append after Close: %v", err)
	}
}

// TestSpoolRefusesUnchecked: Append writes fields unescaped, so it refuses reports that did
// not come through DecodeReports rather than let one break a line.
func TestSpoolRefusesUnchecked(t *testing.T) {
	s := testSpool(t, SpoolOptions{Dir: t.TempDir()})
	for _, r := range []*Report{
		report("pc", `7","result":"installed"}`+"\n", "installed", 0, ""),
		report("pc", "7", `installed"`, 0, ""),
		report("pc", "7", "installed", 0, `8DC9B7C5-F5D5-5850-9AB3-BD6F0549D814"`),
		report("", "7", "installed", 0, ""),
	} {
		if _, err := s.Append([]Report{*r}, t0); err == nil {
			t.Errorf("%+v appended", r)
		}
	}
}

// strictCase is a report body and what DecodeReports must say of it.
type strictCase struct {
	name, body, code, field, msg string
}

func strictCases() (good string, cases []strictCase) {
	at := t0.Add(-time.Hour).UTC().Format(time.RFC3339)
	good = `{"deviceId":"pc-1","labelId":"3009","instanceId":"PCI\\VEN_8086&DEV_15F3\\3&11583659&0&FE","result":"installed","time":"` + at + `","build":22631}`
	with := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	ts := func(d time.Duration) string { return with(at, t0.Add(d).UTC().Format(time.RFC3339)) }
	deep := strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40)
	return good, []strictCase{
		{"duplicate member", with(`"result":"installed"`, `"result":"installed","result":"failed"`), CodeBadJSON, "/result", "duplicate member"},
		{"duplicate in a batch", "[" + good + "," + with(`"build":22631`, `"build":22631,"build":22631`) + "]", CodeBadJSON, "/1/build", "duplicate member"},
		{"invalid UTF-8", with(`"pc-1"`, "\"pc-\xff1\""), CodeBadValue, "/deviceId", "not valid UTF-8"},
		{"invalid UTF-8 in a name", with(`"build"`, "\"bu\xffild\""), CodeBadJSON, "", "not valid UTF-8"},
		{"lone surrogate", with(`"pc-1"`, `"pc-\ud800"`), CodeBadValue, "/deviceId", "lone UTF-16 surrogate"},
		{"escaped NUL", with(`"pc-1"`, `"pc-\u0000"`), CodeBadValue, "/deviceId", "control character U+0000"},
		{"newline in instanceId", with(`3&11583659`, `3&11583659\n`), CodeBadValue, "/instanceId", "control character U+000A"},
		{"raw control byte", with(`"pc-1"`, "\"pc-\x01\""), CodeBadJSON, "/deviceId", "raw control byte 0x01"},
		{"DEL", with(`"pc-1"`, "\"pc-\x7f\""), CodeBadValue, "/deviceId", "U+007F"},
		{"C1 control", with(`"pc-1"`, `"pc-\u0085"`), CodeBadValue, "/deviceId", "U+0085"},
		{"line separator", with(`"build"`, `"errorCode":"0x1\u2028","build"`), CodeBadValue, "/errorCode", "U+2028"},
		{"unknown member", with(`"build"`, `"colour":1,"build"`), CodeBadValue, "/colour", "unknown member"},
		{"unknown member with a slash", with(`"build"`, `"a/b~c":1,"build"`), CodeBadValue, "/a~1b~0c", "unknown member"},
		{"unknown label", with(`"3009"`, `"4000"`), CodeBadValue, "/labelId", "not a label of the release"},
		{"time in 1970", with(at, "1970-01-01T00:00:00Z"), CodeBadValue, "/time", "before the edge's clock"},
		{"time in 2099", with(at, "2099-01-01T00:00:00Z"), CodeBadValue, "/time", "ahead of the edge's clock"},
		{"time past retention", ts(-DefaultRetention - time.Minute), CodeBadValue, "/time", "30 days before"},
		{"time two hours ahead", ts(2 * time.Hour), CodeBadValue, "/time", "1h0m0s ahead"},
		{"time not RFC 3339", with(at, "21/11/2026"), CodeBadValue, "/time", "RFC 3339"},
		{"null", with(`"pc-1"`, `null`), CodeBadType, "/deviceId", "must be a string"},
		{"build fraction", with(`22631`, `22631.5`), CodeBadValue, "/build", "whole number"},
		{"build exponent", with(`22631`, `2e4`), CodeBadValue, "/build", "whole number"},
		{"build negative", with(`22631`, `-1`), CodeBadValue, "/build", "whole number"},
		{"build too large", with(`22631`, `2147483648`), CodeBadValue, "/build", "whole number"},
		{"build string", with(`22631`, `"22631"`), CodeBadType, "/build", "must be a number"},
		{"received", with(`"build"`, `"received":"`+at+`","build"`), CodeBadValue, "/received", "set by the edge"},
		{"missing", `{"deviceId":"pc"}`, CodeMissing, "/instanceId", "required"},
		{"too deep", with(`"build"`, `"x":`+deep+`,"build"`), CodeBadJSON, "/x", "nested deeper than 32"},
		{"syntax error wins", with(`"build":22631}`, `"colour":1,`), CodeBadJSON, "", "member name"},
		{"trailing data", good + " {}", CodeBadJSON, "", "trailing data"},
		{"empty body", " ", CodeBadJSON, "", "empty"},
		{"a number", "3", CodeBadType, "", "report object"},
		{"not an object in a batch", "[" + good + ",3]", CodeBadType, "/1", "JSON object"},
		{"empty batch", "[]", CodeLimit, "", "0 reports"},
		{"batch too large", "[" + strings.Repeat(good+",", MaxBatch) + good + "]", CodeLimit, "", "65 reports"},
		{"unclosed string", `{"deviceId":"pc`, CodeBadJSON, "/deviceId", "not closed"},
		{"bad escape", with(`"pc-1"`, `"pc-\x"`), CodeBadJSON, "/deviceId", "unknown escape"},
	}
}

func strictOptions() DecodeOptions {
	return DecodeOptions{Now: t0, Label: func(id uint64) bool { return id == 3009 || id == 3010 }}
}

// TestDecodeReportsStrict (issue 14: strict input): every way a body can be wrong is a 400
// with the offending value's pointer and a message that says what is wrong.
func TestDecodeReportsStrict(t *testing.T) {
	good, cases := strictCases()
	if rs, err := DecodeReports([]byte(good), strictOptions()); err != nil || len(rs) != 1 || rs[0].Build != 22631 {
		t.Fatalf("the good report: %+v, %v", rs, err)
	}
	for _, d := range []time.Duration{-DefaultRetention + time.Minute, 59 * time.Minute} { // inside the window
		body := strings.Replace(good, t0.Add(-time.Hour).UTC().Format(time.RFC3339), t0.Add(d).UTC().Format(time.RFC3339), 1)
		if _, err := DecodeReports([]byte(body), strictOptions()); err != nil {
			t.Errorf("time %v from the clock: %v", d, err)
		}
	}
	for _, c := range cases {
		_, err := DecodeReports([]byte(c.body), strictOptions())
		var re *Error
		if !errors.As(err, &re) || re.Code != c.code || re.Field != c.field || !strings.Contains(re.Message, c.msg) {
			t.Errorf("%s: %v; want %s at %q saying %q", c.name, err, c.code, c.field, c.msg)
		}
	}
}

func FuzzDecodeReports(f *testing.F) {
	f.Add([]byte(`{"deviceId":"pc-1","labelId":"3009","instanceId":"i","result":"installed","time":"2026-11-21T12:00:00Z"}`))
	f.Add([]byte(`[{"deviceId":"pc-1","labelId":"1","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z","chid":"8dc9b7c5-f5d5-5850-9ab3-bd6f0549d814"}]`))
	good, cases := strictCases()
	f.Add([]byte(good))
	f.Add([]byte("[" + good + "," + good + "]"))
	for _, c := range cases {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(`{"deviceId":"\ud83d\ude00","labelId":"3010","instanceId":"\u00e9","result":"rolled-back","time":"` + t0.UTC().Format(time.RFC3339Nano) + `","errorCode":"","chid":"{8DC9B7C5-F5D5-5850-9AB3-BD6F0549D814}"}`))
	f.Add([]byte(`{"deviceId":"pc","labelId":"18446744073709551615","instanceId":"i","result":"failed","time":"2026-11-21T12:00:00+14:00"}`))
	f.Add([]byte(`{"deviceId" : "pc" , "labelId":"3009" ,"instanceId":"i","result":"failed","time":"2026-11-21T12:00:00Z","build":0}` + "\n"))
	mac := newMAC(testSecret)
	f.Fuzz(func(t *testing.T, body []byte) {
		opts := strictOptions()
		rs, err := DecodeReports(body, opts)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) || re.Message == "" || (re.Field != "" && re.Field[0] != '/') {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if len(rs) == 0 || len(rs) > MaxBatch || !json.Valid(body) || !utf8.Valid(body) {
			t.Fatalf("accepted %d reports of a body that is valid JSON %v, UTF-8 %v", len(rs), json.Valid(body), utf8.Valid(body))
		}
		for i := range rs {
			r := &rs[i]
			id, ok := parseID(r.LabelID)
			if !ok || !opts.Label(id) || r.Time.Before(t0.Add(-DefaultRetention)) || r.Time.After(t0.Add(DefaultMaxAhead)) ||
				len(r.DeviceID) == 0 || len(r.DeviceID) > 128 || len(r.InstanceID) == 0 || len(r.InstanceID) > 512 {
				t.Fatalf("accepted %+v", r)
			}
			for _, s := range []string{r.DeviceID, r.InstanceID, r.ErrorCode} {
				if checkText("x", []byte(s)) != "" || !utf8.ValidString(s) {
					t.Fatalf("accepted the string %q", s)
				}
			}
			// What is accepted spools as one line that reads back the same.
			if err := spoolable(r); err != nil {
				t.Fatalf("accepted but not spoolable: %v", err)
			}
			line := appendLine(nil, r, t0, mac)
			back, ok := parseSpooled(line)
			if !ok || bytes.Count(line, []byte{'\n'}) != 1 || back.LabelID != r.LabelID || back.Result != r.Result || !back.Time.Equal(r.Time) ||
				back.Build != r.Build || back.CHID != r.CHID || back.DeviceID != Pseudonym(testSecret, r.DeviceID) {
				t.Fatalf("spool line %s reads back as %+v (%v) from %+v", line, back, ok, r)
			}
		}
	})
}

// TestErrorCode: only numbers are error codes, in one canonical form each.
func TestErrorCode(t *testing.T) {
	for in, want := range map[string]string{
		"0x80070002": "0x80070002", "0X8007000A": "0x8007000a", "0x9F": "0x0000009f", "0x0": "0x00000000",
		"10": "10", "0043": "43", "4294967295": "4294967295",
		"": "", "0x": "", "0x123456789": "", "0x+1": "", "0x_1": "", "-1": "", "+1": "", "4294967296": "",
		"12345678901": "", "1e3": "", "0xGG": "", "SN-4711": "", "0x8007\u00a0": "", " 10": "",
	} {
		if got := ErrorCode(in); got != want {
			t.Errorf("ErrorCode(%q) = %q, want %q", in, got, want)
		}
		if got := ErrorCode(want); got != want {
			t.Errorf("ErrorCode(%q) = %q: the canonical form is not stable", want, got)
		}
	}
}

// TestSpooledErrorCodeRead: a line's errorCode is read back canonical; a free-form one
// (lines edges wrote before pseudonyms) is dropped, the line kept.
func TestSpooledErrorCodeRead(t *testing.T) {
	base := `{"device":"d5eb8bfb3b5aa39d0b1f6b79ef426502","labelId":"7","result":"failed","time":"2026-11-21T12:00:00Z","received":"2026-11-21T12:00:00Z"`
	for line, want := range map[string]string{
		base + `,"errorCode":"0x0000009f"}`:   "0x0000009f",
		base + `,"errorCode":"0X9F"}`:         "0x0000009f",
		base + `,"errorCode":"disk on fire"}`: "",
		base + `}`:                            "",
	} {
		r, ok := parseSpooled([]byte(line))
		if !ok || r.ErrorCode != want {
			t.Errorf("%s: %q, %v; want %q", line, r.ErrorCode, ok, want)
		}
	}
}
