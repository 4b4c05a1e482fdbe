package network

import (
	"flag"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vmnet/internal/testutil"

	"libvirt.org/go/libvirtxml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// buildCases are the specs whose XML is golden-tested and validated.
var buildCases = []struct {
	name string
	spec Spec
}{
	{"nat", Spec{Name: "nat0", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.0/24")}},
	{"isolated-range", Spec{Name: "lab", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("203.0.113.0/24"),
		DHCPRange: rng("203.0.113.200", "203.0.113.250")}},
	{"nat-long-name", Spec{Name: "capstone-frontend", Mode: ModeNAT, CIDR: netip.MustParsePrefix("10.77.0.0/16")}},
	{"bridge", Spec{Name: "br0net", Mode: ModeBridge, Bridge: "br0"}},
	{"nat-lab", Spec{Name: "office-lan", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.0/24"), Lab: "office"}},
}

func TestBuildGolden(t *testing.T) {
	for _, tc := range buildCases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Build(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := n.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got += "\n"
			testutil.Golden(t, filepath.Join("testdata", "golden", tc.name+".xml"), []byte(got), *update)
			// What vmnet writes it must read back as its own, unchanged in shape.
			back := &libvirtxml.Network{}
			if err := back.Unmarshal(got); err != nil {
				t.Fatal(err)
			}
			if !Owned(back) {
				t.Error("the built network does not read back as vmnet's")
			}
			if d := differences(n, back); len(d) > 0 {
				t.Errorf("a round trip changes the shape: %v", d)
			}
		})
	}
}

func TestBuildRefusesInvalid(t *testing.T) {
	if _, err := Build(Spec{Name: "x", Mode: ModeNAT}); err == nil {
		t.Fatal("Build of a nat spec without --cidr succeeded")
	}
}

// TestBuildValidatesWithLibvirtSchema checks the golden files with libvirt's
// own RelaxNG schema, the consumer of this XML.
func TestBuildValidatesWithLibvirtSchema(t *testing.T) {
	if _, err := exec.LookPath("virt-xml-validate"); err != nil {
		t.Skip("virt-xml-validate is not installed (apt-get install libvirt-clients)")
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint, which virt-xml-validate runs, is not installed (apt-get install libxml2-utils)")
	}
	for _, tc := range buildCases {
		path := filepath.Join("testdata", "golden", tc.name+".xml")
		out, err := exec.Command("virt-xml-validate", path, "network").CombinedOutput()
		if err != nil {
			t.Errorf("virt-xml-validate %s network: %v\n%s", path, err, out)
		}
	}
}

func TestOwned(t *testing.T) {
	tests := []struct {
		name     string
		metadata string // "-" for no <metadata>
		want     bool
	}{
		{"vmnet's", `<network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"></network>`, true},
		{"vmnet's, prefixed", `<v:network xmlns:v="https://vmnet.dev/xmlns/1" owner="vmnet"/>`, true},
		{"vmnet's, other owner", `<network xmlns="https://vmnet.dev/xmlns/1" owner="alice"/>`, false},
		{"older vmnet's", `<vmnet:owner xmlns:vmnet="https://vmnet.dev/xmlns/1">vmnet</vmnet:owner>`, true},
		{"other prefix", `<x:owner xmlns:x="https://vmnet.dev/xmlns/1"> vmnet </x:owner>`, true},
		{"default namespace", `<owner xmlns="https://vmnet.dev/xmlns/1">vmnet</owner>`, true},
		{"beside other metadata", `<a:x xmlns:a="urn:a"/><vmnet:owner xmlns:vmnet="https://vmnet.dev/xmlns/1">vmnet</vmnet:owner>`, true},
		{"no metadata", "-", false},
		{"empty metadata", "", false},
		{"other namespace", `<vmnet:owner xmlns:vmnet="https://example.org/">vmnet</vmnet:owner>`, false},
		{"other owner", `<vmnet:owner xmlns:vmnet="https://vmnet.dev/xmlns/1">someone</vmnet:owner>`, false},
		{"text only", `vmnet https://vmnet.dev/xmlns/1`, false},
		{"malformed", `<vmnet:owner xmlns:vmnet="https://vmnet.dev/xmlns/1">vmnet`, false},
	}
	for _, tt := range tests {
		n := &libvirtxml.Network{Name: "x"}
		if tt.metadata != "-" {
			n.Metadata = &libvirtxml.NetworkMetadata{XML: tt.metadata}
		}
		if got := Owned(n); got != tt.want {
			t.Errorf("%s: Owned = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Owned(nil) {
		t.Error("Owned(nil) = true")
	}
}

func mustBuild(t *testing.T, s Spec) *libvirtxml.Network {
	t.Helper()
	n, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDifferences(t *testing.T) {
	nat := Spec{Name: "n", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.0/24")}
	iso := nat
	iso.Mode = ModeIsolated
	moved := nat
	moved.CIDR = netip.MustParsePrefix("203.0.113.0/24")
	ranged := nat
	ranged.DHCPRange = rng("198.51.100.10", "198.51.100.20")
	br := Spec{Name: "n", Mode: ModeBridge, Bridge: "br0"}

	tests := []struct {
		name      string
		want, cur Spec
		diffs     []string
	}{
		{"same", nat, nat, nil},
		{"mode", iso, nat, []string{"mode nat → isolated"}},
		{"subnet", moved, nat, []string{"address 198.51.100.1/24 → 203.0.113.1/24", "DHCP range 198.51.100.128-198.51.100.254 → 203.0.113.128-203.0.113.254"}},
		{"range", ranged, nat, []string{"DHCP range 198.51.100.128-198.51.100.254 → 198.51.100.10-198.51.100.20"}},
		{"to bridge", br, nat, []string{"mode nat → bridge", "bridge vmnet-n → br0", "address 198.51.100.1/24 → none", "DHCP range 198.51.100.128-198.51.100.254 → none"}},
	}
	for _, tt := range tests {
		got := differences(mustBuild(t, tt.want), mustBuild(t, tt.cur))
		if !slices.Equal(got, tt.diffs) {
			t.Errorf("%s: differences = %q, want %q", tt.name, got, tt.diffs)
		}
	}

	// What libvirt adds on define (UUID, MAC, STP, NAT ports, reservations) is no difference.
	cur := mustBuild(t, nat)
	cur.UUID = "0cf34280-1be9-4169-b297-80888e320c36"
	cur.MAC = &libvirtxml.NetworkMAC{Address: "52:54:00:13:64:14"}
	cur.Bridge.STP = "on"
	cur.Forward.NAT = &libvirtxml.NetworkForwardNAT{}
	cur.IPs[0].DHCP.Hosts = []libvirtxml.NetworkDHCPHost{{MAC: "52:54:00:00:00:01", IP: "198.51.100.5"}}
	if d := differences(mustBuild(t, nat), cur); len(d) > 0 {
		t.Errorf("libvirt's additions count as differences: %q", d)
	}
	// libvirt's <forward/> without a mode is NAT; a netmask counts like a prefix.
	cur.Forward.Mode = ""
	cur.IPs[0].Prefix, cur.IPs[0].Netmask = 0, "255.255.255.0"
	if d := differences(mustBuild(t, nat), cur); len(d) > 0 {
		t.Errorf("<forward/> and a netmask count as differences: %q", d)
	}
}

func TestKeepHosts(t *testing.T) {
	cur := mustBuild(t, Spec{Name: "n", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.0/24")})
	cur.IPs[0].DHCP.Hosts = []libvirtxml.NetworkDHCPHost{
		{MAC: "52:54:00:00:00:01", IP: "198.51.100.5", Name: "a"},
		{MAC: "52:54:00:00:00:02", IP: "198.51.100.200", Name: "b"},
	}
	want := mustBuild(t, Spec{Name: "n", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.128/25")})
	pristine, _ := want.Marshal()
	d := *want
	d.IPs = slices.Clone(want.IPs)
	notes := keepHosts(&d, cur)
	if len(d.IPs[0].DHCP.Hosts) != 1 || d.IPs[0].DHCP.Hosts[0].Name != "b" {
		t.Errorf("kept hosts = %+v, want only b (198.51.100.200)", d.IPs[0].DHCP.Hosts)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "52:54:00:00:00:01") {
		t.Errorf("notes = %q, want one naming the dropped 52:54:00:00:00:01", notes)
	}
	if after, _ := want.Marshal(); after != pristine {
		t.Error("keepHosts changed the wanted definition it was given a copy of")
	}
	// A bridge network has no subnet: every reservation is dropped, with a note.
	br := mustBuild(t, Spec{Name: "n", Mode: ModeBridge, Bridge: "br0"})
	if notes := keepHosts(br, cur); len(notes) != 2 {
		t.Errorf("bridge: notes = %q, want two", notes)
	}
}
