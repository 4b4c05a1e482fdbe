package perf

import (
	"fmt"
	"slices"

	"vmnet/internal/lab"
)

// containerModes are the container network modes perf measures, in the
// order their pairs come: bridge first, the baseline the others are
// compared with. none reaches nothing; a pod member is a podman bridge
// container behind the pod's address, measured by the bridge pair.
var containerModes = []string{lab.ModeBridge, lab.ModeHost, lab.ModeMacvlan, lab.ModeIPvlan}

// perfMode is a container's network mode as perf groups them: podman's
// default network is a podman bridge like a container-network.
func perfMode(c lab.Container) string {
	if m := c.Mode(); m != lab.ModePodman {
		return m
	}
	return lab.ModeBridge
}

// podmanNet is the podman network a bridge container is on.
func podmanNet(c lab.Container) string {
	if c.Network == "" {
		return lab.ModePodman
	}
	return c.Network
}

// containerOf is a container endpoint's container.
func containerOf(l lab.Lab, e Endpoint) (lab.Container, bool) {
	if e.Kind != KindContainer {
		return lab.Container{}, false
	}
	c, ok := l.Nodes[e.Node].Containers[e.Container]
	return c, ok
}

// pairContainerMode is the mode of the server's container, else the
// client's, else "".
func pairContainerMode(l lab.Lab, client, server Endpoint) string {
	for _, e := range []Endpoint{server, client} {
		if c, ok := containerOf(l, e); ok {
			return perfMode(c)
		}
	}
	return ""
}

