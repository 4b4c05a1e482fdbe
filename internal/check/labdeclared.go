package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"vmnet/internal/app"
	"vmnet/internal/lab"
)

// endpoint is where a declared check's from or to points.
type endpoint struct {
	label     string     // as the file writes it: host, web, web:lan, web/db, 192.0.2.5
	node      string     // the node it is on or reaches; "" for the host or an address outside the lab
	nic       int        // index of the node's NIC it reaches, or -1
	container string     // a container of the node's app, or ""
	addr      netip.Addr // to: the address reached; invalid when unknown
	why       string     // to: why addr is unknown
}

// from reads a declared check's from.
func (p *labPlan) from(s string) (endpoint, Place) {
	node, ctr, isCtr := strings.Cut(s, "/")
	switch {
	case s == lab.Host:
		return endpoint{label: s, nic: -1}, Place{Kind: OnHost}
	case isCtr:
		return endpoint{label: s, node: node, nic: -1, container: ctr}, Place{Kind: OnContainer, Container: ctr}
	}
	return endpoint{label: s, node: s, nic: -1}, Place{Kind: OnVM}
}

// to reads a declared check's to, as seen from src: a node is reached on
// its first NIC on a network src's node has a NIC on (its first NIC from
// the host, or when they share none).
func (p *labPlan) to(s string, src endpoint) endpoint {
	ep := endpoint{label: s, nic: -1}
	if a, err := netip.ParseAddr(s); err == nil {
		ep.addr = a
		ep.node, ep.nic = p.holder(a)
		return ep
	}
	if node, ctr, ok := strings.Cut(s, "/"); ok {
		ep.node, ep.container = node, ctr
		c := containerLookup(p.targets[node])(ctr)
		ep.addr, ep.why = c.IP, noAppAddress(p.targets[node], c)
		return ep
	}
	node, net, hasNet := strings.Cut(s, ":")
	ep.node = node
	switch {
	case hasNet:
		ep.nic = p.nicOn(node, net)
	case src.node != "":
		for i, nic := range labNICs(p.l, node) {
			if ep.nic < 0 && p.nicOn(src.node, nic.Net) >= 0 {
				ep.nic = i
			}
		}
	}
	ep.nic = max(ep.nic, 0)
	t := p.targets[node]
	if ep.nic < len(t.NICs) {
		ep.addr, ep.why = t.NICs[ep.nic].Address, noNICAddress(t, t.NICs[ep.nic])
	} else {
		ep.why = p.nicMissing(node, ep.nic)
	}
	return ep
}

// holder finds the node NIC that has address a, live or in the file.
func (p *labPlan) holder(a netip.Addr) (string, int) {
	for _, name := range allNodes(p.l) {
		for i, n := range p.targets[name].NICs {
			if n.Address == a {
				return name, i
			}
		}
		for i, n := range labNICs(p.l, name) {
			if n.Address.Addr() == a {
				return name, i
			}
		}
	}
	return "", -1
}

// sourceNIC is the index of src's node's NIC the path to dst leaves by:
// its NIC on dst's network, or on a network whose subnet holds dst's
// address; -1 for none.
func (p *labPlan) sourceNIC(src, dst endpoint) int {
	if src.node == "" {
		return -1
	}
	if dst.node != "" && dst.nic >= 0 && dst.nic < len(labNICs(p.l, dst.node)) {
		if i := p.nicOn(src.node, labNICs(p.l, dst.node)[dst.nic].Net); i >= 0 {
			return i
		}
	}
	return slices.IndexFunc(labNICs(p.l, src.node), func(n lab.NIC) bool {
		return dst.addr.IsValid() && p.l.Networks[n.Net].Subnet().Contains(dst.addr)
	})
}

