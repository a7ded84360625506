package main

import "fmt"

// cmdClient is the PC's side: scan the machine into an offer request, and get (ask an edge,
// verify, download, install, report).
func cmdClient(e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "scan":
			return cmdClientScan(e, args[1:])
		case "get":
			return cmdClientGet(e, args[1:])
		}
	}
	if len(args) > 0 && args[0] != "--help" && args[0] != "-h" {
		return e.usageError("client", fmt.Sprintf("unknown client command %q", args[0]))
	}
	fmt.Fprint(e.stdout, `Usage: driveway client scan|get [flags]

Client is what runs on a PC:

  scan  print this machine's devices, OS and CHIDs as an offer request (JSON)
  get   ask an edge for offers, verify each against the signed release, download the
        package, check its size and sha256, install it with a hook and report the outcome

Run 'driveway client scan --help' or 'get --help' for the flags.
`)
	if len(args) == 0 {
		return exitUsage
	}
	return exitOK
}
