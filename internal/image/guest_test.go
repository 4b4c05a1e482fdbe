package image

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGuestArgs(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		hostname string
		static   []StaticNIC
		want     string
		field    string
	}{
		{"nothing", "", nil, "", ""},
		{"hostname only", "web1", nil, "vmnet.hostname=web1", ""},
		{"sorted by index", "db.lab", []StaticNIC{
			{Index: 1, Address: p("198.51.100.5/24")},
			{Index: 0, Address: p("192.0.2.10/24"), Gateway: a("192.0.2.1"), DNS: a("192.0.2.53")},
		}, "vmnet.hostname=db.lab vmnet.ip.0=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53 vmnet.ip.1=198.51.100.5/24", ""},
		{"point to point /31", "", []StaticNIC{{Index: 0, Address: p("192.0.2.0/31")}}, "vmnet.ip.0=192.0.2.0/31", ""},
		{"bad hostname", "web_1", nil, "", "hostname"},
		{"hostname with space", "a b", nil, "", "hostname"},
		{"ipv6", "", []StaticNIC{{Index: 0, Address: p("2001:db8::1/64")}}, "", "vmnet.ip.0"},
		{"no prefix", "", []StaticNIC{{Index: 2}}, "", "vmnet.ip.2"},
		{"network address", "", []StaticNIC{{Index: 0, Address: p("192.0.2.0/24")}}, "", "vmnet.ip.0"},
		{"broadcast", "", []StaticNIC{{Index: 0, Address: p("192.0.2.255/24")}}, "", "vmnet.ip.0"},
		{"gateway elsewhere", "", []StaticNIC{{Index: 0, Address: p("192.0.2.10/24"), Gateway: a("198.51.100.1")}}, "", "vmnet.ip.0"},
		{"gateway is itself", "", []StaticNIC{{Index: 0, Address: p("192.0.2.10/24"), Gateway: a("192.0.2.10")}}, "", "vmnet.ip.0"},
		{"same NIC twice", "", []StaticNIC{{Index: 0, Address: p("192.0.2.10/24")}, {Index: 0, Address: p("192.0.2.11/24")}}, "", "vmnet.ip.0"},
		{"negative index", "", []StaticNIC{{Index: -1, Address: p("192.0.2.10/24")}}, "", "vmnet.ip.-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := GuestArgs(tt.hostname, tt.static)
			if tt.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field || fe.Hint() == "" || !errors.Is(err, ErrInvalid) {
					t.Fatalf("GuestArgs = %q, %v; want a FieldError for %s", got, err, tt.field)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("GuestArgs = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseReady(t *testing.T) {
	r, err := ParseReady("[   12.3] VMNET-READY hostname=tiny eth0=192.0.2.10/24 eth1=198.51.100.57/24 eth2=failed:no-dhcp-lease\r")
	if err != nil {
		t.Fatal(err)
	}
	want := Ready{Hostname: "tiny", NICs: []NICStatus{
		{Name: "eth0", Address: netip.MustParsePrefix("192.0.2.10/24")},
		{Name: "eth1", Address: netip.MustParsePrefix("198.51.100.57/24")},
		{Name: "eth2", Error: "no-dhcp-lease"},
	}}
	if diff := cmp.Diff(want, r, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n, ok := r.NIC("eth2"); !ok || n.OK() {
		t.Errorf("eth2 = %+v, %v", n, ok)
	}
	if n, ok := r.NIC("eth0"); !ok || !n.OK() {
		t.Errorf("eth0 = %+v, %v", n, ok)
	}
	if r, err := ParseReady("VMNET-READY hostname=lonely"); err != nil || len(r.NICs) != 0 {
		t.Errorf("no NICs: %+v, %v", r, err)
	}
	for _, bad := range []string{"VMNET-READYX", "hello", "VMNET-READY eth0", "VMNET-READY eth0=10.0.0.1"} {
		if _, err := ParseReady(bad); err == nil {
			t.Errorf("ParseReady(%q) accepted", bad)
		}
	}
	if _, err := ParseReady("login:"); !errors.Is(err, ErrNotReadyLine) {
		t.Errorf("a console line: %v", err)
	}
}

func TestParseNIC(t *testing.T) {
	tests := []struct {
		line string
		want NICStatus
	}{
		{"VMNET-NIC eth0 mac=52:54:00:00:00:0a via=static addr=192.0.2.10/24",
			NICStatus{Name: "eth0", MAC: "52:54:00:00:00:0a", Via: "static", Address: netip.MustParsePrefix("192.0.2.10/24")}},
		{"VMNET-NIC eth2 mac=52:54:00:00:00:0c via=dhcp addr=- error=no-dhcp-lease",
			NICStatus{Name: "eth2", MAC: "52:54:00:00:00:0c", Via: "dhcp", Error: "no-dhcp-lease"}},
		{"VMNET-NIC eth5 mac=- via=static addr=- error=no-such-nic",
			NICStatus{Name: "eth5", MAC: "-", Via: "static", Error: "no-such-nic"}},
	}
	for _, tt := range tests {
		got, err := ParseNIC(tt.line)
		if err != nil || got != tt.want {
			t.Errorf("ParseNIC(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
	if _, err := ParseNIC("VMNET-NIC eth0 addr=300.1.1.1/24"); err == nil {
		t.Error("a bad address was accepted")
	}
}

// The guest's own script writes these lines: whatever GuestArgs accepts, the
// ready line for it must parse back to the same address.
func FuzzParseReady(f *testing.F) {
	f.Add("VMNET-READY hostname=tiny eth0=192.0.2.10/24 eth1=failed:no-dhcp-lease")
	f.Add("VMNET-READY")
	f.Add("xx VMNET-READY hostname= eth0=")
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseReady(line)
		if err != nil {
			return
		}
		for _, n := range r.NICs {
			if n.Error == "" && !n.Address.IsValid() {
				t.Fatalf("NIC %s: neither an address nor an error in %q", n.Name, line)
			}
		}
		_ = strings.TrimSpace(line)
	})
}

func FuzzGuestArgs(f *testing.F) {
	f.Add("web1", "192.0.2.10/24", "192.0.2.1")
	f.Add("a_b", "10.0.0.0/8", "")
	f.Fuzz(func(t *testing.T, hostname, addr, gw string) {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return
		}
		g, _ := netip.ParseAddr(gw)
		args, err := GuestArgs(hostname, []StaticNIC{{Index: 0, Address: p, Gateway: g}})
		if err != nil {
			return
		}
		// Every word must survive the kernel's split of the command line.
		for _, w := range strings.Fields(args) {
			if !strings.HasPrefix(w, "vmnet.") || strings.ContainsAny(w, "\"'\\") {
				t.Fatalf("word %q in %q", w, args)
			}
		}
		if strings.Count(args, " ")+1 != len(strings.Fields(args)) {
			t.Fatalf("%q splits into other words", args)
		}
	})
}
