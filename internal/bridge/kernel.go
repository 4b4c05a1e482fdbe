package bridge

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vmnet/internal/nsdo"
)

// Kernel is the part of the kernel's network API that bridge management
// needs. *Handle implements it over netlink in one network namespace; tests
// wrap it to inject a failure at a chosen step.
type Kernel interface {
	LinkByName(name string) (netlink.Link, error)
	LinkByIndex(index int) (netlink.Link, error)
	LinkList() ([]netlink.Link, error)
	LinkAdd(link netlink.Link) error
	LinkDel(link netlink.Link) error
	LinkSetUp(link netlink.Link) error
	LinkSetMTU(link netlink.Link, mtu int) error
	LinkSetHardwareAddr(link netlink.Link, hw net.HardwareAddr) error
	LinkSetMaster(link, master netlink.Link) error
	LinkSetNoMaster(link netlink.Link) error
	LinkSetAlias(link netlink.Link, alias string) error
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrAdd(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error)
	RouteAdd(route *netlink.Route) error
	RouteDel(route *netlink.Route) error
	BridgeSetVlanFiltering(link netlink.Link, on bool) error
	// STP reads the bridge's spanning-tree state (ip -d link show BR).
	STP(index int) (bool, error)
	// SetSTP turns spanning tree on or off (ip link set BR type bridge stp_state N).
	SetSTP(index int, on bool) error
	// Do runs fn on an OS thread inside the handle's network namespace, for
	// work that needs a socket there (the gateway probe).
	Do(fn func() error) error
}

// Handle is the real Kernel: netlink in one network namespace.
type Handle struct {
	*netlink.Handle
	ns netns.NsHandle
}

var _ Kernel = (*Handle)(nil)

// Open returns a handle for the network namespace ns; pass netns.None() for
// the namespace vmnet runs in.
func Open(ns netns.NsHandle) (*Handle, error) {
	if !ns.IsOpen() {
		cur, err := netns.Get()
		if err != nil {
			return nil, fmt.Errorf("open current network namespace: %w", err)
		}
		ns = cur
	} else {
		dup, err := unix.Dup(int(ns))
		if err != nil {
			return nil, fmt.Errorf("duplicate network namespace handle: %w", err)
		}
		ns = netns.NsHandle(dup)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &Handle{Handle: h, ns: ns}, nil
}

// Close releases the netlink sockets and the namespace handle.
func (h *Handle) Close() {
	h.Handle.Close()
	h.ns.Close()
}

// Do runs fn on an OS thread inside the handle's network namespace
// (nsdo.Do): the caller's thread never changes namespace.
func (h *Handle) Do(fn func() error) error { return nsdo.Do(h.ns, fn) }

// STP reads IFLA_BR_STP_STATE, which vishvananda/netlink does not parse.
func (h *Handle) STP(index int) (bool, error) {
	var on bool
	err := h.Do(func() error {
		req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(index)
		req.AddData(msg)
		msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return errors.New("no answer")
		}
		attrs, err := nl.ParseRouteAttr(msgs[0][unix.SizeofIfInfomsg:])
		if err != nil {
			return err
		}
		for _, a := range attrs {
			if a.Attr.Type != unix.IFLA_LINKINFO {
				continue
			}
			infos, err := nl.ParseRouteAttr(a.Value)
			if err != nil {
				return err
			}
			for _, info := range infos {
				if info.Attr.Type != unix.IFLA_INFO_DATA {
					continue
				}
				data, err := nl.ParseRouteAttr(info.Value)
				if err != nil {
					return err
				}
				for _, d := range data {
					if d.Attr.Type == nl.IFLA_BR_STP_STATE && len(d.Value) >= 4 {
						on = nl.NativeEndian().Uint32(d.Value[:4]) != 0
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read STP state of link %d: %w", index, err)
	}
	return on, nil
}

// SetSTP sets IFLA_BR_STP_STATE with an RTM_NEWLINK on the existing bridge.
func (h *Handle) SetSTP(index int, on bool) error {
	err := h.Do(func() error {
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(index)
		req.AddData(msg)
		linkInfo := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		linkInfo.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
		data := linkInfo.AddRtAttr(nl.IFLA_INFO_DATA, nil)
		state := uint32(0)
		if on {
			state = 1
		}
		data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(state))
		req.AddData(linkInfo)
		_, err := req.Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("set STP state of link %d: %w", index, err)
	}
	return nil
}
