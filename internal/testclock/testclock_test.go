package testclock

import (
	"testing"
	"time"
)

func TestShift(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want time.Time
	}{
		{"", time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)},
		{"10", time.Date(2036, 11, 21, 12, 0, 0, 0, time.UTC)},
		{"-10", time.Date(2016, 11, 21, 12, 0, 0, 0, time.UTC)},
	} {
		t.Setenv(YearsVar, tc.env)
		if got := Now(); !got.Equal(tc.want) {
			t.Errorf("%s=%q: Now %v, want %v", YearsVar, tc.env, got, tc.want)
		}
		if got, want := Shift(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)), tc.want.AddDate(0, -10, -19).Add(-12*time.Hour); !got.Equal(want) {
			t.Errorf("%s=%q: Shift %v, want %v", YearsVar, tc.env, got, want)
		}
	}
	for _, bad := range []string{"ten", "1.5", "1000"} {
		t.Setenv(YearsVar, bad)
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s=%q: no panic", YearsVar, bad)
				}
			}()
			Now()
		}()
	}
}

func TestRunning(t *testing.T) {
	t.Setenv(YearsVar, "")
	clock := Running()
	a := clock()
	b := clock()
	if a.Before(Now()) || b.Before(a) || a.Sub(Now()) > time.Hour {
		t.Errorf("Running: %v then %v; want from %v on, never back", a, b, Now())
	}
}
