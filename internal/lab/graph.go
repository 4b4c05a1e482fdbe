package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"vmnet/internal/errs"
	"vmnet/internal/vmspec"
)

// Graph formats.
const (
	FormatDOT     = "dot"
	FormatMermaid = "mermaid"
	FormatSVG     = "svg"
	FormatPNG     = "png"
)

// Formats lists the formats Render draws.
var Formats = []string{FormatSVG, FormatPNG, FormatDOT, FormatMermaid}

// netStyle is how one kind of network is drawn, the same in every format:
// shape, colour and a word in the label, so the kinds differ at a glance
// and in black and white.
type netStyle struct {
	word      string // in the label
	dotShape  string
	dotStyle  string
	fill      string
	stroke    string
	mmdOpen   string // Mermaid shape brackets
	mmdClose  string
	mmdClass  string
	mmdStroke string // Mermaid stroke-dasharray, "" for solid
}

var netStyles = map[string]netStyle{
	KindNAT:      {"NAT", "hexagon", "filled", "#fde68a", "#b45309", "{{", "}}", "nat", ""},
	KindBridge:   {"bridge", "cds", "filled", "#bbf7d0", "#15803d", "[/", "/]", "bridge", ""},
	KindIsolated: {"isolated", "ellipse", "filled,dashed", "#e5e7eb", "#4b5563", "([", "])", "isolated", "5 3"},
	KindMacvtap:  {"macvtap", "parallelogram", "filled", "#fbcfe8", "#be185d", ">", "]", "macvtap", ""},
}

const (
	nodeFill   = "#dbeafe"
	nodeStroke = "#1d4ed8"
)

// Graph draws the lab as Graphviz DOT or Mermaid text: each node (VM) a
// rounded box, each network a shape of its kind with its kind and subnet,
// an edge per NIC labelled with the guest's interface name and its address
// (or DHCP). With live nil that is the file alone; with a live overlay each
// node says its state, each NIC its address now, and each NIC's edge is
// coloured by the last checks that crossed it: green when all passed, red
// (dashed, with the failed check's cause) when one failed, grey (dotted)
// when none is known.
func Graph(l Lab, live *Live, format string) ([]byte, error) {
	switch format {
	case FormatDOT:
		return dot(l, live), nil
	case FormatMermaid:
		return mermaid(l, live), nil
	}
	return nil, formatError(format)
}

func formatError(format string) error {
	return &errs.FieldError{Field: "--format", Value: format, Problem: "is not a graph format",
		Fix: "use one of " + strings.Join(Formats, ", ")}
}

// Render draws the lab (with live's overlay, when not nil) in format; svg
// and png run Graphviz's dot on the DOT text.
func Render(ctx context.Context, l Lab, live *Live, format string) ([]byte, error) {
	if format != FormatSVG && format != FormatPNG {
		return Graph(l, live, format)
	}
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, errs.WithHint(fmt.Errorf("draw %s: Graphviz's dot is not installed", format),
			"install it (apt-get install graphviz), or use --format dot or --format mermaid, which need nothing")
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-T"+format)
	cmd.Stdin = bytes.NewReader(dot(l, live))
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("dot -T%s: %w: %s", format, err, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("dot -T%s: %w", format, err)
	}
	return out.Bytes(), nil
}

// nicLines label node's NIC i: "eth1", "192.0.2.10/24" (or "DHCP", or
// "DHCP 198.51.100.57" live), and live what its checks found.
func nicLines(node string, i int, n NIC, live *Live) []string {
	lines := []string{fmt.Sprintf("eth%d", i), live.liveAddress(node, i, n)}
	if k, ok := live.link(node, i); ok {
		lines = append(lines, k.statusLine())
	}
	return lines
}

