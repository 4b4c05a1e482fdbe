package vm

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"vmnet/internal/network"
	"vmnet/internal/vmspec"
)

// checkAddresses refuses, before anything changes, a static NIC address
// that does not belong on its link: outside the subnet of its bridge or
// network, its network or broadcast address, inside the network's DHCP
// pool, or held by the host there or by another VM (vmspec.CheckStatic).
// A guest given the host's address boots with a duplicate address, and a
// check from the host to it only pings the host itself.
//
// It looks at what is there now: the bridge's addresses (netlink in
// libvirtd's namespace), the network's <ip> and DHCP <host> entries, the
// other VMs' records; and, for a bridge or network that does not exist yet,
// at what the spec's requires would make.
func checkAddresses(e Env, spec vmspec.Spec) error {
	var others []record
	var errs vmspec.Errors
	for i, n := range spec.NICs {
		if !n.Address.IsValid() || !n.Direct.IsZero() {
			continue // a macvtap NIC's link is the parent's, outside vmnet's knowledge
		}
		if others == nil {
			var err error
			if others, err = otherRecords(e.StateDir, spec.Name); err != nil {
				return err
			}
		}
		var l vmspec.AddrLink
		var err error
		if n.Bridge != "" {
			l, err = bridgeLink(e, spec, n.Bridge, n.Address.Addr())
		} else {
			l, err = networkLink(e, spec, n.Network, n.Address.Addr())
		}
		if err != nil {
			return err
		}
		for _, o := range others {
			for j, on := range o.NICs {
				if (n.Bridge != "" && on.Bridge == n.Bridge) || (n.Network != "" && on.Network == n.Network) {
					for _, a := range []netip.Addr{on.Static.Addr(), on.Reserved} {
						if a.IsValid() {
							l.Holders = append(l.Holders, vmspec.AddrHolder{Addr: a, Who: fmt.Sprintf("VM %s's NIC eth%d", o.Name, j)})
						}
					}
				}
			}
		}
		if n.Network != "" {
			hs, err := reservations(e, spec, n.Network, others)
			if err != nil {
				return err
			}
			l.Holders = append(l.Holders, hs...)
		}
		for j, o := range spec.NICs {
			if j != i && o.Address.IsValid() && o.Bridge == n.Bridge && o.Network == n.Network {
				l.Holders = append(l.Holders, vmspec.AddrHolder{Addr: o.Address.Addr(), Who: fmt.Sprintf("this VM's nics[%d].address", j)})
			}
		}
		if fe := vmspec.CheckStatic(fmt.Sprintf("nics[%d].address", i), n.Address, l); fe != nil {
			errs = append(errs, fe)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// bridgeLink is a Linux bridge as the address check sees it, for a NIC
// address addr: the host's addresses on it now, or the one the spec's
// requires would give it.
func bridgeLink(e Env, spec vmspec.Spec, name string, addr netip.Addr) (vmspec.AddrLink, error) {
	l := vmspec.AddrLink{Name: "bridge " + name}
	who := "the host's address on " + name
	link, err := e.Bridges.LinkByName(name)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		for _, b := range spec.Requires.Bridges {
			if b.Name == name && b.Address.IsValid() {
				l.Subnet = b.Address.Masked()
				l.Holders = append(l.Holders, vmspec.AddrHolder{Addr: b.Address.Addr(), Who: who})
			}
		}
		return l, nil
	case err != nil:
		return l, fmt.Errorf("read bridge %s: %w", name, err)
	}
	addrs, err := e.Bridges.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return l, fmt.Errorf("list the addresses of %s: %w", name, err)
	}
	var host []netip.Prefix
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			ones, _ := a.Mask.Size()
			host = append(host, netip.PrefixFrom(ip.Unmap(), ones))
			l.Holders = append(l.Holders, vmspec.AddrHolder{Addr: ip.Unmap(), Who: who})
		}
	}
	l.Subnet = pickSubnet(host, addr)
	return l, nil
}

