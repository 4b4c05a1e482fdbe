package lab

import (
	"net/netip"
	"testing"

	"vmnet/internal/vmspec"
	"vmnet/templates"
)

// The office lab becomes two VM specs: NICs on libvirt networks for nat and
// isolated, on the Linux bridge for bridge; each node requires only the
// networks its NICs use; the capstone app brings its readiness and
// provisioning; every spec carries the lab's tag.
func TestSpecsOfOffice(t *testing.T) {
	l, err := Load("../../examples/office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := l.Specs()
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Name != "web" || specs[1].Name != "client" {
		t.Fatalf("specs %v, want web then client", names(specs))
	}
	web, client := specs[0], specs[1]
	want := []vmspec.NIC{{Network: "nat0"}, {Bridge: "lan", Address: netip.MustParsePrefix("192.0.2.10/24")}}
	if len(web.NICs) != 2 || web.NICs[0] != want[0] || web.NICs[1] != want[1] {
		t.Errorf("web NICs %+v, want %+v", web.NICs, want)
	}
	if client.NICs[1].Network != "back" || client.NICs[1].Address.IsValid() {
		t.Errorf("client eth1 %+v, want DHCP on network back", client.NICs[1])
	}
	if len(web.Requires.Networks) != 1 || web.Requires.Networks[0].Name != "nat0" || len(web.Requires.Bridges) != 1 {
		t.Errorf("web requires %+v, want nat0 and bridge lan only", web.Requires)
	}
	if len(client.Requires.Networks) != 1 || client.Requires.Networks[0].Mode != vmspec.ModeIsolated {
		t.Errorf("client requires %+v, want isolated network back", client.Requires)
	}
	if web.Ready.Agent != true || len(web.Provision.Commands) == 0 || web.Timeout == 0 {
		t.Errorf("web (app capstone) ready %+v, timeout %v, %d commands: want the capstone profile's", web.Ready, web.Timeout, len(web.Provision.Commands))
	}
	if len(client.Provision.Commands) != 0 {
		t.Errorf("client (no app) has provisioning %+v", client.Provision)
	}
	for _, s := range specs {
		if s.Lab != "office" {
			t.Errorf("%s: lab tag %q, want office", s.Name, s.Lab)
		}
	}
	r := l.Requires()
	if len(r.Networks) != 2 || len(r.Bridges) != 1 || r.Bridges[0].Address.String() != "192.0.2.1/24" {
		t.Errorf("lab requires %+v", r)
	}
}

// The built-in capstone lab is the capstone profile as a one-node lab: the
// same VM, so `vm up capstone` and `lab up capstone` make the same domain.
func TestCapstoneLabIsTheProfile(t *testing.T) {
	l, err := LoadRef("capstone")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Spec("capstone")
	if err != nil {
		t.Fatal(err)
	}
	p, err := vmspec.Load("capstone")
	if err != nil {
		t.Fatal(err)
	}
	s.Lab = ""
	if s.Hash() != p.Hash() {
		t.Errorf("the capstone lab's node differs from the capstone profile:\nlab     %+v\nprofile %+v", s, p)
	}
}

// Every built-in lab parses and plans.
func TestBuiltinLabs(t *testing.T) {
	names := templates.LabNames()
	if len(names) < 2 {
		t.Fatalf("built-in labs %v, want capstone and duo at least", names)
	}
	for _, name := range names {
		l, err := LoadRef(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if l.Name != name {
			t.Errorf("built-in lab %s is called %s inside", name, l.Name)
		}
		if _, err := l.Specs(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadRef("nosuch"); err == nil {
		t.Error("LoadRef(nosuch) succeeded")
	}
}

// An app on an image without it is refused at validation.
func TestAppNeedsItsImage(t *testing.T) {
	_, err := Parse([]byte("name: x\nnetworks: {n: {kind: nat, cidr: 198.51.100.0/24}}\nnodes:\n  a: {image: tiny, app: capstone, nics: [{net: n}]}\n"), "x.lab.yaml")
	if err == nil {
		t.Fatal("app capstone on image tiny accepted")
	}
	if got := err.Error(); got != `x.lab.yaml:4: nodes.a.app: "capstone" needs image capstone, which has its containers built in; image tiny has not` {
		t.Errorf("error %q", got)
	}
}

func names(specs []vmspec.Spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out
}
