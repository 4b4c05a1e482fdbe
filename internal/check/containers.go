package check

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"vmnet/internal/app"
	"vmnet/internal/lab"
)

// The derived checks of a node's own containers (lab containers, as
// opposed to its app's): each network mode's semantics, what must work and
// what must not.
//
//	podman network: the VM reaches the container (ping, its listen port);
//	  each published port is open from the host on the VM's address; the
//	  listen port, when nothing publishes it, is closed there.
//	host: the container's listen port answers on the VM's address.
//	none: the container reaches nothing (its ping to the VM goes nowhere),
//	  with its ping to 127.0.0.1 as the control that it runs.
//	pod: every other member reaches a member's listen port on 127.0.0.1;
//	  ports as for a podman network, published by the pod.
//	macvlan: the host reaches the container on the bridge (ping, listen
//	  port); the parent VM does not (expected blocked, the host's ping its
//	  control).
//	an app container's macvlan attachment (the capstone's api): as
//	  macvlan, with the app's own answer on its port (appMacvlanChecks).
//
// A check whose outcome rests on a mode carries it in Check.Mode, so a
// wrong expectation fails with that mode's own cause.

// loopback is where pod members find each other.
var loopback = netip.MustParseAddr("127.0.0.1")

// containerMatrix is node's container checks, planned from the lab file
// and t (the node's live NIC addresses).
func (p *labPlan) containerMatrix(node string) []Check {
	n := p.l.Nodes[node]
	if len(n.Containers) == 0 {
		return nil
	}
	t := p.targets[node]
	addrs := p.l.ContainerAddrs(node)
	access := accessNIC(n)
	var out []Check
	for _, name := range n.ContainerNames() {
		c := n.Containers[name]
		if n.IsAppContainer(name) {
			out = append(out, appMacvlanChecks(t, name, addrs[name], n.NICFor(c.Parent))...)
			continue
		}
		switch c.Mode() {
		case lab.ModePodman, lab.ModeBridge:
			out = append(out, bridgeChecks(t, name, c, addrs[name])...)
			out = append(out, publishChecks(p.l, t, node, name, access)...)
		case lab.ModePod:
			out = append(out, podChecks(t, n, name)...)
			out = append(out, publishChecks(p.l, t, node, name, access)...)
		case lab.ModeHost:
			if c.Listen > 0 {
				out = append(out, hostTCP(t, access, c.Listen, WantOpen, name))
			}
		case lab.ModeNone:
			out = append(out, noneChecks(t, name, access)...)
		case lab.ModeMacvlan:
			out = append(out, macvlanChecks(t, name, c, addrs[name], n.NICFor(c.Parent))...)
			out = append(out, neighCheck(t, name, addrs[name], n.NICFor(c.Parent), WantOwnMAC))
		case lab.ModeIPvlan:
			out = append(out, ipvlanChecks(t, name, c, addrs[name], n.NICFor(c.Parent))...)
		}
	}
	return mergeSame(out)
}

// mergeSame keeps one check per ID, with the Requires of all: two
// containers that both leave port 80 unpublished share the closed check.
func mergeSame(checks []Check) []Check {
	var out []Check
	at := map[string]int{}
	for _, c := range checks {
		if i, ok := at[c.ID]; ok {
			for _, r := range c.Requires {
				if !slices.Contains(out[i].Requires, r) {
					out[i].Requires = append(out[i].Requires, r)
				}
			}
			continue
		}
		at[c.ID] = len(out)
		out = append(out, c)
	}
	return out
}

// accessNIC is the NIC the host reaches the node's containers through: its
// first with a static address, else its first.
func accessNIC(n lab.Node) int {
	return max(0, slices.IndexFunc(n.NICs, func(x lab.NIC) bool { return x.Address.IsValid() }))
}

// bridgeChecks: the VM reaches a container on a podman bridge network, by
// ping and on its listen port.
func bridgeChecks(t Target, name string, c lab.Container, a netip.Addr) []Check {
	out := []Check{vmToContainer(t, name, a, 0, WantReply, "")}
	if c.Listen > 0 {
		out = append(out, vmToContainer(t, name, a, c.Listen, WantOpen, ""))
	}
	return out
}

