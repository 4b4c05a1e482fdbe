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
// peer guest: the host cannot reach it through the parent. A pair is named
// CLIENT-SERVER:NET (host-left:br0, left-right:br0); the client sends.
//
// Planning, parsing iperf3's JSON and drawing (Table, SVG) are pure; Run
// takes the two ends of each pair as Sides, so tests drive it with fakes and
// the CLI with the host (os/exec) and guests (vm.Exec).
package perf

import (
	"fmt"
	"strings"
)

// EndpointKind is what an endpoint is. Containers inside a guest are meant
// to become a third kind, named NODE/CONTAINER, beside these two.
type EndpointKind string

// The endpoint kinds.
const (
	KindHost EndpointKind = "host" // the host (the sandbox's namespace, where libvirtd runs)
	KindVM   EndpointKind = "vm"   // a node of the lab
)

// HostName is the host's name in pair names.
const HostName = "host"

// Endpoint is one end of a pair.
type Endpoint struct {
	Kind EndpointKind
	Node string // the node's name; "" for the host
}

// Host is the host endpoint.
var Host = Endpoint{Kind: KindHost}

// VM is the endpoint of a lab node.
func VM(node string) Endpoint { return Endpoint{Kind: KindVM, Node: node} }

// Name is the endpoint as pair names spell it: host, or the node's name.
func (e Endpoint) Name() string {
	if e.Kind == KindHost {
		return HostName
	}
	return e.Node
}

// label is the endpoint's kind for people: host or VM.
func (e Endpoint) label() string {
	if e.Kind == KindHost {
		return "host"
	}
	return "VM"
}

// Pair is one measurement: the client sends to the server across one
// network of the lab.
type Pair struct {
	Client  Endpoint
	Server  Endpoint
	Net     string // the lab network the traffic crosses
	NetKind string // its kind: nat, isolated, bridge or macvtap
}

// Name is CLIENT-SERVER:NET, the name --pairs selects by.
func (p Pair) Name() string {
	return p.Client.Name() + "-" + p.Server.Name() + ":" + p.Net
}

// Mode says what the pair compares, for the table and the chart:
// "VM ↔ VM, bridge".
func (p Pair) Mode() string {
	a, b := p.Client.label(), p.Server.label()
	if b == "host" { // host first, as people say it
		a, b = b, a
	}
	return fmt.Sprintf("%s ↔ %s, %s", a, b, p.NetKind)
}

// vmToVM reports whether both ends are VMs.
func (p Pair) vmToVM() bool { return p.Client.Kind == KindVM && p.Server.Kind == KindVM }

// hostSide reports whether one end is the host.
func (p Pair) hostSide() bool { return p.Client.Kind == KindHost || p.Server.Kind == KindHost }

// Names lists the pairs' names, comma-separated, for messages.
func Names(pairs []Pair) string {
	names := make([]string, len(pairs))
	for i, p := range pairs {
		names[i] = p.Name()
	}
	return strings.Join(names, ",")
}
