package lab

import (
	"bytes"
	"fmt"
	"strings"
)

// A container node (kind container) is drawn as a container box of its
// own, outside every VM, with one line to its bridge labelled with its
// interface, address and mode. A lab without them is drawn as before.

// hostCtrLines label a host container: its name, that it runs on the host
// and what it serves.
func hostCtrLines(l Lab, name string) []string {
	c := l.HostContainers[name]
	lines := []string{name, "container on the host"}
	switch {
	case c.Command != "":
		lines = append(lines, "command")
	case c.Listen > 0:
		lines = append(lines, fmt.Sprintf("http :%d", c.Listen))
	}
	return lines
}

// hostCtrEdgeLines label a host container's line to its bridge.
func hostCtrEdgeLines(l Lab, name string) []string {
	c := l.HostContainers[name]
	return []string{"eth0 " + c.Mode, c.Address.String()}
}

// dotHostContainers draws each host container and its line to its bridge.
func dotHostContainers(b *bytes.Buffer, l Lab) {
	for _, name := range l.HostOrder {
		fmt.Fprintf(b, "  %s [shape=box, style=\"rounded,filled\", fillcolor=%s, color=%s, margin=\"0.15,0.08\", label=%s];\n",
			dotQuote("hostctr/"+name), dotQuote(ctrFill), dotQuote(ctrStroke), dotQuote(strings.Join(hostCtrLines(l, name), "\n")))
		fmt.Fprintf(b, "  %s -- %s [label=%s, color=%s];\n", dotQuote("hostctr/"+name), dotQuote("net/"+l.HostContainers[name].Network),
			dotQuote(strings.Join(hostCtrEdgeLines(l, name), "\n")), dotQuote(ctrStroke))
	}
}

// mermaidHostContainers draws each host container (hostctr0, ...) and its
// link to its bridge, and the ctr class when the lab has no other
// containers to define it.
func mermaidHostContainers(b *bytes.Buffer, l Lab, netID map[string]string) {
	for i, name := range l.HostOrder {
		id := fmt.Sprintf("hostctr%d", i)
		fmt.Fprintf(b, "  %s[%s]:::ctr\n", id, mermaidText(hostCtrLines(l, name)))
		fmt.Fprintf(b, "  %s ---|%s| %s\n", id, mermaidText([]string{strings.Join(hostCtrEdgeLines(l, name), " ")}), netID[l.HostContainers[name].Network])
	}
	if len(l.HostOrder) > 0 && !l.hasContainers() {
		fmt.Fprintf(b, "  classDef ctr fill:%s,stroke:%s,stroke-width:1px\n", ctrFill, ctrStroke)
	}
}
