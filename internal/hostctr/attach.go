package hostctr

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Attach gives the container whose init process is pid its interface on
// s.Bridge, all with netlink: host is the namespace the bridge is in.
// veth: 'ip link add HOSTLINK type veth peer name TMP', HOSTLINK a port of
// the bridge and up, TMP moved into the container's namespace; macvlan and
// ipvlan: TMP a child of the bridge, moved. Inside, TMP becomes eth0 with
// s.Address, up, and a default route via s.Gateway ('ip addr replace',
// 'ip route replace default via'). An interface that is there already is
// converged, so Attach may run again on the same container.
func Attach(host *netlink.Handle, s Spec, pid int) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("%s: namespace of pid %d: %w", s, pid, err)
	}
	defer ns.Close()
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("%s: netlink in its namespace: %w", s, err)
	}
	defer in.Close()
	if _, err := in.LinkByName(Guest); err != nil {
		if err := makeLink(host, s, ns); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	} else if err := reattach(host, s); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	if err := configure(in, s); err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}

// makeLink makes the container's link on the host and moves its inner end
// into ns, where it is renamed eth0.
func makeLink(host *netlink.Handle, s Spec, ns netns.NsHandle) error {
	br, err := host.LinkByName(s.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", s.Bridge, err)
	}
	if l, err := host.LinkByName(s.tmpLink()); err == nil {
		_ = host.LinkDel(l) // a half-made link of an earlier, killed up
	}
	attrs := netlink.LinkAttrs{Name: s.tmpLink(), ParentIndex: br.Attrs().Index, MTU: br.Attrs().MTU}
	var link netlink.Link
	switch s.Mode {
	case "macvlan":
		link = &netlink.Macvlan{LinkAttrs: attrs, Mode: netlink.MACVLAN_MODE_BRIDGE}
	case "ipvlan":
		link = &netlink.IPVlan{LinkAttrs: attrs, Mode: netlink.IPVLAN_MODE_L2}
	default:
		if err := addVeth(host, s, br); err != nil {
			return err
		}
	}
	if link != nil {
		if err := host.LinkAdd(link); err != nil {
			return fmt.Errorf("ip link add %s link %s type %s: %w", s.tmpLink(), s.Bridge, s.Mode, err)
		}
	}
	inner, err := host.LinkByName(s.tmpLink())
	if err != nil {
		return err
	}
	if err := host.LinkSetNsFd(inner, int(ns)); err != nil {
		_ = host.LinkDel(inner)
		return fmt.Errorf("move %s into the container: %w", s.tmpLink(), err)
	}
	return nil
}

// addVeth makes the veth pair, its host end a port of br and up.
func addVeth(host *netlink.Handle, s Spec, br netlink.Link) error {
	if l, err := host.LinkByName(s.HostLink()); err == nil {
		_ = host.LinkDel(l) // its peer is not in this container: a stale pair
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: s.HostLink(), MTU: br.Attrs().MTU}, PeerName: s.tmpLink()}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("ip link add %s type veth peer name %s: %w", s.HostLink(), s.tmpLink(), err)
	}
	l, err := host.LinkByName(s.HostLink())
	if err == nil {
		err = host.LinkSetMaster(l, br)
	}
	if err == nil {
		err = host.LinkSetUp(l)
	}
	if err != nil {
		_ = host.LinkDel(veth)
		return fmt.Errorf("put %s into bridge %s: %w", s.HostLink(), s.Bridge, err)
	}
	return nil
}

// configure names the inner end eth0 and gives it its address, lo and
// eth0 up, and the default route.
func configure(in *netlink.Handle, s Spec) error {
	l, err := in.LinkByName(Guest)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		if l, err = in.LinkByName(s.tmpLink()); err == nil {
			err = in.LinkSetName(l, Guest)
		}
	}
	if err != nil {
		return fmt.Errorf("rename its link to %s: %w", Guest, err)
	}
	if lo, err := in.LinkByName("lo"); err == nil {
		if err := in.LinkSetUp(lo); err != nil {
			return err
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: s.Address.Addr().AsSlice(), Mask: net.CIDRMask(s.Address.Bits(), s.Address.Addr().BitLen())}}
	if err := in.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("ip addr replace %s dev %s: %w", s.Address, Guest, err)
	}
	if err := in.LinkSetUp(l); err != nil {
		return fmt.Errorf("ip link set %s up: %w", Guest, err)
	}
	if !s.Gateway.IsValid() {
		return nil
	}
	route := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: s.Gateway.AsSlice()}
	if err := in.RouteReplace(route); err != nil {
		return fmt.Errorf("ip route replace default via %s: %w", s.Gateway, err)
	}
	return nil
}

// DropLinks removes the host-side links of lab's container node, when an
// up killed between making them and moving the inner end left them in
// host ('ip link del'); a link that is gone is fine. A veth whose peer is
// in a container goes with the container's namespace by itself.
func DropLinks(host *netlink.Handle, labName, node string) error {
	s := Spec{Lab: labName, Node: node}
	for _, name := range []string{s.HostLink(), s.tmpLink()} {
		l, err := host.LinkByName(name)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			continue
		}
		if err == nil {
			err = host.LinkDel(l)
		}
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("ip link del %s: %w", name, err)
		}
	}
	return nil
}

// reattach makes a running veth container's host end a port of its bridge
// and up again ('ip link set HOSTLINK master BRIDGE up'): a bridge removed
// and made again has lost it.
func reattach(host *netlink.Handle, s Spec) error {
	if s.Mode != "" && s.Mode != "veth" {
		return nil // a macvlan or ipvlan child goes with its parent, and Attach then makes a new one
	}
	l, err := host.LinkByName(s.HostLink())
	if err != nil {
		return fmt.Errorf("its veth's host end %s: %w", s.HostLink(), err)
	}
	br, err := host.LinkByName(s.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", s.Bridge, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := host.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("ip link set %s master %s: %w", s.HostLink(), s.Bridge, err)
		}
	}
	return host.LinkSetUp(l)
}
