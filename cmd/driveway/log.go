package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/driveway/driveway/internal/atomicfile"
	"github.com/driveway/driveway/releaselog"
	"github.com/driveway/driveway/signing"
)

// cmdLog runs driveway log's subcommands.
func cmdLog(e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		w := e.stdout
		if len(args) == 0 {
			w = e.stderr
		}
		fmt.Fprintf(w, `Usage: driveway log verify [flags]

The transparency log of a catalog's releases (DIR/log, written by driveway build --log-key):
every release statement in order, as static tiles and a signed checkpoint.

Commands:
  verify    audit a log from its files: every tile, every entry, consistency with an older checkpoint

Run 'driveway help log verify' for its flags.
`)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "verify":
		return cmdLogVerify(e, args[1:])
	}
	return e.usageError("log", fmt.Sprintf("unknown subcommand %q (want verify)", args[0]))
}

func cmdLogVerify(e *env, args []string) int {
	fs := e.newFlags("log verify", "(--catalog DIR | --log DIR|URL) --key LOG.pub [--release-key PUB …] [--since FILE] [--save FILE] [--json]", `
Verify reads a whole transparency log and recomputes it: the checkpoint is signed by the log
key (--key), every entry tile parses into entries of the checkpoint's catalog in increasing
release sequence, the entries hash to the checkpoint's tree, and every hash tile of that tree
equals the hashes recomputed from the entries. With --release-key, every entry's release
statement must be signed by those keys (give every key that signed a release of the log,
old ones after a rotation too) for that entry's catalog and sequence. With --since, the log
must extend the older checkpoint in FILE (a signed checkpoint, e.g. saved by an earlier run
with --save): the same catalog, no fewer entries, the same first entries. A log that forked
(two histories signed by the log key, a split view), was rolled back, or had an entry
rewritten fails it.

A monitor runs it on a schedule against what the edges are served (the origin's URL):
  driveway log verify --log https://origin/catalog/log --key log.pub --since seen.checkpoint --save seen.checkpoint

Exit status 0 when the log verifies, 1 when it does not.`)
	catalog := fs.String("catalog", "", "the catalog `DIR` whose log (DIR/log) to verify")
	logDir := fs.String("log", "", "the log itself: a `DIR` or an http(s) URL of it (…/log)")
	keyFile := fs.String("key", "", "the log's public key `FILE` (driveway keygen --type log; required)")
	releaseKeys := fs.StringArray("release-key", nil, "a release public key `FILE` to check every entry's statement with (repeat for several)")
	threshold := fs.Int("threshold", 1, "with --release-key: how many distinct keys must have signed each statement")
	since := fs.String("since", "", "an older signed checkpoint `FILE` the log must extend")
	save := fs.String("save", "", "after a successful verify, write the log's checkpoint to `FILE` (for the next --since)")
	timeout := fs.Duration("timeout", 30*time.Second, "with a URL: the bound on each request")
	asJSON := fs.Bool("json", false, "print the result as JSON: ok, the checkpoint, the entries, each check's name, ok and error")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	switch {
	case (*catalog == "") == (*logDir == ""):
		return e.usageError("log verify", "give one of --catalog and --log")
	case *keyFile == "":
		return e.usageError("log verify", "--key (the log's public key) is required")
	case *threshold < 1 || (len(*releaseKeys) > 0 && *threshold > len(*releaseKeys)):
		return e.usageError("log verify", fmt.Sprintf("--threshold %d: want 1 to the number of --release-key", *threshold))
	}
	key, err := releaselog.LoadVerifier(*keyFile)
	if err != nil {
		return e.fail("log verify", err)
	}
	var rkeys []*signing.Verifier
	for _, k := range *releaseKeys {
		v, err := signing.LoadVerifier(k)
		if err != nil {
			return e.fail("log verify", err)
		}
		rkeys = append(rkeys, v)
	}
	var old *releaselog.Checkpoint
	if *since != "" {
		b, err := os.ReadFile(*since)
		if err != nil {
			return e.fail("log verify", err)
		}
		cp, err := releaselog.OpenCheckpoint(b, key)
		if err != nil {
			return e.fail("log verify", fmt.Errorf("--since %s: %w", *since, err))
		}
		old = &cp
	}
	where := *logDir
	var src releaselog.Source
	switch {
	case *catalog != "":
		where = filepath.Join(*catalog, releaselog.Dir)
		src = releaselog.DirSource(*catalog)
	case strings.HasPrefix(where, "http://") || strings.HasPrefix(where, "https://"):
		src = urlSource(strings.TrimSuffix(where, "/"), *timeout)
	default:
		src = dirOf(where)
	}

	type check struct {
		Check string `json:"check"`
		OK    bool   `json:"ok"`
		Error string `json:"error,omitempty"`
	}
	type entry struct {
		Index    int    `json:"index"`
		Sequence uint64 `json:"sequence"`
	}
	var checks []check
	add := func(name string, err error) bool {
		c := check{Check: name, OK: err == nil}
		if err != nil {
			c.Error = oneLine(err.Error())
		}
		checks = append(checks, c)
		return err == nil
	}
	l, err := releaselog.Read(src, key)
	var cp *releaselog.Checkpoint
	var entries []entry
	if add("the checkpoint is signed by "+key.Name()+", every entry parses in increasing sequence, and every tile equals the hashes recomputed from the entries", err) {
		cp = &l.Checkpoint
		for i, en := range l.Entries() {
			entries = append(entries, entry{i, en.Sequence})
		}
		if len(rkeys) > 0 {
			add(fmt.Sprintf("every entry's statement is signed by %d of the %s given, for its catalog and sequence", *threshold, count(len(rkeys), "release key")),
				l.CheckStatements(*threshold, rkeys...))
		}
		if old != nil {
			add(fmt.Sprintf("the log extends the checkpoint of %s in %s", entriesN(old.Size), *since), l.Extends(*old))
		}
	}
	ok := true
	for _, c := range checks {
		ok = ok && c.OK
	}
	if ok && *save != "" {
		if err := atomicfile.Write(*save, l.Note, 0o644); err != nil {
			add("save the checkpoint to "+*save, err)
			ok = false
		}
	}
	if *asJSON {
		out := struct {
			OK         bool    `json:"ok"`
			Log        string  `json:"log"`
			Catalog    string  `json:"catalog,omitempty"`
			Size       int64   `json:"size"`
			Hash       string  `json:"hash,omitempty"`
			Entries    []entry `json:"entries"`
			Statements bool    `json:"statementsChecked"`
			Checks     []check `json:"checks"`
		}{OK: ok, Log: where, Entries: entries, Statements: len(rkeys) > 0, Checks: checks}
		if out.Entries == nil {
			out.Entries = []entry{}
		}
		if cp != nil {
			out.Catalog, out.Size, out.Hash = cp.Catalog, cp.Size, cp.Hash.String()
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		for _, c := range checks {
			if c.OK {
				fmt.Fprintf(e.stdout, "ok    %s\n", c.Check)
			} else {
				fmt.Fprintf(e.stdout, "FAIL  %s: %s\n", c.Check, c.Error)
			}
		}
		if len(rkeys) == 0 && cp != nil {
			fmt.Fprintf(e.stdout, "note  the statements' signatures were not checked: give --release-key\n")
		}
	}
	if !ok {
		fmt.Fprintf(e.stderr, "driveway log verify: the log at %s does not verify\n", where)
		return exitFailure
	}
	if !*asJSON {
		last := uint64(0)
		if n := len(entries); n > 0 {
			last = entries[n-1].Sequence
		}
		fmt.Fprintf(e.stderr, "the log of %s verifies: %s, the newest release %d; checkpoint %s\n", cp.Catalog, entriesN(cp.Size), last, cp.Hash)
	}
	return exitOK
}

// dirOf reads a log directory given by its own path.
func dirOf(dir string) releaselog.Source {
	return func(name string, limit int64) ([]byte, error) {
		b, err := readLimited(filepath.Join(dir, filepath.FromSlash(name)), limit)
		return b, err
	}
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is more than %d bytes", path, limit)
	}
	return b, nil
}

// urlSource reads a log from an HTTP server: base is the log's URL (…/log).
func urlSource(base string, timeout time.Duration) releaselog.Source {
	client := &http.Client{Timeout: timeout}
	return func(name string, limit int64) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+name, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotFound:
			return nil, fmt.Errorf("GET %s: %s: %w", req.URL, resp.Status, fs.ErrNotExist)
		default:
			return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", req.URL, err)
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("GET %s: more than %d bytes", req.URL, limit)
		}
		return b, nil
	}
}

// loadLogKey loads a private log key, or returns nil for "".
func loadLogKey(path string) (*releaselog.Key, error) {
	if path == "" {
		return nil, nil
	}
	k, err := releaselog.LoadKey(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--log-key: %w (write one with driveway keygen --type log)", err)
		}
		return nil, err
	}
	return k, nil
}

// entriesN is "1 entry", "3 entries".
func entriesN(n int64) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}
