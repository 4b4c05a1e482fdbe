package lab

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"vmnet/internal/errs"
	"vmnet/internal/testutil"
	"vmnet/templates"
)

// vmContainerYAML is the built-in vm-container lab's file.
func vmContainerYAML(t *testing.T) string {
	t.Helper()
	b, err := templates.Lab("vm-container")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVMContainerLabParses(t *testing.T) {
	l, err := Parse([]byte(vmContainerYAML(t)), "vm-container.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(l.NodeOrder, ",") != "vm" || strings.Join(l.HostOrder, ",") != "web" {
		t.Fatalf("VMs %v, host containers %v: want [vm] and [web]", l.NodeOrder, l.HostOrder)
	}
	if _, ok := l.Nodes["web"]; ok {
		t.Error("the container node is still among the VMs: VM planning would boot it")
	}
	c := l.HostContainers["web"]
	if c.Mode != HostVeth || c.Address != netip.MustParsePrefix("192.0.2.20/24") || c.Network != "lab0" {
		t.Errorf("web = %+v, want veth, 192.0.2.20/24 on lab0", c)
	}
	if got := strings.Join(c.Argv(), " "); got != "python3 -m http.server --bind 0.0.0.0 8080" {
		t.Errorf("argv %q", got)
	}
	if l.HostGateway("web") != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("gateway %s, want the bridge's host address", l.HostGateway("web"))
	}
	specs, err := l.Specs()
	if err != nil || len(specs) != 1 {
		t.Errorf("specs %v, %v: want the VM only", specs, err)
	}
}

// TestHostContainerValidation: every mistake on a container node (and a
// container key on a VM node) is refused naming the field and the fix.
func TestHostContainerValidation(t *testing.T) {
	cases := []struct{ name, old, new, want, fix string }{
		{"VM key image", "kind: container", "kind: container\n    image: tiny",
			"nodes.web.image is a key of a VM node, set on container node web", "leave image out"},
		{"VM key nics", "kind: container", "kind: container\n    nics: [{net: lab0}]",
			"nodes.web.nics is a key of a VM node", "leave nics out"},
		{"VM key vcpus", "kind: container", "kind: container\n    vcpus: 2",
			"nodes.web.vcpus is a key of a VM node", "leave vcpus out"},
		{"container key on a VM", "image: tiny", "image: tiny\n    listen: 80",
			"nodes.vm.listen is a key of a container node, set on VM node vm", "add kind: container"},
		{"unknown kind", "kind: container", "kind: contianer",
			`nodes.web.kind: "contianer" is not a node kind (did you mean container?)`, "kind: vm"},
		{"missing network", "    network: lab0\n", "",
			"nodes.web.network is missing", "name a network of kind bridge: lab0"},
		{"unknown network", "network: lab0\n", "network: lab9\n",
			`nodes.web.network: "lab9" is not a network of this lab`, "lab0"},
		{"nat network", "network: lab0\n", "network: nat0\n",
			`nodes.web.network: "nat0" is a nat network: a container on the host joins only a Linux bridge`, "run it inside a VM"},
		{"missing address", "    address: 192.0.2.20/24\n", "",
			"nodes.web.address is missing", "192.0.2.2/24"},
		{"host's address", "address: 192.0.2.20/24", "address: 192.0.2.1/24",
			"nodes.web.address", "the host's address on network lab0"},
		{"the VM's address", "address: 192.0.2.20/24", "address: 192.0.2.10/24",
			"nodes.web.address", "node vm's eth0"},
		{"outside", "address: 192.0.2.20/24", "address: 198.51.100.20/24",
			"nodes.web.address", ""},
		{"bad mode", "    listen: 8080", "    listen: 8080\n    mode: tap",
			`nodes.web.mode: "tap" is not a host container mode`, "mode: veth"},
		{"bad listen", "listen: 8080", "listen: 70000",
			"nodes.web.listen: \"70000\" is not a port", "8080"},
		{"check to a container on another net", "to: web, ping", "to: web:nat0, ping",
			`checks[1].to: "web:nat0" names a network container web is not on`, "web:lab0"},
	}
	base := strings.Replace(vmContainerYAML(t), "networks:\n", "networks:\n  nat0: {kind: nat, cidr: 198.51.100.0/24}\n", 1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("the lab has no %q", tc.old)
			}
			_, err := Parse([]byte(strings.Replace(base, tc.old, tc.new, 1)), "vm-container.lab.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("%v is not ErrInvalid (exit 2)", err)
			}
			msg := err.Error() + " | " + err.(interface{ Hint() string }).Hint()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, tc.fix) {
				t.Errorf("error %q\nwant %q and fix %q", msg, tc.want, tc.fix)
			}
		})
	}
}

// TestHostContainerChecks: checks may name a container node as from and to.
func TestHostContainerChecks(t *testing.T) {
	y := vmContainerYAML(t) + "  - {from: web, to: vm:lab0, ping: true}\n  - {from: web, to: 192.0.2.1, ping: true}\n"
	if _, err := Parse([]byte(y), ""); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte(vmContainerYAML(t)+"  - {from: web, to: web, ping: true}\n"), "")
	if err == nil || !strings.Contains(err.Error(), "own source") {
		t.Errorf("a check from web to web: %v", err)
	}
}

// TestHostContainerGraph: a container node is drawn on its own, outside
// every VM, with one line to its bridge (golden files; -update rewrites).
func TestHostContainerGraph(t *testing.T) {
	l, err := Parse([]byte(vmContainerYAML(t)), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ golden, format, want string }{
		{"vm-container.dot", FormatDOT, `"hostctr/web" -- "net/lab0" [label="eth0 veth\n192.0.2.20/24"`},
		{"vm-container.mmd", FormatMermaid, `hostctr0 ---|"eth0 veth 192.0.2.20/24"| net0`},
	} {
		got, err := Graph(l, nil, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), tc.want) {
			t.Errorf("%s has no %s:\n%s", tc.golden, tc.want, got)
		}
		testutil.Golden(t, filepath.Join("testdata", tc.golden), got, *update)
	}
}
