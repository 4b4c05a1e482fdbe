package check

import (
	"net/netip"
	"slices"
	"strings"

	"vmnet/internal/vmspec"
)

// A macvtap NIC (libvirt <interface type='direct'>) sits on a host
// interface, its parent, with a MAC of its own. The kernel hands a macvtap
// device what arrives on the parent from the wire, and in bridge mode what
// another macvtap device on the same parent sends; what the host itself
// sends out of the parent leaves by the wire and never comes back up. So
// the host cannot reach a macvtap guest through its parent, in any mode
// (measured on kernel 6.18 with a veth as the parent: the host's ARP for
// the guest goes unanswered while a peer on the veth's other end and the
// other guest get replies). The derived checks expect exactly that, each
// with a positive control elsewhere: another NIC of the node, or a peer
// guest on the same parent.

// macvtapFromHost turns a derived host ↔ VM ping on a macvtap NIC into the
// negative check the mode implies; other checks come back unchanged. Its
// control is the host's ping to another, non-macvtap NIC of the same VM;
// a VM with none gets a peer's ping later (labPlan.macvtapControls).
func macvtapFromHost(t Target, c Check) Check {
	if c.NIC < 0 || c.NIC >= len(t.NICs) || t.NICs[c.NIC].Parent == "" {
		return c
	}
	n := t.NICs[c.NIC]
	c.Want, c.BlockedBy = WantNoReply, CauseMacvtapHost
	c.Expect = "no reply: the host cannot reach a macvtap guest through its parent " + n.Parent + " (mode " + n.Mode + ")"
	if c.From.Kind == OnVM {
		c.Expect = "no reply: a macvtap guest cannot reach the host's address on its parent " + n.Parent + " (mode " + n.Mode + ")"
	}
	for _, o := range t.NICs {
		if o.Parent == "" && c.From.Kind == OnHost {
			c.Requires = append(c.Requires, "ping:host->"+nicLabel(t, o))
			break
		}
		if o.Parent == "" {
			c.Requires = append(c.Requires, "ping:"+t.Name+"->"+o.HostLabel())
			break
		}
	}
	return c
}

// macvtapPeer sets what a ping from node a to node b on network net
// expects when net is a macvtap network: a reply in bridge mode (as for
// any shared network); none in private mode, which keeps guests on one
// parent apart, nor in vepa mode, which sends guest-to-guest traffic to
// the switch on the parent's link, and a switch does not send a frame back
// out of the port it came in by unless it hairpins (a veth peer never does).
func (p *labPlan) macvtapPeer(c *Check, a, b, net string) {
	d := p.l.Direct(net)
	mode := d.ModeOrDefault()
	if mode != vmspec.DirectPrivate && mode != vmspec.DirectVEPA {
		return
	}
	c.Want, c.BlockedBy = WantNoReply, CauseMacvtapMode
	c.Expect = "no reply: macvtap mode " + mode + " keeps guests on parent " + d.Parent + " apart"
	for _, node := range []string{a, b} {
		if id := p.otherNICControl(node, net); id != "" {
			c.Requires = append(c.Requires, id)
		}
	}
}

// otherNICControl is the host's ping to node's first NIC that is not on a
// macvtap network, or "".
func (p *labPlan) otherNICControl(node, net string) string {
	for i, nic := range labNICs(p.l, node) {
		if nic.Net != net && p.l.Direct(nic.Net).IsZero() && i < len(p.targets[node].NICs) {
			return "ping:host->" + nicLabel(p.targets[node], p.targets[node].NICs[i])
		}
	}
	return ""
}

// macvtapControls gives the expected-blocked host checks of a node whose
// NICs are all macvtap ones a control all the same: a peer guest's ping to
// the node on the same parent, in bridge mode (ping:B->A:NET, in B's run;
// requireOthers looks across runs).
func (p *labPlan) macvtapControls() {
	for _, a := range p.l.NodeOrder {
		checks := p.runs[a]
		for i, c := range checks {
			if c.BlockedBy != CauseMacvtapHost || len(c.Requires) > 0 || c.NIC < 0 || c.NIC >= len(labNICs(p.l, a)) {
				continue
			}
			net := labNICs(p.l, a)[c.NIC].Net
			if p.l.Direct(net).ModeOrDefault() != vmspec.DirectBridge {
				continue
			}
			for _, b := range p.l.NodeOrder {
				if b != a && p.nicOn(b, net) >= 0 {
					checks[i].Requires = append(checks[i].Requires, "ping:"+b+"->"+a+":"+net)
					break
				}
			}
		}
	}
}

// parentAddress is the parent's IPv4 address on the VM's subnet: the host
// end of a macvtap NIC, which a VM → host ping is expected not to reach.
// An address on another subnet is no end of this link.
func parentAddress(ps []netip.Prefix, vmAddr netip.Addr) (netip.Addr, int) {
	i := slices.IndexFunc(ps, func(p netip.Prefix) bool {
		return p.Addr().Is4() && vmAddr.IsValid() && p.Masked().Contains(vmAddr)
	})
	if i < 0 {
		return netip.Addr{}, 0
	}
	return ps[i].Addr(), ps[i].Bits()
}

// parentHop blames a macvtap NIC's parent when it is missing or down, and
// says whether it did: the one host hop of a macvtap NIC.
func (d *diagnoser) parentHop(n NIC, f *finding) (blamed bool) {
	l, err := d.hostLink(n.Parent)
	hop := "host:" + n.Parent
	switch {
	case err != nil:
		f.add("could not read %s on the host: %v", n.Parent, err)
	case !l.Exists:
		f.blame(hop, CauseBridgeDown, "%s (the macvtap parent of %s:%s) does not exist on the host", n.Parent, d.t.Name, n.Guest)
		return true
	case !l.Up:
		f.blame(hop, CauseBridgeDown, "%s (the macvtap parent of %s:%s) is administratively down (ip link set %s up)", n.Parent, d.t.Name, n.Guest, n.Parent)
		return true
	default:
		f.add("macvtap parent %s is up (operational state %s, mode %s)", n.Parent, strings.ToLower(l.OperState), n.Mode)
	}
	return false
}
