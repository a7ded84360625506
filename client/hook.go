package client

// The install hook: what turns a verified package into an installed driver.
//
// A hook is a command. Get runs it once per offer to install, after the package's size and
// sha256 matched the signed record, as
//
//	COMMAND... PACKAGE
//
// (the package path appended to the command's own arguments; the package is
// STATE/packages/<sha256><ext>, e.g. a .cab), in the state directory, with the offer's fields
// in its environment besides the PC's own:
//
//	DRIVEWAY_PACKAGE         the package path (as the last argument)
//	DRIVEWAY_SHA256          its sha256 (hex), checked
//	DRIVEWAY_SIZE            its size in bytes, checked
//	DRIVEWAY_URL             where it was downloaded from
//	DRIVEWAY_INF             the INF to install (inside the package), e.g. e1d.inf
//	DRIVEWAY_CLASS           its device setup class, e.g. Net
//	DRIVEWAY_DRIVER_DATE     the driver's date (YYYY-MM-DD)
//	DRIVEWAY_DRIVER_VERSION  the driver's version (a.b.c.d)
//	DRIVEWAY_KIND            automatic, extension or rollback (or what GetOptions.Kinds allows)
//	DRIVEWAY_INSTANCE_ID     the device instance the offer is for
//	DRIVEWAY_HARDWARE_ID     the device's ID the offer matched
//	DRIVEWAY_LABEL_ID, DRIVEWAY_PRODUCT_ID, DRIVEWAY_SUBMISSION_ID   the label's ids
//	DRIVEWAY_CATALOG, DRIVEWAY_RELEASE   the verified release's catalog and sequence
//
// Every value was checked against the signed release (the INF, date and version are the
// record's). The hook's exit status is the outcome: one of Hook.OK (default 0) is
// "installed", anything else "failed" (reported with errorCode "exit N"); a hook that cannot
// be started, or outlives Hook.Timeout, fails without a report.
//
// With Hook.PnPUtil (the default of `driveway client get` on Windows) the hook is Windows'
// own: the .cab is extracted with %SystemRoot%\System32\expand.exe -F:* PACKAGE DIR into
// STATE\extract\<sha256>\, then `pnputil.exe /add-driver DIR\INF /subdirs /install` adds the
// offer's INF to the driver store and installs it on matching devices; exit 0 and 3010
// (ERROR_SUCCESS_REBOOT_REQUIRED) are "installed".

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// ErrHook marks an install hook that failed (or could not run).
var ErrHook = errors.New("client: install hook failed")

// rebootRequired is Windows' ERROR_SUCCESS_REBOOT_REQUIRED, pnputil's "installed, restart".
const rebootRequired = 3010

// DefaultHookTimeout bounds one hook run when Hook.Timeout is 0.
const DefaultHookTimeout = 30 * time.Minute

// Hook is how Get installs a verified package. See the comment at the top of the file.
type Hook struct {
	Command []string      // program and its arguments; the package path is appended
	PnPUtil bool          // instead of Command: expand.exe and pnputil.exe (Windows)
	OK      []int         // exit statuses meaning installed; nil: 0 (PnPUtil: 0 and 3010)
	Timeout time.Duration // 0: DefaultHookTimeout
	// Stdout and Stderr receive the hook's output; nil: discarded.
	Stdout, Stderr io.Writer
}

// run installs pkg for offer o. It returns the exit status of the (last) command run, nil
// when none ran to an exit, and an ErrHook error unless the status is one of OK.
func (h *Hook) run(ctx context.Context, state, pkg string, o *Offer, catalog string, seq uint64) (*int, error) {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok := h.OK
	var steps [][]string
	switch {
	case h.PnPUtil:
		dir := filepath.Join(state, "extract", o.SHA256)
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrHook, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrHook, err)
		}
		steps = PnPUtilSteps(os.Getenv("SystemRoot"), pkg, dir, o.INF)
		if ok == nil {
			ok = []int{0, rebootRequired}
		}
	case len(h.Command) > 0:
		steps = [][]string{append(slices.Clip(h.Command), pkg)}
	default:
		return nil, fmt.Errorf("%w: no command", ErrHook)
	}
	if ok == nil {
		ok = []int{0}
	}
	env := append(os.Environ(), hookEnv(pkg, o, catalog, seq)...)
	var code *int
	for i, argv := range steps {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = state, env, h.Stdout, h.Stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%w: %s: still running after %s: stopped", ErrHook, argv[0], timeout)
		case errors.As(err, &ee):
			c := ee.ExitCode()
			code = &c
		case err != nil:
			return nil, fmt.Errorf("%w: %s: %v", ErrHook, argv[0], err)
		default:
			c := 0
			code = &c
		}
		last := i == len(steps)-1
		if (last && !slices.Contains(ok, *code)) || (!last && *code != 0) {
			return code, fmt.Errorf("%w: %s exited with status %d for %s (label %d, %s)", ErrHook, argv[0], *code, filepath.Base(pkg), o.LabelID, o.INF)
		}
	}
	return code, nil
}

// PnPUtilSteps are the commands of the Windows hook for a .cab package: extract it into
// dir, then add and install the INF from there. systemRoot is %SystemRoot% ("" finds the
// programs in PATH).
func PnPUtilSteps(systemRoot, pkg, dir, inf string) [][]string {
	expand, pnputil := "expand.exe", "pnputil.exe"
	if systemRoot != "" {
		expand = systemRoot + `\System32\expand.exe`
		pnputil = systemRoot + `\System32\pnputil.exe`
	}
	return [][]string{
		{expand, "-F:*", pkg, dir},
		{pnputil, "/add-driver", filepath.Join(dir, inf), "/subdirs", "/install"},
	}
}

// hookEnv is the offer's environment for a hook.
func hookEnv(pkg string, o *Offer, catalog string, seq uint64) []string {
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	return []string{
		"DRIVEWAY_PACKAGE=" + pkg,
		"DRIVEWAY_SHA256=" + o.SHA256,
		"DRIVEWAY_SIZE=" + u(o.Size),
		"DRIVEWAY_URL=" + o.URL,
		"DRIVEWAY_INF=" + o.INF,
		"DRIVEWAY_CLASS=" + o.Class,
		"DRIVEWAY_DRIVER_DATE=" + o.DriverDate,
		"DRIVEWAY_DRIVER_VERSION=" + o.DriverVersion,
		"DRIVEWAY_KIND=" + o.Kind,
		"DRIVEWAY_INSTANCE_ID=" + o.InstanceID,
		"DRIVEWAY_HARDWARE_ID=" + o.HardwareID,
		"DRIVEWAY_LABEL_ID=" + u(o.LabelID),
		"DRIVEWAY_PRODUCT_ID=" + u(o.ProductID),
		"DRIVEWAY_SUBMISSION_ID=" + u(o.SubmissionID),
		"DRIVEWAY_CATALOG=" + catalog,
		"DRIVEWAY_RELEASE=" + u(seq),
	}
}
