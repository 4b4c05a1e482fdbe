// Package network makes, converges, lists and deletes libvirt networks, and
// keeps DHCP reservations on them so guests get predictable addresses.
//
// API:
//
//	Spec, Mode, Spec.Validate     what the user asked for; FieldError (errs.FieldError) names the flag
//	ParseMode, ParseCIDR, ParseDHCPRange   user input → Spec fields
//	Build(Spec) *libvirtxml.Network        pure: the network XML vmnet defines (golden-tested)
//	BridgeName, Gateway, DefaultDHCPRange, HostAddress   pure address and name rules
//	Ensure(ctx, conn, Spec, Kernel) → *Result   define + autostart + start, idempotent; converges
//	                                            a vmnet network by redefine + restart while no guest uses it
//	Delete(conn, name) → *Result                destroy + undefine a vmnet network; a missing one is fine
//	List(conn) → []Info                         every network, vmnet's or not, with its owner
//	AddHost, RemoveHost, Hosts, Leases          DHCP reservations (virNetworkUpdate) and leases
//
// Ownership lives on the network itself: vmnet's networks carry
// <network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"/> in their
// <metadata> (internal/ownership writes it, the shape a domain's mark has;
// the <vmnet:owner> element older versions wrote still counts), and vmnet
// changes or deletes no network without it. A network a lab made carries
// the lab's name in that mark (lab="NAME", Spec.Lab, Info.Lab); Ensure
// never retags a network that exists.
//
// Checks that need the host (routes that overlap a subnet, the bridge a
// bridge-mode network uses) read the network namespace where libvirtd runs,
// through Kernel: a *netlink.Handle for that namespace (OpenKernel).
package network

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"strings"

	"vmnet/internal/errs"
	"vmnet/internal/ownership"
	"vmnet/internal/valid"
)

// Mode is how a network reaches the outside.
type Mode string

// The modes vmnet makes.
const (
	// ModeNAT is a private subnet on a libvirt bridge, masqueraded to the host's routes.
	ModeNAT Mode = "nat"
	// ModeIsolated is a private subnet on a libvirt bridge with no way out.
	ModeIsolated Mode = "isolated"
	// ModeBridge attaches guests to an existing Linux bridge (vmnet bridge create);
	// addresses come from whatever network that bridge is on.
	ModeBridge Mode = "bridge"
)

// Spec is one libvirt network as the user asked for it.
type Spec struct {
	Name string
	Mode Mode
	// CIDR is the subnet of a nat or isolated network, written as its network
	// address (198.51.100.0/24); the gateway is its first host address.
	CIDR netip.Prefix
	// DHCPRange is the dynamic pool; zero means DefaultDHCPRange (the upper
	// half of the subnet), which leaves the lower half for reservations.
	DHCPRange [2]netip.Addr
	// Bridge is the existing Linux bridge of a bridge-mode network.
	Bridge string
	// Lab is the lab that makes the network ("" for none): Build writes it
	// into the ownership mark (lab="NAME"), so the lab's down finds it.
	// Ensure writes it only on a network it creates: a network that existed
	// before the lab, even with the same definition, is not the lab's, and
	// keeps its own tag (or none), however it is converged.
	Lab string
}

// FieldError is bad user input; it is errs.FieldError, so the CLI maps it
// to one exit code and prints its hint whichever package refused the input.
type FieldError = errs.FieldError

// ErrInvalid is errs.ErrInvalid; every FieldError matches it.
var ErrInvalid = errs.ErrInvalid

// Limits on user input.
const (
	// minBits and maxBits bound the subnet size: a /29 still leaves a gateway,
	// a few static addresses and a DHCP pool; larger than /8 is a mistake.
	minBits = 8
	maxBits = 29
	// bridgePrefix names the bridges libvirt makes for vmnet's networks.
	bridgePrefix = "vmnet-"
	maxIfName    = 15 // IFNAMSIZ - 1
)

// ParseMode parses --mode.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeNAT, ModeIsolated, ModeBridge:
		return m, nil
	}
	return "", &FieldError{Field: "--mode", Value: s, Problem: "is not a network mode",
		Fix: "use nat (private subnet with outbound NAT), isolated (private subnet, no way out) or bridge (an existing Linux bridge)"}
}

// ValidateName checks a network name given as NAME (net create, net
// delete); valid.NetworkName holds the rule.
func ValidateName(name string) error { return valid.NetworkName("network name", name) }

