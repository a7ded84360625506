package index

// Release directories.
//
// A catalog directory (the build's --out, an edge's cache, an origin's document root):
//
//	manifest                    the newest release's envelope, a copy written last (for HTTP origins)
//	releases/<sequence>.dsse    every kept release's signed manifest; sequence zero-padded to 20 digits
//	shards/<sha256>.shard       shard files, content-addressed and shared between releases
//
// Publishing is atomic: every file is written as a temporary file, fsynced and renamed, shards
// first, the release's envelope after them, the top-level manifest last, so a reader never sees
// a release whose shards are missing, and a writer killed at any moment leaves the previous
// release intact. The newest release of a directory is the highest sequence under releases/.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/signing"
)

// Names in a catalog directory.
const (
	ManifestFile = "manifest"
	ReleasesDir  = "releases"
	ShardsDir    = "shards"
	envelopeExt  = ".dsse"
)

// ReleasePath is the path of a release's envelope in dir.
func ReleasePath(dir string, seq uint64) string {
	return filepath.Join(dir, ReleasesDir, fmt.Sprintf("%020d%s", seq, envelopeExt))
}

// ShardFile streams one shard into a temporary file of dir/shards, hashing it as it goes;
// Commit gives it its content address.
type ShardFile struct {
	dir  string
	tmp  *os.File
	sum  hash.Hash
	w    *Writer
	kind string
	num  int
}

type hashingWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw hashingWriter) Write(p []byte) (int, error) {
	hw.h.Write(p)
	return hw.w.Write(p)
}

// CreateShard starts a shard file in dir/shards.
func CreateShard(dir string, opts *WriterOptions) (*ShardFile, error) {
	sd := filepath.Join(dir, ShardsDir)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	tmp, err := os.CreateTemp(sd, ".tmp-shard-*")
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	sf := &ShardFile{dir: dir, tmp: tmp, sum: sha256.New(), kind: opts.Kind, num: opts.Shard}
	sf.w = NewWriter(hashingWriter{tmp, sf.sum}, opts)
	return sf, nil
}

// Add adds a record (keys strictly increasing).
func (sf *ShardFile) Add(key, value []byte) error { return sf.w.Add(key, value) }

// Commit finishes the shard: it is flushed, fsynced and renamed to <sha256>.shard, unless a
// file of that name exists already, in which case the existing one is kept and reused is true.
func (sf *ShardFile) Commit() (ref ShardRef, reused bool, err error) {
	defer func() {
		if err != nil {
			sf.Abort()
		}
	}()
	if err := sf.w.Close(); err != nil {
		return ShardRef{}, false, err
	}
	st := sf.w.Stats()
	sum := hex.EncodeToString(sf.sum.Sum(nil))
	ref = ShardRef{Name: sum + ".shard", Kind: sf.kind, Shard: sf.num, Size: st.FileBytes, SHA256: sum, Keys: int(st.Keys), Blocks: int(st.Blocks)}
	final := filepath.Join(sf.dir, ShardsDir, ref.Name)
	if fi, err := os.Stat(final); err == nil && fi.Size() == st.FileBytes {
		sf.Abort()
		return ref, true, nil
	}
	if err := sf.tmp.Sync(); err != nil {
		return ShardRef{}, false, fmt.Errorf("index: %w", err)
	}
	if err := sf.tmp.Close(); err != nil {
		return ShardRef{}, false, fmt.Errorf("index: %w", err)
	}
	// Readable by all like the envelopes: an origin's web server serves these files.
	if err := os.Chmod(sf.tmp.Name(), 0o644); err != nil {
		return ShardRef{}, false, fmt.Errorf("index: %w", err)
	}
	if err := os.Rename(sf.tmp.Name(), final); err != nil {
		return ShardRef{}, false, fmt.Errorf("index: %w", err)
	}
	sf.tmp = nil
	return ref, false, nil
}

// Abort discards an uncommitted shard file.
func (sf *ShardFile) Abort() {
	if sf.tmp != nil {
		sf.tmp.Close()
		os.Remove(sf.tmp.Name())
		sf.tmp = nil
	}
}

