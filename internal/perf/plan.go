package perf

import (
	"fmt"
	"slices"
	"strings"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
)

// Plan lists the pairs a lab allows, network by network in file order:
// host → the first node on it (where the host has an address: not on
// macvtap), then the first node → the second on a bridge or macvtap
// network (on macvtap the peer guest stands in for the host, which cannot
// reach a guest through the parent). One pair per network and mode: more
// nodes on the same network measure the same path again. Then one pair per
// container network mode of the lab (containerPairs).
func Plan(l lab.Lab) []Pair {
	var pairs []Pair
	for _, net := range l.NetworkOrder {
		kind := l.Networks[net].Kind
		nodes := members(l, net)
		if len(nodes) >= 1 && kind != lab.KindMacvtap {
			pairs = append(pairs, Pair{Client: Host, Server: VM(nodes[0]), Net: net, NetKind: kind})
		}
		if len(nodes) >= 2 && (kind == lab.KindBridge || kind == lab.KindMacvtap) {
			pairs = append(pairs, Pair{Client: VM(nodes[0]), Server: VM(nodes[1]), Net: net, NetKind: kind})
		}
	}
	return append(pairs, containerPairs(l)...)
}

// members lists the nodes with a NIC on net, in file order.
func members(l lab.Lab, net string) []string {
	var out []string
	for _, name := range l.NodeOrder {
		if nicIndex(l.Nodes[name], net) >= 0 {
			out = append(out, name)
		}
	}
	return out
}

// nicIndex is the index of the node's first NIC on net (eth0 is 0), or -1.
func nicIndex(n lab.Node, net string) int {
	for i, nic := range n.NICs {
		if nic.Net == net {
			return i
		}
	}
	return -1
}

// Select returns the pairs named in names (each item may hold several,
// comma-separated: --pairs host-left:br0,left-right:br0), in the order
// given, or Plan(l) when names is empty. Every name is checked against the
// lab before anything runs.
func Select(l lab.Lab, names []string) ([]Pair, error) {
	var pairs []Pair
	seen := map[string]bool{}
	for _, item := range names {
		for _, name := range strings.Split(item, ",") {
			name = strings.TrimSpace(name)
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			p, err := ParsePair(l, name)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, p)
		}
	}
	if len(pairs) == 0 {
		pairs = Plan(l)
	}
	if len(pairs) == 0 {
		return nil, errs.WithHint(fmt.Errorf("lab %s has no pair to measure: no node has a NIC the host or another node can reach", l.Name),
			"give a node a NIC on a nat, isolated or bridge network, or two nodes NICs on the same bridge network")
	}
	return pairs, nil
}

// ParsePair reads one pair name, CLIENT-SERVER:NET, against the lab: both
// ends must exist and be on NET, and the host may not be an end on a
// macvtap network. An end is host, a node or NODE/CONTAINER; NET is a lab
// network, or a podman network of a container end. A node name may itself
// hold '-': the split that names two endpoints of the lab wins.
func ParsePair(l lab.Lab, name string) (Pair, error) {
	bad := func(problem string) error {
		return &errs.FieldError{Field: "--pairs", Value: name, Problem: problem, Form: errs.FlagForm,
			Fix: "pairs of lab " + l.Name + " (the default set): " + Names(Plan(l)) + "; a name is CLIENT-SERVER:NET, the client sends"}
	}
	ends, net, ok := cut(name, ":")
	if !ok {
		return Pair{}, bad("has no :NET; name the network the pair crosses")
	}
	client, server, err := splitEnds(l, ends)
	if err != nil {
		return Pair{}, bad(err.Error())
	}
	kind, err := netKind(l, client, server, net)
	if err != nil {
		return Pair{}, bad(err.Error())
	}
	p := Pair{Client: client, Server: server, Net: net, NetKind: kind, ContainerMode: pairContainerMode(l, client, server)}
	if err := checkPair(l, p); err != nil {
		return Pair{}, bad(err.Error())
	}
	return p, nil
}

