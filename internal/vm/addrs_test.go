package vm

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"vmnet/internal/domain"
	"vmnet/internal/network"
	"vmnet/internal/vmspec"
)

// The spec's own check of a required network's pool must see the pool
// vmnet will really give that network.
func TestDefaultPoolIsTheNetworksPool(t *testing.T) {
	for _, s := range []string{"198.51.100.0/24", "10.0.0.0/8", "203.0.113.0/29", "192.0.2.64/26", "172.16.0.0/12"} {
		p := netip.MustParsePrefix(s)
		if got, want := vmspec.DefaultPool(p), network.DefaultDHCPRange(p); got != want {
			t.Errorf("%s: vmspec.DefaultPool = %v, network.DefaultDHCPRange = %v", s, got, want)
		}
	}
}

func TestPickSubnet(t *testing.T) {
	host := []netip.Prefix{
		netip.MustParsePrefix("fe80::1/64"),
		netip.MustParsePrefix("203.0.113.1/24"),
		netip.MustParsePrefix("192.0.2.1/24"),
		netip.MustParsePrefix("2001:db8::1/64"),
	}
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.10", "192.0.2.0/24"},     // the one that contains it
		{"198.51.100.5", "203.0.113.0/24"}, // none does: the first of its family
		{"2001:db8::5", "2001:db8::/64"},   // not the link-local one
		{"2001:db8:1::5", "2001:db8::/64"}, // none contains it
		{"fe80::5", "2001:db8::/64"},       // link-local is never the subnet
	} {
		if got := pickSubnet(host, netip.MustParseAddr(tc.addr)); got != netip.MustParsePrefix(tc.want) {
			t.Errorf("pickSubnet(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := pickSubnet(host[:1], netip.MustParseAddr("192.0.2.5")); got.IsValid() {
		t.Errorf("no IPv4 address on the bridge: got subnet %s", got)
	}
}

// Other VMs are found by their records; the VM being brought up is not its
// own rival, and a directory without vmnet's record is nobody's.
func TestOtherRecords(t *testing.T) {
	dir := t.TempDir()
	if rs, err := otherRecords(dir, "web"); err != nil || len(rs) != 0 {
		t.Fatalf("no vms directory: %v, %v", rs, err)
	}
	for _, name := range []string{"web", "db"} {
		d := filepath.Join(dir, "vms", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeRecord(d, record{Owner: domain.Owner, Name: name, NICs: []nicRecord{{Bridge: "br0", Static: netip.MustParsePrefix("192.0.2.20/24")}}}); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "vms", "stray"), 0o755)
	os.WriteFile(filepath.Join(dir, "vms", "stray", recordFile), []byte(`{"owner": "someone"}`), 0o644)
	rs, err := otherRecords(dir, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Name != "db" || rs[0].NICs[0].Static.Addr() != netip.MustParseAddr("192.0.2.20") {
		t.Errorf("other records of web: %+v", rs)
	}
}
