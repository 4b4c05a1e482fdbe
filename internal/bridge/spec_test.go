package bridge

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"vmnet/internal/ownership"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name, wantErr string
	}{
		{"br0", ""},
		{"a", ""},
		{"br-lab_1.10", ""},
		{"123456789012345", ""},
		{"1234567890123456", "is 16 bytes long; Linux allows at most 15"},
		{"", "is empty"},
		{"br 0", `contains ' '`},
		{"br/0", `contains '/'`},
		{"br:0", `contains ':'`},
		{"..", "starts with '.'"},
		{"-br", "starts with '-'"},
		{"brü", `contains 'ü'`},
	} {
		err := ValidateName("bridge name", tc.name)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ValidateName(%q) = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) error is not ErrInvalid", tc.name)
		}
	}
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{"192.0.2.1/24", "192.0.2.1/24", ""},
		{"2001:db8::1/64", "2001:db8::1/64", ""},
		{"10.0.0.1/31", "10.0.0.1/31", ""},
		{"10.0.0.0/31", "10.0.0.0/31", ""},
		{"198.51.100.7/32", "198.51.100.7/32", ""},
		{"192.0.2.1", "", "has no prefix length"},
		{"2001:db8::1", "", "2001:db8::1/64"},
		{"192.0.2.0/24", "", "network address"},
		{"192.0.2.255/24", "", "broadcast address"},
		{"192.0.2.1/33", "", "not an address in CIDR form"},
		{"300.0.2.1/24", "", "not an address in CIDR form"},
		{"banana", "", "not an address in CIDR form"},
		{"0.0.0.0/0", "", "unspecified"},
		{"224.0.0.1/24", "", "multicast"},
		{"127.0.0.2/8", "", "loopback"},
		{"fe80::1/64", "", "link-local"},
		{"::ffff:192.0.2.1/120", "", "IPv4-mapped"},
	} {
		got, err := ParseAddress(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error()+" "+hintOf(err), tc.wantErr) {
				t.Errorf("ParseAddress(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), `--address "`+tc.in+`"`) {
				t.Errorf("ParseAddress(%q) error %q does not name the field and value", tc.in, err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func hintOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Hint()
	}
	return ""
}

func TestParseMAC(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"52:54:00:12:34:56", ""},
		{"02-00-00-00-00-01", ""},
		{"01:00:5e:00:00:01", "multicast"},
		{"00:00:00:00:00:00", "all zeros"},
		{"52:54:00:12:34", "not a MAC"},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "has 20 bytes"},
		{"zz:54:00:12:34:56", "not a MAC"},
	} {
		_, err := ParseMAC(tc.in)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParseMAC(%q) = %v, want error %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{"ok", Spec{Name: "br0", Addresses: []netip.Prefix{p("192.0.2.1/24"), p("2001:db8::1/64")}, MTU: 9000}, ""},
		{"long name", Spec{Name: "averyverylongname"}, "bridge name"},
		{"mtu low", Spec{Name: "br0", MTU: 67}, "--mtu \"67\": is outside 68-65535"},
		{"mtu high", Spec{Name: "br0", MTU: 70000}, "--mtu"},
		{"mtu v6", Spec{Name: "br0", MTU: 1000, Addresses: []netip.Prefix{p("2001:db8::1/64")}}, "IPv6 minimum"},
		{"dup", Spec{Name: "br0", Addresses: []netip.Prefix{p("192.0.2.1/24"), p("192.0.2.1/24")}}, "given twice"},
		{"mixed prefix", Spec{Name: "br0", Addresses: []netip.Prefix{p("192.0.2.1/24"), p("192.0.2.2/25")}}, "different prefix length"},
		{"uplink self", Spec{Name: "br0", Uplink: "br0"}, "is the bridge itself"},
		{"uplink mac", Spec{Name: "br0", Uplink: "eth0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}, "cannot be combined with --uplink"},
		{"uplink name", Spec{Name: "br0", Uplink: "eth 0"}, "--uplink"},
	} {
		err := tc.spec.Validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: Validate() = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestStableMAC(t *testing.T) {
	a := StableMAC("host-a", "br0")
	if a.String() != StableMAC("host-a", "br0").String() {
		t.Fatal("StableMAC is not stable")
	}
	if a.String() == StableMAC("host-b", "br0").String() || a.String() == StableMAC("host-a", "br1").String() {
		t.Fatal("StableMAC does not depend on host and name")
	}
	if a[0]&1 != 0 || a[0]&2 == 0 {
		t.Fatalf("StableMAC %s is not a locally administered unicast address", a)
	}
}

func TestAlias(t *testing.T) {
	for _, tc := range []struct {
		alias       string
		managed     bool
		uplink, lab string
	}{
		{alias("", ""), true, "", ""},
		{alias("eth0", ""), true, "eth0", ""},
		{alias("", "office"), true, "", "office"},
		{alias("eth0", "office"), true, "eth0", "office"},
		{"vmnet-managed lab=office uplink=eth0", true, "eth0", "office"}, // order-independent
		{"vmnet-managed  lab=office\tfuture=1 ", true, "", "office"},     // unknown tags skipped
		{"vmnet-managed", true, "", ""},                                  // every bridge before labs
		{"vmnet-managed uplink=eth1", true, "eth1", ""},
		{"", false, "", ""},
		{"vmnet-managedX", false, "", ""},
		{"someone else's bridge", false, "", ""},
		{"mine lab=office uplink=eth0", false, "", ""},
	} {
		m, u, l := parseAlias(tc.alias)
		if m != tc.managed || u != tc.uplink || l != tc.lab {
			t.Errorf("parseAlias(%q) = %v, %q, %q; want %v, %q, %q", tc.alias, m, u, l, tc.managed, tc.uplink, tc.lab)
		}
	}
	if got := alias("eth0", "office"); got != "vmnet-managed uplink=eth0 lab=office" {
		t.Errorf("alias = %q", got)
	}
}

func TestPlanDescribesConvergence(t *testing.T) {
	p := netip.MustParsePrefix
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	cur := &State{Name: "br0", MAC: mac, MTU: 1500, Up: true, Managed: true, alias: alias("", ""), Addresses: []netip.Prefix{p("192.0.2.1/24")}}
	same := desired{mac: mac, mtu: 1500, addresses: []netip.Prefix{p("192.0.2.1/24")}}
	if cs := plan(nil, "br0", cur, same); len(cs) != 0 {
		t.Fatalf("plan for an identical bridge = %v, want nothing", whats(cs))
	}
	diff := desired{mac: mac, mtu: 9000, stp: true, addresses: []netip.Prefix{p("198.51.100.1/24")}}
	got := strings.Join(whats(plan(nil, "br0", cur, diff)), "; ")
	want := "set MTU 1500 → 9000; turn STP on; remove address 192.0.2.1/24; add address 198.51.100.1/24"
	if got != want {
		t.Fatalf("plan = %q\nwant %q", got, want)
	}
	diff.additive = true
	got = strings.Join(whats(plan(nil, "br0", cur, diff)), "; ")
	if strings.Contains(got, "remove address") {
		t.Fatalf("plan with an uplink removes addresses: %q", got)
	}
	got = strings.Join(whats(plan(nil, "br0", nil, same)), "; ")
	if want := "create bridge br0 (MAC 02:00:00:00:00:01); add address 192.0.2.1/24; bring br0 up"; got != want {
		t.Fatalf("plan for a new bridge = %q\nwant %q", got, want)
	}
}

func whats(cs []change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.what)
	}
	return out
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"192.0.2.1/24", "2001:db8::1/64", "1.2.3.4", "::/0", "fe80::1%eth0/64", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseAddress(%q) error %v is not ErrInvalid", s, err)
			}
			return
		}
		// What is accepted must survive a round trip and validation.
		if q, err := ParseAddress(p.String()); err != nil || q != p {
			t.Fatalf("round trip of %q: %v, %v", s, q, err)
		}
		if err := (Spec{Name: "br0", Addresses: []netip.Prefix{p}}).Validate(); err != nil {
			t.Fatalf("accepted %q but Validate refuses: %v", s, err)
		}
	})
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"52:54:00:12:34:56", "0000.5e00.5301", "ff:ff:ff:ff:ff:ff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mac, err := ParseMAC(s)
		if err != nil {
			return
		}
		if len(mac) != 6 || mac[0]&1 != 0 {
			t.Fatalf("ParseMAC(%q) accepted %s", s, mac)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"br0", "1234567890123456", "a b", "..", "é"} {
		f.Add(s)
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName("name", s)
		// The documented rule: 1 to 15 bytes (IFNAMSIZ - 1) of letters,
		// digits, '-', '_' and '.', starting with a letter or digit; so
		// never '/', ':', whitespace or NUL, which the kernel refuses.
		want := len(s) >= 1 && len(s) <= 15 && alnum(s[0])
		for i := 1; want && i < len(s); i++ {
			want = alnum(s[i]) || strings.IndexByte("-_.", s[i]) >= 0
		}
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v; the documented rule says valid=%v", s, err, want)
		}
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "name" || fe.Value != s || fe.Fix == "") {
			t.Fatalf("ValidateName(%q): %v does not name the field, the value and the fix", s, err)
		}
	})
}