// pickSubnet is the host's prefix that contains the NIC's address a, else
// the first of a's family that is not link-local; invalid when there is none.
func pickSubnet(host []netip.Prefix, a netip.Addr) netip.Prefix {
	var first netip.Prefix
	for _, p := range host {
		if p.Addr().BitLen() != a.BitLen() || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if p.Masked().Contains(a) {
			return p.Masked()
		}
		if !first.IsValid() {
			first = p.Masked()
		}
	}
	return first
}

// networkLink is a libvirt network as the address check sees it: its <ip>
// (the host's address and subnet) and DHCP pool, or what the spec's requires
// would make. A bridge-mode network is its Linux bridge.
func networkLink(e Env, spec vmspec.Spec, name string, addr netip.Addr) (vmspec.AddrLink, error) {
	l := vmspec.AddrLink{Name: "network " + name}
	who := "the host's address on network " + name
	in, err := networkInfo(e.Conn, name)
	var nf *network.NotFoundError
	switch {
	case errors.As(err, &nf):
		for _, r := range spec.Requires.Networks {
			if r.Name == name && r.CIDR.IsValid() {
				l.Subnet, l.Pool = r.CIDR.Masked(), network.DefaultDHCPRange(r.CIDR)
				l.Holders = append(l.Holders, vmspec.AddrHolder{Addr: network.Gateway(r.CIDR), Who: who})
			}
		}
		return l, nil
	case err != nil:
		return l, err
	}
	if in.CIDR == "" && in.Bridge != "" {
		bl, err := bridgeLink(e, vmspec.Spec{}, in.Bridge, addr)
		bl.Name = fmt.Sprintf("network %s (bridge %s)", name, in.Bridge)
		return bl, err
	}
	if p, err := netip.ParsePrefix(in.CIDR); err == nil {
		l.Subnet = p
	}
	if gw, err := netip.ParseAddr(in.Gateway); err == nil {
		l.Holders = append(l.Holders, vmspec.AddrHolder{Addr: gw, Who: who})
	}
	if start, end, ok := strings.Cut(in.DHCPRange, "-"); ok {
		a, errA := netip.ParseAddr(start)
		b, errB := netip.ParseAddr(end)
		if errA == nil && errB == nil {
			l.Pool = [2]netip.Addr{a, b}
		}
	}
	return l, nil
}

// reservations are the DHCP <host> entries of network name that are not
// this VM's own (vmnet names its reservations after the VM).
func reservations(e Env, spec vmspec.Spec, name string, others []record) ([]vmspec.AddrHolder, error) {
	hosts, err := e.Conn.Hosts(name)
	var nf *network.NotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	byMAC := map[string]string{}
	for _, o := range others {
		for j, n := range o.NICs {
			byMAC[strings.ToLower(n.MAC)] = fmt.Sprintf("VM %s's NIC eth%d", o.Name, j)
		}
	}
	var out []vmspec.AddrHolder
	for _, h := range hosts {
		if h.Hostname == spec.Name || !h.IP.IsValid() {
			continue
		}
		who := byMAC[h.MAC]
		if who == "" {
			who = fmt.Sprintf("the DHCP reservation of %s", h.MAC)
			if h.Hostname != "" {
				who += " (" + h.Hostname + ")"
			}
			who += " on network " + name
		}
		out = append(out, vmspec.AddrHolder{Addr: h.IP, Who: who})
	}
	return out, nil
}

// otherRecords are the records of every VM but name under stateDir.
func otherRecords(stateDir, name string) ([]record, error) {
	dirs, err := os.ReadDir(filepath.Join(stateDir, "vms"))
	if errors.Is(err, os.ErrNotExist) {
		return []record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the other VMs' records: %w", err)
	}
	out := []record{}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == name {
			continue
		}
		r, ok, err := readRecord(filepath.Join(stateDir, "vms", d.Name()))
		if err != nil {
			return nil, err
		}
		if ok && r.Name != name {
			out = append(out, r)
		}
	}
	return out, nil
}
