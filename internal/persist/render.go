package persist

import (
	"crypto/sha1"
	"fmt"
	"net/netip"
)

// Render returns the configuration files that make backend b recreate br at
// boot. It is pure: it reads nothing from the host. None renders no files;
// Auto must be resolved with Detect first.
//
// Choices shared by all backends (each backend's file says how it spells them):
//   - A bridge without an uplink is a lab segment whose other side is VMs, so
//     it does not accept IPv6 router advertisements: a guest running a router
//     daemon must not be able to move the host's default route. Without a
//     static IPv6 address it keeps only its kernel link-local address, which is
//     what the live bridge made with netlink has.
//   - A bridge with an uplink takes over the NIC's place on the LAN, so it does
//     what a NIC does there by default: accept router advertisements (SLAAC).
//   - The uplink NIC gets no addresses of its own and, when MTU is set, the
//     same MTU, because a bridge cannot pass frames larger than its ports do.
//   - Gateway4 needs an IPv4 address or DHCP4 on the bridge to be reachable;
//     Gateway6 is reachable through the link-local address, so it needs none.
func Render(b Backend, br Bridge) ([]File, error) {
	switch b {
	case None:
		return nil, nil
	case Auto:
		return nil, fmt.Errorf("backend %q must be resolved with Detect before rendering", b)
	case Networkd, NetworkManager, Netplan, Ifupdown:
	default:
		return nil, fmt.Errorf("unknown persistence backend %q: valid values are %s", b, backendList())
	}
	p, err := newPlan(br)
	if err != nil {
		return nil, err
	}
	switch b {
	case Networkd:
		return renderNetworkd(p), nil
	case NetworkManager:
		return renderNetworkManager(p), nil
	case Netplan:
		return renderNetplan(p)
	default:
		return renderIfupdown(p), nil
	}
}

// plan is a validated Bridge with the derived facts every renderer needs, so
// that the four renderers cannot disagree on them.
type plan struct {
	Bridge
	mac   string         // lower-case colon form
	addr4 []netip.Prefix // static IPv4 addresses, in input order
	addr6 []netip.Prefix // static IPv6 addresses, in input order
	gw4   netip.Addr     // zero when none
	gw6   netip.Addr     // zero when none
	lab   bool           // no uplink: do not accept router advertisements
}

func newPlan(br Bridge) (*plan, error) {
	if err := checkIfName(br.Name); err != nil {
		return nil, fmt.Errorf("Name: %w", err)
	}
	if br.Uplink != "" {
		if err := checkIfName(br.Uplink); err != nil {
			return nil, fmt.Errorf("Uplink: %w", err)
		}
		if br.Uplink == br.Name {
			return nil, fmt.Errorf("Uplink: %q is the bridge itself", br.Uplink)
		}
	}
	switch {
	case len(br.MAC) == 0:
		return nil, fmt.Errorf("MAC: missing; the bridge's address must be pinned so it survives a reboot")
	case len(br.MAC) != 6:
		return nil, fmt.Errorf("MAC: %q is not a 48-bit Ethernet address", br.MAC)
	case br.MAC[0]&1 == 1:
		return nil, fmt.Errorf("MAC: %s is a multicast address; a bridge needs a unicast one", br.MAC)
	case string(br.MAC) == "\x00\x00\x00\x00\x00\x00":
		return nil, fmt.Errorf("MAC: %s is the all-zero address", br.MAC)
	}
	if br.MTU < 0 || br.MTU > 65535 || br.MTU > 0 && br.MTU < 68 {
		return nil, fmt.Errorf("MTU: %d is outside 68..65535 (0 keeps the kernel default)", br.MTU)
	}
	p := &plan{Bridge: br, mac: br.MAC.String(), lab: br.Uplink == ""}
	for i, a := range br.Addresses {
		switch {
		case !a.IsValid():
			return nil, fmt.Errorf("Addresses[%d]: invalid prefix", i)
		case a.Addr().Is4In6() || a.Addr().Zone() != "":
			return nil, fmt.Errorf("Addresses[%d]: %s: use a plain IPv4 or IPv6 address", i, a)
		case a.Addr().IsUnspecified() || a.Addr().IsMulticast() || a.Addr().IsLoopback():
			return nil, fmt.Errorf("Addresses[%d]: %s cannot be an interface address", i, a)
		case a.Addr().Is4():
			p.addr4 = append(p.addr4, a)
		default:
			p.addr6 = append(p.addr6, a)
		}
	}
	if br.Gateway4.IsValid() {
		if err := checkGateway(br.Gateway4, true); err != nil {
			return nil, fmt.Errorf("Gateway4: %w", err)
		}
		if len(p.addr4) == 0 && !br.DHCP4 {
			return nil, fmt.Errorf("Gateway4: %s is unreachable: the bridge has no IPv4 address and DHCP4 is off", br.Gateway4)
		}
		p.gw4 = br.Gateway4
	}
	if br.Gateway6.IsValid() {
		if err := checkGateway(br.Gateway6, false); err != nil {
			return nil, fmt.Errorf("Gateway6: %w", err)
		}
		p.gw6 = br.Gateway6
	}
	return p, nil
}

func checkGateway(a netip.Addr, want4 bool) error {
	switch {
	case a.Is4() != want4:
		return fmt.Errorf("%s is of the wrong address family", a)
	case a.Zone() != "":
		return fmt.Errorf("%s: a zone is implied by the bridge; leave it out", a)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		return fmt.Errorf("%s cannot be a gateway", a)
	}
	return nil
}

// stableUUID derives an RFC 4122 version-5 style UUID from name, so that
// re-rendering a keyfile gives the same connection UUID and NetworkManager sees
// the same profile rather than a new one after every vmnet run.
func stableUUID(name string) string {
	// A fixed namespace for vmnet, chosen at random once; it must never change.
	ns := [16]byte{0xf6, 0x1c, 0xff, 0x16, 0xe7, 0x6e, 0x48, 0x9a, 0xb3, 0xf4, 0x81, 0x1d, 0x40, 0x33, 0xfa, 0x3a}
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// addrString is a.String() for a set address and "" for the zero Addr, which
// String would spell "invalid IP".
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