// vmToContainer is the VM pinging (port 0) or connecting to container
// name at a.
func vmToContainer(t Target, name string, a netip.Addr, port int, want Want, mode string) Check {
	c := Check{ID: "ping:" + t.Name + "->" + inside(t, name), Source: t.Name, Target: inside(t, name),
		Method: MethodPing, From: Place{Kind: OnVM}, Want: want, To: a, NIC: -1, Container: name, Mode: mode}
	c.Address = a.String()
	if port > 0 {
		c.Method, c.Port = MethodTCP, uint16(port)
		c.ID = "tcp:" + t.Name + "->" + inside(t, name) + ":" + strconv.Itoa(port)
		c.Address = netip.AddrPortFrom(a, c.Port).String()
	}
	c.Expect = string(want)
	return c
}

// publishChecks: each port container name publishes is open from the host
// on the VM's access address; its listen port, when no container of the
// node claims it as a VM port, is closed there (with the VM reaching the
// container on it, or a pod member doing so on 127.0.0.1, as control).
func publishChecks(l lab.Lab, t Target, node, name string, access int) []Check {
	c := l.Nodes[node].Containers[name]
	var out []Check
	for _, pt := range c.PublishedPorts() {
		out = append(out, hostTCP(t, access, pt.Host, WantOpen, name))
	}
	if c.Listen == 0 || vmPortTaken(l.Nodes[node], c.Listen) {
		return out
	}
	closed := hostTCP(t, access, c.Listen, WantClosed, name)
	closed.Container = ""
	if c.Mode() == lab.ModePod {
		if others := podPeers(l.Nodes[node], name); len(others) > 0 {
			closed.Requires = append(closed.Requires, podTCP(t, others[0], c.Listen, name).ID)
		}
	} else if a, ok := l.ContainerAddrs(node)[name]; ok {
		closed.Requires = append(closed.Requires, vmToContainer(t, name, a, c.Listen, WantOpen, "").ID)
	}
	return append(out, closed)
}

// vmPortTaken reports whether one of n's containers publishes port on the
// VM or listens there (host mode).
func vmPortTaken(n lab.Node, port int) bool {
	for _, c := range n.Containers {
		if c.Mode() == lab.ModeHost && c.Listen == port {
			return true
		}
		if slices.ContainsFunc(c.PublishedPorts(), func(p lab.Port) bool { return p.Host == port }) {
			return true
		}
	}
	a, ok := n.Application()
	return ok && slices.Contains(a.Published(), port)
}

// hostTCP is a TCP connect from the host to the VM's NIC i on port; a
// closed one requires the NIC to answer ping.
func hostTCP(t Target, i, port int, want Want, container string) Check {
	c := Check{Source: lab.Host, Method: MethodTCP, From: Place{Kind: OnHost}, Want: want, Port: uint16(port), NIC: i, Container: container}
	c.Expect = string(want)
	if i >= len(t.NICs) {
		c.ID, c.Target, c.Address, c.Unknown = fmt.Sprintf("tcp:host->%s:eth%d:%d", t.Name, i, port), fmt.Sprintf("%s:eth%d", t.Name, i), "-", "the node has no such NIC"
		return c
	}
	n := t.NICs[i]
	c.Target, c.To = nicLabel(t, n), n.Address
	c.ID = "tcp:host->" + c.Target + ":" + strconv.Itoa(port)
	c.Address, c.Unknown = addrOrWhy(n.Address, noNICAddress(t, n))
	if n.Address.IsValid() {
		c.Address = netip.AddrPortFrom(n.Address, c.Port).String()
	}
	if want.Negative() {
		c.Requires = []string{hostToVMPing(t, i).ID}
	}
	return c
}

// podPeers is the other members of name's pod.
func podPeers(n lab.Node, name string) []string {
	return slices.DeleteFunc(slices.Clone(n.Pods()[n.Containers[name].Pod]), func(m string) bool { return m == name })
}

// podChecks: every other member of name's pod reaches name's listen port
// on 127.0.0.1: the pod's members share one network namespace.
func podChecks(t Target, n lab.Node, name string) []Check {
	c := n.Containers[name]
	if c.Listen == 0 {
		return nil
	}
	var out []Check
	for _, peer := range podPeers(n, name) {
		out = append(out, podTCP(t, peer, c.Listen, name))
	}
	return out
}

