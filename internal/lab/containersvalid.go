package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"vmnet/internal/valid"
	"vmnet/internal/vmspec"
)

// validateContainers checks every node's container-networks and
// containers: the image has a container rootfs, every reference resolves,
// every address fits its network and clashes with no other lab address,
// every port parses and is published once.
func (l Lab) validateContainers(p *problems) {
	holders := l.labHolders()
	for _, name := range l.NodeOrder {
		n := l.Nodes[name]
		if len(n.Containers) == 0 && len(n.ContainerNetworks) == 0 {
			continue
		}
		base := "nodes." + name
		if _, ok := ContainerImages[n.Image]; !ok {
			p.add(base+".image", n.Image, "has no container rootfs built in, which the node's containers run from: they need image capstone",
				"use image: capstone on node "+name+", or leave containers and container-networks out")
			continue
		}
		l.validateContainerNets(p, name)
		ports := map[int]string{}
		if n.App == "capstone" {
			ports[8080] = "the capstone app's proxy"
		}
		for _, c := range n.ContainerNames() {
			l.validateContainer(p, name, c, holders, ports)
		}
	}
}

// labHolders is every address the lab gives out, by lab network: the
// host's, every static NIC address and the host containers'.
func (l Lab) labHolders() map[string][]vmspec.AddrHolder {
	out := l.baseHolders()
	l.hostHolders(out)
	return out
}

// baseHolders is the host's and every static NIC address, by lab network.
func (l Lab) baseHolders() map[string][]vmspec.AddrHolder {
	out := map[string][]vmspec.AddrHolder{}
	for _, name := range l.NetworkOrder {
		if n := l.Networks[name]; n.HostAddr().IsValid() {
			out[name] = append(out[name], vmspec.AddrHolder{Addr: n.HostAddr(), Who: "the host's address on network " + name})
		}
	}
	for _, node := range l.NodeOrder {
		for i, nic := range l.Nodes[node].NICs {
			if nic.Address.IsValid() {
				out[nic.Net] = append(out[nic.Net], vmspec.AddrHolder{Addr: nic.Address.Addr(), Who: fmt.Sprintf("node %s's eth%d", node, i)})
			}
		}
	}
	return out
}

// validateContainerNets checks a node's container-networks: a podman
// network name that is no mode word, the bridge driver, an IPv4 subnet of
// its own.
func (l Lab) validateContainerNets(p *problems, node string) {
	n := l.Nodes[node]
	names := make([]string, 0, len(n.ContainerNetworks))
	for name := range n.ContainerNetworks {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		cn := n.ContainerNetworks[name]
		f := "nodes." + node + ".container-networks." + name
		switch {
		case slices.Contains(Modes, name) || name == "app-net" || name == ModeBridge:
			p.add(f, name, "is a reserved network name", "call it something else, such as "+name+"1")
		case valid.InterfaceName(f, name) != nil:
			p.addErr(f, valid.InterfaceName(f, name))
		}
		if cn.Driver != "" && cn.Driver != ModeBridge {
			p.add(f+".driver", cn.Driver, "is not a container network driver", "use driver: bridge (macvlan is a container's network: macvlan, with parent)")
		}
		l.validateContainerSubnet(p, f+".subnet", cn.Subnet, names[:i], n)
	}
}

