package network

import (
	"fmt"
	"net/netip"
	"strings"

	"libvirt.org/go/libvirtxml"

	"vmnet/internal/ownership"
)

// Namespace is the XML namespace of vmnet's metadata in libvirt objects.
const Namespace = ownership.Namespace

// metadataName is the local name of vmnet's element in a network's <metadata>.
const metadataName = "network"

// ownerValue is the owner vmnet writes.
const ownerValue = ownership.Owner

// ownerMetadata is <network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"/>,
// the shape a domain's <vm> has, through the one encoder; with lab="NAME"
// for a lab's network.
func ownerMetadata(lab string) *libvirtxml.NetworkMetadata {
	m := ownership.NewMark(metadataName)
	m.Lab = lab
	x, err := ownership.Encode(metadataName, m)
	if err != nil {
		panic(err) // a mark of vmnet's always encodes
	}
	return &libvirtxml.NetworkMetadata{XML: x}
}

// labOf is the lab a network definition's mark names; "" for none, for
// the marks written before labs and for a network that is not vmnet's.
func labOf(n *libvirtxml.Network) string {
	if n == nil || n.Metadata == nil {
		return ""
	}
	m, _ := ownership.ReadMark(n.Metadata.XML, metadataName, false)
	return m.Lab
}

// Owned reports whether a network definition carries vmnet's mark: the
// <network owner="vmnet"> element vmnet writes, or the
// <vmnet:owner>vmnet</vmnet:owner> that networks made by older versions
// carry. It reads the XML by namespace URI, not by prefix or by text, so a
// definition libvirt reformatted still counts.
func Owned(n *libvirtxml.Network) bool {
	if n == nil || n.Metadata == nil {
		return false
	}
	if ownership.Owned(n.Metadata.XML, metadataName, false) {
		return true
	}
	var text string
	return ownership.Find(n.Metadata.XML, "owner", false, &text) && strings.TrimSpace(text) == ownerValue
}

// Build returns the libvirt network definition for spec, with vmnet's owner
// metadata. It is pure; libvirt adds the UUID and the bridge's MAC on define.
func Build(s Spec) (*libvirtxml.Network, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.withDefaults()
	n := &libvirtxml.Network{Name: s.Name, Metadata: ownerMetadata(s.Lab)}
	if s.Mode == ModeBridge {
		n.Forward = &libvirtxml.NetworkForward{Mode: "bridge"}
		n.Bridge = &libvirtxml.NetworkBridge{Name: s.Bridge}
		return n, nil
	}
	if s.Mode == ModeNAT {
		n.Forward = &libvirtxml.NetworkForward{Mode: "nat"}
	}
	// STP off and no forward delay: these bridges have no loops (one uplink
	// at most, through NAT), and a delay only makes a new guest wait for DHCP.
	n.Bridge = &libvirtxml.NetworkBridge{Name: BridgeName(s.Name), STP: "off", Delay: "0"}
	n.IPs = []libvirtxml.NetworkIP{{
		Address: Gateway(s.CIDR).String(),
		Prefix:  uint(s.CIDR.Bits()),
		DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{
			Start: s.DHCPRange[0].String(),
			End:   s.DHCPRange[1].String(),
		}}},
	}}
	return n, nil
}

// shape is the part of a network definition that vmnet decides; two
// definitions with the same shape need no redefinition.
type shape struct {
	Mode      Mode
	Bridge    string
	Address   string // gateway/prefix, "" for none
	DHCPRange string // "START-END", "" for none
}

// modeOf names a definition's forward mode the way vmnet's --mode does.
func modeOf(n *libvirtxml.Network) Mode {
	switch {
	case n.Forward == nil:
		return ModeIsolated
	case n.Forward.Mode == "":
		return ModeNAT // libvirt's default for <forward/>
	}
	return Mode(n.Forward.Mode)
}

// ipv4 returns the first IPv4 <ip> of a definition and its subnet.
func ipv4(n *libvirtxml.Network) (*libvirtxml.NetworkIP, netip.Prefix, bool) {
	for i := range n.IPs {
		ip := &n.IPs[i]
		p, ok := ipPrefix(*ip)
		if ok && p.Addr().Is4() {
			return ip, p, true
		}
	}
	return nil, netip.Prefix{}, false
}

// ipPrefix reads an <ip> element's address and prefix or netmask.
func ipPrefix(ip libvirtxml.NetworkIP) (netip.Prefix, bool) {
	a, err := netip.ParseAddr(ip.Address)
	if err != nil {
		return netip.Prefix{}, false
	}
	bits := int(ip.Prefix)
	if ip.Netmask != "" {
		m, err := netip.ParseAddr(ip.Netmask)
		if err != nil {
			return netip.Prefix{}, false
		}
		bits = maskBits(m)
	} else if ip.Prefix == 0 {
		// No prefix and no netmask: libvirt falls back to the classful
		// mask; /24 covers the usual private ranges well enough for a check.
		bits = 24
		if a.Is6() {
			bits = 64
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, p.Bits()), true
}

func maskBits(m netip.Addr) int {
	bits := 0
	for _, b := range m.AsSlice() {
		for i := 7; i >= 0 && b&(1<<i) != 0; i-- {
			bits++
		}
		if b != 0xff {
			break
		}
	}
	return bits
}

func shapeOf(n *libvirtxml.Network) shape {
	sh := shape{Mode: modeOf(n)}
	if n.Bridge != nil {
		sh.Bridge = n.Bridge.Name
	}
	if ip, p, ok := ipv4(n); ok {
		sh.Address = p.String()
		if ip.DHCP != nil && len(ip.DHCP.Ranges) > 0 {
			r := ip.DHCP.Ranges[0]
			sh.DHCPRange = r.Start + "-" + r.End
		}
	}
	return sh
}

// differences lists, for people, how the current definition differs from
// the wanted one in what vmnet decides.
func differences(want, cur *libvirtxml.Network) []string {
	w, c := shapeOf(want), shapeOf(cur)
	var out []string
	add := func(what, from, to string) {
		if from != to {
			out = append(out, fmt.Sprintf("%s %s → %s", what, orNone(from), orNone(to)))
		}
	}
	add("mode", string(c.Mode), string(w.Mode))
	add("bridge", c.Bridge, w.Bridge)
	add("address", c.Address, w.Address)
	add("DHCP range", c.DHCPRange, w.DHCPRange)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