// podTCP is pod member from connecting to 127.0.0.1:port, where member to
// listens.
func podTCP(t Target, from string, port int, to string) Check {
	c := Check{ID: "tcp:" + inside(t, from) + "->" + inside(t, to) + "@127.0.0.1:" + strconv.Itoa(port), Source: inside(t, from),
		Target: inside(t, to) + " (pod localhost)", Method: MethodTCP, Expect: string(WantOpen), From: Place{Kind: OnContainer, Container: from},
		Want: WantOpen, To: loopback, Port: uint16(port), NIC: -1, Container: to, Mode: lab.ModePod}
	c.Address = netip.AddrPortFrom(loopback, c.Port).String()
	return c
}

// noneChecks: a container with network none pings its own 127.0.0.1 (the
// control: it runs, and ping works in it) and cannot ping the VM.
func noneChecks(t Target, name string, access int) []Check {
	from := Place{Kind: OnContainer, Container: name}
	ctl := Check{ID: "ping:" + inside(t, name) + "->127.0.0.1", Source: inside(t, name), Target: inside(t, name) + " (lo)",
		Address: loopback.String(), Method: MethodPing, Expect: string(WantReply), From: from, Want: WantReply, To: loopback, NIC: -1, Container: name}
	blocked := Check{Source: inside(t, name), Method: MethodPing, Expect: string(WantNoReply), From: from, Want: WantNoReply,
		NIC: -1, Mode: lab.ModeNone, Requires: []string{ctl.ID}}
	if access < len(t.NICs) {
		n := t.NICs[access]
		blocked.Target, blocked.To = nicLabel(t, n), n.Address
		blocked.Address, blocked.Unknown = addrOrWhy(n.Address, noNICAddress(t, n))
	} else {
		blocked.Target, blocked.Address, blocked.Unknown = t.Name, "-", "the node has no NIC"
	}
	blocked.ID = "ping:" + inside(t, name) + "->" + blocked.Target
	return []Check{ctl, blocked}
}

// macvlanChecks: the host reaches a macvlan container on the parent's
// network (ping, listen port); its parent VM must not (macvlan in bridge
// mode never hands the parent its children's frames), with the host's
// ping as the control.
func macvlanChecks(t Target, name string, c lab.Container, a netip.Addr, nic int) []Check {
	ping := Check{ID: "ping:host->" + inside(t, name), Source: lab.Host, Target: inside(t, name), Address: a.String(),
		Method: MethodPing, Expect: string(WantReply), From: Place{Kind: OnHost}, Want: WantReply, To: a, NIC: nic, Container: name}
	out := []Check{ping}
	if c.Listen > 0 {
		tcp := ping
		tcp.ID, tcp.Method, tcp.Port, tcp.Expect, tcp.Want = "tcp:host->"+inside(t, name)+":"+strconv.Itoa(c.Listen), MethodTCP, uint16(c.Listen), string(WantOpen), WantOpen
		tcp.Address = netip.AddrPortFrom(a, tcp.Port).String()
		out = append(out, tcp)
	}
	parent := vmToContainer(t, name, a, 0, WantNoReply, lab.ModeMacvlan)
	parent.Requires = []string{ping.ID}
	return append(out, parent)
}

// appMacvlanChecks: an app container with a macvlan attachment beside the
// app's network (the capstone's api) is a macvlan child on its parent's
// lab network: the host reaches it there (ping, and the app's HTTP answer
// on the port the container serves, straight from the bridge, past the
// containers in front of it and the guest's firewall), its parent VM does
// not (expected blocked, the host's ping its control), and the host sees
// it at a MAC of its own. The app matrix's checks of it on the app's
// network stay as they are.
func appMacvlanChecks(t Target, name string, a netip.Addr, nic int) []Check {
	out := macvlanChecks(t, name, lab.Container{}, a, nic)
	var port int
	var h app.HTTP
	if t.App != nil {
		ctr, _ := t.App.Container(name)
		port, h = ctr.Port, t.App.HTTP
	}
	get := Check{ID: "http:host->" + inside(t, name) + ":" + strconv.Itoa(port), Source: lab.Host, Target: inside(t, name),
		Method: MethodHTTP, Expect: h.Expect, From: Place{Kind: OnHost}, Want: Want(h.Judge),
		To: a, Port: uint16(port), Path: h.Path, NIC: nic, Container: name}
	get.Address = "http://" + netip.AddrPortFrom(a, get.Port).String() + h.Path
	out = slices.Insert(out, 1, get)
	return append(out, neighCheck(t, name, a, nic, WantOwnMAC))
}

