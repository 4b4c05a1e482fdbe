package lab

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		got, err := Graph(tc.lab, nil, tc.format)
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
	got, _ := Graph(office(t), nil, FormatDOT)
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
	m, _ := Graph(office(t), nil, FormatMermaid)
	for _, want := range []string{"graph LR\n", `net0{{"nat0`, `net1[/"lan`, `net2(["back`, `node0 ---|"eth1 192.0.2.10/24"| net1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("Mermaid has no %s:\n%s", want, m)
		}
	}
	if _, err := Graph(office(t), nil, "jpeg"); err == nil {
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
// included, and of office live, tooltips included) and its SVG is
// well-formed XML by xmllint.
func TestRenderSVGIsXML(t *testing.T) {
	requireTool(t, "dot")
	requireTool(t, "xmllint")
	d, err := Parse([]byte(dashed), "dashed.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range []Lab{office(t), d, office(t)} {
		var live *Live
		if i == 2 {
			live = officeLive()
		}
		svg, err := Render(context.Background(), l, live, FormatSVG)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%d.svg", l.Name, i))
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

// officeLive is a live overlay of the office lab with each link state:
// web's eth0 (DHCP, leased) and client's eth0 passed, web's eth1 failed
// twice, client's eth1 (DHCP, leased) has no result.
func officeLive() *Live {
	return &Live{
		States: map[string]string{"web": "running", "client": "running"},
		Addresses: map[NICRef]string{
			{"web", 0}: "198.51.100.57", {"web", 1}: "192.0.2.10", {"client", 0}: "192.0.2.20", {"client", 1}: "203.0.113.140",
		},
		Links: map[NICRef]Link{
			{"web", 0}: {Passed: 2},
			{"web", 1}: {Passed: 3, Failed: []FailedCheck{
				{ID: "ping:host->web:eth1", Cause: "tap not attached"},
				{ID: "checks[0]:ping:client->web:lan", Cause: "tap not attached"},
			}},
			{"client", 0}: {Passed: 4, Elsewhere: []FailedCheck{{ID: "checks[0]:ping:client->web:lan", Cause: "tap not attached"}}},
		},
		Checked: time.Date(2026, 12, 1, 17, 5, 0, 0, time.UTC),
	}
}

func TestGraphLiveGolden(t *testing.T) {
	d, err := Parse([]byte(dashed), "dashed.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dashedLive := &Live{States: map[string]string{"web-1": "running"}, Links: map[NICRef]Link{
		{"web-1", 0}: {Passed: 1}, {"db-primary", 0}: {Failed: []FailedCheck{{ID: `ping:host->db-primary:eth0`, Cause: `node db-primary is not "running"`}}},
	}}
	for _, tc := range []struct {
		golden string
		lab    Lab
		live   *Live
		format string
	}{
		{"office-live.dot", office(t), officeLive(), FormatDOT},
		{"office-live.mmd", office(t), officeLive(), FormatMermaid},
		{"dashed-live.dot", d, dashedLive, FormatDOT},
		{"dashed-live.mmd", d, dashedLive, FormatMermaid},
	} {
		got, err := Graph(tc.lab, tc.live, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, tc.golden, got)
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/lab -run TestGraphLiveGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended:\n%s", name, got)
	}
}

// TestGraphLiveLinks: each link state has its own colour and line style in
// DOT and Mermaid, a failed link names its cause and lists every failed
// check in its tooltip, and a DHCP NIC shows its lease.
func TestGraphLiveLinks(t *testing.T) {
	got, _ := Graph(office(t), officeLive(), FormatDOT)
	s := string(got)
	for _, want := range []string{
		`"node/web" -- "net/nat0" [label="eth0\nDHCP 198.51.100.57\nok: 2 checks", color="#16a34a", fontcolor="#16a34a", style="solid"`,
		`"node/web" -- "net/lan" [label="eth1\n192.0.2.10/24\nFAILED: tap not attached (+1 more)", color="#dc2626", fontcolor="#dc2626", style="bold,dashed"`,
		`tooltip="web eth1: ping:host->web:eth1: tap not attached\nchecks[0]:ping:client->web:lan: tap not attached\n3 passed"`,
		`tooltip="client eth0: ok: 4 checks (1 failed at the other end)\nfailed at the other end: checks[0]:ping:client->web:lan: tap not attached"`,
		`"node/client" -- "net/back" [label="eth1\nDHCP 203.0.113.140\nno check result", color="#6b7280", fontcolor="#6b7280", style="dotted"`,
		`label="web\ncapstone · 2 vCPU · 2GiB\napp capstone\nrunning"`,
		`label="lab office (live, last check 2026-12-01 17:05 UTC)\nlinks: green`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("live DOT has no %s:\n%s", want, s)
		}
	}
	m, _ := Graph(office(t), officeLive(), FormatMermaid)
	for _, want := range []string{
		"---\ntitle: \"lab office (live, last check 2026-12-01 17:05 UTC)\"\n---\ngraph LR\n",
		`node0 ---|"eth1 192.0.2.10/24<br/>FAILED: tap not attached (+1 more)"| net1`,
		"linkStyle 0 stroke:#16a34a,stroke-width:2.5px\n", "linkStyle 1 stroke:#dc2626,stroke-width:3px,stroke-dasharray:8 4\n",
		"linkStyle 3 stroke:#6b7280,stroke-width:2px,stroke-dasharray:2 4\n",
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("live Mermaid has no %s:\n%s", want, m)
		}
	}
	if n := strings.Count(string(m), "linkStyle "); n != 4 {
		t.Errorf("live Mermaid has %d linkStyles, want 4 (one per NIC)", n)
	}
}
