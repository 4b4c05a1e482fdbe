package doctor

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// checkLinks fails when vmnet's own link types are missing, warns (naming
// where to run them) when a mode's are, and says it could not probe.
func TestCheckLinks(t *testing.T) {
	host := func(ls []LinkSupport, err error) Host {
		return Host{Links: func() ([]LinkSupport, error) { return ls, err }}
	}
	all := []LinkSupport{{Kind: "veth", OK: true}, {Kind: "bridge", OK: true}, {Kind: "tun", OK: true}, {Kind: "macvtap/bridge", OK: true}}
	if f := checkLinks(host(all, nil)); f.Status != OK || f.Fix != "" || !strings.Contains(f.Detail, "macvtap/bridge") || len(f.Links) != 4 {
		t.Errorf("every kind there: %+v", f)
	}
	noIPvlan := append(slices.Clone(all), LinkSupport{Kind: "ipvlan", Error: "Unknown device type"})
	if f := checkLinks(host(noIPvlan, nil)); f.Status != Warn || !strings.Contains(f.Detail, "lacks ipvlan") || !strings.Contains(f.Fix, "inside a guest") {
		t.Errorf("no ipvlan: %+v", f)
	}
	noBridge := append(slices.Clone(all[2:]), LinkSupport{Kind: "bridge", Error: "Unknown device type"})
	if f := checkLinks(host(noBridge, nil)); f.Status != Fail {
		t.Errorf("no bridge: %+v", f)
	}
	if f := checkLinks(host(nil, errors.New("operation not permitted"))); f.Status != Warn || !strings.Contains(f.Detail, "could not probe") {
		t.Errorf("probe failed: %+v", f)
	}
	if f := checkLinks(Host{}); f.Status != OK || f.Detail != "not probed" {
		t.Errorf("no prober: %+v", f)
	}
}

// ProbeLinks on this kernel: veth, bridge and macvtap in every mode are
// made (issue 10's host has them), every kind answers, and the test's own
// namespace has the same links afterwards: the probes ran elsewhere.
func TestProbeLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace")
	}
	before, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	links, err := ProbeLinks()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]LinkSupport{}
	for _, l := range links {
		got[l.Kind] = l
		if !l.OK && l.Error == "" {
			t.Errorf("%s: neither made nor a reason", l.Kind)
		}
	}
	for _, k := range []string{"veth", "bridge", "macvtap/bridge", "macvtap/vepa", "macvtap/private", "macvtap/passthrough", "tun"} {
		if l, ok := got[k]; !ok || !l.OK || l.Error != "" {
			t.Errorf("%s: %+v, want made and removed", k, l)
		}
	}
	if len(links) != len(linkProbes)+1 {
		t.Errorf("%d answers, want %d", len(links), len(linkProbes)+1)
	}
	after, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("the test's namespace had %d links and has %d: a probe leaked out", len(before), len(after))
	}
}
