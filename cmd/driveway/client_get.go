package main

// cmdClientGet: being built (issue 15, item 3).
func cmdClientGet(e *env, args []string) int {
	return e.usageError("client", "get is not built yet")
}
