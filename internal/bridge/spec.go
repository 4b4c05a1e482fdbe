package bridge

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"vmnet/internal/errs"
)

// Spec is the desired state of one bridge, as the user asked for it.
type Spec struct {
	Name          string
	Addresses     []netip.Prefix   // converged exactly, unless an uplink is involved (then added only)
	MTU           int              // 0: the uplink's MTU, or the kernel default for a new bridge
	STP           bool             // spanning tree on or off
	VLANFiltering bool             // 802.1Q filtering on the bridge
	MAC           net.HardwareAddr // nil: keep the bridge's MAC, or derive a stable one for a new bridge
	Uplink        string           // NIC to take over; "" for none

	// Probe is the address that must answer after an uplink takeover; the
	// uplink's default gateway when not set.
	Probe netip.Addr
	// ConfirmTimeout bounds the wait for Probe before everything is rolled back.
	ConfirmTimeout time.Duration
	// AllowNoCarrier takes over an uplink that has no carrier; without it
	// such a NIC is refused before anything changes.
	AllowNoCarrier bool
}

// Limits on user input, from the kernel.
const (
	maxNameLen = 15 // IFNAMSIZ - 1
	MinMTU     = 68 // IPv4 minimum (RFC 791)
	MaxMTU     = 65535
	minMTUIPv6 = 1280 // IPv6 minimum (RFC 8200)
)

// FieldError is errs.FieldError, the one field error of vmnet, under the
// name this package's code and tests have always used.
type FieldError = errs.FieldError

// ErrInvalid is errs.ErrInvalid; every FieldError matches it.
var ErrInvalid = errs.ErrInvalid

// ValidateName checks an interface name the way the kernel's dev_valid_name
// does, so a bad name fails here with a clear message rather than as EINVAL.
func ValidateName(field, name string) error {
	bad := func(problem string) error {
		return &FieldError{Field: field, Value: name, Problem: problem,
			Fix: "use 1 to 15 letters, digits, '-', '_' and '.', starting with a letter or digit, for example br0"}
	}
	switch {
	case name == "":
		return bad("is empty")
	case len(name) > maxNameLen:
		return bad(fmt.Sprintf("is %d bytes long; Linux allows at most %d", len(name), maxNameLen))
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok && i == 0 {
			return bad(fmt.Sprintf("starts with %q; start it with a letter or digit", r))
		}
		if !ok {
			return bad(fmt.Sprintf("contains %q, which is not allowed in an interface name", r))
		}
	}
	return nil
}

// ParseAddress parses an interface address in CIDR form, such as
// 192.0.2.1/24 or 2001:db8::1/64: a host address together with its prefix.
func ParseAddress(s string) (netip.Prefix, error) {
	bad := func(problem, fix string) error {
		return &FieldError{Field: "--address", Value: s, Problem: problem, Fix: fix}
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
		return &FieldError{Field: "--mac", Value: s, Problem: problem,
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

// ParseProbe parses the address that must answer after an uplink takeover.
func ParseProbe(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, &FieldError{Field: "--probe", Value: s, Problem: "is not a unicast IP address",
			Fix: "give the address of a host that answers ping on the uplink's network, usually the gateway"}
	}
	return a, nil
}

// Validate checks the parts of a spec that need no look at the host.
func (s Spec) Validate() error {
	if err := ValidateName("bridge name", s.Name); err != nil {
		return err
	}
	if s.Uplink != "" {
		if err := ValidateName("--uplink", s.Uplink); err != nil {
			return err
		}
		if s.Uplink == s.Name {
			return &FieldError{Field: "--uplink", Value: s.Uplink, Problem: "is the bridge itself", Fix: "name the NIC to take over, for example eth0"}
		}
		if s.MAC != nil {
			return &FieldError{Field: "--mac", Value: s.MAC.String(), Problem: "cannot be combined with --uplink",
				Fix: "leave out --mac: the bridge takes the uplink's MAC so DHCP and neighbours see no change"}
		}
	}
	if s.MTU != 0 && (s.MTU < MinMTU || s.MTU > MaxMTU) {
		return &FieldError{Field: "--mtu", Value: fmt.Sprint(s.MTU), Problem: fmt.Sprintf("is outside %d-%d", MinMTU, MaxMTU),
			Fix: "use a value such as 1500 (Ethernet) or 9000 (jumbo frames)"}
	}
	seen := map[netip.Addr]bool{}
	for i, p := range s.Addresses {
		if _, err := ParseAddress(p.String()); err != nil {
			return err
		}
		if seen[p.Addr()] {
			return &FieldError{Field: "--address", Value: p.String(), Problem: "is given twice", Fix: "give each address once"}
		}
		seen[p.Addr()] = true
		if p.Addr().Is6() && s.MTU != 0 && s.MTU < minMTUIPv6 {
			return &FieldError{Field: "--mtu", Value: fmt.Sprint(s.MTU), Problem: fmt.Sprintf("is below %d, the IPv6 minimum, and address %d is IPv6", minMTUIPv6, i+1),
				Fix: fmt.Sprintf("use an MTU of at least %d", minMTUIPv6)}
		}
		for _, q := range s.Addresses[:i] {
			if q.Overlaps(p) && q.Masked() != p.Masked() {
				return &FieldError{Field: "--address", Value: p.String(), Problem: fmt.Sprintf("overlaps %s with a different prefix length", q),
					Fix: "give addresses in one subnet the same prefix length"}
			}
		}
	}
	if s.ConfirmTimeout < 0 {
		return &FieldError{Field: "--confirm-timeout", Value: s.ConfirmTimeout.String(), Problem: "is negative", Fix: "use a duration such as 20s"}
	}
	return nil
}

// StableMAC derives a locally administered unicast MAC for a new bridge from
// the host's identity and the bridge name. The kernel would pick a random one
// (and change it when ports come and go); a stable one keeps the persisted
// config, neighbours' caches and DHCP leases valid across re-creation.
func StableMAC(hostID, name string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("vmnet-bridge\x00" + hostID + "\x00" + name))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfc | 0x02 // unicast, locally administered
	return mac
}
