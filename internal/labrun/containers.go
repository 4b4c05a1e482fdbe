package labrun

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"vmnet/internal/containers"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
)

// upContainers starts node's own containers in its guest once the node is
// up (containers.Plan, through the guest agent), and returns what changed,
// each line naming the node. A node without containers changes nothing.
func upContainers(ctx context.Context, e vm.Env, l lab.Lab, node string) ([]string, error) {
	steps := containers.Plan(l, node)
	if len(steps) == 0 {
		return nil, nil
	}
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, "containers: %d steps (networks, pods, firewall, containers)\n", len(steps))
	}
	changed, err := containers.Ensure(ctx, guest{e: e, name: node}, steps)
	out := make([]string, len(changed))
	for i, c := range changed {
		out[i] = "node " + node + ": " + c
		if e.Progress != nil {
			fmt.Fprintf(e.Progress, "containers: %s\n", c)
		}
	}
	if err != nil {
		return out, fmt.Errorf("containers of node %s: %w", node, err)
	}
	routes, err := upL3Routes(e.Routes, l, node)
	return append(out, routes...), err
}

// RouteReplacer is the part of a netlink handle in the lab host's
// namespace that adds ipvlan l3 containers' routes: 'ip route replace'.
type RouteReplacer interface {
	// RouteList equals 'ip route show [dev LINK]' (main table) for one family.
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
	// RouteReplace equals 'ip route replace'.
	RouteReplace(route *netlink.Route) error
}

// upL3Routes gives the lab host a route to each of node's ipvlan l3
// containers via its parent NIC's address (an l3 child answers no ARP):
// 'ip route replace ADDR/32 via NICADDR', on the lab network's bridge that
// reaches NICADDR. The route goes with the bridge at lab down. k is
// vm.Env's Routes, which must be able to replace routes when the node has
// such containers.
func upL3Routes(k any, l lab.Lab, node string) ([]string, error) {
	routes := l.L3Routes(node)
	if len(routes) == 0 {
		return nil, nil
	}
	rr, ok := k.(RouteReplacer)
	if !ok {
		return nil, fmt.Errorf("ipvlan l3 containers of node %s: this lab host's kernel view cannot add routes", node)
	}
	have, err := rr.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("ipvlan l3 containers of node %s: list the host's routes: %w", node, err)
	}
	var out []string
	for _, r := range routes {
		dst := net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)}
		if slices.ContainsFunc(have, func(h netlink.Route) bool {
			return h.Dst != nil && h.Dst.String() == dst.String() && h.Gw.Equal(r.Via.AsSlice())
		}) {
			continue
		}
		if err := rr.RouteReplace(&netlink.Route{Dst: &dst, Gw: r.Via.AsSlice()}); err != nil {
			return out, fmt.Errorf("route to ipvlan l3 container %s of node %s (ip route replace %s via %s): %w", r.Container, node, r.Dst, r.Via, err)
		}
		out = append(out, fmt.Sprintf("node %s: route %s via %s (ipvlan l3 container %s)", node, r.Dst, r.Via, r.Container))
	}
	return out, nil
}

// guest runs commands in a node's guest with vm.Exec.
type guest struct {
	e    vm.Env
	name string
}

var _ containers.Guest = guest{}

// Exec runs argv in the guest through its agent.
func (g guest) Exec(ctx context.Context, argv []string, timeout time.Duration) (string, string, int, error) {
	stdout, stderr, code, err := vm.Exec(ctx, g.e, g.name, argv, timeout)
	return string(stdout), string(stderr), code, err
}
