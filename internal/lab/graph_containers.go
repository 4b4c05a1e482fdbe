package lab

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// How a node's containers are drawn: inside a frame around their VM, each
// container a small box labelled with its name, mode, address and ports;
// the node's podman networks small shapes beside them that their
// containers link to; a pod a frame of its own around its members;
// macvlan and ipvlan containers a dashed line to the lab network they
// have an address on. A lab without containers is drawn as before.
const (
	ctrFill    = "#f5f3ff"
	ctrStroke  = "#6d28d9"
	podFill    = "#ede9fe"
	cnetFill   = "#ecfccb"
	cnetStroke = "#4d7c0f"
	guestFill  = "#f8fafc"
)

// hasContainers reports whether any node has containers.
func (l Lab) hasContainers() bool {
	for _, n := range l.Nodes {
		if len(n.Containers) > 0 {
			return true
		}
	}
	return false
}

// containerNets is the podman networks node's containers use or may use:
// its container-networks in name order, then podman's default when a
// container or pod is on it.
func containerNets(n Node) []string {
	var out []string
	for name := range n.ContainerNetworks {
		out = append(out, name)
	}
	slices.Sort(out)
	for _, c := range n.Containers {
		if m := c.Mode(); (m == ModePodman || m == ModePod) && !slices.Contains(out, ModePodman) {
			out = append(out, ModePodman)
		}
	}
	return out
}

// cnetLines label one of node's podman networks.
func cnetLines(n Node, name string) []string {
	if cn, ok := n.ContainerNetworks[name]; ok {
		return []string{name, "podman bridge " + cn.Subnet.Masked().String()}
	}
	return []string{name, "podman default " + PodmanSubnet.String()}
}

// containerLines label node's container name: its name, its mode (with
// its address, or where it lives), the port it listens on and the ports
// it publishes. A macvlan or ipvlan container's address is on its line to
// the lab network. An app container's attachment says it keeps app-net.
func containerLines(l Lab, node, name string) []string {
	n := l.Nodes[node]
	c := n.Containers[name]
	mode := c.Mode()
	var where string
	switch mode {
	case ModeBridge, ModePodman:
		where = l.containerNetName(c) + " " + l.ContainerAddrs(node)[name].String()
	case ModeHost:
		where = "host: the VM's namespace"
	case ModeNone:
		where = "none: lo only"
	case ModeMacvlan, ModeIPvlan:
		where = fmt.Sprintf("%s on eth%d", c.vlanWord(), n.NICFor(c.Parent))
	case ModePod:
		where = "pod member"
	}
	lines := []string{name, where}
	if n.IsAppContainer(name) { // an attachment: the app's container keeps app-net
		lines = []string{name, "app " + n.App + "'s, on app-net", "and " + where}
	}
	if c.Listen > 0 {
		lines = append(lines, fmt.Sprintf("listens :%d", c.Listen))
	}
	var ports []string
	for _, p := range c.PublishedPorts() {
		ports = append(ports, fmt.Sprintf("%d→%d", p.Host, p.Container))
	}
	if len(ports) > 0 {
		lines = append(lines, "publishes "+strings.Join(ports, ", "))
	}
	return lines
}

// containerNetName is the podman network a bridge or podman container is on.
func (l Lab) containerNetName(c Container) string {
	if c.Mode() == ModePodman {
		return ModePodman
	}
	return c.Network
}

// vlanWord is "macvlan" or "ipvlan l2" (with the ipvlan mode).
func (c Container) vlanWord() string {
	if c.Mode() == ModeMacvlan {
		return ModeMacvlan
	}
	mode := c.IPvlanMode
	if mode == "" {
		mode = "l2"
	}
	return ModeIPvlan + " " + mode
}

// vlanEdgeLines label a macvlan or ipvlan container's line to its lab
// network: the mode and guest NIC, and its address.
func vlanEdgeLines(n Node, c Container) []string {
	return []string{fmt.Sprintf("%s eth%d", c.vlanWord(), n.NICFor(c.Parent)), c.Address.String()}
}

// podLines label one of node's pods: its name and its address on podman's
// default network.
func podLines(l Lab, node, pod string) []string {
	return []string{"pod " + pod, "podman " + l.PodAddrs(node)[pod].String()}
}

