package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"vmnet/internal/bridge"
)

// FuzzParseCIDR: any input is either refused with a FieldError or yields a
// subnet that Validate accepts and whose gateway, default DHCP range and
// host addresses lie inside it.
func FuzzParseCIDR(f *testing.F) {
	for _, s := range []string{"198.51.100.0/24", "10.0.0.0/8", "192.0.2.8/29", "198.51.100.1/24", "::/0", "1.2.3.4", "", "/24", "10.0.0.0/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseCIDR(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseCIDR(%q) = %v, not a FieldError", s, err)
			}
			return
		}
		spec := Spec{Name: "f", Mode: ModeNAT, CIDR: p}
		if err := spec.Validate(); err != nil {
			t.Fatalf("ParseCIDR(%q) = %s, which Validate refuses: %v", s, p, err)
		}
		r := DefaultDHCPRange(p)
		if gw := Gateway(p); !p.Contains(gw) || gw == p.Addr() || !gw.Less(r[0]) {
			t.Fatalf("%s: gateway %s misplaced against range %s", p, gw, rangeString(r))
		}
		spec.DHCPRange = r
		if err := spec.Validate(); err != nil {
			t.Fatalf("%s: default range %s refused: %v", p, rangeString(r), err)
		}
		if _, err := Build(spec); err != nil {
			t.Fatalf("Build(%+v): %v", spec, err)
		}
		if a, err := HostAddress(p, 2); err != nil || !p.Contains(a) || !a.Less(r[0]) {
			t.Fatalf("%s: HostAddress 2 = %s, %v: want inside, below the DHCP range", p, a, err)
		}
	})
}

// FuzzParseDHCPRange: a parsed range is ordered IPv4, and Validate either
// accepts it inside the subnet or refuses it with a FieldError on --dhcp-range.
func FuzzParseDHCPRange(f *testing.F) {
	for _, s := range []string{"198.51.100.128-198.51.100.254", "198.51.100.1-198.51.100.2", "1-2", "-", "198.51.100.9-198.51.100.8", "::1-::2"} {
		f.Add(s)
	}
	cidr := netip.MustParsePrefix("198.51.100.0/24")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseDHCPRange(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseDHCPRange(%q) = %v, not a FieldError", s, err)
			}
			return
		}
		if !r[0].Is4() || !r[1].Is4() || r[1].Less(r[0]) {
			t.Fatalf("ParseDHCPRange(%q) = %s", s, rangeString(r))
		}
		err = Spec{Name: "f", Mode: ModeNAT, CIDR: cidr, DHCPRange: r}.Validate()
		inside := cidr.Contains(r[0]) && cidr.Contains(r[1]) && Gateway(cidr).Less(r[0]) && r[1].Less(broadcast(cidr))
		var fe *FieldError
		switch {
		case inside && err != nil:
			t.Fatalf("range %s inside %s refused: %v", rangeString(r), cidr, err)
		case !inside && (!errors.As(err, &fe) || fe.Field != "--dhcp-range"):
			t.Fatalf("range %s outside the guest addresses of %s: Validate = %v", rangeString(r), cidr, err)
		}
	})
}

// FuzzParseMode: --mode accepts exactly the three modes, spelled as they
// are, and refuses anything else with a FieldError on --mode that lists them.
func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"nat", "isolated", "bridge", "NAT", "nat ", "route", "open", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		known := s == "nat" || s == "isolated" || s == "bridge"
		if err == nil {
			if !known || string(m) != s {
				t.Fatalf("ParseMode(%q) = %q, accepted", s, m)
			}
			return
		}
		var fe *FieldError
		if known || !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != "--mode" || !strings.Contains(fe.Fix, "isolated") {
			t.Fatalf("ParseMode(%q): %v (%#v)", s, err, fe)
		}
	})
}

// FuzzValidateName: a network name is also part of a bridge name and of
// file names under /etc/libvirt. Accepted are exactly the documented names
// (1 to 64 letters, digits, '-', '_' and '.', starting with a letter or
// digit), and each one's bridge is a valid interface name of vmnet's.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"nat0", "default", "lab.net_1-a", "n", "-a", "_a", "a b", "a/b", "..", "", strings.Repeat("n", 64), strings.Repeat("n", 65), "nät", "abcdefghijk"} {
		f.Add(s)
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName(s)
		want := len(s) >= 1 && len(s) <= 64 && alnum(s[0])
		for i := 1; want && i < len(s); i++ {
			want = alnum(s[i]) || strings.IndexByte("-_.", s[i]) >= 0
		}
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v; the documented rule says valid=%v", s, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ValidateName(%q): %v is not ErrInvalid", s, err)
			}
			return
		}
		br := BridgeName(s)
		if err := bridge.ValidateName("bridge", br); err != nil || !strings.HasPrefix(br, "vmnet-") {
			t.Fatalf("network %q gets bridge %q: %v", s, br, err)
		}
	})
}
