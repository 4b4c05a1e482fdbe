package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"vmnet/internal/app"
	"vmnet/internal/app/registry"
	"vmnet/internal/errs"
	"vmnet/internal/valid"
	"vmnet/internal/vmspec"
)

// problems collects the field errors of one lab.
type problems struct{ list vmspec.Errors }

func (p *problems) add(field, value, problem, fix string) {
	p.list = append(p.list, &errs.FieldError{Form: errs.PathForm, Field: field, Value: value, Problem: problem, Fix: fix})
}

// addErr adds a FieldError from a shared check under this lab's field path.
func (p *problems) addErr(field string, err error) {
	if err == nil {
		return
	}
	if fe, ok := err.(*errs.FieldError); ok {
		c := *fe
		c.Field, c.Form = field, errs.PathForm
		p.list = append(p.list, &c)
		return
	}
	if es, ok := err.(vmspec.Errors); ok && len(es) > 0 {
		p.addErr(field, es[0])
		return
	}
	p.add(field, "", err.Error(), "")
}

// validate returns every problem of the lab (defaults filled in).
func (l Lab) validate() vmspec.Errors {
	var p problems
	p.addErr("name", dnsLabel(l.Name))
	if len(l.Nodes) == 0 && len(l.HostContainers) == 0 {
		p.add("nodes", "", "is missing or empty", "declare at least one node, for example nodes: {web: {image: tiny, nics: [{net: nat0}]}}")
	}
	l.validateNetworks(&p)
	l.validateNodes(&p)
	l.validateContainers(&p)
	l.validateChecks(&p)
	return p.list
}

// dnsLabel checks a lab or node name: a hostname and an ownership tag.
func dnsLabel(name string) error {
	return vmspec.ValidateName(name)
}

func (l Lab) validateNetworks(p *problems) {
	for i, name := range l.NetworkOrder {
		n := l.Networks[name]
		f := func(k string) string { return "networks." + name + "." + k }
		if n.Kind == KindBridge {
			p.addErr("networks."+name, valid.InterfaceName("networks."+name, name)) // it becomes a Linux bridge
		} else {
			p.addErr("networks."+name, vmspec.ValidateNetworkName("networks."+name, name))
		}
		macvtapOnly(p, name, n)
		switch n.Kind {
		case KindNAT, KindIsolated:
			l.validateLibvirtNet(p, name, n)
		case KindMacvtap:
			l.validateMacvtap(p, name, n)
		case KindBridge:
			if n.CIDR.IsValid() {
				p.add(f("cidr"), n.CIDR.String(), "is set on a bridge network", "give a bridge the host's address instead: address: "+hostExample(n.CIDR))
			} else if !n.Address.IsValid() {
				p.add(f("address"), "", "is missing", "give the host's address on the bridge, for example address: 192.0.2.1/24")
			} else if _, err := valid.ParseAddress(n.Address.String()); err != nil {
				p.addErr(f("address"), err)
			}
		case "":
			p.add(f("kind"), "", "is missing", "use kind: "+strings.Join(Kinds, ", kind: "))
		default:
			p.add(f("kind"), n.Kind, "is not a network kind"+didYouMean(n.Kind, Kinds), "use one of "+strings.Join(Kinds, ", "))
		}
		for _, other := range l.NetworkOrder[:i] {
			a, b := l.Networks[other].Subnet(), n.Subnet()
			if a.IsValid() && b.IsValid() && a.Overlaps(b) {
				p.add(f(subnetKey(n)), b.String(), fmt.Sprintf("overlaps network %s's subnet %s", other, a), "give each network its own subnet")
			}
		}
	}
}

func (l Lab) validateLibvirtNet(p *problems, name string, n Network) {
	f := func(k string) string { return "networks." + name + "." + k }
	switch {
	case n.Address.IsValid():
		p.add(f("address"), n.Address.String(), "is set on a "+n.Kind+" network", "give a "+n.Kind+" network its subnet instead (cidr: "+n.Address.Masked().String()+"); the host gets its first address")
	case !n.CIDR.IsValid():
		p.add(f("cidr"), "", "is missing", "give the network's subnet, for example cidr: 198.51.100.0/24")
	case !n.CIDR.Addr().Is4():
		p.add(f("cidr"), n.CIDR.String(), "is IPv6; vmnet's libvirt networks are IPv4", "use an IPv4 subnet such as 198.51.100.0/24")
	case n.CIDR.Masked() != n.CIDR:
		p.add(f("cidr"), n.CIDR.String(), "has host bits set", "write the subnet itself: cidr: "+n.CIDR.Masked().String())
	case n.CIDR.Bits() > 29:
		p.add(f("cidr"), n.CIDR.String(), "is too small for the host, a DHCP pool and guests", "use a prefix length of at most 29, such as /24")
	}
}

