package check

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// panickyHost is the healthy fake world with a bug: a ping to one address
// panics, as does every look at a host link (the diagnoser's probe).
type panickyHost struct {
	*world
	pingPanics netip.Addr
}

func (h panickyHost) Ping(ctx context.Context, to netip.Addr, timeout time.Duration) error {
	if to == h.pingPanics {
		var m map[string]int
		m["boom"]++ // a real bug: assignment to entry in nil map
	}
	return h.world.Ping(ctx, to, timeout)
}

func (h panickyHost) Link(name string) (Link, error) { panic("link probe exploded") }

// A panic in a check's goroutine, or in a probe that diagnoses a failure,
// fails that check with an internal error; the process does not crash and
// the other checks still run and pass.
func TestProbePanicFailsTheCheck(t *testing.T) {
	w := healthyWorld()
	target := capstoneTarget()
	host := panickyHost{world: w, pingPanics: target.NICs[1].Address}
	w.pings[target.NICs[0].Address] = ErrNoAnswer // a plain failure: diagnosis probes host links, which panic
	results := Run(context.Background(), host, w, target, CapstoneMatrix(target), Options{})
	var panicked, diagnosed, passed int
	for _, r := range results {
		switch {
		case r.Pass:
			passed++
		case strings.Contains(r.Actual, "internal error in check "+r.ID+":") && strings.Contains(r.Actual, "nil map"):
			panicked++
			if r.Cause != CauseUnknown {
				t.Errorf("%s: cause %q, want %q", r.ID, r.Cause, CauseUnknown)
			}
		case r.Cause == CauseUnknown && len(r.Evidence) > 0 && strings.Contains(strings.Join(r.Evidence, " "), "internal error in diagnosing "+r.ID):
			diagnosed++
		}
	}
	if panicked != 1 || diagnosed == 0 || passed == 0 {
		for _, r := range results {
			t.Logf("%s pass=%v actual=%q cause=%q evidence=%q", r.ID, r.Pass, r.Actual, r.Cause, r.Evidence)
		}
		t.Errorf("%d checks failed with the panic, %d with a panicking diagnosis, %d passed; want 1, >0, >0", panicked, diagnosed, passed)
	}
}
