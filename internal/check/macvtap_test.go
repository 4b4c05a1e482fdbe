package check

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"vmnet/internal/lab"
	"vmnet/internal/vm"
	"vmnet/templates"
)

// macvtapLab is the built-in macvtap lab with old replaced by new.
func macvtapLab(t *testing.T, old, new string) lab.Lab {
	t.Helper()
	data, err := templates.Lab("macvtap")
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Parse([]byte(strings.ReplaceAll(string(data), old, new)), "")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// macvtapTargets are the lab's nodes as Describe sees them running, the
// parent mv0 with the host's address hostMV0 ("" for none).
func macvtapTargets(l lab.Lab, hostMV0 string) map[string]Target {
	out := map[string]Target{}
	for _, name := range l.NodeOrder {
		tg := fileTarget(l, name)
		for i := range tg.NICs {
			if tg.NICs[i].Parent != "" && hostMV0 != "" {
				tg.NICs[i].Host, tg.NICs[i].HostPrefix = a(hostMV0), 24
			}
		}
		out[name] = tg
	}
	return out
}

func byID(runs map[string][]Check) map[string]Check {
	out := map[string]Check{}
	for _, cs := range runs {
		for _, c := range cs {
			out[c.ID] = c
		}
	}
	return out
}

// In bridge mode the host ↔ guest pings on the macvtap NIC are expected to
// go unanswered, each after its control on the node's bridge NIC, and the
// guests reach each other on wan.
func TestMacvtapMatrixBridge(t *testing.T) {
	l := macvtapLab(t, "", "")
	got := byID(LabMatrix(l, macvtapTargets(l, "192.0.2.1")))
	for _, tc := range []struct {
		id       string
		want     Want
		blocked  Cause
		requires []string
	}{
		{"ping:host->left:eth0", WantNoReply, CauseMacvtapHost, []string{"ping:host->left:eth1"}},
		{"ping:left->host:mv0", WantNoReply, CauseMacvtapHost, []string{"ping:left->host:br0"}},
		{"ping:host->left:eth1", WantReply, "", nil},
		{"ping:left->right:wan", WantReply, "", nil},
		{"ping:right->left:wan", WantReply, "", nil},
	} {
		c, ok := got[tc.id]
		if !ok {
			t.Errorf("no check %s", tc.id)
			continue
		}
		if c.Want != tc.want || c.BlockedBy != tc.blocked || !slices.Equal(c.Requires, tc.requires) {
			t.Errorf("%s: want %q blocked by %q requires %v; got %q, %q, %v", tc.id, tc.want, tc.blocked, tc.requires, c.Want, c.BlockedBy, c.Requires)
		}
	}
	if c := got["ping:host->left:eth0"]; !strings.Contains(c.Expect, "host cannot reach a macvtap guest through its parent mv0 (mode bridge)") {
		t.Errorf("expect text %q", c.Expect)
	}
}

// Without an address on the parent there is no host end to ping from the
// guest; a node whose only NIC is on the macvtap network gets a peer
// guest's ping as its control.
func TestMacvtapMatrixPeerControl(t *testing.T) {
	l := macvtapLab(t, "      - {net: br0, address: 198.51.100.1", "      # - {net: br0, address: 198.51.100.1")
	got := byID(LabMatrix(l, macvtapTargets(l, "")))
	if _, ok := got["ping:left->host:mv0"]; ok {
		t.Error("a VM → host ping to a parent without an address was planned")
	}
	if c := got["ping:host->left:eth0"]; c.Want != WantNoReply || !slices.Equal(c.Requires, []string{"ping:right->left:wan"}) {
		t.Errorf("host → left:eth0: want %q requires %v, want no reply after ping:right->left:wan", c.Want, c.Requires)
	}
}

// Private and vepa modes keep guests on one parent apart: their pings
// are expected to go unanswered, after both nodes answer the host on br0.
func TestMacvtapMatrixApart(t *testing.T) {
	for _, mode := range []string{"private", "vepa"} {
		l := macvtapLab(t, "mode: bridge", "mode: "+mode)
		c := byID(LabMatrix(l, macvtapTargets(l, "192.0.2.1")))["ping:left->right:wan"]
		if c.Want != WantNoReply || c.BlockedBy != CauseMacvtapMode || !slices.Equal(c.Requires, []string{"ping:host->left:eth1", "ping:host->right:eth1"}) {
			t.Errorf("mode %s: left → right:wan want %q blocked by %q requires %v", mode, c.Want, c.BlockedBy, c.Requires)
		}
		if !strings.Contains(c.Expect, "mode "+mode) {
			t.Errorf("mode %s: expect %q does not name the mode", mode, c.Expect)
		}
	}
}

// A wrong expectation fails with the mode's own cause: the host reaching a
// macvtap guest through its parent is not a plain "not blocked".
func TestMacvtapWrongExpectation(t *testing.T) {
	l := macvtapLab(t, "", "")
	tg := macvtapTargets(l, "192.0.2.1")["left"]
	c := hostToVMPing(tg, 0)
	r := Result{Check: c, Actual: "reply"}
	d := newDiagnoser(nil, nil, tg, nil, Options{})
	d.diagnose(context.Background(), &r)
	if r.Cause != CauseMacvtapHost || !slices.Contains(Causes, r.Cause) || len(r.Evidence) == 0 {
		t.Errorf("cause %q evidence %v, want %q (in Causes)", r.Cause, r.Evidence, CauseMacvtapHost)
	}
}

// Describe's pure part reads a macvtap NIC's parent and mode from the VM's
// record, and takes the host's end from the parent's address on the NIC's
// subnet only.
func TestParentAddress(t *testing.T) {
	ps := []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24"), netip.MustParsePrefix("192.0.2.1/24")}
	if h, bits := parentAddress(ps, a("192.0.2.11")); h != a("192.0.2.1") || bits != 24 {
		t.Errorf("parentAddress = %v/%d, want 192.0.2.1/24", h, bits)
	}
	if h, _ := parentAddress(ps[:1], a("192.0.2.11")); h.IsValid() {
		t.Errorf("an address on another subnet was taken as the host's end: %v", h)
	}
	info := vm.Info{Name: "left", NICs: []vm.NICInfo{{Index: 0, Parent: "mv0", Mode: "bridge", MAC: "52:54:00:00:00:01", Address: "192.0.2.11", Source: "static"}}}
	tg := describeFrom(info, "", nil, func(link string) []netip.Prefix {
		if link != "mv0" {
			t.Errorf("asked for the addresses of %s, want mv0", link)
		}
		return ps
	}, false)
	n := tg.NICs[0]
	if n.Parent != "mv0" || n.Mode != "bridge" || n.Host != a("192.0.2.1") || n.Prefix != 0 || n.HostLabel() != "host:mv0" {
		t.Errorf("described NIC %+v", n)
	}
}