func subnetKey(n Network) string {
	if n.Kind == KindBridge {
		return "address"
	}
	return "cidr"
}

func hostExample(cidr netip.Prefix) string {
	return netip.PrefixFrom(cidr.Masked().Addr().Next(), cidr.Bits()).String()
}

// didYouMean is " (did you mean X?)" when word looks like a typo of a name.
func didYouMean(word string, names []string) string {
	if best := vmspec.Closest(word, names); best != "" {
		return " (did you mean " + best + "?)"
	}
	return ""
}

func (l Lab) validateNodes(p *problems) {
	holders := map[string][]vmspec.AddrHolder{} // network → addresses given so far
	for _, name := range l.NetworkOrder {
		if n := l.Networks[name]; n.HostAddr().IsValid() {
			holders[name] = []vmspec.AddrHolder{{Addr: n.HostAddr(), Who: "the host's address on network " + name}}
		}
	}
	for _, name := range l.NodeOrder {
		n := l.Nodes[name]
		base := "nodes." + name
		if name == Host {
			p.add(base, name, "is reserved: checks name the host so", "call the node something else, such as "+name+"1")
		} else if err := dnsLabel(name); err != nil {
			p.addErr(base, err)
		}
		validateVMKind(p, name, n)
		validateImage(p, base+".image", n.Image)
		if n.VCPUs < 1 || n.VCPUs > vmspec.MaxVCPUs {
			p.add(base+".vcpus", fmt.Sprint(n.VCPUs), fmt.Sprintf("is outside 1-%d", vmspec.MaxVCPUs), "use a small number such as 1 or 2")
		}
		if n.Memory < vmspec.MinMemory || n.Memory > vmspec.MaxMemory {
			p.add(base+".memory", n.Memory.String(), fmt.Sprintf("is outside %s-%s", vmspec.Size(vmspec.MinMemory), vmspec.Size(vmspec.MaxMemory)), "use for example 256MiB or 2GiB")
		}
		if n.App != "" && !slices.Contains(Apps, n.App) {
			p.add(base+".app", n.App, "is not a built-in application"+didYouMean(n.App, Apps), "use one of: "+strings.Join(Apps, ", ")+", or leave app out")
		} else if want := AppImages[n.App]; want != "" && n.Image != want && !vmspec.IsImagePath(n.Image) {
			p.add(base+".app", n.App, "needs image "+want+", which has its containers built in; image "+n.Image+" has not", "use image: "+want+", or leave app out")
		}
		switch {
		case len(n.NICs) == 0:
			p.add(base+".nics", "", "is missing or empty", "give the node at least one NIC, for example nics: [{net: "+l.firstNetwork()+"}]")
		case len(n.NICs) > vmspec.MaxNICs:
			p.add(base+".nics", "", fmt.Sprintf("has %d entries; at most %d are allowed", len(n.NICs), vmspec.MaxNICs), "use fewer NICs")
		}
		for i, nic := range n.NICs {
			l.validateNIC(p, fmt.Sprintf("%s.nics[%d]", base, i), nic, holders, fmt.Sprintf("node %s's eth%d", name, i))
		}
	}
}

// validateImage: a path, or an image name under valid.ImageName (vmspec's rule).
func validateImage(p *problems, field, image string) {
	switch {
	case image == "":
		p.add(field, "", "is missing", "name a built-in image (tiny, capstone) or the path of a disk image")
	case vmspec.IsImagePath(image):
		if !strings.HasPrefix(image, "/") {
			p.add(field, image, "is a relative path", "write the path relative to the lab file, or an absolute path")
		}
	case valid.ImageName(image) != nil:
		p.add(field, image, "is neither a built-in image name nor a path", "name a built-in image (tiny), or give a path such as ./disk.qcow2")
	}
}

func (l Lab) firstNetwork() string {
	if len(l.NetworkOrder) > 0 {
		return l.NetworkOrder[0]
	}
	return "nat0"
}

