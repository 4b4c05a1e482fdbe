// Package bridge creates, converges, lists and deletes Linux bridges through
// netlink, takes over an uplink NIC with automatic rollback, and keeps the
// host's own network configuration in step so the bridge survives a reboot.
package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vmnet/internal/errs"
)

// aliasPrefix marks a bridge as vmnet's: it is written to the link's alias
// (ip link set BR alias ...), so ownership lives on the object itself and a
// later run, or a run after a crash, finds it without any state file. Tags
// follow it as KEY=VALUE fields: uplink=NIC (an uplink takeover) and
// lab=NAME (the lab that made the bridge), in any order.
const aliasPrefix = "vmnet-managed"

// ErrNotFound is returned when a link does not exist.
var ErrNotFound = errors.New("not found")

// State is a bridge as the kernel reports it.
type State struct {
	Name          string           `json:"name"`
	Index         int              `json:"-"`
	MAC           net.HardwareAddr `json:"-"`
	MTU           int              `json:"mtu"`
	Up            bool             `json:"up"`
	OperState     string           `json:"state"`
	STP           bool             `json:"stp"`
	VLANFiltering bool             `json:"vlan_filtering"`
	Addresses     []netip.Prefix   `json:"addresses"`
	Ports         []string         `json:"ports"`
	Managed       bool             `json:"managed"`          // vmnet's alias is on the link
	Uplink        string           `json:"uplink,omitempty"` // recorded in the alias at takeover
	Lab           string           `json:"lab,omitempty"`    // the lab that made it, recorded in the alias

	alias string // the link's alias as read
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// alias renders the ownership alias for a bridge: the prefix, then the
// uplink and the lab when there are (ownership.CheckLab keeps spaces and
// '=' out of a lab; an interface name has neither).
func alias(uplink, lab string) string {
	a := aliasPrefix
	if uplink != "" {
		a += " uplink=" + uplink
	}
	if lab != "" {
		a += " lab=" + lab
	}
	return a
}

// parseAlias reports whether an alias is vmnet's and which uplink and lab
// it records, whatever the order of the tags; unknown tags are skipped (a
// newer vmnet's), and a foreign alias records nothing.
func parseAlias(a string) (managed bool, uplink, lab string) {
	fields := strings.Fields(a)
	if len(fields) == 0 || fields[0] != aliasPrefix {
		return false, "", ""
	}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "uplink":
			uplink = v
		case "lab":
			lab = v
		}
	}
	return true, uplink, lab
}

// userAddresses lists the addresses a user manages on a link: global and
// site scope, without the IPv6 link-local address the kernel adds itself.
func userAddresses(k Kernel, link netlink.Link) ([]netlink.Addr, error) {
	all, err := k.AddrList(link, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %q: %w", link.Attrs().Name, err)
	}
	var out []netlink.Addr
	for _, a := range all {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap().IsLinkLocalUnicast() || a.Scope == unix.RT_SCOPE_HOST {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

func toPrefix(a netlink.Addr) netip.Prefix {
	ip, _ := netip.AddrFromSlice(a.IP)
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones)
}

func toAddr(p netip.Prefix) *netlink.Addr {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}}
}

// Inspect reads a bridge's state. It returns ErrNotFound when no link has the
// name, and an error naming the kind when the link is not a bridge.
func Inspect(k Kernel, name string) (*State, error) {
	link, err := k.LinkByName(name)
	if isNotFound(err) {
		return nil, fmt.Errorf("bridge %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("look up %q: %w", name, err)
	}
	br, ok := link.(*netlink.Bridge)
	if !ok {
		return nil, &NotBridgeError{Name: name, Kind: link.Type()}
	}
	return inspect(k, br)
}

func inspect(k Kernel, br *netlink.Bridge) (*State, error) {
	a := br.Attrs()
	st := &State{
		Name:      a.Name,
		Index:     a.Index,
		MAC:       a.HardwareAddr,
		MTU:       a.MTU,
		Up:        a.Flags&net.FlagUp != 0,
		OperState: a.OperState.String(),
	}
	st.alias = a.Alias
	st.Managed, st.Uplink, st.Lab = parseAlias(a.Alias)
	if br.VlanFiltering != nil {
		st.VLANFiltering = *br.VlanFiltering
	}
	stp, err := k.STP(a.Index)
	if err != nil {
		return nil, err
	}
	st.STP = stp
	addrs, err := userAddresses(k, br)
	if err != nil {
		return nil, err
	}
	for _, ad := range addrs {
		st.Addresses = append(st.Addresses, toPrefix(ad))
	}
	sortPrefixes(st.Addresses)
	links, err := k.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == a.Index {
			st.Ports = append(st.Ports, l.Attrs().Name)
		}
	}
	slices.Sort(st.Ports)
	return st, nil
}

// List returns every bridge in the namespace, vmnet's and others'.
func List(k Kernel) ([]State, error) {
	links, err := k.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []State
	for _, l := range links {
		br, ok := l.(*netlink.Bridge)
		if !ok {
			continue
		}
		st, err := inspect(k, br)
		if err != nil {
			return nil, err
		}
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}

// NotBridgeError reports a link that exists under the wanted name but is not a bridge.
type NotBridgeError struct {
	Name string
	Kind string
}

func (e *NotBridgeError) Error() string {
	return fmt.Sprintf("link %q exists but is a %s, not a bridge", e.Name, e.Kind)
}

// Hint tells the user how to proceed.
func (e *NotBridgeError) Hint() string {
	return fmt.Sprintf("choose another bridge name, or remove the %s yourself (ip link del %s) if it is not needed", e.Kind, e.Name)
}

// foreign is the error for a bridge that vmnet did not create.
func foreign(name string) error {
	return &errs.ForeignError{Kind: "bridge", Name: name,
		Fix: "choose another name, or manage that bridge with the tool that made it (ip, libvirt, NetworkManager...)"}
}
