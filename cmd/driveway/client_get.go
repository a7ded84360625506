package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/driveway/driveway/client"
	"github.com/driveway/driveway/releaselog"
)

// Exit codes of driveway client get, one per failure class (1 and 2 as every command's).
const (
	exitGetUnreachable = 3  // the edge did not answer 200
	exitGetUnverified  = 4  // the response, or one of its offers, did not verify
	exitGetOld         = 5  // the response is from a release older than one this PC verified
	exitGetDownload    = 6  // a package could not be downloaded
	exitGetHash        = 7  // a package's size or sha256 is not the signed record's
	exitGetHook        = 8  // the install hook failed
	exitGetReport      = 9  // the edge refused the install reports
	exitGetLog         = 10 // the release is not in the transparency log, or the log forked or went back
)

// getExit is the exit code and class name of a client.Get error.
func getExit(err error) (int, string) {
	switch {
	case err == nil:
		return exitOK, ""
	case errors.Is(err, client.ErrUnreachable):
		return exitGetUnreachable, "unreachable"
	case errors.Is(err, client.ErrLog):
		return exitGetLog, "log"
	case errors.Is(err, client.ErrOld):
		return exitGetOld, "old"
	case errors.Is(err, client.ErrUnverified):
		return exitGetUnverified, "unverified"
	case errors.Is(err, client.ErrHash):
		return exitGetHash, "hash"
	case errors.Is(err, client.ErrDownload):
		return exitGetDownload, "download"
	case errors.Is(err, client.ErrHook):
		return exitGetHook, "hook"
	case errors.Is(err, client.ErrReport):
		return exitGetReport, "report"
	}
	return exitFailure, "failure"
}

const clientGetUsage = "--edge URL --key PREFIX.pub --request FILE --state DIR [--install-hook CMD | --no-install] [--json] [--now RFC3339]"