// validateNIC checks a NIC's network reference and its static address:
// inside the network's subnet with its prefix, not its network or
// broadcast address, not the host's, nor another NIC's, nor in the DHCP
// pool (vmspec.CheckStatic).
func (l Lab) validateNIC(p *problems, field string, nic NIC, holders map[string][]vmspec.AddrHolder, who string) {
	net, ok := l.Networks[nic.Net]
	switch {
	case nic.Net == "":
		p.add(field+".net", "", "is missing", "name one of this lab's networks: "+l.networkList())
		return
	case !ok:
		p.add(field+".net", nic.Net, "is not a network of this lab"+didYouMean(nic.Net, l.NetworkOrder), "use one of: "+l.networkList()+", or declare it under networks")
		return
	}
	if !nic.Address.IsValid() {
		if net.Kind == KindBridge || net.Kind == KindMacvtap {
			p.add(field+".address", "", "is missing: "+noDHCP(net), "give the NIC a static address on "+nic.Net+", such as "+free(net, holders[nic.Net]))
		}
		return
	}
	if _, err := valid.ParseAddress(nic.Address.String()); err != nil {
		p.addErr(field+".address", err)
		return
	}
	if !net.Subnet().IsValid() {
		return // the network's own error says what is wrong
	}
	link := vmspec.AddrLink{Name: "network " + nic.Net, Subnet: net.Subnet(), Pool: net.Pool(), Holders: holders[nic.Net]}
	if e := vmspec.CheckStatic(field+".address", nic.Address, link); e != nil {
		p.list = append(p.list, e)
		return
	}
	holders[nic.Net] = append(holders[nic.Net], vmspec.AddrHolder{Addr: nic.Address.Addr(), Who: who})
}

func free(n Network, hs []vmspec.AddrHolder) string {
	var taken []netip.Addr
	for _, h := range hs {
		taken = append(taken, h.Addr)
	}
	a := vmspec.FreeAddress(n.Subnet(), n.Pool(), taken...)
	if !a.IsValid() {
		return "an address inside " + n.Subnet().String()
	}
	return netip.PrefixFrom(a, n.Subnet().Bits()).String()
}

func (l Lab) networkList() string {
	if len(l.NetworkOrder) == 0 {
		return "(none declared)"
	}
	return strings.Join(l.NetworkOrder, ", ")
}

func (l Lab) nodeList() string {
	names := append([]string{Host}, l.allNodes()...)
	return strings.Join(names, ", ")
}

// allNodes is the VM nodes, then the host containers, each in file order.
func (l Lab) allNodes() []string { return append(slices.Clone(l.NodeOrder), l.HostOrder...) }

func (l Lab) validateChecks(p *problems) {
	for i, c := range l.Checks {
		f := func(k string) string { return fmt.Sprintf("checks[%d].%s", i, k) }
		if c.From == "" {
			p.add(f("from"), "", "is missing", "use host or a node: "+l.nodeList())
		} else if strings.Contains(c.From, "/") {
			l.validateContainerRef(p, f("from"), c.From)
		} else if _, ok := l.Nodes[c.From]; !ok && c.From != Host && !l.IsHostContainer(c.From) {
			p.add(f("from"), c.From, "is not host or a node of this lab"+didYouMean(c.From, append([]string{Host}, l.allNodes()...)), "use one of: "+l.nodeList())
		}
		l.validateTarget(p, f("to"), c)
		l.validateProbe(p, i, c)
		if c.Expect != ExpectReach && c.Expect != ExpectBlocked {
			p.add(f("expect"), c.Expect, "is neither reach nor blocked"+didYouMean(c.Expect, []string{ExpectReach, ExpectBlocked}), "use expect: reach (the default) or expect: blocked")
		}
	}
}

// validateTarget checks a check's to: a node, node:net (the node's address
// on that network) or an IP address.
func (l Lab) validateTarget(p *problems, field string, c Check) {
	if c.To == "" {
		p.add(field, "", "is missing", "use a node, node:net (such as web:lan) or an address")
		return
	}
	if _, err := netip.ParseAddr(c.To); err == nil {
		return
	}
	if strings.Contains(c.To, "/") {
		if c.To == c.From {
			p.add(field, c.To, "is the check's own source, which proves nothing", "check from another container, the node or the host")
			return
		}
		l.validateContainerRef(p, field, c.To)
		return
	}
	node, net, hasNet := strings.Cut(c.To, ":")
	if hc, ok := l.HostContainers[node]; ok {
		switch {
		case node == c.From:
			p.add(field, c.To, "is the check's own source, which proves nothing", "check from another node or the host")
		case hasNet && net != hc.Network:
			p.add(field, c.To, "names a network container "+node+" is not on", "use "+node+" or "+node+":"+hc.Network)
		}
		return
	}
	n, ok := l.Nodes[node]
	switch {
	case node == Host:
		p.add(field, c.To, "is the host", "checks go to a node; check from host instead, with to: a node")
	case !ok:
		p.add(field, c.To, "is not a node of this lab"+didYouMean(node, l.allNodes()), "use a node ("+strings.Join(l.allNodes(), ", ")+"), node:net or an IP address")
	case node == c.From:
		p.add(field, c.To, "is the check's own source, which proves nothing", "check from another node or the host")
	case hasNet && !slices.ContainsFunc(n.NICs, func(x NIC) bool { return x.Net == net }):
		p.add(field, c.To, "names a network node "+node+" has no NIC on", "use one of node "+node+"'s networks: "+strings.Join(nodeNets(n), ", "))
	}
}