// addDeclared plans the file's check i, and the positive controls a
// negative one needs.
func (p *labPlan) addDeclared(i int, dc lab.Check) {
	src, from := p.from(dc.From)
	dst := p.to(dc.To, src)
	run := src.node
	c := Check{Source: src.label, Target: dst.label, From: from, To: dst.addr, NIC: p.sourceNIC(src, dst)}
	if src.node == "" { // from the host: in the run of the node reached, whose NIC diagnosis walks
		run, c.NIC = dst.node, dst.nic
	} else if dst.node != "" && dst.node != src.node && dst.nic >= 0 {
		c.peer, c.peerNIC = dst.node, dst.nic // and, after the source's NIC, the far end's
	}
	if run == "" {
		run = HostRun
	}
	if dst.node == run {
		c.Container = dst.container
	}
	var dstApp *app.App
	if run == dst.node {
		dstApp = p.targets[dst.node].App
	}
	declaredProbe(&c, dc, dstApp)
	c.Mode = p.pathMode(src, dst, from)
	if !c.To.IsValid() && c.Method != MethodDNS {
		c.Address, c.Unknown = "-", dst.why
	}
	if c.Method == MethodDNS && from.Kind == OnHost {
		c.Unknown = "a name lookup from the host is not a check vmnet makes: look the name up from a node (from: NODE)"
	}
	c.ID = fmt.Sprintf("checks[%d]:%s:%s->%s", i, c.Method, c.Source, c.Target)
	if c.Port != 0 {
		c.ID += ":" + strconv.Itoa(int(c.Port))
	}
	if c.Want.Negative() {
		c.Requires = p.controls(run, c, src, dst)
	}
	p.declared[c.ID] = i
	p.addNeeding(run, c, src.node, dst.node)
}

// declaredProbe fills in c's method, want and what it reaches from the
// file's probe and expect. to is the app of the node the check reaches, in
// that node's run (or nil): an HTTP check to the port the app publishes is
// diagnosed along the app's path (capstone: proxy → api → db).
func declaredProbe(c *Check, dc lab.Check, to *app.App) {
	blocked := dc.Expect == lab.ExpectBlocked
	pick := func(reach, block Want) Want {
		if blocked {
			return block
		}
		return reach
	}
	switch {
	case dc.Ping:
		c.Method, c.Want = MethodPing, pick(WantReply, WantNoReply)
		c.Address = c.To.String()
	case dc.TCP != 0:
		c.Method, c.Want, c.Port = MethodTCP, pick(WantOpen, WantClosed), uint16(dc.TCP)
		c.Address = netip.AddrPortFrom(c.To, c.Port).String()
	case dc.HTTP != 0:
		c.Method, c.Want, c.Port, c.Path, c.Body = MethodHTTP, pick(WantBody, WantNoHTTP), uint16(dc.HTTP), dc.Path, dc.Body
		c.Address = "http://" + netip.AddrPortFrom(c.To, c.Port).String() + dc.Path
		if to != nil && int(c.Port) == to.Entry().Publish {
			c.Container = to.HTTP.Container
		}
	case dc.DNS != "":
		c.Method, c.Want, c.Name, c.Address = MethodDNS, pick(WantResolves, WantUnresolved), dc.DNS, dc.DNS
		if _, err := netip.ParseAddr(dc.To); err != nil && !strings.Contains(dc.To, "/") {
			c.To = netip.Addr{} // a node's name in DNS is whatever its DHCP server says
		}
	}
	c.Expect = expectText(*c)
}

// expectText says what c expects, for people.
func expectText(c Check) string {
	switch c.Want {
	case WantBody:
		if c.Body == "" {
			return "HTTP 2xx"
		}
		return fmt.Sprintf("HTTP 2xx, body ~ %q", c.Body)
	case WantResolves:
		if c.To.IsValid() {
			return "resolves to " + c.To.String()
		}
	}
	return string(c.Want)
}

