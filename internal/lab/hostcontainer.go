package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"vmnet/internal/vmspec"
)

// Node kinds: a VM (the default) or a podman container on the lab host
// itself, in the namespace vmnet runs in (a sandbox's, inside `vmnet
// sandbox`), attached to one of the lab's bridges.
const (
	NodeVM        = "vm"
	NodeContainer = "container"
)

// NodeKinds lists the node kinds, for messages.
var NodeKinds = []string{NodeVM, NodeContainer}

// How a host container is attached to its bridge.
const (
	// HostVeth: a veth pair, one end a port of the bridge, the other moved
	// into the container's namespace (the default; the host kernel has veth).
	HostVeth = "veth"
	// HostMacvlan: a macvlan child of the bridge in the container's namespace.
	HostMacvlan = "macvlan"
	// HostIPvlan: an ipvlan child of the bridge; needs the host kernel's
	// ipvlan, which lab up checks before anything changes.
	HostIPvlan = "ipvlan"
)

// HostModes lists a host container's modes, for messages.
var HostModes = []string{HostVeth, HostMacvlan, HostIPvlan}

// HostRootfsImage is the image whose exploded Debian root file system host
// containers run from (podman run --rootfs DIR:O): `vmnet image build ctr`
// builds it, and `vmnet image build --lab FILE` for a lab that has any.
const HostRootfsImage = "ctr"

// HostContainer is a node of kind container: a podman container on the lab
// host with one interface (eth0) on a lab bridge.
type HostContainer struct {
	Network string       // the lab network (kind bridge)
	Address netip.Prefix // its static address there
	Mode    string       // veth (default), macvlan or ipvlan
	Listen  int          // the port it serves; 0 for none
	Command string       // sh -c COMMAND; "" for the HTTP server on Listen (or an idle process)
}

// Argv is what the container runs: the command with sh -c, python3's HTTP
// server on Listen as the in-guest containers do, or an idle process.
func (c HostContainer) Argv() []string {
	switch {
	case c.Command != "":
		return []string{"/bin/sh", "-c", c.Command}
	case c.Listen > 0:
		return []string{"python3", "-m", "http.server", "--bind", "0.0.0.0", fmt.Sprint(c.Listen)}
	}
	return []string{"sleep", "infinity"}
}

// HostGateway is the container's default route: the host's address on its
// bridge.
func (l Lab) HostGateway(name string) netip.Addr {
	return l.Networks[l.HostContainers[name].Network].HostAddr()
}

// IsHostContainer reports whether name is a node of kind container.
func (l Lab) IsHostContainer(name string) bool {
	_, ok := l.HostContainers[name]
	return ok
}

// HostModesUsed is, for each mode in use, the host containers with it, in
// file order: lab up asks the host kernel for each link type.
func (l Lab) HostModesUsed() map[string][]string {
	out := map[string][]string{}
	for _, name := range l.HostOrder {
		m := l.HostContainers[name].Mode
		out[m] = append(out[m], name)
	}
	return out
}

// splitHostContainers moves the nodes of kind container out of Nodes and
// NodeOrder into HostContainers and HostOrder, and returns them as written
// (with their VM keys, which validateHostContainers refuses).
func (l *Lab) splitHostContainers() map[string]Node {
	raw := map[string]Node{}
	l.HostContainers = map[string]HostContainer{}
	var vms []string
	for _, name := range l.NodeOrder {
		n := l.Nodes[name]
		if n.Kind != NodeContainer {
			vms = append(vms, name)
			continue
		}
		raw[name] = n
		delete(l.Nodes, name)
		l.HostOrder = append(l.HostOrder, name)
		l.HostContainers[name] = HostContainer{Network: n.Network, Address: n.Address, Mode: or(n.Mode, HostVeth), Listen: n.Listen, Command: n.Command}
	}
	l.NodeOrder = vms
	return raw
}

// vmKeys are the keys only a VM node has, with the value's zero test.
func vmKeys(n Node) []string {
	var out []string
	for _, k := range []struct {
		key string
		set bool
	}{{"image", n.Image != ""}, {"vcpus", n.VCPUs != 0}, {"memory", n.Memory != 0}, {"nics", n.NICs != nil},
		{"app", n.App != ""}, {"container-networks", n.ContainerNetworks != nil}, {"containers", n.Containers != nil}} {
		if k.set {
			out = append(out, k.key)
		}
	}
	return out
}

// containerKeys are the keys only a container node has that n sets.
func containerKeys(n Node) []string {
	var out []string
	for _, k := range []struct {
		key string
		set bool
	}{{"network", n.Network != ""}, {"address", n.Address.IsValid()}, {"mode", n.Mode != ""}, {"listen", n.Listen != 0}, {"command", n.Command != ""}} {
		if k.set {
			out = append(out, k.key)
		}
	}
	return out
}