// dotGuest draws node name, which has containers: a frame around its VM
// box (vmLine), its podman networks and containers, and a frame per pod.
func dotGuest(b *bytes.Buffer, l Lab, name, vmLine string) {
	n := l.Nodes[name]
	fmt.Fprintf(b, "  subgraph %s {\n", dotQuote("cluster/node/"+name))
	fmt.Fprintf(b, "    graph [label=%s, labeljust=l, fontsize=10, style=\"rounded,filled,dashed\", fillcolor=%s, color=%s];\n",
		dotQuote("guest of "+name+": podman"), dotQuote(guestFill), dotQuote(nodeStroke))
	b.WriteString("  " + vmLine)
	for _, cn := range containerNets(n) {
		fmt.Fprintf(b, "    %s [shape=cds, style=filled, fillcolor=%s, color=%s, fontsize=9, margin=\"0.12,0.05\", label=%s];\n",
			dotQuote("cnet/"+name+"/"+cn), dotQuote(cnetFill), dotQuote(cnetStroke), dotQuote(strings.Join(cnetLines(n, cn), "\n")))
	}
	pods := n.Pods()
	for _, pod := range n.PodNames() {
		fmt.Fprintf(b, "    subgraph %s {\n", dotQuote("cluster/pod/"+name+"/"+pod))
		fmt.Fprintf(b, "      graph [label=%s, labeljust=l, fontsize=9, style=\"rounded,filled\", fillcolor=%s, color=%s];\n",
			dotQuote(strings.Join(podLines(l, name, pod), "\n")), dotQuote(podFill), dotQuote(ctrStroke))
		for _, c := range pods[pod] {
			b.WriteString("    " + dotContainer(l, name, c))
		}
		b.WriteString("    }\n")
	}
	for _, c := range n.ContainerNames() {
		if n.Containers[c].Pod == "" {
			b.WriteString(dotContainer(l, name, c))
		}
	}
	b.WriteString("  }\n")
}

// dotContainer is the DOT line of node's container name.
func dotContainer(l Lab, node, name string) string {
	return fmt.Sprintf("    %s [shape=box, style=filled, fillcolor=%s, color=%s, fontsize=9, margin=\"0.1,0.04\", label=%s];\n",
		dotQuote("ctr/"+node+"/"+name), dotQuote(ctrFill), dotQuote(ctrStroke), dotQuote(strings.Join(containerLines(l, node, name), "\n")))
}

// dotContainerEdges draws a dotted line from each podman network to its
// VM (its bridge is in the VM, which routes to it), and each container's
// line: to its podman network (a pod's from its frame), to its VM (host
// mode), or to the lab network it has an address on (macvlan, ipvlan);
// none has no line.
func dotContainerEdges(b *bytes.Buffer, l Lab) {
	for _, node := range l.NodeOrder {
		n := l.Nodes[node]
		for _, cn := range containerNets(n) {
			fmt.Fprintf(b, "  %s -- %s [style=dotted, color=%s];\n", dotQuote("cnet/"+node+"/"+cn), dotQuote("node/"+node), dotQuote(cnetStroke))
		}
		for _, pod := range n.PodNames() {
			fmt.Fprintf(b, "  %s -- %s [ltail=%s, color=%s];\n", dotQuote("ctr/"+node+"/"+n.Pods()[pod][0]),
				dotQuote("cnet/"+node+"/"+ModePodman), dotQuote("cluster/pod/"+node+"/"+pod), dotQuote(cnetStroke))
		}
		for _, name := range n.ContainerNames() {
			c := n.Containers[name]
			from := dotQuote("ctr/" + node + "/" + name)
			switch c.Mode() {
			case ModeBridge, ModePodman:
				fmt.Fprintf(b, "  %s -- %s [color=%s];\n", from, dotQuote("cnet/"+node+"/"+l.containerNetName(c)), dotQuote(cnetStroke))
			case ModeHost:
				fmt.Fprintf(b, "  %s -- %s [label=\"host\", style=dashed, color=%s, fontcolor=%s];\n", from, dotQuote("node/"+node), dotQuote(nodeStroke), dotQuote(nodeStroke))
			case ModeMacvlan, ModeIPvlan:
				st := dotQuote(netStyles[l.Networks[c.Parent].Kind].stroke)
				fmt.Fprintf(b, "  %s -- %s [label=%s, style=dashed, color=%s, fontcolor=%s];\n", from, dotQuote("net/"+c.Parent),
					dotQuote(strings.Join(vlanEdgeLines(n, c), "\n")), st, st)
			}
		}
	}
}

