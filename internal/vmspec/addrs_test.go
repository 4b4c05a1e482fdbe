package vmspec

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"vmnet/internal/bridge"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func pool(a, b string) [2]netip.Addr { return [2]netip.Addr{ip(a), ip(b)} }

func TestCheckStatic(t *testing.T) {
	br0 := AddrLink{Name: "bridge br0", Subnet: pfx("192.0.2.0/24"),
		Holders: []AddrHolder{{ip("192.0.2.1"), "the host's address on br0"}}}
	withVM := br0
	withVM.Holders = append(withVM.Holders[:1:1], AddrHolder{ip("192.0.2.2"), "VM web's NIC eth1"})
	nat0 := AddrLink{Name: "network nat0", Subnet: pfx("198.51.100.0/24"), Pool: pool("198.51.100.128", "198.51.100.254"),
		Holders: []AddrHolder{
			{ip("198.51.100.1"), "the host's address on network nat0"},
			{ip("198.51.100.23"), "VM db's NIC eth0"},
			{ip("198.51.100.2"), "the DHCP reservation of 52:54:00:00:00:02 (printer) on network nat0"},
		}}
	slash30 := AddrLink{Name: "bridge br1", Subnet: pfx("192.0.2.0/30"), Holders: []AddrHolder{{ip("192.0.2.1"), "the host's address on br1"}}}
	slash30full := slash30
	slash30full.Holders = append(slash30full.Holders[:1:1], AddrHolder{ip("192.0.2.2"), "VM a's NIC eth0"})
	slash29 := AddrLink{Name: "network tiny29", Subnet: pfx("203.0.113.0/29"), Pool: pool("203.0.113.4", "203.0.113.6"),
		Holders: []AddrHolder{{ip("203.0.113.1"), "the host's address on network tiny29"}}}
	slash31 := AddrLink{Name: "bridge p2p", Subnet: pfx("192.0.2.0/31"), Holders: []AddrHolder{{ip("192.0.2.0"), "the host's address on p2p"}}}
	slash32 := AddrLink{Name: "bridge one", Subnet: pfx("192.0.2.7/32"), Holders: []AddrHolder{{ip("192.0.2.7"), "the host's address on one"}}}
	v6 := AddrLink{Name: "bridge br6", Subnet: pfx("2001:db8::/64"), Holders: []AddrHolder{{ip("2001:db8::1"), "the host's address on br6"}}}
	unknown := AddrLink{Name: "bridge bare", Holders: []AddrHolder{{ip("192.0.2.10"), "VM web's NIC eth1"}}}

	for _, tc := range []struct {
		name    string
		addr    string
		link    AddrLink
		problem string // "" for accepted
		fix     string
	}{
		{"free address on a bridge", "192.0.2.10/24", br0, "", ""},
		{"the host's address on the bridge", "192.0.2.1/24", br0, `is already in use: the host's address on br0`, "192.0.2.2/24"},
		{"another VM's static address", "192.0.2.2/24", withVM, "is already in use: VM web's NIC eth1", "192.0.2.3/24"},
		{"the host's address on a network", "198.51.100.1/24", nat0, "is already in use: the host's address on network nat0", "198.51.100.3/24"},
		{"another VM's reservation", "198.51.100.23/24", nat0, "is already in use: VM db's NIC eth0", "198.51.100.3/24"},
		{"a DHCP <host> entry", "198.51.100.2/24", nat0, "is already in use: the DHCP reservation of 52:54:00:00:00:02 (printer)", "198.51.100.3/24"},
		{"the network address", "192.0.2.0/24", br0, "is the network address of 192.0.2.0/24", "192.0.2.2/24"},
		{"the broadcast address", "192.0.2.255/24", br0, "is the broadcast address of 192.0.2.0/24", "192.0.2.2/24"},
		{"inside the DHCP pool", "198.51.100.200/24", nat0, "is inside network nat0's DHCP pool 198.51.100.128-198.51.100.254", "198.51.100.3/24"},
		{"the pool's first address", "198.51.100.128/24", nat0, "DHCP pool", "198.51.100.3/24"},
		{"just below the pool", "198.51.100.127/24", nat0, "", ""},
		{"outside the subnet", "203.0.113.5/24", br0, "is not in bridge br0's subnet 192.0.2.0/24", "192.0.2.2/24"},
		{"another prefix length", "192.0.2.10/25", br0, "has prefix length 25, but bridge br0's subnet is 192.0.2.0/24", "192.0.2.2/24"},
		{"IPv6 on an IPv4 subnet", "2001:db8::5/64", br0, "is not in bridge br0's subnet 192.0.2.0/24", "192.0.2.2/24"},
		{"unknown subnet: holders still count", "192.0.2.10/24", unknown, "is already in use: VM web's NIC eth1", "192.0.2.2/24"},
		{"unknown subnet: free", "192.0.2.11/24", unknown, "", ""},
		{"/30: the only guest address", "192.0.2.2/30", slash30, "", ""},
		{"/30: the host's", "192.0.2.1/30", slash30, "is already in use: the host's address on br1", "192.0.2.2/30"},
		{"/30: broadcast", "192.0.2.3/30", slash30, "is the broadcast address of 192.0.2.0/30", "192.0.2.2/30"},
		{"/30: full", "192.0.2.1/30", slash30full, "is already in use", "no address is free"},
		{"/29 with vmnet's pool", "203.0.113.5/29", slash29, "DHCP pool 203.0.113.4-203.0.113.6", "203.0.113.2/29"},
		{"/29 below the pool", "203.0.113.3/29", slash29, "", ""},
		{"/31: both addresses are hosts", "192.0.2.1/31", slash31, "", ""},
		{"/31: the host's", "192.0.2.0/31", slash31, "is already in use: the host's address on p2p", "192.0.2.1/31"},
		{"/32: the host's, nothing free", "192.0.2.7/32", slash32, "is already in use", "no address is free"},
		{"IPv6: the host's", "2001:db8::1/64", v6, "is already in use: the host's address on br6", "2001:db8::2/64"},
		{"IPv6: free", "2001:db8::10/64", v6, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckStatic("nics[1].address", pfx(tc.addr), tc.link)
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("refused: %v (hint: %s)", err, err.Hint())
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tc.problem)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `nics[1].address: "`+tc.addr+`" `) || !strings.Contains(msg, tc.problem) {
				t.Errorf("error %q, want nics[1].address, %s and %q", msg, tc.addr, tc.problem)
			}
			if !strings.Contains(err.Hint(), tc.fix) {
				t.Errorf("hint %q, want it to name %s", err.Hint(), tc.fix)
			}
			if !errors.Is(error(err), bridge.ErrInvalid) {
				t.Errorf("%v is not bad input (exit code 2)", err)
			}
		})
	}
}

