package main

// cmdLog: being built (issue 15, item 2).
func cmdLog(e *env, args []string) int {
	return e.usageError("log", "log is not built yet")
}