// netKind is the kind of the network a pair names: podman for the podman
// network of a bridge container at either end, else the lab network's.
func netKind(l lab.Lab, client, server Endpoint, net string) (string, error) {
	for _, e := range []Endpoint{server, client} {
		c, ok := containerOf(l, e)
		switch {
		case ok && !slices.Contains(containerModes, perfMode(c)):
			return "", unmeasured(e, c)
		case ok && perfMode(c) == lab.ModeBridge && podmanNet(c) == net:
			return ModePodmanNet, nil
		}
	}
	if nw, ok := l.Networks[net]; ok {
		return nw.Kind, nil
	}
	if c, ok := containerOf(l, server); ok && perfMode(c) == lab.ModeBridge {
		return "", fmt.Errorf("names network %q, but container %s is on podman network %s", net, server.Name(), podmanNet(c))
	}
	return "", fmt.Errorf("names network %q, which lab %s does not have (it has %s)", net, l.Name, strings.Join(l.NetworkOrder, ", "))
}

// cut is strings.Cut at the last sep.
func cut(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// splitEnds splits CLIENT-SERVER at the one '-' that leaves an endpoint of
// the lab on each side.
func splitEnds(l lab.Lab, ends string) (client, server Endpoint, err error) {
	var found [][2]Endpoint
	for i := range len(ends) {
		if ends[i] != '-' {
			continue
		}
		a, okA := endpoint(l, ends[:i])
		b, okB := endpoint(l, ends[i+1:])
		if okA && okB {
			found = append(found, [2]Endpoint{a, b})
		}
	}
	switch len(found) {
	case 0:
		return Endpoint{}, Endpoint{}, fmt.Errorf("is not CLIENT-SERVER of two endpoints of the lab (host, or a node: %s%s)", strings.Join(l.NodeOrder, ", "), containerList(l))
	case 1:
		return found[0][0], found[0][1], nil
	}
	return Endpoint{}, Endpoint{}, fmt.Errorf("splits into two endpoints in %d ways; rename a node so its name does not end or start like another's", len(found))
}

// containerList is "; or a container: NODE/NAME, ..." for a lab with
// containers, else "".
func containerList(l lab.Lab) string {
	var names []string
	for _, node := range l.NodeOrder {
		for _, name := range l.Nodes[node].ContainerNames() {
			names = append(names, node+"/"+name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; or a container: " + strings.Join(names, ", ")
}

// endpoint resolves host, a node name or NODE/CONTAINER.
func endpoint(l lab.Lab, s string) (Endpoint, bool) {
	if s == HostName {
		return Host, true
	}
	if node, name, ok := strings.Cut(s, "/"); ok {
		_, has := l.Nodes[node].Containers[name]
		return ContainerEnd(node, name), has
	}
	if _, ok := l.Nodes[s]; ok {
		return VM(s), true
	}
	return Endpoint{}, false
}

// checkPair refuses a pair the lab cannot carry: an end measured against
// itself, two hosts, an end without a NIC on the network, the host on
// macvtap.
func checkPair(l lab.Lab, p Pair) error {
	switch {
	case p.Client == p.Server:
		return fmt.Errorf("has the same endpoint at both ends")
	case p.Client.Kind == KindContainer || p.Server.Kind == KindContainer:
		return checkContainerPair(l, p)
	case p.hostSide() && p.NetKind == lab.KindMacvtap:
		return fmt.Errorf("puts the host on macvtap network %s, whose guests the host cannot reach through the parent %s; measure from a peer guest on it", p.Net, l.Networks[p.Net].Parent)
	}
	for _, e := range []Endpoint{p.Client, p.Server} {
		if e.Kind == KindVM && nicIndex(l.Nodes[e.Node], p.Net) < 0 {
			return fmt.Errorf("node %s has no NIC on %s", e.Node, p.Net)
		}
	}
	return nil
}

// Baseline picks the pair the others are compared with: the one named, or
// else the first podman bridge container pair (so that each container mode
// is compared with bridge mode), or else the first VM ↔ VM pair on a bridge
// network, or else the first host ↔ VM pair on one; -1 when there is none
// (no ratios then).
func Baseline(pairs []Pair, name string) (int, error) {
	if name != "" {
		for i, p := range pairs {
			if p.Name() == name {
				return i, nil
			}
		}
		return -1, &errs.FieldError{Field: "--baseline", Value: name, Problem: "is not one of the pairs measured", Form: errs.FlagForm,
			Fix: "name one of: " + Names(pairs)}
	}
	for _, want := range []func(Pair) bool{Pair.containerBridge, Pair.vmToVM, Pair.hostSide} {
		for i, p := range pairs {
			if (p.NetKind == lab.KindBridge || p.containerBridge()) && want(p) {
				return i, nil
			}
		}
	}
	return -1, nil
}
