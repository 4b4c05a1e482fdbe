// Package persist renders and writes the host's own network configuration for
// a vmnet bridge, so that the bridge vmnet made live with netlink comes back
// after a reboot. Each backend (systemd-networkd, NetworkManager, netplan,
// ifupdown) has a pure renderer; one atomic writer puts the files in place and
// never overwrites or deletes a file that vmnet did not write.
package persist

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Backend names a tool that manages the host's network configuration.
type Backend string

// The backends vmnet can write configuration for.
const (
	None           Backend = "none"
	Auto           Backend = "auto"
	Networkd       Backend = "networkd"
	NetworkManager Backend = "networkmanager"
	Netplan        Backend = "netplan"
	Ifupdown       Backend = "ifupdown"
)

// Bridge is everything the persisted configuration must recreate at boot.
type Bridge struct {
	Name          string
	MAC           net.HardwareAddr // pinned so a reboot (and DHCP) sees the same bridge
	Addresses     []netip.Prefix   // static addresses, IPv4 and IPv6
	DHCP4         bool             // the address came from DHCP (an uplink's dynamic address)
	Gateway4      netip.Addr       // default route via this IPv4 gateway, if valid
	Gateway6      netip.Addr       // default route via this IPv6 gateway, if valid
	MTU           int              // 0 keeps the kernel's default
	STP           bool
	VLANFiltering bool
	Uplink        string // NIC enslaved to the bridge; "" when none
}

// File is one configuration file to write. Path is absolute as seen on the
// target system (for example /etc/netplan/60-vmnet-br0.yaml); writers join it
// to their root directory.
type File struct {
	Path    string
	Mode    uint32 // permission bits, applied regardless of umask
	Content []byte
}

// Found is one of vmnet's persistence files on disk, as Find reports it.
type Found struct {
	Backend Backend
	Path    string // absolute as seen on the target system, without the root
}

// Backends lists the values ParseBackend accepts, in the order help text shows them.
func Backends() []Backend {
	return []Backend{Auto, None, Networkd, NetworkManager, Netplan, Ifupdown}
}

// ParseBackend reads a --persist flag value. It accepts the Backend names and
// the spellings people commonly use for them (systemd-networkd, NetworkManager, nm).
func ParseBackend(s string) (Backend, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return Auto, nil
	case "none", "off":
		return None, nil
	case "networkd", "systemd-networkd":
		return Networkd, nil
	case "networkmanager", "nm":
		return NetworkManager, nil
	case "netplan":
		return Netplan, nil
	case "ifupdown", "interfaces":
		return Ifupdown, nil
	}
	return "", fmt.Errorf("unknown persistence backend %q: valid values are %s", s, backendList())
}

func backendList() string {
	var names []string
	for _, b := range Backends() {
		names = append(names, string(b))
	}
	return strings.Join(names, ", ")
}

// The directories each backend reads; vmnet writes, finds and removes its
// files only here, which also keeps a bad File.Path from escaping them.
const (
	networkdDir = "/etc/systemd/network"
	nmDir       = "/etc/NetworkManager/system-connections"
	netplanDir  = "/etc/netplan"
	ifupdownDir = "/etc/network/interfaces.d"
)

// backendOfDir maps a directory from the list above to its backend.
func backendOfDir(dir string) (Backend, bool) {
	switch dir {
	case networkdDir:
		return Networkd, true
	case nmDir:
		return NetworkManager, true
	case netplanDir:
		return Netplan, true
	case ifupdownDir:
		return Ifupdown, true
	}
	return "", false
}

// managedDirs is every directory vmnet may keep files in, in a fixed order.
func managedDirs() []string {
	return []string{networkdDir, nmDir, netplanDir, ifupdownDir}
}
