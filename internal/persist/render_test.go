package persist

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"vmnet/internal/testutil"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// goldenCase is one bridge rendered for every backend.
type goldenCase struct {
	name string
	br   func(testing.TB) Bridge
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"plain", func(t testing.TB) Bridge {
			return Bridge{
				Name: "br0", MAC: mustMAC(t, "52:54:00:11:22:33"),
				Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")},
			}
		}},
		{"uplink-dhcp", func(t testing.TB) Bridge {
			return Bridge{
				Name: "br0", MAC: mustMAC(t, "52:54:00:ab:cd:ef"), Uplink: "eth0",
				DHCP4:     true,
				Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::10/64")},
				Gateway4:  netip.MustParseAddr("192.0.2.254"),
				Gateway6:  netip.MustParseAddr("2001:db8:1::1"),
			}
		}},
		{"mtu-stp", func(t testing.TB) Bridge {
			return Bridge{
				Name: "br-lab", MAC: mustMAC(t, "52:54:00:00:00:01"), Uplink: "enp3s0",
				Addresses: []netip.Prefix{
					netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("203.0.113.1/25"),
					netip.MustParsePrefix("2001:db8:2::1/64"), netip.MustParsePrefix("2001:db8:3::1/64"),
				},
				Gateway4: netip.MustParseAddr("198.51.100.254"),
				MTU:      9000, STP: true,
			}
		}},
		{"vlan-filtering", func(t testing.TB) Bridge {
			return Bridge{
				Name: "br1", MAC: mustMAC(t, "52:54:00:00:00:02"),
				Addresses: []netip.Prefix{netip.MustParsePrefix("10.10.0.1/24")},
				Gateway6:  netip.MustParseAddr("fe80::1"),
				MTU:       1400, VLANFiltering: true,
			}
		}},
	}
}

func renderBackends() []Backend { return []Backend{Networkd, NetworkManager, Netplan, Ifupdown} }

// dump is the golden form of a Render result: every file with its path and
// mode, or the error, so a review of testdata/ sees exactly what lands on disk.
func dump(files []File, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "=== %s (mode %#o)\n%s", f.Path, f.Mode, f.Content)
	}
	return b.String()
}

func TestRenderGolden(t *testing.T) {
	for _, c := range goldenCases() {
		for _, b := range renderBackends() {
			t.Run(c.name+"/"+string(b), func(t *testing.T) {
				got := dump(Render(b, c.br(t)))
				testutil.Golden(t, filepath.Join("testdata", "golden", c.name+"."+string(b)), []byte(got), *update)
			})
		}
	}
}

func TestRenderStable(t *testing.T) {
	for _, c := range goldenCases() {
		for _, b := range renderBackends() {
			first, err1 := Render(b, c.br(t))
			second, err2 := Render(b, c.br(t))
			if diff := cmp.Diff(dump(first, err1), dump(second, err2)); diff != "" {
				t.Errorf("%s/%s: two renders differ:\n%s", c.name, b, diff)
			}
		}
	}
}

func TestRenderNone(t *testing.T) {
	files, err := Render(None, Bridge{})
	if err != nil || files != nil {
		t.Fatalf("Render(None) = %v, %v; want no files, no error", files, err)
	}
	if _, err := Render(Auto, Bridge{Name: "br0"}); err == nil {
		t.Error("Render(Auto) succeeded; want an error asking for Detect")
	}
	if _, err := Render("bogus", Bridge{Name: "br0"}); err == nil {
		t.Error("Render(bogus) succeeded")
	}
}

func TestRenderRejects(t *testing.T) {
	good := func() Bridge {
		return Bridge{Name: "br0", MAC: mustMAC(t, "52:54:00:11:22:33"),
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	}
	tests := []struct {
		name  string
		edit  func(*Bridge)
		field string // the error must name it
	}{
		{"empty name", func(b *Bridge) { b.Name = "" }, "Name"},
		{"long name", func(b *Bridge) { b.Name = "abcdefghijklmnop" }, "Name"},
		{"path in name", func(b *Bridge) { b.Name = "../etc" }, "Name"},
		{"space in name", func(b *Bridge) { b.Name = "br 0" }, "Name"},
		{"bad uplink", func(b *Bridge) { b.Uplink = "eth0/x" }, "Uplink"},
		{"uplink is bridge", func(b *Bridge) { b.Uplink = "br0" }, "Uplink"},
		{"no MAC", func(b *Bridge) { b.MAC = nil }, "MAC"},
		{"short MAC", func(b *Bridge) { b.MAC = b.MAC[:4] }, "MAC"},
		{"multicast MAC", func(b *Bridge) { b.MAC = mustMAC(t, "01:00:5e:00:00:01") }, "MAC"},
		{"zero MAC", func(b *Bridge) { b.MAC = make(net.HardwareAddr, 6) }, "MAC"},
		{"MTU too small", func(b *Bridge) { b.MTU = 20 }, "MTU"},
		{"MTU negative", func(b *Bridge) { b.MTU = -1 }, "MTU"},
		{"invalid prefix", func(b *Bridge) { b.Addresses = append(b.Addresses, netip.Prefix{}) }, "Addresses[1]"},
		{"mapped address", func(b *Bridge) {
			b.Addresses = []netip.Prefix{netip.MustParsePrefix("::ffff:192.0.2.1/120")}
		}, "Addresses[0]"},
		{"gateway4 family", func(b *Bridge) { b.Gateway4 = netip.MustParseAddr("2001:db8::1") }, "Gateway4"},
		{"gateway6 family", func(b *Bridge) { b.Gateway6 = netip.MustParseAddr("192.0.2.1") }, "Gateway6"},
		{"gateway4 unreachable", func(b *Bridge) {
			b.Addresses = nil
			b.Gateway4 = netip.MustParseAddr("192.0.2.254")
		}, "Gateway4"},
		{"gateway4 unspecified", func(b *Bridge) { b.Gateway4 = netip.IPv4Unspecified() }, "Gateway4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := good()
			tt.edit(&br)
			for _, b := range renderBackends() {
				_, err := Render(b, br)
				if err == nil || !strings.HasPrefix(err.Error(), tt.field+":") {
					t.Errorf("Render(%s) error = %v; want one starting with %q", b, err, tt.field+":")
				}
			}
		})
	}
}

func TestStableUUID(t *testing.T) {
	u := stableUUID("vmnet-br0")
	if u != stableUUID("vmnet-br0") || u == stableUUID("vmnet-br1") {
		t.Fatalf("stableUUID is not a function of its input: %s", u)
	}
	if len(u) != 36 || u[14] != '5' || !strings.ContainsRune("89ab", rune(u[19])) {
		t.Errorf("stableUUID = %s; want a version-5, RFC 4122 variant UUID", u)
	}
}