func cmdClientGet(e *env, args []string) int {
	fs := e.newFlags("client get", clientGetUsage, `
Get asks an edge for this PC's offers and acts only on what it can verify with the release
public key: it posts the request (--request, e.g. what 'driveway client scan' printed) to
EDGE/v1/offers, checks the release statement in the answer (signed by --key, unexpired, of
the catalog this PC belongs to, not older than the newest release this PC verified) and
every offer's inclusion proof and fields against it. A response any part of which fails is
refused as a whole and nothing is downloaded. The newest verified release sequence is kept
in --state DIR (state.json, written atomically) and never goes back.

For each offer of a kind to install (--kind; default automatic, extension, rollback), the
package is downloaded into DIR/downloads (an interrupted download resumes with an HTTP
Range request), its size and sha256 are checked against the signed record, and only then
is it moved to DIR/packages and handed to the install hook: --install-hook CMD runs CMD
(split at spaces, no shell) with the package path appended and the offer's fields in
DRIVEWAY_* environment variables (docs/client.md lists them); its exit status 0 means
installed. On Windows the default hook extracts the .cab with expand.exe and runs
'pnputil /add-driver DIR\INF /subdirs /install' (0 and 3010 mean installed); elsewhere
give --install-hook or --no-install (download and check only). Each hook's outcome is then
reported to EDGE/v1/reports with the offer's reportToken (the edge must take reports:
serve --spool and --report-secret-file).

With --log (the catalog's transparency log: its URL, e.g. https://origin/catalog/log, or a
directory) and --log-key (the log's public key), each verified release must also be an entry
of the log at a checkpoint signed by that key, and the checkpoint must extend the newest one
this PC checked (kept in state.json): a release left out of the log, or a log that forks or
goes back (a split view), is refused.

Exit status: 0 every offer done; 1 another failure (the request or state file, a flag);
2 misuse; 3 the edge unreachable or not answering 200; 4 the response not verified (a
bad or missing statement or proof, an offer that differs from its signed record, another
catalog, expired); 5 the response is from a release older than one this PC verified (a
replay); 6 a download failed (run again: it resumes); 7 a package's size or sha256 is not
the signed record's (the file is deleted); 8 the install hook failed; 9 the edge refused the
install reports (when it asked for a retry, they are kept in DIR/reports-pending.json and
sent first by the next run); 10 the release is not in the transparency log, or the log
forked or went back. With several failures, the first one's. --json prints the result
(every offer, what was done with it, the class and exit code) on stdout.`)
	edge := fs.String("edge", "", "the edge's base `URL`, e.g. https://drivers.example.com (required)")
	keys := fs.StringArray("key", nil, "the release public key `FILE` (required; repeat for several)")
	threshold := fs.Int("threshold", 1, "distinct keys that must have signed the release statement")
	catalog := fs.String("catalog", "", "the catalog `NAME` this PC belongs to (default: the one in --state, else the first verified)")
	request := fs.String("request", "", "the offer request `FILE` (JSON; - for stdin) (required)")
	state := fs.String("state", "", "the state `DIR`: the newest verified release, downloads, verified packages (required)")
	hook := fs.String("install-hook", "", "install each verified package with `CMD` (package path appended; DRIVEWAY_* environment)")
	noInstall := fs.Bool("no-install", false, "download and check the packages, install nothing (reports kept from earlier runs are still sent)")
	kinds := fs.StringArray("kind", nil, "an offer `KIND` to install (repeat; default automatic, extension, rollback)")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on each HTTP request, a package download included")
	hookTimeout := fs.Duration("hook-timeout", client.DefaultHookTimeout, "stop an install hook still running after this long")
	logAt := fs.String("log", "", "check each release against the catalog's transparency log at this `URL` or DIR (…/log)")
	logKey := fs.String("log-key", "", "the transparency log's public key `FILE` (with --log)")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	nowFlag := fs.String("now", "", "the PC's `TIME` (RFC 3339) instead of now: statement expiry and report times")
	if code, ok := e.parse(fs, args); !ok {
		return code
	}
	now, err := e.parseNow(*nowFlag)
	if err != nil {
		return e.usageError("client get", err.Error())
	}
	switch {
	case *edge == "" || len(*keys) == 0 || *request == "" || *state == "":
		return e.usageError("client get", "--edge, --key, --request and --state are required")
	case *hook != "" && *noInstall:
		return e.usageError("client get", "--install-hook and --no-install exclude each other")
	case *hook == "" && !*noInstall && runtime.GOOS != "windows":
		return e.usageError("client get", "give --install-hook CMD, or --no-install to download and check only (the pnputil default is Windows')")
	case *timeout <= 0:
		return e.usageError("client get", "--timeout must be positive")
	case (*logAt == "") != (*logKey == ""):
		return e.usageError("client get", "--log and --log-key go together")
	}
	verifiers, err := loadVerifiers(*keys)
	if err != nil {
		return e.fail("client get", err)
	}
	var req []byte
	if *request == "-" {
		req, err = io.ReadAll(io.LimitReader(e.stdin, 16<<20))
	} else {
		req, err = os.ReadFile(*request)
	}
	if err != nil {
		return e.fail("client get", fmt.Errorf("the request: %v", err))
	}
	var logSrc releaselog.Source
	var logVerifier note.Verifier
	if *logAt != "" {
		if logVerifier, err = releaselog.LoadVerifier(*logKey); err != nil {
			return e.fail("client get", err)
		}
		if strings.HasPrefix(*logAt, "http://") || strings.HasPrefix(*logAt, "https://") {
			logSrc = urlSource(strings.TrimSuffix(*logAt, "/"), *timeout)
		} else {
			logSrc = dirOf(*logAt)
		}
	}
	var h *client.Hook
	switch {
	case *noInstall:
	case *hook != "":
		h = &client.Hook{Command: strings.Fields(*hook), Timeout: *hookTimeout, Stdout: e.stderr, Stderr: e.stderr}
	default:
		h = &client.Hook{PnPUtil: true, Timeout: *hookTimeout, Stdout: e.stderr, Stderr: e.stderr}
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	hc := &http.Client{Timeout: *timeout, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: dialer.DialContext,
		TLSHandshakeTimeout: 30 * time.Second, ResponseHeaderTimeout: time.Minute, MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	if len(*kinds) == 0 {
		*kinds = nil
	}
	res, err := client.Get(context.Background(), client.GetOptions{Edge: *edge, Request: req, Keys: verifiers, Threshold: *threshold,
		Catalog: *catalog, State: *state, HTTP: hc, Now: func() time.Time { return now }, Kinds: *kinds, Hook: h, Log: logSrc, LogKey: logVerifier})
	code, class := getExit(err)
	msg := ""
	if err != nil {
		msg = strings.ReplaceAll(oneLine(err.Error()), "client: ", "")
	}
	if *asJSON {
		out := struct {
			*client.GetResult
			ExitCode int    `json:"exitCode"`
			Class    string `json:"class,omitempty"`
			Error    string `json:"error,omitempty"`
		}{res, code, class, msg}
		if res == nil {
			out.GetResult = &client.GetResult{Edge: *edge, Offers: []client.OfferOutcome{}}
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else if res != nil {
		printGet(e.stdout, res)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "driveway client get: %s\n", msg)
	}
	return code
}

// printGet prints what Get did, a line per offer.
func printGet(w io.Writer, r *client.GetResult) {
	if r.Sequence > 0 {
		fmt.Fprintf(w, "release %d of catalog %q verified (newest seen before: %d)\n", r.Sequence, r.Catalog, r.Previous)
		if r.Log != "" {
			fmt.Fprintf(w, "release %d is in the transparency log at checkpoint %s\n", r.Sequence, r.Log)
		}
	}
	for _, o := range r.Offers {
		fmt.Fprintf(w, "%-14s label %s %s %s for %s", o.Action, o.LabelID, o.INF, o.DriverVersion, o.InstanceID)
		if o.Package != "" {
			fmt.Fprintf(w, ": %s", o.Package)
		}
		if o.Resumed > 0 {
			fmt.Fprintf(w, " (resumed at byte %d)", o.Resumed)
		}
		if o.Report != "" {
			fmt.Fprintf(w, "; report %s", o.Report)
		}
		fmt.Fprintln(w)
	}
	if r.Sequence > 0 && len(r.Offers) == 0 {
		fmt.Fprintln(w, "no offers")
	}
	if r.Reports != "" && r.Reports != "accepted" {
		fmt.Fprintf(w, "reports: %s\n", r.Reports)
	}
}
