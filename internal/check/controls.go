package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// A port that must be closed and that the guest's firewall drops sends
// nothing back, so the host's connect can only wait, ConnectTimeout (2s) by
// default. Once a positive check on the same address has answered from
// the host (its ping, a connect to an open port, an HTTP GET that got an
// answer), the wait is bounded by that answer's round trip instead:
// max(closedRTTs × RTT, closedFloor), counted from when both the connect
// had started and the control had answered, and never longer than
// ConnectTimeout. Without such an answer the connect waits the full
// ConnectTimeout, as before.
//
// Why an open port is not judged closed this way: the SYN to an open port
// is answered by the guest's kernel (the SYN-ACK, or a SYN cookie when the
// listen queue is full) in softirq, without waiting for any process to be
// scheduled: the same work, on the same path (host bridge, tap, guest NIC)
// as the echo reply that answered the control's ping; a published port
// adds one forwarding hop over a veth to the container's namespace, also
// in the kernel. The control also resolved the host's neighbour entry for
// the address, so the SYN does not wait for ARP. Its answer therefore comes
// back within about one control round trip; the measured round trip is the
// whole of Host.Ping (or Dial, Get), so it overstates the network's, and
// five of them, at least 500 ms, leave room for a TCG vCPU that the host
// did not schedule for a while. What the bound gives up is the connect's
// own retransmission: a SYN lost on a virtual link right after the
// control got through would have been sent again after 1 s.
const (
	closedRTTs  = 5
	closedFloor = 500 * time.Millisecond
)

// control is the first answer from an address to a positive host check.
type control struct {
	id     string        // the check that got it
	method Method        // and its method
	rtt    time.Duration // how long that check took
	at     time.Time     // when it ended
}

// controls records, by address, the answers the host's positive checks of
// one run got, and tells the closed-port checks waiting for one.
type controls struct {
	mu      sync.Mutex
	by      map[netip.Addr]control
	waiting map[netip.Addr][]*func(control)
}

// newControls is an empty record, for one run.
func newControls() *controls {
	return &controls{by: map[netip.Addr]control{}, waiting: map[netip.Addr][]*func(control){}}
}

// answered records that check id (by method) got an answer from a after
// rtt, and tells
// the connects waiting for one; the first answer counts.
func (cs *controls) answered(a netip.Addr, id string, method Method, rtt time.Duration) {
	cs.mu.Lock()
	if _, ok := cs.by[a]; ok {
		cs.mu.Unlock()
		return
	}
	c := control{id: id, method: method, rtt: rtt, at: time.Now()}
	cs.by[a] = c
	fns := cs.waiting[a]
	delete(cs.waiting, a)
	cs.mu.Unlock()
	for _, fn := range fns {
		(*fn)(c)
	}
}

// watch calls fn once with a's answer: now when there is one, or when it
// comes. stop makes sure fn is not called after it returns (unless it is
// running already).
func (cs *controls) watch(a netip.Addr, fn func(control)) (stop func()) {
	cs.mu.Lock()
	if c, ok := cs.by[a]; ok {
		cs.mu.Unlock()
		fn(c)
		return func() {}
	}
	p := &fn
	cs.waiting[a] = append(cs.waiting[a], p)
	cs.mu.Unlock()
	return func() {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		ws := cs.waiting[a]
		for i := range ws {
			if ws[i] == p {
				cs.waiting[a] = append(ws[:i:i], ws[i+1:]...)
				break
			}
		}
	}
}

// closedWait is how long after start a connect to a port that must be
// closed waits for an answer, given control c: the bound above, or the
// full limit when that is not shorter.
func closedWait(start time.Time, c control, limit time.Duration) time.Duration {
	from := start
	if c.at.After(start) {
		from = c.at
	}
	wait := from.Sub(start) + max(closedRTTs*c.rtt, closedFloor)
	return min(wait, limit)
}

// noteControl records res, a host check that got an answer from its
// address, as that address's control (rtt: how long it took).
func (r *runner) noteControl(res *Result, rtt time.Duration) {
	c, o := res.Check, res.obs
	if c.From.Kind != OnHost || !c.To.IsValid() || o.err != nil {
		return
	}
	switch {
	case c.Method == MethodPing, c.Method == MethodTCP, c.Method == MethodHTTP && o.status > 0:
		r.controls.answered(c.To, c.ID, c.Method, rtt)
	}
}

// dialClosed is the host's connect to a port that must be closed: a
// Host.Dial whose wait for an answer is cut short once a control on the
// same address answered (closedWait). It returns how long it waited when
// nothing answered, the control that cut the wait short (nil when none
// did) and the connect's outcome.
func (r *runner) dialClosed(ctx context.Context, to netip.AddrPort) (time.Duration, *control, error) {
	limit := r.opt.ConnectTimeout
	start := time.Now()
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		judged atomic.Pointer[control]
		timer  atomic.Pointer[time.Timer]
	)
	stop := r.controls.watch(to.Addr(), func(c control) {
		wait := closedWait(start, c, limit)
		if wait >= limit {
			return // no shorter than the connect's own limit
		}
		timer.Store(time.AfterFunc(time.Until(start.Add(wait)), func() { judged.Store(&c); cancel() }))
	})
	err := r.host.Dial(dctx, to, limit)
	stop()
	if t := timer.Load(); t != nil {
		t.Stop()
	}
	// Only the timer cancels dctx while ctx lives: a Dial that ended
	// otherwise (connected, refused, its own timeout) is its own answer.
	if c := judged.Load(); c != nil && err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		waited := time.Since(start)
		return waited, c, fmt.Errorf("%w (nothing within %s, after %s answered in %s)", ErrNoAnswer,
			waited.Round(time.Millisecond), c.id, c.rtt.Round(time.Millisecond))
	}
	return limit, nil, err
}