// validateContainerSubnet checks a container-network's subnet against the
// lab's networks, podman's default one and the node's earlier ones.
func (l Lab) validateContainerSubnet(p *problems, f string, s netip.Prefix, earlier []string, n Node) {
	switch {
	case !s.IsValid():
		p.add(f, "", "is missing", "give the podman network a subnet of its own, for example subnet: 10.89.1.0/24")
		return
	case !s.Addr().Is4():
		p.add(f, s.String(), "is IPv6; container networks are IPv4 here", "use an IPv4 subnet such as 10.89.1.0/24")
		return
	case s.Masked() != s:
		p.add(f, s.String(), "has host bits set", "write the subnet itself: subnet: "+s.Masked().String())
		return
	case s.Bits() > 29:
		p.add(f, s.String(), "is too small for a gateway and containers", "use a prefix length of at most 29, such as /24")
		return
	}
	others := map[string]netip.Prefix{"podman's default network": PodmanSubnet}
	for _, name := range l.NetworkOrder {
		others["lab network "+name] = l.Networks[name].Subnet()
	}
	for _, name := range earlier {
		others["container-network "+name] = n.ContainerNetworks[name].Subnet
	}
	for _, who := range sortedNames(others) {
		if o := others[who]; o.IsValid() && o.Overlaps(s) {
			p.add(f, s.String(), fmt.Sprintf("overlaps %s's subnet %s", who, o), "give each network its own subnet")
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validateContainer checks one container: its name, its network (or pod),
// its address and its ports; ports records the VM ports taken so far.
func (l Lab) validateContainer(p *problems, node, name string, holders map[string][]vmspec.AddrHolder, ports map[int]string) {
	n := l.Nodes[node]
	c := n.Containers[name]
	f := func(k string) string { return "nodes." + node + ".containers." + name + "." + k }
	if n.IsAppContainer(name) {
		l.validateAppAttachment(p, node, name, f, holders)
		return
	}
	if err := vmspec.ValidateName(name); err != nil {
		p.add("nodes."+node+".containers."+name, name, "is not a container name: lower-case letters, digits and '-'", "call it for example web1")
	}
	if c.Pod != "" && c.Network != "" {
		p.add(f("pod"), c.Pod, "is set together with network: a pod member uses the pod's network namespace", "leave network out of pod members (pods use podman's default network), or leave pod out")
	} else if c.Pod != "" && vmspec.ValidateName(c.Pod) != nil {
		p.add(f("pod"), c.Pod, "is not a pod name: lower-case letters, digits and '-'", "call it for example pod1")
	} else if c.Mode() == ModeIPvlan && c.IPvlanMode != "" && c.IPvlanMode != IPvlanL2 && c.IPvlanMode != IPvlanL3 {
		p.add(f("mode"), c.IPvlanMode, "is not an ipvlan mode"+didYouMean(c.IPvlanMode, []string{IPvlanL2, IPvlanL3}),
			"use mode: l2 (the default: the child answers ARP with the parent's MAC) or mode: l3 (routed via the parent)")
	} else if c.IPvlanMode != "" && c.Mode() != ModeIPvlan {
		p.add(f("mode"), c.IPvlanMode, "is set on a container whose network is not ipvlan", "leave mode out, or use network: ipvlan")
	} else if c.Network != "" && c.Mode() == ModeBridge {
		if _, ok := n.ContainerNetworks[c.Network]; !ok {
			choices := append(slices.Clone(Modes), sortedNames(n.ContainerNetworks)...)
			p.add(f("network"), c.Network, "is not a container network of node "+node+didYouMean(c.Network, choices),
				"use one of: "+strings.Join(choices, ", ")+", or declare it under container-networks")
		}
	}
	if c.Listen < 0 || c.Listen > 65535 {
		p.add(f("listen"), fmt.Sprint(c.Listen), "is not a port (1-65535)", "use a port such as 80")
	}
	l.validateContainerAddr(p, node, name, f, holders)
	l.validateContainerPorts(p, node, name, f, ports)
	validateRestart(p, c, f)
	validateHealth(p, c.Health, f)
	validateContainerImage(p, c, f)
}

// validateContainerImage checks image (a registry reference) and insecure (only
// with image).
func validateContainerImage(p *problems, c Container, f func(string) string) {
	switch {
	case c.Image != "" && !ValidImageRef(c.Image):
		p.add(f("image"), c.Image, "is not a registry reference: [HOST[:PORT]/]PATH[:TAG] with the path in lower case",
			"write for example image: docker.io/library/nginx:1.25, or 192.0.2.1:5000/web:1 for a lab registry")
	case c.Insecure && c.Image == "":
		p.add(f("insecure"), "true", "is set on a container without image: it runs from the built-in rootfs, which nothing pulls",
			"leave insecure out, or give the container an image: from your registry")
	}
}

// validateRestart checks restart: one of podman's policies, and none on
// an ipvlan container, whose link vmnet makes after it starts (a restarted
// one would come back with lo alone).
func validateRestart(p *problems, c Container, f func(string) string) {
	r := c.Restart
	n, max, counted := strings.Cut(r, ":")
	switch {
	case r == "" || r == "no":
		return
	case counted && n == "on-failure":
		if k, err := strconv.Atoi(max); err != nil || k < 1 {
			p.add(f("restart"), r, "is not on-failure:N with N a count of restarts from 1", "write for example on-failure:3, or on-failure for no limit")
			return
		}
	case !slices.Contains(RestartPolicies, r):
		p.add(f("restart"), r, "is not a podman restart policy"+didYouMean(r, RestartPolicies),
			"use one of: "+strings.Join(RestartPolicies, ", ")+", on-failure:N")
		return
	}
	if c.Mode() == ModeIPvlan {
		p.add(f("restart"), r, "is set on an ipvlan container: vmnet gives it its link after it starts, and podman would restart it with lo alone",
			"leave restart out (a second lab up starts a container that stopped), or use network: macvlan")
	}
}

// validateHealth checks a health check: a command, durations podman takes
// (interval and timeout at least 1s) and a count of retries.
func validateHealth(p *problems, h Health, f func(string) string) {
	if !h.Set() {
		return
	}
	if strings.TrimSpace(h.Cmd) == "" {
		p.add(f("health.cmd"), "", "is missing: a health check is a command that exits 0 when the container is healthy",
			`give one, such as cmd: python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1/')"`)
	}
	for _, d := range []struct {
		key, val string
		min      time.Duration
	}{{"interval", h.Interval, time.Second}, {"timeout", h.Timeout, time.Second}, {"start-period", h.StartPeriod, 0}} {
		if d.val == "" {
			continue
		}
		if v, err := time.ParseDuration(d.val); err != nil || v < d.min {
			p.add(f("health."+d.key), d.val, fmt.Sprintf("is not a duration of at least %s", d.min), "write for example "+d.key+": 30s")
		}
	}
	if h.Retries < 0 {
		p.add(f("health.retries"), fmt.Sprint(h.Retries), "is not a count of failures", "use a count from 1, such as retries: 3")
	}
}

// validateContainerAddr checks parent and address: required for macvlan
// (a static address on a lab network of one of the node's NICs), optional
// inside a bridge network, refused elsewhere.
func (l Lab) validateContainerAddr(p *problems, node, name string, f func(string) string, holders map[string][]vmspec.AddrHolder) {
	n := l.Nodes[node]
	c := n.Containers[name]
	mode := c.Mode()
	if !c.OnLabNetwork() && c.Parent != "" {
		p.add(f("parent"), c.Parent, "is set on a container whose network is not macvlan or ipvlan", "use network: macvlan, or leave parent out")
	}
	switch mode {
	case ModeMacvlan, ModeIPvlan:
		l.validateMacvlan(p, node, name, f, holders)
	case ModeBridge, ModePodman:
		s := l.ContainerSubnet(node, name)
		if c.Address.IsValid() && s.IsValid() {
			gw := vmspec.AddrHolder{Addr: s.Addr().Next(), Who: "podman's gateway on that network"}
			link := vmspec.AddrLink{Name: "container network " + or(c.Network, ModePodman), Subnet: s, Holders: append([]vmspec.AddrHolder{gw}, l.containerHolders(node, name)...)}
			if e := vmspec.CheckStatic(f("address"), c.Address, link); e != nil {
				p.list = append(p.list, e)
			}
		}
	default:
		if c.Address.IsValid() {
			p.add(f("address"), c.Address.String(), "is set on a container with network "+mode+", which has no address of its own", "leave address out")
		}
	}
}

// containerHolders is the addresses given to node's other containers (by
// name order, before name).
func (l Lab) containerHolders(node, name string) []vmspec.AddrHolder {
	var out []vmspec.AddrHolder
	n := l.Nodes[node]
	for _, other := range n.ContainerNames() {
		if other == name {
			break
		}
		if a := n.Containers[other].Address; a.IsValid() {
			out = append(out, vmspec.AddrHolder{Addr: a.Addr(), Who: "container " + other + " of node " + node})
		}
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// validateMacvlan checks a macvlan container's parent and address: the
// address is another holder on the parent's lab network.
func (l Lab) validateMacvlan(p *problems, node, name string, f func(string) string, holders map[string][]vmspec.AddrHolder) {
	n := l.Nodes[node]
	c := n.Containers[name]
	nets := nodeNets(n)
	switch {
	case c.Parent == "":
		p.add(f("parent"), "", "is missing: "+c.Mode()+" hangs off one of the node's NICs", "name the lab network of one of node "+node+"'s NICs: "+strings.Join(nets, ", "))
		return
	case n.NICFor(c.Parent) < 0:
		p.add(f("parent"), c.Parent, "is not the network of one of node "+node+"'s NICs"+didYouMean(c.Parent, nets), "use one of: "+strings.Join(nets, ", "))
		return
	case l.sharesParent(node, name):
		p.add(f("parent"), c.Parent, "is the parent of both macvlan and ipvlan containers, which the kernel refuses (device or resource busy)",
			"give the ipvlan containers a parent of their own: another of node "+node+"'s NICs")
		return
	}
	if !l.validateIPvlanMode(p, node, name, f) {
		return
	}
	net := l.Networks[c.Parent]
	if !c.Address.IsValid() {
		p.add(f("address"), "", "is missing: a "+c.Mode()+" container needs a static address on "+c.Parent, "give it one, such as "+free(net, holders[c.Parent]))
		return
	}
	link := vmspec.AddrLink{Name: "network " + c.Parent, Subnet: net.Subnet(), Pool: net.Pool(), Holders: holders[c.Parent]}
	if e := vmspec.CheckStatic(f("address"), c.Address, link); e != nil {
		p.list = append(p.list, e)
		return
	}
	holders[c.Parent] = append(holders[c.Parent], vmspec.AddrHolder{Addr: c.Address.Addr(), Who: "container " + name + " of node " + node})
}

// validateContainerPorts checks ports (published: not with host or none)
// and that no VM port is taken twice, by a published port or a host-mode
// container's listen.
func (l Lab) validateContainerPorts(p *problems, node, name string, f func(string) string, ports map[int]string) {
	c := l.Nodes[node].Containers[name]
	mode := c.Mode()
	if len(c.Ports) > 0 && (mode == ModeHost || mode == ModeNone || c.OnLabNetwork()) {
		p.add(f("ports"), strings.Join(c.Ports, ","), "publishes nothing with network "+mode,
			map[string]string{ModeHost: "leave ports out: a host-mode container's listen is the VM's port",
				ModeNone: "leave ports out: network none has no way in", ModeMacvlan: "leave ports out: a macvlan container is reached on its own address",
				ModeIPvlan: "leave ports out: an ipvlan container is reached on its own address"}[mode])
		return
	}
	claim := func(field string, port int, who string) {
		if prev, ok := ports[port]; ok {
			p.add(field, fmt.Sprint(port), "is the VM's port "+fmt.Sprint(port)+" a second time (first: "+prev+")", "give each published port its own VM port")
			return
		}
		ports[port] = who
	}
	if mode == ModeHost && c.Listen > 0 {
		claim(f("listen"), c.Listen, "container "+name+"'s listen")
	}
	for i, s := range c.Ports {
		field := fmt.Sprintf("%s[%d]", f("ports"), i)
		pt, err := ParsePort(s)
		if err != nil {
			p.add(field, s, err.Error(), "write for example \"8081:80\"")
			continue
		}
		claim(field, pt.Host, "container "+name+"'s ports")
	}
}

// sharesParent reports whether an ipvlan container of node has the parent
// of a macvlan one, or the other way round: one NIC cannot carry both.
func (l Lab) sharesParent(node, name string) bool {
	n := l.Nodes[node]
	c := n.Containers[name]
	for _, other := range n.ContainerNames() {
		o := n.Containers[other]
		if o.Parent == c.Parent && o.OnLabNetwork() && o.Mode() != c.Mode() {
			return true
		}
	}
	return false
}

// validateAppAttachment checks an entry that names one of the node's app's
// containers: it gives that container a macvlan attachment beside the
// app's network, so it may only be an attachable container, with network
// macvlan, parent and address (checked as any macvlan container's) and
// nothing the app sets itself (command, listen, ports, pod, mode).
func (l Lab) validateAppAttachment(p *problems, node, name string, f func(string) string, holders map[string][]vmspec.AddrHolder) {
	n := l.Nodes[node]
	c := n.Containers[name]
	attachable := AppAttachable[n.App]
	if !slices.Contains(attachable, name) {
		p.add("nodes."+node+".containers."+name, name, "is app "+n.App+"'s own container "+name+", which keeps the app's network alone: only "+
			strings.Join(attachable, ", ")+" can gain a macvlan attachment", "leave "+name+" out of containers, or call a container of your own something else, such as "+name+"1")
		return
	}
	set := map[string]bool{"command": c.Command != "", "listen": c.Listen != 0, "ports": len(c.Ports) > 0, "pod": c.Pod != "", "mode": c.IPvlanMode != "",
		"restart": c.Restart != "", "health": c.Health.Set(), "image": c.Image != "", "insecure": c.Insecure}
	for _, k := range []string{"pod", "command", "listen", "ports", "mode", "restart", "health", "image", "insecure"} {
		if set[k] {
			p.add(f(k), "", "is set on app "+n.App+"'s container "+name+", which the app starts itself (its own command and port, on app-net)",
				"leave "+k+" out: an entry for "+name+" only attaches it, with network: macvlan, parent and address")
		}
	}
	if c.Network != ModeMacvlan {
		p.add(f("network"), c.Network, or(map[string]string{"": "is missing"}[c.Network], "is not macvlan")+": app "+n.App+"'s container "+name+" keeps app-net and can only gain a macvlan attachment",
			"use network: macvlan with parent: LABNET and address: CIDR, or leave "+name+" out of containers")
		return
	}
	l.validateMacvlan(p, node, name, f, holders)
}

// validateIPvlanMode checks what an ipvlan container's mode asks of its
// parent: one mode for all the ipvlan children of a NIC (the kernel keeps
// one per parent: a second child in another mode switches the first), and
// for l3 a static address on the parent NIC, which the host's route to the
// child goes via. It reports whether the parent is fine.
func (l Lab) validateIPvlanMode(p *problems, node, name string, f func(string) string) bool {
	n := l.Nodes[node]
	c := n.Containers[name]
	if c.Mode() != ModeIPvlan {
		return true
	}
	for _, other := range n.ContainerNames() {
		o := n.Containers[other]
		if other != name && o.Mode() == ModeIPvlan && o.Parent == c.Parent && o.IsIPvlanL3() != c.IsIPvlanL3() {
			p.add(f("mode"), or(c.IPvlanMode, IPvlanL2), "differs from container "+other+"'s on the same parent "+c.Parent+": the kernel keeps one ipvlan mode per parent NIC",
				"give both the same mode, or give one a parent of its own: another of node "+node+"'s NICs")
			return false
		}
	}
	if i := n.NICFor(c.Parent); c.IsIPvlanL3() && !n.NICs[i].Address.IsValid() {
		p.add(f("parent"), c.Parent, fmt.Sprintf("is node %s's eth%d, which has no static address: an ipvlan l3 child answers no ARP, and the host reaches it by a route via that address", node, i),
			fmt.Sprintf("give node %s's NIC on %s an address: (outside the DHCP pool), or use mode: l2", node, c.Parent))
		return false
	}
	return true
}
