package lab

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func office(t *testing.T) Lab {
	t.Helper()
	l, err := Parse([]byte(readOffice(t)), "office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dashed is a lab whose names have '-' and '.', which break unquoted DOT
// IDs and Mermaid IDs.
const dashed = `name: lab-2
networks:
  br-lan.1: {kind: bridge, address: 10.9.0.1/24}
nodes:
  web-1: {image: tiny, nics: [{net: br-lan.1, address: 10.9.0.10/24}]}
  db-primary: {image: tiny, nics: [{net: br-lan.1, address: 10.9.0.11/24}]}
`

func TestGraphGolden(t *testing.T) {
	d, err := Parse([]byte(dashed), "dashed.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		golden string
		lab    Lab
		format string
	}{
		{"office.dot", office(t), FormatDOT},
		{"office.mmd", office(t), FormatMermaid},
		{"dashed.dot", d, FormatDOT},
		{"dashed.mmd", d, FormatMermaid},
	} {
		got, err := Graph(tc.lab, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", tc.golden)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/lab -run TestGraphGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file; run with -update if the change is intended:\n%s", tc.golden, got)
		}
	}
}

// TestGraphShapes: each network kind and the nodes are drawn differently,
// and every NIC is an edge with its interface name and address.
func TestGraphShapes(t *testing.T) {
	got, _ := Graph(office(t), FormatDOT)
	s := string(got)
	for _, want := range []string{
		`"node/web" [shape=box`, `"net/nat0" [shape=hexagon`, `"net/lan" [shape=cds`, `"net/back" [shape=ellipse, style="filled,dashed"`,
		`"node/web" -- "net/lan" [label="eth1\n192.0.2.10/24"`, `"node/client" -- "net/back" [label="eth1\nDHCP"`,
		`NAT 198.51.100.0/24`, `bridge 192.0.2.0/24`, `isolated 203.0.113.0/24`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("DOT has no %s:\n%s", want, s)
		}
	}
	if n := strings.Count(s, " -- "); n != 4 {
		t.Errorf("DOT has %d edges, want 4 (one per NIC)", n)
	}
	m, _ := Graph(office(t), FormatMermaid)
	for _, want := range []string{"graph LR\n", `net0{{"nat0`, `net1[/"lan`, `net2(["back`, `node0 ---|"eth1 192.0.2.10/24"| net1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("Mermaid has no %s:\n%s", want, m)
		}
	}
	if _, err := Graph(office(t), "jpeg"); err == nil {
		t.Error("Graph accepted format jpeg")
	}
}

// requireTool skips when name is missing, except under CI, where a missing
// tool is a failure: the check it enables must run there.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI must have it (scripts/deps.sh installs it)", name)
		}
		t.Skipf("%s is not installed (apt-get install graphviz libxml2-utils); not CI, so skipping", name)
	}
}

// TestRenderSVGIsXML: Graphviz accepts the DOT (of both labs, dashed names
// included) and its SVG is well-formed XML by xmllint.
func TestRenderSVGIsXML(t *testing.T) {
	requireTool(t, "dot")
	requireTool(t, "xmllint")
	d, err := Parse([]byte(dashed), "dashed.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []Lab{office(t), d} {
		svg, err := Render(context.Background(), l, FormatSVG)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), l.Name+".svg")
		if err := os.WriteFile(p, svg, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("xmllint", "--noout", p).CombinedOutput(); err != nil {
			t.Errorf("xmllint --noout %s: %v\n%s", p, err, out)
		}
		for _, name := range append(append([]string{}, l.NodeOrder...), l.NetworkOrder...) {
			text := strings.ReplaceAll(name, "-", "&#45;") // how Graphviz writes '-' in SVG text
			if !bytes.Contains(svg, []byte(">"+text+"<")) {
				t.Errorf("SVG of lab %s has no text %q", l.Name, name)
			}
		}
	}
}
