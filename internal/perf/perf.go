// Package perf measures a running lab's throughput with iperf3: one pair
// of endpoints at a time (never two at once, so they do not share the
// machine's CPU), TCP and then UDP at a set rate, and reports each pair as
// a ratio to the lab's bridge pair measured in the same run, because the
// absolute numbers say more about the machine (TCG or KVM, its cores) than
// about the network mode.
//
// The pairs follow from the lab file (Plan): host ↔ VM on every network the
// host has an address on (nat, isolated, bridge), VM ↔ VM on every bridge
// and macvtap network two nodes share. A macvtap guest is measured from a
// peer guest: the host cannot reach it through the parent. Then one pair
// per container network mode of the lab's containers (NODE/CONTAINER, as
// checks name them): a podman bridge container from its VM (or from
// another container on its podman network), a host-network container from
// the host (its server listens in the VM's namespace), a macvlan or ipvlan
// container from the host on its parent network (its own VM cannot reach
// it). A pair is named CLIENT-SERVER:NET (host-left:br0, left-right:br0,
// modes-modes/plain:podman); the client sends.
//
// Planning, parsing iperf3's JSON and drawing (Table, SVG) are pure; Run
// takes the two ends of each pair as Sides, so tests drive it with fakes and
// the CLI with the host (os/exec) and guests (vm.Exec).
package perf

import (
	"fmt"
	"strings"
)

// EndpointKind is what an endpoint is.
type EndpointKind string

// The endpoint kinds.
const (
	KindHost      EndpointKind = "host"      // the host (the sandbox's namespace, where libvirtd runs)
	KindVM        EndpointKind = "vm"        // a node of the lab
	KindContainer EndpointKind = "container" // a container of a node, inside its guest
)

// HostName is the host's name in pair names.
const HostName = "host"

// Endpoint is one end of a pair.
type Endpoint struct {
	Kind      EndpointKind
	Node      string // the node's name; "" for the host
	Container string // the container's name, for KindContainer
}

// Host is the host endpoint.
var Host = Endpoint{Kind: KindHost}

// VM is the endpoint of a lab node.
func VM(node string) Endpoint { return Endpoint{Kind: KindVM, Node: node} }

// ContainerEnd is the endpoint of container name of node.
func ContainerEnd(node, name string) Endpoint {
	return Endpoint{Kind: KindContainer, Node: node, Container: name}
}

// Name is the endpoint as pair names spell it: host, the node's name, or
// NODE/CONTAINER.
func (e Endpoint) Name() string {
	switch e.Kind {
	case KindHost:
		return HostName
	case KindContainer:
		return e.Node + "/" + e.Container
	}
	return e.Node
}

// label is the endpoint's kind for people: host, VM or container.
func (e Endpoint) label() string {
	switch e.Kind {
	case KindHost:
		return "host"
	case KindContainer:
		return "container"
	}
	return "VM"
}

// Pair is one measurement: the client sends to the server across one
// network of the lab.
type Pair struct {
	Client  Endpoint
	Server  Endpoint
	Net     string // the lab network the traffic crosses, or a container's podman network
	NetKind string // its kind: nat, isolated, bridge or macvtap; podman for a podman network
	// ContainerMode is the network mode of the container the pair measures
	// (the server's, else the client's): bridge (a podman network, podman's
	// default included), host, macvlan or ipvlan; "" without a container.
	ContainerMode string
}

// ModePodmanNet is the NetKind of a pair on a podman network inside a guest.
const ModePodmanNet = "podman"

// containerModeText says what path a container mode's pair crosses.
var containerModeText = map[string]string{
	"bridge":  "podman bridge",
	"host":    "network host",
	"macvlan": "macvlan",
	"ipvlan":  "ipvlan l2",
}

// Name is CLIENT-SERVER:NET, the name --pairs selects by.
func (p Pair) Name() string {
	return p.Client.Name() + "-" + p.Server.Name() + ":" + p.Net
}

// Mode says what the pair compares, for the table and the chart:
// "VM ↔ VM, bridge"; with a container, which way the traffic goes and the
// container's network mode: "VM → container, podman bridge".
func (p Pair) Mode() string {
	a, b := p.Client.label(), p.Server.label()
	if p.ContainerMode != "" {
		return fmt.Sprintf("%s → %s, %s", a, b, containerModeText[p.ContainerMode])
	}
	if b == "host" { // host first, as people say it
		a, b = b, a
	}
	return fmt.Sprintf("%s ↔ %s, %s", a, b, p.NetKind)
}

// vmToVM reports whether both ends are VMs.
func (p Pair) vmToVM() bool { return p.Client.Kind == KindVM && p.Server.Kind == KindVM }

// hostSide reports whether one end is the host and neither a container.
func (p Pair) hostSide() bool {
	return (p.Client.Kind == KindHost || p.Server.Kind == KindHost) && p.ContainerMode == ""
}

// containerBridge reports whether the pair measures a podman bridge container.
func (p Pair) containerBridge() bool { return p.ContainerMode == "bridge" }

// Names lists the pairs' names, comma-separated, for messages.
func Names(pairs []Pair) string {
	names := make([]string, len(pairs))
	for i, p := range pairs {
		names[i] = p.Name()
	}
	return strings.Join(names, ",")
}
