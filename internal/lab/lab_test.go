package lab

import (
	"errors"
	"os"
	"strings"
	"testing"

	"vmnet/internal/errs"
)

func readOffice(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParseOffice(t *testing.T) {
	l, err := Parse([]byte(readOffice(t)), "office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "office" || strings.Join(l.NetworkOrder, ",") != "nat0,lan,back" || strings.Join(l.NodeOrder, ",") != "web,client" {
		t.Errorf("name %q, networks %v, nodes %v", l.Name, l.NetworkOrder, l.NodeOrder)
	}
	c := l.Nodes["client"]
	if c.VCPUs != DefaultVCPUs || c.Memory != DefaultMemory {
		t.Errorf("client defaults: vcpus %d memory %s", c.VCPUs, c.Memory)
	}
	if w := l.Nodes["web"]; w.Memory.String() != "2GiB" || w.NICs[1].Address.String() != "192.0.2.10/24" || w.App != "capstone" {
		t.Errorf("web: %+v", w)
	}
	if l.Checks[0].Expect != ExpectReach || l.Checks[2].Expect != ExpectBlocked || l.Checks[1].Path != "/" {
		t.Errorf("checks: %+v", l.Checks)
	}
	if h := l.Networks["nat0"].HostAddr().String(); h != "198.51.100.1" {
		t.Errorf("nat0 host address %s", h)
	}
}

// edit replaces old by new in the office lab, once, failing when old is absent.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	s := readOffice(t)
	if !strings.Contains(s, old) {
		t.Fatalf("office.lab.yaml has no %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, lab string
		want      string // a part of the error
	}{
		{"missing network in nic", edit(t, "{net: lan, address: 192.0.2.10/24}", "{net: lan2, address: 192.0.2.10/24}"),
			`office.lab.yaml:13: nodes.web.nics[1].net: "lan2" is not a network of this lab (did you mean lan?)`},
		{"unknown top key", edit(t, "networks:", "netwrks:"), "office.lab.yaml:2: netwrks is not a known field (did you mean networks?)"},
		{"unknown nic key", edit(t, "{net: nat0}", "{nett: nat0}"), "office.lab.yaml:12: nodes.web.nics[0].nett is not a known field (did you mean net?)"},
		{"bad yaml", "name: x\nnodes: [\n", "office.lab.yaml:"},
		{"empty", "", "lab is empty"},
		{"bad kind", edit(t, "kind: nat,", "kind: nta,"), `networks.nat0.kind: "nta" is not a network kind (did you mean nat?)`},
		{"overlap", edit(t, "cidr: 203.0.113.0/24", "cidr: 192.0.2.0/25"), "networks.back.cidr: \"192.0.2.0/25\" overlaps network lan's subnet 192.0.2.0/24"},
		{"duplicate subnet", edit(t, "cidr: 203.0.113.0/24", "cidr: 198.51.100.0/24"), "overlaps network nat0"},
		{"outside", edit(t, "192.0.2.10/24", "192.0.3.10/24"), `office.lab.yaml:13: nodes.web.nics[1].address: "192.0.3.10/24" is not in network lan's subnet`},
		{"duplicate address", edit(t, "192.0.2.20/24", "192.0.2.10/24"), "is already in use: node web's eth1"},
		{"bridge host address", edit(t, "192.0.2.20/24", "192.0.2.1/24"), "the host's address on network lan"},
		{"nat host address", edit(t, "{net: back}", "{net: back, address: 203.0.113.1/24}"), "the host's address on network back"},
		{"network address", edit(t, "192.0.2.20/24", "192.0.2.0/24"), "network address"},
		{"broadcast address", edit(t, "192.0.2.20/24", "192.0.2.255/24"), "broadcast address"},
		{"in dhcp pool", edit(t, "{net: back}", "{net: back, address: 203.0.113.200/24}"), "DHCP pool"},
		{"long bridge name", strings.ReplaceAll(readOffice(t), "lan", "lan-for-the-office"), `networks.lan-for-the-office: "lan-for-the-office" is 18 bytes long; Linux allows at most 15`},
		{"bad lab name", edit(t, "name: office", "name: Office_1"), `office.lab.yaml:1: name: "Office_1"`},
		{"bad node name", edit(t, "  client:", "  client_1:"), `nodes.client_1: "client_1" contains '_'`},
		{"host node", edit(t, "  client:", "  host:"), `nodes.host: "host" is reserved`},
		{"check from missing node", edit(t, "{from: client, to: web:lan, ping: true}", "{from: clinet, to: web:lan, ping: true}"),
			`office.lab.yaml:19: checks[0].from: "clinet" is not host or a node of this lab (did you mean client?)`},
		{"check to missing node", edit(t, "to: web:lan, ping", "to: db:lan, ping"), `checks[0].to: "db:lan" is not a node of this lab`},
		{"check to net without nic", edit(t, "to: web:lan, ping", "to: web:back, ping"), "names a network node web has no NIC on"},
		{"check two probes", edit(t, "ping: true}", "ping: true, tcp: 22}"), "checks[0].tcp is a second probe"},
		{"check no probe", edit(t, ", ping: true}", "}"), "checks[0] has no probe"},
		{"check bad expect", edit(t, "expect: blocked", "expect: blockd"), "(did you mean blocked?)"},
		{"check bad port", edit(t, "tcp: 5432", "tcp: 70000"), "is not a port"},
		{"check bad body", edit(t, "body: PostgreSQL", "body: \"Postgre(\""), "is not a regular expression"},
		{"check self", edit(t, "{from: client, to: web:lan, ping: true}", "{from: web, to: web:lan, ping: true}"), "own source"},
		{"bridge nic without address", edit(t, "{net: lan, address: 192.0.2.20/24}", "{net: lan}"), "a Linux bridge has no DHCP server"},
		{"bad memory", edit(t, "2GiB", "2GB"), `nodes.web.memory: "2GB" has a decimal unit`},
		{"bad app", edit(t, "app: capstone", "app: capstnoe"), "(did you mean capstone?)"},
		{"no nics", edit(t, "    nics: [{net: lan, address: 192.0.2.20/24}, {net: back}]\n", ""), "nodes.client.nics is missing"},
		{"cidr host bits", edit(t, "198.51.100.0/24", "198.51.100.1/24"), "has host bits set"},
		{"bridge without address", edit(t, "{kind: bridge, address: 192.0.2.1/24}", "{kind: bridge}"), "networks.lan.address is missing"},
		{"duplicate network", edit(t, "  back:", "  lan:"), "office.lab.yaml:5: networks.lan is declared twice (first at line 4)"},
		{"duplicate node", edit(t, "  client:", "  web:"), "office.lab.yaml:15: nodes.web is declared twice (first at line 7)"},
		{"nodes a list", "name: x\nnodes: [a]\n", "nodes is a list; it must be a mapping of names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.lab), "office.lab.yaml")
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error %v is not errs.ErrInvalid (exit 2)", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant a part:\n  %s", err, tc.want)
			}
			var h errs.Hinted
			if !errors.As(err, &h) || h.Hint() == "" {
				t.Errorf("error %v has no hint", err)
			}
		})
	}
}