// nodeLines label a node: its name, image and size, app, and live state.
func nodeLines(name string, n Node, live *Live) []string {
	lines := []string{name, fmt.Sprintf("%s · %d vCPU · %s", n.Image, n.VCPUs, n.Memory)}
	if n.App != "" {
		lines = append(lines, "app "+n.App)
	}
	if s := live.state(name); s != "" {
		lines = append(lines, s)
	}
	return lines
}

func netLines(name string, n Network) []string {
	st := netStyles[n.Kind]
	if n.Kind == KindMacvtap {
		return []string{name, st.word + " " + n.Subnet().String(), "on " + n.Parent + " (" + vmspec.Direct{Parent: n.Parent, Mode: n.Mode}.ModeOrDefault() + ")"}
	}
	return []string{name, st.word + " " + n.Subnet().String(), "host " + n.HostAddr().String()}
}

// dotQuote quotes s as a DOT ID: every identifier is quoted, so names
// with '-' or '.' are safe.
func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func dot(l Lab, live *Live) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "graph %s {\n", dotQuote(l.Name))
	fmt.Fprintf(&b, "  graph [rankdir=LR, nodesep=0.5, ranksep=1.6, pad=0.3, fontname=\"Helvetica\", labelloc=t, fontsize=16, label=%s];\n", dotQuote(live.title(l.Name)))
	b.WriteString("  node [fontname=\"Helvetica\", fontsize=11, penwidth=1.5];\n")
	b.WriteString("  edge [fontname=\"Helvetica\", fontsize=10, penwidth=1.2, color=\"#374151\"];\n")
	if l.hasContainers() {
		b.WriteString("  graph [compound=true];\n")
	}
	for _, name := range l.NodeOrder {
		n := l.Nodes[name]
		line := fmt.Sprintf("  %s [shape=box, style=\"rounded,filled\", fillcolor=%s, color=%s, margin=\"0.2,0.1\", label=%s];\n",
			dotQuote("node/"+name), dotQuote(nodeFill), dotQuote(nodeStroke), dotQuote(strings.Join(nodeLines(name, n, live), "\n")))
		if len(n.Containers) > 0 {
			dotGuest(&b, l, name, line)
			continue
		}
		b.WriteString(line)
	}
	for _, name := range l.NetworkOrder {
		n := l.Networks[name]
		st := netStyles[n.Kind]
		fmt.Fprintf(&b, "  %s [shape=%s, style=%s, fillcolor=%s, color=%s, margin=\"0.25,0.12\", label=%s];\n",
			dotQuote("net/"+name), st.dotShape, dotQuote(st.dotStyle), dotQuote(st.fill), dotQuote(st.stroke), dotQuote(strings.Join(netLines(name, n), "\n")))
	}
	for _, name := range l.NodeOrder {
		for i, nic := range l.Nodes[name].NICs {
			fmt.Fprintf(&b, "  %s -- %s [label=%s, %s];\n", dotQuote("node/"+name), dotQuote("net/"+nic.Net),
				dotQuote(strings.Join(nicLines(name, i, nic, live), "\n")), dotEdgeLook(l, name, i, live))
		}
	}
	dotContainerEdges(&b, l)
	dotHostContainers(&b, l)
	b.WriteString("}\n")
	return b.Bytes()
}

// dotEdgeLook is the attributes of node's NIC i's edge: the network kind's
// colour from the file alone, the link state's colour, line style and a
// tooltip (the failed checks and their causes, in the SVG) when live.
func dotEdgeLook(l Lab, node string, i int, live *Live) string {
	k, ok := live.link(node, i)
	if !ok {
		return "color=" + dotQuote(netStyles[l.Networks[l.Nodes[node].NICs[i].Net].Kind].stroke)
	}
	look := linkLooks[k.State()]
	return fmt.Sprintf("color=%s, fontcolor=%s, style=%s, penwidth=%s, tooltip=%s",
		dotQuote(look.color), dotQuote(look.color), dotQuote(look.dotStyle), look.width,
		dotQuote(fmt.Sprintf("%s eth%d: %s", node, i, k.tooltip())))
}

