package bridge

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"time"

	"vmnet/internal/errs"
	"vmnet/internal/ownership"
	"vmnet/internal/valid"
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
	// Lab is the lab that makes the bridge ("" for none), written into the
	// ownership alias (lab=NAME) so the lab's down finds it. Only a bridge
	// Ensure creates gets it: a bridge that existed before the lab is not
	// the lab's, and Ensure keeps its tag (or none) as it is.
	Lab string

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
	MinMTU     = 68 // IPv4 minimum (RFC 791)
	MaxMTU     = 65535
	minMTUIPv6 = 1280 // IPv6 minimum (RFC 8200)
)

// FieldError is errs.FieldError, the one field error of vmnet, under the
// name this package's code and tests have always used.
type FieldError = errs.FieldError

// ErrInvalid is errs.ErrInvalid; every FieldError matches it.
var ErrInvalid = errs.ErrInvalid

// ValidateName checks an interface name; it is valid.InterfaceName.
func ValidateName(field, name string) error { return valid.InterfaceName(field, name) }

// ParseAddress parses an interface address in CIDR form; it is valid.ParseAddress.
func ParseAddress(s string) (netip.Prefix, error) { return valid.ParseAddress(s) }

// ParseMAC parses a unicast Ethernet MAC address; it is valid.ParseMAC.
func ParseMAC(s string) (net.HardwareAddr, error) { return valid.ParseMAC(s) }

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
	if err := ownership.CheckLab("lab", s.Lab); err != nil {
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
