package main

// cmdClientScan: being built (issue 15, item 3).
func cmdClientScan(e *env, args []string) int {
	return e.usageError("client", "scan is not built yet")
}
