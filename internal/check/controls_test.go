package check

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// dropHost answers pings after pingAfter (or not at all, with noPing), and
// answers a connect to a port in open with a SYN-ACK after openAfter; every
// other connect is dropped: it waits for its time limit or its context,
// as a real one does.
type dropHost struct {
	*world
	pingAfter time.Duration
	noPing    bool
	open      map[uint16]bool
	openAfter time.Duration
}

func (h dropHost) Ping(ctx context.Context, to netip.Addr, timeout time.Duration) error {
	if h.noPing {
		time.Sleep(10 * time.Millisecond)
		return fmt.Errorf("ping %s: %w", to, ErrNoAnswer)
	}
	time.Sleep(h.pingAfter)
	return nil
}

func (h dropHost) Dial(ctx context.Context, to netip.AddrPort, timeout time.Duration) error {
	wait := timeout
	if h.open[to.Port()] {
		wait = h.openAfter
	}
	select {
	case <-time.After(wait):
		if h.open[to.Port()] {
			return nil
		}
		return fmt.Errorf("%w (dial timeout)", ErrNoAnswer)
	case <-ctx.Done():
		return fmt.Errorf("dial tcp %s: %w", to, ctx.Err())
	}
}

// closedRun runs a ping of 192.0.2.10 (the control, unless noControl) and
// connects to its ports 5432 and 5000, which must be closed, with a limit
// of 2s, and returns the closed checks' results.
func closedRun(t *testing.T, h dropHost, noControl bool) []Result {
	t.Helper()
	to := a("192.0.2.10")
	var checks []Check
	if !noControl {
		checks = append(checks, Check{ID: "ping:host->capstone:eth1", Method: MethodPing, From: Place{Kind: OnHost}, Want: WantReply, To: to, NIC: -1})
	}
	for _, p := range []uint16{5432, 5000} {
		checks = append(checks, Check{ID: fmt.Sprintf("tcp:host->capstone:eth1:%d", p), Method: MethodTCP, From: Place{Kind: OnHost},
			Want: WantClosed, To: to, Port: p, NIC: -1})
	}
	h.world = healthyWorld()
	res := Run(context.Background(), h, noGuest{}, Target{Name: "capstone", Agent: true}, checks, Options{ConnectTimeout: 2 * time.Second})
	return res[len(res)-2:]
}

// A dropped port is judged closed within 5 × the ping's round trip (at
// least 500 ms) once the ping on the same address answered, and says so.
func TestClosedWaitShortAfterControl(t *testing.T) {
	for _, r := range closedRun(t, dropHost{pingAfter: 20 * time.Millisecond}, false) {
		if !r.Pass || r.Duration < closedFloor || r.Duration > 1200*time.Millisecond {
			t.Errorf("%s: pass %v in %s (%s), want closed in 500ms-1.2s", r.ID, r.Pass, r.Duration, r.Actual)
		}
		if !strings.Contains(r.Actual, "; its ping answered)") || !strings.Contains(r.obs.err.Error(), "after ping:host->capstone:eth1 answered in") {
			t.Errorf("%s: actual %q does not name its control", r.ID, r.Actual)
		}
	}
}

// Without a control that answered, a dropped port waits the full limit.
func TestClosedWaitFullWithoutControl(t *testing.T) {
	for name, tc := range map[string]struct {
		h         dropHost
		noControl bool
	}{"no control": {dropHost{}, true}, "control unanswered": {dropHost{noPing: true}, false}} {
		for _, r := range closedRun(t, tc.h, tc.noControl) {
			if !r.Pass || r.Duration < 2*time.Second || r.Actual != "closed (no answer within 2s)" {
				t.Errorf("%s: %s: pass %v in %s (%s), want closed after the full 2s", name, r.ID, r.Pass, r.Duration, r.Actual)
			}
		}
	}
}

// The wait is counted from the control's answer, never before it: a ping
// that takes 300 ms makes the bound 5 × 300 ms after it answered.
func TestClosedWaitNeverBeforeControl(t *testing.T) {
	for _, r := range closedRun(t, dropHost{pingAfter: 300 * time.Millisecond}, false) {
		if !r.Pass || r.Duration < 1800*time.Millisecond || r.Duration >= 2*time.Second {
			t.Errorf("%s: pass %v in %s (%s), want closed after 1.8s (300ms + 5 × 300ms), before 2s", r.ID, r.Pass, r.Duration, r.Actual)
		}
	}
}

// An open port whose SYN-ACK is slower than the ping but within the bound
// is open, never judged closed: the check fails as it must.
func TestClosedWaitOpenPortStaysOpen(t *testing.T) {
	h := dropHost{pingAfter: 5 * time.Millisecond, open: map[uint16]bool{5432: true}, openAfter: 400 * time.Millisecond}
	r := closedRun(t, h, false)[0]
	if r.Pass || r.Actual != "open" {
		t.Errorf("%s: pass %v, %q; want a failure as open", r.ID, r.Pass, r.Actual)
	}
}

func TestClosedWait(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		name        string
		at, rtt     time.Duration // the control's answer after start, its round trip
		limit, want time.Duration
	}{
		{"fast ping: the floor", 10 * time.Millisecond, 10 * time.Millisecond, 2 * time.Second, 510 * time.Millisecond},
		{"slower ping: 5 round trips", 0, 200 * time.Millisecond, 2 * time.Second, time.Second},
		{"control after the start: from its answer", 300 * time.Millisecond, 200 * time.Millisecond, 2 * time.Second, 1300 * time.Millisecond},
		{"control before the start: from the start", -time.Second, 10 * time.Millisecond, 2 * time.Second, 500 * time.Millisecond},
		{"never longer than the limit", 0, time.Second, 2 * time.Second, 2 * time.Second},
	} {
		got := closedWait(start, control{rtt: tc.rtt, at: start.Add(tc.at)}, tc.limit)
		if got != tc.want {
			t.Errorf("%s: closedWait = %s, want %s", tc.name, got, tc.want)
		}
	}
}