// ParseCIDR parses --cidr: an IPv4 subnet written as its network address.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		if a, aerr := netip.ParseAddr(strings.TrimSpace(s)); aerr == nil && a.Is4() {
			return netip.Prefix{}, &FieldError{Field: "--cidr", Value: s, Problem: "has no prefix length",
				Fix: fmt.Sprintf("write the subnet with its prefix length, for example %s/24", netip.PrefixFrom(a, 24).Masked().Addr())}
		}
		return netip.Prefix{}, &FieldError{Field: "--cidr", Value: s, Problem: "is not a subnet in CIDR form",
			Fix: "write the subnet's network address and prefix length, for example 198.51.100.0/24"}
	}
	if err := checkCIDR(p); err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}

// checkCIDR is the semantic half of ParseCIDR, also run by Validate on a
// Spec built by code.
func checkCIDR(p netip.Prefix) error {
	s := p.String()
	bad := func(problem, fix string) error {
		return &FieldError{Field: "--cidr", Value: s, Problem: problem, Fix: fix}
	}
	a := p.Addr()
	switch {
	case !p.IsValid():
		return bad("is not a subnet", "write the subnet's network address and prefix length, for example 198.51.100.0/24")
	case a.Zone() != "":
		return bad("has a zone", "leave out the %zone part")
	case a.Is4In6():
		return bad("is an IPv4-mapped IPv6 subnet", "write the IPv4 subnet in dotted form")
	case a.Is6():
		return bad("is IPv6; vmnet makes IPv4 networks", "give an IPv4 subnet, for example 198.51.100.0/24")
	case p.Bits() < minBits || p.Bits() > maxBits:
		return bad(fmt.Sprintf("has prefix length /%d; vmnet takes /%d to /%d", p.Bits(), minBits, maxBits),
			"use a subnet such as /24 (254 addresses)")
	case p.Masked() != p:
		return bad("has host bits set", fmt.Sprintf("write the network address, %s (the gateway %s is derived from it)", p.Masked(), Gateway(p.Masked())))
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() || a.As4()[0] >= 240:
		return bad("is a reserved range (this-network, loopback, link-local, multicast or class E)",
			"use a private or documentation subnet such as 10.10.0.0/24 or 198.51.100.0/24")
	}
	return nil
}

// ParseDHCPRange parses --dhcp-range "START-END" (two IPv4 addresses). Where
// the addresses must lie is checked by Spec.Validate, which knows the subnet.
func ParseDHCPRange(s string) ([2]netip.Addr, error) {
	bad := func(problem string) error {
		return &FieldError{Field: "--dhcp-range", Value: s, Problem: problem,
			Fix: "write two addresses of the subnet joined by '-', for example 198.51.100.128-198.51.100.254"}
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return [2]netip.Addr{}, bad("is not a range START-END")
	}
	a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
	b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil {
		return [2]netip.Addr{}, bad("is not a range of two IP addresses")
	}
	if !a.Is4() || !b.Is4() {
		return [2]netip.Addr{}, bad("is not a range of two IPv4 addresses")
	}
	if b.Less(a) {
		return [2]netip.Addr{}, bad("ends before it starts")
	}
	return [2]netip.Addr{a, b}, nil
}

// Gateway is the address of the host on subnet p: its first host address.
func Gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// size is the number of addresses in p.
func size(p netip.Prefix) *big.Int {
	return new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
}

// offset returns the address index places past p's network address.
func offset(p netip.Prefix, index *big.Int) netip.Addr {
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	b := base.Add(base, index).FillBytes(make([]byte, p.Addr().BitLen()/8))
	a, _ := netip.AddrFromSlice(b)
	return a
}

// broadcast is the last address of p.
func broadcast(p netip.Prefix) netip.Addr {
	return offset(p, new(big.Int).Sub(size(p), big.NewInt(1)))
}

// DefaultDHCPRange is the upper half of the subnet less its broadcast
// address (.128-.254 of a /24), so the lower half is free for static and
// reserved addresses (HostAddress).
func DefaultDHCPRange(p netip.Prefix) [2]netip.Addr {
	n := size(p)
	return [2]netip.Addr{offset(p, new(big.Int).Rsh(n, 1)), offset(p, n.Sub(n, big.NewInt(2)))}
}

// HostAddress returns host number index of subnet p: 1 is the gateway, 2 the
// first guest. Indexes below half the subnet size are outside the default
// DHCP range, so addresses handed out by index never meet dynamic leases.
func HostAddress(p netip.Prefix, index int) (netip.Addr, error) {
	if !p.IsValid() {
		return netip.Addr{}, fmt.Errorf("host address %d: invalid subnet", index)
	}
	n := size(p)
	last := new(big.Int).Sub(n, big.NewInt(2)) // not the broadcast address
	if p.Addr().Is6() {
		last.Add(last, big.NewInt(1)) // IPv6 has no broadcast address
	}
	if index < 1 || big.NewInt(int64(index)).Cmp(last) > 0 {
		return netip.Addr{}, fmt.Errorf("host address %d: subnet %s has host addresses 1 to %s", index, p.Masked(), last)
	}
	return offset(p, big.NewInt(int64(index))), nil
}