// mermaidIDs are the generated Mermaid IDs of one node's container parts.
type mermaidIDs struct{ ctr, cnet, pod map[string]string }

// newMermaidIDs names node i's containers ctrI_J, podman networks cnetI_J
// and pods podI_J.
func newMermaidIDs(i int, n Node) mermaidIDs {
	ids := mermaidIDs{map[string]string{}, map[string]string{}, map[string]string{}}
	for j, c := range n.ContainerNames() {
		ids.ctr[c] = fmt.Sprintf("ctr%d_%d", i, j)
	}
	for j, cn := range containerNets(n) {
		ids.cnet[cn] = fmt.Sprintf("cnet%d_%d", i, j)
	}
	for j, p := range n.PodNames() {
		ids.pod[p] = fmt.Sprintf("pod%d_%d", i, j)
	}
	return ids
}

// mermaidGuest draws node i (name), which has containers, as a subgraph
// around its VM box (vmLine), its podman networks and containers, with a
// subgraph per pod.
func mermaidGuest(b *bytes.Buffer, l Lab, i int, name, vmLine string) {
	n := l.Nodes[name]
	ids := newMermaidIDs(i, n)
	fmt.Fprintf(b, "  subgraph guest%d [%s]\n", i, mermaidText([]string{"guest of " + name + ": podman"}))
	b.WriteString("  " + vmLine)
	for _, cn := range containerNets(n) {
		fmt.Fprintf(b, "    %s[/%s/]:::cnet\n", ids.cnet[cn], mermaidText(cnetLines(n, cn)))
	}
	pods := n.Pods()
	for _, pod := range n.PodNames() {
		fmt.Fprintf(b, "    subgraph %s [%s]\n", ids.pod[pod], mermaidText(podLines(l, name, pod)))
		for _, c := range pods[pod] {
			fmt.Fprintf(b, "      %s[%s]:::ctr\n", ids.ctr[c], mermaidText(containerLines(l, name, c)))
		}
		b.WriteString("    end\n")
	}
	for _, c := range n.ContainerNames() {
		if n.Containers[c].Pod == "" {
			fmt.Fprintf(b, "    %s[%s]:::ctr\n", ids.ctr[c], mermaidText(containerLines(l, name, c)))
		}
	}
	b.WriteString("  end\n")
}

// mermaidContainerLinks writes each container's link, after the NICs'
// (so the live linkStyles still count the NICs from 0), as
// dotContainerEdges does.
func mermaidContainerLinks(b *bytes.Buffer, l Lab, nodeID, netID map[string]string) {
	for i, node := range l.NodeOrder {
		n := l.Nodes[node]
		ids := newMermaidIDs(i, n)
		for _, cn := range containerNets(n) {
			fmt.Fprintf(b, "  %s -.- %s\n", ids.cnet[cn], nodeID[node])
		}
		for _, pod := range n.PodNames() {
			fmt.Fprintf(b, "  %s --- %s\n", ids.pod[pod], ids.cnet[ModePodman])
		}
		for _, name := range n.ContainerNames() {
			c := n.Containers[name]
			switch c.Mode() {
			case ModeBridge, ModePodman:
				fmt.Fprintf(b, "  %s --- %s\n", ids.ctr[name], ids.cnet[l.containerNetName(c)])
			case ModeHost:
				fmt.Fprintf(b, "  %s -.-|\"host\"| %s\n", ids.ctr[name], nodeID[node])
			case ModeMacvlan, ModeIPvlan:
				fmt.Fprintf(b, "  %s -.-|%s| %s\n", ids.ctr[name], mermaidText([]string{strings.Join(vlanEdgeLines(n, c), " ")}), netID[c.Parent])
			}
		}
	}
}

// mermaidContainerClasses writes the class definitions of containers and
// podman networks, when the lab has any.
func mermaidContainerClasses(b *bytes.Buffer, l Lab) {
	if !l.hasContainers() {
		return
	}
	fmt.Fprintf(b, "  classDef ctr fill:%s,stroke:%s,stroke-width:1px\n", ctrFill, ctrStroke)
	fmt.Fprintf(b, "  classDef cnet fill:%s,stroke:%s,stroke-width:1px\n", cnetFill, cnetStroke)
}
