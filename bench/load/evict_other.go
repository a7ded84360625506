//go:build !linux

package load

import "os"

// evictPageCache cannot evict f's pages here: the lookups' "cold" pass is then warm, and
// LookupResult.Evicted says so.
func evictPageCache(*os.File) bool { return false }