func nodeNets(n Node) []string {
	var out []string
	for _, x := range n.NICs {
		if !slices.Contains(out, x.Net) {
			out = append(out, x.Net)
		}
	}
	sort.Strings(out)
	return out
}

// validateProbe checks that a check has exactly one probe, and its options.
func (l Lab) validateProbe(p *problems, i int, c Check) {
	f := func(k string) string { return fmt.Sprintf("checks[%d].%s", i, k) }
	var probes []string
	if c.Ping {
		probes = append(probes, "ping")
	}
	for _, port := range []struct {
		key  string
		port int
	}{{"tcp", c.TCP}, {"http", c.HTTP}} {
		if port.port != 0 {
			probes = append(probes, port.key)
			if port.port < 1 || port.port > 65535 {
				p.add(f(port.key), fmt.Sprint(port.port), "is not a port (1-65535)", "use a port such as 8080")
			}
		}
	}
	if c.DNS != "" {
		probes = append(probes, "dns")
		if !valid.IsHostname(c.DNS) {
			p.add(f("dns"), c.DNS, "is not a hostname", "use a name to resolve, such as web.lab")
		}
	}
	switch {
	case len(probes) == 0:
		p.add(fmt.Sprintf("checks[%d]", i), "", "has no probe", "add one of ping: true, tcp: PORT, http: PORT or dns: NAME")
	case len(probes) > 1:
		p.add(f(probes[1]), "", "is a second probe in one check (with "+probes[0]+")", "write one check per probe")
	}
	if c.HTTP == 0 && (c.Path != "" || c.Body != "") {
		p.add(fmt.Sprintf("checks[%d]", i), "", "has path or body without http", "add http: PORT, or leave path and body out")
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		p.add(f("path"), c.Path, "does not start with '/'", "write a URL path such as /health")
	}
	if c.Body != "" {
		if _, err := regexp.Compile(c.Body); err != nil {
			p.add(f("body"), c.Body, "is not a regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "), "escape special characters with \\, or quote a literal")
		}
	}
}

// apps are the built-in applications (internal/app/registry): the one
// description of each that validation here and the checks share.
var apps = registry.Builtin()

// AppContainers are the containers of each built-in application, which
// checks may name as NODE/CONTAINER, from the app's description.
var AppContainers = apps.Containers()

// Application is the description of the node's app; ok is false for a
// node without one (or with an app: that validation refuses).
func (n Node) Application() (a app.App, ok bool) { return apps.Lookup(n.App) }

// validateContainerRef checks a NODE/CONTAINER reference: NODE is a node
// of this lab with an app, CONTAINER one of that app's containers.
func (l Lab) validateContainerRef(p *problems, field, ref string) {
	node, ctr, _ := strings.Cut(ref, "/")
	n, ok := l.Nodes[node]
	var withApp []string
	for _, name := range l.NodeOrder {
		if len(l.Nodes[name].AllContainers()) > 0 {
			withApp = append(withApp, name)
		}
	}
	choices := "none of this lab's nodes has an app: give one app: capstone, or check from or to a node"
	if len(withApp) > 0 {
		choices = "use NODE/CONTAINER with a node that has an app (" + strings.Join(withApp, ", ") + ")"
	}
	switch {
	case !ok:
		p.add(field, ref, "names a node that is not in this lab"+didYouMean(node, l.NodeOrder), choices)
	case len(n.AllContainers()) == 0:
		p.add(field, ref, "names a container on node "+node+", which has no app", choices)
	case !slices.Contains(n.AllContainers(), ctr) && n.App != "":
		p.add(field, ref, "is not a container of app "+n.App+didYouMean(ctr, n.AllContainers()),
			"use one of: "+node+"/"+strings.Join(n.AllContainers(), ", "+node+"/"))
	case !slices.Contains(n.AllContainers(), ctr):
		p.add(field, ref, "is not a container of node "+node+didYouMean(ctr, n.AllContainers()),
			"use one of: "+node+"/"+strings.Join(n.AllContainers(), ", "+node+"/"))
	}
}
