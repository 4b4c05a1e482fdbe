package check

import (
	"net/netip"
	"strings"

	"vmnet/internal/lab"
)

// ModeIPvlanL3 is Check.Mode of the checks whose outcome rests on ipvlan's
// l3 mode: the host reaching the child by its route via the parent, and
// the host having no neighbour entry for it. The parent's own expected
// blocked check keeps lab.ModeIPvlan: l2 and l3 both keep the parent from
// its children.
const ModeIPvlanL3 = "ipvlan l3"

// ipvlanL3Checks: an ipvlan l3 child answers no ARP on its parent's
// network, so the host reaches it (ping, listen port) only by the route
// via the parent NIC's address that lab up adds; the host then has no
// neighbour entry for the child's address (expected: no entry); its parent
// VM does not reach it (expected blocked, the host's ping the control), as
// in l2.
func ipvlanL3Checks(t Target, name string, c lab.Container, a netip.Addr, nic int) []Check {
	out := macvlanChecks(t, name, c, a, nic)
	for i := range out[:len(out)-1] {
		out[i].Mode = ModeIPvlanL3
	}
	out[len(out)-1].Mode = lab.ModeIPvlan
	neigh := neighCheck(t, name, a, nic, WantNoNeigh)
	neigh.Mode, neigh.MAC, neigh.Unknown, neigh.Expect = ModeIPvlanL3, "", "", string(WantNoNeigh)+" (routed via "+parentLabel(t, nic)+")"
	return append(out, neigh)
}

// parentLabel is the VM's NIC nic and its address, for an expectation.
func parentLabel(t Target, nic int) string {
	if nic < 0 || nic >= len(t.NICs) {
		return "the parent NIC"
	}
	n := t.NICs[nic]
	if n.Address.IsValid() {
		return n.Guest + " " + n.Address.String()
	}
	return n.Guest
}

// noNeigh is a WantNoNeigh check's actual and outcome from the MAC the
// host's neighbour table has for the address ("" for none).
func noNeigh(mac string) (string, bool) {
	if mac == "" {
		return "no entry", true
	}
	return "MAC " + mac, false
}

// l3Limit diagnoses a failed ipvlan l3 check: a neighbour entry (something
// answered ARP for the child, which an l3 child never does) or the host
// not reaching the child (its route via the parent is missing or wrong).
func l3Limit(r *Result, f *finding, hop string) bool {
	switch {
	case r.Method == MethodNeigh && r.obs.err == nil && strings.HasPrefix(r.Actual, "MAC "):
		f.blame(hop, CauseModeNotHeld, "ipvlan l3: the host has a neighbour entry for %s (%s): something answered ARP for it, which an l3 child never does: the link is not in l3 mode ('ip -d link' in the container)", r.Address, r.Actual)
	case r.Method == MethodNeigh && r.obs.err == nil:
		return false // the host cannot read its table: the usual diagnosis
	case !r.Want.Negative():
		f.blame(hop, CauseIPvlanL3Route, "ipvlan l3: the child answers no ARP, so the host reaches %s only by a route via its parent NIC's address, which lab up adds ('ip route get %s' on the lab host; a second lab up adds it again)", r.Address, r.To)
	default:
		return false
	}
	return true
}
