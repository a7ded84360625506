//go:build !windows

package scan

// Local scans this machine: on systems other than Windows, the sysfs tree at "/"
// ([ReadSysfs]).
func Local() (*Machine, error) { return ReadSysfs("/") }
