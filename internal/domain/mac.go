package domain

import (
	"crypto/sha256"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// MACPrefix is QEMU's OUI (52:54:00), which libvirt also uses for the NICs
// it numbers itself; tools recognise these MACs as virtual NICs.
var MACPrefix = [3]byte{0x52, 0x54, 0x00}

// MAC derives the MAC of NIC index of VM vmName: 52:54:00 plus three bytes
// of sha256(vmName, index). Stable across runs, so DHCP leases, ARP caches
// and the guest's interface names survive re-creation of the VM.
func MAC(vmName string, index int) net.HardwareAddr {
	sum := sha256.Sum256([]byte("vmnet-nic\x00" + vmName + "\x00" + strconv.Itoa(index)))
	return net.HardwareAddr{MACPrefix[0], MACPrefix[1], MACPrefix[2], sum[0], sum[1], sum[2]}
}

// MACClashError says a NIC's MAC is already used by another domain, or by
// another NIC of the same VM.
type MACClashError struct {
	VM     string
	NIC    int
	MAC    string
	Domain string // the other domain; VM itself for a clash between its own NICs
	Other  int    // the other NIC's index when Domain == VM
}

func (e *MACClashError) Error() string {
	if e.Domain == e.VM {
		return fmt.Sprintf("VM %q: nics[%d] and nics[%d] both have MAC %s", e.VM, e.Other, e.NIC, e.MAC)
	}
	return fmt.Sprintf("VM %q: nics[%d] MAC %s is already used by domain %q", e.VM, e.NIC, e.MAC, e.Domain)
}

// Hint says how to give the NIC another MAC.
func (e *MACClashError) Hint() string {
	return fmt.Sprintf("set nics[%d].mac in the spec to an unused address (for example %s), or rename the VM",
		e.NIC, MAC(e.VM+"-"+e.Domain, e.NIC))
}

// CheckMACs refuses a plan whose NIC MACs clash with each other or with the
// NICs of other domains. existing maps a MAC (any case) to the domain that
// has it; the plan's own domain is skipped, so re-planning a defined VM is
// not a clash.
func CheckMACs(p Plan, existing map[string]string) error {
	norm := make(map[string]string, len(existing))
	keys := make([]string, 0, len(existing))
	for mac := range existing {
		keys = append(keys, mac)
	}
	sort.Strings(keys) // deterministic choice when two spellings of a MAC exist
	for _, mac := range keys {
		norm[strings.ToLower(mac)] = existing[mac]
	}
	seen := map[string]int{}
	for i, n := range p.NICs {
		mac := n.MAC.String()
		if j, ok := seen[mac]; ok {
			return &MACClashError{VM: p.Name, NIC: i, MAC: mac, Domain: p.Name, Other: j}
		}
		seen[mac] = i
		if other, ok := norm[mac]; ok && other != p.Name {
			return &MACClashError{VM: p.Name, NIC: i, MAC: mac, Domain: other}
		}
	}
	return nil
}
