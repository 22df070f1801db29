// Package testwait lets tests wait on a condition instead of sleeping: for
// what happens after the call that caused it has returned, such as the
// kernel's RELEASE after close(2), a leader election, or a cache expiring.
package testwait

import (
	"testing"
	"time"
)

// pollEvery is how often For looks again: short next to what tests wait
// for (milliseconds to seconds), long next to what a look costs.
const pollEvery = 10 * time.Millisecond

// For polls cond until it holds, failing the test after timeout with what
// it was waiting for.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(pollEvery):
		}
	}
}
