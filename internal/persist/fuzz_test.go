package persist

import (
	"net"
	"net/netip"
	"path"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParseHeader: the header parser reads the first line of any file in the
// backends' directories, most of them not vmnet's.
func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(header("br0") + "[Match]\n"))
	f.Add([]byte("# vmnet-managed: bridge=br-lab\r\n"))
	f.Add([]byte("# vmnet-managed: bridge= x\n"))
	f.Add([]byte("[connection]\n# vmnet-managed: bridge=br0\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		name, ok := parseHeader(content)
		if !ok {
			if name != "" {
				t.Fatalf("parseHeader returned %q with ok=false", name)
			}
			return
		}
		if err := checkIfName(name); err != nil {
			t.Fatalf("parseHeader accepted a bad name: %v", err)
		}
		if got, ok := parseHeader([]byte(header(name))); !ok || got != name {
			t.Fatalf("header(%q) parses as %q, %v", name, got, ok)
		}
	})
}

// FuzzParseInterfaces: Detect parses the host's /etc/network/interfaces and
// whatever it sources.
func FuzzParseInterfaces(f *testing.F) {
	f.Add([]byte("source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n"))
	f.Add([]byte("iface \\\n eth0 inet dhcp\\"))
	f.Add([]byte("source-directory\n\tsource-dir x\r\n#iface eth1"))
	f.Fuzz(func(t *testing.T, content []byte) {
		ifaces, sources := parseInterfaces(content)
		for _, name := range ifaces {
			if name == "" || strings.ContainsAny(name, " \t\r\n") {
				t.Fatalf("bad interface name %q", name)
			}
		}
		for _, s := range sources {
			if s.pattern == "" || strings.ContainsAny(s.pattern, " \t\r\n") {
				t.Fatalf("bad source pattern %q", s.pattern)
			}
		}
	})
}

// FuzzParseBackend: the --persist flag value.
func FuzzParseBackend(f *testing.F) {
	for _, b := range Backends() {
		f.Add(string(b))
	}
	f.Add("NetworkManager")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBackend(s)
		if err != nil {
			return
		}
		if again, err := ParseBackend(string(b)); err != nil || again != b {
			t.Fatalf("ParseBackend(%q) = %q does not round-trip: %q, %v", s, b, again, err)
		}
	})
}

// FuzzRender: names, addresses and MTU come from users' specs and the host.
// Whatever Render accepts must be vmnet's, stay in the backends'
// directories, and keep each format's structure (no injected lines).
func FuzzRender(f *testing.F) {
	f.Add("br0", "eth0", []byte{0x52, 0x54, 0, 0x11, 0x22, 0x33}, "192.0.2.1/24", "2001:db8::1/64", "192.0.2.254", "fe80::1", 1500, true, false, true)
	f.Add("br\nx", "", []byte{1, 2, 3, 4, 5, 6}, "", "", "", "", 0, false, true, false)
	f.Fuzz(func(t *testing.T, name, uplink string, mac []byte, a4, a6, gw4, gw6 string, mtu int, dhcp, stp, vlan bool) {
		br := Bridge{Name: name, Uplink: uplink, MAC: net.HardwareAddr(mac), DHCP4: dhcp, MTU: mtu, STP: stp, VLANFiltering: vlan}
		for _, s := range []string{a4, a6} {
			if p, err := netip.ParsePrefix(s); err == nil {
				br.Addresses = append(br.Addresses, p)
			}
		}
		br.Gateway4, _ = netip.ParseAddr(gw4)
		br.Gateway6, _ = netip.ParseAddr(gw6)
		for _, b := range renderBackends() {
			files, err := Render(b, br)
			if err != nil {
				continue
			}
			if err := Check(t.TempDir(), name, files); err != nil {
				t.Fatalf("%s: rendered files fail Check: %v", b, err)
			}
			for _, f := range files {
				if got, ok := parseHeader(f.Content); !ok || got != name {
					t.Fatalf("%s: %s lacks the header for %q", b, f.Path, name)
				}
				if dir, _ := backendOfDir(path.Dir(f.Path)); dir != b {
					t.Fatalf("%s: %s is outside the backend's directory", b, f.Path)
				}
				checkStructure(t, b, f)
			}
		}
	})
}

// checkStructure verifies that every line of a rendered file is one the
// renderer means to write, so no input can smuggle in a key or stanza.
func checkStructure(t *testing.T, b Backend, f File) {
	t.Helper()
	body := string(f.Content)
	switch b {
	case Netplan:
		var doc npFile
		if err := yaml.Unmarshal(f.Content, &doc); err != nil || doc.Network.Version != 2 || len(doc.Network.Bridges) != 1 {
			t.Fatalf("%s: not the netplan document vmnet writes: %v\n%s", f.Path, err, body)
		}
	case Ifupdown:
		for line := range strings.Lines(body) {
			ok := strings.HasPrefix(line, "# vmnet-managed: ") || strings.HasPrefix(line, "auto ") ||
				strings.HasPrefix(line, "iface ") || strings.HasPrefix(line, "    ") || line == "\n"
			if !ok || strings.Count(line, "\n") != 1 {
				t.Fatalf("%s: unexpected line %q", f.Path, line)
			}
		}
	default:
		for _, s := range parseINI(body) {
			for _, kv := range s.keys {
				if kv[0] == "" || strings.ContainsAny(kv[1], "\r\n[]") {
					t.Fatalf("%s: suspicious key %q=%q", f.Path, kv[0], kv[1])
				}
			}
		}
		for line := range strings.Lines(body) {
			if line != "\n" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "[") && !strings.Contains(line, "=") {
				t.Fatalf("%s: unexpected line %q", f.Path, line)
			}
		}
	}
}

// FuzzCheckIfName: the names that go into file names and backend syntax
// are exactly the documented portable subset: 1 to 15 letters, digits and
// '-', '_', '.' (not first), never "." or ".."; so an accepted name is one
// path element and needs no quoting in any backend.
func FuzzCheckIfName(f *testing.F) {
	for _, s := range []string{"eth0", "enp3s0", "br-lab", "vlan.10", "br_0", "-x", ".x", ".", "..", "a/b", "a b", "a\"b", "", "abcdefghijklmnop", "abcdefghijklmno", "bré"} {
		f.Add(s)
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	f.Fuzz(func(t *testing.T, s string) {
		err := checkIfName(s)
		want := len(s) >= 1 && len(s) <= 15 && alnum(s[0])
		for i := 1; want && i < len(s); i++ {
			want = alnum(s[i]) || strings.IndexByte("-_.", s[i]) >= 0
		}
		if (err == nil) != want {
			t.Fatalf("checkIfName(%q) = %v; the documented rule says valid=%v", s, err, want)
		}
		if err == nil && (path.Base(s) != s || path.Clean(s) != s || s == "." || s == "..") {
			t.Fatalf("checkIfName accepted %q, which is not one path element", s)
		}
	})
}