// BridgeName is the Linux bridge libvirt makes for network name: "vmnet-NAME"
// when that fits in an interface name, else "vmnet-" plus the first four
// bytes of the name and four hex digits of its hash, so two long names that
// share a beginning still get different bridges.
func BridgeName(name string) string {
	if len(bridgePrefix)+len(name) <= maxIfName {
		return bridgePrefix + name
	}
	sum := sha256.Sum256([]byte(name))
	return bridgePrefix + name[:4] + "-" + hex.EncodeToString(sum[:2])
}

// withDefaults fills in the DHCP range.
func (s Spec) withDefaults() Spec {
	if s.Mode != ModeBridge && s.CIDR.IsValid() && s.DHCPRange == [2]netip.Addr{} {
		s.DHCPRange = DefaultDHCPRange(s.CIDR)
	}
	return s
}

// Validate checks everything about a spec that needs no look at the host.
func (s Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if err := ownership.CheckLab("lab", s.Lab); err != nil {
		return err
	}
	if _, err := ParseMode(string(s.Mode)); err != nil {
		return err
	}
	if s.Mode == ModeBridge {
		if s.Bridge == "" {
			return &FieldError{Field: "--bridge", Value: "", Problem: "is required with --mode bridge",
				Fix: "name an existing Linux bridge, for example --bridge br0 (make one with: vmnet bridge create br0)"}
		}
		if err := valid.InterfaceName("--bridge", s.Bridge); err != nil {
			return err
		}
		if s.CIDR.IsValid() {
			return &FieldError{Field: "--cidr", Value: s.CIDR.String(), Problem: "does not apply to --mode bridge",
				Fix: "leave it out: guests on a bridge get addresses from the network the bridge is on"}
		}
		if s.DHCPRange != [2]netip.Addr{} {
			return &FieldError{Field: "--dhcp-range", Value: rangeString(s.DHCPRange), Problem: "does not apply to --mode bridge",
				Fix: "leave it out: libvirt runs no DHCP server on a bridge it does not own"}
		}
		return nil
	}
	if s.Bridge != "" {
		return &FieldError{Field: "--bridge", Value: s.Bridge, Problem: fmt.Sprintf("applies only to --mode bridge, not %s", s.Mode),
			Fix: fmt.Sprintf("leave it out: libvirt makes the bridge %s for this network", BridgeName(s.Name))}
	}
	if !s.CIDR.IsValid() {
		return &FieldError{Field: "--cidr", Value: "", Problem: fmt.Sprintf("is required with --mode %s", s.Mode),
			Fix: "give the network's subnet, for example --cidr 198.51.100.0/24"}
	}
	if err := checkCIDR(s.CIDR); err != nil {
		return err
	}
	if s.DHCPRange == [2]netip.Addr{} {
		return nil
	}
	r := s.DHCPRange
	bad := func(problem, fix string) error {
		return &FieldError{Field: "--dhcp-range", Value: rangeString(r), Problem: problem, Fix: fix}
	}
	def := DefaultDHCPRange(s.CIDR)
	fix := fmt.Sprintf("use addresses between %s and %s, for example %s", Gateway(s.CIDR).Next(), broadcast(s.CIDR).Prev(), rangeString(def))
	switch {
	case !r[0].Is4() || !r[1].Is4():
		return bad("is not a range of two IPv4 addresses", fix)
	case r[1].Less(r[0]):
		return bad("ends before it starts", fix)
	case !s.CIDR.Contains(r[0]) || !s.CIDR.Contains(r[1]):
		return bad(fmt.Sprintf("is not inside %s", s.CIDR), fix)
	case r[0] == s.CIDR.Addr():
		return bad("starts at the network address", fix)
	case r[1] == broadcast(s.CIDR):
		return bad("ends at the broadcast address", fix)
	case r[0].Compare(Gateway(s.CIDR)) <= 0 && r[1].Compare(Gateway(s.CIDR)) >= 0:
		return bad(fmt.Sprintf("includes the gateway %s", Gateway(s.CIDR)), fix)
	}
	return nil
}

func rangeString(r [2]netip.Addr) string {
	if r == [2]netip.Addr{} {
		return ""
	}
	return r[0].String() + "-" + r[1].String()
}
