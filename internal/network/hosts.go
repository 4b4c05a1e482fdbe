package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"vmnet/internal/errs"
	"vmnet/internal/valid"
	"vmnet/internal/virt"
)

// Reservation is one DHCP host entry: the guest with MAC gets IP (and Hostname in DNS).
type Reservation struct {
	MAC      string     `json:"mac"` // lower case, colon-separated
	IP       netip.Addr `json:"ip"`
	Hostname string     `json:"hostname,omitempty"`
}

// NotFoundError is returned when a reservation is asked of a network that does not exist.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("libvirt network %q does not exist", e.Name)
}

// Hint tells the user how to proceed.
func (e *NotFoundError) Hint() string {
	return "create it first (vmnet net create " + e.Name + " --mode nat --cidr ...); 'vmnet net list' shows the networks"
}

// ConflictError is returned when a reservation's IP or hostname belongs to another MAC.
type ConflictError struct {
	Network, What, Value, OtherMAC string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("network %q: %s %s is already reserved for MAC %s", e.Network, e.What, e.Value, e.OtherMAC)
}

// Hint tells the user how to proceed.
func (e *ConflictError) Hint() string {
	return "pick another " + e.What + ", or remove the other guest's reservation first"
}

// target is one of the two copies of a network definition a reservation lives in.
type target struct {
	name  string
	read  libvirt.NetworkXMLFlags
	write libvirt.NetworkUpdateFlags
}

var (
	configTarget = target{"persistent config", libvirt.NETWORK_XML_INACTIVE, libvirt.NETWORK_UPDATE_AFFECT_CONFIG}
	liveTarget   = target{"live state", 0, libvirt.NETWORK_UPDATE_AFFECT_LIVE}
)

// targets are the copies of n's definition that exist: the persistent one
// and, while it runs, the live one. Each is checked and updated on its own,
// so a reservation half made by an interrupted run is completed, not refused.
func targets(n Network) ([]target, error) {
	var ts []target
	persistent, err := n.IsPersistent()
	if err != nil {
		return nil, err
	}
	if persistent {
		ts = append(ts, configTarget)
	}
	active, err := n.IsActive()
	if err != nil {
		return nil, err
	}
	if active {
		ts = append(ts, liveTarget)
	}
	return ts, nil
}

// normMAC parses and lower-cases a guest MAC.
func normMAC(mac string) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return "", &FieldError{Field: "MAC", Value: mac, Problem: "is not an Ethernet MAC address",
			Fix: "use six hex bytes with colons, for example 52:54:00:12:34:56"}
	}
	return hw.String(), nil
}

// openForHosts looks up a network that can hold reservations.
func openForHosts(conn Libvirt, network string) (Network, error) {
	n, err := conn.LookupNetwork(network)
	if virt.IsNotFound(err) {
		return nil, &NotFoundError{Name: network}
	}
	if err != nil {
		return nil, fmt.Errorf("look up network %q: %w", network, err)
	}
	return n, nil
}

// AddHost reserves ip (and hostname, which may be empty) for the guest with
// mac on network, in both its persistent and live definition, with
// virNetworkUpdate: no restart, running guests keep their leases. Adding
// the same reservation again changes nothing (changed false); a different
// ip or hostname for the same MAC replaces the old one. An ip or hostname
// reserved for another MAC is refused with a ConflictError.
func AddHost(conn Libvirt, network, mac string, ip netip.Addr, hostname string) (changed bool, err error) {
	mac, err = normMAC(mac)
	if err != nil {
		return false, err
	}
	if hostname != "" && !valid.IsDNSLabel(hostname) {
		return false, &FieldError{Field: "hostname", Value: hostname, Problem: "is not a DNS label",
			Fix: "use 1 to 63 letters, digits and '-', not starting or ending with '-'"}
	}
	n, err := openForHosts(conn, network)
	if err != nil {
		return false, err
	}
	defer n.Free()
	ts, err := targets(n)
	if err != nil {
		return false, fmt.Errorf("network %q: %w", network, err)
	}
	want := libvirtxml.NetworkDHCPHost{MAC: mac, Name: hostname, IP: ip.String()}
	for _, t := range ts {
		def, err := readDef(n, t.read)
		if err != nil {
			return changed, fmt.Errorf("network %q: %w", network, err)
		}
		ipEl, p, ok := ipv4(def)
		if !ok {
			return false, errs.WithHint(fmt.Errorf("network %q has no IPv4 subnet, so no DHCP to reserve %s in (mode %s)", network, ip, modeOf(def)),
				"reserve addresses on a nat or isolated network; on a bridge, configure the guest or the bridge's own DHCP server")
		}
		if !ip.Is4() || !p.Masked().Contains(ip) || ip == p.Addr() || ip == p.Masked().Addr() || ip == broadcast(p) {
			return false, &FieldError{Field: "IP", Value: ip.String(), Problem: fmt.Sprintf("is not a guest address of network %s's subnet %s", network, p.Masked()),
				Fix: fmt.Sprintf("use a host address of %s other than the gateway %s", p.Masked(), p.Addr())}
		}
		cmd := libvirt.NETWORK_UPDATE_COMMAND_ADD_LAST
		if ipEl.DHCP != nil {
			for _, h := range ipEl.DHCP.Hosts {
				hmac, _ := normMAC(h.MAC)
				switch {
				case hmac == mac && h.IP == want.IP && h.Name == want.Name:
					cmd = libvirt.NETWORK_UPDATE_COMMAND_NONE
				case hmac == mac:
					cmd = libvirt.NETWORK_UPDATE_COMMAND_MODIFY // libvirt matches the entry by MAC
				case h.IP == want.IP:
					return changed, &ConflictError{Network: network, What: "IP", Value: want.IP, OtherMAC: h.MAC}
				case hostname != "" && strings.EqualFold(h.Name, hostname):
					return changed, &ConflictError{Network: network, What: "hostname", Value: hostname, OtherMAC: h.MAC}
				}
			}
		}
		if cmd == libvirt.NETWORK_UPDATE_COMMAND_NONE {
			continue
		}
		text, err := want.Marshal()
		if err != nil {
			return changed, err
		}
		if err := n.Update(cmd, libvirt.NETWORK_SECTION_IP_DHCP_HOST, -1, text, t.write); err != nil {
			return changed, fmt.Errorf("network %q: reserve %s for %s in the %s: %s: %w", network, ip, mac, t.name, virt.Message(err), err)
		}
		changed = true
	}
	return changed, nil
}