// FuzzParseProbe: --probe takes one unicast address; what it accepts
// comes back the same from its own String, and a refusal is a FieldError on
// --probe.
func FuzzParseProbe(f *testing.F) {
	for _, s := range []string{"192.0.2.254", "2001:db8::1", "fe80::1%eth0", "::ffff:192.0.2.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "192.0.2.1/24", "gateway", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseProbe(s)
		if err != nil {
			var fe *FieldError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != "--probe" || fe.Value != s {
				t.Fatalf("ParseProbe(%q): %v is not a FieldError on --probe", s, err)
			}
			return
		}
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			t.Fatalf("ParseProbe(%q) accepted %v", s, a)
		}
		if b, err := ParseProbe(a.String()); err != nil || b != a {
			t.Fatalf("ParseProbe(%q) = %v, but %q gives %v, %v", s, a, a.String(), b, err)
		}
	})
}

func FuzzParseAlias(f *testing.F) {
	f.Add(alias("eth0", ""))
	f.Add(alias("eth0", "office"))
	f.Add("vmnet-managed uplink=")
	f.Add("vmnet-managed lab=a lab=b")
	f.Fuzz(func(t *testing.T, s string) {
		managed, uplink, lab := parseAlias(s)
		if !managed && (uplink != "" || lab != "") {
			t.Fatalf("parseAlias(%q) found an uplink or a lab on a foreign alias", s)
		}
		if managed && ownership.CheckLab("lab", lab) == nil && ValidateName("uplink", uplink) == nil {
			// What alias writes, parseAlias reads back.
			if m, u, l := parseAlias(alias(uplink, lab)); !m || u != uplink || l != lab {
				t.Fatalf("alias(%q, %q) reads back as %v, %q, %q", uplink, lab, m, u, l)
			}
		}
	})
}

func TestIfupdownConflict(t *testing.T) {
	root := t.TempDir()
	if got := ifupdownConflict(root, "eth0"); got != "" {
		t.Fatalf("no interfaces file: %q", got)
	}
	dir := root + "/etc/network"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/interfaces", []byte("auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ifupdownConflict(root, "eth0"); !strings.Contains(got, `"iface eth0 inet dhcp"`) {
		t.Fatalf("conflict not reported: %q", got)
	}
	if got := ifupdownConflict(root, "eth1"); got != "" {
		t.Fatalf("eth1 reported: %q", got)
	}
}
