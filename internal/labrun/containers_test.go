package labrun

import (
	"errors"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"vmnet/internal/lab"
)

// fakeRoutes records route replacements over a table that starts as have.
type fakeRoutes struct {
	have []netlink.Route
	fail error
}

func (f *fakeRoutes) RouteList(netlink.Link, int) ([]netlink.Route, error) { return f.have, nil }

func (f *fakeRoutes) RouteReplace(r *netlink.Route) error {
	if f.fail != nil {
		return f.fail
	}
	f.have = append(f.have, *r)
	return nil
}

// l3Lab is a lab with one ipvlan l3 container on a NIC with a static
// address, and an l2 one that needs no route.
func l3Lab(t *testing.T) lab.Lab {
	t.Helper()
	l, err := lab.Parse([]byte(`name: l3
networks:
  br0: {kind: bridge, address: 192.0.2.1/24}
  br1: {kind: bridge, address: 203.0.113.1/24}
nodes:
  n1:
    image: capstone
    nics:
      - {net: br0, address: 192.0.2.10/24}
      - {net: br1, address: 203.0.113.10/24}
    containers:
      routed: {network: ipvlan, mode: l3, parent: br0, address: 192.0.2.70/24, listen: 80}
      bridged: {network: ipvlan, parent: br1, address: 203.0.113.60/24}
`), "l3.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestUpL3Routes: lab up adds the l3 container's host route via its
// parent NIC's address once (a second up changes nothing), none for the
// l2 one; a kernel view that cannot add routes, or a refused route, is an
// error that names the container and the ip command.
func TestUpL3Routes(t *testing.T) {
	l := l3Lab(t)
	k := &fakeRoutes{}
	changed, err := upL3Routes(k, l, "n1")
	if err != nil || len(k.have) != 1 || k.have[0].Dst.String() != "192.0.2.70/32" || k.have[0].Gw.String() != "192.0.2.10" {
		t.Fatalf("routes %v, err %v; want 192.0.2.70/32 via 192.0.2.10", k.have, err)
	}
	if len(changed) != 1 || !strings.Contains(changed[0], "route 192.0.2.70/32 via 192.0.2.10 (ipvlan l3 container routed)") {
		t.Errorf("changes %q", changed)
	}
	if again, err := upL3Routes(k, l, "n1"); err != nil || len(again) != 0 || len(k.have) != 1 {
		t.Errorf("second up: changes %q, err %v, routes %v", again, err, k.have)
	}
	if _, err := upL3Routes(struct{}{}, l, "n1"); err == nil || !strings.Contains(err.Error(), "cannot add routes") {
		t.Errorf("a kernel view without routes: %v", err)
	}
	_, err = upL3Routes(&fakeRoutes{fail: errors.New("network is unreachable")}, l, "n1")
	if err == nil || !strings.Contains(err.Error(), "container routed of node n1 (ip route replace 192.0.2.70/32 via 192.0.2.10): network is unreachable") {
		t.Errorf("a refused route: %v", err)
	}
	if changed, err := upL3Routes(struct{}{}, lab.Lab{Nodes: map[string]lab.Node{"x": {}}}, "x"); err != nil || changed != nil {
		t.Errorf("a node without l3 containers: %q, %v", changed, err)
	}
}