// RemoveHost drops the reservation of the guest with mac from network, in
// both its persistent and live definition. A reservation or network that
// is already gone is success (changed false).
func RemoveHost(conn Libvirt, network, mac string) (changed bool, err error) {
	mac, err = normMAC(mac)
	if err != nil {
		return false, err
	}
	n, err := openForHosts(conn, network)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer n.Free()
	ts, err := targets(n)
	if err != nil {
		return false, fmt.Errorf("network %q: %w", network, err)
	}
	for _, t := range ts {
		def, err := readDef(n, t.read)
		if err != nil {
			return changed, fmt.Errorf("network %q: %w", network, err)
		}
		ipEl, _, ok := ipv4(def)
		if !ok || ipEl.DHCP == nil {
			continue
		}
		for _, h := range ipEl.DHCP.Hosts {
			if hmac, _ := normMAC(h.MAC); hmac != mac {
				continue
			}
			text, err := h.Marshal()
			if err != nil {
				return changed, err
			}
			if err := n.Update(libvirt.NETWORK_UPDATE_COMMAND_DELETE, libvirt.NETWORK_SECTION_IP_DHCP_HOST, -1, text, t.write); err != nil {
				return changed, fmt.Errorf("network %q: remove the reservation of %s from the %s: %s: %w", network, mac, t.name, virt.Message(err), err)
			}
			changed = true
		}
	}
	return changed, nil
}

// Hosts returns the DHCP reservations in network's persistent (or, for a
// transient network, live) definition.
func Hosts(conn Libvirt, network string) ([]Reservation, error) {
	n, err := openForHosts(conn, network)
	if err != nil {
		return nil, err
	}
	defer n.Free()
	def, err := readDef(n, libvirt.NETWORK_XML_INACTIVE)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", network, err)
	}
	out := []Reservation{}
	if ipEl, _, ok := ipv4(def); ok && ipEl.DHCP != nil {
		for _, h := range ipEl.DHCP.Hosts {
			mac, _ := normMAC(h.MAC)
			a, _ := netip.ParseAddr(h.IP)
			out = append(out, Reservation{MAC: mac, IP: a, Hostname: h.Name})
		}
	}
	return out, nil
}

// Leases returns the current DHCP leases of network: lower-case MAC → IP.
func Leases(conn Libvirt, network string) (map[string]netip.Addr, error) {
	n, err := openForHosts(conn, network)
	if err != nil {
		return nil, err
	}
	defer n.Free()
	leases, err := n.DHCPLeases()
	if err != nil {
		return nil, fmt.Errorf("network %q: read DHCP leases: %s: %w", network, virt.Message(err), err)
	}
	out := map[string]netip.Addr{}
	for _, l := range leases {
		mac, err := normMAC(l.Mac)
		if err != nil {
			continue // an IPv6 lease keyed by DUID has no MAC
		}
		if a, err := netip.ParseAddr(l.IPaddr); err == nil {
			out[mac] = a
		}
	}
	return out, nil
}
