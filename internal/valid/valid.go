// Package valid holds the checks of user input that several packages share:
// interface, network, VM, image and sandbox names, hostnames, interface addresses, MACs and
// Debian package names. Each refusal is an *errs.FieldError that names the
// field and the fix, so it maps to exit code 2 wherever it is raised.
//
// It imports only internal/errs: a package that checks a bridge name in a
// spec does not need the package that manages bridges.
package valid

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	"vmnet/internal/errs"
)

// maxInterfaceName is IFNAMSIZ - 1, the kernel's limit.
const maxInterfaceName = 15

// InterfaceName checks an interface name the way the kernel's dev_valid_name
// does, so a bad name fails here with a clear message rather than as EINVAL.
func InterfaceName(field, name string) error {
	return portableName(field, name, maxInterfaceName, "Linux", "an interface name",
		"use 1 to 15 letters, digits, '-', '_' and '.', starting with a letter or digit, for example br0")
}

// ParseAddress parses an interface address in CIDR form, such as
// 192.0.2.1/24 or 2001:db8::1/64: a host address together with its prefix.
func ParseAddress(s string) (netip.Prefix, error) {
	bad := func(problem, fix string) error {
		return &errs.FieldError{Field: "--address", Value: s, Problem: problem, Fix: fix}
	}
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil {
			bits := 24
			if a.Is6() {
				bits = 64
			}
			return netip.Prefix{}, bad("has no prefix length", fmt.Sprintf("write it with its prefix length, for example %s/%d", a, bits))
		}
		return netip.Prefix{}, bad("is not an address in CIDR form", "write an address with its prefix length, for example 192.0.2.1/24 or 2001:db8::1/64")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, bad("is not an address in CIDR form", "write an address with its prefix length, for example 192.0.2.1/24 or 2001:db8::1/64")
	}
	a := p.Addr()
	if a.Zone() != "" {
		return netip.Prefix{}, bad("has a zone", "leave out the %zone part")
	}
	if a.Is4In6() {
		return netip.Prefix{}, bad("is an IPv4-mapped IPv6 address", "write the IPv4 address in dotted form")
	}
	switch {
	case a.IsUnspecified():
		return netip.Prefix{}, bad("is the unspecified address", "use a host address such as 192.0.2.1/24")
	case a.IsMulticast():
		return netip.Prefix{}, bad("is a multicast address", "use a unicast host address")
	case a.IsLoopback():
		return netip.Prefix{}, bad("is a loopback address", "use an address outside 127.0.0.0/8 and ::1")
	case a.Is6() && a.IsLinkLocalUnicast():
		return netip.Prefix{}, bad("is an IPv6 link-local address", "the kernel adds fe80:: addresses itself; use a global or ULA address")
	}
	if a.Is4() && p.Bits() < 31 {
		if a == p.Masked().Addr() {
			return netip.Prefix{}, bad("is the network address of its subnet", fmt.Sprintf("use a host address inside %s, for example %s", p.Masked(), p.Masked().Addr().Next()))
		}
		if a == lastAddr(p) {
			return netip.Prefix{}, bad("is the broadcast address of its subnet", fmt.Sprintf("use a host address inside %s", p.Masked()))
		}
	}
	return p, nil
}

// lastAddr returns the highest address of p's subnet.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// ParseMAC parses a unicast Ethernet MAC address such as 52:54:00:12:34:56.
func ParseMAC(s string) (net.HardwareAddr, error) {
	bad := func(problem string) error {
		return &errs.FieldError{Field: "--mac", Value: s, Problem: problem,
			Fix: "use six hex bytes with colons, unicast (first byte even), for example 02:00:00:00:00:01"}
	}
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, bad("is not a MAC address")
	}
	if len(mac) != 6 {
		return nil, bad(fmt.Sprintf("has %d bytes; an Ethernet MAC has 6", len(mac)))
	}
	if mac[0]&1 == 1 {
		return nil, bad("is a multicast address")
	}
	if strings.Trim(mac.String(), "0:") == "" {
		return nil, bad("is all zeros")
	}
	return mac, nil
}

// label is one DNS label: 1 to 63 letters, digits and '-', not starting or
// ending with '-' (RFC 1123).
const label = `[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?`

// hostnameRE: labels separated by '.'.
var hostnameRE = regexp.MustCompile(`^` + label + `(\.` + label + `)*$`)

// labelRE: one label, as a DHCP reservation's host name is.
var labelRE = regexp.MustCompile(`^` + label + `$`)

// MaxHostname is the longest hostname DNS allows.
const MaxHostname = 253

// IsHostname reports whether s is a valid hostname (RFC 1123, at most 253 bytes).
func IsHostname(s string) bool { return s != "" && len(s) <= MaxHostname && hostnameRE.MatchString(s) }

// IsDNSLabel reports whether s is one DNS label: 1 to 63 letters, digits and
// '-', not starting or ending with '-' (a hostname without dots).
func IsDNSLabel(s string) bool { return labelRE.MatchString(s) }

// debNameRE matches a Debian package name (Debian Policy 5.6.1).
var debNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// IsDebPackage reports whether s is a Debian package name (Debian Policy
// 5.6.1: lowercase letters, digits, '+', '-' and '.', at least two
// characters, starting with a letter or digit).
func IsDebPackage(s string) bool { return debNameRE.MatchString(s) }
