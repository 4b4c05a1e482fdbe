package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	for _, s := range []string{"nat", "isolated", "bridge"} {
		if m, err := ParseMode(s); err != nil || string(m) != s {
			t.Errorf("ParseMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "NAT", "route", "open"} {
		if _, err := ParseMode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseMode(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestParseCIDR(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		problem string // substring of the error; "" for success
	}{
		{"198.51.100.0/24", "198.51.100.0/24", ""},
		{" 10.20.0.0/16 ", "10.20.0.0/16", ""},
		{"192.0.2.8/29", "192.0.2.8/29", ""},
		{"198.51.100.1/24", "", "host bits set"},
		{"198.51.100.0", "", "no prefix length"},
		{"nonsense", "", "not a subnet"},
		{"198.51.100.0/30", "", "prefix length /30"},
		{"10.0.0.0/7", "", "prefix length /7"},
		{"2001:db8::/64", "", "IPv6"},
		{"::ffff:198.51.100.0/120", "", "IPv4-mapped"},
		{"127.0.0.0/8", "", "reserved"},
		{"169.254.0.0/16", "", "reserved"},
		{"224.0.0.0/24", "", "reserved"},
		{"240.0.0.0/24", "", "reserved"},
		{"0.0.0.0/8", "", "reserved"},
	}
	for _, tt := range tests {
		got, err := ParseCIDR(tt.in)
		if tt.problem == "" {
			if err != nil || got.String() != tt.want {
				t.Errorf("ParseCIDR(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "--cidr" || !strings.Contains(fe.Problem, tt.problem) || fe.Hint() == "" {
			t.Errorf("ParseCIDR(%q) error = %v, want a --cidr FieldError about %q with a hint", tt.in, err, tt.problem)
		}
	}
}

func TestParseDHCPRange(t *testing.T) {
	tests := []struct {
		in      string
		problem string
	}{
		{"198.51.100.128-198.51.100.254", ""},
		{"198.51.100.10 - 198.51.100.10", ""},
		{"198.51.100.10", "not a range"},
		{"a-b", "two IP addresses"},
		{"2001:db8::1-2001:db8::2", "IPv4"},
		{"198.51.100.20-198.51.100.10", "ends before"},
	}
	for _, tt := range tests {
		r, err := ParseDHCPRange(tt.in)
		if tt.problem == "" {
			if err != nil || r[1].Less(r[0]) {
				t.Errorf("ParseDHCPRange(%q) = %v, %v", tt.in, r, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "--dhcp-range" || !strings.Contains(fe.Problem, tt.problem) {
			t.Errorf("ParseDHCPRange(%q) error = %v, want a --dhcp-range FieldError about %q", tt.in, err, tt.problem)
		}
	}
}

func rng(a, b string) [2]netip.Addr {
	return [2]netip.Addr{netip.MustParseAddr(a), netip.MustParseAddr(b)}
}

func TestValidate(t *testing.T) {
	cidr := netip.MustParsePrefix("198.51.100.0/24")
	tests := []struct {
		name    string
		spec    Spec
		field   string // "" for valid
		problem string
	}{
		{"nat", Spec{Name: "nat0", Mode: ModeNAT, CIDR: cidr}, "", ""},
		{"isolated with range", Spec{Name: "lab", Mode: ModeIsolated, CIDR: cidr, DHCPRange: rng("198.51.100.2", "198.51.100.254")}, "", ""},
		{"bridge", Spec{Name: "br0net", Mode: ModeBridge, Bridge: "br0"}, "", ""},
		{"empty name", Spec{Mode: ModeNAT, CIDR: cidr}, "network name", "is empty"},
		{"bad name", Spec{Name: "a/b", Mode: ModeNAT, CIDR: cidr}, "network name", "contains '/'"},
		{"name starts with dash", Spec{Name: "-x", Mode: ModeNAT, CIDR: cidr}, "network name", "starts with"},
		{"long name", Spec{Name: strings.Repeat("n", 65), Mode: ModeNAT, CIDR: cidr}, "network name", "65 bytes"},
		{"no mode", Spec{Name: "x", CIDR: cidr}, "--mode", "not a network mode"},
		{"nat without cidr", Spec{Name: "x", Mode: ModeNAT}, "--cidr", "required with --mode nat"},
		{"isolated without cidr", Spec{Name: "x", Mode: ModeIsolated}, "--cidr", "required with --mode isolated"},
		{"host bits", Spec{Name: "x", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.1/24")}, "--cidr", "host bits"},
		{"nat with bridge", Spec{Name: "x", Mode: ModeNAT, CIDR: cidr, Bridge: "br0"}, "--bridge", "only to --mode bridge"},
		{"bridge without bridge", Spec{Name: "x", Mode: ModeBridge}, "--bridge", "required"},
		{"bridge bad name", Spec{Name: "x", Mode: ModeBridge, Bridge: "a-very-long-bridge-name"}, "--bridge", "bytes long"},
		{"bridge with cidr", Spec{Name: "x", Mode: ModeBridge, Bridge: "br0", CIDR: cidr}, "--cidr", "does not apply"},
		{"bridge with range", Spec{Name: "x", Mode: ModeBridge, Bridge: "br0", DHCPRange: rng("198.51.100.2", "198.51.100.3")}, "--dhcp-range", "does not apply"},
		{"range outside", Spec{Name: "x", Mode: ModeNAT, CIDR: cidr, DHCPRange: rng("198.51.100.100", "198.51.101.10")}, "--dhcp-range", "not inside"},
		{"range reversed", Spec{Name: "x", Mode: ModeNAT, CIDR: cidr, DHCPRange: rng("198.51.100.100", "198.51.100.10")}, "--dhcp-range", "ends before"},
		{"range at network", Spec{Name: "x", Mode: ModeNAT, CIDR: cidr, DHCPRange: rng("198.51.100.0", "198.51.100.10")}, "--dhcp-range", "network address"},
		{"range at broadcast", Spec{Name: "x", Mode: ModeNAT, CIDR: cidr, DHCPRange: rng("198.51.100.10", "198.51.100.255")}, "--dhcp-range", "broadcast"},
		{"range with gateway", Spec{Name: "x", Mode: ModeNAT, CIDR: cidr, DHCPRange: rng("198.51.100.1", "198.51.100.10")}, "--dhcp-range", "gateway"},
		{"range half set", Spec{Name: "x", Mode: ModeNAT, CIDR: cidr, DHCPRange: [2]netip.Addr{netip.MustParseAddr("198.51.100.10")}}, "--dhcp-range", "IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want a FieldError", err)
			}
			if fe.Field != tt.field || !strings.Contains(fe.Error(), tt.problem) || fe.Hint() == "" {
				t.Fatalf("Validate() = %q (field %q, hint %q), want field %q mentioning %q", fe, fe.Field, fe.Hint(), tt.field, tt.problem)
			}
		})
	}
}

func TestDefaultDHCPRange(t *testing.T) {
	tests := []struct{ cidr, start, end string }{
		{"198.51.100.0/24", "198.51.100.128", "198.51.100.254"},
		{"10.0.0.0/16", "10.0.128.0", "10.0.255.254"},
		{"192.0.2.8/29", "192.0.2.12", "192.0.2.14"},
		{"10.0.0.0/8", "10.128.0.0", "10.255.255.254"},
	}
	for _, tt := range tests {
		r := DefaultDHCPRange(netip.MustParsePrefix(tt.cidr))
		if r[0].String() != tt.start || r[1].String() != tt.end {
			t.Errorf("DefaultDHCPRange(%s) = %s, want %s-%s", tt.cidr, rangeString(r), tt.start, tt.end)
		}
		s := Spec{Name: "x", Mode: ModeNAT, CIDR: netip.MustParsePrefix(tt.cidr), DHCPRange: r}
		if err := s.Validate(); err != nil {
			t.Errorf("the default range of %s does not validate: %v", tt.cidr, err)
		}
	}
}

func TestHostAddress(t *testing.T) {
	p := netip.MustParsePrefix("198.51.100.0/24")
	tests := []struct {
		prefix  netip.Prefix
		index   int
		want    string // "" for an error
		inRange bool   // inside the default DHCP range
	}{
		{p, 1, "198.51.100.1", false},
		{p, 2, "198.51.100.2", false},
		{p, 127, "198.51.100.127", false},
		{p, 128, "198.51.100.128", true},
		{p, 254, "198.51.100.254", true},
		{p, 255, "", false},
		{p, 0, "", false},
		{p, -1, "", false},
		{netip.MustParsePrefix("10.1.0.0/16"), 300, "10.1.1.44", false},
		{netip.MustParsePrefix("2001:db8::/64"), 5, "2001:db8::5", false},
		{netip.Prefix{}, 1, "", false},
	}
	for _, tt := range tests {
		got, err := HostAddress(tt.prefix, tt.index)
		if tt.want == "" {
			if err == nil {
				t.Errorf("HostAddress(%s, %d) = %s, want an error", tt.prefix, tt.index, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("HostAddress(%s, %d) = %s, %v; want %s", tt.prefix, tt.index, got, err, tt.want)
		}
		if tt.prefix.Addr().Is4() {
			r := DefaultDHCPRange(tt.prefix)
			in := r[0].Compare(got) <= 0 && got.Compare(r[1]) <= 0
			if in != tt.inRange {
				t.Errorf("HostAddress(%s, %d) = %s: in default DHCP range %v, want %v", tt.prefix, tt.index, got, in, tt.inRange)
			}
		}
	}
}

func TestBridgeName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"nat0", "vmnet-nat0"},
		{"abcdefghi", "vmnet-abcdefghi"}, // exactly 15 bytes
		{"abcdefghij", "vmnet-abcd-"},    // prefix checked below; hash follows
		{"lab-network-a", "vmnet-lab--"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := BridgeName(tt.name)
		if len(got) > 15 {
			t.Errorf("BridgeName(%q) = %q: %d bytes, more than an interface name holds", tt.name, got, len(got))
		}
		if len(tt.name) <= 9 && got != tt.want || len(tt.name) > 9 && (!strings.HasPrefix(got, tt.want) || len(got) != 15) {
			t.Errorf("BridgeName(%q) = %q, want %q…", tt.name, got, tt.want)
		}
		if BridgeName(tt.name) != got {
			t.Errorf("BridgeName(%q) is not stable", tt.name)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("BridgeName(%q) = BridgeName(%q) = %q", tt.name, other, got)
		}
		seen[got] = tt.name
	}
	if a, b := BridgeName("lab-network-a"), BridgeName("lab-network-b"); a == b {
		t.Errorf("two long names that share a beginning get the same bridge %q", a)
	}
}
