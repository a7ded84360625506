// Package testclock gives driveway's tests their "now": one fixed instant that every test
// which builds, verifies, serves or measures passes to the code through its clock options
// (build.Options.Now, index.VerifyOptions.Now, serve.Config.Clock, rollout's Clock, the
// CLI's clock), so that no test outcome depends on the calendar date it runs on.
//
// CI proves it: it runs the tests a second time with DRIVEWAY_TEST_YEARS=10 and a third time
// with DRIVEWAY_TEST_YEARS=-10, which move this instant ten years ahead and back. A test that
// still reads the wall clock somewhere (directly or through a default of the code) sees its
// releases expire, or be created in the future, and fails.
//
// Only tests import this package.
package testclock

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Base is the tests' instant before any shift: the day the example catalog describes.
var base = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// YearsVar names the environment variable that shifts Now by whole years.
const YearsVar = "DRIVEWAY_TEST_YEARS"

// Now returns the tests' instant: 2026-11-21T12:00:00Z moved by DRIVEWAY_TEST_YEARS years.
// A malformed value panics, so a CI typo cannot quietly run the unshifted tests.
func Now() time.Time {
	return base.AddDate(Years(), 0, 0)
}

// Years is the shift DRIVEWAY_TEST_YEARS asks for (0 when unset).
func Years() int {
	s := os.Getenv(YearsVar)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < -100 || n > 100 {
		panic(fmt.Sprintf("testclock: %s=%q is not a whole number of years in [-100, 100]", YearsVar, s))
	}
	return n
}

// Shift moves a fixture's absolute time by the same shift as Now, for tests whose inputs
// (a label's go-live date, a report's time) must keep their place relative to Now.
func Shift(t time.Time) time.Time { return t.AddDate(Years(), 0, 0) }

// Running returns a clock that reads Now when Running is called and then advances with the
// machine's monotonic clock: for code that needs time to pass (a spool rotating its files
// by age, an edge polling) without ever seeing the calendar date.
func Running() func() time.Time {
	start, at := time.Now(), Now()
	return func() time.Time { return at.Add(time.Since(start)) }
}
