package persist

// Real-consumer checks: each rendered file is fed to the program that reads
// it on a host, here on this machine, offline. None of them touches the
// network: netplan generate and nmcli --offline only read and write files,
// and ifquery only parses. Each test skips, saying why, when its tool is absent.

import (
	"bytes"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// requireTool skips the test when a consumer is not installed.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found (install Debian package %s): skipping the real-consumer check", name, pkg)
	}
	return p
}

func run(t *testing.T, stdin []byte, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// iniSection is one [Section] of a systemd or keyfile INI file; sections
// and keys may repeat ([Route], Address=), so order is kept.
type iniSection struct {
	name string
	keys [][2]string
}

func parseINI(content string) []iniSection {
	var out []iniSection
	for line := range strings.Lines(content) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			out = append(out, iniSection{name: line[1 : len(line)-1]})
		case len(out) > 0:
			k, v, _ := strings.Cut(line, "=")
			out[len(out)-1].keys = append(out[len(out)-1].keys, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return out
}

// get returns every value of section.key, across repeated sections.
func get(ini []iniSection, section, key string) []string {
	var vals []string
	for _, s := range ini {
		if s.name != section {
			continue
		}
		for _, kv := range s.keys {
			if kv[0] == key {
				vals = append(vals, kv[1])
			}
		}
	}
	return vals
}

func get1(ini []iniSection, section, key string) string {
	v := get(ini, section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1] // the last assignment wins, as in systemd
}

func normBool(s string) string {
	switch strings.ToLower(s) {
	case "yes", "true", "1", "on":
		return "true"
	case "no", "false", "0", "off":
		return "false"
	}
	return s
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// ndBridge is what a set of networkd files says about one bridge, in terms
// that do not depend on who wrote them (netplan or vmnet).
type ndBridge struct {
	Name, Kind, MAC, NetdevMTU string
	STP, VLANFiltering         string
	LinkMAC, LinkMTU           string
	DHCP                       string
	Addresses, Gateways        []string
	LinkLocal, AcceptRA        string
	WithoutCarrier             string
	Ports                      []ndPort
}

type ndPort struct {
	Name, Bridge, MTU, DHCP, LinkLocal string
	Addresses                          []string
}

// networkdModel reads .netdev and .network files (name → content) and
// describes the bridge called name.
func networkdModel(t *testing.T, files map[string]string, name string) ndBridge {
	t.Helper()
	m := ndBridge{Name: name}
	var nets int
	for fn, content := range files {
		ini := parseINI(content)
		switch path.Ext(fn) {
		case ".netdev":
			if get1(ini, "NetDev", "Name") != name {
				continue
			}
			m.Kind = get1(ini, "NetDev", "Kind")
			m.MAC = strings.ToLower(get1(ini, "NetDev", "MACAddress"))
			m.NetdevMTU = get1(ini, "NetDev", "MTUBytes")
			m.STP = normBool(get1(ini, "Bridge", "STP"))
			m.VLANFiltering = normBool(get1(ini, "Bridge", "VLANFiltering"))
			if m.VLANFiltering == "" {
				m.VLANFiltering = "false"
			}
		case ".network":
			if get1(ini, "Match", "Name") == name {
				nets++
				m.LinkMAC = strings.ToLower(get1(ini, "Link", "MACAddress"))
				m.LinkMTU = get1(ini, "Link", "MTUBytes")
				m.DHCP = get1(ini, "Network", "DHCP")
				m.Addresses = sorted(get(ini, "Network", "Address"))
				m.LinkLocal = get1(ini, "Network", "LinkLocalAddressing")
				m.AcceptRA = normBool(get1(ini, "Network", "IPv6AcceptRA"))
				m.WithoutCarrier = normBool(get1(ini, "Network", "ConfigureWithoutCarrier"))
				for _, s := range ini {
					if s.name != "Route" {
						continue
					}
					r := []iniSection{s}
					dst := get1(r, "Route", "Destination")
					if dst != "" && dst != "0.0.0.0/0" && dst != "::/0" {
						t.Errorf("%s: unexpected non-default route to %s", fn, dst)
					}
					m.Gateways = append(m.Gateways, get1(r, "Route", "Gateway"))
				}
				m.Gateways = sorted(m.Gateways)
			} else if get1(ini, "Network", "Bridge") == name {
				m.Ports = append(m.Ports, ndPort{
					Name:      get1(ini, "Match", "Name"),
					Bridge:    name,
					MTU:       get1(ini, "Link", "MTUBytes"),
					DHCP:      get1(ini, "Network", "DHCP"),
					LinkLocal: get1(ini, "Network", "LinkLocalAddressing"),
					Addresses: get(ini, "Network", "Address"),
				})
			}
		}
	}
	if m.Kind == "" || nets != 1 {
		t.Fatalf("no .netdev, or not exactly one .network, for %s among %v", name, slices.Sorted(maps.Keys(files)))
	}
	slices.SortFunc(m.Ports, func(a, b ndPort) int { return strings.Compare(a.Name, b.Name) })
	return m
}

// readNetworkd loads the .netdev and .network files of a directory.
func readNetworkd(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if ext := path.Ext(e.Name()); ext == ".netdev" || ext == ".network" {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = string(b)
		}
	}
	return files
}

func ourNetworkd(t *testing.T, br Bridge) map[string]string {
	t.Helper()
	files, err := Render(Networkd, br)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[path.Base(f.Path)] = string(f.Content)
	}
	return out
}

// TestNetplanGenerate feeds the netplan file to netplan generate and checks
// that the networkd configuration netplan derives from it says what vmnet's
// own networkd renderer says the bridge needs.
func TestNetplanGenerate(t *testing.T) {
	netplan := requireTool(t, "netplan", "netplan.io")
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			br := c.br(t)
			files, err := Render(Netplan, br)
			if br.VLANFiltering {
				if err == nil {
					t.Fatal("netplan rendered a VLAN-filtering bridge; it cannot express that")
				}
				t.Skipf("netplan refuses VLAN filtering, as it should: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			if _, err := Write(root, files); err != nil {
				t.Fatal(err)
			}
			_, stderr := run(t, nil, netplan, "generate", "--root-dir", root)
			if strings.Contains(stderr, "ERROR") || strings.Contains(stderr, "WARNING") {
				t.Errorf("netplan generate complained:\n%s", stderr)
			}
			got := networkdModel(t, readNetworkd(t, filepath.Join(root, "run/systemd/network")), br.Name)
			want := networkdModel(t, ourNetworkd(t, br), br.Name)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("netplan's networkd config differs from vmnet's networkd renderer (-vmnet +netplan):\n%s", diff)
			}
		})
	}
}