// Publish signs a manifest and makes it the newest release of dir: its envelope is written to
// releases/, then copied to the top-level manifest file. The shards must be in place already.
// It returns the envelope and the release id ("sha256:" of the envelope).
func Publish(dir string, m *Manifest, signers ...*signing.Signer) (envelope []byte, id string, err error) {
	payload, err := m.Marshal()
	if err != nil {
		return nil, "", fmt.Errorf("index: %w", err)
	}
	if _, err := ParseManifest(payload); err != nil {
		return nil, "", err // never sign what a reader would refuse
	}
	envelope, err = signing.Sign(ManifestType, payload, signers...)
	if err != nil {
		return nil, "", err
	}
	if err := SaveEnvelope(dir, m.Sequence, envelope); err != nil {
		return nil, "", err
	}
	return envelope, ReleaseID(envelope), nil
}

// SaveEnvelope makes a signed envelope the newest release of dir (its shards must be in
// place): releases/<seq>.dsse, then the top-level manifest, each written atomically and
// fsynced. An edge's cache stores what it fetched from an origin with it.
func SaveEnvelope(dir string, seq uint64, envelope []byte) error {
	if err := os.MkdirAll(filepath.Join(dir, ReleasesDir), 0o755); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	// The shards' renames are made durable first; each envelope's write makes its own so.
	if err := atomicfile.SyncDir(filepath.Join(dir, ShardsDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("index: %w", err)
	}
	if err := atomicfile.Write(ReleasePath(dir, seq), envelope, 0o644); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, ManifestFile), envelope, 0o644); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// ReleaseID is the id of a release: "sha256:" and the hex sha256 of its envelope.
