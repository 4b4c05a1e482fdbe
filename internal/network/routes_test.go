package network

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// fakeKernel serves fixed routes and links; it stands in for netlink only
// to reach route tables no test namespace here has (the real check runs in
// the sandbox tests).
type fakeKernel struct {
	routes []netlink.Route
	links  map[string]netlink.Link
	err    error
}

func (k *fakeKernel) RouteList(netlink.Link, int) ([]netlink.Route, error) { return k.routes, k.err }

func (k *fakeKernel) LinkByName(name string) (netlink.Link, error) {
	if l, ok := k.links[name]; ok {
		return l, nil
	}
	return nil, netlink.LinkNotFoundError{}
}

func (k *fakeKernel) LinkByIndex(i int) (netlink.Link, error) {
	for _, l := range k.links {
		if l.Attrs().Index == i {
			return l, nil
		}
	}
	return nil, netlink.LinkNotFoundError{}
}

func route(dst string, link int) netlink.Route {
	_, n, err := net.ParseCIDR(dst)
	if err != nil {
		panic(err)
	}
	return netlink.Route{Dst: n, LinkIndex: link}
}

func TestCheckRoutes(t *testing.T) {
	k := &fakeKernel{
		routes: []netlink.Route{
			{LinkIndex: 2}, // default route: no Dst
			route("0.0.0.0/0", 2),
			route("10.0.0.0/8", 2),
			route("198.51.100.0/24", 3),
		},
		links: map[string]netlink.Link{
			"eth0":       &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "eth0", Index: 2}},
			"vmnet-nat0": &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "vmnet-nat0", Index: 3}},
		},
	}
	tests := []struct {
		name    string
		cidr    string
		exists  bool
		problem string
	}{
		{"free", "203.0.113.0/24", false, ""},
		{"inside a route", "10.20.0.0/16", false, "overlaps route 10.0.0.0/8 dev eth0"},
		{"around a route", "198.51.0.0/16", false, "overlaps route 198.51.100.0/24 dev vmnet-nat0"},
		{"its own route when new", "198.51.100.0/24", false, "dev vmnet-nat0"},
		{"its own route when it exists", "198.51.100.0/24", true, ""},
	}
	for _, tt := range tests {
		s := Spec{Name: "nat0", Mode: ModeNAT, CIDR: netip.MustParsePrefix(tt.cidr)}
		err := checkRoutes(k, s, tt.exists)
		if tt.problem == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "--cidr" || !strings.Contains(fe.Problem, tt.problem) {
			t.Errorf("%s: checkRoutes = %v, want a --cidr FieldError with %q", tt.name, err, tt.problem)
		}
	}
	k.err = errors.New("netlink broke")
	if err := checkRoutes(k, Spec{Name: "x", Mode: ModeNAT, CIDR: netip.MustParsePrefix("203.0.113.0/24")}, false); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("a netlink failure gave %v, want it passed on", err)
	}
}