// TestNetplanOverridesCloudInit checks the claim the netplan renderer rests
// on: an uplink that cloud-init configured for DHCP in 50-cloud-init.yaml
// ends up enslaved to the bridge without DHCP, because 60-vmnet-* merges later.
func TestNetplanOverridesCloudInit(t *testing.T) {
	netplan := requireTool(t, "netplan", "netplan.io")
	root := t.TempDir()
	cloud := "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      dhcp6: true\n"
	if err := os.MkdirAll(filepath.Join(root, netplanDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, netplanDir, "50-cloud-init.yaml"), []byte(cloud), 0o600); err != nil {
		t.Fatal(err)
	}
	br := goldenCases()[1].br(t) // uplink-dhcp, uplink eth0
	files, err := Render(Netplan, br)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	run(t, nil, netplan, "generate", "--root-dir", root)
	m := networkdModel(t, readNetworkd(t, filepath.Join(root, "run/systemd/network")), br.Name)
	want := []ndPort{{Name: "eth0", Bridge: "br0", LinkLocal: "no"}}
	if diff := cmp.Diff(want, m.Ports); diff != "" {
		t.Errorf("uplink after merging with 50-cloud-init.yaml (-want +got):\n%s", diff)
	}
}

// nmModel is a keyfile reduced to what must survive NetworkManager's own
// reading and writing: NM drops keys at their default, upper-cases some
// MACs, and folds the gateway into address1, so compare meanings.
func nmModel(content string) map[string]string {
	m := map[string]string{}
	ini := parseINI(content)
	for _, s := range ini {
		for _, kv := range s.keys {
			key, val := s.name+"."+kv[0], kv[1]
			switch {
			case strings.HasPrefix(kv[0], "address"):
				addr, gw, _ := strings.Cut(val, ",")
				m[s.name+".addresses"] += addr + " "
				if gw != "" {
					m[s.name+".gateway"] = gw
				}
			case kv[0] == "mac-address":
				m[key] = strings.ToLower(val)
			default:
				m[key] = val
			}
		}
	}
	defaults := map[string]string{"connection.autoconnect": "true"}
	if m["connection.type"] == "bridge" {
		defaults["bridge.stp"], defaults["bridge.vlan-filtering"] = "true", "false"
	}
	for key, dflt := range defaults {
		if _, ok := m[key]; !ok {
			m[key] = dflt
		}
	}
	return m
}

