package perf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
)

// TestPlanModesLab: the modes lab's pairs are host → VM on each network,
// then one per container network mode, each saying what path it measures:
// the VM → its podman bridge container (plain: web, on front, has no
// neighbour on its network), the host → the host-network container on the
// VM's bridge network, the host → the macvlan child on br0 and the ipvlan
// child on nat0 (their own VM cannot reach them; routed, ipvlan l3, is
// not measured: natipv is the first ipvlan one). Each parses back to
// itself, and the baseline is the bridge container pair.
func TestPlanModesLab(t *testing.T) {
	l := builtin(t, "modes")
	pairs := Plan(l)
	want := []struct{ name, mode, kind, cmode string }{
		{"host-modes:nat0", "host ↔ VM, nat", "nat", ""},
		{"host-modes:br0", "host ↔ VM, bridge", "bridge", ""},
		{"host-modes:l3br", "host ↔ VM, bridge", "bridge", ""},
		{"modes/peer-modes/web:front", "container → container, podman bridge", "podman", "bridge"},
		{"host-modes/hostnet:br0", "host → container, network host", "bridge", "host"},
		{"host-modes/lanapi:br0", "host → container, macvlan", "bridge", "macvlan"},
		{"host-modes/natipv:nat0", "host → container, ipvlan l2", "nat", "ipvlan"},
	}
	if len(pairs) != len(want) {
		t.Fatalf("Plan(modes) = %s, want %d pairs", Names(pairs), len(want))
	}
	for i, w := range want {
		p := pairs[i]
		if p.Name() != w.name || p.Mode() != w.mode || p.NetKind != w.kind || p.ContainerMode != w.cmode {
			t.Errorf("pair %d: %s %q %s %q, want %s %q %s %q", i, p.Name(), p.Mode(), p.NetKind, p.ContainerMode, w.name, w.mode, w.kind, w.cmode)
		}
		if again, err := ParsePair(l, p.Name()); err != nil || again != p {
			t.Errorf("%s does not parse back: %+v, %v", p.Name(), again, err)
		}
	}
	if b, err := Baseline(pairs, ""); err != nil || b != 3 {
		t.Errorf("Baseline(modes) = %d, %v; want 3, the bridge container pair", b, err)
	}
	if b, _ := Baseline(pairs[4:], ""); b != -1 {
		t.Errorf("Baseline without a bridge pair = %d, want -1 (host, macvlan and ipvlan pairs cross bridge networks, but are not the bridge mode)", b)
	}
	if b, _ := Baseline(pairs[:2], ""); b != 1 {
		t.Errorf("Baseline(host → VM pairs) = %d, want 1 (host ↔ VM, bridge)", b)
	}
}

// pairsLab has two nodes, containers in every mode perf measures, two on
// one podman network, and a macvlan child on a macvtap network where the
// host has no address.
const pairsLab = `name: pairs
networks:
  lan: {kind: bridge, address: 192.0.2.1/24}
  wan: {kind: macvtap, parent: mv0, cidr: 203.0.113.0/24}
nodes:
  a:
    image: capstone
    nics: [{net: wan, address: 203.0.113.10/24}, {net: lan, address: 192.0.2.10/24}]
    container-networks:
      back: {driver: bridge, subnet: 10.89.2.0/24}
    containers:
      api: {network: back}
      db: {network: back, address: 10.89.2.20/24}
      mv: {network: macvlan, parent: wan, address: 203.0.113.50/24}
      hn: {network: host}
  b:
    image: capstone
    nics: [{net: wan, address: 203.0.113.11/24}]
`

// TestPlanContainerPairs: two containers on one podman network measure
// each other; a macvlan child where the host has no address is measured
// from a peer VM; a host-network container from the host on the node's
// bridge network, not its first NIC's macvtap one.
func TestPlanContainerPairs(t *testing.T) {
	l, err := lab.Parse([]byte(pairsLab), "pairs.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := Names(containerPairs(l))
	if want := "a/api-a/db:back,host-a/hn:lan,b-a/mv:wan"; got != want {
		t.Errorf("containerPairs(pairs) = %s, want %s", got, want)
	}
	p, err := ParsePair(l, "a/api-a/db:back")
	if err != nil || p.Mode() != "container → container, podman bridge" {
		t.Errorf("a/api-a/db:back: %q, %v", p.Mode(), err)
	}
	addr, err := labAddr(l, map[string]vm.Info{}, p.Server, p.Net)
	if err != nil || addr != netip.MustParseAddr("10.89.2.20") {
		t.Errorf("a/db's address: %s, %v; want its own 10.89.2.20", addr, err)
	}
	addr, err = labAddr(l, map[string]vm.Info{}, ContainerEnd("a", "hn"), "lan")
	if err != nil || addr != netip.MustParseAddr("192.0.2.10") {
		t.Errorf("a/hn's address on lan: %s, %v; want its VM's 192.0.2.10", addr, err)
	}
	addr, err = labAddr(l, map[string]vm.Info{}, ContainerEnd("a", "api"), "back")
	if want := l.ContainerAddrs("a")["api"]; err != nil || addr != want || !netip.MustParsePrefix("10.89.2.0/24").Contains(addr) {
		t.Errorf("a/api's address: %s, %v; want the one vmnet gives it on back, %s", addr, err, want)
	}
}

// TestParseContainerPairs: container pairs the lab has no path for are
// refused with the reason: the parent VM to its macvlan child, the VM to
// its own host-network container (loopback), the host into a podman
// bridge, a container sending out, none and pod members, the wrong network.
func TestParseContainerPairs(t *testing.T) {
	l := builtin(t, "modes")
	for name, want := range map[string]string{
		"modes-modes/lanapi:br0":       "a macvlan child is never reached from its parent VM",
		"modes-modes/natipv:nat0":      "a ipvlan child is never reached",
		"modes-modes/hostnet:br0":      "would measure the loopback",
		"host-modes/plain:podman":      "from outside its VM modes, which has no route in",
		"modes/web-modes/plain:podman": "a container sends only to another container on its own podman network",
		"modes/plain-host:br0":         "has container modes/plain sending",
		"modes-modes/isolated:br0":     "container modes/isolated, in network mode none",
		"modes-modes/app:podman":       "container modes/app, in network mode pod",
		"host-modes/natipv:br0":        "crosses br0, but container modes/natipv is ipvlan on nat0",
		"modes-modes/web:podman":       "names network \"podman\", but container modes/web is on podman network front",
		"host-modes/nope:br0":          "or a container: modes/app, modes/hostnet",
		"host-modes/hostnet:front":     "names network \"front\"",
	} {
		_, err := ParsePair(l, name)
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePair(modes, %q) = %v, want a refusal that says %q", name, err, want)
		}
	}
	if p, err := ParsePair(l, "modes-modes/web:front"); err != nil || p.NetKind != "podman" || p.ContainerMode != "bridge" {
		t.Errorf("modes-modes/web:front: %+v, %v; want the VM → web on podman network front", p, err)
	}
}
