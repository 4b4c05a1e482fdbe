package check

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"vmnet/internal/lab"
)

// l3Lab is one VM with an ipvlan l3 container on its br0 NIC (static
// 192.0.2.10), running as Describe would see it.
func l3Lab(t *testing.T) (lab.Lab, map[string]Target) {
	t.Helper()
	l := parseLab(t, `name: l3
networks:
  br0: {kind: bridge, address: 192.0.2.1/24}
nodes:
  vm:
    image: capstone
    nics: [{net: br0, address: 192.0.2.10/24}]
    containers:
      routed: {network: ipvlan, mode: l3, parent: br0, address: 192.0.2.70/24, listen: 80}
`)
	tg := fileTarget(l, "vm")
	tg.Agent = true
	tg.NICs[0].MAC = "52:54:00:52:f8:6d"
	return l, map[string]Target{"vm": tg}
}

// TestIPvlanL3Semantics: an l3 child is reached from the host (ping, its
// listen port) under mode ipvlan l3, never from its parent (expected
// blocked, mode ipvlan, the host's ping its control), and the host has no
// neighbour entry for it; no check expects the parent's MAC (l2's).
func TestIPvlanL3Semantics(t *testing.T) {
	l, targets := l3Lab(t)
	runs := LabMatrix(l, targets)
	checkLabIDs(t, runs)
	for _, w := range []struct {
		id, mode string
		want     Want
		requires []string
	}{
		{"ping:host->vm/routed", ModeIPvlanL3, WantReply, nil},
		{"tcp:host->vm/routed:80", ModeIPvlanL3, WantOpen, nil},
		{"ping:vm->vm/routed", lab.ModeIPvlan, WantNoReply, []string{"ping:host->vm/routed"}},
		{"neigh:host->vm/routed", ModeIPvlanL3, WantNoNeigh, nil},
	} {
		c, _, ok := find(runs, w.id)
		if !ok || c.Mode != w.mode || c.Want != w.want || !slices.Equal(c.Requires, w.requires) || c.Unknown != "" {
			t.Errorf("%s: planned %v, mode %q want %q requires %v unknown %q; want mode %q, %q, %v", w.id, ok, c.Mode, c.Want, c.Requires, c.Unknown, w.mode, w.want, w.requires)
		}
	}
	if c, _, _ := find(runs, "neigh:host->vm/routed"); c.Expect != "no entry (routed via eth0 192.0.2.10)" {
		t.Errorf("neigh expectation %q", c.Expect)
	}
}

// TestIPvlanL3Judgement: no neighbour entry passes, an entry fails as the
// mode not held; a host that does not reach the child fails naming the
// route via the parent, with ipvlan l3's own cause; the parent reaching
// it fails as the mode not held.
func TestIPvlanL3Judgement(t *testing.T) {
	l, targets := l3Lab(t)
	runs := LabMatrix(l, targets)
	neigh, _, _ := find(runs, "neigh:host->vm/routed")
	ping, _, _ := find(runs, "ping:host->vm/routed")
	for _, tc := range []struct {
		c     Check
		host  Host
		pass  bool
		cause Cause
		words string
	}{
		{neigh, neighHost{mac: ""}, true, "", ""},
		{neigh, neighHost{mac: "52:54:00:52:f8:6d"}, false, CauseModeNotHeld, "something answered ARP for it"},
		{neigh, noPingNeigh{}, false, CauseIPvlanL3Route, "route via its parent"},
		{ping, quietHost{}, false, CauseIPvlanL3Route, "ip route get 192.0.2.70"},
	} {
		r := Run(context.Background(), tc.host, exitGuest{0}, targets["vm"], []Check{tc.c}, Options{})[0]
		if r.Pass != tc.pass || (!tc.pass && (r.Cause != tc.cause || !strings.Contains(strings.Join(r.Evidence, " "), tc.words))) {
			t.Errorf("%s via %T %v: pass %v (%s) cause %q evidence %v; want pass %v, %q with %q", tc.c.ID, tc.host, tc.host, r.Pass, r.Actual, r.Cause, r.Evidence, tc.pass, tc.cause, tc.words)
		}
	}
}

// noPingNeigh has a neighbour table but no answer to its pings.
type noPingNeigh struct{ quietHost }

func (noPingNeigh) Neigh(netip.Addr) (string, error) { return "", nil }