// validateVMKind refuses, on a VM node, an unknown kind and the keys only
// a container node has.
func validateVMKind(p *problems, name string, n Node) {
	base := "nodes." + name
	if n.Kind != "" && n.Kind != NodeVM {
		p.add(base+".kind", n.Kind, "is not a node kind"+didYouMean(n.Kind, NodeKinds), "use kind: vm (the default) or kind: container")
		return
	}
	for _, k := range containerKeys(n) {
		p.add(base+"."+k, "", "is a key of a container node, set on VM node "+name,
			"give a VM its addresses under nics (nics: [{net: NET, address: ADDR}]), or add kind: container to make "+name+" a container on the host")
	}
}

// validateHostContainers checks every node of kind container (raw is each
// as written): no VM keys; network a lab bridge; a static address on it
// that nobody else holds; mode veth, macvlan or ipvlan; listen a port.
func (l Lab) validateHostContainers(raw map[string]Node) vmspec.Errors {
	var p problems
	holders := l.baseHolders()
	for _, name := range l.HostOrder {
		base := "nodes." + name
		if name == Host {
			p.add(base, name, "is reserved: checks name the host so", "call the node something else, such as "+name+"1")
		} else if err := dnsLabel(name); err != nil {
			p.addErr(base, err)
		}
		for _, k := range vmKeys(raw[name]) {
			p.add(base+"."+k, "", "is a key of a VM node, set on container node "+name,
				"leave "+k+" out: a host container runs from vmnet's container rootfs (image "+HostRootfsImage+") with one interface on its network; or leave kind: container out to make "+name+" a VM")
		}
		l.validateHostContainer(&p, name, holders)
	}
	return p.list
}

// validateHostContainer checks one container node's network, address, mode
// and listen; holders gets its address.
func (l Lab) validateHostContainer(p *problems, name string, holders map[string][]vmspec.AddrHolder) {
	c := l.HostContainers[name]
	f := func(k string) string { return "nodes." + name + "." + k }
	if !slices.Contains(HostModes, c.Mode) {
		p.add(f("mode"), c.Mode, "is not a host container mode"+didYouMean(c.Mode, HostModes), "use mode: "+strings.Join(HostModes, ", mode: ")+" (veth is the default)")
	}
	if c.Listen < 0 || c.Listen > 65535 {
		p.add(f("listen"), fmt.Sprint(c.Listen), "is not a port (1-65535)", "use a port such as 8080")
	}
	net, ok := l.Networks[c.Network]
	var bridges []string
	for _, n := range l.NetworkOrder {
		if l.Networks[n].Kind == KindBridge {
			bridges = append(bridges, n)
		}
	}
	switch {
	case c.Network == "":
		p.add(f("network"), "", "is missing: a host container is attached to one of the lab's bridges", "name a network of kind bridge: "+orNone(bridges))
		return
	case !ok:
		p.add(f("network"), c.Network, "is not a network of this lab"+didYouMean(c.Network, l.NetworkOrder), "name a network of kind bridge: "+orNone(bridges))
		return
	case net.Kind != KindBridge:
		p.add(f("network"), c.Network, "is a "+net.Kind+" network: a container on the host joins only a Linux bridge that vmnet makes (kind bridge), not a libvirt or macvtap network",
			"put it on a network of kind bridge ("+orNone(bridges)+"), or run it inside a VM on "+c.Network+" (a node's containers: with network: macvlan)")
		return
	}
	l.validateHostAddr(p, name, f("address"), holders)
}

// validateHostAddr checks a host container's address on its bridge.
func (l Lab) validateHostAddr(p *problems, name, field string, holders map[string][]vmspec.AddrHolder) {
	c := l.HostContainers[name]
	net := l.Networks[c.Network]
	if !c.Address.IsValid() {
		p.add(field, "", "is missing: a bridge has no DHCP", "give the container a static address on "+c.Network+", such as "+free(net, holders[c.Network]))
		return
	}
	if !net.Subnet().IsValid() {
		return // the network's own error says what is wrong
	}
	link := vmspec.AddrLink{Name: "network " + c.Network, Subnet: net.Subnet(), Pool: net.Pool(), Holders: holders[c.Network]}
	if e := vmspec.CheckStatic(field, c.Address, link); e != nil {
		p.list = append(p.list, e)
		return
	}
	holders[c.Network] = append(holders[c.Network], vmspec.AddrHolder{Addr: c.Address.Addr(), Who: "container " + name + " on the host"})
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "(this lab has none: declare one, for example networks: {lan0: {kind: bridge, address: 192.0.2.1/24}})"
	}
	return strings.Join(names, ", ")
}

// hostHolders is the addresses of the host containers, by network.
func (l Lab) hostHolders(out map[string][]vmspec.AddrHolder) {
	for _, name := range l.HostOrder {
		if c := l.HostContainers[name]; c.Address.IsValid() {
			out[c.Network] = append(out[c.Network], vmspec.AddrHolder{Addr: c.Address.Addr(), Who: "container " + name + " on the host"})
		}
	}
}