// controls lists the positive checks a negative check c needs before it
// means anything. A closed port or an unanswered GET needs a ping from the
// same place to the same address (added to the plan when no derived check
// is it). A blocked ping cannot have that control, so it needs both ends to
// work on their own: the target answering the host on that NIC, and the
// source reaching the host out of its NIC (a ping from the host to an
// address outside the lab has none). A name that must not resolve needs
// the source's resolver to be reachable (dnsControl).
func (p *labPlan) controls(run string, c Check, src, dst endpoint) []string {
	if ids := p.modeControls(c, src, dst); ids != nil {
		return ids
	}
	var out []string
	switch c.Method {
	case MethodTCP, MethodHTTP:
		if c.To.IsValid() {
			out = append(out, p.pingControl(run, c, src, dst))
		}
	case MethodPing:
		if t := p.targets[dst.node]; dst.node != "" && dst.nic >= 0 && dst.nic < len(t.NICs) {
			if c.From.Kind == OnHost {
				out = append(out, vmToHostPing(t, dst.nic).ID)
			} else {
				out = append(out, hostToVMPing(t, dst.nic).ID)
			}
		}
		if t := p.targets[src.node]; c.From.Kind == OnVM && c.NIC >= 0 && c.NIC < len(t.NICs) {
			out = append(out, vmToHostPing(t, c.NIC).ID)
		}
		if c.From.Kind == OnContainer {
			out = append(out, "ping:"+src.container+"->"+src.node)
		}
	case MethodDNS:
		out = append(out, p.dnsControl(c, src)...)
	}
	return slices.Compact(out)
}

// pingControl is the ID of a ping from c's place to c's address in run,
// added when the plan has none.
func (p *labPlan) pingControl(run string, c Check, src, dst endpoint) string {
	for _, o := range p.runs[run] {
		if o.Method == MethodPing && o.Want == WantReply && o.From == c.From && o.To == c.To {
			return o.ID
		}
	}
	ctl := Check{
		ID: "ping:" + c.Source + "->" + c.Target, Source: c.Source, Target: c.Target, Address: c.To.String(),
		Method: MethodPing, Expect: "reply", From: c.From, Want: WantReply, To: c.To, NIC: c.NIC, Container: c.Container,
	}
	if a := p.targets[dst.node].App; a != nil && ctl.Container == a.HTTP.Container && c.Method == MethodHTTP {
		ctl.Container = "" // the app's entry (the proxy) is the HTTP check's container, not the ping's
	}
	for n, base := 2, ctl.ID; p.hasID(ctl.ID); n++ {
		ctl.ID = base + "#" + strconv.Itoa(n)
	}
	p.addNeeding(run, ctl, src.node, dst.node)
	return ctl.ID
}

// hasID reports whether any run has a check with that ID.
func (p *labPlan) hasID(id string) bool {
	for _, checks := range p.runs {
		if slices.ContainsFunc(checks, func(c Check) bool { return c.ID == id }) {
			return true
		}
	}
	return false
}

// dnsControl is what a name that must not resolve needs: from an app's
// container, its own lookup on the app's network (capstone: api finds db,
// proxy finds api) or, for one that looks nothing up (db), its ping to the
// VM; from a VM, its ping to the host on its first NAT network (where
// libvirt's dnsmasq answers), or on its first NIC.
func (p *labPlan) dnsControl(c Check, src endpoint) []string {
	switch c.From.Kind {
	case OnContainer:
		if a := p.targets[src.node].App; a != nil {
			for _, l := range a.Lookups {
				if src.container == l.From {
					return []string{"dns:" + l.From + "->" + l.Name}
				}
			}
		}
		return []string{"ping:" + src.container + "->" + src.node}
	case OnVM:
		t := p.targets[src.node]
		i := slices.IndexFunc(labNICs(p.l, src.node), func(n lab.NIC) bool { return p.l.Networks[n.Net].Kind == lab.KindNAT })
		if i = max(i, 0); i < len(t.NICs) {
			return []string{vmToHostPing(t, i).ID}
		}
	}
	return nil
}