// containerPairs is one pair per container network mode of the lab, from
// the first node (in file order) that has a container in it: a podman
// bridge container from its VM, or from another container on the same
// podman network when there is one; a host-network container from the
// host (or a peer VM) on the node's first bridge network, else its first
// network the host reaches; a macvlan or ipvlan container from the host
// (or a peer VM) on its parent network, which its own VM cannot reach.
func containerPairs(l lab.Lab) []Pair {
	var out []Pair
	for _, mode := range containerModes {
		for _, node := range l.NodeOrder {
			if p, ok := containerPair(l, node, mode); ok {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// containerPair is the pair that measures mode on node, if node has a
// container in it (the first in name order) and something can reach it.
func containerPair(l lab.Lab, node, mode string) (Pair, bool) {
	n := l.Nodes[node]
	var names []string
	for _, name := range n.ContainerNames() {
		if perfMode(n.Containers[name]) == mode {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return Pair{}, false
	}
	server := ContainerEnd(node, names[0])
	if mode == lab.ModeBridge {
		return bridgePair(n, node, names), true
	}
	net := n.Containers[names[0]].Parent
	if mode == lab.ModeHost {
		net = hostModeNet(l, n)
	}
	client, ok := clientOn(l, net, node)
	if !ok {
		return Pair{}, false
	}
	return Pair{Client: client, Server: server, Net: net, NetKind: l.Networks[net].Kind, ContainerMode: mode}, true
}

// bridgePair is the first two bridge containers (of names) on one podman
// network, or else the VM → the first of them.
func bridgePair(n lab.Node, node string, names []string) Pair {
	first := map[string]string{} // podman network → its first container
	for _, name := range names {
		net := podmanNet(n.Containers[name])
		if a, ok := first[net]; ok {
			return Pair{Client: ContainerEnd(node, a), Server: ContainerEnd(node, name), Net: net, NetKind: ModePodmanNet, ContainerMode: lab.ModeBridge}
		}
		first[net] = name
	}
	c := n.Containers[names[0]]
	return Pair{Client: VM(node), Server: ContainerEnd(node, names[0]), Net: podmanNet(c), NetKind: ModePodmanNet, ContainerMode: lab.ModeBridge}
}

// hostModeNet is where a host-network container of n is measured: n's
// first bridge network the host has an address on, else its first network
// the host reaches, else its first network.
func hostModeNet(l lab.Lab, n lab.Node) string {
	var nets []string
	for _, nic := range n.NICs {
		nets = append(nets, nic.Net)
	}
	if i := slices.IndexFunc(nets, func(net string) bool { return l.Networks[net].Kind == lab.KindBridge && hostReaches(l, net) }); i >= 0 {
		return nets[i]
	}
	if i := slices.IndexFunc(nets, func(net string) bool { return hostReaches(l, net) }); i >= 0 {
		return nets[i]
	}
	if len(nets) > 0 {
		return nets[0]
	}
	return ""
}

// hostReaches reports whether the host has an address on lab network net.
func hostReaches(l lab.Lab, net string) bool {
	nw, ok := l.Networks[net]
	return ok && nw.Kind != lab.KindMacvtap && nw.HostAddr().IsValid()
}

// clientOn is who measures a container of node reached on lab network
// net: the host, or where the host has no address the first other node
// with a NIC on net.
func clientOn(l lab.Lab, net, node string) (Endpoint, bool) {
	if hostReaches(l, net) {
		return Host, true
	}
	for _, peer := range members(l, net) {
		if peer != node {
			return VM(peer), true
		}
	}
	return Endpoint{}, false
}

// checkContainerPair refuses a container pair whose path the lab does not
// have: a container that sends to anything but a container on its own
// podman network, a mode perf does not measure (none, pod), a bridge
// container from outside its VM, a host, macvlan or ipvlan container from
// its own VM or from where there is no route.
func checkContainerPair(l lab.Lab, p Pair) error {
	if c, ok := containerOf(l, p.Client); ok {
		s, _ := containerOf(l, p.Server)
		if p.Server.Kind != KindContainer || p.Server.Node != p.Client.Node || perfMode(c) != lab.ModeBridge || perfMode(s) != lab.ModeBridge || podmanNet(c) != podmanNet(s) {
			return fmt.Errorf("has container %s sending: a container sends only to another container on its own podman network", p.Client.Name())
		}
	}
	s, _ := containerOf(l, p.Server)
	node := p.Server.Node
	switch perfMode(s) {
	case lab.ModeBridge:
		if p.Net != podmanNet(s) {
			return fmt.Errorf("crosses %s, but container %s is on podman network %s", p.Net, p.Server.Name(), podmanNet(s))
		}
		if p.Client != VM(node) && p.Client.Kind != KindContainer {
			return fmt.Errorf("sends to container %s on a podman bridge from outside its VM %s, which has no route in; send from %s", p.Server.Name(), node, node)
		}
		return nil
	case lab.ModeHost:
		if nicIndex(l.Nodes[node], p.Net) < 0 {
			return fmt.Errorf("node %s has no NIC on %s", node, p.Net)
		}
		return checkSender(l, p, "its VM's own address would measure the loopback")
	case lab.ModeMacvlan, lab.ModeIPvlan:
		if p.Net != s.Parent {
			return fmt.Errorf("crosses %s, but container %s is %s on %s", p.Net, p.Server.Name(), s.Mode(), s.Parent)
		}
		return checkSender(l, p, "a "+s.Mode()+" child is never reached from its parent VM")
	}
	return unmeasured(p.Server, s)
}

// unmeasured is the error for a container end in a mode perf does not
// measure (none, pod).
func unmeasured(e Endpoint, c lab.Container) error {
	return fmt.Errorf("has container %s, in network mode %s, at an end; perf measures containers in modes bridge, podman, host, macvlan and ipvlan", e.Name(), c.Mode())
}

// checkSender refuses a client that cannot send to the pair's container
// server on p.Net: the server's own VM (why says what it would mean), a
// VM without a NIC there, the host where it has no address.
func checkSender(l lab.Lab, p Pair, why string) error {
	switch c := p.Client; {
	case c.Kind == KindVM && c.Node == p.Server.Node:
		return fmt.Errorf("sends from %s to its own container %s: %s; send from the host or a peer VM", c.Node, p.Server.Name(), why)
	case c.Kind == KindVM && nicIndex(l.Nodes[c.Node], p.Net) < 0:
		return fmt.Errorf("node %s has no NIC on %s", c.Node, p.Net)
	case c.Kind == KindHost && !hostReaches(l, p.Net):
		return fmt.Errorf("puts the host on %s network %s, where it has no address; send from a peer VM on it", l.Networks[p.Net].Kind, p.Net)
	}
	return nil
}
