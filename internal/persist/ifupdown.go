package persist

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
)

// ifupdownMode: ifupdown runs as root, but the file holds nothing secret
// and /etc/network/interfaces is conventionally world-readable.
const ifupdownMode = 0o644

// stanzas builds an interfaces(5) fragment.
type stanzas struct{ b strings.Builder }

func (s *stanzas) iface(name, family, method string) {
	fmt.Fprintf(&s.b, "\niface %s %s %s\n", name, family, method)
}

func (s *stanzas) opt(key, value string) { fmt.Fprintf(&s.b, "    %s %s\n", key, value) }

// renderIfupdown writes one fragment for /etc/network/interfaces.d, which
// Debian's /etc/network/interfaces includes with "source". bridge-utils'
// if-pre-up.d hook creates the bridge from the bridge_* options.
//
// ifupdown 0.8 takes one address per stanza (a second "address" line is
// dropped or garbles the command), so each extra address gets a stanza of its
// own; ifup runs all stanzas of an interface in order. The bridge options go
// in the first inet stanza, because the hook acts on the first one that
// brings the bridge up.
func renderIfupdown(p *plan) []File {
	var s stanzas
	s.b.WriteString(header(p.Name))
	fmt.Fprintf(&s.b, "auto %s\n", p.Name)
	s.inet(p)
	s.inet6(p)
	return []File{{
		Path: path.Join(ifupdownDir, "vmnet-"+p.Name), Mode: ifupdownMode, Content: []byte(s.b.String()),
	}}
}

// inet writes the IPv4 stanzas. The first one carries the bridge; its method
// is dhcp, the first static address, or manual when the bridge has no IPv4
// at all.
func (s *stanzas) inet(p *plan) {
	v4 := p.addr4
	switch {
	case p.DHCP4:
		s.iface(p.Name, "inet", "dhcp")
		s.bridgeOptions(p)
		if p.MTU > 0 {
			// The dhcp method ignores "mtu"; set the bridge's own here.
			s.opt("up", fmt.Sprintf("ip link set dev %s mtu %d", p.Name, p.MTU))
		}
		if p.gw4.IsValid() {
			// "gateway" belongs to the static method, whose "ip route add"
			// would fail once the DHCP client has added the same route.
			s.defaultRoute(p.Name, "-4", p.gw4)
		}
	case len(v4) > 0:
		s.iface(p.Name, "inet", "static")
		s.opt("address", v4[0].String())
		if p.gw4.IsValid() {
			s.opt("gateway", p.gw4.String())
		}
		s.bridgeOptions(p)
		v4 = v4[1:]
	default:
		s.iface(p.Name, "inet", "manual")
		s.bridgeOptions(p)
	}
	for _, a := range v4 {
		s.iface(p.Name, "inet", "static")
		s.opt("address", a.String())
	}
}

// inet6 writes the IPv6 stanzas. ifupdown's inet6 static already turns
// router advertisements off (accept_ra 0); an uplinked bridge turns them on,
// like a NIC.
func (s *stanzas) inet6(p *plan) {
	for i, a := range p.addr6 {
		s.iface(p.Name, "inet6", "static")
		s.opt("address", a.String())
		if p.lab {
			// As vmnet adds it live (nodad): a portless bridge has no carrier,
			// so DAD never finishes and ifup would wait, then fail.
			s.opt("dad-attempts", "0")
		}
		if i == 0 && p.gw6.IsValid() {
			s.opt("gateway", p.gw6.String())
		}
		if !p.lab {
			// On every stanza: each one sets these sysctls again, and a
			// later stanza's defaults (0) would undo the first one's.
			s.opt("accept_ra", "2") // 2: also while forwarding is on, as it is for VMs
			s.opt("autoconf", "1")
		}
	}
	if len(p.addr6) == 0 {
		// A lab bridge without IPv6 addresses needs no inet6 stanza: the
		// kernel gives it its link-local address. (ifupdown has no way to
		// only turn router advertisements off; accept_ra keeps the kernel
		// default, which ignores them while forwarding is on.)
		switch {
		case !p.lab:
			s.iface(p.Name, "inet6", "auto")
		case p.gw6.IsValid():
			s.iface(p.Name, "inet6", "manual")
		}
		if p.gw6.IsValid() {
			s.defaultRoute(p.Name, "-6", p.gw6)
		}
	}
}

// bridgeOptions writes the bridge_* options that bridge-utils' hook reads,
// and the MTU; they go in the stanza that first brings the bridge up.
func (s *stanzas) bridgeOptions(p *plan) {
	s.opt("bridge_ports", yesNo(p.Uplink != "", p.Uplink, "none"))
	s.opt("bridge_stp", yesNo(p.STP, "on", "off"))
	if !p.STP {
		// With STP off the kernel forwards at once anyway; a zero
		// forward delay also stops bridge-utils from sleeping up to 32s
		// at boot waiting for ports to reach the forwarding state.
		// With STP on the delay is what prevents loops, so it stays.
		s.opt("bridge_fd", "0")
	}
	s.opt("bridge_hw", p.mac)
	if p.VLANFiltering {
		s.opt("bridge_vlan_aware", "yes")
	}
	if p.MTU > 0 {
		// bridge-utils also applies this MTU to the ports.
		s.opt("mtu", fmt.Sprint(p.MTU))
	}
}

// defaultRoute adds an "up" command that replaces the default route, for a
// gateway the stanza's method cannot set itself.
func (s *stanzas) defaultRoute(dev, family string, gw netip.Addr) {
	s.opt("up", fmt.Sprintf("ip %s route replace default via %s dev %s", family, gw, dev))
}
