package client

import (
	"errors"
	"testing"
)

// TestStateLock: a second lock on a state directory fails at once with ErrBusy; once the
// first is released, the directory can be locked again.
func TestStateLock(t *testing.T) {
	dir := t.TempDir()
	l, err := lockState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockState(dir); !errors.Is(err, ErrBusy) {
		t.Fatalf("second lock: %v, want ErrBusy", err)
	}
	l.unlock()
	l, err = lockState(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	l.unlock()
}
