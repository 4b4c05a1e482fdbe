package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// builtin loads the built-in lab name.
func builtin(t *testing.T, name string) Lab {
	t.Helper()
	l, err := LoadRef(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestGraphContainersGolden: the modes, pod-sidecar and capstone-macvlan labs, drawn from the
// file alone and live, match their golden files.
func TestGraphContainersGolden(t *testing.T) {
	live := &Live{States: map[string]string{"modes": "running"}, Links: map[NICRef]Link{{"modes", 1}: {Passed: 3}}}
	for _, tc := range []struct {
		golden, lab string
		live        *Live
		format      string
	}{
		{"modes.dot", "modes", nil, FormatDOT},
		{"modes.mmd", "modes", nil, FormatMermaid},
		{"modes-live.dot", "modes", live, FormatDOT},
		{"modes-live.mmd", "modes", live, FormatMermaid},
		{"pod-sidecar.dot", "pod-sidecar", nil, FormatDOT},
		{"pod-sidecar.mmd", "pod-sidecar", nil, FormatMermaid},
		{"capstone-macvlan.dot", "capstone-macvlan", nil, FormatDOT},
		{"capstone-macvlan.mmd", "capstone-macvlan", nil, FormatMermaid},
	} {
		got, err := Graph(builtin(t, tc.lab), tc.live, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, tc.golden, got)
	}
}

// TestGraphContainers: each container is a box inside its VM's frame with
// its mode, address and ports; a pod is a frame inside it; macvlan and
// ipvlan containers have a line to their parent's lab network with their
// address; the node's podman networks are shapes inside the frame.
func TestGraphContainers(t *testing.T) {
	got, _ := Graph(builtin(t, "modes"), nil, FormatDOT)
	s := string(got)
	for _, want := range []string{
		"  graph [compound=true];\n",
		`  subgraph "cluster/node/modes" {`, `    "node/modes" [shape=box`,
		`    subgraph "cluster/pod/modes/duo" {`, `label="pod duo\npodman 10.88.160.107"`,
		`      "ctr/modes/app" [shape=box`, `label="app\npod member\nlistens :8000\npublishes 8082→8000"`,
		`    "ctr/modes/web" [shape=box`, `label="web\nfront 10.89.1.205\nlistens :80\npublishes 8081→80"`,
		`label="plain\npodman 10.88.143.238\nlistens :80"`, `label="isolated\nnone: lo only"`,
		`    "cnet/modes/front" [shape=cds`, `label="front\npodman bridge 10.89.1.0/24"`, `"cnet/modes/podman" [shape=cds`,
		`"ctr/modes/lanapi" -- "net/br0" [label="macvlan eth1\n192.0.2.50/24", style=dashed`,
		`"ctr/modes/natipv" -- "net/nat0" [label="ipvlan l2 eth0\n198.51.100.60/24", style=dashed`,
		`"ctr/modes/hostnet" -- "node/modes" [label="host"`, `"ctr/modes/web" -- "cnet/modes/front"`,
		`"ctr/modes/app" -- "cnet/modes/podman" [ltail="cluster/pod/modes/duo"`, `"cnet/modes/front" -- "node/modes" [style=dotted`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("DOT has no %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, `"ctr/modes/isolated" --`) {
		t.Error("the none container has a line; it reaches nothing")
	}
	m, _ := Graph(builtin(t, "modes"), nil, FormatMermaid)
	for _, want := range []string{
		"  subgraph guest0 [\"guest of modes: podman\"]\n    node0[", "    subgraph pod0_0 [\"pod duo<br/>podman 10.88.160.107\"]\n      ctr0_0[\"app<br/>pod member",
		`ctr0_3 -.-|"macvlan eth1 192.0.2.50/24"| net1`, `ctr0_4 -.-|"ipvlan l2 eth0 198.51.100.60/24"| net0`,
		"pod0_0 --- cnet0_1\n", "cnet0_0 -.- node0\n", "classDef ctr ", "classDef cnet ",
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("Mermaid has no %s:\n%s", want, m)
		}
	}
}

// TestGraphAppAttachment: the capstone's api, attached to macvlan on br0,
// is drawn as keeping app-net, with its dashed line and address to br0.
func TestGraphAppAttachment(t *testing.T) {
	got, _ := Graph(builtin(t, "capstone-macvlan"), nil, FormatDOT)
	for _, want := range []string{`label="api\napp capstone's, on app-net\nand macvlan on eth1"`,
		`"ctr/capstone/api" -- "net/br0" [label="macvlan eth1\n192.0.2.60/24", style=dashed`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("DOT has no %s:\n%s", want, got)
		}
	}
}

// TestGraphContainersLiveLinkStyles: the container links come after the
// NICs', so a live linkStyle still colours its NIC.
func TestGraphContainersLiveLinkStyles(t *testing.T) {
	live := &Live{Links: map[NICRef]Link{{"modes", 0}: {Passed: 1}, {"modes", 1}: {Passed: 1}}}
	m, _ := Graph(builtin(t, "modes"), live, FormatMermaid)
	lines := strings.Split(string(m), "\n")
	var links []string
	for _, line := range lines {
		if strings.HasPrefix(line, "  ") && (strings.Contains(line, "---") || strings.Contains(line, "-.-")) {
			links = append(links, line)
		}
	}
	if len(links) < 2 || !strings.Contains(links[0], "node0 ---|\"eth0") || !strings.Contains(links[1], "node0 ---|\"eth1") {
		t.Errorf("the first links are not the NICs': %q", links)
	}
}

// TestRenderContainersSVG: Graphviz draws the container labs (clusters and
// ltail included) as well-formed SVG naming every container.
func TestRenderContainersSVG(t *testing.T) {
	requireTool(t, "dot")
	requireTool(t, "xmllint")
	for _, name := range []string{"modes", "pod-sidecar", "capstone-macvlan"} {
		l := builtin(t, name)
		svg, err := Render(context.Background(), l, nil, FormatSVG)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name+".svg")
		if err := os.WriteFile(p, svg, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("xmllint", "--noout", p).CombinedOutput(); err != nil {
			t.Errorf("xmllint --noout %s: %v\n%s", p, err, out)
		}
		for _, node := range l.NodeOrder {
			for _, c := range l.Nodes[node].ContainerNames() {
				if !strings.Contains(string(svg), ">"+c+"<") {
					t.Errorf("SVG of lab %s has no text %q", name, c)
				}
			}
		}
	}
}