// withLabContainers gives t the lab file's addresses of node's own
// containers: planned, as vmnet starts them (--ip), live or not.
func withLabContainers(l lab.Lab, node string, t Target) Target {
	n := l.Nodes[node]
	if len(n.Containers) == 0 {
		return t
	}
	t.Containers = slices.Clone(t.Containers)
	addrs := l.ContainerAddrs(node)
	for _, name := range n.ContainerNames() {
		if n.IsAppContainer(name) {
			continue // its address on app-net is podman's (Discover); its macvlan one is in the checks
		}
		i := slices.IndexFunc(t.Containers, func(c Container) bool { return c.Name == name })
		if i < 0 {
			t.Containers = append(t.Containers, Container{Name: name, State: "running"})
			i = len(t.Containers) - 1
		}
		t.Containers[i].IP = addrs[name]
	}
	return t
}

// pathMode is the container network mode a declared check's outcome
// rests on: macvlan from the parent VM to its child, none from or to a
// container with network none; "" for others.
func (p *labPlan) pathMode(src, dst endpoint, from Place) string {
	mode := func(node, ctr string) string {
		if c, ok := p.l.Nodes[node].Containers[ctr]; ok && ctr != "" && !p.l.Nodes[node].IsAppContainer(ctr) {
			return c.Mode()
		}
		return ""
	}
	switch {
	case mode(src.node, src.container) == lab.ModeNone, mode(dst.node, dst.container) == lab.ModeNone:
		return lab.ModeNone
	case from.Kind == OnVM && src.node == dst.node && (mode(dst.node, dst.container) == lab.ModeMacvlan || mode(dst.node, dst.container) == lab.ModeIPvlan):
		return mode(dst.node, dst.container)
	}
	return p.hostMacvlanPath(src, dst, from)
}

// modeLimit diagnoses a failed check whose outcome rests on a network
// mode: a reach expectation the mode rules out, or a blocked path the mode
// should hold that got through.
func (d *diagnoser) modeLimit(r *Result, f *finding) bool {
	hop := r.Source + " → " + r.Target
	switch {
	case r.Mode == "" || r.Unknown != "" || r.obs.execErr:
		return false
	case r.Mode == ModeIPvlanL3:
		return l3Limit(r, f, hop)
	case r.Method == MethodNeigh && r.obs.err == nil && strings.HasPrefix(r.Actual, "MAC "):
		f.blame(hop, CauseModeNotHeld, "%s: the host sees %s at %s, expected %s: the container is not on %s over that NIC ('podman inspect' and 'ip -d link' in the guest)", r.Mode, r.Address, strings.TrimPrefix(r.Actual, "MAC "), r.Expect, r.Mode)
	case !r.Want.Negative() && r.Mode == lab.ModeMacvlan && (r.From.Kind == OnHost || strings.HasPrefix(r.Target, "host:")):
		f.blame(hop, CauseMacvlanParent, "a macvlan child of a bridge and the host's own address on that bridge never reach each other (the parent does not receive its children's frames); reach it from a VM on the bridge, give it mode: veth, or expect: blocked")
	case !r.Want.Negative() && (r.Mode == lab.ModeMacvlan || r.Mode == lab.ModeIPvlan):
		f.blame(hop, CauseMacvlanParent, "%s is on %s over %s's own NIC: the parent never receives its children's frames; reach it from the host or another node on that network, or expect: blocked", r.Target, r.Mode, r.Source)
	case !r.Want.Negative() && r.Mode == lab.ModeNone:
		f.blame(hop, CauseNoneNetwork, "a container with network none has only lo: nothing reaches it and it reaches nothing; give it a network, or expect: blocked")
	case r.Want.Negative() && gotThrough(r) && (r.Mode == lab.ModeMacvlan || r.Mode == lab.ModeIPvlan):
		f.blame(hop, CauseModeNotHeld, "%s: a parent cannot reach its child, yet %s answered %s: the container is not on %s over this NIC ('podman inspect' in the guest)", r.Mode, r.Address, r.Source, r.Mode)
	case r.Want.Negative() && gotThrough(r) && r.Mode == lab.ModeNone:
		f.blame(hop, CauseModeNotHeld, "network none: the container should have only lo, yet it reached %s: it has another network ('podman inspect' in the guest)", r.Address)
	default:
		return false
	}
	return true
}