// mermaidText makes s safe inside a quoted Mermaid label.
func mermaidText(lines []string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;")
	out := make([]string, len(lines))
	for i, s := range lines {
		out[i] = r.Replace(s)
	}
	return `"` + strings.Join(out, "<br/>") + `"`
}

// mermaid draws a `graph LR` that GitHub renders. Mermaid IDs are
// generated (node0, net0): a name with '-' would read as an edge there;
// the names themselves are in quoted labels. Live, each link gets a
// linkStyle by its state, and the title says when the checks ran.
func mermaid(l Lab, live *Live) []byte {
	var b bytes.Buffer
	if live != nil {
		title, _, _ := strings.Cut(live.title(l.Name), "\n")
		fmt.Fprintf(&b, "---\ntitle: %s\n---\n", mermaidText([]string{title}))
	}
	b.WriteString("graph LR\n")
	nodeID := map[string]string{}
	netID := map[string]string{}
	for i, name := range l.NodeOrder {
		nodeID[name] = fmt.Sprintf("node%d", i)
		line := fmt.Sprintf("  %s[%s]:::vm\n", nodeID[name], mermaidText(nodeLines(name, l.Nodes[name], live)))
		if len(l.Nodes[name].Containers) > 0 {
			mermaidGuest(&b, l, i, name, line)
			continue
		}
		b.WriteString(line)
	}
	for i, name := range l.NetworkOrder {
		n := l.Networks[name]
		st := netStyles[n.Kind]
		netID[name] = fmt.Sprintf("net%d", i)
		fmt.Fprintf(&b, "  %s%s%s%s:::%s\n", netID[name], st.mmdOpen, mermaidText(netLines(name, n)), st.mmdClose, st.mmdClass)
	}
	var styles []string
	for _, name := range l.NodeOrder {
		for i, nic := range l.Nodes[name].NICs {
			lines := nicLines(name, i, nic, live)
			lines = append([]string{lines[0] + " " + lines[1]}, lines[2:]...)
			fmt.Fprintf(&b, "  %s ---|%s| %s\n", nodeID[name], mermaidText(lines), netID[nic.Net])
			if k, ok := live.link(name, i); ok {
				styles = append(styles, mermaidLinkStyle(len(styles), k.State()))
			}
		}
	}
	mermaidContainerLinks(&b, l, nodeID, netID)
	mermaidHostContainers(&b, l, netID)
	mermaidClasses(&b, l)
	mermaidContainerClasses(&b, l)
	for _, s := range styles {
		b.WriteString(s)
	}
	return b.Bytes()
}

// mermaidLinkStyle colours the n-th link (Mermaid counts links in the
// order they are written) by its state.
func mermaidLinkStyle(n int, state LinkState) string {
	look := linkLooks[state]
	line := fmt.Sprintf("  linkStyle %d stroke:%s,stroke-width:%spx", n, look.color, look.width)
	if look.mmdDash != "" {
		line += ",stroke-dasharray:" + look.mmdDash
	}
	return line + "\n"
}

// mermaidClasses writes the class definitions of nodes and network kinds.
func mermaidClasses(b *bytes.Buffer, l Lab) {
	fmt.Fprintf(b, "  classDef vm fill:%s,stroke:%s,stroke-width:2px\n", nodeFill, nodeStroke)
	for _, kind := range Kinds {
		if kind == KindMacvtap && !l.hasMacvtap() {
			continue // labs drawn before macvtap existed keep their text
		}
		st := netStyles[kind]
		line := fmt.Sprintf("  classDef %s fill:%s,stroke:%s,stroke-width:2px", st.mmdClass, st.fill, st.stroke)
		if st.mmdStroke != "" {
			line += ",stroke-dasharray:" + st.mmdStroke
		}
		b.WriteString(line + "\n")
	}
}