// TestNetworkManagerKeyfile has nmcli read each keyfile offline, apply a
// no-op change and write it back; every setting vmnet wrote must come back.
func TestNetworkManagerKeyfile(t *testing.T) {
	nmcli := requireTool(t, "nmcli", "network-manager")
	for _, c := range goldenCases() {
		files, err := Render(NetworkManager, c.br(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			t.Run(c.name+"/"+path.Base(f.Path), func(t *testing.T) {
				out, stderr := run(t, f.Content, nmcli, "--offline", "connection", "modify", "connection.autoconnect", "yes")
				if stderr != "" {
					t.Errorf("nmcli warned:\n%s", stderr)
				}
				if diff := cmp.Diff(nmModel(string(f.Content)), nmModel(out)); diff != "" {
					t.Errorf("NetworkManager's re-serialisation lost settings (-vmnet +nm):\n%s\nNM wrote:\n%s", diff, out)
				}
			})
		}
	}
}

// TestIfquery has ifupdown parse the fragment and checks the options it
// sees for the bridge.
func TestIfquery(t *testing.T) {
	ifquery := requireTool(t, "ifquery", "ifupdown")
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			br := c.br(t)
			files, err := Render(Ifupdown, br)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "interfaces")
			if err := os.WriteFile(file, files[0].Content, 0o644); err != nil {
				t.Fatal(err)
			}
			list, stderr := run(t, nil, ifquery, "-i", file, "--list")
			if !slices.Contains(strings.Fields(list), br.Name) {
				t.Errorf("ifquery --list does not bring up %s automatically: %q", br.Name, list)
			}
			out, stderr2 := run(t, nil, ifquery, "-i", file, br.Name)
			if stderr+stderr2 != "" {
				t.Errorf("ifquery warned:\n%s%s", stderr, stderr2)
			}
			opts := map[string][]string{}
			for line := range strings.Lines(out) {
				k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
				opts[k] = append(opts[k], strings.TrimSpace(v))
			}
			want := map[string][]string{
				"bridge_ports": {"none"},
				"bridge_stp":   {"off"},
				"bridge_hw":    {br.MAC.String()},
			}
			if br.Uplink != "" {
				want["bridge_ports"] = []string{br.Uplink}
			}
			if br.STP {
				want["bridge_stp"] = []string{"on"}
			} else {
				want["bridge_fd"] = []string{"0"}
			}
			if br.MTU > 0 {
				want["mtu"] = []string{strconv.Itoa(br.MTU)}
			}
			if br.VLANFiltering {
				want["bridge_vlan_aware"] = []string{"yes"}
			}
			for _, a := range br.Addresses {
				want["address"] = append(want["address"], a.Addr().String())
			}
			var ups []string
			if br.Gateway4.IsValid() {
				if br.DHCP4 {
					ups = append(ups, "ip -4 route replace default via "+br.Gateway4.String()+" dev "+br.Name)
				} else {
					want["gateway"] = append(want["gateway"], br.Gateway4.String())
				}
			}
			if br.Gateway6.IsValid() {
				if hasV6(br) {
					want["gateway"] = append(want["gateway"], br.Gateway6.String())
				} else {
					ups = append(ups, "ip -6 route replace default via "+br.Gateway6.String()+" dev "+br.Name)
				}
			}
			for k, v := range want {
				if diff := cmp.Diff(sorted(v), sorted(opts[k])); diff != "" {
					t.Errorf("ifquery %s: option %s (-want +got):\n%s\nifquery said:\n%s", br.Name, k, diff, out)
				}
			}
			for _, u := range ups {
				if !slices.Contains(opts["up"], u) {
					t.Errorf("ifquery %s: no up command %q in %q", br.Name, u, opts["up"])
				}
			}
		})
	}
}

func hasV6(br Bridge) bool {
	return slices.ContainsFunc(br.Addresses, func(p netip.Prefix) bool { return p.Addr().Is6() })
}

// TestNetworkdKeys checks every Section.Key vmnet writes against the key
// table compiled into systemd-networkd. networkd has no offline validator:
// systemd-analyze verify covers unit files only, and neither networkctl nor
// the daemon (252) can check a .network file without applying it. The table
// (gperf strings such as "Network.Address") is what networkd's parser uses,
// so a misspelt or unsupported key shows up here.
func TestNetworkdKeys(t *testing.T) {
	var bin []byte
	for _, p := range []string{"/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd"} {
		if b, err := os.ReadFile(p); err == nil {
			bin = b
			break
		}
	}
	if bin == nil {
		t.Skip("systemd-networkd not found (install Debian package systemd): skipping the key check")
	}
	for _, c := range goldenCases() {
		files, err := Render(Networkd, c.br(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			for _, s := range parseINI(string(f.Content)) {
				for _, kv := range s.keys {
					key := s.name + "." + kv[0]
					if !bytes.Contains(bin, []byte("\x00"+key+"\x00")) {
						t.Errorf("%s/%s: systemd-networkd does not know %s", c.name, path.Base(f.Path), key)
					}
				}
			}
		}
	}
}
