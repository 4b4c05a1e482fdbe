package lab

import (
	"fmt"
	"strings"

	"vmnet/internal/vmspec"
)

// A macvtap network puts its nodes' NICs on a host interface's own link
// (libvirt <interface type='direct'>): the parent exists already, vmnet
// makes nothing for it and serves no DHCP on it, so every NIC there needs a
// static address inside cidr, the subnet of the parent's link. The host
// cannot reach these guests through the parent: the lab's derived checks
// expect exactly that (internal/check).

// validateMacvtap checks a macvtap network: parent and mode as for a spec's
// direct NIC, a cidr and no address, a parent no other network uses, and at
// most one NIC in passthrough mode.
func (l Lab) validateMacvtap(p *problems, name string, n Network) {
	f := func(k string) string { return "networks." + name + "." + k }
	for _, e := range vmspec.CheckDirect("networks."+name, vmspec.Direct{Parent: n.Parent, Mode: n.Mode}) {
		p.list = append(p.list, e)
	}
	switch {
	case n.Address.IsValid():
		p.add(f("address"), n.Address.String(), "is set on a macvtap network, where vmnet gives the host no address", "give the subnet of the parent's link instead: cidr: "+n.Address.Masked().String())
	case !n.CIDR.IsValid():
		p.add(f("cidr"), "", "is missing", "give the subnet of "+orParent(n)+"'s link, for example cidr: 192.0.2.0/24: the NICs' static addresses must be inside it")
	case !n.CIDR.Addr().Is4():
		p.add(f("cidr"), n.CIDR.String(), "is IPv6; vmnet's guests take IPv4 addresses", "use an IPv4 subnet such as 192.0.2.0/24")
	case n.CIDR.Masked() != n.CIDR:
		p.add(f("cidr"), n.CIDR.String(), "has host bits set", "write the subnet itself: cidr: "+n.CIDR.Masked().String())
	}
	for _, other := range l.NetworkOrder {
		if o := l.Networks[other]; other != name && o.Kind == KindMacvtap && o.Parent == n.Parent && n.Parent != "" && l.lineBefore(other, name) {
			p.add(f("parent"), n.Parent, "is also network "+other+"'s parent", "declare one macvtap network per parent: its guests share one link")
		}
	}
	if n.Mode == vmspec.DirectPassthrough {
		if users := l.nicsOn(name); len(users) > 1 {
			p.add(f("mode"), n.Mode, fmt.Sprintf("gives the parent to one NIC only, but %d NICs use network %s (%s)", len(users), name, strings.Join(users, ", ")), "keep one NIC on it, or use mode bridge")
		}
	}
}

// lineBefore reports whether network a comes before b in the file.
func (l Lab) lineBefore(a, b string) bool {
	for _, n := range l.NetworkOrder {
		switch n {
		case a:
			return true
		case b:
			return false
		}
	}
	return false
}

// nicsOn lists the NICs on network net, as nodes.NODE.nics[I].
func (l Lab) nicsOn(net string) []string {
	var out []string
	for _, node := range l.NodeOrder {
		for i, nic := range l.Nodes[node].NICs {
			if nic.Net == net {
				out = append(out, fmt.Sprintf("nodes.%s.nics[%d]", node, i))
			}
		}
	}
	return out
}

// orParent names the parent for messages, or "the parent" when it is unset.
func orParent(n Network) string {
	if n.Parent == "" {
		return "the parent"
	}
	return n.Parent
}

// noDHCP says why a NIC on n needs a static address.
func noDHCP(n Network) string {
	if n.Kind == KindMacvtap {
		return "vmnet serves no DHCP on a macvtap network"
	}
	return "a Linux bridge has no DHCP server"
}

// Direct is the macvtap attachment of a NIC on network net, zero when net
// is not a macvtap network.
func (l Lab) Direct(net string) vmspec.Direct {
	n := l.Networks[net]
	if n.Kind != KindMacvtap {
		return vmspec.Direct{}
	}
	return vmspec.Direct{Parent: n.Parent, Mode: n.Mode}
}

// macvtapOnly refuses parent and mode on a network of another kind.
func macvtapOnly(p *problems, name string, n Network) {
	if n.Kind == KindMacvtap || n.Kind == "" {
		return
	}
	for _, kv := range [][2]string{{"parent", n.Parent}, {"mode", n.Mode}} {
		if kv[1] != "" {
			p.add("networks."+name+"."+kv[0], kv[1], "is set on a "+n.Kind+" network", "leave it out, or use kind: macvtap to put the guests on a host interface's link")
		}
	}
}

// hasMacvtap reports whether the lab has a macvtap network.
func (l Lab) hasMacvtap() bool {
	for _, n := range l.Networks {
		if n.Kind == KindMacvtap {
			return true
		}
	}
	return false
}
