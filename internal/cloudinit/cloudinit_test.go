package cloudinit

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"vmnet/internal/errs"
	"vmnet/internal/testutil"
	"vmnet/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// capstoneGuest is the capstone lab's guest as vmnet plans it: DHCP on the
// NAT network nat0, 192.0.2.10/24 on the bridge br0.
func capstoneGuest(t testing.TB) Guest {
	return Guest{
		Hostname: "capstone",
		NICs: []NIC{
			{Name: "eth0", MAC: mustMAC(t, "52:54:00:6c:00:01")},
			{Name: "eth1", MAC: mustMAC(t, "52:54:00:6c:00:02"), Address: netip.MustParsePrefix("192.0.2.10/24")},
		},
	}
}

type goldenCase struct {
	name   string
	render func(testing.TB) (Seed, error)
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"capstone", func(t testing.TB) (Seed, error) { return Capstone(capstoneGuest(t)) }},
		{"static-gateway", func(t testing.TB) (Seed, error) {
			return Render(Guest{
				Hostname:   "web1.lab.example",
				InstanceID: "i-0123",
				NICs: []NIC{
					{Name: "eth0", MAC: mustMAC(t, "52:54:00:00:00:0a"), Address: netip.MustParsePrefix("198.51.100.20/24"),
						Gateway: netip.MustParseAddr("198.51.100.1"),
						DNS:     []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::53")}},
					{Name: "eth1", MAC: mustMAC(t, "52:54:00:00:00:0b"), Address: netip.MustParsePrefix("2001:db8:1::10/64"),
						Gateway: netip.MustParseAddr("2001:db8:1::1")},
				},
			}, UserData{
				Comment:  "two lines\n\nwith an empty one",
				Packages: []string{"nginx-light"},
				Files: []File{
					{Path: "/usr/local/bin/hello", Mode: 0o755, Content: []byte("#!/bin/sh\necho 'yes: no' \"on\"\n")},
					{Path: "/etc/motd", Mode: 0o644, Content: []byte("no trailing newline")},
				},
				RunCmd: [][]string{{"sh", "-c", "echo 0700 yes > /tmp/x"}, {"true"}},
			})
		}},
		{"dhcp-only", func(t testing.TB) (Seed, error) {
			return Render(Guest{Hostname: "tiny", NICs: []NIC{{Name: "eth0", MAC: mustMAC(t, "52:54:00:00:00:01")}}}, UserData{})
		}},
	}
}

// TestGolden compares the rendered seeds with testdata/NAME/; go test
// -update rewrites them.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.render(t)
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string][]byte{"user-data": s.UserData, "meta-data": s.MetaData, "network-config": s.NetworkConfig} {
				testutil.Golden(t, filepath.Join("testdata", c.name, name), got, *update)
			}
		})
	}
}

// parsedUserData is the part of user-data the tests look at again.
type parsedUserData struct {
	BootCmd    [][]string `yaml:"bootcmd"`
	Packages   []string   `yaml:"packages"`
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Owner       string `yaml:"owner"`
		Permissions string `yaml:"permissions"`
		Defer       bool   `yaml:"defer"`
		Content     string `yaml:"content"`
	} `yaml:"write_files"`
	RunCmd [][]string `yaml:"runcmd"`
}