// The suggestion is the first free address, low in the subnet: never the
// network address, .1, a holder, the pool or the broadcast address.
func TestFreeAddress(t *testing.T) {
	for _, tc := range []struct {
		name   string
		subnet string
		pool   [2]netip.Addr
		taken  []string
		want   string // "" for none
	}{
		{"empty /24", "192.0.2.0/24", [2]netip.Addr{}, nil, "192.0.2.2"},
		{".1 is never suggested, even unheld", "192.0.2.0/24", [2]netip.Addr{}, []string{"192.0.2.2"}, "192.0.2.3"},
		{"skips every holder", "192.0.2.0/24", [2]netip.Addr{}, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.5"}, "192.0.2.4"},
		{"subnet given with host bits", "192.0.2.77/24", [2]netip.Addr{}, nil, "192.0.2.2"},
		{"jumps over a low pool", "198.51.100.0/24", pool("198.51.100.2", "198.51.100.100"), nil, "198.51.100.101"},
		{"lower half full, upper half is the pool", "203.0.113.0/29", pool("203.0.113.4", "203.0.113.6"), []string{"203.0.113.2", "203.0.113.3"}, ""},
		{"/30", "192.0.2.0/30", [2]netip.Addr{}, []string{"192.0.2.1"}, "192.0.2.2"},
		{"/30 full", "192.0.2.0/30", [2]netip.Addr{}, []string{"192.0.2.2"}, ""},
		{"/31", "192.0.2.0/31", [2]netip.Addr{}, []string{"192.0.2.0"}, "192.0.2.1"},
		{"/32 free", "192.0.2.7/32", [2]netip.Addr{}, nil, "192.0.2.7"},
		{"/32 held", "192.0.2.7/32", [2]netip.Addr{}, []string{"192.0.2.7"}, ""},
		{"the top of a /24 but not broadcast", "192.0.2.0/24", [2]netip.Addr{}, upTo(253), "192.0.2.254"},
		{"the whole /24 held", "192.0.2.0/24", [2]netip.Addr{}, upTo(254), ""},
		{"IPv6", "2001:db8::/64", [2]netip.Addr{}, []string{"2001:db8::2"}, "2001:db8::3"},
		{"invalid subnet", "", [2]netip.Addr{}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var subnet netip.Prefix
			if tc.subnet != "" {
				subnet = pfx(tc.subnet)
			}
			var taken []netip.Addr
			for _, s := range tc.taken {
				taken = append(taken, ip(s))
			}
			got := FreeAddress(subnet, tc.pool, taken...)
			if tc.want == "" {
				if got.IsValid() {
					t.Fatalf("FreeAddress = %s, want none", got)
				}
				return
			}
			if got != ip(tc.want) {
				t.Fatalf("FreeAddress = %s, want %s", got, tc.want)
			}
		})
	}
}

// upTo lists 192.0.2.2 to 192.0.2.n.
func upTo(n int) []string {
	var out []string
	for a := ip("192.0.2.2"); a.As4()[3] <= byte(n) && a.As4()[3] != 0; a = a.Next() {
		out = append(out, a.String())
	}
	return out
}