// modeControls is the control of a negative check whose mode rules out
// the usual one (a ping from the same place): for the macvlan parent, the
// host reaching the child; from a none container, its ping to its own lo.
func (p *labPlan) modeControls(c Check, src, dst endpoint) []string {
	t := p.targets[src.node]
	switch c.Mode {
	case lab.ModeMacvlan, lab.ModeIPvlan:
		return []string{"ping:host->" + inside(p.targets[dst.node], dst.container)}
	case lab.ModeNone:
		if ctr := src.container; p.l.Nodes[src.node].Containers[ctr].Mode() == lab.ModeNone {
			return []string{"ping:" + inside(t, ctr) + "->127.0.0.1"}
		}
		return []string{"ping:" + inside(p.targets[dst.node], dst.container) + "->127.0.0.1"}
	}
	return nil
}

// Neighbours is a Host that can read its neighbour table (KernelHost);
// neigh checks need it.
type Neighbours interface {
	// Neigh is the MAC the host's neighbour table has for a, or "".
	Neigh(a netip.Addr) (string, error)
}

// neigh pings c.To from the host (so the neighbour entry is fresh), then
// compares the MAC the host's neighbour table has for it with c.MAC.
func (r *runner) neigh(ctx context.Context, res *Result) {
	c := res.Check
	nh, ok := r.host.(Neighbours)
	if !ok {
		res.Actual = "this host cannot read its neighbour table"
		return
	}
	if err := r.host.Ping(ctx, c.To, r.opt.PingTimeout); err != nil {
		res.obs.err, res.Actual = err, "no reply to the ping that fills the neighbour table: "+firstLine(err.Error())
		return
	}
	mac, err := nh.Neigh(c.To)
	switch {
	case err != nil:
		res.Actual = "neighbour table: " + firstLine(err.Error())
		return
	case mac == "" && c.Want != WantNoNeigh:
		res.Actual = "no neighbour entry after a reply"
		return
	}
	if c.Want == WantNoNeigh {
		res.Actual, res.Pass = noNeigh(mac)
		return
	}
	same := strings.EqualFold(mac, c.MAC)
	res.Actual, res.Pass = "MAC "+mac, same == (c.Want == WantSameMAC)
	if same {
		res.Actual += " (the parent NIC's)"
	}
}

// ipvlanChecks: as macvlanChecks, plus the host seeing the child's address
// at its parent NIC's MAC, which ipvlan shares; in l3 mode ipvlanL3Checks.
func ipvlanChecks(t Target, name string, c lab.Container, a netip.Addr, nic int) []Check {
	if c.IsIPvlanL3() {
		return ipvlanL3Checks(t, name, c, a, nic)
	}
	out := macvlanChecks(t, name, c, a, nic)
	out[len(out)-1].Mode = lab.ModeIPvlan
	return append(out, neighCheck(t, name, a, nic, WantSameMAC))
}

// neighCheck is the host's neighbour entry for container name's address a
// compared with the MAC of the VM's NIC nic.
func neighCheck(t Target, name string, a netip.Addr, nic int, want Want) Check {
	c := Check{ID: "neigh:host->" + inside(t, name), Source: lab.Host, Target: inside(t, name), Address: a.String(),
		Method: MethodNeigh, From: Place{Kind: OnHost}, Want: want, To: a, NIC: nic, Container: name, Mode: lab.ModeIPvlan}
	if want == WantOwnMAC {
		c.Mode = lab.ModeMacvlan
	}
	if nic >= 0 && nic < len(t.NICs) {
		c.MAC = t.NICs[nic].MAC
	}
	c.Expect = string(want)
	if c.MAC != "" {
		c.Expect += " (" + t.NICs[nic].Guest + " " + c.MAC + ")"
	} else {
		c.Unknown = fmt.Sprintf("%s's NIC on the parent network has no known MAC", t.Name)
	}
	return c
}