// TestCapstoneUserData checks the decisions the capstone golden file
// encodes, so a careless -update cannot lose them: every guest file with the
// contract's mode and its exact bytes, the rootfs builder and package list,
// the units of enable.txt enabled, the secret's directory made at boot.
func TestCapstoneUserData(t *testing.T) {
	s, err := Capstone(capstoneGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(s.UserData, []byte("#cloud-config\n")) {
		t.Fatalf("user-data does not start with #cloud-config:\n%.200s", s.UserData)
	}
	var ud parsedUserData
	if err := yaml.Unmarshal(s.UserData, &ud); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range ud.WriteFiles {
		got[f.Path] = f.Permissions
		if f.Owner != "root:root" || !f.Defer {
			t.Errorf("%s: owner %q, defer %v; want root:root, deferred", f.Path, f.Owner, f.Defer)
		}
	}
	want := map[string]string{
		GuestPackageList:  "0644",
		GuestRootfsScript: "0755",
	}
	err = fs.WalkDir(templates.Capstone, "capstone/guest", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		guestPath := strings.TrimPrefix(p, "capstone/guest")
		want[guestPath] = "0644"
		if dir := path.Base(path.Dir(p)); strings.HasSuffix(p, ".sh") || dir == "sbin" || dir == "bin" {
			want[guestPath] = "0755"
		}
		b, _ := fs.ReadFile(templates.Capstone, p)
		for _, f := range ud.WriteFiles {
			if f.Path == guestPath && f.Content != string(b) {
				t.Errorf("%s: content in user-data differs from %s", guestPath, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("write_files paths and permissions (-want +got):\n%s", d)
	}
	for _, f := range []string{"/etc/nftables.conf", "/usr/local/sbin/vmnet-app-wait", "/usr/local/lib/vmnet/app/api.py",
		"/etc/systemd/system/vmnet-app.target"} {
		if _, ok := got[f]; !ok {
			t.Errorf("user-data does not write %s", f)
		}
	}
	if len(ud.BootCmd) != 1 || strings.Join(ud.BootCmd[0], " ") != "install -d -m 0700 -o root -g root /etc/vmnet/secrets" {
		t.Errorf("bootcmd = %q, want the secret directory made root-only", ud.BootCmd)
	}
	enable, _ := fs.ReadFile(templates.Capstone, "capstone/enable.txt")
	units, err := ParseUnitList(string(enable))
	if err != nil {
		t.Fatal(err)
	}
	runcmd := map[string]bool{}
	for _, c := range ud.RunCmd {
		runcmd[strings.Join(c, " ")] = true
	}
	for _, c := range []string{
		"systemctl enable " + strings.Join(units, " "),
		"systemctl restart nftables.service",
		GuestRootfsScript,
	} {
		if !runcmd[c] {
			t.Errorf("runcmd lacks %q; it has %q", c, ud.RunCmd)
		}
	}
	for _, p := range []string{"podman", "nftables", "qemu-guest-agent", "mmdebstrap", "aardvark-dns", "netavark"} {
		if !strings.Contains(" "+strings.Join(ud.Packages, " ")+" ", " "+p+" ") {
			t.Errorf("packages %q lack %s", ud.Packages, p)
		}
	}
}

func TestRenderRejects(t *testing.T) {
	mac := func(s string) net.HardwareAddr { return mustMAC(t, s) }
	ok := NIC{Name: "eth0", MAC: mac("52:54:00:00:00:01")}
	cases := []struct {
		name  string
		g     Guest
		ud    UserData
		field string
	}{
		{"no hostname", Guest{NICs: []NIC{ok}}, UserData{}, "hostname"},
		{"bad hostname", Guest{Hostname: "a_b", NICs: []NIC{ok}}, UserData{}, "hostname"},
		{"bad instance id", Guest{Hostname: "h", InstanceID: "a b", NICs: []NIC{ok}}, UserData{}, "instance-id"},
		{"no NICs", Guest{Hostname: "h"}, UserData{}, "nics"},
		{"bad NIC name", Guest{Hostname: "h", NICs: []NIC{{Name: "eth 0", MAC: mac("52:54:00:00:00:01")}}}, UserData{}, "nics[0].name"},
		{"duplicate name", Guest{Hostname: "h", NICs: []NIC{ok, {Name: "eth0", MAC: mac("52:54:00:00:00:02")}}}, UserData{}, "nics[1].name"},
		{"no MAC", Guest{Hostname: "h", NICs: []NIC{{Name: "eth0"}}}, UserData{}, "nics[0].mac"},
		{"long MAC", Guest{Hostname: "h", NICs: []NIC{{Name: "eth0", MAC: mac("00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01")}}}, UserData{}, "nics[0].mac"},
		{"duplicate MAC", Guest{Hostname: "h", NICs: []NIC{ok, {Name: "eth1", MAC: mac("52:54:00:00:00:01")}}}, UserData{}, "nics[1].mac"},
		{"network address", Guest{Hostname: "h", NICs: []NIC{{Name: "eth0", MAC: mac("52:54:00:00:00:01"), Address: netip.PrefixFrom(netip.MustParseAddr("0.0.0.0"), 0)}}}, UserData{}, "nics[0].address"},
		{"gateway outside", Guest{Hostname: "h", NICs: []NIC{{Name: "eth0", MAC: mac("52:54:00:00:00:01"), Address: netip.MustParsePrefix("192.0.2.10/24"), Gateway: netip.MustParseAddr("198.51.100.1")}}}, UserData{}, "nics[0].gateway"},
		{"gateway on DHCP", Guest{Hostname: "h", NICs: []NIC{{Name: "eth0", MAC: mac("52:54:00:00:00:01"), Gateway: netip.MustParseAddr("192.0.2.1")}}}, UserData{}, "nics[0].gateway"},
		{"bad package", Guest{Hostname: "h", NICs: []NIC{ok}}, UserData{Packages: []string{"podman; rm -rf /"}}, "packages[0]"},
		{"relative path", Guest{Hostname: "h", NICs: []NIC{ok}}, UserData{Files: []File{{Path: "etc/x", Mode: 0o644}}}, "files[0].path"},
		{"unclean path", Guest{Hostname: "h", NICs: []NIC{ok}}, UserData{Files: []File{{Path: "/etc/../x", Mode: 0o644}}}, "files[0].path"},
		{"same path twice", Guest{Hostname: "h", NICs: []NIC{ok}}, UserData{Files: []File{{Path: "/x", Mode: 0o644}, {Path: "/x", Mode: 0o644}}}, "files[1].path"},
		{"setuid", Guest{Hostname: "h", NICs: []NIC{ok}}, UserData{Files: []File{{Path: "/x", Mode: 0o755 | fs.ModeSetuid}}}, "files[0].mode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Render(c.g, c.ud)
			var fe *errs.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Render error = %v, want a FieldError", err)
			}
			if fe.Field != c.field || fe.Hint() == "" {
				t.Errorf("field %q hint %q, want field %q and a hint", fe.Field, fe.Hint(), c.field)
			}
		})
	}
}

// TestInstanceID: the default ID follows the seed's content, a given one is kept.
func TestInstanceID(t *testing.T) {
	g := capstoneGuest(t)
	meta := func(g Guest, ud UserData) string {
		s, err := Render(g, ud)
		if err != nil {
			t.Fatal(err)
		}
		return string(s.MetaData)
	}
	a := meta(g, UserData{Packages: []string{"curl"}})
	if a != meta(g, UserData{Packages: []string{"curl"}}) {
		t.Error("the same seed got two instance IDs")
	}
	if a == meta(g, UserData{Packages: []string{"wget"}}) {
		t.Error("a changed user-data kept the instance ID")
	}
	g.NICs[1].Address = netip.MustParsePrefix("192.0.2.11/24")
	if a == meta(g, UserData{Packages: []string{"curl"}}) {
		t.Error("a changed network-config kept the instance ID")
	}
	g.InstanceID = "fixed-1"
	if m := meta(g, UserData{}); !strings.Contains(m, "instance-id: fixed-1\n") {
		t.Errorf("meta-data = %q, want the given instance ID", m)
	}
}

func TestGuestFileMode(t *testing.T) {
	for p, want := range map[string]fs.FileMode{
		"/usr/local/sbin/vmnet-app-wait":              0o755,
		"/usr/local/bin/tool":                         0o755,
		"/bin/x":                                      0o755,
		"/usr/local/lib/vmnet/app/db-entrypoint.sh":   0o755,
		"/usr/local/lib/vmnet/app/api.py":             0o644,
		"/etc/nftables.conf":                          0o644,
		"/etc/systemd/system/vmnet-app-db.service":    0o644,
		"/usr/local/sbin/helpers/x":                   0o644, // only directly in sbin/
		"/usr/local/lib/vmnet/sbinary":                0o644,
		"/etc/systemd/system/nftables.service.d/x.sh": 0o755,
	} {
		if got := GuestFileMode(p); got != want {
			t.Errorf("GuestFileMode(%q) = %#o, want %#o", p, got, want)
		}
	}
}

func TestParseUnitList(t *testing.T) {
	got, err := ParseUnitList("# c\n\na.service\n  b.target # why\nc.timer\n")
	if err != nil || strings.Join(got, ",") != "a.service,b.target,c.timer" {
		t.Errorf("ParseUnitList = %q, %v", got, err)
	}
	for _, bad := range []string{"a", ".service", "a b.service", "../x.service", "x.conf"} {
		if _, err := ParseUnitList(bad); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ParseUnitList(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestGuestFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"root/usr/local/sbin/b": {Data: []byte("b")},
		"root/etc/a.conf":       {Data: []byte("a")},
		"other/x":               {Data: []byte("x")},
	}
	files, err := GuestFiles(fsys, "root")
	if err != nil {
		t.Fatal(err)
	}
	want := []File{{Path: "/etc/a.conf", Mode: 0o644, Content: []byte("a")}, {Path: "/usr/local/sbin/b", Mode: 0o755, Content: []byte("b")}}
	if d := cmp.Diff(want, files); d != "" {
		t.Errorf("GuestFiles (-want +got):\n%s", d)
	}
	if _, err := GuestFiles(fsys, "missing"); err == nil {
		t.Error("GuestFiles of a missing root: no error")
	}
}

// TestCloudInitSchema runs cloud-init's own schema check (the Debian
// package's Python tool; no cloud-init stage runs) on every golden
// user-data, and on a broken one to prove the check can fail. PyYAML, which
// cloud-init uses, reads YAML 1.1: the commands must come back as the same
// strings (0700 stays "0700", not 448).
func TestCloudInitSchema(t *testing.T) {
	if _, err := exec.LookPath("cloud-init"); err != nil {
		t.Skip("cloud-init is not installed (Debian package cloud-init)")
	}
	dir := t.TempDir()
	for _, c := range goldenCases() {
		s, err := c.render(t)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, c.name+".yaml")
		if err := os.WriteFile(file, s.UserData, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("cloud-init", "schema", "--config-file", file).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
			t.Errorf("%s: cloud-init schema: %v\n%s", c.name, err, out)
		}
		// What cloud-init's YAML loader makes of the commands and files.
		py := `import json, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(json.dumps({"bootcmd": d.get("bootcmd", []), "runcmd": d.get("runcmd", []),
  "files": {f["path"]: [f["permissions"], f["content"]] for f in d.get("write_files", [])}}))`
		out, err = exec.Command("python3", "-c", py, file).Output()
		if err != nil {
			t.Fatalf("%s: read back with PyYAML: %v", c.name, err)
		}
		var back struct {
			BootCmd [][]any             `json:"bootcmd"`
			RunCmd  [][]any             `json:"runcmd"`
			Files   map[string][]string `json:"files"`
		}
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		var ud parsedUserData
		if err := yaml.Unmarshal(s.UserData, &ud); err != nil {
			t.Fatal(err)
		}
		for i, c := range append(back.BootCmd, back.RunCmd...) {
			for j, w := range c {
				if _, ok := w.(string); !ok {
					t.Errorf("command %d word %d reads as %T %v in YAML 1.1, want a string", i, j, w, w)
				}
			}
		}
		for _, f := range ud.WriteFiles {
			if got := back.Files[f.Path]; len(got) != 2 || got[0] != f.Permissions || got[1] != f.Content {
				t.Errorf("%s: PyYAML reads permissions %q and different content", f.Path, got[0])
			}
		}
	}
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("#cloud-config\npackages: 5\nwrite_files: [{path: 1, defer: maybe}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cloud-init", "schema", "--config-file", broken).CombinedOutput(); err == nil {
		t.Errorf("cloud-init schema accepted a broken user-data:\n%s", out)
	}
}

// TestNetworkConfigConverts has cloud-init itself read network-config and
// render it for systemd-networkd (cloud-init devel net-convert writes only
// into the directory it is given).
func TestNetworkConfigConverts(t *testing.T) {
	if _, err := exec.LookPath("cloud-init"); err != nil {
		t.Skip("cloud-init is not installed (Debian package cloud-init)")
	}
	s, err := Capstone(capstoneGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "network-config")
	if err := os.WriteFile(in, s.NetworkConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if b, err := exec.Command("cloud-init", "devel", "net-convert", "-p", in, "-k", "yaml", "-d", out,
		"-D", "debian", "-O", "networkd").CombinedOutput(); err != nil {
		t.Fatalf("net-convert: %v\n%s", err, b)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(out, "etc/systemd/network", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	eth0, eth1 := read("10-cloud-init-eth0.network"), read("10-cloud-init-eth1.network")
	for _, want := range []string{"MACAddress=52:54:00:6c:00:01", "Name=eth0", "DHCP=ipv4"} {
		if !strings.Contains(eth0, want) {
			t.Errorf("eth0's .network lacks %q:\n%s", want, eth0)
		}
	}
	for _, want := range []string{"MACAddress=52:54:00:6c:00:02", "Name=eth1", "Address=192.0.2.10/24", "DHCP=no"} {
		if !strings.Contains(eth1, want) {
			t.Errorf("eth1's .network lacks %q:\n%s", want, eth1)
		}
	}
}
