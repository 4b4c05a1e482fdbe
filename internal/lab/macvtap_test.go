package lab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"vmnet/internal/errs"
	"vmnet/internal/vmspec"
	"vmnet/templates"
)

// macvtapLab is the built-in macvtap lab's text.
func macvtapLab(t *testing.T) string {
	t.Helper()
	data, err := templates.Lab("macvtap")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// editMacvtap replaces old by new in the macvtap lab, once.
func editMacvtap(t *testing.T, old, new string) string {
	t.Helper()
	s := macvtapLab(t)
	if !strings.Contains(s, old) {
		t.Fatalf("macvtap.lab.yaml has no %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

// The built-in lab plans each NIC on wan as a direct NIC on mv0 in bridge
// mode, asks vmnet to make only br0, and gives the host no address on wan.
func TestMacvtapPlan(t *testing.T) {
	l, err := Parse([]byte(macvtapLab(t)), "")
	if err != nil {
		t.Fatal(err)
	}
	wan := l.Networks["wan"]
	if wan.Kind != KindMacvtap || wan.Parent != "mv0" || wan.HostAddr().IsValid() || wan.Pool() != [2]netip.Addr{} {
		t.Errorf("wan = %+v, host %v, pool %v", wan, wan.HostAddr(), wan.Pool())
	}
	r := l.Requires()
	if len(r.Networks) != 0 || len(r.Bridges) != 1 || r.Bridges[0].Name != "br0" {
		t.Errorf("Requires = %+v, want bridge br0 only", r)
	}
	s, err := l.Spec("left")
	if err != nil {
		t.Fatal(err)
	}
	if d := s.NICs[0].Direct; d != (vmspec.Direct{Parent: "mv0", Mode: vmspec.DirectBridge}) || s.NICs[0].Address.String() != "192.0.2.11/24" {
		t.Errorf("left eth0 = %+v", s.NICs[0])
	}
	if s.NICs[1].Bridge != "br0" || !s.NICs[1].Direct.IsZero() {
		t.Errorf("left eth1 = %+v", s.NICs[1])
	}
	if len(s.Requires.Networks) != 0 || len(s.Requires.Bridges) != 1 {
		t.Errorf("left requires %+v, want br0 only", s.Requires)
	}
	if p := s.Parents(); len(p) != 1 || p[0] != "mv0" {
		t.Errorf("Parents = %v", p)
	}
}

func TestMacvtapRefuses(t *testing.T) {
	wan := "wan: {kind: macvtap, parent: mv0, mode: bridge, cidr: 192.0.2.0/24}"
	for _, tc := range []struct{ name, lab, want string }{
		{"no parent", editMacvtap(t, wan, "wan: {kind: macvtap, cidr: 192.0.2.0/24}"), ":16: networks.wan.parent is missing"},
		{"bad parent", editMacvtap(t, "parent: mv0", "parent: mv0/x"), `:16: networks.wan.parent: "mv0/x"`},
		{"long parent", editMacvtap(t, "parent: mv0", "parent: a-very-long-parent0"), "Linux allows at most 15"},
		{"bad mode", editMacvtap(t, "mode: bridge", "mode: vpea"), `networks.wan.mode: "vpea" is not a macvtap mode (did you mean vepa?)`},
		{"no cidr", editMacvtap(t, ", cidr: 192.0.2.0/24", ""), "networks.wan.cidr is missing"},
		{"address", editMacvtap(t, "cidr: 192.0.2.0/24", "address: 192.0.2.1/24"), "networks.wan.address: \"192.0.2.1/24\" is set on a macvtap network"},
		{"host bits", editMacvtap(t, "cidr: 192.0.2.0/24", "cidr: 192.0.2.1/24"), "has host bits set"},
		{"no nic address", editMacvtap(t, "{net: wan, address: 192.0.2.11/24}", "{net: wan}"), ":22: nodes.left.nics[0].address is missing: vmnet serves no DHCP on a macvtap network"},
		{"outside cidr", editMacvtap(t, "192.0.2.11/24", "192.0.3.11/24"), "is not in network wan's subnet"},
		{"passthrough twice", editMacvtap(t, "mode: bridge", "mode: passthrough"), "networks.wan.mode: \"passthrough\" gives the parent to one NIC only, but 2 NICs use network wan (nodes.left.nics[0], nodes.right.nics[0])"},
		{"parent on nat", editMacvtap(t, "br0: {kind: bridge, address: 198.51.100.1/24}", "br0: {kind: bridge, address: 198.51.100.1/24, parent: eth0}"), `networks.br0.parent: "eth0" is set on a bridge network`},
		{"two on one parent", editMacvtap(t, "  br0: {kind: bridge, address: 198.51.100.1/24}", "  br0: {kind: bridge, address: 198.51.100.1/24}\n  wan2: {kind: macvtap, parent: mv0, cidr: 203.0.113.0/24}"), `networks.wan2.parent: "mv0" is also network wan's parent`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.lab), "m.lab.yaml")
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant a part:\n  %s", err, tc.want)
			}
		})
	}
}