func ReleaseID(envelope []byte) string {
	sum := sha256.Sum256(envelope)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Sequences lists the sequences of the releases in dir, ascending.
func Sequences(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(filepath.Join(dir, ReleasesDir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("index: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, envelopeExt) || strings.HasPrefix(name, ".") {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(name, envelopeExt), 10, 64); err == nil {
			seqs = append(seqs, n)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// ErrNoRelease is returned when a directory holds no release.
var ErrNoRelease = errors.New("index: no release")

// Latest returns the newest release's sequence and envelope in dir.
func Latest(dir string) (uint64, []byte, error) {
	seqs, err := Sequences(dir)
	if err != nil {
		return 0, nil, err
	}
	if len(seqs) == 0 {
		return 0, nil, fmt.Errorf("%w in %s (build one with driveway build --out %s)", ErrNoRelease, dir, dir)
	}
	seq := seqs[len(seqs)-1]
	env, err := os.ReadFile(ReleasePath(dir, seq))
	if err != nil {
		return 0, nil, fmt.Errorf("index: %w", err)
	}
	return seq, env, nil
}

// Prune keeps the newest keep releases of dir and removes older envelopes, then every shard
// no kept release names. An envelope that cannot be read keeps its shards (nothing is removed
// on doubt). It returns the removed file names.
func Prune(dir string, keep int) ([]string, error) {
	seqs, err := Sequences(dir)
	if err != nil || keep < 1 || len(seqs) == 0 {
		return nil, err
	}
	var removed []string
	if len(seqs) > keep {
		for _, seq := range seqs[:len(seqs)-keep] {
			p := ReleasePath(dir, seq)
			if err := os.Remove(p); err != nil {
				return removed, fmt.Errorf("index: %w", err)
			}
			removed = append(removed, filepath.Join(ReleasesDir, filepath.Base(p)))
		}
		seqs = seqs[len(seqs)-keep:]
	}
	used := map[string]bool{}
	for _, seq := range seqs {
		env, err := os.ReadFile(ReleasePath(dir, seq))
		if err != nil {
			return removed, fmt.Errorf("index: %w", err)
		}
		payload, err := signing.Payload(env, ManifestType)
		if err != nil {
			return removed, fmt.Errorf("index: release %d: %w", seq, err)
		}
		m, err := ParseManifest(payload)
		if err != nil {
			return removed, fmt.Errorf("index: release %d: %w", seq, err)
		}
		for _, s := range m.Shards {
			used[s.Name] = true
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, ShardsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return removed, fmt.Errorf("index: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		stale := strings.HasPrefix(name, ".tmp-shard-") // left by a killed build
		if (shardName.MatchString(name) && !used[name]) || stale {
			if err := os.Remove(filepath.Join(dir, ShardsDir, name)); err != nil {
				return removed, fmt.Errorf("index: %w", err)
			}
			removed = append(removed, filepath.Join(ShardsDir, name))
		}
	}
	return removed, nil
}

// VerifyOptions configure verification. Keys are required.
type VerifyOptions struct {
	Keys         []*signing.Verifier
	Threshold    int           // distinct keys that must have signed; 0 means 1
	Now          time.Time     // the time to verify at (expiry); required unless IgnoreExpiry: the index never reads the clock
	IgnoreExpiry bool          // archives: an expired release still verifies (the bounds on time are not checked either)
	Grace        time.Duration // accept a release up to this long after its expiry (an edge's --stale-ok)
	Skew         time.Duration // how far in the future a release's creation may be; 0: DefaultSkew
	MaxValidity  time.Duration // the longest a release may be valid (expires - created); 0: DefaultMaxValidity
	After        uint64        // refuse a sequence at or below this (anti-rollback); 0: no floor
	Sequence     uint64        // the sequence the release must carry (its file name, or the timestamp's); 0: any
	Shallow      bool          // skip the structural walk of every shard (Check)
	Unverified   bool          // do not check the signature (inspect, what-if offers); never for serving
	Cache        *CacheBudget
	Decoder      *zstd.Decoder
}

// Bounds on a release's times.
const (
	// DefaultSkew is how far a release's creation may lie ahead of the verifier's clock:
	// clocks disagree by seconds, not by years.
	DefaultSkew = 5 * time.Minute
	// DefaultMaxValidity is the longest a release may be valid. A release signed for years
	// is one whose expiry protects nothing: a stolen or replayed copy stays good.
	DefaultMaxValidity = 30 * 24 * time.Hour
)

// Step is one check of a verification, for reports: its name (signature, manifest, expiry,
// sequence, release-file, shard), what was checked, the file it read ("" for the envelope
// in hand), and its error.
type Step struct {
	What string
	Err  error
	Name string
	File string
}

// VerifyEnvelope checks a release's envelope alone: the signature over keys, the manifest's
// format, expiry and sequence. It is a pure function of the bytes, the keys and the options.
func VerifyEnvelope(envelope []byte, opts *VerifyOptions, step func(Step)) (*Manifest, error) {
	threshold := opts.Threshold
	if threshold < 1 {
		threshold = 1
	}
	var payload []byte
	var err error
	if opts.Unverified {
		payload, err = signing.Payload(envelope, ManifestType)
		step(Step{What: "signature: NOT checked (no key given)", Err: err, Name: "signature"})
	} else {
		payload, err = signing.Open(envelope, ManifestType, threshold, opts.Keys...)
		step(Step{What: fmt.Sprintf("signature: %d of %d keys required", threshold, len(opts.Keys)), Err: err, Name: "signature"})
	}
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(payload)
	step(Step{What: "manifest: format and shard list", Err: err, Name: "manifest"})
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() && !opts.IgnoreExpiry {
		err := errors.New("index: VerifyOptions.Now is zero; pass the time to verify at (the caller's clock), or IgnoreExpiry")
		step(Step{What: "expiry: no time to check it at", Err: err, Name: "expiry"})
		return m, err
	}
	var expErr error
	if !opts.IgnoreExpiry {
		expErr = checkTimes(m, now, opts)
	}
	step(Step{What: fmt.Sprintf("expiry: created %s, expires %s", m.Created.UTC().Format(time.RFC3339), m.Expires.UTC().Format(time.RFC3339)), Err: expErr, Name: "expiry"})
	if expErr != nil {
		return m, expErr
	}
	var seqErr error
	switch {
	case opts.Sequence > 0 && m.Sequence != opts.Sequence:
		seqErr = fmt.Errorf("index: the envelope holds release %d where release %d was expected (a file renamed or copied over another)", m.Sequence, opts.Sequence)
	case opts.After > 0 && m.Sequence <= opts.After:
		seqErr = fmt.Errorf("index: release sequence %d is not newer than %d (rollback refused)", m.Sequence, opts.After)
	}
	step(Step{What: fmt.Sprintf("sequence: %d", m.Sequence), Err: seqErr, Name: "sequence"})
	return m, seqErr
}

// Errors of the bounds on time (VerifyEnvelope's expiry step).
var (
	ErrExpired    = errors.New("index: expired")
	ErrTimeBounds = errors.New("index: outside the bounds on time")
)

// checkTimes applies the bounds on time: not expired at now (beyond Grace), not created in
// the future (beyond Skew), not valid for longer than MaxValidity.
func checkTimes(m *Manifest, now time.Time, opts *VerifyOptions) error {
	skew, maxValid := opts.Skew, opts.MaxValidity
	if skew <= 0 {
		skew = DefaultSkew
	}
	if maxValid <= 0 {
		maxValid = DefaultMaxValidity
	}
	switch {
	case now.After(m.Expires.Add(opts.Grace)):
		return fmt.Errorf("%w: release %d expired at %s (now %s); publish a new one, or pass --ignore-expiry for an archive", ErrExpired,
			m.Sequence, m.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case m.Created.After(now.Add(skew)):
		return fmt.Errorf("%w: release %d was created at %s, in the future (now %s, %s of clock skew allowed): a wrong clock where it was built, or a forgery",
			ErrTimeBounds, m.Sequence, m.Created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), skew)
	case m.Expires.Sub(m.Created) > maxValid:
		return fmt.Errorf("%w: release %d is valid for %s (created %s, expires %s), longer than the %s allowed",
			ErrTimeBounds, m.Sequence, m.Expires.Sub(m.Created), m.Created.UTC().Format(time.RFC3339), m.Expires.UTC().Format(time.RFC3339), maxValid)
	}
	return nil
}

// Verify checks the newest release of dir as `driveway verify` reports it: the envelope
// (VerifyEnvelope), then every shard's size and sha256, then, unless Shallow, the structure of
// every shard (a full walk: offsets, blocks, keys, routing). It reports every step through
// step and goes on after a failing shard, so one run names every fault; it returns the first
// error.
func Verify(dir string, opts *VerifyOptions, step func(Step)) (*Manifest, error) {
	var first error
	record := func(s Step) {
		if s.Err != nil && first == nil {
			first = s.Err
		}
		step(s)
	}
	seq, env, err := Latest(dir)
	if err != nil {
		record(Step{What: fmt.Sprintf("release: %s", filepath.Join(dir, ReleasesDir)), Err: err, Name: "release-file", File: filepath.Join(dir, ReleasesDir)})
		return nil, err
	}
	record(Step{What: fmt.Sprintf("release: %s", ReleasePath(dir, seq)), Err: err, Name: "release-file", File: ReleasePath(dir, seq)})
	if err != nil {
		return nil, err
	}
	relFile := ReleasePath(dir, seq)
	o := *opts
	if o.Sequence == 0 {
		o.Sequence = seq // the file's name and the sequence inside it must agree
	}
	m, _ := VerifyEnvelope(env, &o, func(s Step) {
		s.File = relFile
		record(s)
	})
	if m == nil {
		return nil, first // signature or manifest unreadable: nothing to check the shards against
	}
	// After an expiry or sequence failure the shards are still worth checking.
	for _, ref := range m.Shards {
		what := fmt.Sprintf("shard %s %d: %s (size, sha256, structure)", ref.Kind, ref.Shard, ref.Name)
		if opts.Shallow {
			what = fmt.Sprintf("shard %s %d: %s (size, sha256)", ref.Kind, ref.Shard, ref.Name)
		}
		sh, err := OpenVerifiedShard(dir, ref, opts)
		if sh != nil {
			sh.Close()
		}
		record(Step{What: what, Err: err, Name: "shard", File: filepath.Join(dir, ShardsDir, ref.Name)})
	}
	return m, first
}

// OpenVerifiedShard opens one shard of a release in dir after checking its size and sha256
// against the manifest's entry, and, unless opts.Shallow, its structure.
func OpenVerifiedShard(dir string, ref ShardRef, opts *VerifyOptions) (*Shard, error) {
	sh, err := openVerified(dir, ref, opts)
	if err == nil {
		err = sh.checkKind(ref)
	}
	if err == nil && !opts.Shallow {
		err = sh.Check()
	}
	if err != nil && sh != nil {
		sh.Close()
		return nil, err
	}
	return sh, err
}

// openVerified opens one shard of a release after checking its size and sha256.
func openVerified(dir string, ref ShardRef, opts *VerifyOptions) (*Shard, error) {
	path := filepath.Join(dir, ShardsDir, ref.Name)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("index: shard %s: %w", ref.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("index: shard %s: %w", ref.Name, err)
	}
	if n != ref.Size {
		return nil, fmt.Errorf("index: shard %s is %d bytes, the manifest says %d: %w", ref.Name, n, ref.Size, ErrCorrupt)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.SHA256 {
		return nil, fmt.Errorf("index: shard %s has sha256 %s, the manifest says %s: %w", ref.Name, got, ref.SHA256, ErrCorrupt)
	}
	return Open(path, &Options{Decoder: opts.Decoder, Cache: opts.Cache})
}

// checkKind checks that a shard's header agrees with the manifest's entry for it.
func (s *Shard) checkKind(ref ShardRef) error {
	info := s.Info()
	if info.Kind != ref.Kind || info.Shard != ref.Shard || info.Keys != ref.Keys {
		return fmt.Errorf("index: shard %s holds %s shard %d with %d keys, the manifest says %s shard %d with %d: %w",
			ref.Name, info.Kind, info.Shard, info.Keys, ref.Kind, ref.Shard, ref.Keys, ErrCorrupt)
	}
	return nil
}

// Release is an opened, verified release: its manifest and its mapped shards.
type Release struct {
	Manifest *Manifest
	ID       string // "sha256:…" of the envelope
	Envelope []byte
	HWID     []*Shard // by shard number
	Label    []*Shard
}

// OpenRelease opens the newest release of dir and verifies it exactly as Verify does, stopping
// at the first failure. Close releases the mappings.
func OpenRelease(dir string, opts *VerifyOptions) (*Release, error) {
	_, env, err := Latest(dir)
	if err != nil {
		return nil, err
	}
	return OpenEnvelope(dir, env, opts)
}

// OpenEnvelope is OpenRelease for a given envelope whose shards are in dir/shards.
func OpenEnvelope(dir string, envelope []byte, opts *VerifyOptions) (*Release, error) {
	m, err := VerifyEnvelope(envelope, opts, func(Step) {})
	if err != nil {
		return nil, err
	}
	r := &Release{Manifest: m, ID: ReleaseID(envelope), Envelope: envelope,
		HWID: make([]*Shard, m.Routing.HWIDShards), Label: make([]*Shard, m.Routing.LabelShards)}
	for _, ref := range m.Shards {
		sh, err := OpenVerifiedShard(dir, ref, opts)
		if err != nil {
			r.Close()
			return nil, err
		}
		if ref.Kind == KindHWID {
			r.HWID[ref.Shard] = sh
		} else {
			r.Label[ref.Shard] = sh
		}
	}
	return r, nil
}

// Close unmaps every shard. Values read from the release must not be used afterwards.
func (r *Release) Close() error {
	var first error
	for _, list := range [][]*Shard{r.HWID, r.Label} {
		for _, sh := range list {
			if sh != nil {
				if err := sh.Close(); err != nil && first == nil {
					first = err
				}
			}
		}
	}
	return first
}
